package cliflag

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestDurationVar(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var d time.Duration
	DurationVar(fs, &d, "ttl", 5*time.Second, "")
	if d != 5*time.Second {
		t.Fatalf("default = %v", d)
	}
	if err := fs.Parse([]string{"--ttl", "90s"}); err != nil || d != 90*time.Second {
		t.Fatalf("--ttl 90s = %v, %v", d, err)
	}
	err := fs.Parse([]string{"--ttl", "30"})
	if err == nil || !strings.Contains(err.Error(), `want a duration like 30s, got "30"`) {
		t.Fatalf("--ttl 30 = %v; want the format named", err)
	}
}
