package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"kvstore/actor"
	kvstorepb "kvstore/proto"
	"kvstore/rpc"
	"kvstore/snap"
	"kvstore/wal"
	"kvstore/wal/faultfs"
)

// These tests run recovery through Server.Run on a data dir held in a
// faultfs (Config.fs): power loss, damaged snapshots, read errors and a
// cancelled context. The LOCK file alone is on the real disk, in a
// temporary directory whose path the faultfs mirrors.

// recoveryConfig is a server on a free loopback port whose data is on
// fsys, with fsync=always, a mock clock, no periodic snapshots and 1 KiB
// segments, so that a few dozen records span several and a snapshot lets
// the log delete some. Logs go to logs (nil: discarded).
func recoveryConfig(dir string, fsys wal.FS, mock *clock.Mock, logs *logSink) Config {
	c := DefaultConfig()
	c.Listen = "127.0.0.1:0"
	c.RESPListen = "127.0.0.1:0"
	c.HTTPListen = ""
	c.DataDir = dir
	c.Fsync = wal.FsyncAlways
	c.WALSegmentBytes = 1 << 10
	c.WALPreallocBytes = 4 << 10
	c.SnapshotInterval = 0
	c.RequestTimeout = 0
	c.GCHeapFloor = 0 // process-wide; TestGCFloor owns it
	c.Clock = mock
	c.Logger = slog.New(slog.DiscardHandler)
	if logs != nil {
		c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	}
	c.fs = fsys
	return c
}

func newMock() *clock.Mock {
	m := clock.NewMock()
	m.Set(time.Unix(1_700_000_000, 0))
	return m
}

// logSink collects a server's JSON log lines.
type logSink struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// find returns the first line with message msg, nil if there is none.
func (l *logSink) find(t *testing.T, msg string) map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for line := range strings.Lines(l.b.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == msg {
			return m
		}
	}
	return nil
}

// recovered returns the fields of the "recovered" log line that report
// where recovery started and ended.
func (l *logSink) recovered(t *testing.T) (snapshotSeq, seq, keys uint64) {
	t.Helper()
	m := l.find(t, "recovered")
	if m == nil {
		t.Fatal(`no "recovered" log line`)
	}
	num := func(k string) uint64 {
		v, ok := m[k].(float64)
		if !ok {
			t.Fatalf("recovered %s = %v", k, m[k])
		}
		return uint64(v)
	}
	return num("snapshot_seq"), num("seq"), num("keys")
}

// testRun is a server started by startRun, with a gRPC client.
type testRun struct {
	t    testing.TB
	s    *Server
	errc chan error
	conn *grpc.ClientConn
	kv   kvstorepb.KVStoreClient
}

// startRun runs a server on cfg until it is ready; a Run that fails first
// fails the test.
func startRun(t testing.TB, cfg Config) *testRun {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Run(context.Background()) }()
	select {
	case <-s.Ready():
	case err := <-errc:
		t.Fatalf("Run before ready: %v", err)
	}
	conn, err := grpc.NewClient(s.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		s.Close()
		<-errc
		t.Fatal(err)
	}
	r := &testRun{t: t, s: s, errc: errc, conn: conn, kv: kvstorepb.NewKVStoreClient(conn)}
	t.Cleanup(func() { r.stop() })
	return r
}

// runFailing runs a server on cfg that must fail to start and returns
// Run's error. One that becomes ready instead is shut down and fails the
// test.
func runFailing(t *testing.T, cfg Config) error {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Run(context.Background()) }()
	select {
	case err := <-errc:
		return err
	case <-s.Ready():
		s.Close()
		<-errc
		t.Fatal("server became ready; want start-up to fail")
		return nil
	}
}

// stop shuts the server down and returns Run's result; later calls
// return nil.
func (r *testRun) stop() error {
	if r.s == nil {
		return nil
	}
	r.conn.Close()
	r.s.Close()
	err := <-r.errc
	r.s = nil
	return err
}

// mustStop stops the server and fails the test unless Run returned nil.
func (r *testRun) mustStop() {
	r.t.Helper()
	if err := r.stop(); err != nil {
		r.t.Fatalf("Run: %v", err)
	}
}

// set writes key and records it in model once acknowledged.
func (r *testRun) set(model map[string]string, key, value string) {
	r.t.Helper()
	if _, err := r.kv.Set(context.Background(), &kvstorepb.SetRequest{Key: key, Value: value}); err != nil {
		r.t.Fatalf("Set %s: %v", key, err)
	}
	model[key] = value
}

// del deletes key, an existing one, and records its absence in model.
func (r *testRun) del(model map[string]string, key string) {
	r.t.Helper()
	if _, err := r.kv.Delete(context.Background(), &kvstorepb.DeleteRequest{Key: key}); err != nil {
		r.t.Fatalf("Delete %s: %v", key, err)
	}
	model[key] = ""
}

// check reads every key of model back; "" means absent.
func (r *testRun) check(model map[string]string) {
	r.t.Helper()
	for _, k := range slices.Sorted(maps.Keys(model)) {
		want := model[k]
		resp, err := r.kv.Get(context.Background(), &kvstorepb.GetRequest{Key: k})
		if err != nil {
			r.t.Fatalf("Get %s: %v", k, err)
		}
		if resp.GetFound() != (want != "") || resp.GetValue() != want {
			r.t.Errorf("%s = %q (found %t); want %q", k, resp.GetValue(), resp.GetFound(), want)
		}
	}
}

// value is 100 bytes, so that ten records fill a 1 KiB segment.
func value(key string) string { return fmt.Sprintf("%-100s", "value of "+key) }

// writeKeys sets n keys named prefix0, prefix1, ... and returns how many
// records that logged.
func (r *testRun) writeKeys(model map[string]string, prefix string, n int) uint64 {
	r.t.Helper()
	for i := range n {
		k := fmt.Sprintf("%s%d", prefix, i)
		r.set(model, k, value(k))
	}
	return uint64(n)
}

// tree returns every file under dir on f with its content.
func tree(t *testing.T, f *faultfs.FS, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func(string)
	walk = func(d string) {
		ents, err := f.ReadDir(d)
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			p := filepath.Join(d, e.Name())
			if e.IsDir() {
				walk(p)
				continue
			}
			b, err := f.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			out[p] = string(b)
		}
	}
	walk(dir)
	return out
}

// sameTree fails the test unless the files under dir are what before
// holds, byte for byte.
func sameTree(t *testing.T, f *faultfs.FS, dir string, before map[string]string) {
	t.Helper()
	after := tree(t, f, dir)
	for p, b := range before {
		a, ok := after[p]
		switch {
		case !ok:
			t.Errorf("%s is gone", p)
		case a != b:
			t.Errorf("%s changed: %d bytes, was %d", p, len(a), len(b))
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s appeared", p)
		}
	}
}

// names returns the base names of the files in dir on f.
func names(t *testing.T, f *faultfs.FS, dir string) []string {
	t.Helper()
	ents, err := f.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func snapPath(dir string, seq uint64) string {
	return filepath.Join(snapDir(dir), fmt.Sprintf("%020d.snap", seq))
}

// segments returns the paths of the log segments, oldest first.
func segments(t *testing.T, f *faultfs.FS, dir string) []string {
	t.Helper()
	var out []string
	for _, n := range names(t, f, walDir(dir)) {
		if strings.HasSuffix(n, ".wal") {
			out = append(out, filepath.Join(walDir(dir), n))
		}
	}
	return out
}

// corrupt flips a byte in the middle of path, durably.
func corrupt(t *testing.T, f *faultfs.FS, path string) {
	t.Helper()
	b, err := f.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := f.WriteFile(path, b); err != nil {
		t.Fatal(err)
	}
}

// readFaults is a faultfs.FS whose reads can fail, which faultfs's own
// cannot. onOpen, if set, runs at every read-only open with the path and
// how many read-only opens of it there have been, this one included; the
// error it returns fails every read of the opened file (nil: none). It may
// also cancel a context, as a hook into the middle of recovery.
type readFaults struct {
	*faultfs.FS
	mu     sync.Mutex
	opens  map[string]int
	onOpen func(name string, n int) error
}

func newReadFaults(f *faultfs.FS, onOpen func(name string, n int) error) *readFaults {
	return &readFaults{FS: f, opens: map[string]int{}, onOpen: onOpen}
}

func (r *readFaults) OpenFile(name string, flag int, perm fs.FileMode) (wal.File, error) {
	file, err := r.FS.OpenFile(name, flag, perm)
	if err != nil || flag&(os.O_WRONLY|os.O_RDWR) != 0 {
		return file, err
	}
	r.mu.Lock()
	r.opens[name]++
	n, onOpen := r.opens[name], r.onOpen
	r.mu.Unlock()
	if onOpen == nil {
		return file, nil
	}
	if ferr := onOpen(name, n); ferr != nil {
		return failingReads{file, ferr}, nil
	}
	return file, nil
}

// readOpens returns how many times name was opened read-only.
func (r *readFaults) readOpens(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.opens[name]
}

// failingReads is an open file whose reads fail with err.
type failingReads struct {
	wal.File
	err error
}

func (f failingReads) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: f.Name(), Err: f.err}
}

func (f failingReads) ReadAt([]byte, int64) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: f.Name(), Err: f.err}
}

// twoSnapshots builds a data dir on a new faultfs through three server
// runs: 20 keys a* and a shutdown (snapshot at seq 20), 20 keys b* and a
// shutdown (snapshot at seq 40, after which the log drops the segments
// that only hold seqs up to 20), then 20 keys c* and a shutdown with no
// final snapshot, so that the log holds records after the newest
// snapshot. It returns the file system, the dir, the acknowledged data and
// the number of records.
func twoSnapshots(t *testing.T, mock *clock.Mock) (*faultfs.FS, string, map[string]string, uint64) {
	t.Helper()
	f, dir := faultfs.New(1), t.TempDir()
	model := map[string]string{}
	var seq uint64
	for _, prefix := range []string{"a", "b", "c"} {
		cfg := recoveryConfig(dir, f, mock, nil)
		cfg.NoFinalSnapshot = prefix == "c"
		r := startRun(t, cfg)
		seq += r.writeKeys(model, prefix, 20)
		r.mustStop()
	}
	if got, want := names(t, f, snapDir(dir)), []string{filepath.Base(snapPath(dir, 20)), filepath.Base(snapPath(dir, 40))}; !slices.Equal(got, want) {
		t.Fatalf("snapshots = %v; want %v", got, want)
	}
	return f, dir, model, seq
}

// TestRecoveryAfterPowerLossAndDamagedSnapshot: acknowledged writes under
// fsync=always, two snapshots, more writes, then power off in the middle
// of a third snapshot, losing everything unsynced in the log and the
// snapshot dir at once; the newest surviving snapshot is then damaged.
// The restart must load the older snapshot and replay the log from just
// after it, which the log kept for that reason, with no gap, set the
// damaged file aside durably, and lose no acknowledged write.
func TestRecoveryAfterPowerLossAndDamagedSnapshot(t *testing.T) {
	mock := newMock()
	f, dir := faultfs.New(7), t.TempDir()
	model := map[string]string{}
	var seq uint64

	// Two runs, each ending with a snapshot: at seq 20 and seq 40. The
	// second lets the log drop the segments wholly at or below 20 (the
	// older snapshot), not those up to 40.
	for _, prefix := range []string{"a", "b"} {
		r := startRun(t, recoveryConfig(dir, f, mock, nil))
		seq += r.writeKeys(model, prefix, 20)
		r.mustStop()
	}
	var base uint64
	first := segments(t, f, dir)[0]
	if _, err := fmt.Sscanf(filepath.Base(first), "%d.wal", &base); err != nil || base <= 1 || base > 21 {
		t.Fatalf("log after two snapshots starts with %s; the test needs the segments up to seq 20 released, and no later one", first)
	}

	// Third run: overwrite and delete some of the old keys, add new ones,
	// then power off when the periodic snapshot has renamed its file into
	// place but not yet fsynced the directory.
	cfg := recoveryConfig(dir, f, mock, nil)
	cfg.SnapshotInterval = time.Minute
	r := startRun(t, cfg)
	for i := range 5 {
		r.set(model, fmt.Sprintf("a%d", i), "overwritten")
		r.del(model, fmt.Sprintf("b%d", i))
		seq += 2
	}
	seq += r.writeKeys(model, "c", 20)
	var (
		after   *faultfs.FS
		once    sync.Once
		crashed = make(chan struct{})
	)
	f.SetHook(func(op faultfs.Op, name string) error {
		if op == faultfs.OpSyncDir && name == snapDir(dir) {
			once.Do(func() {
				after = f.Crash(faultfs.DropUnsynced)
				close(crashed)
			})
		}
		return nil
	})
	mock.Add(time.Minute)
	<-crashed // the hand-off: the snapshot goroutine hit the power-off
	if err := r.stop(); err != nil {
		t.Logf("Run after power-off: %v", err) // the final snapshot fails; no matter
	}

	// The third snapshot did not survive; damage the newest that did.
	if got, want := names(t, after, snapDir(dir)), []string{filepath.Base(snapPath(dir, 20)), filepath.Base(snapPath(dir, 40))}; !slices.Equal(got, want) {
		t.Fatalf("snapshots after power-off = %v; want %v", got, want)
	}
	corrupt(t, after, snapPath(dir, 40))

	logs := &logSink{}
	r = startRun(t, recoveryConfig(dir, after, mock, logs))
	r.check(model)
	gotSnap, gotSeq, _ := logs.recovered(t)
	if gotSnap != 20 || gotSeq != seq {
		t.Errorf("recovered from snapshot %d to seq %d; want snapshot 20 (the older one) and seq %d", gotSnap, gotSeq, seq)
	}
	if logs.find(t, "snapshot did not validate; loaded an older one") == nil {
		t.Error("no warning about the damaged snapshot")
	}
	// The next seq follows on: a write is accepted (a gap would fail the
	// log) and survives another power-off.
	r.set(model, "after", "restart")
	afterSetAside := after.Crash(faultfs.DropUnsynced)
	if err := r.stop(); err != nil {
		t.Logf("Run after second power-off: %v", err)
	}

	// The damaged snapshot was set aside, and durably so.
	want := []string{filepath.Base(snapPath(dir, 20)), filepath.Base(snapPath(dir, 40)) + ".corrupt"}
	if got := names(t, afterSetAside, snapDir(dir)); !slices.Equal(got, want) {
		t.Errorf("snapshots after recovery and power-off = %v; want %v", got, want)
	}
	r = startRun(t, recoveryConfig(dir, afterSetAside, mock, nil))
	r.check(model)
	r.mustStop()
}

// TestRecoverySnapshotIOErrorIsNotDamage: an I/O error on the newest
// snapshot, opening it or reading it in either of Load's passes, says
// nothing against the file. Start-up must stop with an error naming it
// and leave every file as it was, not set the snapshot aside and start
// from the older one; once the fault is gone, start-up loads it.
func TestRecoverySnapshotIOErrorIsNotDamage(t *testing.T) {
	for _, tt := range []struct {
		name string
		// fault arms the failure on the newest snapshot, newest.
		fault func(f *faultfs.FS, newest string) wal.FS
	}{
		{"open", func(f *faultfs.FS, newest string) wal.FS {
			f.SetHook(func(op faultfs.Op, name string) error {
				if op == faultfs.OpOpen && name == newest {
					return syscall.EIO
				}
				return nil
			})
			return f
		}},
		{"read while verifying", func(f *faultfs.FS, newest string) wal.FS {
			return newReadFaults(f, func(name string, n int) error {
				if name == newest && n == 1 {
					return syscall.EIO
				}
				return nil
			})
		}},
		{"read while loading", func(f *faultfs.FS, newest string) wal.FS {
			return newReadFaults(f, func(name string, n int) error {
				if name == newest && n == 2 {
					return syscall.EIO
				}
				return nil
			})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mock := newMock()
			f, dir, model, seq := twoSnapshots(t, mock)
			before := tree(t, f, dir)
			newest := snapPath(dir, 40)

			err := runFailing(t, recoveryConfig(dir, tt.fault(f, newest), mock, nil))
			if err == nil || !strings.Contains(err.Error(), newest) || !errors.Is(err, syscall.EIO) {
				t.Fatalf("Run = %v; want an EIO naming %s", err, newest)
			}
			f.SetHook(nil)
			sameTree(t, f, dir, before)

			logs := &logSink{}
			r := startRun(t, recoveryConfig(dir, f, mock, logs))
			r.check(model)
			if gotSnap, gotSeq, _ := logs.recovered(t); gotSnap != 40 || gotSeq != seq {
				t.Errorf("recovered from snapshot %d to seq %d; want snapshot 40 and seq %d", gotSnap, gotSeq, seq)
			}
			r.mustStop()
		})
	}
}

// TestRecoveryLogReadErrorStopsStartup: a read error on a segment, while
// the log validates it at Open or while Replay applies it, must stop
// start-up with an error naming the segment, never be taken for a torn
// tail to cut or a gap to stop at, and leave every file as it was. Once
// the fault is gone the data is all there.
func TestRecoveryLogReadErrorStopsStartup(t *testing.T) {
	for _, tt := range []struct {
		name string
		// segment picks the segment to fail among those the log holds,
		// oldest first; nth is which read-only open of it fails: Open
		// validates each segment, then Replay reads those after the
		// snapshot again.
		segment func(segs []string) string
		nth     int
		// want is in the error besides the path and EIO.
		want string
	}{
		{"validating the last segment", func(s []string) string { return s[len(s)-1] }, 1, ""},
		{"validating the first segment", func(s []string) string { return s[0] }, 1, ""},
		{"replaying the last segment", func(s []string) string { return s[len(s)-1] }, 2, "replay log"},
		{"replaying the segment before the last", func(s []string) string { return s[len(s)-2] }, 2, "replay log"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mock := newMock()
			f, dir, model, seq := twoSnapshots(t, mock)
			before := tree(t, f, dir)
			bad := tt.segment(segments(t, f, dir))

			rf := newReadFaults(f, func(name string, n int) error {
				if name == bad && n == tt.nth {
					return syscall.EIO
				}
				return nil
			})
			err := runFailing(t, recoveryConfig(dir, rf, mock, nil))
			if err == nil || !strings.Contains(err.Error(), bad) || !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run = %v; want an EIO naming %s and %q", err, bad, tt.want)
			}
			if got := rf.readOpens(bad); got != tt.nth {
				t.Fatalf("%s opened for reading %d times; the fault was for open %d", bad, got, tt.nth)
			}
			sameTree(t, f, dir, before)

			logs := &logSink{}
			r := startRun(t, recoveryConfig(dir, f, mock, logs))
			r.check(model)
			if gotSnap, gotSeq, _ := logs.recovered(t); gotSnap != 40 || gotSeq != seq {
				t.Errorf("recovered from snapshot %d to seq %d; want snapshot 40 and seq %d", gotSnap, gotSeq, seq)
			}
			r.mustStop()
		})
	}
}

// Sizes of the data dirs TestRecoveryCancelled builds: a snapshot large
// enough for recovery to look at its context several times while loading
// it, or one too small for that, and a log in which it looks again.
const (
	bigSnapshot   = 2*checkEvery + 10
	smallSnapshot = checkEvery / 4
	logRecords    = 2*checkEvery + 100
)

// bigDataDir writes a snapshot of snapKeys keys at seq snapKeys and
// logRecords log records after it in 16 KiB segments: the first snapKeys
// overwrite the snapshot's keys, the rest add keys.
func bigDataDir(t *testing.T, f *faultfs.FS, dir string, snapKeys int) {
	t.Helper()
	st := actor.NewState()
	for i := range snapKeys {
		st.Set(fmt.Sprintf("key:%05d", i), "s", 0)
	}
	v := st.Freeze()
	if _, err := snap.Write(f, snapDir(dir), uint64(snapKeys), v); err != nil {
		t.Fatal(err)
	}
	st.Release(v)
	log, err := wal.Open(wal.Options{Dir: walDir(dir), FS: f, Fsync: wal.FsyncNo, SegmentBytes: 16 << 10, PreallocBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	log.Start(uint64(snapKeys) + 1)
	var batch []wal.Record
	for i := range logRecords {
		seq := uint64(snapKeys + 1 + i)
		batch = append(batch, wal.Record{Seq: seq, Kind: wal.KindSet, Key: fmt.Sprintf("key:%05d", i), Value: "l"})
		if len(batch) == 100 || i == logRecords-1 {
			log.Submit(wal.Batch{Records: batch})
			batch = nil
			// One batch per write, so the segments come out the same
			// every time.
			if err := log.SyncThrough(context.Background(), seq); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
}

// bigDataDirs holds the files bigDataDir writes, by snapshot size and
// relative to the data dir, so that each is built once.
var bigDataDirs = map[int]map[string]string{}

// dataDirCopy returns a new faultfs holding bigDataDir's files for
// snapKeys under dir, all durable.
func dataDirCopy(t *testing.T, snapKeys int, dir string) *faultfs.FS {
	t.Helper()
	files, ok := bigDataDirs[snapKeys]
	if !ok {
		f, built := faultfs.New(3), t.TempDir()
		bigDataDir(t, f, built, snapKeys)
		files = map[string]string{}
		for p, b := range tree(t, f, built) {
			rel, err := filepath.Rel(built, p)
			if err != nil {
				t.Fatal(err)
			}
			files[rel] = b
		}
		bigDataDirs[snapKeys] = files
	}
	f := faultfs.New(3)
	for rel, b := range files {
		if err := f.WriteFile(filepath.Join(dir, rel), []byte(b)); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// TestRecoveryCancelled: a context that ends before or during recovery
// (loading the snapshot, the log's validation at Open, the replay) stops
// it with the context's error before it reads further than the next
// check, and Run returns nil, as for any shutdown asked for during
// recovery, without becoming ready. No file changes, the lock is free
// again, and the next start recovers everything.
func TestRecoveryCancelled(t *testing.T) {
	// Which file of the data dir a case picks.
	type files struct {
		snapshot string
		segs     []string
	}
	snapshot := func(f files) string { return f.snapshot }
	firstSeg := func(f files) string { return f.segs[0] }
	lastSeg := func(f files) string { return f.segs[len(f.segs)-1] }
	for _, tt := range []struct {
		name     string
		snapKeys int
		// cancelAt is the file at whose cancelNth read-only open the
		// context is cancelled; nil cancels it before recovery starts.
		cancelAt  func(files) string
		cancelNth int
		// stopBefore is a file recovery must have opened for reading
		// only stopOpens times when it stops.
		stopBefore func(files) string
		stopOpens  int
	}{
		{"before Run", bigSnapshot, nil, 0, firstSeg, 0},
		// The snapshot is verified, then loaded: open 2 is the load.
		{"loading a big snapshot", bigSnapshot, snapshot, 2, firstSeg, 0},
		// The load ends before its next look at ctx; the log must not
		// be opened then.
		{"loading a small snapshot", smallSnapshot, snapshot, 2, firstSeg, 0},
		// Open reads every segment once whatever ctx says; Replay must
		// not read one again.
		{"validating the log", bigSnapshot, firstSeg, 1, firstSeg, 1},
		{"replaying the log", bigSnapshot, firstSeg, 2, lastSeg, 1},
		{"replaying the log after a small snapshot", smallSnapshot, firstSeg, 2, lastSeg, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			f := dataDirCopy(t, tt.snapKeys, dir)
			before := tree(t, f, dir)
			df := files{snapshot: snapPath(dir, uint64(tt.snapKeys)), segs: segments(t, f, dir)}
			if len(df.segs) < 8 {
				t.Fatalf("%d segments; the test needs the log to span more", len(df.segs))
			}
			var cancelFile string
			if tt.cancelAt != nil {
				cancelFile = tt.cancelAt(df)
			}
			stopFile := tt.stopBefore(df)

			// armed returns a context and a file system that cancels it
			// at the chosen open.
			armed := func() (context.Context, context.CancelFunc, *readFaults) {
				ctx, cancel := context.WithCancel(context.Background())
				if cancelFile == "" {
					cancel()
				}
				rf := newReadFaults(f, func(name string, n int) error {
					if name == cancelFile && n == tt.cancelNth {
						cancel()
					}
					return nil
				})
				return ctx, cancel, rf
			}

			// recoverStorage itself returns ctx's error, and promptly.
			ctx, cancel, rf := armed()
			defer cancel()
			cfg := recoveryConfig(dir, rf, newMock(), nil)
			st, err := recoverStorage(ctx, rf, &cfg, cfg.Clock, cfg.Logger, rpc.NewMetrics(nil), nil)
			if !errors.Is(err, context.Canceled) {
				if st != nil {
					st.close(cfg.Logger)
				}
				t.Fatalf("recoverStorage = %v; want context.Canceled", err)
			}
			if got := rf.readOpens(stopFile); got != tt.stopOpens {
				t.Errorf("%s opened for reading %d times; recovery should have stopped with %d", stopFile, got, tt.stopOpens)
			}
			sameTree(t, f, dir, before)

			// Run: nil, never ready, files untouched, lock released.
			ctx, cancel, rf = armed()
			defer cancel()
			logs := &logSink{}
			s, err := New(recoveryConfig(dir, rf, newMock(), logs))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Run(ctx); err != nil {
				t.Fatalf("Run = %v; want nil for a shutdown during recovery", err)
			}
			select {
			case <-s.Ready():
				t.Fatal("server became ready")
			default:
			}
			if logs.find(t, "shutdown during recovery") == nil {
				t.Error(`no "shutdown during recovery" log line`)
			}
			if got := rf.readOpens(stopFile); got != tt.stopOpens {
				t.Errorf("Run: %s opened for reading %d times; recovery should have stopped with %d", stopFile, got, tt.stopOpens)
			}
			sameTree(t, f, dir, before)
			lock, err := wal.LockDir(dir)
			if err != nil {
				t.Fatalf("data dir still locked: %v", err)
			}
			lock.Release()

			logs = &logSink{}
			cfg = recoveryConfig(dir, f, newMock(), logs)
			cfg.NoFinalSnapshot = true
			r := startRun(t, cfg)
			want := map[string]string{}
			for _, i := range []int{0, tt.snapKeys - 1, tt.snapKeys, logRecords - 1, logRecords, max(tt.snapKeys, logRecords)} {
				v := ""
				switch {
				case i < logRecords:
					v = "l"
				case i < tt.snapKeys:
					v = "s"
				}
				want[fmt.Sprintf("key:%05d", i)] = v
			}
			r.check(want)
			gotSnap, gotSeq, gotKeys := logs.recovered(t)
			wantSnap, wantSeq, wantKeys := uint64(tt.snapKeys), uint64(tt.snapKeys+logRecords), uint64(max(tt.snapKeys, logRecords))
			if gotSnap != wantSnap || gotSeq != wantSeq || gotKeys != wantKeys {
				t.Errorf("recovered snapshot %d, seq %d, %d keys; want %d, %d, %d",
					gotSnap, gotSeq, gotKeys, wantSnap, wantSeq, wantKeys)
			}
			r.mustStop()
		})
	}
}
