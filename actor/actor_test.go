package actor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// mustStart starts an actor without a ticker and stops it at cleanup.
func mustStart(tb testing.TB, cfg Config) *Actor {
	tb.Helper()
	if cfg.ExpireInterval == 0 {
		cfg.ExpireInterval = -1
	}
	a := New(cfg)
	tb.Cleanup(a.Stop)
	return a
}

func TestActorSetGetDelete(t *testing.T) {
	a := mustStart(t, Config{})
	ctx := context.Background()
	if err := a.Set(ctx, "k", "v", 0); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := a.Get(ctx, "k", 0); err != nil || !ok || v != "v" {
		t.Fatalf("Get = %q, %v, %v; want v, true, nil", v, ok, err)
	}
	if ok, err := a.Delete(ctx, "k", 0); err != nil || !ok {
		t.Fatalf("Delete = %v, %v; want true, nil", ok, err)
	}
	if ok, err := a.Delete(ctx, "k", 0); err != nil || ok {
		t.Fatalf("second Delete = %v, %v; want false, nil", ok, err)
	}
	if _, ok, _ := a.Get(ctx, "k", 0); ok {
		t.Fatal("deleted key found")
	}
}

func TestActorBatchAppliesInOrder(t *testing.T) {
	a := mustStart(t, Config{})
	r := NewRequest()
	r.Commands = []Command{
		{Op: OpSet, Key: "a", Value: "1"},
		{Op: OpGet, Key: "a"},
		{Op: OpSet, Key: "a", Value: "2"},
		{Op: OpGet, Key: "a"},
		{Op: OpDelete, Key: "a"},
		{Op: OpGet, Key: "a"},
	}
	if err := a.Do(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	want := []Result{{Found: true}, {Found: true, Value: "1"}, {Found: true}, {Found: true, Value: "2"}, {Found: true}, {}}
	for i, w := range want {
		if r.Results[i] != w {
			t.Errorf("result %d = %+v; want %+v", i, r.Results[i], w)
		}
	}
}

func TestActorRejectsUnknownOpWhole(t *testing.T) {
	a := mustStart(t, Config{})
	r := NewRequest()
	r.Commands = []Command{{Op: OpSet, Key: "a", Value: "1"}, {Op: 99, Key: "a"}}
	if err := a.Do(context.Background(), r); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("Do = %v; want ErrBadCommand", err)
	}
	if _, ok, _ := a.Get(context.Background(), "a", 0); ok {
		t.Fatal("a command of a rejected batch was applied")
	}
}

func TestActorStopped(t *testing.T) {
	a := New(Config{ExpireInterval: -1})
	a.Stop()
	a.Stop() // idempotent
	ctx := context.Background()
	if err := a.Set(ctx, "k", "v", 0); !errors.Is(err, ErrStopped) {
		t.Errorf("Set after Stop = %v; want ErrStopped", err)
	}
	if _, _, err := a.Get(ctx, "k", 0); !errors.Is(err, ErrStopped) {
		t.Errorf("Get after Stop = %v; want ErrStopped", err)
	}
	if _, err := a.Tick(ctx, time.Unix(0, 0)); !errors.Is(err, ErrStopped) {
		t.Errorf("Tick after Stop = %v; want ErrStopped", err)
	}
	if _, _, err := a.Snapshot(ctx); !errors.Is(err, ErrStopped) {
		t.Errorf("Snapshot after Stop = %v; want ErrStopped", err)
	}
}

func TestActorContextCancelled(t *testing.T) {
	a := mustStart(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Either the send or the wait sees the cancelled context; both must
	// report it rather than hang.
	for range 100 {
		if err := a.Set(ctx, "k", "v", 0); err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("Set = %v; want nil or context.Canceled", err)
		}
	}
}

func TestActorTickExpires(t *testing.T) {
	a := mustStart(t, Config{})
	ctx := context.Background()
	base := time.Unix(1000, 0)
	for _, k := range []string{"a", "b", "c"} {
		if err := a.Set(ctx, k, "v", base.Add(5*time.Second).UnixNano()); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Set(ctx, "keep", "v", 0); err != nil {
		t.Fatal(err)
	}
	if n, err := a.Tick(ctx, base.Add(4*time.Second)); err != nil || n != 0 {
		t.Fatalf("early Tick removed %d, %v; want 0", n, err)
	}
	if n, err := a.Tick(ctx, base.Add(6*time.Second)); err != nil || n != 3 {
		t.Fatalf("Tick removed %d, %v; want 3", n, err)
	}
	if _, ok, _ := a.Get(ctx, "keep", base.Add(6*time.Second).UnixNano()); !ok {
		t.Fatal("key without TTL expired")
	}
}

// TestActorStats: the counts are published before a pass's replies, so a
// caller sees its own request in them, and every pass is observed.
func TestActorStats(t *testing.T) {
	var commands []int
	a := mustStart(t, Config{ObserveBatch: func(n int) { commands = append(commands, n) }})
	ctx := context.Background()
	base := time.Unix(1000, 0)
	if err := a.Set(ctx, "a", "v", base.Add(5*time.Second).UnixNano()); err != nil {
		t.Fatal(err)
	}
	if err := a.Set(ctx, "b", "v", 0); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st != (Stats{Keys: 2, KeysWithTTL: 1, Bytes: 2 * entryBytes("a", "v"), Seq: 2}) {
		t.Fatalf("Stats = %+v after two sets", st)
	}
	r := NewRequest()
	r.Commands = []Command{{Op: OpGet, Key: "a"}, {Op: OpDelete, Key: "b"}, {Op: OpGet, Key: "b"}}
	if err := a.Do(ctx, r); err != nil {
		t.Fatal(err)
	}
	if n, err := a.Tick(ctx, base.Add(6*time.Second)); err != nil || n != 1 {
		t.Fatalf("Tick removed %d, %v; want 1", n, err)
	}
	if st := a.Stats(); st != (Stats{Expired: 1, Seq: 3}) {
		t.Fatalf("Stats = %+v after the tick", st)
	}
	// Each call waited for its reply, so each pass held one request; the
	// tick's reply comes after the last pass was observed.
	if want := []int{1, 1, 3}; !slices.Equal(commands, want) {
		t.Fatalf("ObserveBatch saw %v, want %v", commands, want)
	}
}

// TestActorExpiryBacklog checks that expiry larger than one pass is
// finished by later passes without further ticks.
func TestActorExpiryBacklog(t *testing.T) {
	a := mustStart(t, Config{Rules: Rules{ExpireBatch: 10}})
	ctx := context.Background()
	r := NewRequest()
	for i := range 95 {
		r.Commands = append(r.Commands, Command{Op: OpSet, Key: string(rune('A' + i)), Value: "v", Deadline: 1 * sec})
	}
	if err := a.Do(ctx, r); err != nil {
		t.Fatal(err)
	}
	if n, err := a.Tick(ctx, time.Unix(2, 0)); err != nil || n != 10 {
		t.Fatalf("Tick removed %d, %v; want one pass of 10", n, err)
	}
	// Snapshot is a message like any other: once the backlog is gone,
	// the view holds no key. Passes run between messages, so ask until
	// the count reaches zero; each ask is a real hand-off, not a sleep.
	for i := 0; ; i++ {
		v, _, err := a.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v.Len() == 0 {
			break
		}
		if i > 1000 {
			t.Fatalf("backlog not drained: %d keys left", v.Len())
		}
	}
}

// TestActorTickerUsesClock drives the ticker goroutine with a mock clock,
// waiting for each tick's result instead of sleeping.
func TestActorTickerUsesClock(t *testing.T) {
	mock := clock.NewMock()
	mock.Set(time.Unix(1000, 0))
	a := newActor(Config{Clock: mock, ExpireInterval: time.Second})
	a.tickedc = make(chan int)
	a.start(Config{Clock: mock, ExpireInterval: time.Second})
	t.Cleanup(a.Stop)
	ctx := context.Background()

	if err := a.Set(ctx, "k", "v", time.Unix(1002, 0).UnixNano()); err != nil {
		t.Fatal(err)
	}
	removed := 0
	for i := 0; removed == 0; i++ {
		if i == 5 {
			t.Fatal("key not expired after 5 ticks past its deadline")
		}
		mock.Add(time.Second)
		removed = <-a.tickedc
	}
	if now := mock.Now(); now.Before(time.Unix(1003, 0)) {
		t.Fatalf("key expired at %v, before its deadline's second passed", now)
	}
}

// fakeLog records batches and releases waiters only when told to: it
// lets tests see exactly what the actor holds back until durable.
type fakeLog struct {
	mu      sync.Mutex
	batches []Batch
	durable uint64
	err     error
	submitc chan struct{}
}

func newFakeLog() *fakeLog { return &fakeLog{submitc: make(chan struct{}, 100)} }

func (l *fakeLog) Submit(b Batch) {
	l.mu.Lock()
	l.batches = append(l.batches, b)
	l.mu.Unlock()
	l.submitc <- struct{}{}
}

func (l *fakeLog) DurableSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.durable
}

func (l *fakeLog) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// sync makes every submitted record durable and releases the waiters.
func (l *fakeLog) sync() {
	l.mu.Lock()
	bs := l.batches
	l.batches = nil
	for _, b := range bs {
		for _, r := range b.Records {
			l.durable = r.Seq
		}
	}
	l.mu.Unlock()
	for _, b := range bs {
		b.Done(nil)
	}
}

func TestActorRepliesWaitForDurability(t *testing.T) {
	log := newFakeLog()
	a := mustStart(t, Config{Log: log, Seq: 41})
	ctx := context.Background()

	setDone := make(chan error, 1)
	go func() { setDone <- a.Set(ctx, "k", "v", 7) }()
	<-log.submitc
	log.mu.Lock()
	if n := len(log.batches); n != 1 {
		t.Fatalf("batches = %d; want 1", n)
	}
	recs := log.batches[0].Records
	log.mu.Unlock()
	if len(recs) != 1 || recs[0] != (Record{Seq: 42, Op: OpSet, Key: "k", Value: "v", Deadline: 7}) {
		t.Fatalf("records = %+v; want one set with seq 42", recs)
	}
	select {
	case err := <-setDone:
		t.Fatalf("Set returned %v before its record was durable", err)
	default:
	}

	// A read of the not-yet-durable value must wait too.
	getDone := make(chan string, 1)
	go func() {
		v, _, _ := a.Get(ctx, "k", 0)
		getDone <- v
	}()
	<-log.submitc
	log.mu.Lock()
	barrier := log.batches[1]
	log.mu.Unlock()
	if len(barrier.Records) != 0 || barrier.Replies() != 1 {
		t.Fatalf("read barrier = %d records, %d waiters; want 0, 1", len(barrier.Records), barrier.Replies())
	}
	select {
	case v := <-getDone:
		t.Fatalf("Get returned %q before the value was durable", v)
	default:
	}

	log.sync()
	if err := <-setDone; err != nil {
		t.Fatal(err)
	}
	if v := <-getDone; v != "v" {
		t.Fatalf("Get = %q; want v", v)
	}

	// Once everything is durable, reads are answered at once.
	if v, _, err := a.Get(ctx, "k", 0); err != nil || v != "v" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	select {
	case <-log.submitc:
		t.Fatal("a read with nothing pending went through the log")
	default:
	}

	// Deleting a missing key writes no record.
	if ok, err := a.Delete(ctx, "missing", 0); err != nil || ok {
		t.Fatalf("Delete(missing) = %v, %v", ok, err)
	}
}

func TestActorRefusesWritesAfterLogFailure(t *testing.T) {
	log := newFakeLog()
	a := mustStart(t, Config{Log: log})
	ctx := context.Background()
	log.mu.Lock()
	log.err = errors.New("disk full")
	log.mu.Unlock()
	if err := a.Set(ctx, "k", "v", 0); !errors.Is(err, ErrStorage) {
		t.Fatalf("Set = %v; want ErrStorage", err)
	}
	if _, err := a.Delete(ctx, "k", 0); !errors.Is(err, ErrStorage) {
		t.Fatalf("Delete = %v; want ErrStorage", err)
	}
	if _, ok, err := a.Get(ctx, "k", 0); err != nil || ok {
		t.Fatalf("Get = %v, %v; reads must go on", ok, err)
	}
}

func TestSnapshotSeq(t *testing.T) {
	log := newFakeLog()
	a := mustStart(t, Config{Log: log, Seq: 10})
	ctx := context.Background()
	done := make(chan error, 1)
	go func() { done <- a.Set(ctx, "k", "v", 0) }()
	<-log.submitc
	v, seq, err := a.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if seq != 11 || v.Len() != 1 {
		t.Fatalf("Snapshot = len %d seq %d; want 1, 11", v.Len(), seq)
	}
	log.sync()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestMemoryLimit: past MaxMemory, writes that grow the data are refused
// whole, while reads, deletes and overwrites that do not grow it go on.
func TestMemoryLimit(t *testing.T) {
	limit := 3 * entryBytes("k0", "0123456789")
	a := mustStart(t, Config{Rules: Rules{MaxMemory: limit}})
	ctx := context.Background()
	for i := range 3 {
		if err := a.Set(ctx, fmt.Sprint("k", i), "0123456789", 0); err != nil {
			t.Fatalf("set %d under the limit: %v", i, err)
		}
	}
	if err := a.Set(ctx, "k3", "0123456789", 0); !errors.Is(err, ErrMemoryLimit) {
		t.Fatalf("set past the limit = %v; want ErrMemoryLimit", err)
	}
	if err := a.Set(ctx, "k0", "01234567890", 0); !errors.Is(err, ErrMemoryLimit) {
		t.Fatalf("growing overwrite = %v; want ErrMemoryLimit", err)
	}
	// A batch mixing a refused set with a delete applies nothing.
	r := NewRequest()
	r.Commands = []Command{{Op: OpDelete, Key: "k1"}, {Op: OpSet, Key: "big", Value: "x"}}
	if err := a.Do(ctx, r); !errors.Is(err, ErrMemoryLimit) {
		t.Fatalf("batch = %v; want ErrMemoryLimit", err)
	}
	if _, ok, _ := a.Get(ctx, "k1", 0); !ok {
		t.Fatal("the delete of a refused batch was applied")
	}
	if err := a.Set(ctx, "k0", "short", 0); err != nil {
		t.Fatalf("shrinking overwrite at the limit: %v", err)
	}
	if _, err := a.Delete(ctx, "k1", 0); err != nil {
		t.Fatalf("delete at the limit: %v", err)
	}
	if err := a.Set(ctx, "k3", "0123456789", 0); err != nil {
		t.Fatalf("set after a delete made room: %v", err)
	}
	if st := a.Stats(); st.Bytes > limit {
		t.Fatalf("Bytes %d over the limit %d", st.Bytes, limit)
	}
}

// TestSnapshotReleaseStopsCloning goes through the owner goroutine:
// once a view from Snapshot is released (here from another goroutine),
// writes stop cloning shards; while one is live they clone.
func TestSnapshotReleaseStopsCloning(t *testing.T) {
	ctx := context.Background()
	set := func(t *testing.T, a *Actor, value string) {
		t.Helper()
		r := NewRequest()
		for i := range 10_000 { // every shard
			r.Commands = append(r.Commands, Command{Op: OpSet, Key: fmt.Sprint("k", i), Value: value})
		}
		if err := a.Do(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("released", func(t *testing.T) {
		a := mustStart(t, Config{})
		set(t, a, "v0")
		v, _, err := a.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			v.Release()
			v.Release()
		}()
		<-done
		set(t, a, "v1")
		a.Stop()
		if n := a.Clones(); n != 0 {
			t.Fatalf("%d shards cloned after the view was released; want 0", n)
		}
	})
	t.Run("live", func(t *testing.T) {
		a := mustStart(t, Config{})
		set(t, a, "v0")
		v, _, err := a.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		set(t, a, "v1")
		a.Stop()
		if n := a.Clones(); n == 0 {
			t.Fatal("no shard cloned under a live view")
		}
		for k, val := range viewContents(v) {
			if val != "v0" {
				t.Fatalf("live view has %s=%s; want v0", k, val)
			}
		}
		v.Release() // after Stop: a no-op that must not block
	})
}

// ExpireAt is one bounded pass and nothing after it: the keys left stay
// until the next ExpireAt, however many messages pass meanwhile.
func TestActorExpireAtLeavesNoBacklog(t *testing.T) {
	a := mustStart(t, Config{Rules: Rules{ExpireBatch: 10}})
	ctx := context.Background()
	r := NewRequest()
	for i := range 25 {
		r.Commands = append(r.Commands, Command{Op: OpSet, Key: string(rune('A' + i)), Value: "v", Deadline: 1 * sec})
	}
	if err := a.Do(ctx, r); err != nil {
		t.Fatal(err)
	}
	if n, more, err := a.ExpireAt(ctx, 2*sec, 7); err != nil || n != 7 || !more {
		t.Fatalf("ExpireAt = %d, %v, %v; want 7 removed, more", n, more, err)
	}
	for range 50 {
		if _, _, err := a.Get(ctx, "A", 0); err != nil {
			t.Fatal(err)
		}
	}
	if got := a.Stats().Keys; got != 18 {
		t.Fatalf("%d keys after one pass of 7 and 50 requests; want 18: no backlog pass", got)
	}
	if n, more, err := a.ExpireAt(ctx, 2*sec, 0); err != nil || n != 10 || !more {
		t.Fatalf("ExpireAt(max 0) = %d, %v, %v; want the Rules' 10, more", n, more, err)
	}
	if n, more, err := a.ExpireAt(ctx, 2*sec, 100); err != nil || n != 8 || more {
		t.Fatalf("last ExpireAt = %d, %v, %v; want 8, no more", n, more, err)
	}
}

// Restore swaps the data; a view of the old data stays readable, and its
// Release does not unpin a view of the new data that has the same gen.
func TestActorRestore(t *testing.T) {
	a := mustStart(t, Config{})
	ctx := context.Background()
	if err := a.Set(ctx, "old", "1", 0); err != nil {
		t.Fatal(err)
	}
	oldView, _, err := a.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := NewState()
	st.Set("new", "2", 0)
	if err := a.Restore(ctx, st, 41); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.Get(ctx, "old", 0); ok {
		t.Fatal("old key after Restore")
	}
	if v, ok, _ := a.Get(ctx, "new", 0); !ok || v != "2" {
		t.Fatalf("new = %q, %v after Restore", v, ok)
	}
	if got := a.Stats(); got.Seq != 41 || got.Keys != 1 {
		t.Fatalf("Stats after Restore = %+v; want seq 41, 1 key", got)
	}
	newView, seq, err := a.Snapshot(ctx) // gen 1 of st, as oldView was of the old
	if err != nil || seq != 41 {
		t.Fatalf("Snapshot after Restore: seq %d, %v", seq, err)
	}
	oldView.Release()
	if err := a.Set(ctx, "new", "3", 0); err != nil { // must clone: newView is live
		t.Fatal(err)
	}
	newView.Range(func(k, v string, _ int64) bool {
		if k == "new" && v != "2" {
			t.Errorf("the new view changed under a write: %s = %s", k, v)
		}
		return true
	})
	newView.Release()
	if err := a.Set(ctx, "seq", "x", 0); err != nil {
		t.Fatal(err)
	}
	if got := a.Stats().Seq; got != 43 {
		t.Fatalf("seq %d after two sets on 41", got)
	}
}
