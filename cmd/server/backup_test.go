package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kvstore/snap"
	"kvstore/wal"
)

// entries is a snap.Source over a map.
type entries map[string]string

func (e entries) Len() int { return len(e) }
func (e entries) Release() {}
func (e entries) Range(fn func(key, value string, deadline int64) bool) {
	for k, v := range e {
		// One key expired long ago: check counts it, restore leaves it out.
		var deadline int64
		if k == "gone" {
			deadline = 1
		}
		if !fn(k, v, deadline) {
			return
		}
	}
}

// subcommand runs `kvstore-server ARGS...` in process.
func subcommand(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code, ok := runSubcommand(args, &out, &errOut)
	if !ok {
		t.Fatalf("%q is not a command", args)
	}
	return code, out.String(), errOut.String()
}

// backup check and restore as a user runs them: what they print, their
// exit statuses, and a restored dir that loads exactly the backup.
func TestBackupCheckAndRestoreCommands(t *testing.T) {
	dir := t.TempDir()
	bak := filepath.Join(dir, "kv.bak")
	var buf bytes.Buffer
	enc, err := snap.Encode(&buf, 42, entries{"a": "1", "b": "2", "gone": "x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bak, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := fmt.Sprintf("%08x", enc.Checksum)

	code, out, errOut := subcommand(t, "backup", "check", bak)
	for _, want := range []string{"valid backup", "seq       42", "keys      3 (1 expired by now", fmt.Sprintf("size      %d bytes", enc.Bytes), "checksum  " + sum} {
		if code != 0 || errOut != "" || !strings.Contains(out, want) {
			t.Errorf("backup check: exit %d, stderr %q, stdout lacks %q:\n%s", code, errOut, want, out)
		}
	}
	code, out, _ = subcommand(t, "backup", "check", "--json", bak)
	var got backupJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 {
		t.Fatalf("backup check --json: exit %d, %q: %v", code, out, err)
	}
	if want := (backupJSON{File: bak, Valid: true, Seq: 42, Keys: 3, Expired: 1, Size: enc.Bytes, Checksum: sum}); got != want {
		t.Errorf("backup check --json = %+v, want %+v", got, want)
	}

	damaged := filepath.Join(dir, "damaged.bak")
	if err := os.WriteFile(damaged, buf.Bytes()[:buf.Len()-5], 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = subcommand(t, "backup", "check", damaged)
	if code != 1 || !strings.Contains(errOut, "is damaged") || !strings.Contains(errOut, "offset ") {
		t.Errorf("backup check of a damaged file: exit %d, stderr %q; want 1, the offset", code, errOut)
	}
	code, out, _ = subcommand(t, "backup", "check", "--json", damaged)
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 1 || got.Valid || !strings.Contains(got.Error, "offset ") {
		t.Errorf("backup check --json of a damaged file: exit %d, %q", code, out)
	}
	data := filepath.Join(dir, "data2")
	if code, _, errOut = subcommand(t, "restore", damaged, "--data-dir", data); code != 1 || !strings.Contains(errOut, "nothing restored") {
		t.Errorf("restore of a damaged file: exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("a refused restore created %s", data)
	}

	code, out, errOut = subcommand(t, "restore", bak, "--data-dir", data)
	if code != 0 || errOut != "" || !strings.Contains(out, "seq 42, 2 keys (1 more had expired") || !strings.Contains(out, "kvstore-server --data-dir "+data) {
		t.Fatalf("restore: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	loaded := map[string]string{}
	info, err := snap.Load(wal.OS, filepath.Join(data, "snap"), 2, func(k, v string, _ int64) error {
		loaded[k] = v
		return nil
	})
	if err != nil || info.Seq != 42 || len(loaded) != 2 || loaded["a"] != "1" || loaded["b"] != "2" {
		t.Fatalf("restored dir loads seq %d, %v, %v", info.Seq, loaded, err)
	}
	code, _, errOut = subcommand(t, "restore", "--data-dir", data, bak)
	if code != 2 || !strings.Contains(errOut, "not empty") || !strings.Contains(errOut, "--force") {
		t.Errorf("restore into a restored dir: exit %d, stderr %q; want 2 and --force named", code, errOut)
	}
	code, out, _ = subcommand(t, "restore", "--force", "--data-dir", data, bak)
	if code != 0 || !strings.Contains(out, "deleted what "+data+" held before: snap/") {
		t.Errorf("restore --force: exit %d, stdout %q", code, out)
	}
}
