package wal

import (
	"fmt"
	"strings"
)

// FsyncPolicy says when the writer makes written records durable, and so
// when it releases the waiters of a batch.
type FsyncPolicy int

const (
	// FsyncAlways fsyncs every group before releasing its waiters: an
	// acknowledged write survives a power cut. It is the zero value.
	FsyncAlways FsyncPolicy = iota
	// FsyncEverySec releases waiters once their group is written to the
	// file and fsyncs once a second: a power cut loses at most about the
	// last second of acknowledged writes (a process crash loses nothing).
	FsyncEverySec
	// FsyncNo releases waiters once their group is written and leaves
	// flushing to the operating system, fsyncing only when a segment is
	// finished and at Close.
	FsyncNo
)

// String returns the policy's name as ParseFsyncPolicy accepts it.
func (p FsyncPolicy) String() string {
	switch p {
	case FsyncAlways:
		return "always"
	case FsyncEverySec:
		return "everysec"
	case FsyncNo:
		return "no"
	}
	return fmt.Sprintf("FsyncPolicy(%d)", int(p))
}

// ParseFsyncPolicy parses "always", "everysec" or "no" (case-insensitive),
// the names Redis uses for appendfsync.
func ParseFsyncPolicy(s string) (FsyncPolicy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "always":
		return FsyncAlways, nil
	case "everysec":
		return FsyncEverySec, nil
	case "no":
		return FsyncNo, nil
	}
	return 0, fmt.Errorf("wal: unknown fsync policy %q (want always, everysec or no)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (p FsyncPolicy) MarshalText() ([]byte, error) {
	if !p.valid() {
		return nil, fmt.Errorf("wal: unknown fsync policy %d", int(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler, so a policy works
// with flag.TextVar and in config files.
func (p *FsyncPolicy) UnmarshalText(text []byte) error {
	v, err := ParseFsyncPolicy(string(text))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

func (p FsyncPolicy) valid() bool { return p >= FsyncAlways && p <= FsyncNo }
