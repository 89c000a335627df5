package snap

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"go.uber.org/goleak"

	"kvstore/wal"
)

// fakeOwner hands out views of a slice as the actor would, and counts
// freezes and releases.
type fakeOwner struct {
	entries  sliceSource
	seq      uint64
	freezes  int
	released int
	frozen   chan uint64 // when set, receives the seq of every freeze
	// src, when set, is handed out instead of entries.
	src Source
}

// ownedView is a view of a fakeOwner, counting its releases.
type ownedView struct {
	Source
	owner *fakeOwner
}

func (v ownedView) Release() { v.owner.released++ }

func (o *fakeOwner) freeze(ctx context.Context) (Source, uint64, error) {
	o.freezes++
	if o.frozen != nil {
		select {
		case o.frozen <- o.seq:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
	o.seq++ // every snapshot sees new writes
	var src Source = o.entries
	if o.src != nil {
		src = o.src
	}
	return ownedView{src, o}, o.seq, nil
}

// TestSnapshotterReleasesEveryView: every view frozen is released exactly
// once, whether it was written, found unchanged, or failed to write.
func TestSnapshotterReleasesEveryView(t *testing.T) {
	dir := t.TempDir()
	owner := &fakeOwner{entries: genEntries(3, false), seq: 1}
	s, err := NewSnapshotter(SnapshotterConfig{Dir: dir, Freeze: owner.freeze})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if owner.released != 1 {
		t.Fatalf("released %d views after a written snapshot; want 1", owner.released)
	}
	owner.seq-- // unchanged: nothing written
	if _, err := s.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if owner.released != 2 {
		t.Fatalf("released %d views after an unchanged snapshot; want 2", owner.released)
	}
	owner.src = miscountedSource{len: 2, n: 1}
	if _, err := s.Snapshot(ctx); !errors.Is(err, ErrSourceLen) {
		t.Fatalf("Snapshot = %v; want ErrSourceLen", err)
	}
	if owner.released != 3 || owner.freezes != 3 {
		t.Fatalf("released %d of %d views after a failed write; want all", owner.released, owner.freezes)
	}
}

func TestSnapshotterCompactsThroughOlder(t *testing.T) {
	dir := t.TempDir()
	owner := &fakeOwner{entries: genEntries(10, false), seq: 4}
	var released []uint64
	s, err := NewSnapshotter(SnapshotterConfig{
		Dir:    dir,
		Freeze: owner.freeze,
		Compact: func(through uint64) error {
			released = append(released, through)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	info, err := s.Snapshot(ctx)
	if err != nil || info.Seq != 5 || info.Count != 10 {
		t.Fatalf("first Snapshot = %+v, %v", info, err)
	}
	// One snapshot on disk: falling back from it would need the whole
	// log, so nothing may be released yet.
	if len(released) != 0 {
		t.Fatalf("released %v after the first snapshot; want nothing", released)
	}

	// Unchanged state: no new file, no release.
	owner.seq--
	if _, err := s.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if infos, _ := List(wal.OS, dir); len(infos) != 1 || len(released) != 0 {
		t.Fatalf("unchanged state wrote %d files, released %v", len(infos), released)
	}

	owner.seq = 8
	if _, err := s.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	owner.seq = 11
	if _, err := s.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if want := []uint64{5, 9}; !equalSeqs(released, want) {
		t.Fatalf("released %v; want %v (the older of the two kept each time)", released, want)
	}

	// A new Snapshotter picks up what is on disk.
	s2, err := NewSnapshotter(SnapshotterConfig{Dir: dir, Freeze: owner.freeze})
	if err != nil {
		t.Fatal(err)
	}
	if s2.newest != 12 || s2.older != 9 {
		t.Fatalf("reopened: newest %d older %d; want 12, 9", s2.newest, s2.older)
	}
}

func equalSeqs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSnapshotterFreezeError(t *testing.T) {
	boom := errors.New("stopped")
	s, err := NewSnapshotter(SnapshotterConfig{
		Dir:    t.TempDir(),
		Freeze: func(context.Context) (Source, uint64, error) { return nil, 0, boom },
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Snapshot(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("Snapshot = %v; want the freeze error", err)
	}
}

// TestSnapshotterRunOnInterval drives Run with a mock clock: each tick
// freezes once. The hand-off is the freeze itself, never a sleep.
func TestSnapshotterRunOnInterval(t *testing.T) {
	defer goleak.VerifyNone(t)
	mock := clock.NewMock()
	owner := &fakeOwner{entries: genEntries(3, false), seq: 1, frozen: make(chan uint64)}
	s, err := NewSnapshotter(SnapshotterConfig{
		Dir:      t.TempDir(),
		Freeze:   owner.freeze,
		Clock:    mock,
		Interval: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	for range 3 {
		mock.Add(30 * time.Second)
		<-owner.frozen
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotterStats: a written snapshot sets the size and time, an
// unchanged state refreshes only the time, and failures are counted
// unless the caller's context ended.
func TestSnapshotterStats(t *testing.T) {
	mock := clock.NewMock()
	mock.Set(time.Unix(1000, 0))
	owner := &fakeOwner{entries: genEntries(10, false), seq: 4}
	var fail error
	var durations int
	s, err := NewSnapshotter(SnapshotterConfig{
		Dir:   t.TempDir(),
		Clock: mock,
		Freeze: func(ctx context.Context) (Source, uint64, error) {
			if fail != nil {
				return nil, 0, fail
			}
			return owner.freeze(ctx)
		},
		ObserveDuration: func(time.Duration) { durations++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st != (Stats{}) {
		t.Fatalf("Stats = %+v before any snapshot", st)
	}
	ctx := context.Background()
	info, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{Written: 1, LastBytes: info.Bytes, LastTime: mock.Now()}
	if st := s.Stats(); st != want || durations != 1 {
		t.Fatalf("Stats = %+v, %d durations; want %+v, 1", st, durations, want)
	}

	owner.seq-- // unchanged
	mock.Add(time.Minute)
	if _, err := s.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	want.LastTime = mock.Now()
	if st := s.Stats(); st != want || durations != 1 {
		t.Fatalf("Stats = %+v, %d durations after an unchanged state; want %+v, 1", st, durations, want)
	}

	fail = errors.New("boom")
	if _, err := s.Snapshot(ctx); err == nil {
		t.Fatal("Snapshot succeeded")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	fail = cancelled.Err()
	if _, err := s.Snapshot(cancelled); err == nil {
		t.Fatal("Snapshot succeeded")
	}
	want.Failed = 1
	if st := s.Stats(); st != want {
		t.Fatalf("Stats = %+v after failures; want %+v", st, want)
	}
}

// TestSnapshotterSyncsBeforeWrite: the log is synced through the view's
// seq before the file is written; a failed sync writes nothing and
// counts as a failure; an unchanged state needs no sync.
func TestSnapshotterSyncsBeforeWrite(t *testing.T) {
	dir := t.TempDir()
	owner := &fakeOwner{entries: genEntries(3, false), seq: 4}
	var synced []uint64
	var fail error
	s, err := NewSnapshotter(SnapshotterConfig{
		Dir:    dir,
		Freeze: owner.freeze,
		Sync: func(_ context.Context, through uint64) error {
			if infos, _ := List(wal.OS, dir); len(infos) != len(synced) {
				t.Errorf("Sync(%d) called with %d snapshots on disk, want %d: after Write", through, len(infos), len(synced))
			}
			synced = append(synced, through)
			return fail
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	owner.seq-- // unchanged
	if _, err := s.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if want := []uint64{5}; !equalSeqs(synced, want) {
		t.Fatalf("synced %v; want %v", synced, want)
	}

	fail = errors.New("log failed")
	if _, err := s.Snapshot(ctx); !errors.Is(err, fail) {
		t.Fatalf("Snapshot = %v; want the sync error", err)
	}
	if infos, _ := List(wal.OS, dir); len(infos) != 1 {
		t.Fatalf("%d snapshots on disk after a failed sync; want 1", len(infos))
	}
	if st := s.Stats(); st.Failed != 1 || st.Written != 1 {
		t.Fatalf("Stats = %+v; want 1 written, 1 failed", st)
	}
}
