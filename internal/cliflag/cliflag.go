// Package cliflag holds flag types the kvstore command-line tools share.
package cliflag

import (
	"flag"
	"fmt"
	"time"
)

// durationValue is a time.Duration flag whose error says what to write:
// the flag package's own says only "parse error", e.g. for --ttl 30.
type durationValue struct{ d *time.Duration }

func (f durationValue) String() string {
	if f.d == nil {
		return "0s"
	}
	return f.d.String()
}

func (f durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration like 30s, got %q", s)
	}
	*f.d = d
	return nil
}

// DurationVar defines a duration flag named name on fs, storing into p,
// whose parse error names the format it wants.
func DurationVar(fs *flag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var(durationValue{p}, name, usage)
}
