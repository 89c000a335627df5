package wal_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"

	"kvstore/wal"
	"kvstore/wal/faultfs"
)

// testDir is where tests on faultfs keep the log; its parent plays the
// server's data directory.
const testDir = "/data/wal"

// waiter records its release. Releasing twice fails the test that waits.
type waiter struct {
	done  chan struct{}
	err   error
	calls atomic.Int32
	// order, if set, receives the waiter's id when released.
	order *releaseOrder
	id    int
}

func newWaiter() *waiter { return &waiter{done: make(chan struct{})} }

func (w *waiter) Complete(err error) {
	if w.calls.Add(1) != 1 {
		panic(fmt.Sprintf("waiter %d released twice (second with %v)", w.id, err))
	}
	w.err = err
	if w.order != nil {
		w.order.add(w.id)
	}
	close(w.done)
}

// wait blocks until the waiter is released and returns its error.
func (w *waiter) wait() error {
	<-w.done
	return w.err
}

// released reports whether Complete has been called, without blocking.
func (w *waiter) released() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

type releaseOrder struct {
	mu  sync.Mutex
	ids []int
}

func (o *releaseOrder) add(id int) {
	o.mu.Lock()
	o.ids = append(o.ids, id)
	o.mu.Unlock()
}

// logBuffer is a slog handler target that tests can read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// mustOpen opens a log and closes it when the test ends.
func mustOpen(tb testing.TB, opts wal.Options) *wal.Log {
	tb.Helper()
	l, err := wal.Open(opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}

func setRec(seq uint64, key, value string) wal.Record {
	return wal.Record{Seq: seq, Kind: wal.KindSet, Key: key, Value: value}
}

// records returns n varied records starting at seq first.
func records(first uint64, n int) []wal.Record {
	out := make([]wal.Record, n)
	for i := range out {
		seq := first + uint64(i)
		switch i % 3 {
		case 0:
			out[i] = wal.Record{Seq: seq, Kind: wal.KindSet, Key: fmt.Sprintf("key-%d", seq), Value: fmt.Sprintf("value-%d-%s", seq, bytes.Repeat([]byte("x"), int(seq%7)))}
		case 1:
			out[i] = wal.Record{Seq: seq, Kind: wal.KindSet, Key: fmt.Sprintf("k%d", seq), Value: "", Deadline: int64(seq) * 1e9}
		case 2:
			out[i] = wal.Record{Seq: seq, Kind: wal.KindDelete, Key: fmt.Sprintf("key-%d", seq-2)}
		}
	}
	return out
}

// writeLog opens a log in opts.Dir, appends recs one batch (and group)
// each, and closes the log.
func writeLog(tb testing.TB, opts wal.Options, recs []wal.Record) {
	tb.Helper()
	l, err := wal.Open(opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	// Replay from just before recs, as the server does from a snapshot.
	var after uint64
	if len(recs) > 0 {
		after = recs[0].Seq - 1
	}
	last, err := l.Replay(after, func(wal.Record) error { return nil })
	if err != nil {
		tb.Fatalf("Replay: %v", err)
	}
	l.Start(last + 1)
	// One group per record, so segment sizes are deterministic.
	for _, r := range recs {
		w := newWaiter()
		l.Submit(wal.Batch{Records: []wal.Record{r}, Waiters: []wal.Waiter{w}})
		if err := w.wait(); err != nil {
			tb.Fatalf("record %d: %v", r.Seq, err)
		}
	}
	if err := l.Close(); err != nil {
		tb.Fatalf("Close: %v", err)
	}
}

// replayAll opens the log and returns every record after after.
func replayAll(tb testing.TB, opts wal.Options, after uint64) []wal.Record {
	tb.Helper()
	l, err := wal.Open(opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	defer l.Close()
	var got []wal.Record
	last, err := l.Replay(after, func(r wal.Record) error {
		got = append(got, r)
		return nil
	})
	if err != nil {
		tb.Fatalf("Replay: %v", err)
	}
	if len(got) > 0 && last != got[len(got)-1].Seq {
		tb.Fatalf("Replay returned last %d, but the last record was %d", last, got[len(got)-1].Seq)
	}
	return got
}

func equalRecords(tb testing.TB, got, want []wal.Record) {
	tb.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		tb.Fatalf("records differ:\n got %d: %s\nwant %d: %s", len(got), summary(got), len(want), summary(want))
	}
}

func summary(rs []wal.Record) string {
	if len(rs) == 0 {
		return "[]"
	}
	return fmt.Sprintf("[%d..%d] first=%+v last=%+v", rs[0].Seq, rs[len(rs)-1].Seq, rs[0], rs[len(rs)-1])
}

func encode(recs ...wal.Record) []byte {
	var b []byte
	for _, r := range recs {
		b = wal.AppendRecord(b, r)
	}
	return b
}

func segPath(base uint64) string { return filepath.Join(testDir, wal.SegmentName(base)) }

// segmentFiles returns the names of the segment files in dir.
func segmentFiles(tb testing.TB, fsys wal.FS, dir string) []string {
	tb.Helper()
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		tb.Fatalf("ReadDir: %v", err)
	}
	var names []string
	for _, e := range entries {
		if filepath.Ext(e.Name()) == ".wal" {
			names = append(names, e.Name())
		}
	}
	return names
}

// memOpts preallocates in small steps: the same code paths as the 1 MiB
// default, taken far more often, without megabytes of zeros in memory.
func memOpts(fsys *faultfs.FS) wal.Options {
	return wal.Options{Dir: testDir, FS: fsys, PreallocBytes: testPrealloc}
}

const testPrealloc = 256

// allZero reports whether b holds only zero bytes: the writer's
// preallocated space.
func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
