package server

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/benbjohnson/clock"

	"kvstore/actor"
	"kvstore/rpc"
	"kvstore/snap"
	"kvstore/wal"
)

// BenchmarkRecovery measures a restart at 1M keys: loading a snapshot of
// 1M keys, then replaying 100k log records after it (half overwrites, half
// new keys). It also reports the bytes on disk per key.
func BenchmarkRecovery(b *testing.B) {
	const keys, records = 1_000_000, 100_000
	dir := b.TempDir()
	c := Config{DataDir: dir, Fsync: wal.FsyncNo, WALSegmentBytes: wal.DefaultSegmentBytes}

	st := actor.NewState()
	for i := range keys {
		st.Set(fmt.Sprintf("key:%08d", i), "0123456789abcdef", 0)
	}
	if _, err := snap.Write(wal.OS, snapDir(dir), keys, st.Freeze()); err != nil {
		b.Fatal(err)
	}
	log, err := wal.Open(wal.Options{Dir: walDir(dir), Fsync: wal.FsyncNo})
	if err != nil {
		b.Fatal(err)
	}
	log.Start(keys + 1)
	batch := make([]wal.Record, 0, 1000)
	for i := range records {
		batch = append(batch, wal.Record{
			Seq: uint64(keys + 1 + i), Kind: wal.KindSet,
			Key: fmt.Sprintf("key:%08d", i*20), Value: "fedcba9876543210",
		})
		if len(batch) == cap(batch) {
			log.Submit(wal.Batch{Records: batch})
			batch = make([]wal.Record, 0, 1000)
		}
	}
	if err := log.Close(); err != nil {
		b.Fatal(err)
	}
	var onDisk int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, _ error) error {
		if info, err := d.Info(); err == nil && !d.IsDir() {
			onDisk += info.Size()
		}
		return nil
	})

	quiet := slog.New(slog.DiscardHandler)
	b.ResetTimer()
	for range b.N {
		s, err := recoverStorage(context.Background(), wal.OS, &c, clock.New(), quiet, rpc.NewMetrics(nil), nil)
		if err != nil {
			b.Fatal(err)
		}
		if s.state.Len() != keys+records/2 || s.seq != keys+records {
			b.Fatalf("recovered %d keys at seq %d", s.state.Len(), s.seq)
		}
		b.StopTimer()
		if err := s.close(quiet); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(onDisk)/float64(keys+records/2), "disk-B/key")
}
