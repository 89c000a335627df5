package server

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"kvstore/actor"
	kvstorepb "kvstore/proto"
	"kvstore/rpc"
	"kvstore/snap"
	"kvstore/wal"
)

// backupBenchKeys is the data set of the backup benchmarks: 1M keys of
// 16-byte values, keys like key:00000123.
const backupBenchKeys = 1_000_000

// writeBenchSnapshot makes dir a data dir holding backupBenchKeys keys
// as its snapshot.
func writeBenchSnapshot(b *testing.B, dir string) {
	b.Helper()
	st := actor.NewState()
	for i := range backupBenchKeys {
		st.Set(fmt.Sprintf("key:%08d", i), "0123456789abcdef", 0)
	}
	if _, err := snap.Write(wal.OS, snapDir(dir), backupBenchKeys, st.Freeze()); err != nil {
		b.Fatal(err)
	}
}

// heapPeak samples the heap's live-object bytes every millisecond until
// stopped and returns the highest sample: the runtime keeps no peak of
// its own.
type heapPeak struct {
	stop chan struct{}
	done chan uint64
}

func sampleHeap() *heapPeak {
	h := &heapPeak{stop: make(chan struct{}), done: make(chan uint64)}
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
			select {
			case <-h.stop:
				h.done <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return h
}

func (h *heapPeak) end() uint64 {
	close(h.stop)
	return <-h.done
}

// liveHeap is the heap's live-object bytes after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// BenchmarkBackup streams a backup of 1M keys over gRPC from a running
// server, client and server in this process, and reports the peak heap
// above the live heap before it began (server and client together: an
// upper bound on the server's share) and the bytes of the backup. ns/op
// is the time of one whole backup. idle has no other load; writes has 4
// clients overwriting random keys meanwhile, so the owner clones every
// shard it writes while the frozen view holds it.
//
// The heap sampled counts garbage not collected yet, and at the default
// GOGC the collector lets ~1x the live heap of it pile up, so the
// gogc=5 runs collect every few MB to show what a backup keeps live.
func BenchmarkBackup(b *testing.B) {
	b.Run("idle", func(b *testing.B) { benchmarkBackup(b, 0, 0) })
	b.Run("idle/gogc=5", func(b *testing.B) { benchmarkBackup(b, 0, 5) })
	b.Run("writes", func(b *testing.B) { benchmarkBackup(b, 4, 0) })
	b.Run("writes/gogc=5", func(b *testing.B) { benchmarkBackup(b, 4, 5) })
}

func benchmarkBackup(b *testing.B, writers, gcPercent int) {
	dir := b.TempDir()
	writeBenchSnapshot(b, dir)
	c := recoveryConfig(dir, wal.OS, nil, nil)
	c.Clock = clock.New()
	c.Fsync = wal.FsyncNo
	c.WALSegmentBytes = DefaultConfig().WALSegmentBytes
	c.NoFinalSnapshot = true
	r := startRun(b, c)
	admin := kvstorepb.NewAdminClient(r.conn)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var sets atomic.Int64
	for w := range writers {
		wg.Go(func() {
			for i := w; ctx.Err() == nil; i += writers {
				sets.Add(1)
				r.kv.Set(ctx, &kvstorepb.SetRequest{Key: fmt.Sprintf("key:%08d", (i*7919)%backupBenchKeys), Value: "fedcba9876543210"})
			}
		})
	}
	defer func() { cancel(); wg.Wait() }()

	if gcPercent > 0 {
		defer debug.SetGCPercent(debug.SetGCPercent(gcPercent))
	}
	var peakExtra, size uint64
	var during int64
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		base := liveHeap()
		h := sampleHeap()
		before := sets.Load()
		b.StartTimer()
		stream, err := admin.Backup(context.Background(), &kvstorepb.BackupRequest{})
		if err != nil {
			b.Fatal(err)
		}
		var n uint64
		for {
			msg, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n += uint64(len(msg.GetData()))
		}
		b.StopTimer()
		during += sets.Load() - before
		if peak := h.end(); peak > base {
			peakExtra = max(peakExtra, peak-base)
		}
		size = n
		b.StartTimer()
	}
	b.ReportMetric(float64(peakExtra), "peak-extra-heap-B")
	b.ReportMetric(float64(size), "backup-B")
	b.ReportMetric(float64(during)/float64(b.N), "sets-during")
}

// BenchmarkRestore is `kvstore-server restore` of a 1M-key backup into an
// empty dir (verify, copy, verify the copy) and the start-up that loads
// it: the time from a backup file to a server that could serve it.
func BenchmarkRestore(b *testing.B) {
	src := b.TempDir()
	writeBenchSnapshot(b, src)
	bak := filepath.Join(src, "snap", snap.FileName(backupBenchKeys))
	quiet := recoveryConfig("", wal.OS, nil, nil).Logger
	for i := 0; b.Loop(); i++ {
		data := filepath.Join(b.TempDir(), fmt.Sprint(i))
		if _, err := Restore(bak, data, RestoreOptions{}); err != nil {
			b.Fatal(err)
		}
		c := Config{DataDir: data, Fsync: wal.FsyncNo, WALSegmentBytes: wal.DefaultSegmentBytes}
		s, err := recoverStorage(context.Background(), wal.OS, &c, clock.New(), quiet, rpc.NewMetrics(nil), nil)
		if err != nil {
			b.Fatal(err)
		}
		if s.state.Len() != backupBenchKeys {
			b.Fatalf("restored %d keys", s.state.Len())
		}
		b.StopTimer()
		if err := s.close(quiet); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
