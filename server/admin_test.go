package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/benbjohnson/clock"

	kvstorepb "kvstore/proto"
	"kvstore/snap"
	"kvstore/wal"
)

// loadBackup checks a backup the way restore does, by loading it as a
// data dir's snapshot, and returns its entries.
func loadBackup(t *testing.T, data []byte, seq uint64) (snap.Info, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d.snap", seq)), data, 0o600); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	info, err := snap.Load(wal.OS, dir, 0, func(key, value string, _ int64) error {
		got[key] = value
		return nil
	})
	if err != nil {
		t.Fatalf("backup does not load: %v", err)
	}
	return info, got
}

// A backup taken under concurrent writes is exactly its cut: every write
// acknowledged before it started is in it, and the writes in it are the
// first seq ones the server applied, no more. Each writer sets new keys
// w/0, w/1, ... one after another, so in any consistent cut each writer's
// keys are a prefix, and since every Set is one sequence number the
// prefixes (and the preload) add up to the cut's seq.
func TestBackupIsTheCut(t *testing.T) {
	c := recoveryConfig(t.TempDir(), wal.OS, clock.NewMock(), nil)
	c.Fsync = wal.FsyncNo
	c.WALSegmentBytes = DefaultConfig().WALSegmentBytes
	r := startRun(t, c)
	ctx := context.Background()
	// Enough data for many chunks, so writes go on while it streams.
	const preload = 2000
	value := strings.Repeat("p", 2000)
	for i := range preload {
		if _, err := r.kv.Set(ctx, &kvstorepb.SetRequest{Key: "pre/" + strconv.Itoa(i), Value: value}); err != nil {
			t.Fatal(err)
		}
	}

	const writers = 4
	var acked [writers]atomic.Int64
	stop := make(chan struct{})
	warm := make(chan struct{}, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := r.kv.Set(ctx, &kvstorepb.SetRequest{Key: fmt.Sprintf("w%d/%d", w, i), Value: strconv.Itoa(i)}); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				if acked[w].Add(1) == 20 {
					warm <- struct{}{}
				}
			}
		}()
	}
	for range writers {
		<-warm
	}
	var before [writers]int64
	for w := range before {
		before[w] = acked[w].Load()
	}
	stream, err := kvstorepb.NewAdminClient(r.conn).Backup(ctx, &kvstorepb.BackupRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var data bytes.Buffer
	var first, last *kvstorepb.BackupChunk
	chunks := 0
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = msg
		}
		chunks++
		data.Write(msg.GetData())
		last = msg
	}
	close(stop)
	wg.Wait()

	if !last.GetLast() || last.GetSize() != uint64(data.Len()) {
		t.Fatalf("last chunk %+v for %d bytes; want last, with the size", last, data.Len())
	}
	seq := first.GetSeq()
	info, got := loadBackup(t, data.Bytes(), seq)
	if info.Seq != seq || info.Count != first.GetKeys() || uint64(len(got)) != first.GetKeys() {
		t.Fatalf("file seq %d, %d entries, %d loaded; stream said seq %d, %d keys", info.Seq, info.Count, len(got), seq, first.GetKeys())
	}
	for i := range preload {
		if got["pre/"+strconv.Itoa(i)] != value {
			t.Fatalf("pre/%d missing from the backup", i)
		}
	}
	total := uint64(preload)
	for w := range writers {
		n := 0
		for ; ; n++ {
			v, ok := got[fmt.Sprintf("w%d/%d", w, n)]
			if !ok {
				break
			}
			if v != strconv.Itoa(n) {
				t.Fatalf("w%d/%d = %q", w, n, v)
			}
		}
		if int64(n) < before[w] {
			t.Errorf("writer %d: %d writes acked before the backup began, %d in it", w, before[w], n)
		}
		total += uint64(n)
	}
	if total != uint64(len(got)) {
		t.Errorf("%d keys are not each writer's prefix: a write after a gap", uint64(len(got))-total)
	}
	if total != seq {
		t.Errorf("backup at seq %d holds %d writes: the cut is not one sequence number", seq, total)
	}
	t.Logf("backup: seq %d, %d keys, %d bytes in %d chunks, writes acked meanwhile: %v", seq, len(got), data.Len(), chunks, acked[0].Load()-before[0])
}

// The HTTP backup is the same file, with the cut in headers and the size
// and checksum in trailers; Info and Snapshot answer over both fronts.
func TestAdminOverHTTP(t *testing.T) {
	c := recoveryConfig(t.TempDir(), wal.OS, clock.NewMock(), nil)
	r := startRun(t, c)
	ctx := context.Background()
	for i := range 100 {
		if _, err := r.kv.Set(ctx, &kvstorepb.SetRequest{Key: "k" + strconv.Itoa(i), Value: "v"}); err != nil {
			t.Fatal(err)
		}
	}
	base := "http://" + r.s.HTTPAddr().String()
	resp, err := http.Get(base + "/v1/admin/backup")
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /v1/admin/backup: %d, %v", resp.StatusCode, err)
	}
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="kvstore-backup-100.snap"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	if resp.Header.Get("Kvstore-Seq") != "100" || resp.Header.Get("Kvstore-Keys") != "100" {
		t.Errorf("headers %v; want seq 100, 100 keys", resp.Header)
	}
	if resp.Trailer.Get("Kvstore-Size") != strconv.Itoa(len(data)) || len(resp.Trailer.Get("Kvstore-Checksum")) != 8 {
		t.Errorf("trailers %v for %d bytes", resp.Trailer, len(data))
	}
	if _, got := loadBackup(t, data, 100); len(got) != 100 {
		t.Fatalf("backup holds %d keys; want 100", len(got))
	}

	admin := kvstorepb.NewAdminClient(r.conn)
	snapResp, err := admin.Snapshot(ctx, &kvstorepb.SnapshotRequest{})
	if err != nil || snapResp.GetSeq() != 100 || snapResp.GetKeys() != 100 || !strings.HasSuffix(snapResp.GetPath(), fmt.Sprintf("%020d.snap", 100)) {
		t.Fatalf("Snapshot: %v, %v", snapResp, err)
	}
	// Nothing changed: the same snapshot, named.
	again, err := admin.Snapshot(ctx, &kvstorepb.SnapshotRequest{})
	if err != nil || again.GetPath() != snapResp.GetPath() || again.GetSize() != snapResp.GetSize() {
		t.Fatalf("Snapshot again: %v, %v; want %v", again, err, snapResp)
	}
	info, err := admin.Info(ctx, &kvstorepb.InfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if info.GetKeys() != 100 || info.GetSeq() != 100 || info.GetSnapshotSeq() != 100 || info.GetSnapshotBytes() != snapResp.GetSize() ||
		info.GetFsync() != "always" || info.GetDataDir() != c.DataDir || info.GetLogSegments() == 0 || info.GetMemoryBytes() == 0 ||
		info.GetVersion() == "" || info.GetMaxValueBytes() != uint64(c.MaxValueBytes) {
		t.Fatalf("Info: %v", info)
	}
	resp, err = http.Get(base + "/v1/admin/info")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"keys":"100"`) || !strings.Contains(string(body), `"fsync":"always"`) {
		t.Fatalf("GET /v1/admin/info: %d %s", resp.StatusCode, body)
	}
	resp, err = http.Post(base+"/v1/admin/snapshot", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"seq":"100"`) {
		t.Fatalf("POST /v1/admin/snapshot: %d %s", resp.StatusCode, body)
	}
}
