package wal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"
)

// DefaultSegmentBytes is the size at which the writer starts a new
// segment when Options.SegmentBytes is 0.
const DefaultSegmentBytes = 64 << 20

// DefaultPreallocBytes is Options.PreallocBytes' default.
const DefaultPreallocBytes = 1 << 20

// zeroChunk is what the writer extends segments with. Never written to.
var zeroChunk [DefaultPreallocBytes]byte

// maxKeptBuffer bounds the encode buffer the writer keeps between groups,
// so one huge group does not pin its memory for the life of the process.
const maxKeptBuffer = 4 << 20

// Options configures Open.
type Options struct {
	// Dir holds the segment files; the server passes <data-dir>/wal. It
	// is created if missing.
	Dir string
	// Fsync is the durability policy; the zero value is FsyncAlways.
	Fsync FsyncPolicy
	// SegmentBytes is the size at which the writer finishes a segment and
	// starts the next; 0 means DefaultSegmentBytes. A segment can exceed
	// it by one group, since groups are never split.
	SegmentBytes int64
	// PreallocBytes is how far ahead of its records the writer zero-fills
	// the active segment, in steps of this size; 0 means
	// DefaultPreallocBytes, negative turns preallocation off. Appends then
	// overwrite blocks already inside the file's size, so their fdatasync
	// flushes data alone: a size change makes it write the inode too
	// (synchronously, on ext4 without a journal). One group in
	// PreallocBytes/record-size pays for the extension; a group of
	// PreallocBytes or more is appended without zeros. Copy-on-write file
	// systems (btrfs, ZFS) allocate on every overwrite and gain nothing.
	PreallocBytes int64
	// Covered is the seq of the snapshot recovery loaded (0: none); pass
	// the same seq to Replay. Damage confined to records at or below it
	// does not stop Open: it repairs the log with a warning, setting the
	// damaged file aside, as long as the repair drops no record above
	// Covered.
	Covered uint64
	// FS is the file system; nil means OS.
	FS FS
	// Clock drives the FsyncEverySec ticker; nil means the real clock.
	Clock clock.Clock
	// Logger receives warnings (cut torn tails) and the failure report;
	// nil discards them.
	Logger *slog.Logger
	// ObserveSync, if set, is called on the writer goroutine after each
	// successful fsync of a segment file, with how long the fsync took.
	// It must be cheap and must not block: a prometheus Histogram's
	// Observe fits.
	ObserveSync func(d time.Duration)
	// ObserveGroup, if set, is called on the writer goroutine for each
	// group commit that wrote records, with their number, once they are
	// durable under the policy and before their waiters are released. The
	// same rules as ObserveSync apply.
	ObserveGroup func(records int)
	// OnFail, if set, is called once, on the writer goroutine, when the
	// log fails, with the failure, before any waiter is released with it:
	// a server marks itself not writable there. It must not block.
	OnFail func(err error)
}

// Stats are counters of the writer since Open. Syncs/Records is the
// number of fsyncs per acknowledged write that group commit achieves.
type Stats struct {
	// Records is the number of records written.
	Records uint64
	// Batches is the number of batches written or released, read
	// barriers included.
	Batches uint64
	// Writes is the number of Write calls: one per group with records.
	Writes uint64
	// Syncs is the number of fsyncs of segment files (directory fsyncs
	// are not counted).
	Syncs uint64
	// Bytes is the number of bytes written to segments.
	Bytes uint64
}

// Log is the write-ahead log: a directory of segment files and the
// writer goroutine that appends to the newest one.
//
// Use: Open, Replay (once, to rebuild state), Start, then Submit from the
// actor; SyncThrough before each snapshot is written, Compact after it is
// durable; Close at shutdown. Submit, DurableSeq, SyncThrough, Err, Stats,
// Compact and Close are safe to call from any goroutine.
type Log struct {
	dir      string
	fsys     FS
	policy   FsyncPolicy
	segBytes int64
	prealloc int64 // 0: off
	clock    clock.Clock
	logger   *slog.Logger

	observeSync  func(time.Duration)
	observeGroup func(int)
	onFail       func(error)

	// mu guards the hand-off from Submit to the writer.
	mu      sync.Mutex
	pending []Batch
	err     error                 // sticky failure, wraps ErrFailed
	errv    atomic.Pointer[error] // err, for Err without the lock
	closed  bool
	started bool

	notifyc chan struct{} // 1-buffered: "pending is not empty"
	syncc   chan syncRequest
	stopc   chan struct{} // closed by Close
	donec   chan struct{} // closed when the writer has returned

	closeOnce sync.Once
	closeErr  error

	// segMu guards the segment list, which the writer appends to and
	// Compact trims from the front. Only the last segment is ever
	// written to.
	segMu     sync.Mutex
	segs      []*segment
	compactMu sync.Mutex // serializes Compact calls

	lastOnDisk uint64 // highest seq found by Open
	durable    atomic.Uint64
	// synced is the highest seq known fsynced. It equals durable under
	// FsyncAlways and lags it under the other policies, whose waiters
	// are released before the fsync.
	synced atomic.Uint64

	records, batches, writes, syncs, bytes atomic.Uint64

	// Owned by the writer goroutine once started.
	next     uint64 // seq the next record must carry
	written  uint64 // seq of the last record written to the file
	active   *segment
	file     File
	unsynced bool // written bytes not yet fsynced
	failed   bool // writer-local copy of err != nil
	// cutErr is why cut could not take a failed group off the disk.
	cutErr   error
	buf      []byte
	spare    []Batch
	ticker   *clock.Ticker
	syncReqs []syncRequest // SyncThrough calls not yet answered

	// syncHook, if set before Start, runs on the writer goroutine after
	// each successful segment fsync. Tests use it as a hand-off.
	syncHook func()
	// syncRequestHook, if set before Start, runs on the writer goroutine
	// once it has taken a SyncThrough request, with its seq. Tests use it
	// as a hand-off.
	syncRequestHook func(seq uint64)
}

// syncRequest is a SyncThrough call waiting for the writer.
type syncRequest struct {
	seq  uint64
	done chan error // 1-buffered, so the writer never blocks on it
}

// Open opens the log in opts.Dir, creating the directory if needed, and
// validates every segment. A torn tail of the last segment (what a crash
// during an append leaves) is copied to a .broken file and cut, with a
// warning, which says so when the cut frame looks like corruption rather
// than a torn write. Zeros to the end of a segment are the space the
// writer preallocates, not damage: they are kept and later appends fill
// them. Damage that costs no record above opts.Covered is repaired the
// same way (the damaged file set aside as .broken, or cut), with a
// warning. Any other bad frame makes Open fail with a *CorruptError,
// changing nothing. The log accepts no writes until Start.
func Open(opts Options) (*Log, error) {
	if opts.Dir == "" {
		return nil, errors.New("wal: Options.Dir is empty")
	}
	if !opts.Fsync.valid() {
		return nil, fmt.Errorf("wal: unknown fsync policy %d", int(opts.Fsync))
	}
	if opts.SegmentBytes < 0 {
		return nil, fmt.Errorf("wal: negative SegmentBytes %d", opts.SegmentBytes)
	}
	l := &Log{
		dir:      filepath.Clean(opts.Dir),
		fsys:     opts.FS,
		policy:   opts.Fsync,
		segBytes: opts.SegmentBytes,
		clock:    opts.Clock,
		logger:   opts.Logger,

		observeSync:  opts.ObserveSync,
		observeGroup: opts.ObserveGroup,
		onFail:       opts.OnFail,

		notifyc: make(chan struct{}, 1),
		syncc:   make(chan syncRequest),
		stopc:   make(chan struct{}),
		donec:   make(chan struct{}),
	}
	if l.fsys == nil {
		l.fsys = OS
	}
	if l.segBytes == 0 {
		l.segBytes = DefaultSegmentBytes
	}
	switch {
	case opts.PreallocBytes == 0:
		l.prealloc = DefaultPreallocBytes
	case opts.PreallocBytes > 0:
		l.prealloc = opts.PreallocBytes
	}
	if l.clock == nil {
		l.clock = clock.New()
	}
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	if err := l.fsys.MkdirAll(l.dir, 0o755); err != nil {
		return nil, fmt.Errorf("wal: create %s: %w", l.dir, bare(err))
	}
	// Make the directory itself and entries a dead process created but
	// never synced durable before anything is built on them.
	if err := l.fsys.SyncDir(filepath.Dir(l.dir)); err != nil {
		return nil, fmt.Errorf("wal: sync dir %s: %w", filepath.Dir(l.dir), bare(err))
	}
	if err := l.fsys.SyncDir(l.dir); err != nil {
		return nil, fmt.Errorf("wal: sync dir %s: %w", l.dir, bare(err))
	}
	segs, err := l.repair(opts.Covered)
	if err != nil {
		return nil, err
	}
	for _, s := range segs {
		if s.last >= s.base {
			l.lastOnDisk = s.last
		}
	}
	if len(segs) > 0 {
		if err := syncFile(l.fsys, segs[len(segs)-1].path); err != nil {
			return nil, err
		}
	}
	l.segs = segs
	l.durable.Store(l.lastOnDisk)
	// Earlier segments were fsynced when they were finished, and the
	// last one just now.
	l.synced.Store(l.lastOnDisk)
	return l, nil
}

// repair reads every segment, makes the repairs that drop nothing above
// covered (see planRepairs), with a warning each, and returns the
// segments of the valid log. A problem whose repair would drop more is
// returned as an error, with nothing changed.
func (l *Log) repair(covered uint64) ([]*segment, error) {
	for attempt := 0; ; attempt++ {
		segs, err := listSegments(l.fsys, l.dir)
		if err != nil {
			return nil, err
		}
		scans, err := scanFiles(l.fsys, segs)
		if err != nil {
			return nil, err
		}
		problems, _ := planRepairs(scans, covered, false)
		if len(problems) == 0 {
			for i, s := range segs {
				p := scans[i].pieces[0]
				s.last, s.size, s.alloc = p.last, p.end, scans[i].size
			}
			return segs, nil
		}
		for _, p := range problems {
			if p.NeedsForce {
				return nil, p.corruptError(covered)
			}
		}
		if attempt > 0 {
			// The repairs made did not leave a clean log: the files
			// changed under us. Refuse rather than loop.
			return nil, problems[0].corruptError(covered)
		}
		for _, p := range problems {
			saved, err := apply(l.fsys, l.dir, p)
			if err != nil {
				return nil, err
			}
			l.warnRepaired(p, saved, covered)
		}
	}
}

func (l *Log) warnRepaired(p Problem, saved []string, covered uint64) {
	attrs := []any{"file", p.File, "offset", p.Offset, "reason", p.Err, "saved_to", saved}
	switch {
	case p.Repair == CutTornTail && p.TornWrite:
		l.logger.Warn("wal: cut torn tail of last segment", attrs...)
	case p.Repair == CutTornTail:
		l.logger.Warn("wal: cut the bad last record of the log: it looks like corruption, not a torn write "+
			"(the frame is all there but fails its checks), so an acknowledged write may be lost", attrs...)
	default:
		l.logger.Warn("wal: damaged segment repaired: "+p.describe(covered)+
			"; until the next snapshot the older snapshot can no longer be fallen back on for these seqs", attrs...)
	}
}

// Replay calls fn, in order, for every record in the log with a seq above
// after, and returns the seq of the last one (after if there is none).
// Records at or below after are skipped: segments a snapshot covers may
// remain until Compact deletes them. The first record replayed must be
// after+1 and each next one one higher; otherwise Replay returns an error
// wrapping ErrGap that names the file and the seqs expected and found.
// An error from fn stops Replay and is returned as is, with the seq of the
// last record fn accepted. The records passed to fn own their strings.
//
// Replay must be called before Start, and not concurrently with Compact.
func (l *Log) Replay(after uint64, fn func(Record) error) (last uint64, err error) {
	l.mu.Lock()
	started := l.started
	l.mu.Unlock()
	if started {
		return after, errors.New("wal: Replay called after Start")
	}
	l.segMu.Lock()
	segs := slices.Clone(l.segs)
	l.segMu.Unlock()

	last = after
	for _, s := range segs {
		if s.last <= after {
			continue
		}
		var gap error
		sc, err := scanSegment(l.fsys, s.path, s.base, func(r Record) error {
			if r.Seq <= after {
				return nil
			}
			if r.Seq != last+1 {
				gap = fmt.Errorf("%w: %s holds seq %d, want %d (records %d..%d are missing); "+
					"run: kvstore-server aof check --data-dir %s (it says what starting from the rest drops)",
					ErrGap, s.path, r.Seq, last+1, last+1, r.Seq-1, filepath.Dir(l.dir))
				return gap
			}
			if err := fn(r); err != nil {
				return err
			}
			last = r.Seq
			return nil
		})
		if err != nil {
			return last, err
		}
		// Open validated the file; a problem now means it changed since.
		if sc.bad != nil && sc.end < s.size {
			return last, &CorruptError{File: s.path, Offset: sc.end, Err: sc.bad}
		}
	}
	return last, nil
}

// Start starts the writer goroutine. The first record submitted must
// carry seq next and each later one the seq after the one before: next is
// one past the last record replayed, or past the snapshot when that is
// newer. A next at or below a seq already in the log, or 0, fails the log
// (see Err): the caller skipped Replay. Batches submitted before Start are
// written once it is called. Start must be called at most once; after
// Close it does nothing.
func (l *Log) Start(next uint64) {
	l.mu.Lock()
	if l.started {
		l.mu.Unlock()
		panic("wal: Start called twice")
	}
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.started = true
	l.mu.Unlock()

	l.next = next
	l.written = next - 1
	switch {
	case next == 0:
		l.fail(fmt.Errorf("%w: Start(0): sequence numbers start at 1", ErrFailed))
	case next <= l.lastOnDisk:
		l.fail(fmt.Errorf("%w: Start(%d) but the log already holds records through %d",
			ErrFailed, next, l.lastOnDisk))
	default:
		// Records up to next-1 are fsynced in the log (Open saw to it)
		// or covered by the snapshot recovery loaded instead.
		l.durable.Store(next - 1)
		l.synced.Store(next - 1)
	}
	var tickc <-chan time.Time
	if l.policy == FsyncEverySec {
		// Created here, not in the goroutine, so a mock clock advanced
		// right after Start cannot miss it.
		l.ticker = l.clock.Ticker(time.Second)
		tickc = l.ticker.C
	}
	go l.run(tickc)
}

// Submit hands a batch to the writer. It never blocks on disk: the batch
// is queued and the writer picks up everything queued at once (group
// commit). Each waiter of the batch is released, in submission order,
// once every record submitted up to and including the batch is durable
// under the policy. After Close, or once the log has failed, the waiters
// are released at once with ErrClosed or the failure.
func (l *Log) Submit(b Batch) {
	l.mu.Lock()
	var err error
	switch {
	case l.err != nil:
		err = l.err
	case l.closed:
		err = ErrClosed
	default:
		l.pending = append(l.pending, b)
	}
	l.mu.Unlock()
	if err != nil {
		releaseAll(b.Waiters, err)
		return
	}
	select {
	case l.notifyc <- struct{}{}:
	default:
	}
}

// DurableSeq returns the highest seq that is durable under the policy:
// fsynced for FsyncAlways; written to the file for FsyncEverySec and
// FsyncNo, which is when their waiters are released (SyncThrough waits
// for the fsync). Before Start it is the last seq found on disk, after it
// at least next-1.
func (l *Log) DurableSeq() uint64 { return l.durable.Load() }

// SyncThrough returns once every record with a seq at or below seq is
// fsynced, whatever the policy: a snapshot must not cover records that a
// power cut can still take from the log, or recovery falling back to the
// snapshot before it would find them missing. Under FsyncEverySec and
// FsyncNo it makes the writer fsync now instead of at its next tick (or
// never); under FsyncAlways records are fsynced before their waiters are
// released anyway, so it waits for that. Records through seq that have
// not been submitted yet are waited for.
//
// It returns the log's failure (wrapping ErrFailed) if the log failed
// before seq was fsynced, ctx.Err() if ctx ends first, and ErrClosed if
// the log was closed, or Close started, without fsyncing through seq. The
// fsync runs on the writer goroutine like every other, and a failed one is
// never retried.
func (l *Log) SyncThrough(ctx context.Context, seq uint64) error {
	if seq <= l.synced.Load() {
		return nil
	}
	if err := l.Err(); err != nil {
		return err
	}
	req := syncRequest{seq: seq, done: make(chan error, 1)}
	select {
	case l.syncc <- req:
	case <-l.donec:
		if seq <= l.synced.Load() { // Close's final fsync covered it
			return nil
		}
		if err := l.Err(); err != nil {
			return err
		}
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// The writer answers every request it took, at shutdown too.
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Err returns the failure that stopped the log, wrapping ErrFailed, or nil
// while it is healthy. It takes no lock: the actor asks before every
// mutation.
func (l *Log) Err() error {
	if p := l.errv.Load(); p != nil {
		return *p
	}
	return nil
}

// Stats returns the writer's counters.
func (l *Log) Stats() Stats {
	return Stats{
		Records: l.records.Load(),
		Batches: l.batches.Load(),
		Writes:  l.writes.Load(),
		Syncs:   l.syncs.Load(),
		Bytes:   l.bytes.Load(),
	}
}

// Compact deletes every segment, other than the one being written, whose
// records all have seqs at or below through, then fsyncs the directory.
// Call it once a snapshot covering through is durable. It is safe to call
// concurrently with Submit and the writer, and after Close.
func (l *Log) Compact(through uint64) error {
	l.compactMu.Lock()
	defer l.compactMu.Unlock()

	// Seqs grow along the list, so the deletable segments are a prefix.
	// The last segment is the active one, or the one Start may append to.
	l.segMu.Lock()
	n := 0
	for n < len(l.segs)-1 && l.segs[n].last <= through {
		n++
	}
	victims := slices.Clone(l.segs[:n])
	l.segMu.Unlock()
	if n == 0 {
		return nil
	}

	removed := 0
	var rmErr error
	for _, s := range victims {
		if err := l.fsys.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			rmErr = fmt.Errorf("wal: release: remove %s: %w", s.path, bare(err))
			break
		}
		removed++
	}
	// The writer only appends, so the removed segments are still the
	// first entries.
	l.segMu.Lock()
	l.segs = slices.Delete(l.segs, 0, removed)
	l.segMu.Unlock()
	if removed > 0 {
		if err := l.fsys.SyncDir(l.dir); err != nil && rmErr == nil {
			rmErr = fmt.Errorf("wal: release: sync dir %s: %w", l.dir, bare(err))
		}
	}
	return rmErr
}

// Close stops accepting batches, writes and fsyncs everything pending
// (releasing its waiters), stops the writer and waits for it, and closes
// the segment. It returns the log's failure if it failed, at any time,
// since then some submitted records are not durable. It is idempotent:
// later calls wait for the first and return its result.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		started := l.started
		var orphans []Batch
		if !started {
			orphans, l.pending = l.pending, nil
		}
		l.mu.Unlock()
		if !started {
			releaseBatches(orphans, ErrClosed)
			// No writer will run; SyncThrough waits on donec for
			// that.
			close(l.donec)
			return
		}
		close(l.stopc)
		<-l.donec
		l.closeErr = l.Err()
	})
	return l.closeErr
}

// run is the writer goroutine.
func (l *Log) run(tickc <-chan time.Time) {
	defer close(l.donec)
	for {
		select {
		case <-l.notifyc:
			// Callers already running towards Submit join this group
			// instead of the next: 10-20 % fewer fsyncs under load
			// with FsyncAlways, and with everysec 4.8 records per
			// write instead of 1.2 under redis-benchmark's 50 clients
			// (+25 % SET throughput), in A/B runs.
			runtime.Gosched()
			l.commit()
			l.answerSyncs(false)
		case req := <-l.syncc:
			if l.syncRequestHook != nil {
				l.syncRequestHook(req.seq)
			}
			l.syncReqs = append(l.syncReqs, req)
			// Records submitted before the call are queued: write
			// them in this group rather than after another wake-up.
			l.commit()
			l.answerSyncs(false)
		case <-tickc:
			if l.unsynced && !l.failed {
				l.sync()
			}
		case <-l.stopc:
			l.shutdown()
			return
		}
	}
}

// shutdown runs on the writer when Close is called. Submit refuses new
// batches by then, so one more commit empties the queue.
func (l *Log) shutdown() {
	if l.ticker != nil {
		l.ticker.Stop()
	}
	l.commit()
	if l.unsynced && !l.failed {
		l.sync()
	}
	l.answerSyncs(true)
	if l.file != nil {
		if err := l.file.Close(); err != nil && !l.failed {
			l.fail(fmt.Errorf("%w: close %s: %w", ErrFailed, l.active.path, bare(err)))
		}
		l.file = nil
	}
}

// answerSyncs answers the SyncThrough requests that can be answered: it
// fsyncs first if one of them waits for records already written, and
// with final (at shutdown) it answers the rest with ErrClosed.
func (l *Log) answerSyncs(final bool) {
	if len(l.syncReqs) == 0 {
		return
	}
	if !l.failed && l.unsynced {
		for _, r := range l.syncReqs {
			if r.seq <= l.written {
				l.sync() // on failure the requests get the failure below
				break
			}
		}
	}
	synced := l.synced.Load()
	kept := l.syncReqs[:0]
	for _, r := range l.syncReqs {
		switch {
		case r.seq <= synced:
			r.done <- nil
		case l.failed:
			r.done <- l.Err()
		case final:
			r.done <- ErrClosed
		default:
			kept = append(kept, r)
		}
	}
	clear(l.syncReqs[len(kept):])
	l.syncReqs = kept
}

// commit writes every pending batch as one group: one Write, one fsync
// under FsyncAlways, then releases the waiters in order.
func (l *Log) commit() {
	l.mu.Lock()
	group := l.pending
	l.pending = l.spare[:0]
	l.mu.Unlock()
	defer func() {
		// Drop references to records and waiters before reusing.
		clear(group)
		l.spare = group[:0]
	}()
	if len(group) == 0 {
		return
	}
	if l.failed {
		// Queued before the failure was recorded but picked up after.
		releaseBatches(group, l.Err())
		return
	}

	buf := l.buf[:0]
	first := l.next
	for _, b := range group {
		for _, r := range b.Records {
			if err := l.checkRecord(r); err != nil {
				l.fail(err)
				releaseBatches(group, l.Err())
				return
			}
			buf = AppendRecord(buf, r)
			l.next++
		}
	}
	if cap(buf) <= maxKeptBuffer {
		l.buf = buf[:0]
	} else {
		l.buf = nil
	}

	if len(buf) > 0 {
		if !l.write(first, buf) {
			releaseBatches(group, l.groupErr())
			return
		}
		l.records.Add(l.next - first)
		if l.policy == FsyncAlways {
			if !l.sync() {
				// Written but not durable, and about to be answered
				// with the failure: cut the group off again, or a
				// restart would replay what its callers were told
				// was not persisted.
				l.cut(l.active.size-int64(len(buf)), first)
				releaseBatches(group, l.groupErr())
				return
			}
		} else {
			l.durable.Store(l.written)
		}
		if l.observeGroup != nil {
			l.observeGroup(int(l.next - first))
		}
	}
	l.batches.Add(uint64(len(group)))
	releaseBatches(group, nil)
	if len(buf) > 0 && l.policy == FsyncAlways {
		// The released callers are queued on this goroutine's P, and
		// the next group's fdatasync would block the P with them on it
		// until the runtime hands it off (20 us or more). Let them run
		// first; this also lets the next group grow while they answer.
		// Worth 2-12 % of fsync=always throughput in A/B runs.
		runtime.Gosched()
	}
}

// checkRecord rejects records the log cannot store faithfully. All are
// bugs in the caller, and all fail the log: the actor has already applied
// the record, so carrying on would let memory and disk disagree.
func (l *Log) checkRecord(r Record) error {
	switch {
	case r.Seq != l.next:
		return fmt.Errorf("%w: record submitted with seq %d, want %d", ErrFailed, r.Seq, l.next)
	case r.Kind != KindSet && r.Kind != KindDelete:
		return fmt.Errorf("%w: record seq %d has unknown kind %d", ErrFailed, r.Seq, r.Kind)
	case !Fits(r):
		return fmt.Errorf("%w: record seq %d encodes to %d bytes, over the %d-byte limit",
			ErrFailed, r.Seq, payloadLen(r), MaxRecordBytes)
	}
	return nil
}

// write appends buf, whose first record is first, to the active segment,
// starting a new segment first if needed. It reports success; on failure
// the log has failed.
func (l *Log) write(first uint64, buf []byte) bool {
	if l.active == nil || l.active.size >= l.segBytes {
		if !l.roll(first) {
			return false
		}
	}
	if end := l.active.size + int64(len(buf)); end > l.active.alloc && int64(len(buf)) < l.prealloc {
		if !l.extend(end) {
			return false
		}
	}
	n, err := l.file.Write(buf)
	if err == nil && n < len(buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		l.fail(fmt.Errorf("%w: write %s: %w", ErrFailed, l.active.path, bare(err)))
		if n > 0 {
			// The part written may hold whole records of the group,
			// which Open would replay.
			l.cut(l.active.size, first)
		}
		return false
	}
	l.writes.Add(1)
	l.bytes.Add(uint64(n))
	l.active.size += int64(n)
	l.active.alloc = max(l.active.alloc, l.active.size)
	l.active.last = l.next - 1
	l.written = l.next - 1
	l.unsynced = true
	return true
}

// cut takes a group that the log failed on, whose first record is first,
// back off the active segment: it truncates the file to size, where the
// group starts, and fsyncs the truncation. The fsync is trusted only for
// that: whatever the failed write or fsync left of the group lies past
// the durable end of the file from then on, and no later append covers
// it (the log has failed). If the cut fails, the group's waiters get
// ErrOutcomeUnknown (see groupErr).
func (l *Log) cut(size int64, first uint64) {
	err := l.file.Truncate(size)
	if err == nil {
		err = l.file.Sync()
	}
	if err != nil {
		l.cutErr = fmt.Errorf("%w: cut %s back to %d bytes: %w", ErrOutcomeUnknown, l.active.path, size, bare(err))
		l.logger.Error("wal: records the log failed on may still be on disk; their outcome is unknown",
			"first_seq", first, "last_seq", l.next-1, "err", l.cutErr)
		return
	}
	s := l.active
	s.size, s.alloc, s.last = size, size, first-1
	l.written = first - 1
	l.unsynced = false
}

// groupErr is what the waiters of the group the log failed on get: the
// failure, and ErrOutcomeUnknown with it if cut could not take the group
// back off the disk.
func (l *Log) groupErr() error {
	if l.cutErr != nil {
		return fmt.Errorf("%w; %w", l.Err(), l.cutErr)
	}
	return l.Err()
}

// sync fsyncs the active segment. A failed fsync is never retried: after
// one, the kernel may have dropped the dirty pages and a later fsync
// could report success for data that never reached the disk.
func (l *Log) sync() bool {
	var start time.Time
	if l.observeSync != nil {
		start = time.Now()
	}
	if err := l.file.Sync(); err != nil {
		l.fail(fmt.Errorf("%w: sync %s: %w", ErrFailed, l.active.path, bare(err)))
		return false
	}
	if l.observeSync != nil {
		l.observeSync(time.Since(start))
	}
	l.unsynced = false
	l.syncs.Add(1)
	l.durable.Store(l.written)
	l.synced.Store(l.written)
	if l.syncHook != nil {
		l.syncHook()
	}
	return true
}

// roll makes the segment the next group (first record: first) goes to.
// On the first group after Start it reuses the last segment found by Open
// when the group continues it; otherwise it finishes the active segment
// with an fsync, whatever the policy, so that only the last segment can
// ever have a torn tail, and creates a new one.
func (l *Log) roll(first uint64) bool {
	if l.active == nil {
		l.segMu.Lock()
		var last *segment
		if len(l.segs) > 0 {
			last = l.segs[len(l.segs)-1]
		}
		l.segMu.Unlock()
		switch {
		case last != nil && last.last+1 == first && last.size < l.segBytes:
			f, err := l.fsys.OpenFile(last.path, os.O_WRONLY, 0)
			if err != nil {
				l.fail(fmt.Errorf("%w: open %s: %w", ErrFailed, last.path, bare(err)))
				return false
			}
			// Appends go after the records, over the zeros if any.
			if _, err := f.Seek(last.size, io.SeekStart); err != nil {
				f.Close()
				l.fail(fmt.Errorf("%w: seek %s: %w", ErrFailed, last.path, bare(err)))
				return false
			}
			l.active, l.file = last, f
			return true
		case last != nil && last.size == 0:
			// An empty segment that does not start at first (a crash
			// right after creating it) would break the rule that a
			// segment is named by its first record.
			if err := l.fsys.Remove(last.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				l.fail(fmt.Errorf("%w: remove empty segment %s: %w", ErrFailed, last.path, bare(err)))
				return false
			}
			l.segMu.Lock()
			l.segs = l.segs[:len(l.segs)-1]
			l.segMu.Unlock()
		}
	} else {
		// Trimmed and fsynced before the next segment exists: only the
		// last segment ever ends in zeros or a torn frame.
		if !l.trim() || (l.unsynced && !l.sync()) {
			return false
		}
		if err := l.file.Close(); err != nil {
			l.fail(fmt.Errorf("%w: close %s: %w", ErrFailed, l.active.path, bare(err)))
			return false
		}
		l.file = nil
	}

	path := filepath.Join(l.dir, segmentName(first))
	f, err := l.fsys.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		l.fail(fmt.Errorf("%w: create %s: %w", ErrFailed, path, bare(err)))
		return false
	}
	if err := l.fsys.SyncDir(l.dir); err != nil {
		f.Close()
		l.fail(fmt.Errorf("%w: sync dir %s after creating %s: %w", ErrFailed, l.dir, filepath.Base(path), bare(err)))
		return false
	}
	s := &segment{path: path, base: first, last: first - 1}
	l.segMu.Lock()
	l.segs = append(l.segs, s)
	l.segMu.Unlock()
	l.active, l.file = s, f
	return true
}

// extend zero-fills the active segment from its allocated end to past
// end, the offset the next write reaches, in whole steps of
// Options.PreallocBytes, and leaves the file offset at the end of the
// records. The fsync that follows the write makes the zeros and the new
// size durable with it.
func (l *Log) extend(end int64) bool {
	s := l.active
	target := (end/l.prealloc + 1) * l.prealloc
	if _, err := l.file.Seek(s.alloc, io.SeekStart); err != nil {
		l.fail(fmt.Errorf("%w: seek %s: %w", ErrFailed, s.path, bare(err)))
		return false
	}
	for s.alloc < target {
		n, err := l.file.Write(zeroChunk[:min(target-s.alloc, int64(len(zeroChunk)))])
		s.alloc += int64(n)
		if err != nil {
			l.fail(fmt.Errorf("%w: preallocate %s: %w", ErrFailed, s.path, bare(err)))
			return false
		}
	}
	if _, err := l.file.Seek(s.size, io.SeekStart); err != nil {
		l.fail(fmt.Errorf("%w: seek %s: %w", ErrFailed, s.path, bare(err)))
		return false
	}
	l.unsynced = true
	return true
}

// trim cuts the unused zeros off the active segment, which is about to be
// finished; the fsync after it makes the new size durable.
func (l *Log) trim() bool {
	s := l.active
	if s == nil || s.alloc <= s.size {
		return true
	}
	if err := l.file.Truncate(s.size); err != nil {
		l.fail(fmt.Errorf("%w: truncate %s to %d: %w", ErrFailed, s.path, s.size, bare(err)))
		return false
	}
	s.alloc = s.size
	l.unsynced = true
	return true
}

// fail records err as the log's sticky failure (the first one wins),
// logs it once, and releases every queued batch with it.
func (l *Log) fail(err error) {
	l.failed = true
	l.mu.Lock()
	first := l.err == nil
	if first {
		l.err = err
		l.errv.Store(&err)
	}
	orphans := l.pending
	l.pending = nil
	l.mu.Unlock()
	if first {
		l.logger.Error("wal: log failed; acknowledging no more writes until restart", "err", err)
		if l.onFail != nil {
			l.onFail(err)
		}
	}
	releaseBatches(orphans, l.Err())
}

func releaseBatches(bs []Batch, err error) {
	for _, b := range bs {
		releaseAll(b.Waiters, err)
	}
}

func releaseAll(ws []Waiter, err error) {
	for _, w := range ws {
		if w != nil {
			w.Complete(err)
		}
	}
}
