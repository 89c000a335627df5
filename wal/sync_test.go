package wal_test

import (
	"context"
	"errors"
	"syscall"
	"testing"

	"github.com/benbjohnson/clock"

	"kvstore/wal"
	"kvstore/wal/faultfs"
)

// startSyncLog starts a log under policy on a mock clock that is never
// advanced, so no everysec tick fsyncs behind the test's back. requestc
// receives the seq of every SyncThrough request the writer takes: the
// hand-off that shows a call is queued.
func startSyncLog(t *testing.T, policy wal.FsyncPolicy) (*faultfs.FS, *wal.Log, <-chan uint64) {
	t.Helper()
	fsys := faultfs.New(1)
	opts := memOpts(fsys)
	opts.Fsync = policy
	opts.Clock = clock.NewMock()
	l := mustOpen(t, opts)
	requestc := make(chan uint64, 8)
	wal.SetSyncRequestHook(l, func(seq uint64) { requestc <- seq })
	l.Start(1)
	return fsys, l, requestc
}

// submitAll submits recs one batch each and waits for every release.
// syncThrough calls SyncThrough(seq) and checks that it succeeded and that
// the log has made wantSyncs fsyncs in all once it returns.
func syncThrough(t *testing.T, l *wal.Log, seq, wantSyncs uint64) {
	t.Helper()
	if err := l.SyncThrough(context.Background(), seq); err != nil {
		t.Fatalf("SyncThrough(%d): %v", seq, err)
	}
	if st := l.Stats(); st.Syncs != wantSyncs {
		t.Fatalf("Stats = %+v after SyncThrough(%d), want %d fsyncs in all", st, seq, wantSyncs)
	}
}

func submitAll(t *testing.T, l *wal.Log, recs []wal.Record) {
	t.Helper()
	for _, r := range recs {
		if err := submitOne(l, r).wait(); err != nil {
			t.Fatalf("record %d: %v", r.Seq, err)
		}
	}
}

// Under everysec and no, acknowledged records are only written; SyncThrough
// fsyncs them at once, with one fsync for everything written, and they
// then survive a power cut.
func TestSyncThroughForcesFsync(t *testing.T) {
	for _, policy := range []wal.FsyncPolicy{wal.FsyncEverySec, wal.FsyncNo} {
		t.Run(policy.String(), func(t *testing.T) {
			fsys, l, _ := startSyncLog(t, policy)
			recs := records(1, 5)
			submitAll(t, l, recs)
			if st := l.Stats(); st.Syncs != 0 {
				t.Fatalf("Stats = %+v before SyncThrough, want no sync", st)
			}
			syncThrough(t, l, 3, 1)
			// The fsync covered everything written, so this one needs
			// none.
			syncThrough(t, l, 5, 1)
			crashed := fsys.Crash(faultfs.DropUnsynced)
			l.Close()
			equalRecords(t, replayAll(t, memOpts(crashed), 0), recs)
		})
	}
}

// Under always a released record is fsynced already: SyncThrough adds no
// fsync.
func TestSyncThroughAlwaysAddsNoFsync(t *testing.T) {
	_, l, _ := startSyncLog(t, wal.FsyncAlways)
	submitAll(t, l, records(1, 3))
	syncThrough(t, l, 3, l.Stats().Syncs)
}

// A SyncThrough for records not yet submitted waits for them, and fsyncs
// only once they are all written.
func TestSyncThroughWaitsForRecords(t *testing.T) {
	fsys, l, requestc := startSyncLog(t, wal.FsyncEverySec)
	done := make(chan error, 1)
	go func() { done <- l.SyncThrough(context.Background(), 2) }()
	if seq := <-requestc; seq != 2 {
		t.Fatalf("writer took a request for seq %d, want 2", seq)
	}
	recs := records(1, 2)
	submitAll(t, l, recs[:1])
	submitAll(t, l, recs[1:])
	if err := <-done; err != nil {
		t.Fatalf("SyncThrough: %v", err)
	}
	if st := l.Stats(); st.Syncs != 1 {
		t.Fatalf("Stats = %+v, want exactly 1 sync: none before record 2 was written", st)
	}
	crashed := fsys.Crash(faultfs.DropUnsynced)
	l.Close()
	equalRecords(t, replayAll(t, memOpts(crashed), 0), recs)
}

// A failed fsync fails SyncThrough with the log's sticky failure, and a
// later call gets the same failure without another fsync.
func TestSyncThroughFailure(t *testing.T) {
	fsys, l, _ := startSyncLog(t, wal.FsyncEverySec)
	submitAll(t, l, records(1, 2))
	fsys.FailNth(faultfs.OpSync, 1, syscall.EIO)
	err := l.SyncThrough(context.Background(), 2)
	if !errors.Is(err, wal.ErrFailed) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("SyncThrough = %v, want ErrFailed wrapping EIO", err)
	}
	syncs := fsys.Count(faultfs.OpSync)
	if err2 := l.SyncThrough(context.Background(), 2); err2 == nil || err2.Error() != err.Error() {
		t.Fatalf("second SyncThrough = %v, want the sticky %v", err2, err)
	}
	if fsys.Count(faultfs.OpSync) != syncs {
		t.Fatal("fsync retried")
	}
}

func TestSyncThroughClose(t *testing.T) {
	t.Run("queued", func(t *testing.T) {
		// Close answers a request for records that never came.
		_, l, requestc := startSyncLog(t, wal.FsyncEverySec)
		done := make(chan error, 1)
		go func() { done <- l.SyncThrough(context.Background(), 5) }()
		<-requestc
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, wal.ErrClosed) {
			t.Fatalf("SyncThrough = %v, want ErrClosed", err)
		}
	})
	t.Run("after", func(t *testing.T) {
		// Close's final fsync covers what was written; nothing more
		// will be.
		fsys, l, _ := startSyncLog(t, wal.FsyncEverySec)
		submitAll(t, l, records(1, 2))
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		syncs := fsys.Count(faultfs.OpSync)
		if err := l.SyncThrough(context.Background(), 2); err != nil {
			t.Fatalf("SyncThrough(2) after Close = %v, want nil", err)
		}
		if err := l.SyncThrough(context.Background(), 3); !errors.Is(err, wal.ErrClosed) {
			t.Fatalf("SyncThrough(3) after Close = %v, want ErrClosed", err)
		}
		if fsys.Count(faultfs.OpSync) != syncs {
			t.Fatal("SyncThrough fsynced a closed log")
		}
	})
	t.Run("never started", func(t *testing.T) {
		fsys := faultfs.New(1)
		opts := memOpts(fsys)
		writeLog(t, opts, records(1, 2))
		l := mustOpen(t, opts)
		if err := l.SyncThrough(context.Background(), 2); err != nil {
			t.Fatalf("SyncThrough(2) before Start = %v, want nil: Open found it fsynced", err)
		}
		l.Close()
		if err := l.SyncThrough(context.Background(), 3); !errors.Is(err, wal.ErrClosed) {
			t.Fatalf("SyncThrough(3) on a log closed before Start = %v, want ErrClosed", err)
		}
	})
}

func TestSyncThroughContext(t *testing.T) {
	t.Run("queued", func(t *testing.T) {
		_, l, requestc := startSyncLog(t, wal.FsyncEverySec)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- l.SyncThrough(ctx, 5) }()
		<-requestc
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("SyncThrough = %v, want context.Canceled", err)
		}
		// The writer still holds the abandoned request; it must not
		// block Close.
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("before start", func(t *testing.T) {
		// No writer takes the request: only ctx ends the wait.
		l := mustOpen(t, memOpts(faultfs.New(1)))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := l.SyncThrough(ctx, 1); !errors.Is(err, context.Canceled) {
			t.Fatalf("SyncThrough = %v, want context.Canceled", err)
		}
	})
}
