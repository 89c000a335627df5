package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"kvstore/actor"
)

// Errors of a Node's calls.
var (
	// ErrNotLeader is returned for a write or a linearizable read on a
	// node that is not the leader: nothing was proposed, and the caller
	// may send it to the leader (LeaderError names it).
	ErrNotLeader = actor.ErrNotLeader
	// ErrNoLeader is returned when no leader is known.
	ErrNoLeader = actor.ErrNoLeader
)

// LeaderError is ErrNotLeader with the leader this node knows of, if any.
type LeaderError struct {
	ID      string // "" when no leader is known
	Address string // its raft address
}

func (e *LeaderError) Error() string {
	if e.ID == "" {
		return ErrNoLeader.Error()
	}
	return fmt.Sprintf("%v: the leader is %s at %s", ErrNotLeader, e.ID, e.Address)
}

func (e *LeaderError) Is(target error) bool {
	return target == ErrNotLeader || (e.ID == "" && target == ErrNoLeader)
}

// DefaultExpireBatch bounds the keys one expire entry removes; every
// replica applies the bound the entry carries.
const DefaultExpireBatch = actor.DefaultExpireBatch

// Config configures a Node.
type Config struct {
	// ID is the node's raft server ID, unique in the cluster.
	ID string
	// ClientAddr is the address clients (and other nodes forwarding to
	// this one as leader) reach this node's gRPC API at. As leader the
	// node records it in the log, so every node learns it.
	ClientAddr string
	// Transport carries raft's messages (raft.NewTCPTransport, or
	// raft.InmemTransport in tests).
	Transport raft.Transport
	// Logs and Stable hold raft's log and its term and vote, Snapshots
	// its snapshots; all must be durable for a real node.
	Logs      raft.LogStore
	Stable    raft.StableStore
	Snapshots raft.SnapshotStore
	// Clock stamps the entries this node proposes as leader and drives
	// its expiry loop; nil is the real clock.
	Clock clock.Clock
	// Rules are the limits every replica's command machine enforces; the
	// nodes of one cluster must agree on them.
	Rules actor.Rules
	// ExpireInterval is how often the leader proposes the removal of
	// expired keys; 0 means actor.DefaultExpireInterval, negative none
	// (tests call ExpireNow).
	ExpireInterval time.Duration
	// TempDir holds snapshots being installed; "" is os.TempDir().
	TempDir string
	// Raft tunes raft (timeouts, snapshot thresholds); nil is
	// raft.DefaultConfig. LocalID and Logger are set by New.
	Raft *raft.Config
	// LogOutput receives raft's log lines; nil discards them.
	LogOutput io.Writer
	// Publish, on a follower, asks the leader (at its client address) to
	// record this node's client address; nil leaves followers' addresses
	// to AddMember. Package server calls the leader's Admin.PublishMember.
	Publish func(ctx context.Context, leaderAddr, id, clientAddr string) error
	// ObserveApply, if set, gets the time from proposing an entry to its
	// being applied here, for each write this node leads.
	ObserveApply func(time.Duration)
}

// Node is one replica: raft, the FSM and the actor it feeds.
type Node struct {
	id         string
	clientAddr string
	publish    func(ctx context.Context, leaderAddr, id, clientAddr string) error
	observe    func(time.Duration)

	// leaderChanges counts the leadership changes this node observed.
	leaderChanges atomic.Uint64
	raft          *raft.Raft
	fsm           *fsm
	actor         *actor.Actor
	clock         clock.Clock

	// leaderc is closed and replaced whenever the leader changes.
	leaderMu sync.Mutex
	leaderc  chan struct{}

	// Concurrent linearizable reads share leadership checks: vnext is
	// the round the reads arriving now wait for, which starts once the
	// one in flight (vrunning) is done.
	vmu      sync.Mutex
	vnext    *verifyRound
	vrunning bool

	// readyTerm is the term whose first barrier has been applied:
	// from then on the commit index is this leader's own.
	readyTerm atomic.Uint64

	// unsafeFollowerReads breaks linearizability on purpose, for the
	// test that must catch it: a follower answers reads from its own
	// data instead of refusing them.
	unsafeFollowerReads bool

	// propc carries writes to the proposer (propose.go).
	propc chan *proposal

	stop      chan struct{}
	loops     sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New starts a node: it restores raft's newest snapshot, if any, and
// replays raft's log. A new cluster needs Bootstrap once, on one node or
// on all with the same servers.
func New(cfg Config) (*Node, error) {
	clk := cfg.Clock
	if clk == nil {
		clk = clock.New()
	}
	rc := cfg.raftConfig()
	// Replicas never expire keys on their own: only expire entries do.
	a := actor.New(actor.Config{Clock: clk, ExpireInterval: -1, Rules: cfg.Rules})
	tempDir := cfg.TempDir
	if tempDir == "" {
		tempDir = os.TempDir()
	}
	f := newFSM(a, tempDir)
	r, err := raft.NewRaft(rc, f, cfg.Logs, cfg.Stable, cfg.Snapshots, cfg.Transport)
	if err != nil {
		a.Stop()
		return nil, fmt.Errorf("cluster: start raft: %w", err)
	}
	n := &Node{id: cfg.ID, clientAddr: cfg.ClientAddr, publish: cfg.Publish, observe: cfg.ObserveApply, raft: r, fsm: f, actor: a, clock: clk,
		stop: make(chan struct{}), leaderc: make(chan struct{}), propc: make(chan *proposal, maxGroups)}
	obs := make(chan raft.Observation, 1)
	o := raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	r.RegisterObserver(o)
	n.loops.Add(2)
	go n.leaderLoop(obs, o)
	go n.proposeLoop()
	interval := cfg.ExpireInterval
	if interval == 0 {
		interval = actor.DefaultExpireInterval
	}
	if interval > 0 {
		t := clk.Ticker(interval)
		n.loops.Add(1)
		go n.expireLoop(t)
	}
	return n, nil
}

// raftConfig is cfg.Raft (or raft's defaults) for this node.
func (cfg *Config) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	if cfg.Raft != nil {
		c := *cfg.Raft
		rc = &c
	}
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = raftLogger(cfg.LogOutput)
	return rc
}

// raftLogger is raft's logger writing to out (nil: discarded).
func raftLogger(out io.Writer) hclog.Logger {
	if out == nil {
		out = io.Discard
	}
	return hclog.New(&hclog.LoggerOptions{Name: "raft", Output: out, Level: hclog.Info})
}

// Bootstrap makes a new cluster of servers (raft ID to raft address). It
// fails with raft.ErrCantBootstrap once the node holds cluster state.
func (n *Node) Bootstrap(servers map[string]string) error {
	return n.raft.BootstrapCluster(voters(servers)).Error()
}

// voters is a configuration of servers (raft ID to raft address), all
// voters, in ID order.
func voters(servers map[string]string) raft.Configuration {
	var c raft.Configuration
	for _, id := range slices.Sorted(maps.Keys(servers)) {
		c.Servers = append(c.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(servers[id])})
	}
	return c
}

// Raft is the node's raft, for membership and status.
func (n *Node) Raft() *raft.Raft { return n.raft }

// Actor is the node's actor: its data, for stale reads and statistics.
func (n *Node) Actor() *actor.Actor { return n.actor }

// Close shuts raft down, then the actor.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		close(n.stop)
		n.loops.Wait()
		n.closeErr = n.raft.Shutdown().Error()
		n.actor.Stop()
	})
	return n.closeErr
}

// now is the time this node stamps on an entry as leader: its clock, but
// never before the newest leader time applied, so that time seen through
// the log never goes back when leadership moves to a node whose clock is
// behind.
func (n *Node) now() int64 {
	return max(n.clock.Now().UnixNano(), n.fsm.now.Load())
}

// notLeader is the error for a call on a follower.
func (n *Node) notLeader() error {
	addr, id := n.raft.LeaderWithID()
	return &LeaderError{ID: string(id), Address: string(addr)}
}

// propose appends data to the log and waits until it is committed and
// applied here, returning the FSM's response. ctx bounds both the wait
// for raft to accept the entry and the wait for its outcome; an entry
// accepted but not known committed by then, or when leadership is lost,
// is an outcome-unknown error: the next leader may still commit it.
func (n *Node) propose(ctx context.Context, data []byte) (*applyResult, error) {
	if n.raft.State() != raft.Leader {
		return nil, n.notLeader()
	}
	timeout := time.Duration(0)
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Millisecond)
	}
	start := time.Now()
	fut := n.raft.Apply(data, timeout)
	res, err := n.outcome(ctx, fut)
	if err == nil && n.observe != nil {
		n.observe(time.Since(start))
	}
	return res, err
}

// errUnresolved is wait's error for a future that did not resolve in
// time: whatever it stood for may still happen.
var errUnresolved = errors.New("cluster: not known to have been committed")

// wait waits for fut until ctx ends or the node stops. raft's futures
// have no channel and no deadline, and one committed but not yet applied
// when raft shuts down never resolves (hashicorp/raft#498), so the wait
// is on a goroutine of its own, abandoned then. An abandoned write may
// yet be committed: the error wraps actor.ErrOutcomeUnknown.
func (n *Node) wait(ctx context.Context, fut raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- fut.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: %w within the deadline (%w)", actor.ErrOutcomeUnknown, errUnresolved, ctx.Err())
	case <-n.stop:
		return fmt.Errorf("%w: %w: the node is stopping", actor.ErrOutcomeUnknown, errUnresolved)
	}
}

// Apply runs cmds as one batch, atomically, at this leader's time. Gets
// in it see the batch's earlier commands.
func (n *Node) Apply(ctx context.Context, cmds []actor.Command) ([]actor.Result, error) {
	return n.submit(ctx, cmds)
}

// Set stores value under key, expiring ttl after this leader's time
// (0: never). It returns once the write is committed on a quorum and
// applied here.
func (n *Node) Set(ctx context.Context, key, value string, ttl time.Duration) error {
	// The machine makes the deadline absolute from the entry's time.
	_, err := n.submit(ctx, []actor.Command{{Op: actor.OpSet, Flags: actor.FlagRelative, Key: key, Value: value, Deadline: max(int64(ttl), 0)}})
	return err
}

// Delete removes key and reports whether it was live.
func (n *Node) Delete(ctx context.Context, key string) (bool, error) {
	res, err := n.Apply(ctx, []actor.Command{{Op: actor.OpDelete, Key: key}})
	if err != nil {
		return false, err
	}
	return res[0].Found, nil
}

// Get reads key. Linearizable (stale false), on the leader only: it sees
// every write committed before it was called. Stale, on any node: it
// sees this replica's applied state, judged at the newest leader time
// applied here.
func (n *Node) Get(ctx context.Context, key string, stale bool) (string, bool, error) {
	now := n.fsm.now.Load()
	if n.unsafeFollowerReads && n.raft.State() != raft.Leader {
		stale = true
	}
	if !stale {
		if err := n.readIndex(ctx); err != nil {
			return "", false, err
		}
		now = n.now()
	}
	return n.actor.Get(ctx, key, now)
}

// readIndex waits until this node may answer a linearizable read: it is
// the leader (confirmed by a quorum after the read began), and it has
// applied every entry committed when the read began. The first read of a
// term first applies a barrier, so that the commit index is this term's.
func (n *Node) readIndex(ctx context.Context) error {
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	if term := n.raft.CurrentTerm(); n.readyTerm.Load() != term {
		if err := n.barrier(ctx); err != nil {
			return err
		}
		n.readyTerm.Store(term)
	}
	idx := n.raft.CommitIndex()
	if err := n.verifyLeader(ctx); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return n.notLeader()
		}
		if errors.Is(err, errUnresolved) {
			return fmt.Errorf("%w: the leadership was not confirmed in time", ErrNoLeader)
		}
		return fmt.Errorf("%w: %w", ErrNoLeader, err)
	}
	return n.fsm.waitApplied(ctx, idx)
}

// verifyRound is one leadership check shared by the reads waiting on it.
type verifyRound struct {
	done chan struct{}
	err  error
}

// verifyLeader confirms with a quorum that this node still leads, in a
// round that starts after the call: the reads that arrive while a round
// is in flight all wait for the next one, so a burst of reads costs two
// rounds of heartbeats, not one per read.
func (n *Node) verifyLeader(ctx context.Context) error {
	n.vmu.Lock()
	if n.vnext == nil {
		n.vnext = &verifyRound{done: make(chan struct{})}
	}
	r := n.vnext
	if !n.vrunning {
		n.vrunning = true
		go n.runVerify()
	}
	n.vmu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return fmt.Errorf("%w: %w within the deadline (%w)", actor.ErrOutcomeUnknown, errUnresolved, ctx.Err())
	case <-n.stop:
		return fmt.Errorf("%w: %w: the node is stopping", actor.ErrOutcomeUnknown, errUnresolved)
	}
}

// runVerify runs rounds while reads wait for one. raft answers a
// leadership check when it loses the leadership or shuts down, so a round
// always ends.
func (n *Node) runVerify() {
	for {
		n.vmu.Lock()
		r := n.vnext
		n.vnext = nil
		if r == nil {
			n.vrunning = false
			n.vmu.Unlock()
			return
		}
		n.vmu.Unlock()
		r.err = n.raft.VerifyLeader().Error()
		close(r.done)
	}
}

// barrier appends a barrier and waits until it is applied; entries
// before it are applied too. The FSM never sees a barrier, so its index
// is recorded as applied here.
func (n *Node) barrier(ctx context.Context) error {
	timeout := time.Duration(0)
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Millisecond)
	}
	fut := n.raft.Barrier(timeout)
	if err := n.wait(ctx, fut); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return n.notLeader()
		}
		if errors.Is(err, errUnresolved) {
			return fmt.Errorf("%w: the term's barrier was not applied in time", ErrNoLeader)
		}
		return fmt.Errorf("%w: %w", ErrNoLeader, err)
	}
	if f, ok := fut.(raft.IndexFuture); ok {
		n.fsm.advance(f.Index())
	}
	return nil
}

// ExpireNow has the leader propose one expire entry at its time and
// returns how many keys it removed and whether expired keys remain.
func (n *Node) ExpireNow(ctx context.Context) (removed int, more bool, err error) {
	res, err := n.propose(ctx, appendExpire(nil, n.now(), DefaultExpireBatch))
	if err != nil {
		return 0, false, err
	}
	return res.removed, res.more, nil
}

// maxExpirePerTick bounds the expire entries one tick proposes, so that
// a mass expiry is spread over ticks instead of flooding the log.
const maxExpirePerTick = 16

// LeaderClient returns the leader's ID and client address, "" for what
// this node does not know.
func (n *Node) LeaderClient() (id, addr string) {
	_, lid := n.raft.LeaderWithID()
	return string(lid), n.fsm.member(string(lid))
}

// Members returns the client addresses of the nodes, by ID, as the log
// recorded them.
func (n *Node) Members() map[string]string { return n.fsm.memberList() }

// WaitApplied waits until raft has handed this node's state machine
// every entry through idx (barriers and no-ops included), or ctx ends.
func (n *Node) WaitApplied(ctx context.Context, idx uint64) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for n.raft.AppliedIndex() < idx {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// Handed over is not yet applied; on the leader a barrier's
	// completion is. A follower has nothing to wait for past raft's
	// applied index.
	if n.raft.State() != raft.Leader {
		return nil
	}
	return n.barrier(ctx)
}

// LeaderChanged returns a channel closed at the next leadership change
// this node observes.
func (n *Node) LeaderChanged() <-chan struct{} {
	n.leaderMu.Lock()
	defer n.leaderMu.Unlock()
	return n.leaderc
}

// Stats are a node's raft gauges and counters, for metrics.
type Stats struct {
	Leader, HasLeader         bool
	Term                      uint64
	CommitIndex, AppliedIndex uint64
	// LastContact is how long ago a follower last heard from the leader;
	// negative on the leader or when it never has.
	LastContact      time.Duration
	LeaderChanges    uint64
	SnapshotInstalls uint64
}

// Stats reads the node's counters without waiting for raft's loops.
func (n *Node) Stats() Stats {
	_, leader := n.raft.LeaderWithID()
	st := Stats{
		Leader: n.raft.State() == raft.Leader, HasLeader: leader != "",
		Term: n.raft.CurrentTerm(), CommitIndex: n.raft.CommitIndex(), AppliedIndex: n.raft.AppliedIndex(),
		LastContact: -1, LeaderChanges: n.leaderChanges.Load(), SnapshotInstalls: uint64(n.fsm.restores.Load()),
	}
	if lc := n.raft.LastContact(); !st.Leader && !lc.IsZero() {
		st.LastContact = time.Since(lc)
	}
	return st
}

// Leader waits until this node knows the leader and its client address,
// or ctx ends, and returns what it knows then; err is ctx's.
func (n *Node) Leader(ctx context.Context) (id, addr string, err error) {
	for {
		n.leaderMu.Lock()
		changed := n.leaderc
		n.leaderMu.Unlock()
		applied := applyWaitc(n.fsm)
		if id, addr = n.LeaderClient(); id != "" && addr != "" {
			return id, addr, nil
		}
		select {
		case <-changed:
		case <-applied:
		case <-ctx.Done():
			return id, addr, ctx.Err()
		}
	}
}

// applyWaitc is closed when f next applies an entry.
func applyWaitc(f *fsm) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.waitc
}

// leaderLoop follows leadership changes: it wakes Leader's waiters and,
// on the leader, records this node's client address in the log if the
// log does not hold it yet.
func (n *Node) leaderLoop(obs chan raft.Observation, o *raft.Observer) {
	defer n.loops.Done()
	defer n.raft.DeregisterObserver(o)
	n.recordMember()
	for {
		select {
		case <-n.stop:
			return
		case <-obs:
			n.leaderChanges.Add(1)
			n.leaderMu.Lock()
			close(n.leaderc)
			n.leaderc = make(chan struct{})
			n.leaderMu.Unlock()
			n.recordMember()
		}
	}
}

// recordMember gets this node's client address into the log if the log
// does not hold it: the leader proposes it, a follower asks the leader
// (Config.Publish). A failure is retried at the next leadership change or
// expiry tick.
func (n *Node) recordMember() {
	if n.clientAddr == "" || n.fsm.member(n.id) == n.clientAddr {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if n.raft.State() == raft.Leader {
		n.propose(ctx, appendMember(nil, n.now(), n.id, n.clientAddr))
		return
	}
	if _, addr := n.LeaderClient(); addr != "" && n.publish != nil {
		n.publish(ctx, addr, n.id, n.clientAddr)
	}
}

// PublishMember records node id's client address in the log. Leader
// only.
func (n *Node) PublishMember(ctx context.Context, id, clientAddr string) (uint64, error) {
	if id == "" || clientAddr == "" {
		return 0, errors.New("cluster: publishing a member needs its ID and client address")
	}
	data := appendMember(nil, n.now(), id, clientAddr)
	if n.raft.State() != raft.Leader {
		return 0, n.notLeader()
	}
	fut := n.raft.Apply(data, timeoutOf(ctx))
	if err := n.wait(ctx, fut); err != nil {
		return 0, n.membershipError(err)
	}
	return fut.Index(), nil
}

// expireLoop proposes expire entries while this node is the leader and
// keys with a deadline exist.
func (n *Node) expireLoop(t *clock.Ticker) {
	defer n.loops.Done()
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		n.recordMember()
		if n.raft.State() != raft.Leader || n.actor.Stats().KeysWithTTL == 0 {
			continue
		}
		for range maxExpirePerTick {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, more, err := n.ExpireNow(ctx)
			cancel()
			if err != nil || !more {
				break
			}
		}
	}
}
