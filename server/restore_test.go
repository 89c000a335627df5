package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	kvstorepb "kvstore/proto"
	"kvstore/snap"
	"kvstore/wal"
)

// takeBackup saves a backup of r's data to a file, over HTTP as
// `curl -o` would, and returns its path.
func takeBackup(t *testing.T, r *testRun) string {
	t.Helper()
	resp, err := http.Get("http://" + r.s.HTTPAddr().String() + "/v1/admin/backup")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /v1/admin/backup: %d, %v", resp.StatusCode, err)
	}
	path := filepath.Join(t.TempDir(), "kv.bak")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// listing is every path under dir with its size, to tell that a refused
// restore changed nothing.
func listing(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %v %d", strings.TrimPrefix(p, dir), fi.Mode(), fi.Size()))
		return nil
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}

// noRestoreLeftovers fails if a temporary restore dir is left in parent.
func noRestoreLeftovers(t *testing.T, parent string) {
	t.Helper()
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".restore-") {
			t.Errorf("left behind: %s", filepath.Join(parent, e.Name()))
		}
	}
}

// A restored data dir serves exactly the backup, at the backup's
// sequence number, without the keys whose TTL passed since, and logs new
// writes after it so that they survive a restart that replays the log.
func TestRestoreServesTheBackup(t *testing.T) {
	mock := newMock()
	r := startRun(t, recoveryConfig(t.TempDir(), wal.OS, mock, nil))
	model := map[string]string{}
	r.writeKeys(model, "k", 40)
	ctx := context.Background()
	for key, ttl := range map[string]int64{"short": 10, "long": 1000} {
		if _, err := r.kv.Set(ctx, &kvstorepb.SetRequest{Key: key, Value: key, TtlSeconds: ttl}); err != nil {
			t.Fatal(err)
		}
	}
	model["long"] = "long"
	model["short"] = "" // its TTL passes before the restore
	r.del(model, "k3")
	const seq = 40 + 2 + 1
	bak := takeBackup(t, r)
	r.set(map[string]string{}, "after", "the cut") // not in the backup
	r.mustStop()

	mock.Add(20 * time.Second)
	st, err := CheckBackup(bak, mock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st.Seq != seq || st.Count != 41 || st.Expired != 1 || st.Checksum == 0 {
		t.Fatalf("CheckBackup = %+v; want seq %d, 41 keys, 1 expired", st, seq)
	}
	data := filepath.Join(t.TempDir(), "data2")
	res, err := Restore(bak, data, RestoreOptions{Now: mock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Backup.Seq != seq || res.Path != filepath.Join(data, "snap", snap.FileName(seq)) || len(res.Replaced) != 0 {
		t.Fatalf("Restore = %+v", res)
	}
	noRestoreLeftovers(t, filepath.Dir(data))

	logs := &logSink{}
	c := recoveryConfig(data, wal.OS, mock, logs)
	c.NoFinalSnapshot = true
	r = startRun(t, c)
	if snapSeq, gotSeq, keys := logs.recovered(t); snapSeq != seq || gotSeq != seq || keys != 40 {
		t.Fatalf("recovered snapshot_seq %d, seq %d, %d keys; want %d, %d, 40", snapSeq, gotSeq, keys, seq, seq)
	}
	model["after"] = ""
	r.check(model)
	// New writes go to the log after the backup's seq, and a restart
	// without a final snapshot replays them on top of it.
	r.set(model, "after", "the restore")
	r.set(model, "k1", "changed")
	r.del(model, "k2")
	r.mustStop()
	logs = &logSink{}
	c.Logger = recoveryConfig(data, wal.OS, mock, logs).Logger
	r = startRun(t, c)
	if snapSeq, gotSeq, _ := logs.recovered(t); snapSeq != seq || gotSeq != seq+3 {
		t.Fatalf("recovered snapshot_seq %d, seq %d; want %d, %d", snapSeq, gotSeq, seq, seq+3)
	}
	r.check(model)
}

// smallBackup is the bytes of a backup of three keys.
func smallBackup(t *testing.T) []byte {
	t.Helper()
	r := startRun(t, recoveryConfig(t.TempDir(), wal.OS, newMock(), nil))
	r.writeKeys(map[string]string{}, "k", 3)
	data, err := os.ReadFile(takeBackup(t, r))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// A damaged backup, cut at any offset or with any bit flipped, is refused
// by backup check and by restore with a message naming the offset, and
// restore leaves the data dir as it was: not created when it was
// missing, untouched with --force when it held data.
func TestRestoreRefusesDamagedBackups(t *testing.T) {
	good := smallBackup(t)
	existing := t.TempDir()
	r := startRun(t, recoveryConfig(existing, wal.OS, newMock(), nil))
	r.writeKeys(map[string]string{}, "old", 5)
	r.mustStop()
	before := listing(t, existing)

	dir := t.TempDir()
	bak := filepath.Join(dir, "kv.bak")
	try := func(what string, data []byte) {
		t.Helper()
		if err := os.WriteFile(bak, data, 0o600); err != nil {
			t.Fatal(err)
		}
		// A flipped version is ErrVersion (a newer build's file, as far
		// as this one can tell), all other damage ErrCorrupt.
		refused := func(err error) bool {
			return (errors.Is(err, snap.ErrCorrupt) || errors.Is(err, snap.ErrVersion)) && strings.Contains(err.Error(), "offset ")
		}
		if _, err := CheckBackup(bak, time.Time{}); !refused(err) {
			t.Fatalf("%s: CheckBackup: %v; want damage at an offset", what, err)
		}
		missing := filepath.Join(dir, "data")
		if _, err := Restore(bak, missing, RestoreOptions{}); !refused(err) {
			t.Fatalf("%s: Restore: %v", what, err)
		}
		if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: a refused restore left %s: %v", what, missing, err)
		}
		if _, err := Restore(bak, existing, RestoreOptions{Force: true}); !refused(err) {
			t.Fatalf("%s: Restore --force: %v", what, err)
		}
	}
	for n := range len(good) {
		try(fmt.Sprintf("cut at %d", n), good[:n])
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		bad := slices.Clone(good)
		bit := rng.IntN(len(bad) * 8)
		bad[bit/8] ^= 1 << (bit % 8)
		try(fmt.Sprintf("bit %d flipped", bit), bad)
	}
	if after := listing(t, existing); !slices.Equal(before, after) {
		t.Fatalf("refused restores changed the data dir:\nbefore %q\nafter  %q", before, after)
	}
	noRestoreLeftovers(t, dir)
	noRestoreLeftovers(t, filepath.Dir(existing))
}

// Restore refuses a running server's data dir (its lock), and a data dir
// that holds data unless forced; forced, the dir holds the backup alone.
func TestRestoreRefusesLiveAndNonEmptyDirs(t *testing.T) {
	bakServer := startRun(t, recoveryConfig(t.TempDir(), wal.OS, newMock(), nil))
	want := map[string]string{}
	bakServer.writeKeys(want, "new", 4)
	bak := takeBackup(t, bakServer)
	bakServer.mustStop()

	data := t.TempDir()
	mock := newMock()
	r := startRun(t, recoveryConfig(data, wal.OS, mock, nil))
	old := map[string]string{}
	r.writeKeys(old, "old", 5)
	if _, err := Restore(bak, data, RestoreOptions{Force: true}); err == nil || !strings.Contains(err.Error(), "in use by another kvstore-server") {
		t.Fatalf("Restore into a running server's dir: %v", err)
	}
	r.mustStop()
	before := listing(t, data)
	_, err := Restore(bak, data, RestoreOptions{})
	if !errors.Is(err, ErrDataDirNotEmpty) || !strings.Contains(err.Error(), "snap/, wal/") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("Restore into a dir with data: %v", err)
	}
	if after := listing(t, data); !slices.Equal(before, after) {
		t.Fatalf("a refused restore changed the data dir:\nbefore %q\nafter  %q", before, after)
	}
	res, err := Restore(bak, data, RestoreOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Replaced, []string{"snap/", "wal/"}) {
		t.Errorf("Replaced %q", res.Replaced)
	}
	noRestoreLeftovers(t, filepath.Dir(data))
	r = startRun(t, recoveryConfig(data, wal.OS, mock, nil))
	for k := range old {
		want[k] = ""
	}
	r.check(want)
}
