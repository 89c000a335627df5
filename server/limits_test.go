package server

import (
	"context"
	"errors"
	"strings"
	"testing"

	"kvstore/actor"
	"kvstore/snap"
	"kvstore/wal"
	"kvstore/wal/actorlog"
)

// TestTooLargeKeepsLogHealthy is the regression test for one large Set
// poisoning the log: with the largest limits Validate accepts, a Set just
// over them is refused whole with ErrTooLarge before anything is applied,
// the real log stays healthy, and a Set exactly at the limits and later
// writes succeed.
func TestTooLargeKeepsLogHealthy(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxKeyBytes = 1 << 10
	cfg.MaxValueBytes = ByteSize(maxValue(1 << 10))
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log, err := wal.Open(wal.Options{Dir: t.TempDir(), Fsync: wal.FsyncNo})
	if err != nil {
		t.Fatal(err)
	}
	log.Start(1)
	a := actor.New(actor.Config{Log: actorlog.New(log), ExpireInterval: -1, Rules: cfg.rules()})
	t.Cleanup(func() {
		a.Stop()
		if err := log.Close(); err != nil {
			t.Error(err)
		}
	})
	ctx := context.Background()

	big := strings.Repeat("x", wal.MaxRecordBytes) // sliced, never copied
	key, limit := big[:cfg.MaxKeyBytes], int(cfg.MaxValueBytes)
	if err := a.Set(ctx, key, big[:limit+1], 0); !errors.Is(err, actor.ErrTooLarge) {
		t.Fatalf("Set one byte over the limit = %v; want ErrTooLarge", err)
	}
	r := actor.NewRequest()
	r.Commands = []actor.Command{{Op: actor.OpSet, Key: "a", Value: "1"}, {Op: actor.OpSet, Key: key, Value: big[:limit+1], Deadline: 1 << 62}}
	if err := a.Do(ctx, r); !errors.Is(err, actor.ErrTooLarge) {
		t.Fatalf("batch with an oversized Set = %v; want ErrTooLarge", err)
	}
	if _, err := a.Delete(ctx, big[:cfg.MaxKeyBytes+1], 0); !errors.Is(err, actor.ErrTooLarge) {
		t.Fatalf("Delete of a key over the limit = %v; want ErrTooLarge", err)
	}
	if _, ok, _ := a.Get(ctx, "a", 0); ok {
		t.Fatal("the first Set of a refused batch was applied")
	}
	if err := log.Err(); err != nil {
		t.Fatalf("log failed: %v", err)
	}

	if err := a.Set(ctx, key, big[:limit], 1<<62); err != nil {
		t.Fatalf("Set exactly at the limits: %v", err)
	}
	if err := a.Set(ctx, "after", "v", 0); err != nil {
		t.Fatalf("Set after a refused one: %v", err)
	}
	if v, ok, err := a.Get(ctx, key, 0); err != nil || !ok || len(v) != limit {
		t.Fatalf("Get = %d bytes, %v, %v; want %d bytes", len(v), ok, err, limit)
	}
	if err := log.Err(); err != nil {
		t.Fatalf("log failed: %v", err)
	}
}

func TestCheckStorable(t *testing.T) {
	maxValue := wal.MaxSetValue(1 << 10) // with the servers' default 1 KiB keys
	tests := []struct {
		name       string
		key, value int
		wantErr    bool
		wantInMsg  string
	}{
		{"server defaults", 1 << 10, 1 << 20, false, ""},
		{"largest value that fits", 1 << 10, maxValue, false, ""},
		{"one byte more", 1 << 10, maxValue + 1, true, "the largest value that fits is 67107817 bytes"},
		{"256 MiB values", 1 << 10, 256 << 20, true, "the largest value that fits is 67107817 bytes"},
		{"64 MiB values", 0, 64 << 20, true, "with 0-byte keys the largest value that fits is 67108842 bytes"},
		{"key too long for a record", wal.MaxRecordBytes, 0, true, "a 67108864-byte key cannot be stored"},
		{"key over the snapshot limit", snap.MaxKeySize + 1, 0, true, "cannot be stored"},
		{"negative", -1, 10, true, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkStorable(tt.key, tt.value)
			if (err != nil) != tt.wantErr {
				t.Fatalf("checkStorable(%d, %d) = %v; want error %v", tt.key, tt.value, err, tt.wantErr)
			}
			if err == nil {
				return
			}
			if !strings.Contains(err.Error(), tt.wantInMsg) {
				t.Errorf("error %q does not say %q", err, tt.wantInMsg)
			}
			if tt.key >= 0 && !errors.Is(err, actor.ErrTooLarge) {
				t.Errorf("error %v does not wrap ErrTooLarge", err)
			}
		})
	}
}
