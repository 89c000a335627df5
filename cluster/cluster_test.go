package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/hashicorp/raft"
	"go.uber.org/goleak"

	"kvstore/actor"
)

// A raft future committed but not applied when its node shuts down never
// resolves (hashicorp/raft#498); Node.wait abandons its waiter then.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("kvstore/cluster.(*Node).wait.func1"))
}

// testCluster is nodes on raft's in-memory transport, all connected,
// sharing one mock clock (only the leader's stamps count).
type testCluster struct {
	t     *testing.T
	clock *clock.Mock
	nodes map[string]*Node
	trans map[string]*raft.InmemTransport
	snaps map[string]*raft.InmemSnapshotStore
	logs  map[string]*raft.InmemStore
	rules actor.Rules
}

// fastRaft is raft tuned for tests: elections in tens of milliseconds.
// raft's timers run on the real clock; the tests wait on its futures and
// observations, never on sleeps.
func fastRaft() *raft.Config {
	c := raft.DefaultConfig()
	c.HeartbeatTimeout = 50 * time.Millisecond
	c.ElectionTimeout = 50 * time.Millisecond
	c.LeaderLeaseTimeout = 50 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	c.SnapshotInterval = time.Hour // snapshots only when a test asks
	c.SnapshotThreshold = 1 << 30
	c.TrailingLogs = 10
	return c
}

func newTestCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	return newTestClusterRules(t, n, actor.Rules{})
}

// newTestClusterRules is a cluster whose machines enforce rules.
func newTestClusterRules(t *testing.T, n int, rules actor.Rules) *testCluster {
	t.Helper()
	c := &testCluster{t: t, clock: clock.NewMock(), nodes: map[string]*Node{}, rules: rules,
		trans: map[string]*raft.InmemTransport{}, snaps: map[string]*raft.InmemSnapshotStore{}, logs: map[string]*raft.InmemStore{}}
	c.clock.Set(time.Unix(1_700_000_000, 0))
	servers := map[string]string{}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("n%d", i)
		_, tr := raft.NewInmemTransport(raft.ServerAddress(id))
		c.trans[id] = tr
		c.snaps[id] = raft.NewInmemSnapshotStore()
		c.logs[id] = raft.NewInmemStore()
		servers[id] = id
	}
	for a, ta := range c.trans {
		for b, tb := range c.trans {
			if a != b {
				ta.Connect(raft.ServerAddress(b), tb)
			}
		}
	}
	for id := range servers {
		c.start(id)
	}
	if err := c.nodes["n1"].Bootstrap(servers); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.closeAll)
	return c
}

// start runs node id on its stores (again, after a stop).
func (c *testCluster) start(id string) {
	c.t.Helper()
	n, err := New(Config{
		ID: id, ClientAddr: "client-" + id, Transport: c.trans[id], Logs: c.logs[id], Stable: c.logs[id], Snapshots: c.snaps[id],
		Clock: c.clock, ExpireInterval: -1, TempDir: c.t.TempDir(), Raft: fastRaft(), Rules: c.rules,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	c.nodes[id] = n
}

func (c *testCluster) stopNode(id string) {
	c.t.Helper()
	if err := c.nodes[id].Close(); err != nil {
		c.t.Fatalf("close %s: %v", id, err)
	}
	delete(c.nodes, id)
}

func (c *testCluster) closeAll() {
	for id := range c.nodes {
		c.stopNode(id)
	}
	for _, tr := range c.trans {
		tr.Close()
	}
}

// leader waits until one running node is the leader and all running
// nodes agree on it.
func (c *testCluster) leader() *Node {
	c.t.Helper()
	obs := make(chan raft.Observation, 64)
	for _, n := range c.nodes {
		o := raft.NewObserver(obs, false, func(o *raft.Observation) bool {
			_, ok := o.Data.(raft.LeaderObservation)
			return ok
		})
		n.raft.RegisterObserver(o)
		defer n.raft.DeregisterObserver(o)
	}
	timeout := time.After(10 * time.Second)
	for {
		var leader *Node
		agree := true
		for _, n := range c.nodes {
			if n.raft.State() == raft.Leader {
				leader = n
			}
		}
		if leader != nil {
			for _, n := range c.nodes {
				if _, id := n.raft.LeaderWithID(); string(id) != leader.id {
					agree = false
				}
			}
			if agree {
				return leader
			}
		}
		select {
		case <-obs:
		case <-timeout:
			c.t.Fatal("no leader within 10s")
		}
	}
}

// followers returns the running nodes but the leader.
func (c *testCluster) followers(leader *Node) []*Node {
	var out []*Node
	for _, n := range c.nodes {
		if n != leader {
			out = append(out, n)
		}
	}
	return out
}

// caughtUp waits until every running node has applied what the leader
// committed: the leader commits an empty batch, which every FSM applies
// after everything before it.
func (c *testCluster) caughtUp(leader *Node) {
	c.t.Helper()
	fut := leader.raft.Apply(appendBatch(nil, leader.now(), nil), 10*time.Second)
	if err := fut.Error(); err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range c.nodes {
		if err := n.fsm.waitApplied(ctx, fut.Index()); err != nil {
			c.t.Fatalf("%s did not apply through %d: %v (at %d)", n.id, fut.Index(), err, n.fsm.appliedIndex())
		}
	}
}

// until waits until cond holds, checking whenever n applies an entry.
func until(t *testing.T, n *Node, what string, cond func() bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		c := applyWaitc(n.fsm)
		if cond() {
			return
		}
		select {
		case <-c:
		case <-timeout:
			t.Fatalf("%s: not within 10s", what)
		}
	}
}

// data is every entry of n's data, expired or not, as key=value.
func data(t *testing.T, n *Node) map[string]string {
	t.Helper()
	v, _, err := n.actor.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer v.Release()
	out := map[string]string{}
	v.Range(func(k, val string, _ int64) bool {
		out[k] = val
		return true
	})
	return out
}

// sameData fails unless every running node holds want exactly.
func (c *testCluster) sameData(want map[string]string) {
	c.t.Helper()
	for id, n := range c.nodes {
		if got := data(c.t, n); !maps.Equal(got, want) {
			c.t.Errorf("%s holds %d keys %v; want %d %v", id, len(got), got, len(want), want)
		}
	}
}

func TestEntryRoundTrip(t *testing.T) {
	cmds := []actor.Command{
		{Op: actor.OpSet, Key: "k", Value: "v", Deadline: 1234},
		{Op: actor.OpGet, Key: "k"},
		{Op: actor.OpDelete, Key: ""},
		{Op: actor.OpSet, Key: "ü", Value: string(make([]byte, 300))},
		{Op: actor.OpIncr, Key: "n", Delta: -3},
		{Op: actor.OpSet, Flags: actor.FlagNX | actor.FlagRelative, Key: "r", Value: "x", Deadline: 5},
		{Op: actor.OpDelete, Flags: actor.FlagGet, Key: "d"},
	}
	b := appendBatch(nil, -5, cmds)
	e, err := decodeEntry(b)
	if err != nil || e.kind != entryBatch || e.now != -5 || len(e.cmds) != len(cmds) {
		t.Fatalf("decode = %+v, %v", e, err)
	}
	for i := range cmds {
		if e.cmds[i] != cmds[i] {
			t.Errorf("command %d = %+v, want %+v", i, e.cmds[i], cmds[i])
		}
	}
	g := appendGroups(nil, 7, [][]actor.Command{cmds[:2], nil, cmds[2:]})
	if e, err := decodeEntry(g); err != nil || e.kind != entryGroups || e.now != 7 || len(e.groups) != 3 ||
		len(e.groups[0]) != 2 || len(e.groups[1]) != 0 || len(e.groups[2]) != len(cmds)-2 || e.groups[2][1] != cmds[3] {
		t.Fatalf("groups decode = %+v, %v", e, err)
	}
	x := appendExpire(nil, 99, 256)
	if e, err := decodeEntry(x); err != nil || e.kind != entryExpire || e.now != 99 || e.max != 256 {
		t.Fatalf("expire decode = %+v, %v", e, err)
	}
	// Every truncation and a trailing byte are refused, never a panic.
	for _, enc := range [][]byte{b, g, x} {
		for n := range len(enc) {
			if _, err := decodeEntry(enc[:n]); !errors.Is(err, errBadEntry) {
				t.Errorf("%d of %d bytes: %v; want errBadEntry", n, len(enc), err)
			}
		}
		if _, err := decodeEntry(append(append([]byte{}, enc...), 0)); !errors.Is(err, errBadEntry) {
			t.Errorf("trailing byte: %v", err)
		}
	}
}

// The requests the proposer takes together share one log entry, and
// each is applied, and answered, on its own: one the machine refuses
// fails alone, on every replica, and the others' relative deadlines count
// from the entry's time.
func TestRequestsShareAnEntry(t *testing.T) {
	c := newTestClusterRules(t, 3, actor.Rules{MaxValueBytes: 8})
	leader := c.leader()
	ctx := context.Background()
	if err := leader.Set(ctx, "warm", "up", 0); err != nil {
		t.Fatal(err)
	}
	before := leader.raft.LastIndex()
	groups := [][]actor.Command{
		{{Op: actor.OpSet, Flags: actor.FlagRelative, Key: "a", Value: "1", Deadline: int64(time.Minute)}},
		{{Op: actor.OpSet, Key: "b", Value: "far too long"}, {Op: actor.OpSet, Key: "c", Value: "3"}},
		{{Op: actor.OpDelete, Key: "warm"}, {Op: actor.OpGet, Key: "a"}},
	}
	var batch []*proposal
	for _, g := range groups {
		batch = append(batch, &proposal{ctx: ctx, cmds: g, size: commandsSize(g), done: make(chan proposalResult, 1)})
	}
	leader.proposeBatch(batch, 0)
	got := make([]proposalResult, len(batch))
	for i, p := range batch {
		got[i] = <-p.done
	}
	if err := got[0].err; err != nil {
		t.Errorf("group 0: %v", err)
	}
	if err := got[1].err; !errors.Is(err, actor.ErrTooLarge) {
		t.Errorf("group 1: %v; want ErrTooLarge, alone", err)
	}
	if r := got[2]; r.err != nil || len(r.results) != 2 || !r.results[0].Found || !r.results[1].Found || r.results[1].Value != "1" {
		t.Errorf("group 2 = %+v; want the delete and the get of a, which the group before it set", r)
	}
	if n := leader.raft.LastIndex() - before; n != 1 {
		t.Errorf("the three requests took %d log entries; want 1", n)
	}
	c.caughtUp(leader)
	c.sameData(map[string]string{"a": "1"})
	// a expires a minute after the entry's time, judged on every replica
	// by the leader's time in the next entry.
	for _, step := range []struct {
		by   time.Duration
		want map[string]string
	}{{59 * time.Second, map[string]string{"a": "1"}}, {2 * time.Second, map[string]string{}}} {
		c.clock.Add(step.by)
		if _, _, err := leader.ExpireNow(ctx); err != nil {
			t.Fatal(err)
		}
		c.caughtUp(leader)
		c.sameData(step.want)
	}
}

// Writes on the leader reach every replica in order; a follower refuses
// writes and linearizable reads, naming the leader, and serves stale
// reads of what it applied.
func TestReplicatesWrites(t *testing.T) {
	c := newTestCluster(t, 3)
	leader := c.leader()
	ctx := context.Background()
	want := map[string]string{}
	for i := range 100 {
		k := fmt.Sprintf("k%03d", i)
		if err := leader.Set(ctx, k, "v"+k, 0); err != nil {
			t.Fatal(err)
		}
		want[k] = "v" + k
	}
	for i := 0; i < 100; i += 3 {
		k := fmt.Sprintf("k%03d", i)
		if found, err := leader.Delete(ctx, k); err != nil || !found {
			t.Fatalf("Delete %s = %v, %v", k, found, err)
		}
		delete(want, k)
	}
	if v, ok, err := leader.Get(ctx, "k001", false); err != nil || !ok || v != "vk001" {
		t.Fatalf("leader Get = %q, %v, %v", v, ok, err)
	}
	c.caughtUp(leader)
	c.sameData(want)
	for _, f := range c.followers(leader) {
		var le *LeaderError
		if err := f.Set(ctx, "x", "y", 0); !errors.As(err, &le) || le.ID != leader.id || !errors.Is(err, ErrNotLeader) {
			t.Errorf("Set on follower %s: %v; want ErrNotLeader naming %s", f.id, err, leader.id)
		}
		if _, _, err := f.Get(ctx, "k001", false); !errors.Is(err, ErrNotLeader) {
			t.Errorf("linearizable Get on follower %s: %v", f.id, err)
		}
		if v, ok, err := f.Get(ctx, "k001", true); err != nil || !ok || v != "vk001" {
			t.Errorf("stale Get on follower %s = %q, %v, %v", f.id, v, ok, err)
		}
	}
}

// A write acknowledged before the leader dies is on the new leader; a
// write that failed said why (never a silent loss), and writes go on.
func TestLeaderChangeMidWrite(t *testing.T) {
	c := newTestCluster(t, 3)
	leader := c.leader()
	var (
		mu    sync.Mutex
		acked = map[string]string{}
		wg    sync.WaitGroup
		warm  = make(chan struct{})
		once  sync.Once
	)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				k := fmt.Sprintf("w%d/%d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				err := leader.Set(ctx, k, k, 0)
				cancel()
				if err != nil {
					if !errors.Is(err, ErrNotLeader) && !errors.Is(err, actor.ErrOutcomeUnknown) && !errors.Is(err, ErrNoLeader) {
						t.Errorf("write %s: %v; want not-leader, no-leader or outcome-unknown", k, err)
					}
					return
				}
				mu.Lock()
				acked[k] = k
				n := len(acked)
				mu.Unlock()
				if n >= 200 {
					once.Do(func() { close(warm) })
				}
			}
		})
	}
	<-warm
	c.stopNode(leader.id) // while the writers write
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 200 {
		t.Fatalf("only %d writes acknowledged before the leader stopped", len(acked))
	}
	next := c.leader()
	if next.id == leader.id {
		t.Fatal("the stopped node is still the leader")
	}
	ctx := context.Background()
	for k, v := range acked {
		got, ok, err := next.Get(ctx, k, false)
		if err != nil || !ok || got != v {
			t.Fatalf("acknowledged %s = %q, %v, %v on the new leader %s", k, got, ok, err, next.id)
		}
	}
	if err := next.Set(ctx, "after", "failover", 0); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d writes acknowledged before %s stopped; %s took over", len(acked), leader.id, next.id)
}

// A follower cut off while the leader compacts its log catches up by
// installing the leader's snapshot.
func TestSnapshotInstallToLaggingFollower(t *testing.T) {
	c := newTestCluster(t, 3)
	leader := c.leader()
	lag := c.followers(leader)[0]
	for id, tr := range c.trans {
		if id != lag.id {
			tr.Disconnect(raft.ServerAddress(lag.id))
			c.trans[lag.id].Disconnect(raft.ServerAddress(id))
		}
	}
	ctx := context.Background()
	want := map[string]string{}
	for i := range 200 {
		k := fmt.Sprintf("k%d", i)
		if err := leader.Set(ctx, k, k, 0); err != nil {
			t.Fatal(err)
		}
		want[k] = k
	}
	if err := leader.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	for id, tr := range c.trans {
		if id != lag.id {
			tr.Connect(raft.ServerAddress(lag.id), c.trans[lag.id])
			c.trans[lag.id].Connect(raft.ServerAddress(id), tr)
		}
	}
	c.caughtUp(leader)
	c.sameData(want)
	if got := lag.fsm.restores.Load(); got != 1 {
		t.Errorf("%s installed %d snapshots; want 1 (its log was compacted away)", lag.id, got)
	}
	if id, addr := lag.LeaderClient(); id != leader.id || addr != "client-"+leader.id {
		t.Errorf("%s knows the leader as %q at %q; want %s at client-%s", lag.id, id, addr, leader.id, leader.id)
	}
}

// Only the leader expires keys, at its time, through the log: a follower
// keeps an expired key until the expire entry arrives, hides nothing on
// its own clock, and a new leader goes on where the old one stopped.
func TestExpiryIsLeaderDriven(t *testing.T) {
	c := newTestCluster(t, 3)
	leader := c.leader()
	ctx := context.Background()
	if err := leader.Set(ctx, "short", "x", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := leader.Set(ctx, "forever", "y", 0); err != nil {
		t.Fatal(err)
	}
	c.caughtUp(leader)
	c.clock.Add(20 * time.Second)
	if _, ok, err := leader.Get(ctx, "short", false); err != nil || ok {
		t.Fatalf("leader Get after the TTL = %v, %v; want not found", ok, err)
	}
	for _, f := range c.followers(leader) {
		// Applied time is still the write's: the key is live there.
		if _, ok, _ := f.Get(ctx, "short", true); !ok {
			t.Errorf("%s hid short on its own clock", f.id)
		}
	}
	c.sameData(map[string]string{"short": "x", "forever": "y"})
	if removed, more, err := leader.ExpireNow(ctx); err != nil || removed != 1 || more {
		t.Fatalf("ExpireNow = %d, %v, %v; want 1 removed", removed, more, err)
	}
	c.caughtUp(leader)
	c.sameData(map[string]string{"forever": "y"})
	for _, f := range c.followers(leader) {
		if _, ok, _ := f.Get(ctx, "short", true); ok {
			t.Errorf("%s still shows short after the expire entry", f.id)
		}
	}

	// Failover: the deadline is absolute, the new leader removes it.
	if err := leader.Set(ctx, "again", "z", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	c.caughtUp(leader)
	c.stopNode(leader.id)
	c.clock.Add(20 * time.Second)
	next := c.leader()
	if removed, _, err := next.ExpireNow(ctx); err != nil || removed != 1 {
		t.Fatalf("ExpireNow on the new leader = %d, %v; want 1", removed, err)
	}
	c.caughtUp(next)
	c.sameData(map[string]string{"forever": "y"})
}

// Every node learns the leader's client address through the log, and
// again after the leadership moves.
func TestLeaderClientAddressIsReplicated(t *testing.T) {
	c := newTestCluster(t, 3)
	leader := c.leader()
	for _, f := range c.followers(leader) {
		until(t, f, f.id+" learns the leader's address", func() bool {
			_, addr := f.LeaderClient()
			return addr == "client-"+leader.id
		})
	}
	c.stopNode(leader.id)
	next := c.leader()
	for _, f := range c.followers(next) {
		until(t, f, f.id+" learns the new leader's address", func() bool {
			id, addr := f.LeaderClient()
			return id == next.id && addr == "client-"+next.id
		})
		if m := f.Members(); m[leader.id] != "client-"+leader.id {
			t.Errorf("%s forgot the old leader's address: %v", f.id, m)
		}
	}
}

// A snapshot carries the data, the leader time and the members; restoring
// it on a fresh FSM gives all three back, and a damaged one is refused
// with the data untouched.
func TestSnapshotRoundTrip(t *testing.T) {
	src := newFSM(actor.New(actor.Config{ExpireInterval: -1}), t.TempDir())
	defer src.actor.Stop()
	ctx := context.Background()
	for _, e := range [][]byte{
		appendBatch(nil, 100, []actor.Command{{Op: actor.OpSet, Key: "a", Value: "1"}, {Op: actor.OpSet, Key: "old", Value: "x", Deadline: 50}}),
		appendMember(nil, 200, "n1", "127.0.0.1:50051"),
	} {
		if r := src.applyEntry(e); r.err != nil {
			t.Fatal(r.err)
		}
	}
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	store := raft.NewInmemSnapshotStore()
	sink, err := store.Create(raft.SnapshotVersionMax, 2, 1, raft.Configuration{}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	_, rc, err := store.Open(sink.ID())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}

	dst := newFSM(actor.New(actor.Config{ExpireInterval: -1}), t.TempDir())
	defer dst.actor.Stop()
	if err := dst.Restore(io.NopCloser(bytes.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	// The expired key is kept: replicas that did not restore hold it too.
	if got := dst.actor.Stats(); got.Keys != 2 || got.Seq != 2 {
		t.Errorf("restored %+v; want 2 keys at seq 2", got)
	}
	if dst.now.Load() != 200 || dst.member("n1") != "127.0.0.1:50051" {
		t.Errorf("restored now %d, members %v", dst.now.Load(), dst.memberList())
	}
	for _, cut := range []int{0, 8, snapHeaderSize + 3, len(raw) - 1} {
		if err := dst.Restore(io.NopCloser(bytes.NewReader(raw[:cut]))); err == nil {
			t.Errorf("a snapshot cut at %d of %d bytes restored", cut, len(raw))
		}
	}
	if v, ok, _ := dst.actor.Get(ctx, "a", 0); !ok || v != "1" {
		t.Errorf("a failed restore changed the data: a = %q, %v", v, ok)
	}
}

// addNode starts node id, connected to all, with no cluster state: it
// waits to be added.
func (c *testCluster) addNode(id string) {
	c.t.Helper()
	_, tr := raft.NewInmemTransport(raft.ServerAddress(id))
	for other, to := range c.trans {
		tr.Connect(raft.ServerAddress(other), to)
		to.Connect(raft.ServerAddress(id), tr)
	}
	c.trans[id] = tr
	c.snaps[id] = raft.NewInmemSnapshotStore()
	c.logs[id] = raft.NewInmemStore()
	c.start(id)
}

// Members join (voter or not), leave and hand over the leadership; a
// follower refuses the changes, naming the leader.
func TestMembership(t *testing.T) {
	c := newTestCluster(t, 3)
	leader := c.leader()
	ctx := context.Background()
	if err := leader.Set(ctx, "before", "join", 0); err != nil {
		t.Fatal(err)
	}
	c.addNode("n4")
	if _, err := c.followers(leader)[0].AddMember(ctx, "n4", "n4", "client-n4", true); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("AddMember on a follower: %v", err)
	}
	if _, err := leader.AddMember(ctx, "n4", "n4", "client-n4", true); err != nil {
		t.Fatal(err)
	}
	c.caughtUp(leader)
	c.sameData(map[string]string{"before": "join"})
	st, err := c.nodes["n4"].Status()
	if err != nil {
		t.Fatal(err)
	}
	voters := map[string]bool{}
	for _, m := range st.Members {
		voters[m.ID] = m.Voter
	}
	if len(st.Members) != 4 || voters["n4"] || !voters["n1"] || st.LeaderID != leader.id {
		t.Fatalf("n4's status %+v; want 4 members, n4 a nonvoter, leader %s", st, leader.id)
	}

	var victim *Node
	for _, f := range c.followers(leader) {
		if f.id != "n4" {
			victim = f
		}
	}
	if _, err := leader.RemoveMember(ctx, victim.id); err != nil {
		t.Fatal(err)
	}
	c.stopNode(victim.id)
	if st, _ := leader.Status(); len(st.Members) != 3 {
		t.Fatalf("after removing %s: %+v", victim.id, st.Members)
	}
	// Two voters left (the leader and one more) plus n4: writes need both.
	if err := leader.Set(ctx, "after", "remove", 0); err != nil {
		t.Fatal(err)
	}
	var other *Node
	for _, f := range c.followers(leader) {
		if f.id != "n4" {
			other = f
		}
	}
	if err := leader.TransferLeader(ctx, other.id); err != nil {
		t.Fatal(err)
	}
	if next := c.leader(); next.id != other.id {
		t.Fatalf("leader %s after the transfer to %s", next.id, other.id)
	}
}
