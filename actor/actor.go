package actor

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"
)

// ErrStopped is returned by every call made after Stop, and by calls still
// waiting when the actor stops.
var ErrStopped = errors.New("actor: stopped")

// ErrStorage is returned for requests that would mutate state after the log
// failed: acknowledging them could lose them. Reads go on.
var ErrStorage = errors.New("actor: storage failed, writes are refused")

// ErrNotPersisted is returned for a request whose mutations were applied
// in memory but whose log records failed to be written or fsynced: it is
// not acknowledged, the log does not hold it, and no snapshot will (one
// is only written of state the log holds), so it is gone after a restart,
// although reads see it until then. From then on writes get ErrStorage.
// It wraps the log's failure (see Batch.Done).
var ErrNotPersisted = errors.New("actor: write not persisted")

// ErrOutcomeUnknown is returned instead of ErrNotPersisted when the log
// could not tell whether the request's records reached the disk (the
// write or fsync failed, and taking the records back off did too): after
// a restart they may or may not be there. A replicated log returns it too,
// for a batch proposed but not known to be committed. From then on writes
// get ErrStorage. It wraps the log's failure.
var ErrOutcomeUnknown = errors.New("actor: write outcome unknown")

// ErrNotLeader is returned by a replicated store (package cluster) for a
// write or a linearizable read on a node that is not the leader: nothing
// was proposed, so the request may go to the leader. It lives here, with
// the data path's other errors, so that the fronts can tell it without
// depending on the replication.
var ErrNotLeader = errors.New("not the leader")

// ErrNoLeader is returned by a replicated store when no leader is known.
var ErrNoLeader = errors.New("no leader")

// ErrMemoryLimit is returned for a request with a Set that would grow the
// data past Config.MaxMemory; no command of that request is applied.
// Reads, deletes and overwrites that do not grow the data go on.
var ErrMemoryLimit = errors.New("actor: memory limit reached")

// ErrBadCommand is returned for a request holding a command with an unknown
// Op; no command of that request is applied.
var ErrBadCommand = errors.New("actor: unknown command")

// Log receives the actor's records in sequence order and holds back its
// replies until they are durable. Package kvstore/wal/actorlog adapts a
// *wal.Log to it. Submit must not block on disk: the actor calls it on its
// own goroutine.
type Log interface {
	// Submit hands over a batch. The log owns it from then on and calls
	// its Done once: after the batch's records and every earlier one are
	// durable, or with the error that made that impossible.
	Submit(b Batch)
	// DurableSeq returns the highest sequence number that is durable.
	DurableSeq() uint64
	// Err returns the log's sticky failure, nil while it is healthy.
	Err() error
}

// Batch is what the actor hands its Log after one pass over its queue:
// the records of the mutations the pass applied, in sequence order, and
// the replies that may go out once they are durable. Either may be empty;
// a batch with no records is a barrier for reads of state not durable yet.
type Batch struct {
	Records []Record
	replies []*Request
}

// Done sends the batch's replies: nil once its records and every earlier
// one are durable. An error is passed on as it is if it wraps ErrStopped
// (the log closed first: a shutdown), ErrNotPersisted or
// ErrOutcomeUnknown, and otherwise as ErrNotPersisted wrapping it: a Log
// that cannot promise its failed records are gone must say
// ErrOutcomeUnknown. A Log calls Done exactly once per batch, from any
// goroutine; it does not block.
func (b Batch) Done(err error) {
	if err != nil && !errors.Is(err, ErrStopped) && !errors.Is(err, ErrNotPersisted) && !errors.Is(err, ErrOutcomeUnknown) {
		err = fmt.Errorf("%w: %w", ErrNotPersisted, err)
	}
	for _, r := range b.replies {
		r.complete(err)
	}
}

// Replies returns how many replies Done sends.
func (b Batch) Replies() int { return len(b.replies) }

// Defaults for Config.
const (
	DefaultExpireInterval = time.Second
	// DefaultExpireBatch bounds one pass of active expiry, so a million
	// keys expiring in the same second cost the owner many short passes
	// interleaved with requests instead of one long stall.
	DefaultExpireBatch = 256
	// maxDrain bounds the commands applied per wake-up before their
	// records go to the log, so a steady stream cannot delay a group
	// commit indefinitely.
	maxDrain = 512
)

// Config configures an Actor. The zero value is an empty in-memory store
// on the real clock.
type Config struct {
	// State is the recovered data; nil starts empty.
	State *State
	// Seq is the last sequence number applied to State; the next mutation
	// gets Seq+1.
	Seq uint64
	// Log receives a record per mutation. Nil keeps data in memory only
	// and replies at once.
	Log Log
	// Clock drives active expiry; nil is the real clock.
	Clock clock.Clock
	// ExpireInterval is how often active expiry runs; 0 means
	// DefaultExpireInterval, negative disables the ticker (tests then call
	// Tick themselves).
	ExpireInterval time.Duration
	// ObserveBatch, if set, is called on the owner goroutine once per
	// pass over the request queue, after the pass is handed to the log,
	// with the number of commands the pass took in. It must be cheap and
	// must not block: a prometheus Histogram's Observe fits.
	ObserveBatch func(commands int)
	// Rules are the limits the actor's Machine enforces. A server with a
	// Log must set MaxKeyBytes and MaxValueBytes to what its log and
	// snapshots can hold.
	Rules
}

// Stats are the actor's gauges and counters. Stats reads them without a
// round trip through the owner, which publishes them after every pass.
type Stats struct {
	// Keys is the number of stored keys, counting expired keys that
	// active expiry has not removed yet.
	Keys int
	// KeysWithTTL is the number of those keys that have a deadline.
	KeysWithTTL int
	// Expired is the number of keys active expiry has removed since New.
	Expired uint64
	// Queued is the number of requests waiting for the owner.
	Queued int
	// Bytes is State.Bytes, the estimated size of the data.
	Bytes int64
	// Seq is the sequence number of the last mutation applied.
	Seq uint64
}

// Actor is the one goroutine that owns a Machine and its State. Every
// other goroutine reaches the data through its methods, which send a
// message and wait for the reply; nothing on the data path takes a lock.
type Actor struct {
	m            *Machine
	state        *State // m.State()
	log          Log
	observeBatch func(commands int)

	reqc  chan *Request
	tickc chan *tickMsg
	snapc chan *snapMsg
	ctlc  chan func()
	// releasec carries Views from Snapshot whose readers are done.
	releasec chan *View
	stopc    chan struct{} // closed by Stop
	done     chan struct{} // closed when run has returned

	stopOnce sync.Once
	tickers  sync.WaitGroup
	pool     sync.Pool

	// Per-pass buffers, owned by the run goroutine.
	recs    []Record
	replies []*Request
	// expireAt is the time of the last tick; backlog says expired keys
	// remain past the last bounded pass.
	expireAt int64
	backlog  bool

	// State's counts, published by the owner after every pass for Stats.
	keys, keysTTL, bytes atomic.Int64
	expired, seq         atomic.Uint64

	// tickedc, when set by a test, receives the result of every tick the
	// ticker goroutine delivered: the explicit hand-off for mock clocks.
	tickedc chan int
}

// New starts an Actor and, unless disabled, its ticker goroutine.
func New(cfg Config) *Actor {
	a := newActor(cfg)
	a.start(cfg)
	return a
}

func newActor(cfg Config) *Actor {
	m := NewMachine(cfg.State, cfg.Seq, cfg.Rules)
	a := &Actor{
		m:            m,
		state:        m.State(),
		log:          cfg.Log,
		observeBatch: cfg.ObserveBatch,
		reqc:         make(chan *Request, maxDrain),
		tickc:        make(chan *tickMsg),
		snapc:        make(chan *snapMsg),
		ctlc:         make(chan func()),
		releasec:     make(chan *View),
		stopc:        make(chan struct{}),
		done:         make(chan struct{}),
	}
	a.publish()
	a.pool.New = func() any { return NewRequest() }
	return a
}

func (a *Actor) start(cfg Config) {
	interval := cfg.ExpireInterval
	if interval == 0 {
		interval = DefaultExpireInterval
	}
	if interval > 0 {
		clk := cfg.Clock
		if clk == nil {
			clk = clock.New()
		}
		// Created before any goroutine starts, so a mock clock advanced
		// right after New cannot be missed.
		t := clk.Ticker(interval)
		a.tickers.Add(1)
		go a.runTicker(t)
	}
	go a.run()
}

// Stop stops the actor and its ticker and waits until both have returned.
// It is idempotent. Replies already handed to the log are released by the
// log, not by Stop.
func (a *Actor) Stop() {
	a.stopOnce.Do(func() { close(a.stopc) })
	<-a.done
	a.tickers.Wait()
}

// Op names a command.
type Op uint8

// The commands of a Request. OpGet, OpSet and OpDelete are the store's
// plain operations; the others are read-modify-writes (Redis' INCRBY,
// APPEND, EXPIRE...) that the Machine applies in one step, so that they
// are atomic and reach the log as the plain records they amount to.
const (
	OpGet Op = iota + 1
	OpSet
	OpDelete
	// OpIncr adds Delta to the integer value of Key (absent: 0); Result.Int
	// is the new value. The key keeps its deadline.
	OpIncr
	// OpIncrFloat adds the decimal float in Value to the float value of
	// Key (absent: 0); Result.Value is the new value, as Redis formats
	// it. The key keeps its deadline.
	OpIncrFloat
	// OpAppend appends Value to the value of Key (absent: ""); Result.Int
	// is the new length. The key keeps its deadline.
	OpAppend
	// OpSetRange overwrites the value of Key from byte Delta on with
	// Value, padding with zero bytes; Result.Int is the new length. An
	// empty Value changes nothing.
	OpSetRange
	// OpExpire sets the deadline of a live Key to Deadline, subject to
	// FlagNX (no deadline yet), FlagXX (one already), FlagGT and FlagLT
	// (later or earlier than the current one; none counts as infinite).
	// A deadline not after now deletes the key. Result.Found says whether
	// it was applied.
	OpExpire
	// OpPersist clears the deadline of a live Key; Result.Found says
	// whether it had one.
	OpPersist
	// OpGetEx reads Key like OpGet and then sets its deadline to Deadline
	// (FlagPersist: clears it; no flag and Deadline 0: leaves it).
	OpGetEx
	// OpUnit makes the next Delta commands of the Request one unit
	// (MULTI/EXEC, MSETNX): they are checked together against the
	// limits, so that the limits refuse all of them or none, and then
	// applied in order; one failing at run time (OpIncr of a non-integer)
	// fails alone, as in a Redis transaction. With FlagNX they are
	// applied only if no key they name is live (MSETNX). The unit's
	// Result.Found says whether they were applied; a unit the check
	// refuses has the error in its Result.Err and in each of its
	// commands'. Units do not nest.
	OpUnit
	// OpFlush removes every key (FLUSHDB); Result.Int is how many were
	// live. It is recorded as one delete per key, so on a large data set
	// it is one large write, as Redis' FLUSHALL SYNC is one long call.
	OpFlush
	opCount
)

// Valid reports whether o is one of the ops above.
func (o Op) Valid() bool { return o > 0 && o < opCount }

// Flags modify a Command.
type Flags uint16

const (
	// FlagNX: OpSet only if Key is absent; OpExpire only if it has no
	// deadline.
	FlagNX Flags = 1 << iota
	// FlagXX: OpSet only if Key is live; OpExpire only if it has a
	// deadline.
	FlagXX
	// FlagGT, FlagLT: OpExpire only if the new deadline is later
	// (earlier) than the current one.
	FlagGT
	FlagLT
	// FlagGet: OpSet and OpDelete return the value they replace or
	// remove in Result.Value (Result.Found: there was one).
	FlagGet
	// FlagKeepTTL: OpSet keeps the key's deadline.
	FlagKeepTTL
	// FlagRelative: Deadline is a duration from the Request's Now, made
	// absolute by the Machine (in a cluster, Now is the leader's time of
	// the entry).
	FlagRelative
	// FlagPersist: OpGetEx clears the deadline.
	FlagPersist
)

// Command is one operation of a Request.
type Command struct {
	Op    Op
	Flags Flags
	Key   string
	Value string // OpSet, OpAppend, OpSetRange, OpIncrFloat
	// Deadline is the absolute expiry time in Unix nanoseconds, 0 for
	// none (OpSet, OpExpire, OpGetEx), or with FlagRelative a duration.
	// A Set without a deadline clears an earlier one, unless FlagKeepTTL.
	Deadline int64
	// Delta is OpIncr's increment and OpSetRange's offset.
	Delta int64
}

// Result is the outcome of one Command.
type Result struct {
	// Found is, for OpGet, whether the key is live, for OpDelete, whether
	// it was live before the delete, for OpSet, whether the set was
	// applied (FlagNX and FlagXX may skip it), and for OpExpire and
	// OpPersist whether the deadline changed.
	Found bool
	// Value is OpGet's value, the old value of an OpSet or OpDelete with
	// FlagGet (OldFound: there was one), and OpIncrFloat's new value.
	Value    string
	OldFound bool
	// Deadline is the key's absolute deadline, 0 for none (OpGet).
	Deadline int64
	// Int is OpIncr's new value and OpAppend's and OpSetRange's new
	// length.
	Int int64
	// Err is the command's own failure (OpIncr on a value that is not an
	// integer, a result past the size limit...): the command changed
	// nothing, and the others of its Request were applied.
	Err error
}

// Request is a batch of commands handed to the actor in one message,
// applied in order with nothing interleaved, and answered with one reply.
// A Request may be reused once Do has returned nil for it.
type Request struct {
	// Now is the time, in Unix nanoseconds, at which expiry is judged.
	Now      int64
	Commands []Command
	// Independent requests are checked command by command: one the
	// limits refuse fails alone, in its Result.Err, where otherwise the
	// whole Request would be refused (a pipeline of Redis commands is
	// independent, a gRPC batch is not).
	Independent bool
	// Results holds one Result per Command once Do returns nil.
	Results []Result

	err  error
	done chan struct{}
	one  [1]Command
	res  [1]Result
}

// NewRequest returns an empty Request.
func NewRequest() *Request { return &Request{done: make(chan struct{}, 1)} }

// complete is the reply: it hands err to the goroutine waiting in Do.
func (r *Request) complete(err error) {
	r.err = err
	r.done <- struct{}{}
}

// Do hands r to the actor and waits for its reply, ctx, or the actor's
// stop. Once Do returns an error other than nil the actor may still hold
// r: do not reuse it. A mutation whose Do returned an error may or may not
// have been applied.
func (a *Actor) Do(ctx context.Context, r *Request) error {
	select {
	case a.reqc <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-a.stopc:
		return ErrStopped
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	case <-a.done:
		return ErrStopped
	}
}

// DoAll hands rs to the actor in order and waits for every reply: the
// actor takes them in one pass when it can, and one request's refusal
// leaves the others alone. errs[i] is what Do would have returned for
// rs[i]; as with Do, a request whose error is not nil may still be held
// by the actor.
func (a *Actor) DoAll(ctx context.Context, rs []*Request) (errs []error) {
	errs = make([]error, len(rs))
	sent := 0
send:
	for ; sent < len(rs); sent++ {
		select {
		case a.reqc <- rs[sent]:
		case <-ctx.Done():
			break send
		case <-a.stopc:
			break send
		}
	}
	for i, r := range rs {
		if i >= sent {
			errs[i] = ErrStopped
			if ctx.Err() != nil {
				errs[i] = ctx.Err()
			}
			continue
		}
		select {
		case <-r.done:
			errs[i] = r.err
		case <-ctx.Done():
			errs[i] = ctx.Err()
		case <-a.done:
			errs[i] = ErrStopped
		}
	}
	return errs
}

// single runs one command through a pooled Request, so the single-key
// calls below cost no allocation.
func (a *Actor) single(ctx context.Context, c Command, now int64) (Result, error) {
	r := a.pool.Get().(*Request)
	r.Now = now
	r.one[0] = c
	r.Commands = r.one[:]
	r.Results = r.res[:0]
	if err := a.Do(ctx, r); err != nil {
		return Result{}, err // r may still be in flight: never reuse it
	}
	res := r.Results[0]
	r.one[0], r.res[0] = Command{}, Result{} // drop references to key and value
	a.pool.Put(r)
	return res, nil
}

// Get returns the value of key if it is live at now (Unix nanoseconds).
func (a *Actor) Get(ctx context.Context, key string, now int64) (value string, found bool, err error) {
	res, err := a.single(ctx, Command{Op: OpGet, Key: key}, now)
	return res.Value, res.Found, err
}

// Set stores value under key until deadline (Unix nanoseconds; 0 = never).
// It returns once the write is durable under the log's policy.
func (a *Actor) Set(ctx context.Context, key, value string, deadline int64) error {
	_, err := a.single(ctx, Command{Op: OpSet, Key: key, Value: value, Deadline: deadline}, 0)
	return err
}

// Delete removes key and reports whether it was live at now.
func (a *Actor) Delete(ctx context.Context, key string, now int64) (found bool, err error) {
	res, err := a.single(ctx, Command{Op: OpDelete, Key: key}, now)
	return res.Found, err
}

type tickMsg struct {
	now     int64
	removed int
	done    chan struct{}
}

// Tick runs active expiry at now and returns how many keys it removed in
// that bounded pass; remaining expired keys are removed in further passes
// between requests. The ticker goroutine calls it; tests call it directly
// as an explicit hand-off.
func (a *Actor) Tick(ctx context.Context, now time.Time) (removed int, err error) {
	m := &tickMsg{now: now.UnixNano(), done: make(chan struct{})}
	if err := call(ctx, a, a.tickc, m, m.done); err != nil {
		return 0, err
	}
	return m.removed, nil
}

type snapMsg struct {
	view *View
	seq  uint64
	done chan struct{}
}

// Snapshot freezes the data and returns the frozen view with the sequence
// number of the last mutation it contains. It costs the owner O(shards);
// the caller may take as long as it likes to read the view, and must then
// call its Release, from any goroutine: until then every write to a shard
// the view shares copies the shard.
func (a *Actor) Snapshot(ctx context.Context) (*View, uint64, error) {
	m := &snapMsg{done: make(chan struct{})}
	select {
	case a.snapc <- m:
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	case <-a.stopc:
		return nil, 0, ErrStopped
	}
	// The owner has m and answers at once, so this wait is short. It
	// ignores ctx: giving up now would strand a view no one releases.
	<-m.done
	return m.view, m.seq, nil
}

// onOwner runs fn on the owner goroutine, between passes, and waits for
// it.
func (a *Actor) onOwner(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	return call(ctx, a, a.ctlc, func() { fn(); close(done) }, done)
}

// Scan runs State.ScanShards on the owner: one bounded step of a scan,
// which other requests interleave with.
func (a *Actor) Scan(ctx context.Context, cursor uint64, count int, now int64, match func(string) bool) (keys []string, next uint64, err error) {
	err = a.onOwner(ctx, func() { keys, next = a.state.ScanShards(cursor, count, now, match, nil) })
	return keys, next, err
}

// ExpireAt runs one bounded pass of active expiry at now (Unix
// nanoseconds), removing at most max keys (0: Rules.ExpireBatch), and
// reports how many it removed and whether expired keys remain. Unlike
// Tick it leaves no backlog for later passes to work off: a replica
// expires keys only when its log says so, at the time the log says, so
// that every replica removes the same keys at the same point.
func (a *Actor) ExpireAt(ctx context.Context, now int64, max int) (removed int, more bool, err error) {
	err = a.onOwner(ctx, func() { removed, more = a.m.ExpireUpTo(now, max) })
	return removed, more, err
}

// Restore replaces the data with st, whose last applied mutation is seq,
// keeping the Rules and a refusal of writes: a replica installing a
// snapshot. Views frozen from the old data stay readable until released.
func (a *Actor) Restore(ctx context.Context, st *State, seq uint64) error {
	return a.onOwner(ctx, func() {
		refuse := a.m.Refusing()
		a.m = NewMachine(st, seq, a.m.rules)
		if refuse != nil {
			a.m.RefuseWrites(refuse)
		}
		a.state, a.backlog = st, false
	})
}

// releaseView hands v back to the owner. After Stop there is no one to
// tell, and no need.
func (a *Actor) releaseView(v *View) {
	select {
	case a.releasec <- v:
	case <-a.stopc:
	}
}

// call sends m on c and waits for done, ctx or the stop.
func call[T any](ctx context.Context, a *Actor, c chan<- T, m T, done <-chan struct{}) error {
	select {
	case c <- m:
	case <-ctx.Done():
		return ctx.Err()
	case <-a.stopc:
		return ErrStopped
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-a.done:
		return ErrStopped
	}
}

func (a *Actor) runTicker(t *clock.Ticker) {
	defer a.tickers.Done()
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for {
		select {
		case now := <-t.C:
			removed, err := a.Tick(ctx, now)
			if err != nil {
				return
			}
			if a.tickedc != nil {
				a.tickedc <- removed
			}
		case <-a.stopc:
			return
		}
	}
}

// Stats returns the actor's counts as of its last pass, and the current
// length of its request queue. It is safe to call from any goroutine and
// does not wait for the owner.
func (a *Actor) Stats() Stats {
	return Stats{
		Keys:        int(a.keys.Load()),
		KeysWithTTL: int(a.keysTTL.Load()),
		Expired:     a.expired.Load(),
		Queued:      len(a.reqc),
		Bytes:       a.bytes.Load(),
		Seq:         a.seq.Load(),
	}
}

// publish copies State's counts to the atomics Stats reads. It runs on
// the owner before a pass's replies are released, so a caller that got a
// reply sees counts that include its request.
func (a *Actor) publish() {
	a.keys.Store(int64(a.state.Len()))
	a.keysTTL.Store(int64(a.state.TTLLen()))
	a.expired.Store(a.state.Expired())
	a.bytes.Store(a.state.Bytes())
	a.seq.Store(a.m.Seq())
}

// closed is always ready: selecting on it runs a pass of backlogged expiry
// whenever nothing else is waiting.
var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (a *Actor) run() {
	defer close(a.done)
	for {
		var expirec <-chan struct{}
		if a.backlog {
			expirec = closed
		}
		select {
		case r := <-a.reqc:
			// Counted before handle: once replied to, r is the caller's.
			n := len(r.Commands)
			a.checkLog()
			a.handle(r)
			// Let the callers the network poller woke with this one
			// queue their requests, so that the pass takes them all
			// and the log writes them as one group.
			runtime.Gosched()
		drain:
			for range maxDrain - 1 {
				select {
				case r := <-a.reqc:
					n += len(r.Commands)
					a.handle(r)
				default:
					break drain
				}
			}
			a.publish()
			a.flush()
			if a.observeBatch != nil {
				a.observeBatch(n)
			}
		case m := <-a.tickc:
			a.expireAt = m.now
			m.removed, a.backlog = a.m.Expire(m.now)
			a.publish()
			close(m.done)
		case <-expirec:
			_, a.backlog = a.m.Expire(a.expireAt)
			a.publish()
		case m := <-a.snapc:
			v := a.state.Freeze()
			v.release = func() { a.releaseView(v) }
			m.view, m.seq = v, a.m.Seq()
			close(m.done)
		case v := <-a.releasec:
			a.state.Release(v)
		case fn := <-a.ctlc:
			fn()
			a.publish()
		case <-a.stopc:
			return
		}
	}
}

// checkLog makes the Machine refuse writes once the log has failed. It
// runs once per pass, not per request: a failure during a pass reaches
// that pass's writers through the log, which completes their batch with
// the error, so none of them is acknowledged.
func (a *Actor) checkLog() {
	if a.log != nil && a.m.Refusing() == nil {
		if err := a.log.Err(); err != nil {
			a.m.RefuseWrites(fmt.Errorf("%w: %w", ErrStorage, err))
		}
	}
}

// handle applies one request through the Machine and queues its reply
// for flush.
func (a *Actor) handle(r *Request) {
	apply := a.m.Apply
	if r.Independent {
		apply = a.m.ApplyEach
	}
	res, recs, err := apply(r.Now, r.Commands, r.Results[:0], a.recs)
	if err != nil {
		r.complete(err)
		return
	}
	r.Results = res
	if a.log != nil {
		a.recs = recs
	} else {
		clear(recs) // no one to hand them to: drop their keys and values
		a.recs = recs[:0]
	}
	a.replies = append(a.replies, r)
}

// flush hands the pass's records and replies to the log. Replies go
// through the log whenever state they could reveal is not durable yet —
// this pass's mutations or earlier ones still in flight — so no reply, a
// read's included, shows what a crash could take back. After a log
// failure reads are answered from memory at once: they go on, and may
// show the writes that failed (those writers got an error, never an ack),
// until a restart, which does not find them (see ErrNotPersisted).
func (a *Actor) flush() {
	if a.log != nil && (len(a.recs) > 0 || (a.m.Seq() > a.log.DurableSeq() && a.log.Err() == nil)) {
		a.log.Submit(Batch{Records: a.recs, replies: a.replies})
		// The log owns the slices now. Size the next ones for a pass like
		// this one: not by capacity, which one burst would inflate for
		// every later pass.
		a.recs = make([]Record, 0, len(a.recs))
		a.replies = make([]*Request, 0, len(a.replies))
		return
	}
	for i, r := range a.replies {
		r.complete(nil)
		a.replies[i] = nil
	}
	a.replies = a.replies[:0]
}
