package snap

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
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
}

// SnapshotterConfig configures a Snapshotter.
type SnapshotterConfig struct {
	// FS and Dir locate the snapshots; nil FS means wal.OS.
	FS  wal.FS
	Dir string
	// Freeze asks the owner for a frozen view and the sequence number of
	// the last mutation in it. It must be cheap for the owner.
	Freeze func(ctx context.Context) (Source, uint64, error)
	// Release is told, after each durable snapshot, that every log record
	// at or below the given sequence number is covered by both kept
	// snapshots and may be deleted. Nil skips it.
	Release func(through uint64) error
	// Clock drives Run's interval; nil is the real clock.
	Clock clock.Clock
	// Interval is Run's period; zero or negative makes Run only wait for
	// its context.
	Interval time.Duration
	// Logger receives one line per snapshot and failures; nil discards.
	Logger *slog.Logger
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

// Snapshot writes a snapshot now, unless nothing changed since the newest
// one, and returns its Info. Concurrent calls run one after the other.
func (s *Snapshotter) Snapshot(ctx context.Context) (Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := time.Now()
	src, seq, err := s.cfg.Freeze(ctx)
	if err != nil {
		return Info{}, fmt.Errorf("snap: freeze: %w", err)
	}
	// The hand-off's round trip: an upper bound on the owner's pause.
	freeze := time.Since(start)
	if seq == s.newest {
		return Info{Seq: seq}, nil // nothing changed since the newest
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
	s.cfg.Logger.Info("snapshot written", "seq", seq, "keys", info.Count, "bytes", info.Bytes,
		"freeze", freeze, "took", time.Since(start))
	if s.cfg.Release != nil && s.older > 0 {
		if err := s.cfg.Release(s.older); err != nil {
			return info, fmt.Errorf("snap: release log through %d: %w", s.older, err)
		}
	}
	return info, nil
}
