package actorlog_test

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"kvstore/actor"
	"kvstore/wal"
	"kvstore/wal/actorlog"
	"kvstore/wal/faultfs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T, fsys *faultfs.FS) *wal.Log {
	t.Helper()
	l, err := wal.Open(wal.Options{Dir: "/data/wal", FS: fsys, Fsync: wal.FsyncAlways})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestRecordsReachTheLog: what the actor applies is what the log
// replays, record for record, and the actor's replies wait for it.
func TestRecordsReachTheLog(t *testing.T) {
	fsys := faultfs.New(1)
	l := open(t, fsys)
	l.Start(1)
	a := actor.New(actor.Config{Log: actorlog.New(l), ExpireInterval: -1})
	ctx := context.Background()
	if err := a.Set(ctx, "a", "1", 0); err != nil {
		t.Fatal(err)
	}
	if err := a.Set(ctx, "b", "2", 5e9); err != nil {
		t.Fatal(err)
	}
	if found, err := a.Delete(ctx, "a", 0); err != nil || !found {
		t.Fatalf("Delete = %v, %v", found, err)
	}
	if got := l.DurableSeq(); got != 3 {
		t.Fatalf("DurableSeq after three acknowledged writes = %d; want 3", got)
	}
	a.Stop()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = open(t, fsys)
	defer l.Close()
	var got []actor.Record
	if _, err := l.Replay(0, func(r wal.Record) error {
		got = append(got, actorlog.FromWAL(r))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []actor.Record{
		{Seq: 1, Op: actor.OpSet, Key: "a", Value: "1"},
		{Seq: 2, Op: actor.OpSet, Key: "b", Value: "2", Deadline: 5e9},
		{Seq: 3, Op: actor.OpDelete, Key: "a"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("replayed %v; want %v", got, want)
	}
	for _, r := range want {
		if back := actorlog.FromWAL(actorlog.ToWAL(r)); back != r {
			t.Errorf("round trip of %v = %v", r, back)
		}
	}
}

// TestErrors: the log's failures reach the actor's callers as the actor's
// own errors, keeping the log's detail: a failed fsync is ErrNotPersisted
// and then every write ErrStorage; a closed log is ErrStopped.
func TestErrors(t *testing.T) {
	fsys := faultfs.New(1)
	l := open(t, fsys)
	l.Start(1)
	a := actor.New(actor.Config{Log: actorlog.New(l), ExpireInterval: -1})
	defer a.Stop()
	ctx := context.Background()

	fsys.FailNth(faultfs.OpSync, 1, syscall.EIO)
	err := a.Set(ctx, "k", "v", 0)
	if !errors.Is(err, actor.ErrNotPersisted) || !errors.Is(err, wal.ErrFailed) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("Set with a failing fsync = %v; want ErrNotPersisted wrapping the log's EIO", err)
	}
	err = a.Set(ctx, "k2", "v", 0)
	if !errors.Is(err, actor.ErrStorage) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("Set after the failure = %v; want ErrStorage wrapping the log's EIO", err)
	}
	l.Close() // reports the failure again

	// A closed, healthy log: a shutdown, not a failure.
	fsys2 := faultfs.New(2)
	l2 := open(t, fsys2)
	l2.Start(1)
	a2 := actor.New(actor.Config{Log: actorlog.New(l2), ExpireInterval: -1})
	defer a2.Stop()
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	err = a2.Set(ctx, "k", "v", 0)
	if !errors.Is(err, actor.ErrStopped) || !errors.Is(err, wal.ErrClosed) {
		t.Fatalf("Set after Close = %v; want ErrStopped wrapping ErrClosed", err)
	}
}

func TestErr(t *testing.T) {
	for _, tt := range []struct {
		in   error
		want error
	}{
		{nil, nil},
		{wal.ErrClosed, actor.ErrStopped},
		{fmt.Errorf("%w: %w", wal.ErrFailed, syscall.ENOSPC), actor.ErrNotPersisted},
		{syscall.EIO, actor.ErrNotPersisted},
		{fmt.Errorf("%w: %w", wal.ErrFailed, wal.ErrOutcomeUnknown), actor.ErrOutcomeUnknown},
	} {
		got := actorlog.Err(tt.in)
		if !errors.Is(got, tt.want) || (tt.in != nil && !errors.Is(got, tt.in)) ||
			(tt.want == actor.ErrOutcomeUnknown && errors.Is(got, actor.ErrNotPersisted)) {
			t.Errorf("Err(%v) = %v; want %v wrapping it", tt.in, got, tt.want)
		}
	}
}
