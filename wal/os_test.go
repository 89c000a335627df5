package wal_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kvstore/wal"
)

// The same life cycle as the in-memory tests, on the real file system
// that production uses.
func TestOSFileSystem(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "wal")
	opts := wal.Options{Dir: dir, SegmentBytes: 200}
	recs := records(1, 30)
	writeLog(t, opts, recs[:20])
	writeLog(t, opts, recs[20:])
	equalRecords(t, replayAll(t, opts, 0), recs)

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 3 {
		t.Fatalf("expected several segments, got %d files", len(entries))
	}
	last := filepath.Join(dir, entries[len(entries)-1].Name())

	// The last segment ends in preallocated zeros; a torn frame written
	// over them is cut, and kept with the zeros after it.
	data, err := os.ReadFile(last)
	if err != nil {
		t.Fatal(err)
	}
	end := 0
	for !allZero(data[end:]) {
		_, n, err := wal.DecodeRecord(data[end:])
		if err != nil {
			t.Fatalf("%s at %d: %v", last, end, err)
		}
		end += n
	}
	if end == len(data) {
		t.Fatalf("%s has no preallocated space after its %d bytes of records", last, end)
	}
	f, err := os.OpenFile(last, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	torn := wal.AppendRecord(nil, setRec(31, "k", "v"))
	f.WriteAt(torn[:10], int64(end))
	f.Close()
	equalRecords(t, replayAll(t, opts, 0), recs)
	if got, err := os.Stat(last); err != nil || got.Size() != int64(end) {
		t.Fatalf("segment not cut back to %d bytes: %v, %v", end, got, err)
	}
	if b, err := os.ReadFile(last + ".broken"); err != nil || len(b) != len(data)-end || !bytes.HasPrefix(b, torn[:10]) {
		t.Fatalf(".broken: %d bytes, %v", len(b), err)
	}

	// Corruption in the middle stops Open and Check --fix repairs it.
	first := filepath.Join(dir, entries[0].Name())
	data, err = os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	data[20] ^= 0xff
	if err := os.WriteFile(first, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var ce *wal.CorruptError
	if _, err := wal.Open(opts); !errors.As(err, &ce) || !strings.Contains(err.Error(), "--data-dir "+filepath.Dir(dir)) {
		t.Fatalf("Open = %v, want a *CorruptError naming the data dir", err)
	}
	res, err := wal.Check(wal.OS, dir, wal.CheckOptions{Fix: true, Force: true}, io.Discard)
	if err != nil || !res.Fixed {
		t.Fatalf("Check --fix = %+v, %v", res, err)
	}
	equalRecords(t, replayAll(t, opts, 0), nil)

	var out strings.Builder
	if err := wal.Dump(wal.OS, dir, &out, wal.DumpOptions{}); err != nil || out.Len() != 0 {
		t.Fatalf("Dump = %q, %v", out.String(), err)
	}
}

func TestOSCompact(t *testing.T) {
	dir := t.TempDir()
	opts := wal.Options{Dir: dir, SegmentBytes: 100}
	writeLog(t, opts, records(1, 20))
	l := mustOpen(t, opts)
	before := len(segmentFiles(t, wal.OS, dir))
	if err := l.Compact(20); err != nil {
		t.Fatal(err)
	}
	after := segmentFiles(t, wal.OS, dir)
	if before < 3 || len(after) != 1 {
		t.Fatalf("Compact left %v of %d segments", after, before)
	}
}
