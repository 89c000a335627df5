package server

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/benbjohnson/clock"

	"kvstore/actor"
	"kvstore/rpc"
	"kvstore/snap"
	"kvstore/wal"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type waitc chan error

func (w waitc) Complete(err error) { w <- err }

// buildTwoSnapshotDir lays out a data dir as a server leaves it after
// writing n keys, a snapshot, n more, a snapshot (which compacts the log
// through the first), and n more without one: 3n records in 1 KiB
// segments, snapshots at n and 2n. It returns the log's segments.
func buildTwoSnapshotDir(t *testing.T, dir string, n int) []string {
	t.Helper()
	log, err := wal.Open(wal.Options{Dir: walDir(dir), Fsync: wal.FsyncNo, SegmentBytes: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	log.Start(1)
	st := actor.NewState()
	for seq := 1; seq <= 3*n; seq++ {
		r := wal.Record{Seq: uint64(seq), Kind: wal.KindSet, Key: fmt.Sprintf("key-%05d", seq), Value: "value"}
		st.Set(r.Key, r.Value, 0)
		// One group per record, as under a steady load.
		done := waitc(make(chan error, 1))
		log.Submit(wal.Batch{Records: []wal.Record{r}, Waiters: []wal.Waiter{done}})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if seq == n || seq == 2*n {
			if err := log.SyncThrough(context.Background(), uint64(seq)); err != nil {
				t.Fatal(err)
			}
			v := st.Freeze()
			_, err := snap.Write(wal.OS, snapDir(dir), uint64(seq), v)
			st.Release(v)
			if err != nil {
				t.Fatal(err)
			}
			if seq == 2*n {
				// What the snapshotter does: keep what the older
				// snapshot needs.
				if err := log.Compact(uint64(n)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	segs, err := filepath.Glob(filepath.Join(walDir(dir), "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

// TestRecoverySetsAsideDamageTheSnapshotCovers is issue 12's reproduction
// at the server's level: a flipped byte in the middle of the oldest
// segment, whose every record the newest snapshot holds, used to stop
// start-up (and the repair it named dropped every later segment). Now
// recovery warns, sets the segment aside and serves every key.
func TestRecoverySetsAsideDamageTheSnapshotCovers(t *testing.T) {
	const n = 210 // not a multiple of the records per segment, so one segment straddles it
	dir := t.TempDir()
	segs := buildTwoSnapshotDir(t, dir, n)
	// The oldest segment is wholly covered by the snapshot at 2n; later
	// ones hold records past it.
	var first, second uint64
	fmt.Sscanf(filepath.Base(segs[0]), "%020d.wal", &first)
	fmt.Sscanf(filepath.Base(segs[1]), "%020d.wal", &second)
	if first > n || second-1 > 2*n || len(segs) < 4 {
		t.Fatalf("log layout %v does not have the issue's shape", segs)
	}
	data, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	if err := os.WriteFile(segs[0], data, 0o644); err != nil {
		t.Fatal(err)
	}

	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	c := Config{DataDir: dir, Fsync: wal.FsyncNo, WALSegmentBytes: 1 << 10}
	s, err := recoverStorage(context.Background(), wal.OS, &c, clock.New(), logger, rpc.NewMetrics(nil), nil)
	if err != nil {
		t.Fatalf("recovery: %v", err)
	}
	defer s.close(logger)
	if s.state.Len() != 3*n || s.seq != 3*n {
		t.Fatalf("recovered %d keys through seq %d; want %d", s.state.Len(), s.seq, 3*n)
	}
	for _, want := range []string{"level=WARN", "damaged segment repaired", "set the segment aside", segs[0]} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log does not say %q:\n%s", want, logs.String())
		}
	}
	if _, err := os.Stat(segs[0] + ".broken"); err != nil {
		t.Fatalf("damaged segment not set aside: %v", err)
	}
}
