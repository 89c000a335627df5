package wal_test

import (
	"errors"
	"sync/atomic"
	"syscall"
	"testing"

	"kvstore/wal"
	"kvstore/wal/faultfs"
)

// TestFailedGroupIsCut is the regression test for records answered with a
// failure coming back at the next start: a group written (wholly or in
// part) whose write or fsync then failed is cut off the segment again, so
// a restart on the same disk, or after a power cut, does not replay what
// its waiters were told was not persisted. When the cut fails too, the
// waiters get ErrOutcomeUnknown: the records may be there, and are.
func TestFailedGroupIsCut(t *testing.T) {
	group := records(2, 3)
	tests := []struct {
		name string
		arm  func(*faultfs.FS)
		// unknown: the waiters get ErrOutcomeUnknown, and the records
		// the failed write left are replayed after a restart.
		unknown bool
		left    []wal.Record
	}{
		{name: "fsync fails",
			arm: func(f *faultfs.FS) { f.FailNth(faultfs.OpSync, 1, syscall.EIO) }},
		{name: "short write holding a whole record",
			arm: func(f *faultfs.FS) { f.LimitSpace(int64(len(encode(group[0]))) + 3) }},
		{name: "fsync fails, then the cut's truncate",
			arm: func(f *faultfs.FS) {
				f.FailNth(faultfs.OpSync, 1, syscall.EIO)
				f.FailNth(faultfs.OpTruncate, 1, syscall.EIO)
			},
			unknown: true, left: group},
		{name: "fsync fails, then the cut's fsync",
			arm: func(f *faultfs.FS) {
				f.FailNth(faultfs.OpSync, 1, syscall.EIO)
				f.FailNth(faultfs.OpSync, 2, syscall.EIO)
			},
			// The truncation itself took effect; only its durability
			// is unknown.
			unknown: true},
		{name: "short write, then the cut's truncate",
			arm: func(f *faultfs.FS) {
				f.LimitSpace(int64(len(encode(group[0]))) + 3)
				f.FailNth(faultfs.OpTruncate, 1, syscall.EIO)
			},
			unknown: true, left: group[:1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := faultfs.New(1)
			l := mustOpen(t, memOpts(fsys))
			l.Start(1)
			if err := submitOne(l, setRec(1, "a", "1")).wait(); err != nil {
				t.Fatal(err)
			}
			tt.arm(fsys)
			err := submitOne(l, group...).wait()
			if !errors.Is(err, wal.ErrFailed) {
				t.Fatalf("waiter of the failed group: %v; want ErrFailed", err)
			}
			if got := errors.Is(err, wal.ErrOutcomeUnknown); got != tt.unknown {
				t.Fatalf("waiter of the failed group: %v; ErrOutcomeUnknown %v, want %v", err, got, tt.unknown)
			}
			if err := l.Close(); !errors.Is(err, wal.ErrFailed) {
				t.Fatalf("Close = %v; want ErrFailed", err)
			}
			fsys.LimitSpace(-1)

			want := append([]wal.Record{setRec(1, "a", "1")}, tt.left...)
			equalRecords(t, replayAll(t, memOpts(fsys), 0), want)
			if !tt.unknown {
				// Not even a power cut brings them back.
				equalRecords(t, replayAll(t, memOpts(fsys.Crash(faultfs.TearUnsynced)), 0), want[:1])
			}
		})
	}
}

// TestOnFail: the log reports its failure once, through Options.OnFail,
// before the waiter of the failed group hears of it, so a server can mark
// itself unwritable before any caller learns why.
func TestOnFail(t *testing.T) {
	fsys := faultfs.New(1)
	var calls atomic.Int32
	var got atomic.Value
	opts := memOpts(fsys)
	opts.OnFail = func(err error) {
		calls.Add(1)
		got.Store(err)
	}
	l := mustOpen(t, opts)
	l.Start(1)
	fsys.FailNth(faultfs.OpSync, 1, syscall.EIO)
	w := submitOne(l, setRec(1, "a", "1"))
	// Complete runs after OnFail on the writer goroutine: no race.
	if err := w.wait(); err == nil {
		t.Fatal("group acknowledged despite the failed fsync")
	}
	if calls.Load() != 1 {
		t.Fatalf("OnFail called %d times before the waiter was released; want 1", calls.Load())
	}
	if err, _ := got.Load().(error); !errors.Is(err, wal.ErrFailed) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("OnFail got %v; want ErrFailed wrapping EIO", err)
	}
	if err := submitOne(l, setRec(2, "b", "2")).wait(); !errors.Is(err, wal.ErrFailed) {
		t.Fatalf("Submit after the failure: %v", err)
	}
	l.Close()
	if calls.Load() != 1 {
		t.Fatalf("OnFail called %d times; want once", calls.Load())
	}
}
