package snap

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"

	"kvstore/wal"
)

// Snapshotter is the snapshot goroutine's logic: on its interval, on
// demand and at shutdown it asks the owner for a frozen view, streams the
// view to disk with Write while the owner keeps serving, and then lets the
// log drop the records the kept snapshots cover.
//
// It follows the hand-off of hashicorp/raft's FSM.Snapshot/Persist: the
// owner only captures a pointer (Freeze); all I/O happens here.
type Snapshotter struct {
	cfg SnapshotterConfig

	// ticker is created with the Snapshotter, before Run's goroutine
	// starts, so a mock clock advanced right away cannot miss it.
	ticker *clock.Ticker

	mu sync.Mutex // one snapshot at a time
	// newest and older are the sequence numbers of the two snapshots on
	// disk (0 when absent). The log may drop records only up to older:
	// Load falls back to it when newest does not validate.
	newest, older uint64

	// Counters for Stats, atomic so that reading them never waits for
	// a snapshot in progress.
	written, failed atomic.Uint64
	lastBytes       atomic.Int64
	lastTime        atomic.Int64 // Unix nanoseconds on cfg.Clock, 0 for none
}

// Stats are a Snapshotter's counters since NewSnapshotter.
type Stats struct {
	// Written is the number of snapshots written and made durable.
	Written uint64
	// Failed is the number of Snapshot calls that returned an error,
	// not counting those whose context had ended (shutdown): the
	// snapshot was not made durable, or the log could not drop the
	// records it covers.
	Failed uint64
	// LastBytes is the size of the last snapshot written, 0 before the
	// first.
	LastBytes int64
	// LastTime is when the newest snapshot was last known to cover all
	// the data: when it became durable, or later when a Snapshot call
	// found nothing changed since. Zero before the first Snapshot call
	// that succeeded.
	LastTime time.Time
}

// SnapshotterConfig configures a Snapshotter.
type SnapshotterConfig struct {
	// FS and Dir locate the snapshots; nil FS means wal.OS.
	FS  wal.FS
	Dir string
	// Freeze asks the owner for a frozen view and the sequence number of
	// the last mutation in it. It must be cheap for the owner. Each view
	// is Released once the snapshot is done with it, written or not.
	Freeze func(ctx context.Context) (Source, uint64, error)
	// Sync, if set, is called after Freeze and before anything is
	// written, with the view's sequence number, and must return only once
	// every log record at or below it is fsynced, under every fsync
	// policy: Compact later lets the log drop records up to the older
	// snapshot, so when the newest does not validate, recovery falls back
	// on the older one plus the log, which must then hold every record up
	// to the newest. Even under fsync=always the view may hold records
	// still waiting for their fsync. An error fails the snapshot; nil
	// skips the call.
	Sync func(ctx context.Context, through uint64) error
	// Compact is told, after each durable snapshot, that every log record
	// at or below the given sequence number is covered by both kept
	// snapshots and may be deleted. Nil skips it.
	Compact func(through uint64) error
	// Clock drives Run's interval; nil is the real clock.
	Clock clock.Clock
	// Interval is Run's period; zero or negative makes Run only wait for
	// its context.
	Interval time.Duration
	// Logger receives one line per snapshot and failures; nil discards.
	Logger *slog.Logger
	// ObserveDuration, if set, is called after each snapshot written
	// with how long it took, from the freeze until the file was durable.
	ObserveDuration func(d time.Duration)
}

// NewSnapshotter returns a Snapshotter that knows the snapshots already in
// cfg.Dir.
func NewSnapshotter(cfg SnapshotterConfig) (*Snapshotter, error) {
	if cfg.FS == nil {
		cfg.FS = wal.OS
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.New()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Snapshotter{cfg: cfg}
	infos, err := List(cfg.FS, cfg.Dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if len(infos) > 0 {
		s.newest = infos[0].Seq
	}
	if len(infos) > 1 {
		s.older = infos[1].Seq
	}
	if cfg.Interval > 0 {
		s.ticker = cfg.Clock.Ticker(cfg.Interval)
	}
	return s, nil
}

// Run takes a snapshot every Interval until ctx ends; call it once. A
// failed snapshot is logged and retried at the next interval: the log still
// holds every record, so nothing is lost meanwhile.
func (s *Snapshotter) Run(ctx context.Context) error {
	if s.ticker == nil {
		<-ctx.Done()
		return nil
	}
	defer s.ticker.Stop()
	for {
		select {
		case <-s.ticker.C:
			if _, err := s.Snapshot(ctx); err != nil && ctx.Err() == nil {
				s.cfg.Logger.Error("snapshot failed", "err", err)
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// Stats returns the Snapshotter's counters. It is safe to call from any
// goroutine and does not wait for a snapshot in progress.
func (s *Snapshotter) Stats() Stats {
	st := Stats{
		Written:   s.written.Load(),
		Failed:    s.failed.Load(),
		LastBytes: s.lastBytes.Load(),
	}
	if t := s.lastTime.Load(); t != 0 {
		st.LastTime = time.Unix(0, t)
	}
	return st
}

// Snapshot writes a snapshot now, unless nothing changed since the newest
// one, and returns its Info. Concurrent calls run one after the other.
func (s *Snapshotter) Snapshot(ctx context.Context) (Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	info, err := s.snapshot(ctx)
	if err != nil && ctx.Err() == nil {
		s.failed.Add(1)
	}
	return info, err
}

func (s *Snapshotter) snapshot(ctx context.Context) (Info, error) {
	start := time.Now()
	src, seq, err := s.cfg.Freeze(ctx)
	if err != nil {
		return Info{}, fmt.Errorf("snap: freeze: %w", err)
	}
	// On every path, written or not: the owner copies what src shares
	// until it is released.
	defer src.Release()
	// The hand-off's round trip: an upper bound on the owner's pause.
	freeze := time.Since(start)
	if seq == s.newest {
		if seq != 0 {
			s.lastTime.Store(s.cfg.Clock.Now().UnixNano())
		}
		return Info{Seq: seq}, nil // nothing changed since the newest
	}
	if s.cfg.Sync != nil {
		if err := s.cfg.Sync(ctx, seq); err != nil {
			return Info{}, fmt.Errorf("snap: sync log through %d: %w", seq, err)
		}
	}
	info, err := Write(s.cfg.FS, s.cfg.Dir, seq, src)
	if err != nil && !errors.Is(err, ErrPrune) {
		return Info{}, err
	}
	if err != nil {
		s.cfg.Logger.Warn("old snapshots not removed", "err", err)
	}
	if seq != s.newest {
		s.older, s.newest = s.newest, seq
	}
	took := time.Since(start)
	s.written.Add(1)
	s.lastBytes.Store(info.Bytes)
	s.lastTime.Store(s.cfg.Clock.Now().UnixNano())
	if s.cfg.ObserveDuration != nil {
		s.cfg.ObserveDuration(took)
	}
	s.cfg.Logger.Info("snapshot written", "seq", seq, "keys", info.Count, "bytes", info.Bytes,
		"freeze", freeze, "took", took)
	if s.cfg.Compact != nil && s.older > 0 {
		if err := s.cfg.Compact(s.older); err != nil {
			return info, fmt.Errorf("snap: compact log through %d: %w", s.older, err)
		}
	}
	return info, nil
}
