package wal_test

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"kvstore/wal"
	"kvstore/wal/faultfs"
)

func TestParseFsyncPolicy(t *testing.T) {
	tests := []struct {
		in      string
		want    wal.FsyncPolicy
		wantErr bool
	}{
		{"always", wal.FsyncAlways, false},
		{"everysec", wal.FsyncEverySec, false},
		{"no", wal.FsyncNo, false},
		{"EverySec", wal.FsyncEverySec, false},
		{" no ", wal.FsyncNo, false},
		{"", 0, true},
		{"sometimes", 0, true},
	}
	for _, tt := range tests {
		got, err := wal.ParseFsyncPolicy(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseFsyncPolicy(%q) = %v, %v", tt.in, got, err)
		}
		if err == nil && got.String() != strings.ToLower(strings.TrimSpace(tt.in)) {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
	var p wal.FsyncPolicy
	if err := p.UnmarshalText([]byte("everysec")); err != nil || p != wal.FsyncEverySec {
		t.Errorf("UnmarshalText = %v, %v", p, err)
	}
	if _, err := wal.FsyncPolicy(7).MarshalText(); err == nil {
		t.Error("MarshalText accepted an unknown policy")
	}
	if wal.FsyncPolicy(0) != wal.FsyncAlways {
		t.Error("the zero value is not FsyncAlways")
	}
}

// gateFirstSync makes the first fsync of a segment block until the
// returned release function is called; entered is closed once the writer
// is inside it. While it blocks, everything submitted queues up.
func gateFirstSync(fsys *faultfs.FS) (entered <-chan struct{}, release func()) {
	in := make(chan struct{})
	gate := make(chan struct{})
	var first atomic.Bool
	fsys.SetHook(func(op faultfs.Op, name string) error {
		if op == faultfs.OpSync && filepath.Ext(name) == ".wal" && first.CompareAndSwap(false, true) {
			close(in)
			<-gate
		}
		return nil
	})
	var once sync.Once
	return in, func() { once.Do(func() { close(gate) }) }
}

func TestGroupCommit(t *testing.T) {
	const submitters, perSubmitter = 32, 8
	fsys := faultfs.New(1)
	entered, release := gateFirstSync(fsys)
	defer release()
	l := mustOpen(t, memOpts(fsys))
	l.Start(1)

	// The actor assigns seqs and submits in seq order; the mutex plays
	// that role for the concurrent submitters.
	var (
		mu      sync.Mutex
		seq     uint64
		order   releaseOrder
		waiters []*waiter
		wg      sync.WaitGroup
	)
	submit := func() {
		mu.Lock()
		defer mu.Unlock()
		seq++
		w := newWaiter()
		w.id, w.order = int(seq), &order
		waiters = append(waiters, w)
		l.Submit(wal.Batch{Records: []wal.Record{setRec(seq, fmt.Sprint("k", seq), "v")}, Waiters: []wal.Waiter{w}})
	}
	submit()
	<-entered // the writer is in the first fsync; everything else queues
	for range submitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perSubmitter {
				submit()
			}
		}()
	}
	wg.Wait()
	if waiters[1].released() {
		t.Fatal("a waiter was released before its record's fsync")
	}
	release()
	for _, w := range waiters {
		if err := w.wait(); err != nil {
			t.Fatalf("waiter %d: %v", w.id, err)
		}
	}

	total := uint64(submitters*perSubmitter + 1)
	st := l.Stats()
	if st.Records != total || st.Batches != total {
		t.Fatalf("Stats = %+v, want %d records and batches", st, total)
	}
	// One group was in flight, everything else formed the next one.
	if st.Syncs >= st.Records || st.Syncs != 2 || st.Writes != 2 {
		t.Fatalf("Stats = %+v: want 2 writes and 2 syncs for %d records", st, total)
	}
	if !slices.IsSorted(order.ids) || len(order.ids) != int(total) {
		t.Fatalf("waiters released out of order: %v", order.ids)
	}
	if got := l.DurableSeq(); got != total {
		t.Fatalf("DurableSeq = %d, want %d", got, total)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := replayAll(t, memOpts(fsys), 0); len(got) != int(total) {
		t.Fatalf("replayed %d records, want %d", len(got), total)
	}
}

// A read barrier (a batch without records) must not be released before
// the records submitted ahead of it are durable.
func TestBarrierWaitsForEarlierRecords(t *testing.T) {
	fsys := faultfs.New(1)
	entered, release := gateFirstSync(fsys)
	defer release()
	l := mustOpen(t, memOpts(fsys))
	l.Start(1)

	w1 := newWaiter()
	l.Submit(wal.Batch{Records: []wal.Record{setRec(1, "a", "1")}, Waiters: []wal.Waiter{w1}})
	<-entered
	barrier := newWaiter()
	var durableAtRelease uint64
	l.Submit(wal.Batch{Waiters: []wal.Waiter{waiterFunc(func(err error) {
		durableAtRelease = l.DurableSeq()
		barrier.Complete(err)
	})}})
	if barrier.released() {
		t.Fatal("barrier released while the record before it was being fsynced")
	}
	release()
	if err := barrier.wait(); err != nil {
		t.Fatal(err)
	}
	if durableAtRelease < 1 {
		t.Fatalf("barrier released at DurableSeq %d, want >= 1", durableAtRelease)
	}
	if err := w1.wait(); err != nil {
		t.Fatal(err)
	}
	// A barrier alone is released without any I/O.
	syncs := fsys.Count(faultfs.OpSync)
	w := newWaiter()
	l.Submit(wal.Batch{Waiters: []wal.Waiter{w}})
	if err := w.wait(); err != nil {
		t.Fatal(err)
	}
	if fsys.Count(faultfs.OpSync) != syncs {
		t.Fatal("a barrier alone caused an fsync")
	}
}

type waiterFunc func(error)

func (f waiterFunc) Complete(err error) { f(err) }

func TestCloseWritesPendingBatches(t *testing.T) {
	for _, policy := range []wal.FsyncPolicy{wal.FsyncAlways, wal.FsyncEverySec, wal.FsyncNo} {
		t.Run(policy.String(), func(t *testing.T) {
			fsys := faultfs.New(1)
			opts := memOpts(fsys)
			opts.Fsync = policy
			opts.Clock = clock.NewMock()
			l := mustOpen(t, opts)
			// Submitted before Start: queued until the writer runs.
			var ws []*waiter
			recs := records(1, 50)
			for _, r := range recs {
				w := newWaiter()
				ws = append(ws, w)
				l.Submit(wal.Batch{Records: []wal.Record{r}, Waiters: []wal.Waiter{w}})
			}
			l.Start(1)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			for i, w := range ws {
				if !w.released() || w.err != nil {
					t.Fatalf("waiter %d after Close: released=%t err=%v", i, w.released(), w.err)
				}
			}
			// Close fsynced: everything survives a power cut right after.
			equalRecords(t, replayAll(t, memOpts(fsys.Crash(faultfs.DropUnsynced)), 0), recs)
		})
	}
}

func TestClose(t *testing.T) {
	t.Run("idempotent", func(t *testing.T) {
		l := mustOpen(t, memOpts(faultfs.New(1)))
		l.Start(1)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		l := mustOpen(t, memOpts(faultfs.New(1)))
		l.Start(1)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if err := l.Close(); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	})
	t.Run("submit after close", func(t *testing.T) {
		l := mustOpen(t, memOpts(faultfs.New(1)))
		l.Start(1)
		l.Close()
		w := newWaiter()
		l.Submit(wal.Batch{Records: []wal.Record{setRec(1, "k", "v")}, Waiters: []wal.Waiter{w}})
		if !w.released() || !errors.Is(w.err, wal.ErrClosed) {
			t.Fatalf("released=%t err=%v, want ErrClosed at once", w.released(), w.err)
		}
	})
	t.Run("before start", func(t *testing.T) {
		l := mustOpen(t, memOpts(faultfs.New(1)))
		w := newWaiter()
		l.Submit(wal.Batch{Records: []wal.Record{setRec(1, "k", "v")}, Waiters: []wal.Waiter{w}})
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if !w.released() || !errors.Is(w.err, wal.ErrClosed) {
			t.Fatalf("released=%t err=%v, want ErrClosed", w.released(), w.err)
		}
		l.Start(1) // no-op after Close
	})
	t.Run("start twice panics", func(t *testing.T) {
		l := mustOpen(t, memOpts(faultfs.New(1)))
		l.Start(1)
		defer func() {
			if recover() == nil {
				t.Fatal("second Start did not panic")
			}
		}()
		l.Start(1)
	})
}

func TestReplayAfterStartFails(t *testing.T) {
	l := mustOpen(t, memOpts(faultfs.New(1)))
	l.Start(1)
	if _, err := l.Replay(0, func(wal.Record) error { return nil }); err == nil {
		t.Fatal("Replay after Start succeeded")
	}
}

// submitOne submits one batch and returns its waiter.
func submitOne(l *wal.Log, recs ...wal.Record) *waiter {
	w := newWaiter()
	l.Submit(wal.Batch{Records: recs, Waiters: []wal.Waiter{w}})
	return w
}

func TestWriteFailures(t *testing.T) {
	tests := []struct {
		name    string
		segSize int64
		arm     func(*faultfs.FS)
		wantErr error
		wantMsg string
	}{
		{"fsync fails", 0, func(f *faultfs.FS) { f.FailNth(faultfs.OpSync, 1, syscall.EIO) },
			syscall.EIO, "sync " + segPath(1)},
		{"write fails after a short write", 0, func(f *faultfs.FS) { f.FailNth(faultfs.OpWrite, 1, syscall.EIO) },
			syscall.EIO, "write " + segPath(1)},
		{"disk full", 0, func(f *faultfs.FS) { f.LimitSpace(20) },
			syscall.ENOSPC, "write " + segPath(1)},
		{"creating the next segment fails", 1, func(f *faultfs.FS) { f.FailNth(faultfs.OpOpen, 1, syscall.EACCES) },
			syscall.EACCES, "create " + segPath(2)},
		{"fsyncing the directory fails", 1, func(f *faultfs.FS) { f.FailNth(faultfs.OpSyncDir, 1, syscall.EIO) },
			syscall.EIO, "sync dir " + testDir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := faultfs.New(1)
			var logs logBuffer
			opts := memOpts(fsys)
			opts.SegmentBytes = tt.segSize
			opts.Logger = logs.logger()
			l := mustOpen(t, opts)
			l.Start(1)
			if err := submitOne(l, setRec(1, "a", "1")).wait(); err != nil {
				t.Fatal(err)
			}

			tt.arm(fsys)
			recs := records(2, 5)
			var ws []*waiter
			for _, r := range recs {
				ws = append(ws, submitOne(l, r))
			}
			for i, w := range ws {
				err := w.wait()
				if !errors.Is(err, wal.ErrFailed) || !errors.Is(err, tt.wantErr) {
					t.Fatalf("waiter %d: %v; want ErrFailed and %v", i, err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Fatalf("error %q does not say %q", err, tt.wantMsg)
				}
			}
			sticky := l.Err()
			if !errors.Is(sticky, wal.ErrFailed) {
				t.Fatalf("Err() = %v", sticky)
			}
			if got := l.DurableSeq(); got != 1 {
				t.Fatalf("DurableSeq = %d after the failure, want 1", got)
			}

			// Later batches fail at once; nothing is written or fsynced
			// again, not even by Close.
			writes, syncs := fsys.Count(faultfs.OpWrite), fsys.Count(faultfs.OpSync)
			w := submitOne(l, setRec(7, "b", "2"))
			if !w.released() || !errors.Is(w.err, wal.ErrFailed) {
				t.Fatalf("Submit after failure: released=%t err=%v", w.released(), w.err)
			}
			barrier := newWaiter()
			l.Submit(wal.Batch{Waiters: []wal.Waiter{barrier}})
			if !barrier.released() || !errors.Is(barrier.err, wal.ErrFailed) {
				t.Fatal("a barrier after failure was not failed at once")
			}
			if err := l.Close(); !errors.Is(err, wal.ErrFailed) {
				t.Fatalf("Close = %v, want ErrFailed", err)
			}
			if fsys.Count(faultfs.OpWrite) != writes || fsys.Count(faultfs.OpSync) != syncs {
				t.Fatal("the log wrote or fsynced after failing")
			}
			if l.Err() != sticky {
				t.Fatal("Err() changed")
			}
			if n := strings.Count(logs.String(), "level=ERROR"); n != 1 {
				t.Fatalf("failure logged %d times:\n%s", n, logs.String())
			}

			// A restart recovers a prefix with at least the acknowledged
			// record.
			got := replayAll(t, memOpts(fsys), 0)
			all := append([]wal.Record{setRec(1, "a", "1")}, recs...)
			if len(got) < 1 || !slicesEqualPrefix(got, all) {
				t.Fatalf("after restart: %s", summary(got))
			}
		})
	}
}

func slicesEqualPrefix(got, all []wal.Record) bool {
	return len(got) <= len(all) && slices.Equal(got, all[:len(got)])
}

// After a failed fsync a later one may succeed without the data: the
// writer must not have acknowledged anything from the failed group, even
// when the data is then lost in a crash.
func TestFailedFsyncIsNotRetried(t *testing.T) {
	fsys := faultfs.New(1)
	l := mustOpen(t, memOpts(fsys))
	l.Start(1)
	if err := submitOne(l, setRec(1, "a", "1")).wait(); err != nil {
		t.Fatal(err)
	}
	fsys.FailNth(faultfs.OpSync, 1, syscall.EIO)
	if err := submitOne(l, setRec(2, "b", "2")).wait(); err == nil {
		t.Fatal("record 2 acknowledged despite the failed fsync")
	}
	syncs := fsys.Count(faultfs.OpSync)
	l.Close()
	if fsys.Count(faultfs.OpSync) != syncs {
		t.Fatal("fsync retried")
	}
	got := replayAll(t, memOpts(fsys.Crash(faultfs.DropUnsynced)), 0)
	equalRecords(t, got, []wal.Record{setRec(1, "a", "1")})
}

func TestInvalidRecordsFailTheLog(t *testing.T) {
	tests := []struct {
		name string
		rec  wal.Record
		want string
	}{
		{"wrong seq", setRec(3, "k", "v"), "seq 3, want 2"},
		{"unknown kind", wal.Record{Seq: 2, Kind: 9, Key: "k"}, "unknown kind"},
		{"too large", wal.Record{Seq: 2, Kind: wal.KindSet, Key: "k", Value: strings.Repeat("v", wal.MaxRecordBytes)}, "over the"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := mustOpen(t, memOpts(faultfs.New(1)))
			l.Start(1)
			if err := submitOne(l, setRec(1, "a", "1")).wait(); err != nil {
				t.Fatal(err)
			}
			err := submitOne(l, tt.rec).wait()
			if !errors.Is(err, wal.ErrFailed) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want ErrFailed saying %q", err, tt.want)
			}
			if l.Err() == nil {
				t.Fatal("log not failed")
			}
		})
	}
}

// startEverySec starts a FsyncEverySec log on a mock clock; syncedc
// receives after each fsync, the hand-off for the ticks.
func startEverySec(t *testing.T) (*faultfs.FS, *clock.Mock, *wal.Log, chan struct{}) {
	t.Helper()
	fsys := faultfs.New(1)
	mock := clock.NewMock()
	opts := memOpts(fsys)
	opts.Fsync = wal.FsyncEverySec
	opts.Clock = mock
	l := mustOpen(t, opts)
	syncedc := make(chan struct{}, 1)
	wal.SetSyncHook(l, func() { syncedc <- struct{}{} })
	l.Start(1)
	return fsys, mock, l, syncedc
}

func TestEverySec(t *testing.T) {
	fsys, mock, l, syncedc := startEverySec(t)

	// Released on write, before any fsync.
	if err := submitOne(l, setRec(1, "a", "1")).wait(); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Syncs != 0 || st.Writes != 1 {
		t.Fatalf("Stats = %+v, want a write and no sync", st)
	}
	if got := l.DurableSeq(); got != 1 {
		t.Fatalf("DurableSeq = %d, want 1 (advances on write under everysec)", got)
	}

	mock.Add(time.Second)
	<-syncedc
	if st := l.Stats(); st.Syncs != 1 {
		t.Fatalf("Stats = %+v after a tick, want 1 sync", st)
	}

	// A record written after the last tick is acknowledged but lost in a
	// power cut: the documented window.
	if err := submitOne(l, setRec(2, "b", "2")).wait(); err != nil {
		t.Fatal(err)
	}
	crashed := fsys.Crash(faultfs.DropUnsynced)
	l.Close()
	equalRecords(t, replayAll(t, memOpts(crashed), 0), []wal.Record{setRec(1, "a", "1")})
}

func TestEverySecSyncsEachSecondWithWrites(t *testing.T) {
	_, mock, l, syncedc := startEverySec(t)
	for i := uint64(1); i <= 3; i++ {
		if err := submitOne(l, setRec(i, "k", "v")).wait(); err != nil {
			t.Fatal(err)
		}
		mock.Add(time.Second)
		<-syncedc
		if st := l.Stats(); st.Syncs != i {
			t.Fatalf("after %d ticks: Stats = %+v", i, st)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Syncs != 3 {
		t.Fatalf("Close fsynced with nothing pending: %+v", st)
	}
}

func TestFsyncNo(t *testing.T) {
	fsys := faultfs.New(1)
	opts := memOpts(fsys)
	opts.Fsync = wal.FsyncNo
	l := mustOpen(t, opts)
	l.Start(1)
	recs := records(1, 10)
	for _, r := range recs {
		if err := submitOne(l, r).wait(); err != nil {
			t.Fatal(err)
		}
	}
	if st := l.Stats(); st.Syncs != 0 || l.DurableSeq() != 10 {
		t.Fatalf("Stats = %+v, DurableSeq = %d; want no sync and 10", st, l.DurableSeq())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Syncs != 1 {
		t.Fatalf("Close: Stats = %+v, want 1 sync", st)
	}
	equalRecords(t, replayAll(t, memOpts(fsys.Crash(faultfs.DropUnsynced)), 0), recs)
}

// segmentsOf returns base and last seq of each segment in the log.
func segmentsOf(t *testing.T, fsys *faultfs.FS) [][2]uint64 {
	t.Helper()
	var out [][2]uint64
	for _, name := range segmentFiles(t, fsys, testDir) {
		data, err := fsys.ReadFile(filepath.Join(testDir, name))
		if err != nil {
			t.Fatal(err)
		}
		var first, last uint64
		// The active segment ends in preallocated zeros.
		for len(data) > 0 && !allZero(data) {
			r, n, err := wal.DecodeRecord(data)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if first == 0 {
				first = r.Seq
			}
			last = r.Seq
			data = data[n:]
		}
		if name != wal.SegmentName(first) {
			t.Fatalf("segment %s starts with seq %d", name, first)
		}
		out = append(out, [2]uint64{first, last})
	}
	return out
}

func TestSegmentRollAndCompact(t *testing.T) {
	const n = 40
	setup := func(t *testing.T) (*faultfs.FS, *wal.Log, [][2]uint64) {
		fsys := faultfs.New(1)
		opts := memOpts(fsys)
		opts.SegmentBytes = 150
		writeLog(t, opts, records(1, n/2))
		l := mustOpen(t, opts)
		last, err := l.Replay(0, func(wal.Record) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		l.Start(last + 1)
		for _, r := range records(last+1, n/2) {
			if err := submitOne(l, r).wait(); err != nil {
				t.Fatal(err)
			}
		}
		segs := segmentsOf(t, fsys)
		if len(segs) < 5 {
			t.Fatalf("only %d segments", len(segs))
		}
		for i := 1; i < len(segs); i++ {
			if segs[i][0] != segs[i-1][1]+1 {
				t.Fatalf("segments %v do not continue each other", segs)
			}
		}
		return fsys, l, segs
	}

	_, _, segs := setup(t)
	// Compact through: the end of a segment, the middle of one, the
	// middle of the active one, and far beyond.
	for _, through := range []uint64{0, segs[1][1], segs[2][1] + 1, segs[len(segs)-1][0] + 1, 1000} {
		t.Run(fmt.Sprint(through), func(t *testing.T) {
			fsys, l, segs := setup(t)
			if err := l.Compact(through); err != nil {
				t.Fatal(err)
			}
			var want [][2]uint64
			for i, s := range segs {
				if i == len(segs)-1 || s[1] > through {
					want = append(want, s)
				}
			}
			if got := segmentsOf(t, fsys); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("after Compact(%d): segments %v, want %v", through, got, want)
			}
			// The log keeps working and replays from the snapshot on.
			if err := submitOne(l, setRec(n+1, "k", "v")).wait(); err != nil {
				t.Fatal(err)
			}
			l.Close()
			now := segmentsOf(t, fsys)
			after := min(through, n+1)
			got := replayAll(t, memOpts(fsys), after)
			if len(got) != int(n+1-after) {
				t.Fatalf("Replay(%d) after Compact gave %s", after, summary(got))
			}
			// The deletion is durable.
			if got := segmentsOf(t, fsys.Crash(faultfs.DropUnsynced)); fmt.Sprint(got) != fmt.Sprint(now) {
				t.Fatalf("after a crash: segments %v, want %v", got, now)
			}
		})
	}
}

func TestCompactWhileWriting(t *testing.T) {
	fsys := faultfs.New(1)
	opts := memOpts(fsys)
	opts.SegmentBytes = 100
	l := mustOpen(t, opts)
	l.Start(1)
	const n = 300
	done := make(chan struct{})
	stopc := make(chan struct{})
	defer func() {
		close(stopc)
		<-done
	}()
	var released atomic.Uint64
	go func() {
		defer close(done)
		for released.Load() < n-50 {
			select {
			case <-stopc:
				return
			default:
			}
			through := l.DurableSeq()
			if through > 10 {
				through -= 10
			}
			if err := l.Compact(through); err != nil {
				t.Error(err)
				return
			}
			released.Store(through)
		}
	}()
	for _, r := range records(1, n) {
		if err := submitOne(l, r).wait(); err != nil {
			t.Fatal(err)
		}
	}
	<-done // DurableSeq is n now, so the releaser reaches n-50 and stops
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	through := released.Load()
	got := replayAll(t, opts, through)
	equalRecords(t, got, records(1, n)[through:])
}

func TestCompactFailure(t *testing.T) {
	fsys := faultfs.New(1)
	opts := memOpts(fsys)
	opts.SegmentBytes = 1
	writeLog(t, opts, records(1, 4)) // one segment per record
	l := mustOpen(t, opts)
	fsys.FailNth(faultfs.OpRemove, 2, syscall.EACCES)
	if err := l.Compact(3); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("Compact = %v, want EACCES", err)
	}
	if got := len(segmentFiles(t, fsys, testDir)); got != 3 {
		t.Fatalf("%d segments left, want 3", got)
	}
	// A later call finishes the job.
	if err := l.Compact(3); err != nil {
		t.Fatal(err)
	}
	if got := segmentFiles(t, fsys, testDir); len(got) != 1 || got[0] != wal.SegmentName(4) {
		t.Fatalf("segments %v", got)
	}
}

func TestOpenOptions(t *testing.T) {
	for _, opts := range []wal.Options{
		{},
		{Dir: testDir, Fsync: 9},
		{Dir: testDir, SegmentBytes: -1},
	} {
		opts.FS = faultfs.New(1)
		if _, err := wal.Open(opts); err == nil {
			t.Errorf("Open(%+v) succeeded", opts)
		}
	}
	// The directory is created and its creation made durable.
	fsys := faultfs.New(1)
	writeLog(t, wal.Options{Dir: "/a/b/wal", FS: fsys}, records(1, 1))
	if _, err := fsys.Crash(faultfs.DropUnsynced).ReadDir("/a/b/wal"); err != nil {
		t.Fatal(err)
	}
}

// The writer goroutine must end with Close even when it never wrote.
func TestNoGoroutineLeak(t *testing.T) {
	for _, policy := range []wal.FsyncPolicy{wal.FsyncAlways, wal.FsyncEverySec, wal.FsyncNo} {
		opts := memOpts(faultfs.New(1))
		opts.Fsync = policy
		l, err := wal.Open(opts)
		if err != nil {
			t.Fatal(err)
		}
		l.Start(1)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	_ = io.Discard
}

// TestObserveHooks: one group per batch here, each fsynced once under
// FsyncAlways; the hooks see every group and every fsync before the
// waiters are released.
func TestObserveHooks(t *testing.T) {
	var groups []int
	var syncs int
	l := mustOpen(t, wal.Options{
		Dir:          t.TempDir(),
		ObserveGroup: func(records int) { groups = append(groups, records) },
		ObserveSync: func(d time.Duration) {
			if d < 0 {
				t.Errorf("fsync took %v", d)
			}
			syncs++
		},
	})
	l.Start(1)
	recs := records(1, 5)
	for _, b := range [][]wal.Record{recs[:3], recs[3:]} {
		w := newWaiter()
		l.Submit(wal.Batch{Records: b, Waiters: []wal.Waiter{w}})
		if err := w.wait(); err != nil {
			t.Fatal(err)
		}
	}
	if len(groups) != 2 || groups[0] != 3 || groups[1] != 2 {
		t.Errorf("groups = %v, want [3 2]", groups)
	}
	if st := l.Stats(); uint64(syncs) != st.Syncs || syncs < 2 {
		t.Errorf("ObserveSync called %d times, Stats.Syncs = %d", syncs, st.Syncs)
	}
}

// TestPreallocation: the writer zero-fills the active segment ahead of its
// records, so appends do not change the file's size (and their fdatasync
// need not write the inode); it trims a segment it finishes; and a
// restarted log appends over the zeros it finds.
func TestPreallocation(t *testing.T) {
	const chunk = 4096
	fsys := faultfs.New(1)
	opts := memOpts(fsys)
	opts.PreallocBytes = chunk
	opts.SegmentBytes = 3 * chunk
	size := func(base uint64) int {
		t.Helper()
		b, err := fsys.ReadFile(segPath(base))
		if err != nil {
			t.Fatal(err)
		}
		return len(b)
	}

	recs := records(1, 20)
	writeLog(t, opts, recs[:10])
	if got := size(1); got != chunk {
		t.Fatalf("segment is %d bytes after small appends, want one chunk of %d", got, chunk)
	}
	// A restart appends over the zeros, in the same segment, and the
	// file keeps its size.
	writeLog(t, opts, recs[10:])
	if got := size(1); got != chunk {
		t.Fatalf("segment is %d bytes after appends on restart, want %d", got, chunk)
	}
	if files := segmentFiles(t, fsys, testDir); len(files) != 1 {
		t.Fatalf("appends after a restart went to a new segment: %v", files)
	}
	equalRecords(t, replayAll(t, opts, 0), recs)

	// Records past the first chunk extend the zeros by another chunk; a
	// group of a chunk or more is written as it is, without zeros.
	big := wal.Record{Seq: 21, Kind: wal.KindSet, Key: "big", Value: strings.Repeat("v", chunk)}
	writeLog(t, opts, []wal.Record{big})
	dataEnd := len(encode(recs...)) + len(encode(big))
	if got := size(1); got != dataEnd {
		t.Fatalf("segment is %d bytes after a group of a chunk, want the %d of its records", got, dataEnd)
	}
	more := records(22, 5)
	writeLog(t, opts, more)
	if got, want := size(1), (dataEnd+len(encode(more...)))/chunk*chunk+chunk; got != want {
		t.Fatalf("segment is %d bytes after small appends past the big one, want %d", got, want)
	}

	// Past SegmentBytes the writer finishes the segment: its zeros are
	// cut off before the next one is created.
	huge := wal.Record{Seq: 27, Kind: wal.KindSet, Key: "huge", Value: strings.Repeat("h", 2*chunk)}
	writeLog(t, opts, []wal.Record{huge, setRec(28, "after", "roll")})
	if files := segmentFiles(t, fsys, testDir); len(files) != 2 {
		t.Fatalf("segments %v, want two", files)
	}
	want := append(append(append(bytes2recs(recs), big), more...), huge, setRec(28, "after", "roll"))
	if got, n := size(1), len(encode(want[:27]...)); got != n {
		t.Fatalf("finished segment is %d bytes, want its %d bytes of records", got, n)
	}
	if got := size(28); got != chunk {
		t.Fatalf("new segment is %d bytes, want one chunk", got)
	}
	equalRecords(t, replayAll(t, opts, 0), want)
}

func TestPreallocationOff(t *testing.T) {
	fsys := faultfs.New(1)
	opts := memOpts(fsys)
	opts.PreallocBytes = -1
	recs := records(1, 10)
	writeLog(t, opts, recs)
	b, err := fsys.ReadFile(segPath(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != len(encode(recs...)) {
		t.Fatalf("segment is %d bytes, want exactly its %d bytes of records", len(b), len(encode(recs...)))
	}
}
