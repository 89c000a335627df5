package server

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/benbjohnson/clock"

	"kvstore/actor"
	"kvstore/rpc"
	"kvstore/snap"
	"kvstore/wal"
	"kvstore/wal/actorlog"
)

// storage is what recovery builds from the data dir: the recovered state
// and the open log, started and accepting records after seq.
type storage struct {
	state *actor.State
	seq   uint64
	log   *wal.Log
}

func walDir(dataDir string) string  { return wal.Dir(dataDir) }
func snapDir(dataDir string) string { return filepath.Join(dataDir, "snap") }

// checkEvery is how many entries recovery applies between looks at its
// context, so a signal during a long recovery stops it promptly.
const checkEvery = 4096

// recoverStorage rebuilds the data from the data dir on fsys, which the
// caller has locked: the newest snapshot that validates, then every log
// record after it, in order. Snapshots that did not validate are set aside
// as *.corrupt. The caller starts the actor on the result and only then
// reports SERVING. ctx's end stops recovery with ctx's error. onFail is
// the log's Options.OnFail.
func recoverStorage(ctx context.Context, fsys wal.FS, c *Config, clk clock.Clock, log *slog.Logger, metrics *rpc.Metrics, onFail func(error)) (*storage, error) {
	start := time.Now()
	state := actor.NewState()
	n := 0
	checkCtx := func() error {
		n++
		if n%checkEvery == 0 {
			return ctx.Err()
		}
		return nil
	}
	info, err := snap.Load(fsys, snapDir(c.DataDir), clk.Now().UnixNano(), func(key, value string, deadline int64) error {
		state.Set(key, value, deadline)
		return checkCtx()
	})
	if err != nil {
		return nil, fmt.Errorf("load snapshot: %w", err)
	}
	// checkCtx looks only every checkEvery entries, and wal.Open reads
	// every segment without looking at all: check at each step too.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("stopped before opening the log: %w", err)
	}
	if err := setAsideSkipped(fsys, info, c.DataDir, log); err != nil {
		return nil, err
	}
	snapKeys := state.Len()

	wlog, err := wal.Open(wal.Options{
		Dir:          walDir(c.DataDir),
		FS:           fsys,
		Fsync:        c.Fsync,
		SegmentBytes: int64(c.WALSegmentBytes),
		// The setting's 0 is the option's "off".
		PreallocBytes: cmp.Or(int64(c.WALPreallocBytes), -1),
		ObserveSync:   metrics.ObserveSync,
		ObserveGroup:  metrics.ObserveGroup,
		OnFail:        onFail,
		Clock:         clk,
		Logger:        log,
		// Damage confined to records the snapshot holds is set aside
		// rather than stopping start-up.
		Covered: info.Seq,
	})
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		wlog.Close()
		return nil, fmt.Errorf("stopped before replaying the log: %w", err)
	}
	last, err := wlog.Replay(info.Seq, func(r wal.Record) error {
		state.Apply(actorlog.FromWAL(r))
		return checkCtx()
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
	return &storage{state: state, seq: seq, log: wlog}, nil
}

// setAsideSkipped renames snapshots that Load passed over because they were
// damaged to *.corrupt: kept for inspection, but no longer counted as one
// of the two snapshots to fall back on. Load skips nothing but damage (an
// I/O error stops it), and the data-dir lock keeps the directory still
// between Load and here, so the snapshots newer than the loaded one are
// exactly the damaged ones.
func setAsideSkipped(fsys wal.FS, loaded snap.Info, dataDir string, log *slog.Logger) error {
	if len(loaded.Skipped) == 0 {
		return nil
	}
	infos, err := snap.List(fsys, snapDir(dataDir))
	if err != nil {
		return err
	}
	for _, bad := range infos {
		if bad.Seq <= loaded.Seq {
			continue
		}
		if err := fsys.Rename(bad.Path, bad.Path+".corrupt"); err != nil {
			return fmt.Errorf("set aside corrupt snapshot: %w", err)
		}
		log.Warn("snapshot did not validate; loaded an older one", "file", bad.Path, "moved_to", bad.Path+".corrupt", "loaded", loaded.Path)
	}
	for _, err := range loaded.Skipped {
		log.Warn("snapshot skipped", "reason", err)
	}
	return fsys.SyncDir(snapDir(dataDir))
}

// snapshotter returns the snapshot goroutine's logic for a running actor.
func (s *storage) snapshotter(fsys wal.FS, a *actor.Actor, c *Config, clk clock.Clock, log *slog.Logger, metrics *rpc.Metrics) (*snap.Snapshotter, error) {
	return snap.NewSnapshotter(snap.SnapshotterConfig{
		FS:  fsys,
		Dir: snapDir(c.DataDir),
		Freeze: func(ctx context.Context) (snap.Source, uint64, error) {
			v, seq, err := a.Snapshot(ctx)
			return v, seq, err
		},
		Sync:            s.log.SyncThrough,
		Compact:         s.log.Compact,
		Clock:           clk,
		Interval:        c.SnapshotInterval,
		ObserveDuration: metrics.ObserveSnapshot,
		Logger:          log,
	})
}

// close flushes and fsyncs the log and logs its counters.
func (s *storage) close(log *slog.Logger) error {
	err := s.log.Close()
	st := s.log.Stats()
	perRecord := 0.0
	if st.Records > 0 {
		perRecord = float64(st.Syncs) / float64(st.Records)
	}
	log.Info("log closed", "records", st.Records, "writes", st.Writes, "fsyncs", st.Syncs,
		"fsyncs_per_record", fmt.Sprintf("%.4f", perRecord), "bytes", st.Bytes)
	return err
}
