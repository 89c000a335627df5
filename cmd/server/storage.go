package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/benbjohnson/clock"

	"kvstore/actor"
	"kvstore/rpc"
	"kvstore/snap"
	"kvstore/wal"
)

// storage is what recovery builds from the data dir: the recovered state
// and the open log, started and accepting records after seq.
type storage struct {
	lock  *dirLock
	state *actor.State
	seq   uint64
	log   *wal.Log
}

func walDir(dataDir string) string  { return filepath.Join(dataDir, "wal") }
func snapDir(dataDir string) string { return filepath.Join(dataDir, "snap") }

// openStorage recovers from the data dir, which the caller has locked:
// the newest snapshot that validates, then every log record after it, in
// order. The caller starts the actor on the result and only then reports
// SERVING. The storage takes over the lock, also on failure.
func openStorage(lock *dirLock, c Config, clk clock.Clock, log *slog.Logger, metrics *rpc.Metrics) (st *storage, err error) {
	defer func() {
		if err != nil {
			lock.release()
		}
	}()
	start := time.Now()
	state := actor.NewState()
	info, err := snap.Load(wal.OS, snapDir(c.DataDir), clk.Now().UnixNano(), func(key, value string, deadline int64) error {
		state.Set(key, value, deadline)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load snapshot: %w", err)
	}
	if err := setAsideSkipped(info, c.DataDir, log); err != nil {
		return nil, err
	}
	snapKeys := state.Len()

	wlog, err := wal.Open(wal.Options{
		Dir:          walDir(c.DataDir),
		Fsync:        c.Fsync,
		SegmentBytes: c.SegmentBytes,
		// The flag's 0 is the option's "off".
		PreallocBytes: cmp.Or(int64(c.PreallocBytes), -1),
		ObserveSync:   metrics.ObserveSync,
		ObserveGroup:  metrics.ObserveGroup,
		Clock:         clk,
		Logger:        log,
	})
	if err != nil {
		return nil, err
	}
	last, err := wlog.Replay(info.Seq, func(r wal.Record) error {
		state.Apply(r)
		return nil
	})
	if err != nil {
		wlog.Close()
		return nil, fmt.Errorf("replay log: %w", err)
	}
	seq := max(info.Seq, last)
	wlog.Start(seq + 1)
	took := time.Since(start)
	metrics.SetRecoveryDuration(took)
	log.Info("recovered",
		"snapshot_seq", info.Seq, "snapshot_keys", snapKeys,
		"log_records", last-min(last, info.Seq), "keys", state.Len(), "seq", seq,
		"took", took.Round(time.Microsecond))

	return &storage{lock: lock, state: state, seq: seq, log: wlog}, nil
}

// snapshotter returns the snapshot goroutine's logic for a running actor.
func (s *storage) snapshotter(a *actor.Actor, c Config, clk clock.Clock, log *slog.Logger, metrics *rpc.Metrics) (*snap.Snapshotter, error) {
	return snap.NewSnapshotter(snap.SnapshotterConfig{
		Dir: snapDir(c.DataDir),
		Freeze: func(ctx context.Context) (snap.Source, uint64, error) {
			v, seq, err := a.Snapshot(ctx)
			return v, seq, err
		},
		Sync:            s.log.SyncThrough,
		Release:         s.log.Release,
		Clock:           clk,
		Interval:        c.SnapshotInterval,
		ObserveDuration: metrics.ObserveSnapshot,
		Logger:          log,
	})
}

// setAsideSkipped renames snapshots that Load passed over because they did
// not validate to *.corrupt: kept for inspection, but no longer counted as
// one of the two snapshots to fall back on.
func setAsideSkipped(loaded snap.Info, dataDir string, log *slog.Logger) error {
	if len(loaded.Skipped) == 0 {
		return nil
	}
	infos, err := snap.List(wal.OS, snapDir(dataDir))
	if err != nil {
		return err
	}
	for _, bad := range infos {
		if bad.Seq <= loaded.Seq {
			continue
		}
		if err := os.Rename(bad.Path, bad.Path+".corrupt"); err != nil {
			return fmt.Errorf("set aside corrupt snapshot: %w", err)
		}
		log.Warn("snapshot did not validate; loaded an older one", "file", bad.Path, "moved_to", bad.Path+".corrupt", "loaded", loaded.Path)
	}
	for _, err := range loaded.Skipped {
		log.Warn("snapshot skipped", "reason", err)
	}
	return wal.OS.SyncDir(snapDir(dataDir))
}

// close flushes and fsyncs the log and releases the data dir.
func (s *storage) close(log *slog.Logger) error {
	err := s.log.Close()
	st := s.log.Stats()
	perRecord := 0.0
	if st.Records > 0 {
		perRecord = float64(st.Syncs) / float64(st.Records)
	}
	log.Info("log closed", "records", st.Records, "writes", st.Writes, "fsyncs", st.Syncs,
		"fsyncs_per_record", fmt.Sprintf("%.4f", perRecord), "bytes", st.Bytes)
	if lerr := s.lock.release(); err == nil {
		err = lerr
	}
	return err
}
