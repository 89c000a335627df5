package wal_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"kvstore/wal"
	"kvstore/wal/faultfs"
)

func TestDump(t *testing.T) {
	deadline := time.Date(2026, 1, 2, 15, 4, 5, 600, time.UTC).UnixNano()
	recs := []wal.Record{
		{Seq: 1, Kind: wal.KindSet, Key: "k", Value: "v"},
		{Seq: 2, Kind: wal.KindSet, Key: "session", Value: "", Deadline: deadline},
		{Seq: 3, Kind: wal.KindDelete, Key: "k"},
		{Seq: 4, Kind: wal.KindSet, Key: "quote\"<tab>\t\x01", Value: "ключ"},
		{Seq: 5, Kind: wal.KindSet, Key: "\xff\xfe", Value: "\x00bin\x80"},
	}
	fsys := faultfs.New(1)
	fsys.WriteFile(segPath(1), encode(recs[:3]...))
	fsys.WriteFile(segPath(4), encode(recs[3:]...))
	var out strings.Builder
	if err := wal.Dump(fsys, testDir, &out, wal.DumpOptions{}); err != nil {
		t.Fatal(err)
	}
	want := `{"seq":1,"op":"set","key":"k","value":"v"}
{"seq":2,"op":"set","key":"session","value":"","deadline":"2026-01-02T15:04:05.0000006Z"}
{"seq":3,"op":"del","key":"k"}
{"seq":4,"op":"set","key":"quote\"<tab>\t\u0001","value":"ключ"}
{"seq":5,"op":"set","key_base64":"//4=","value_base64":"AGJpboA="}
`
	if out.String() != want {
		t.Fatalf("Dump wrote\n%s\nwant\n%s", out.String(), want)
	}
	// Every line is valid JSON that round-trips the strings.
	for i, line := range strings.Split(strings.TrimSpace(out.String()), "\n")[:4] {
		var v struct{ Key, Value string }
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if v.Key != recs[i].Key || v.Value != recs[i].Value {
			t.Fatalf("line %d decodes to %+v", i, v)
		}
	}
}

func TestDumpStopsAtBadFrame(t *testing.T) {
	fsys := faultfs.New(1)
	data := encode(records(1, 3)...)
	fsys.WriteFile(segPath(1), data[:len(data)-2])
	var out strings.Builder
	err := wal.Dump(fsys, testDir, &out, wal.DumpOptions{})
	var ce *wal.CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, wal.ErrIncomplete) {
		t.Fatalf("Dump = %v, want a *CorruptError for the torn tail", err)
	}
	if n := strings.Count(out.String(), "\n"); n != 2 {
		t.Fatalf("Dump printed %d records before the bad frame, want 2", n)
	}
	// Dump only reads.
	if got, _ := fsys.ReadFile(segPath(1)); len(got) != len(data)-2 {
		t.Fatal("Dump changed the log")
	}
}

func TestCheck(t *testing.T) {
	t.Run("gap the snapshot covers", func(t *testing.T) {
		fsys := faultfs.New(1)
		fsys.WriteFile(segPath(1), encode(records(1, 5)...))
		fsys.WriteFile(segPath(11), encode(records(11, 5)...))
		var out strings.Builder
		res, err := wal.Check(fsys, testDir, wal.CheckOptions{Covered: 10, Fix: true}, &out)
		if err != nil {
			t.Fatal(err)
		}
		if !res.OK() || res.Fixed || res.Segments != 2 || res.Records != 10 || res.FirstSeq != 1 || res.LastSeq != 15 {
			t.Fatalf("Check = %+v\n%s", res, out.String())
		}
		if len(res.Gaps) != 1 || res.Gaps[0] != (wal.Gap{File: segPath(11), Want: 6, Got: 11}) {
			t.Fatalf("Gaps = %+v", res.Gaps)
		}
		if !strings.Contains(out.String(), "seqs 6..10 are not in the log; the snapshot covers them") {
			t.Fatalf("report does not mention the gap:\n%s", out.String())
		}
	})
	t.Run("preallocated tail", func(t *testing.T) {
		fsys := faultfs.New(1)
		data := encode(records(1, 5)...)
		fsys.WriteFile(segPath(1), append(data, make([]byte, 100)...))
		var out strings.Builder
		res, err := wal.Check(fsys, testDir, wal.CheckOptions{Fix: true}, &out)
		if err != nil {
			t.Fatal(err)
		}
		if !res.OK() || res.Fixed || res.Records != 5 {
			t.Fatalf("Check = %+v\n%s", res, out.String())
		}
		if !strings.Contains(out.String(), "100 preallocated") {
			t.Fatalf("report does not mention the zeros:\n%s", out.String())
		}
	})
	t.Run("torn tail", func(t *testing.T) {
		fsys := faultfs.New(1)
		data := encode(records(1, 5)...)
		torn := encode(records(6, 1)...)[:9] // header and a byte, then the end of the file
		fsys.WriteFile(segPath(1), append(data, torn...))
		var out strings.Builder
		res, err := wal.Check(fsys, testDir, wal.CheckOptions{}, &out)
		if err != nil {
			t.Fatal(err)
		}
		if res.OK() || len(res.Problems) != 1 || res.Records != 5 || !res.Startable() {
			t.Fatalf("Check = %+v\n%s", res, out.String())
		}
		if p := res.Problems[0]; p.Repair != wal.CutTornTail || !p.TornWrite || p.NeedsForce || p.Offset != int64(len(data)) {
			t.Fatalf("problem = %+v", p)
		}
		res, err = wal.Check(fsys, testDir, wal.CheckOptions{Fix: true}, &out)
		if err != nil || !res.Fixed || len(res.Saved) != 1 {
			t.Fatalf("Check --fix = %+v, %v", res, err)
		}
		if got, _ := fsys.ReadFile(segPath(1)); len(got) != len(data) {
			t.Fatalf("segment is %d bytes after the fix, want %d", len(got), len(data))
		}
	})
	t.Run("empty directory", func(t *testing.T) {
		fsys := faultfs.New(1)
		fsys.MkdirAll(testDir, 0o755)
		res, err := wal.Check(fsys, testDir, wal.CheckOptions{}, &strings.Builder{})
		if err != nil || !res.OK() || res.Segments != 0 {
			t.Fatalf("Check = %+v, %v", res, err)
		}
	})
	t.Run("missing directory", func(t *testing.T) {
		if _, err := wal.Check(faultfs.New(1), testDir, wal.CheckOptions{}, &strings.Builder{}); err == nil {
			t.Fatal("Check of a missing directory succeeded")
		}
	})
}

// TestDumpTruncatesLongValues: issue 13. aof dump printed a 1 MiB value
// as one 1 MiB line. With MaxValueBytes a longer value is cut, on a
// character boundary, and says how long it was; the whole of it is still
// there with MaxValueBytes 0.
func TestDumpTruncatesLongValues(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	recs := []wal.Record{
		{Seq: 1, Kind: wal.KindSet, Key: "big", Value: big},
		{Seq: 2, Kind: wal.KindSet, Key: "short", Value: "12345678"},
		{Seq: 3, Kind: wal.KindSet, Key: "exact", Value: "123456789"},
		{Seq: 4, Kind: wal.KindSet, Key: "utf8", Value: "ключключ"}, // 2 bytes a letter: cut at 9 falls inside one
		{Seq: 5, Kind: wal.KindSet, Key: "bin", Value: "\xff\x00\x01\x02\x03\x04\x05\x06\x07\x08"},
		{Seq: 6, Kind: wal.KindSet, Key: strings.Repeat("k", 20), Value: "quote\"\"\"\"\"\""},
	}
	fsys := faultfs.New(1)
	fsys.WriteFile(segPath(1), encode(recs...))
	var out strings.Builder
	if err := wal.Dump(fsys, testDir, &out, wal.DumpOptions{MaxValueBytes: 9}); err != nil {
		t.Fatal(err)
	}
	want := `{"seq":1,"op":"set","key":"big","value":"xxxxxxxxx… (1048576 bytes)","truncated":true}
{"seq":2,"op":"set","key":"short","value":"12345678"}
{"seq":3,"op":"set","key":"exact","value":"123456789"}
{"seq":4,"op":"set","key":"utf8","value":"ключ… (16 bytes)","truncated":true}
{"seq":5,"op":"set","key":"bin","value_base64":"/wABAgMEBQYH… (10 bytes)","truncated":true}
{"seq":6,"op":"set","key":"kkkkkkkkkkkkkkkkkkkk","value":"quote\"\"\"\"… (11 bytes)","truncated":true}
`
	if out.String() != want {
		t.Fatalf("Dump wrote\n%s\nwant\n%s", out.String(), want)
	}
	for i, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("line %d is not JSON: %s", i+1, line)
		}
	}
	out.Reset()
	if err := wal.Dump(fsys, testDir, &out, wal.DumpOptions{}); err != nil {
		t.Fatal(err)
	}
	var first struct{ Value string }
	line, _, _ := strings.Cut(out.String(), "\n")
	if err := json.Unmarshal([]byte(line), &first); err != nil || first.Value != big {
		t.Fatalf("whole dump: %v, value of %d bytes", err, len(first.Value))
	}
}
