package server

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A settingRange is what Validate allows for one numeric setting of
// Config: min to max, and 0 as well when off says what 0 means. The table
// below is the one place the ranges are written; README's list is checked
// against it (TestREADMEListsRanges).
type settingRange struct {
	flag     string
	unit     rangeUnit
	min, max int64
	off      string // meaning of 0 when it is allowed below min, e.g. "off"
	get      func(*Config) int64
}

type rangeUnit int

const (
	unitCount rangeUnit = iota
	unitBytes
	unitDuration
)

// settingRanges holds every numeric setting of Config, in the order of
// the README table. A bound says why it is there: each keeps out a value
// that cannot work or that hurts the server (issue 12: --expire-interval
// 1ns kept an idle server at 108% CPU, --wal-prealloc-bytes 1TiB filled
// the disk at the first Set, --request-timeout 1ns failed every request),
// and leaves room for every setting that can.
var settingRanges = []settingRange{
	// Below 1 KiB nearly every group commit would start a new file. A
	// segment is deleted only whole, once a snapshot covers all of it, so
	// past 1 GiB that much already-covered log stays on disk and is read
	// again at every start.
	{flag: "wal-segment-bytes", unit: unitBytes, min: 1 << 10, max: 1 << 30,
		get: func(c *Config) int64 { return int64(c.WALSegmentBytes) }},
	// A step of zero-fill is written inside the group commit whose fsync
	// it spares, delaying every write in that group: 64 MiB (the default
	// segment size) already saves all but one inode update per 64 MiB of
	// records. Below a 4 KiB block a step saves nothing.
	{flag: "wal-prealloc-bytes", unit: unitBytes, min: 4 << 10, max: 64 << 20, off: "off",
		get: func(c *Config) int64 { return int64(c.WALPreallocBytes) }},
	// Every tick is a freeze through the actor, even when nothing
	// changed; below 10 ms the ticks alone cost a core (the crash tests
	// use 50 ms to snapshot under load). Past a day the log between
	// snapshots, kept on disk and replayed at start, is a day of writes:
	// use 0 for no periodic snapshots.
	{flag: "snapshot-interval", unit: unitDuration, min: int64(10 * time.Millisecond), max: int64(24 * time.Hour), off: "off",
		get: func(c *Config) int64 { return int64(c.SnapshotInterval) }},
	// Each tick is a message through the actor: below 10 ms they keep an
	// idle server busy. Past an hour, expired keys that nobody reads hold
	// memory (and --max-memory room) for that long.
	{flag: "expire-interval", unit: unitDuration, min: int64(10 * time.Millisecond), max: int64(time.Hour),
		get: func(c *Config) int64 { return int64(c.ExpireInterval) }},
	// A key and a value must fit one log record (64 MiB) and one snapshot
	// entry; checkStorable then checks the two together.
	{flag: "max-key-bytes", unit: unitBytes, min: 1, max: int64(largestKeyWithValue()),
		get: func(c *Config) int64 { return int64(c.MaxKeyBytes) }},
	{flag: "max-value-bytes", unit: unitBytes, min: 1, max: int64(maxValue(1)),
		get: func(c *Config) int64 { return int64(c.MaxValueBytes) }},
	{flag: "shutdown-grace", unit: unitDuration, min: 0, max: int64(time.Hour),
		get: func(c *Config) int64 { return int64(c.ShutdownGrace) }},
	// Below 1 KiB not even a few entries fit (each costs ~72 bytes
	// besides its key and value). 128 TiB is what an x86-64 process can
	// address with 4-level paging: a larger limit is a mistyped unit.
	{flag: "max-memory", unit: unitBytes, min: 1 << 10, max: 128 << 40, off: "no limit",
		get: func(c *Config) int64 { return int64(c.MaxMemory) }},
	// Go's heap goal is never below 4 MiB, so a smaller floor does
	// nothing. The floor is garbage the heap may hold before a
	// collection; past 4 GiB that is a leak in all but name, and GOMEMLIMIT
	// is the setting for large heaps.
	{flag: "gc-heap-floor", unit: unitBytes, min: 4 << 20, max: 4 << 30, off: "GOGC alone",
		get: func(c *Config) int64 { return int64(c.GCHeapFloor) }},
	// 1048576 is Linux's default ceiling on a process's open files
	// (fs.nr_open): more connections cannot be open.
	{flag: "max-connections", unit: unitCount, min: 1, max: 1 << 20,
		get: func(c *Config) int64 { return int64(c.MaxConnections) }},
	// One fsync (1-10 ms on SSDs) or a GC pause must not fail a request
	// that would otherwise succeed. Requests are single keys: one that
	// takes an hour is stuck, and 0 turns the bound off.
	{flag: "request-timeout", unit: unitDuration, min: int64(10 * time.Millisecond), max: int64(time.Hour), off: "none",
		get: func(c *Config) int64 { return int64(c.RequestTimeout) }},
}

// check refuses v outside r, naming the flag, the value and the range.
func (r settingRange) check(v int64) error {
	if (v == 0 && r.off != "") || (v >= r.min && v <= r.max) {
		return nil
	}
	return fmt.Errorf("--%s %s is out of range: want %s", r.flag, r.format(v), r.allowed())
}

// allowed is the range as the error messages and README put it, e.g.
// "0 (off) or 4KiB to 64MiB".
func (r settingRange) allowed() string {
	s := r.format(r.min) + " to " + r.format(r.max)
	if r.off != "" {
		s = "0 (" + r.off + ") or " + s
	}
	return s
}

func (r settingRange) format(v int64) string {
	switch r.unit {
	case unitBytes:
		return formatBytes(v)
	case unitDuration:
		return formatDuration(time.Duration(v))
	}
	return strconv.FormatInt(v, 10)
}

// formatBytes writes n with the largest binary unit that divides it, as
// the flags accept it: 64MiB, 1023.
func formatBytes(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// formatDuration is d.String() without zero minutes and seconds: 1h, 24h,
// 10ms, 1h0m0.000000001s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}

// largestKeyWithValue is the longest key a Set with a 1-byte value (the
// smallest --max-value-bytes) can have in a log record and snapshot entry.
func largestKeyWithValue() int {
	k := largestKey()
	for k > 0 && maxValue(k) < 1 {
		k--
	}
	return k
}
