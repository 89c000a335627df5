package wal_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"kvstore/wal"
	"kvstore/wal/faultfs"
)

// tenPerSegment writes records 1..n*10 as n segments of ten records each
// and returns them: the shape of a log after two snapshots and their
// compaction, at a small scale.
func tenPerSegment(t *testing.T, fsys *faultfs.FS, n int) []wal.Record {
	t.Helper()
	all := records(1, n*10)
	for i := 0; i < n; i++ {
		if err := fsys.WriteFile(segPath(uint64(i*10+1)), encode(all[i*10:i*10+10]...)); err != nil {
			t.Fatal(err)
		}
	}
	return all
}

// flipRecord flips a payload byte of the k-th record (0-based) of the
// segment at base, and returns that record's offset.
func flipRecord(t *testing.T, fsys *faultfs.FS, base uint64, recs []wal.Record, k int) int64 {
	t.Helper()
	data, err := fsys.ReadFile(segPath(base))
	if err != nil {
		t.Fatal(err)
	}
	off := boundaries(recs)[k]
	data[off+12] ^= 0x40
	if err := fsys.WriteFile(segPath(base), data); err != nil {
		t.Fatal(err)
	}
	return int64(off)
}

func coveredOpts(fsys *faultfs.FS, covered uint64, logs *logBuffer) wal.Options {
	opts := memOpts(fsys)
	opts.Covered = covered
	if logs != nil {
		opts.Logger = logs.logger()
	}
	return opts
}

// TestOpenSetsAsideDamageTheSnapshotCovers is issue 12's first bug: a
// flipped byte in the middle of the oldest segment, whose every record
// the loaded snapshot holds, while later segments hold records it does
// not. Start-up must go on, with a warning, setting the segment aside;
// without the snapshot it must refuse, changing nothing.
func TestOpenSetsAsideDamageTheSnapshotCovers(t *testing.T) {
	fsys := faultfs.New(1)
	all := tenPerSegment(t, fsys, 4)
	off := flipRecord(t, fsys, 1, all[:10], 5)

	before := fsys.String()
	var ce *wal.CorruptError
	if _, err := wal.Open(coveredOpts(fsys, 5, nil)); !errors.As(err, &ce) || ce.Offset != off {
		t.Fatalf("Open with seq 6 not covered = %v, want a *CorruptError at offset %d", err, off)
	}
	if fsys.String() != before {
		t.Fatal("a refused Open changed the log")
	}

	var logs logBuffer
	opts := coveredOpts(fsys, 25, &logs)
	equalRecords(t, replayAll(t, opts, 25), all[25:])
	for _, want := range []string{"damaged segment repaired", "set the segment aside", "the snapshot holds all of them", segPath(1)} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("warning %q does not say %q", logs.String(), want)
		}
	}
	if _, err := fsys.ReadFile(segPath(1) + ".broken"); err != nil {
		t.Fatalf("damaged segment not kept as .broken: %v", err)
	}
	if got := segmentFiles(t, fsys, testDir); len(got) != 3 {
		t.Fatalf("segments after the repair: %v", got)
	}
	// Every later record is still there, the partly covered segment's
	// included.
	equalRecords(t, replayAll(t, opts, 10), all[10:])
}

// TestCheckFixKeepsRecordsTheSnapshotLacks: `aof check --fix` on the same
// log used to cut at the damage and move every later segment aside. It
// must say exactly what the repair drops and drop only what the snapshot
// holds.
func TestCheckFixKeepsRecordsTheSnapshotLacks(t *testing.T) {
	fsys := faultfs.New(1)
	all := tenPerSegment(t, fsys, 4)
	off := flipRecord(t, fsys, 1, all[:10], 5)

	var out strings.Builder
	res, err := wal.Check(fsys, testDir, wal.CheckOptions{Covered: 25, Snapshot: "/data/snap/25.snap"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if res.OK() || !res.Startable() || len(res.Problems) != 1 {
		t.Fatalf("Check = %+v\n%s", res, out.String())
	}
	p := res.Problems[0]
	want := wal.Problem{File: segPath(1), Offset: off, Repair: wal.SetAside, Records: 9,
		Lost: []wal.SeqRange{{6, 6}}, Drops: []wal.SeqRange{{1, 5}, {7, 10}}}
	if p.File != want.File || p.Offset != want.Offset || p.Repair != want.Repair || p.Records != want.Records ||
		fmt.Sprint(p.Lost) != fmt.Sprint(want.Lost) || fmt.Sprint(p.Drops) != fmt.Sprint(want.Drops) ||
		p.Uncovered != 0 || p.NeedsForce {
		t.Fatalf("problem = %+v\nwant      %+v", p, want)
	}
	for _, s := range []string{"covers seq 1..25: /data/snap/25.snap", "seq 6", "drops 9 readable record(s), seq 1..5, 7..10",
		"the snapshot holds all of them", "the server makes this repair by itself"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("report does not say %q:\n%s", s, out.String())
		}
	}

	out.Reset()
	res, err = wal.Check(fsys, testDir, wal.CheckOptions{Covered: 25, Fix: true}, &out)
	if err != nil || !res.Fixed || len(res.Saved) != 1 || res.Saved[0] != segPath(1)+".broken" {
		t.Fatalf("Check --fix = %+v, %v\n%s", res, err, out.String())
	}
	equalRecords(t, replayAll(t, memOpts(fsys), 10), all[10:])
	if res, err := wal.Check(fsys, testDir, wal.CheckOptions{Covered: 25}, io.Discard); err != nil || len(res.Problems) != 0 {
		t.Fatalf("Check after the fix = %+v, %v", res, err)
	}
}

// TestOpenCutsTheCoveredHeadOfASegment: damage the snapshot covers in a
// segment that also holds records it does not: the segment is kept from
// the first valid record after the damage.
func TestOpenCutsTheCoveredHeadOfASegment(t *testing.T) {
	fsys := faultfs.New(1)
	all := tenPerSegment(t, fsys, 2)
	off := flipRecord(t, fsys, 1, all[:10], 2) // seq 3

	// Covered through 2 only, seq 3 is an acknowledged write lost: the
	// fix needs --force and says what it costs.
	res, err := wal.Check(fsys, testDir, wal.CheckOptions{Covered: 2}, io.Discard)
	if err != nil || len(res.Problems) != 1 {
		t.Fatalf("Check = %+v, %v", res, err)
	}
	if p := res.Problems[0]; p.Repair != wal.CutLog || !p.NeedsForce || p.Offset != off || p.Records != 17 || p.Uncovered != 18 {
		t.Fatalf("problem = %+v", p)
	}
	if _, err := wal.Open(coveredOpts(fsys, 2, nil)); err == nil || !strings.Contains(err.Error(), "gives up 18 acknowledged write(s) above the snapshot's seq 2") {
		t.Fatalf("Open = %v, want it refused, saying what the repair costs", err)
	}

	var logs logBuffer
	equalRecords(t, replayAll(t, coveredOpts(fsys, 5, &logs), 5), all[5:])
	if !strings.Contains(logs.String(), "keep the segment from the valid record") {
		t.Fatalf("warning: %s", logs.String())
	}
	if got := segmentFiles(t, fsys, testDir); fmt.Sprint(got) != fmt.Sprint([]string{wal.SegmentName(4), wal.SegmentName(11)}) {
		t.Fatalf("segments after the repair: %v", got)
	}
	if old, err := fsys.ReadFile(segPath(1) + ".broken"); err != nil || len(old) != len(encode(all[:10]...)) {
		t.Fatalf("old segment not kept whole: %d bytes, %v", len(old), err)
	}
	// The log takes appends after the repair.
	writeLog(t, memOpts(fsys), records(21, 3))
	equalRecords(t, replayAll(t, memOpts(fsys), 5), append(bytes2recs(all[5:]), records(21, 3)...))
}

// TestOpenCutsGarbageBeforeTheFirstRecord: bytes before the record the
// file name promises hold no seq, so dropping them loses nothing.
func TestOpenCutsGarbageBeforeTheFirstRecord(t *testing.T) {
	fsys := faultfs.New(1)
	recs := records(1, 5)
	junk := append([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}, encode(recs...)...)
	fsys.WriteFile(segPath(1), junk)
	var logs logBuffer
	equalRecords(t, replayAll(t, coveredOpts(fsys, 0, &logs), 0), recs)
	if got, _ := fsys.ReadFile(segPath(1)); !bytes.Equal(got, encode(recs...)) {
		t.Fatalf("segment after the repair: %d bytes", len(got))
	}
	if old, _ := fsys.ReadFile(segPath(1) + ".broken"); !bytes.Equal(old, junk) {
		t.Fatal("original not kept in .broken")
	}
	if !strings.Contains(logs.String(), "damaged segment repaired") {
		t.Fatalf("warning: %s", logs.String())
	}
}

// TestCheckReportsGaps is issue 12's second bug: a missing segment, or
// one cut short at a record boundary, stopped start-up while Check said
// ok and --fix changed nothing. Check must fail, name the seqs lost and
// the way out, and --fix --force must leave a log that starts.
func TestCheckReportsGaps(t *testing.T) {
	all := records(1, 30)
	tests := []struct {
		name      string
		files     map[uint64][]wal.Record
		covered   uint64
		lost      string
		drops     string
		uncovered uint64
		want      []wal.Record // replayed after the fix, after covered
	}{
		{
			name:  "missing segment",
			files: map[uint64][]wal.Record{1: all[:10], 21: all[20:]},
			lost:  "[11..20]", drops: "[21..30]", uncovered: 20, want: all[:10],
		},
		{
			name:  "segment cut at a record boundary",
			files: map[uint64][]wal.Record{1: all[:7], 11: all[10:20], 21: all[20:]},
			lost:  "[8..10]", drops: "[11..30]", uncovered: 23, want: all[:7],
		},
		{
			name:    "missing segment after the snapshot",
			files:   map[uint64][]wal.Record{11: all[10:20], 21: all[20:]},
			covered: 5,
			lost:    "[6..10]", drops: "[11..30]", uncovered: 25, want: nil,
		},
		{
			name:    "gap the snapshot covers only in part",
			files:   map[uint64][]wal.Record{1: all[:5], 21: all[20:]},
			covered: 15,
			lost:    "[16..20]", drops: "[21..30]", uncovered: 15, want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := faultfs.New(1)
			for base, recs := range tt.files {
				fsys.WriteFile(segPath(base), encode(recs...))
			}
			opts := coveredOpts(fsys, tt.covered, nil)
			l := mustOpen(t, opts)
			if _, err := l.Replay(tt.covered, func(wal.Record) error { return nil }); !errors.Is(err, wal.ErrGap) ||
				!strings.Contains(err.Error(), "kvstore-server aof check --data-dir /data") {
				t.Fatalf("Replay = %v, want ErrGap naming aof check", err)
			}
			l.Close()

			var out strings.Builder
			res, err := wal.Check(fsys, testDir, wal.CheckOptions{Covered: tt.covered}, &out)
			if err != nil {
				t.Fatal(err)
			}
			if res.OK() || res.Startable() || len(res.Problems) != 1 {
				t.Fatalf("Check = %+v\n%s", res, out.String())
			}
			p := res.Problems[0]
			if !errors.Is(p.Err, wal.ErrGap) || p.Repair != wal.CutLog || !p.NeedsForce ||
				fmt.Sprint(p.Lost) != tt.lost || fmt.Sprint(p.Drops) != tt.drops || p.Uncovered != tt.uncovered {
				t.Fatalf("problem = %+v", p)
			}
			for _, s := range []string{"missing records", "unreadable or missing: seq " + strings.Trim(tt.lost, "[]"),
				fmt.Sprintf("gives up %d acknowledged write(s) above the snapshot's seq %d", tt.uncovered, tt.covered), "--fix --force"} {
				if !strings.Contains(out.String(), s) {
					t.Errorf("report does not say %q:\n%s", s, out.String())
				}
			}

			before := fsys.String()
			res, err = wal.Check(fsys, testDir, wal.CheckOptions{Covered: tt.covered, Fix: true}, io.Discard)
			if err != nil || !res.Refused || fsys.String() != before {
				t.Fatalf("Check --fix = %+v, %v; want it refused, changing nothing", res, err)
			}
			res, err = wal.Check(fsys, testDir, wal.CheckOptions{Covered: tt.covered, Fix: true, Force: true}, io.Discard)
			if err != nil || !res.Fixed {
				t.Fatalf("Check --fix --force = %+v, %v", res, err)
			}
			equalRecords(t, replayAll(t, opts, tt.covered), tt.want[min(int(tt.covered), len(tt.want)):])
			if res, err := wal.Check(fsys, testDir, wal.CheckOptions{Covered: tt.covered}, io.Discard); err != nil || !res.OK() {
				t.Fatalf("Check after the fix = %+v, %v", res, err)
			}
		})
	}
}

// TestTornTailOrCorruption: a bad last record is cut either way, but the
// warning tells a write that did not all reach the disk from a record
// that did and was damaged afterwards (etcd makes the same distinction).
func TestTornTailOrCorruption(t *testing.T) {
	// Records long enough to cross sector boundaries.
	recs := make([]wal.Record, 4)
	for i := range recs {
		recs[i] = setRec(uint64(i+1), fmt.Sprint("k", i), strings.Repeat("v", 700))
	}
	full := encode(recs...)
	offs := boundaries(recs)
	last := offs[3]
	tests := []struct {
		name string
		data func() []byte
		torn bool
	}{
		{"cut short at the end of the file", func() []byte { return full[:len(full)-100] }, true},
		{"unwritten sector read back as zeros", func() []byte {
			b := bytes.Clone(full)
			s := (last/512 + 1) * 512 // the first sector boundary inside the last record
			clear(b[s:])
			return append(b, make([]byte, 300)...)
		}, true},
		{"flipped byte, then preallocated zeros", func() []byte {
			b := append(bytes.Clone(full), make([]byte, 300)...)
			b[last+100] ^= 0x01
			return b
		}, false},
		{"flipped byte at the end of the file", func() []byte {
			b := bytes.Clone(full)
			b[len(b)-20] ^= 0x01
			return b
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := faultfs.New(1)
			fsys.WriteFile(segPath(1), tt.data())
			var out strings.Builder
			res, err := wal.Check(fsys, testDir, wal.CheckOptions{}, &out)
			if err != nil || len(res.Problems) != 1 {
				t.Fatalf("Check = %+v, %v", res, err)
			}
			if p := res.Problems[0]; p.Repair != wal.CutTornTail || p.TornWrite != tt.torn || p.NeedsForce || p.Offset != int64(last) {
				t.Fatalf("problem = %+v, want a cut tail at %d with TornWrite %v", p, last, tt.torn)
			}
			if got := strings.Contains(out.String(), "looks like corruption"); got == tt.torn {
				t.Errorf("report:\n%s", out.String())
			}
			var logs logBuffer
			equalRecords(t, replayAll(t, coveredOpts(fsys, 0, &logs), 0), recs[:3])
			if tt.torn && !strings.Contains(logs.String(), "cut torn tail") ||
				!tt.torn && !strings.Contains(logs.String(), "looks like corruption, not a torn write") {
				t.Fatalf("warning: %s", logs.String())
			}
		})
	}
}

// TestRepairSurvivesCrash powers the file system off at every step of
// each repair Open makes by itself, and checks that the next Open still
// recovers every record the snapshot does not hold.
func TestRepairSurvivesCrash(t *testing.T) {
	type scenario struct {
		name    string
		covered uint64
		damage  func(t *testing.T, fsys *faultfs.FS, all []wal.Record)
	}
	for _, sc := range []scenario{
		{"set aside", 25, func(t *testing.T, fsys *faultfs.FS, all []wal.Record) { flipRecord(t, fsys, 1, all[:10], 5) }},
		{"cut head", 15, func(t *testing.T, fsys *faultfs.FS, all []wal.Record) { flipRecord(t, fsys, 11, all[10:20], 2) }},
		{"garbage head", 0, func(t *testing.T, fsys *faultfs.FS, all []wal.Record) {
			data, _ := fsys.ReadFile(segPath(1))
			fsys.WriteFile(segPath(1), append(bytes.Repeat([]byte{7}, 11), data...))
		}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			for n := 0; ; n++ {
				for _, mode := range []faultfs.CrashMode{faultfs.DropUnsynced, faultfs.TearUnsynced, faultfs.ZeroTail} {
					fsys := faultfs.New(int64(n))
					all := tenPerSegment(t, fsys, 4)
					sc.damage(t, fsys, all)
					fsys.CrashAfter(n)
					l, err := wal.Open(coveredOpts(fsys, sc.covered, nil))
					if err == nil {
						l.Close()
						if !fsys.PoweredOff() {
							return // every step of the repair ran
						}
					} else if !errors.Is(err, faultfs.ErrCrashed) {
						t.Fatalf("crash after %d ops: Open: %v", n, err)
					}
					rebooted := fsys.Crash(mode)
					got := replayAll(t, coveredOpts(rebooted, sc.covered, nil), sc.covered)
					if len(got) == 0 || got[0].Seq != sc.covered+1 || got[len(got)-1].Seq != 40 {
						t.Fatalf("crash after %d ops (%v): recovered %s\n%s", n, mode, summary(got), rebooted)
					}
				}
			}
		})
	}
}
