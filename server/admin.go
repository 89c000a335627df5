package server

import (
	"context"
	"io"
	"path/filepath"
	"time"

	"github.com/benbjohnson/clock"

	"kvstore/actor"
	kvstorepb "kvstore/proto"
	"kvstore/rpc"
	"kvstore/snap"
	"kvstore/wal"
)

// adminBackend is the storage under the Admin service: the actor for
// frozen views and counts, the snapshotter and the files of the data dir.
type adminBackend struct {
	actor *actor.Actor
	snaps *snap.Snapshotter
	log   *wal.Log
	fs    wal.FS
	cfg   *Config
	clock clock.Clock
}

// Backup freezes the data: the owner only captures the shard pointers, so
// this costs O(shards) however large the data, and writes go on at once.
// Every write acknowledged before now was applied before the freeze, so
// it is in the view.
func (b *adminBackend) Backup(ctx context.Context) (rpc.BackupSource, error) {
	v, seq, err := b.actor.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return &backupView{view: v, seq: seq}, nil
}

// backupView is a frozen view on its way to a backup.
type backupView struct {
	view *actor.View
	seq  uint64
}

func (v *backupView) Seq() uint64  { return v.seq }
func (v *backupView) Keys() uint64 { return uint64(v.view.Len()) }
func (v *backupView) Release()     { v.view.Release() }

func (v *backupView) Encode(w io.Writer) (int64, uint32, error) {
	e, err := snap.Encode(w, v.seq, v.view)
	return e.Bytes, e.Checksum, err
}

// Snapshot writes a snapshot now, or names the newest one when nothing
// changed since it.
func (b *adminBackend) Snapshot(ctx context.Context) (*kvstorepb.SnapshotResponse, error) {
	info, err := b.snaps.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	resp := &kvstorepb.SnapshotResponse{Seq: info.Seq, Path: info.Path, Size: uint64(info.Bytes), Keys: info.Count}
	if info.Path == "" && info.Seq != 0 {
		if newest, ok := b.newestSnapshot(); ok && newest.seq == info.Seq {
			resp.Path, resp.Size = newest.path, uint64(newest.size)
		}
	}
	return resp, nil
}

// snapshotFile is the newest snapshot on disk.
type snapshotFile struct {
	path     string
	seq      uint64
	size     int64
	modified time.Time
}

// newestSnapshot looks in the data dir: the snapshotter only knows what
// it wrote since the server started.
func (b *adminBackend) newestSnapshot() (snapshotFile, bool) {
	dir := snapDir(b.cfg.DataDir)
	infos, err := snap.List(b.fs, dir)
	if err != nil || len(infos) == 0 {
		return snapshotFile{}, false
	}
	f := snapshotFile{path: infos[0].Path, seq: infos[0].Seq}
	entries, err := b.fs.ReadDir(dir)
	if err != nil {
		return f, true
	}
	for _, e := range entries {
		if e.Name() != filepath.Base(f.path) {
			continue
		}
		if fi, err := e.Info(); err == nil {
			f.size, f.modified = fi.Size(), fi.ModTime()
		}
	}
	return f, true
}

// Info reports the data, the storage and the limits.
func (b *adminBackend) Info(context.Context) (*kvstorepb.InfoResponse, error) {
	st := b.actor.Stats()
	c := b.cfg
	resp := &kvstorepb.InfoResponse{
		Keys:           uint64(st.Keys),
		KeysWithTtl:    uint64(st.KeysWithTTL),
		Seq:            st.Seq,
		MemoryBytes:    uint64(max(st.Bytes, 0)),
		MaxMemoryBytes: uint64(c.MaxMemory),
		Fsync:          c.Fsync.String(),
		DataDir:        c.DataDir,
		MaxKeyBytes:    uint64(c.MaxKeyBytes),
		MaxValueBytes:  uint64(c.MaxValueBytes),
		MaxConnections: uint64(c.MaxConnections),
		WritesRefused:  b.log.Err() != nil,
	}
	if u, err := wal.DiskUsage(b.fs, walDir(c.DataDir)); err == nil {
		resp.LogBytes, resp.LogSegments = uint64(u.Bytes), uint32(u.Segments)
	}
	if f, ok := b.newestSnapshot(); ok {
		resp.SnapshotSeq, resp.SnapshotBytes = f.seq, uint64(f.size)
		// The snapshotter's time is on the server's clock and counts a
		// check that found nothing changed; the file's is the fallback
		// for a snapshot written before this start.
		when := b.snaps.Stats().LastTime
		if when.IsZero() {
			when = f.modified
		}
		if !when.IsZero() {
			resp.SnapshotAgeSeconds = max(b.clock.Since(when).Seconds(), 0)
		}
	}
	return resp, nil
}
