package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/benbjohnson/clock"

	kvstorepb "kvstore/proto"
	"kvstore/wal"
)

// twoSnapshotDataDir is issue 12's set-up at a smaller scale: 1 KiB
// segments, no periodic snapshots; n keys and a shutdown (snapshot at n),
// n more and a shutdown (snapshot at 2n, the log compacted through n), n
// more and a shutdown without a snapshot. It returns the data dir and its
// segments, oldest first, after checking that the oldest one holds only
// seqs the snapshot at 2n covers and that later ones hold seqs above it.
func twoSnapshotDataDir(t *testing.T, n int) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	args := []string{"--wal-segment-bytes", "1KiB", "--snapshot-interval", "0s", "--fsync", "no"}
	for phase := range 3 {
		extra := args
		if phase == 2 {
			extra = append(extra, "--no-final-snapshot")
		}
		m, stop := runMain(t, dir, clock.NewMock(), extra...)
		c := dial(t, m.Addr().String())
		for i := phase * n; i < (phase+1)*n; i++ {
			if _, err := c.Set(context.Background(), &kvstorepb.SetRequest{Key: fmt.Sprintf("key-%05d", i), Value: "value"}); err != nil {
				t.Fatal(err)
			}
		}
		stop()
	}
	segs, err := filepath.Glob(filepath.Join(wal.Dir(dir), "*.wal"))
	if err != nil || len(segs) < 4 {
		t.Fatalf("segments %v, %v", segs, err)
	}
	var first, second uint64
	fmt.Sscanf(filepath.Base(segs[0]), "%020d.wal", &first)
	fmt.Sscanf(filepath.Base(segs[1]), "%020d.wal", &second)
	if first > uint64(n) || second-1 > uint64(2*n) {
		t.Fatalf("log layout %v does not have the issue's shape", segs)
	}
	return dir, segs
}

// checkAllKeys starts a server on dir and checks that it serves keys
// 0..total-1, except those from missingFrom on (when not negative).
func checkAllKeys(t *testing.T, dir string, total, missingFrom int) {
	t.Helper()
	m, stop := runMain(t, dir, clock.NewMock())
	defer stop()
	c := dial(t, m.Addr().String())
	served := 0
	for i := range total {
		resp, err := c.Get(context.Background(), &kvstorepb.GetRequest{Key: fmt.Sprintf("key-%05d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetFound() {
			served++
		}
		if want := missingFrom < 0 || i < missingFrom; resp.GetFound() != want {
			t.Fatalf("key-%05d found %v, want %v (%d served so far)", i, resp.GetFound(), want, served)
		}
	}
}

// TestDamageTheSnapshotCoversDoesNotLoseWrites: a flipped byte in the
// middle of the oldest segment, which the newest snapshot covers. Start-up
// used to refuse and name `aof check --fix`, which cut the log there and
// set every later segment aside: the next start served 2n of 3n
// acknowledged keys without a warning. Now start-up repairs it by itself,
// and `aof check --fix` drops only what the snapshot holds.
func TestDamageTheSnapshotCoversDoesNotLoseWrites(t *testing.T) {
	const n = 210 // not a multiple of the records per segment
	dir, segs := twoSnapshotDataDir(t, n)
	data, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	if err := os.WriteFile(segs[0], data, 0o644); err != nil {
		t.Fatal(err)
	}
	fixed := t.TempDir()
	if err := os.CopyFS(fixed, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}

	t.Run("aof check --fix", func(t *testing.T) {
		var out, errOut strings.Builder
		code := runAOF([]string{"check", "--data-dir", fixed}, &out, &errOut)
		for _, want := range []string{"set the segment aside", "the snapshot holds all of them", "the server makes this repair by itself"} {
			if code != 1 || !strings.Contains(out.String(), want) {
				t.Fatalf("aof check exit %d, want 1 and %q:\n%s%s", code, want, out.String(), errOut.String())
			}
		}
		out.Reset()
		if code := runAOF([]string{"check", "--fix", "--data-dir", fixed}, &out, &errOut); code != 0 {
			t.Fatalf("aof check --fix exit %d:\n%s%s", code, out.String(), errOut.String())
		}
		checkAllKeys(t, fixed, 3*n, -1)
	})
	t.Run("start-up", func(t *testing.T) {
		checkAllKeys(t, dir, 3*n, -1)
	})
}

// TestMissingSegmentHasAWayOut: a segment after the newest snapshot is
// missing. Start-up stops on the gap; `aof check` used to say ok and
// --fix changed nothing. Now check fails and names the seqs lost and
// --fix --force, which starts the server from what remains.
func TestMissingSegmentHasAWayOut(t *testing.T) {
	const n = 210
	dir, segs := twoSnapshotDataDir(t, n)
	gone := segs[len(segs)-2]
	var lostFrom uint64
	fmt.Sscanf(filepath.Base(gone), "%020d.wal", &lostFrom)
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}

	_, err := runMainFailing(t, dir)
	if err == nil || !strings.Contains(err.Error(), "gap in sequence numbers") ||
		!strings.Contains(err.Error(), "kvstore-server aof check --data-dir "+dir) {
		t.Fatalf("Run = %v; want the gap and the command to look at it", err)
	}

	var out, errOut strings.Builder
	code := runAOF([]string{"check", "--data-dir", dir}, &out, &errOut)
	for _, want := range []string{"missing records", fmt.Sprintf("seq %d..", lostFrom), "acknowledged write(s) above the snapshot's seq 420", "--fix --force"} {
		if code != 1 || !strings.Contains(out.String(), want) {
			t.Fatalf("aof check exit %d, want 1 and %q:\n%s%s", code, want, out.String(), errOut.String())
		}
	}
	out.Reset()
	if code := runAOF([]string{"check", "--fix", "--data-dir", dir}, &out, &errOut); code != 1 || !strings.Contains(out.String(), "refused") {
		t.Fatalf("aof check --fix exit %d:\n%s%s", code, out.String(), errOut.String())
	}
	if _, err := runMainFailing(t, dir); err == nil {
		t.Fatal("a refused fix changed the log")
	}
	if code := runAOF([]string{"check", "--fix", "--force", "--data-dir", dir}, &out, &errOut); code != 0 {
		t.Fatalf("aof check --fix --force exit %d:\n%s%s", code, out.String(), errOut.String())
	}
	// Seq s wrote key s-1.
	checkAllKeys(t, dir, 3*n, int(lostFrom)-1)
}
