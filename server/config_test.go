package server

import (
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLogFormat(t *testing.T) {
	for _, tt := range []struct{ format, want string }{
		{"json", `"msg":"hello"`},
		{"text", `msg=hello`},
	} {
		var b strings.Builder
		newLogger(&b, &Config{LogFormat: tt.format}).Info("hello")
		if !strings.Contains(b.String(), tt.want) {
			t.Errorf("--log-format %s wrote %q; want it to contain %q", tt.format, b.String(), tt.want)
		}
	}
	var b strings.Builder
	newLogger(&b, &Config{LogFormat: "text", LogLevel: slog.LevelWarn}).Info("quiet")
	if b.Len() != 0 {
		t.Errorf("info logged at --log-level warn: %q", b.String())
	}
	c := DefaultConfig()
	c.LogFormat = "xml"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--log-format") {
		t.Fatalf("bad --log-format: %v", err)
	}
}

// TestValidateRanges is the regression test for issue 12 item 8: every
// numeric setting has a range, each bound is checked on both sides, and
// a refusal names the flag, the value and the range.
func TestValidateRanges(t *testing.T) {
	const ms, h = time.Millisecond, time.Hour
	tests := []struct {
		name    string
		set     func(*Config)
		wantErr string // "" accepts
	}{
		{"segment at min", func(c *Config) { c.WALSegmentBytes = 1 << 10 }, ""},
		{"segment below min", func(c *Config) { c.WALSegmentBytes = 1<<10 - 1 }, "--wal-segment-bytes 1023 is out of range: want 1KiB to 1GiB"},
		{"segment at max", func(c *Config) { c.WALSegmentBytes = 1 << 30 }, ""},
		{"segment above max", func(c *Config) { c.WALSegmentBytes = 1<<30 + 1 }, "--wal-segment-bytes 1073741825 is out of range: want 1KiB to 1GiB"},

		{"prealloc off", func(c *Config) { c.WALPreallocBytes = 0 }, ""},
		{"prealloc below min", func(c *Config) { c.WALPreallocBytes = 4<<10 - 1 }, "--wal-prealloc-bytes 4095 is out of range: want 0 (off) or 4KiB to 64MiB"},
		{"prealloc at min", func(c *Config) { c.WALPreallocBytes = 4 << 10 }, ""},
		{"prealloc at max", func(c *Config) { c.WALPreallocBytes = 64 << 20 }, ""},
		{"prealloc above max", func(c *Config) { c.WALPreallocBytes = 64<<20 + 1 }, "--wal-prealloc-bytes 67108865 is out of range"},
		{"prealloc 1TiB (issue 12)", func(c *Config) { c.WALPreallocBytes = 1 << 40 }, "--wal-prealloc-bytes 1TiB is out of range: want 0 (off) or 4KiB to 64MiB"},

		{"snapshots off", func(c *Config) { c.SnapshotInterval = 0 }, ""},
		{"snapshot negative", func(c *Config) { c.SnapshotInterval = -time.Second }, "--snapshot-interval -1s is out of range: want 0 (off) or 10ms to 24h"},
		{"snapshot below min", func(c *Config) { c.SnapshotInterval = 10*ms - 1 }, "--snapshot-interval 9.999999ms is out of range"},
		{"snapshot at min", func(c *Config) { c.SnapshotInterval = 10 * ms }, ""},
		{"snapshot at max", func(c *Config) { c.SnapshotInterval = 24 * h }, ""},
		{"snapshot above max", func(c *Config) { c.SnapshotInterval = 24*h + 1 }, "--snapshot-interval 24h0m0.000000001s is out of range"},

		{"expire 0", func(c *Config) { c.ExpireInterval = 0 }, "--expire-interval 0s is out of range: want 10ms to 1h"},
		{"expire 1ns (issue 12)", func(c *Config) { c.ExpireInterval = 1 }, "--expire-interval 1ns is out of range: want 10ms to 1h"},
		{"expire below min", func(c *Config) { c.ExpireInterval = 10*ms - 1 }, "--expire-interval 9.999999ms is out of range"},
		{"expire at min", func(c *Config) { c.ExpireInterval = 10 * ms }, ""},
		{"expire at max", func(c *Config) { c.ExpireInterval = h }, ""},
		{"expire above max", func(c *Config) { c.ExpireInterval = h + 1 }, "--expire-interval 1h0m0.000000001s is out of range"},

		{"key 0", func(c *Config) { c.MaxKeyBytes = 0 }, "--max-key-bytes 0 is out of range: want 1 to 67108841"},
		{"key at min", func(c *Config) { c.MaxKeyBytes = 1 }, ""},
		{"key at max", func(c *Config) { c.MaxKeyBytes, c.MaxValueBytes = 67108841, 1 }, ""},
		{"key above max", func(c *Config) { c.MaxKeyBytes, c.MaxValueBytes = 67108842, 1 }, "--max-key-bytes 67108842 is out of range: want 1 to 67108841"},
		{"key MaxInt64 (issue 12)", func(c *Config) { c.MaxKeyBytes = math.MaxInt64 }, "--max-key-bytes 9223372036854775807 is out of range: want 1 to 67108841"},

		{"value 0", func(c *Config) { c.MaxValueBytes = 0 }, "--max-value-bytes 0 is out of range: want 1 to 67108841"},
		{"value at min", func(c *Config) { c.MaxValueBytes = 1 }, ""},
		{"value at max", func(c *Config) { c.MaxKeyBytes, c.MaxValueBytes = 1, 67108841 }, ""},
		{"value above max", func(c *Config) { c.MaxKeyBytes, c.MaxValueBytes = 1, 67108842 }, "--max-value-bytes 67108842 is out of range: want 1 to 67108841"},
		{"key and value each in range, not together", func(c *Config) { c.MaxKeyBytes, c.MaxValueBytes = 1<<10, 64<<20-100 }, "the largest value that fits is"},

		{"grace negative", func(c *Config) { c.ShutdownGrace = -1 }, "--shutdown-grace -1ns is out of range: want 0s to 1h"},
		{"grace 0", func(c *Config) { c.ShutdownGrace = 0 }, ""},
		{"grace at max", func(c *Config) { c.ShutdownGrace = h }, ""},
		{"grace above max", func(c *Config) { c.ShutdownGrace = h + 1 }, "--shutdown-grace 1h0m0.000000001s is out of range"},

		{"memory no limit", func(c *Config) { c.MaxMemory = 0 }, ""},
		{"memory below min", func(c *Config) { c.MaxMemory = 1<<10 - 1 }, "--max-memory 1023 is out of range: want 0 (no limit) or 1KiB to 128TiB"},
		{"memory at min", func(c *Config) { c.MaxMemory = 1 << 10 }, ""},
		{"memory at max", func(c *Config) { c.MaxMemory = 128 << 40 }, ""},
		{"memory above max", func(c *Config) { c.MaxMemory = 128<<40 + 1 }, "--max-memory 140737488355329 is out of range"},

		{"gc floor off", func(c *Config) { c.GCHeapFloor = 0 }, ""},
		{"gc floor below min", func(c *Config) { c.GCHeapFloor = 4<<20 - 1 }, "--gc-heap-floor 4194303 is out of range: want 0 (GOGC alone) or 4MiB to 4GiB"},
		{"gc floor at min", func(c *Config) { c.GCHeapFloor = 4 << 20 }, ""},
		{"gc floor at max", func(c *Config) { c.GCHeapFloor = 4 << 30 }, ""},
		{"gc floor above max", func(c *Config) { c.GCHeapFloor = 4<<30 + 1 }, "--gc-heap-floor 4294967297 is out of range"},

		{"connections 0", func(c *Config) { c.MaxConnections = 0 }, "--max-connections 0 is out of range: want 1 to 1048576"},
		{"connections at min", func(c *Config) { c.MaxConnections = 1 }, ""},
		{"connections at max", func(c *Config) { c.MaxConnections = 1 << 20 }, ""},
		{"connections above max", func(c *Config) { c.MaxConnections = 1<<20 + 1 }, "--max-connections 1048577 is out of range"},

		{"timeout none", func(c *Config) { c.RequestTimeout = 0 }, ""},
		{"timeout negative", func(c *Config) { c.RequestTimeout = -1 }, "--request-timeout -1ns is out of range: want 0 (none) or 10ms to 1h"},
		{"timeout 1ns (issue 12)", func(c *Config) { c.RequestTimeout = 1 }, "--request-timeout 1ns is out of range: want 0 (none) or 10ms to 1h"},
		{"timeout below min", func(c *Config) { c.RequestTimeout = 10*ms - 1 }, "--request-timeout 9.999999ms is out of range"},
		{"timeout at min", func(c *Config) { c.RequestTimeout = 10 * ms }, ""},
		{"timeout at max", func(c *Config) { c.RequestTimeout = h }, ""},
		{"timeout above max", func(c *Config) { c.RequestTimeout = h + 1 }, "--request-timeout 1h0m0.000000001s is out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.set(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v; want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// TestEveryNumericSettingHasARange: a numeric field added to Config
// without a row in settingRanges fails here.
func TestEveryNumericSettingHasARange(t *testing.T) {
	// Not ranges: an enum and a log level, both parsed from names.
	skip := map[string]bool{"Fsync": true, "LogLevel": true}
	ranged := 0
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		switch f.Type.Kind() {
		case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint64:
			if !skip[f.Name] {
				ranged++
			}
		}
	}
	if ranged != len(settingRanges) {
		t.Fatalf("Config has %d numeric settings, settingRanges %d rows", ranged, len(settingRanges))
	}
}

// TestREADMEListsRanges keeps README's list of ranges in step with
// settingRanges.
func TestREADMEListsRanges(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range settingRanges {
		row := "| `" + r.flag + "` | " + r.allowed() + " |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README.md lacks the row %q", row)
		}
	}
}
