package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/benbjohnson/clock"
	"google.golang.org/grpc/codes"
)

// target is what the runner drives: the gRPC client pool, the in-process
// actor, or a fake in tests. It must be safe for concurrent use.
type target interface {
	Set(ctx context.Context, key, value string, ttlSeconds int64) error
	Get(ctx context.Context, key string) (found bool, err error)
	Delete(ctx context.Context, key string) (found bool, err error)
}

func do(ctx context.Context, t target, o op) (found bool, err error) {
	switch o.kind {
	case opSet:
		return false, t.Set(ctx, o.key, o.value, o.ttl)
	case opGet:
		return t.Get(ctx, o.key)
	default:
		return t.Delete(ctx, o.key)
	}
}

// Latencies are recorded in nanoseconds with 3 significant digits, up to an
// hour; anything slower is clamped to an hour (and is a finding anyway).
const (
	histMin    = 1
	histMax    = int64(time.Hour)
	histDigits = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMin, histMax, histDigits)
}

// opStats is what one shard knows about one op.
type opStats struct {
	hist  *hdrhistogram.Histogram // latency of successful requests
	found int64                   // gets that hit, deletes that removed a key
	errs  map[codes.Code]int64
}

// recShard is one lock's worth of statistics. Clients are spread over a
// few shards so that recording does not make 50 clients queue on one
// mutex, while the memory stays a few histograms (each is ~250 KiB).
type recShard struct {
	mu  sync.Mutex
	ops [numOps]opStats
}

// recorder collects the results of all clients.
type recorder struct {
	shards []*recShard
	// ok and failed are read by the progress line while the run goes on.
	ok, failed atomic.Int64
}

func newRecorder(clients int) *recorder {
	n := min(clients, 8)
	r := &recorder{shards: make([]*recShard, n)}
	for i := range r.shards {
		s := &recShard{}
		for k := range s.ops {
			s.ops[k] = opStats{hist: newHistogram(), errs: map[codes.Code]int64{}}
		}
		r.shards[i] = s
	}
	return r
}

func (r *recorder) record(client int, k opKind, latency time.Duration, found bool, err error) {
	s := r.shards[client%len(r.shards)]
	s.mu.Lock()
	st := &s.ops[k]
	if err != nil {
		st.errs[codeOf(err)]++
	} else {
		st.hist.RecordValue(clampLatency(latency))
		if found {
			st.found++
		}
	}
	s.mu.Unlock()
	if err != nil {
		r.failed.Add(1)
	} else {
		r.ok.Add(1)
	}
}

func clampLatency(d time.Duration) int64 {
	return min(max(int64(d), histMin), histMax)
}

// p99 merges every shard's histograms into scratch and returns the 99th
// percentile of all successful requests so far.
func (r *recorder) p99(scratch *hdrhistogram.Histogram) int64 {
	scratch.Reset()
	for _, s := range r.shards {
		s.mu.Lock()
		for k := range s.ops {
			scratch.Merge(s.ops[k].hist)
		}
		s.mu.Unlock()
	}
	return scratch.ValueAtQuantile(99)
}

// opResult is the outcome of one op over the whole run.
type opResult struct {
	hist  *hdrhistogram.Histogram
	found int64
	errs  map[codes.Code]int64
}

func (o opResult) count() int64 { return o.hist.TotalCount() }

func (o opResult) failed() int64 {
	var n int64
	for _, c := range o.errs {
		n += c
	}
	return n
}

func (o *opResult) add(from *opResult) {
	o.hist.Merge(from.hist)
	o.found += from.found
	for c, n := range from.errs {
		o.errs[c] += n
	}
}

func newOpResult() opResult {
	return opResult{hist: newHistogram(), errs: map[codes.Code]int64{}}
}

// result is the outcome of one run.
type result struct {
	elapsed time.Duration
	ops     [numOps]opResult
	// Open loop only: the target rate, the requests handed to a client,
	// and those whose intended start passed before the end of the run but
	// were never started because every client was busy.
	rate      float64
	scheduled int64
	missed    int64
	// interrupted is set when a signal ended the run early.
	interrupted bool
	// unreachable is set when --give-up ended the run early: the last of
	// the Unavailable failures that lasted runConfig.giveUp.
	unreachable error
}

func (r *result) total() opResult {
	t := newOpResult()
	for k := range r.ops {
		t.add(&r.ops[k])
	}
	return t
}

// rateMet reports, for an open-loop run, whether the target rate was kept:
// nothing missed and the completed rate within 5% of the target.
func (r *result) rateMet() bool {
	if r.rate == 0 || r.interrupted {
		return true
	}
	if r.missed > 0 {
		return false
	}
	t := r.total()
	done := float64(t.count() + t.failed())
	return done/r.elapsed.Seconds() >= 0.95*r.rate
}

func (r *recorder) result() result {
	var res result
	for k := range numOps {
		res.ops[k] = newOpResult()
		for _, s := range r.shards {
			s.mu.Lock()
			st := &s.ops[k]
			res.ops[k].add(&opResult{hist: st.hist, found: st.found, errs: st.errs})
			s.mu.Unlock()
		}
	}
	return res
}

// runConfig says how to drive a target.
type runConfig struct {
	clients int
	// Exactly one of requests (total, over all clients) and duration ends
	// the run.
	requests int64
	duration time.Duration
	// rate > 0 runs open loop at rate requests per second; 0 is closed
	// loop.
	rate float64
	// progress > 0 prints a progress line to progressOut that often.
	progress    time.Duration
	progressOut io.Writer
	workload    *workload
	// giveUp > 0 ends the run once every request for that long has
	// failed Unavailable, with no other outcome in between: the server is
	// unreachable, and going on would only count the same error.
	giveUp time.Duration
	// clock is the run's time: its length, latencies, the open-loop
	// schedule, progress and giveUp. nil is the wall clock; tests pass a
	// mock.
	clock clock.Clock
}

// clk returns the run's clock.
func (c *runConfig) clk() clock.Clock {
	if c.clock == nil {
		return clock.New()
	}
	return c.clock
}

// unreachable watches the outcomes of a run for runConfig.giveUp. Clients
// report to it concurrently; it keeps only atomics on the path of a
// successful request.
type unreachable struct {
	limit time.Duration
	start time.Time // of the run: since counts from it
	// since is when the current stretch of Unavailable failures began, as
	// an offset from start, or noStretch after any other outcome.
	since   atomic.Int64
	once    sync.Once
	lastErr error         // the failure that reached limit; set in once
	stopc   chan struct{} // closed when limit is reached
}

// noStretch is unreachable.since when the last outcome was not Unavailable.
const noStretch = -1

func newUnreachable(limit time.Duration, start time.Time) *unreachable {
	u := &unreachable{limit: limit, start: start, stopc: make(chan struct{})}
	u.since.Store(noStretch)
	return u
}

// observe takes the outcome err of a request that ended at now. It
// reports true to the one caller whose failure makes the stretch of
// Unavailable failures reach the limit.
func (u *unreachable) observe(now time.Time, err error) bool {
	if err == nil || codeOf(err) != codes.Unavailable {
		if u.since.Load() != noStretch {
			u.since.Store(noStretch)
		}
		return false
	}
	at := int64(now.Sub(u.start))
	since := u.since.Load()
	if since == noStretch {
		u.since.CompareAndSwap(noStretch, at)
		since = u.since.Load() // this stretch, or one another client began or ended
	}
	if since == noStretch || time.Duration(at-since) < u.limit {
		return false
	}
	reached := false
	u.once.Do(func() {
		u.lastErr, reached = err, true
		close(u.stopc)
	})
	return reached
}

// runLoad drives t until cfg's requests are done, its duration has passed,
// cfg.giveUp has passed with nothing but Unavailable failures
// (result.unreachable) or ctx ends (interrupted). The result covers what
// ran either way. Requests in flight at the end are completed and counted,
// never cancelled.
//
// Closed loop: each client sends its next request as soon as the previous
// one returns. Open loop: a scheduler hands intended start times at cfg.rate
// to the clients, and latency is measured from the intended start, so time
// spent waiting for a free client counts (no coordinated omission).
func runLoad(ctx context.Context, t target, cfg runConfig) result {
	clk := cfg.clk()
	rec := newRecorder(cfg.clients)
	// Requests run on their own context: the end of the run (or a signal)
	// stops new requests but lets those in flight finish.
	reqCtx, cancelReqs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelReqs()

	var (
		stopped     atomic.Bool           // no new closed-loop requests
		quit        = make(chan struct{}) // closed when the run ends
		finished    = make(chan struct{}) // closed when every client is done
		interrupted atomic.Bool
		helpers     sync.WaitGroup
	)
	start := clk.Now()
	var (
		giveUp  *unreachable
		giveUpc <-chan struct{} // closed when giveUp is reached; nil: never
	)
	if cfg.giveUp > 0 {
		giveUp = newUnreachable(cfg.giveUp, start)
		giveUpc = giveUp.stopc
	}
	// done records one request's outcome; the request ended at now.
	done := func(client int, k opKind, now time.Time, latency time.Duration, found bool, err error) {
		rec.record(client, k, latency, found, err)
		if giveUp != nil && giveUp.observe(now, err) {
			// At once, not when the helper below wakes: no client
			// starts another request at a server known to be gone.
			stopped.Store(true)
		}
	}
	helpers.Add(1)
	go func() {
		defer helpers.Done()
		var timeout <-chan time.Time
		if cfg.requests == 0 {
			tm := clk.Timer(cfg.duration)
			defer tm.Stop()
			timeout = tm.C
		}
		select {
		case <-timeout:
		case <-giveUpc:
		case <-ctx.Done():
			interrupted.Store(true)
		case <-finished:
			return
		}
		stopped.Store(true)
		close(quit)
	}()
	if cfg.progress > 0 && cfg.progressOut != nil {
		helpers.Add(1)
		go func() {
			defer helpers.Done()
			progress(clk, rec, start, cfg.progress, cfg.progressOut, finished)
		}()
	}

	var (
		clients           sync.WaitGroup
		scheduled, missed int64
		remaining         atomic.Int64
	)
	remaining.Store(cfg.requests)
	if cfg.rate == 0 {
		for c := range cfg.clients {
			gen := cfg.workload.generator(uint64(c))
			clients.Go(func() {
				for {
					if stopped.Load() || (cfg.requests > 0 && remaining.Add(-1) < 0) {
						return
					}
					o := gen.next()
					begin := clk.Now()
					found, err := do(reqCtx, t, o)
					now := clk.Now()
					done(c, o.kind, now, now.Sub(begin), found, err)
				}
			})
		}
	} else {
		startc := make(chan time.Time, cfg.clients)
		for c := range cfg.clients {
			gen := cfg.workload.generator(uint64(c))
			clients.Go(func() {
				for intended := range startc {
					o := gen.next()
					found, err := do(reqCtx, t, o)
					now := clk.Now()
					done(c, o.kind, now, now.Sub(intended), found, err)
				}
			})
		}
		scheduled, missed = schedule(start, cfg, startc, quit)
		close(startc)
	}
	clients.Wait()
	elapsed := clk.Since(start)
	close(finished)
	helpers.Wait()

	res := rec.result()
	res.elapsed = elapsed
	res.rate = cfg.rate
	res.scheduled = scheduled
	res.missed = missed
	res.interrupted = interrupted.Load()
	if giveUp != nil {
		select {
		case <-giveUpc:
			res.unreachable = giveUp.lastErr
		default:
		}
	}
	return res
}

// schedule sends the intended start time of request i, start + i/rate, on
// startc, until cfg.requests have been sent or quit is closed. It never
// skips or shifts a slot: when every client is busy the send blocks and the
// requests behind it start late, with their latency still counted from
// their intended start. It returns how many it sent and, for a duration
// run, how many slots were due before the end but never sent.
func schedule(start time.Time, cfg runConfig, startc chan<- time.Time, quit <-chan struct{}) (sent, missed int64) {
	clk := cfg.clk()
	interval := float64(time.Second) / cfg.rate
	slot := func(i int64) time.Time { return start.Add(time.Duration(float64(i) * interval)) }
	// due counts the slots whose intended start is before both now and the
	// end of the run.
	due := func(now time.Time) int64 {
		limit := now
		if cfg.requests == 0 {
			if end := start.Add(cfg.duration); end.Before(limit) {
				limit = end
			}
		}
		n := int64(float64(limit.Sub(start))/interval) + 1
		if cfg.requests > 0 {
			n = min(n, cfg.requests)
		}
		return n
	}
	timer := clk.Timer(0)
	defer timer.Stop()
	<-timer.C
	for i := int64(0); cfg.requests == 0 || i < cfg.requests; i++ {
		intended := slot(i)
		if cfg.requests == 0 && !intended.Before(start.Add(cfg.duration)) {
			return i, 0
		}
		if d := clk.Until(intended); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-quit:
				return i, max(due(clk.Now())-i, 0)
			}
		}
		select {
		case startc <- intended:
		case <-quit:
			return i, max(due(clk.Now())-i, 0)
		}
	}
	return cfg.requests, 0
}

// progress prints one line per interval until finished is closed: the
// throughput of the last interval, the p99 of the run so far, and the
// errors so far.
func progress(clk clock.Clock, rec *recorder, start time.Time, interval time.Duration, w io.Writer, finished <-chan struct{}) {
	tick := clk.Ticker(interval)
	defer tick.Stop()
	scratch := newHistogram()
	last, lastAt := int64(0), start
	for {
		select {
		case <-finished:
			return
		case now := <-tick.C:
			ok := rec.ok.Load()
			rate := float64(ok-last) / now.Sub(lastAt).Seconds()
			last, lastAt = ok, now
			fmt.Fprintf(w, "%6.1fs  %9.0f ops/s  p99 %-9s errors %d\n",
				now.Sub(start).Seconds(), rate, formatLatency(rec.p99(scratch)), rec.failed.Load())
		}
	}
}
