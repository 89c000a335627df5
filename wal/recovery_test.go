package wal_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"kvstore/wal"
	"kvstore/wal/faultfs"
)

// boundaries returns the offset of every frame in an encoding of recs,
// plus the end.
func boundaries(recs []wal.Record) []int {
	offs := []int{0}
	for _, r := range recs {
		offs = append(offs, offs[len(offs)-1]+wal.EncodedLen(r))
	}
	return offs
}

// A crash during an append can leave any prefix of the last frames, or
// that prefix followed by zeros (the preallocated space) or garbage up to
// the size the file reached. Open must keep exactly the longest valid
// prefix, save the rest to .broken unless it is all zeros, and leave a
// log that later appends continue.
func TestOpenCutsTornTail(t *testing.T) {
	recs := records(1, 12)
	full := encode(recs...)
	offs := boundaries(recs)
	garbage := make([]byte, len(full))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}

	tails := []struct {
		name string
		fill func(data []byte, cut int) []byte
	}{
		{"truncated", func(data []byte, cut int) []byte { return data[:cut] }},
		{"zero-filled", func(data []byte, cut int) []byte {
			return append(bytes.Clone(data[:cut]), make([]byte, len(data)-cut)...)
		}},
		{"garbage", func(data []byte, cut int) []byte {
			return append(bytes.Clone(data[:cut]), garbage[cut:]...)
		}},
	}
	for _, tail := range tails {
		t.Run(tail.name, func(t *testing.T) {
			// Every offset within the last four frames.
			for cut := offs[len(recs)-4]; cut <= len(full); cut++ {
				data := tail.fill(full, cut)
				// Zero fill can restore a torn frame's zero bytes
				// exactly (a deadline's high bytes); such a frame is
				// intact.
				keep := 0
				for keep < len(recs) && offs[keep+1] <= len(data) &&
					bytes.Equal(data[offs[keep]:offs[keep+1]], full[offs[keep]:offs[keep+1]]) {
					keep++
				}
				t.Run(fmt.Sprint(cut), func(t *testing.T) {
					checkTornTail(t, data, recs, keep, offs[keep])
				})
			}
		})
	}
}

func checkTornTail(t *testing.T, data []byte, recs []wal.Record, keep, validLen int) {
	t.Helper()
	if allZero(data[validLen:]) {
		// Zeros after the last record are preallocated space: kept as
		// they are, for later appends to fill.
		validLen = len(data)
	}
	fsys := faultfs.New(1)
	if err := fsys.WriteFile(segPath(1), data); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	opts := memOpts(fsys)
	opts.Logger = logs.logger()
	equalRecords(t, replayAll(t, opts, 0), recs[:keep])

	seg, err := fsys.ReadFile(segPath(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(seg) != validLen || !bytes.Equal(seg, data[:validLen]) {
		t.Fatalf("segment is %d bytes after recovery, want the %d valid ones", len(seg), validLen)
	}
	broken, err := fsys.ReadFile(segPath(1) + ".broken")
	if cutLen := len(data) - validLen; cutLen == 0 {
		if err == nil {
			t.Fatal(".broken written for an intact log")
		}
		if logs.String() != "" {
			t.Fatalf("unexpected log output: %s", logs.String())
		}
	} else {
		if err != nil {
			t.Fatalf("cut bytes not saved: %v", err)
		}
		if !bytes.Equal(broken, data[validLen:]) {
			t.Fatalf(".broken holds %d bytes, want the %d cut", len(broken), cutLen)
		}
		// A tear inside one sector, which a disk that writes sectors
		// atomically never makes, looks like corruption instead.
		if !strings.Contains(logs.String(), "cut torn tail") && !strings.Contains(logs.String(), "looks like corruption") {
			t.Fatalf("no warning logged: %q", logs.String())
		}
	}

	// The repaired log takes appends and replays as one sequence.
	more := records(uint64(keep)+1, 2)
	writeLog(t, opts, more)
	equalRecords(t, replayAll(t, opts, 0), append(bytes2recs(recs[:keep]), more...))
	if files := segmentFiles(t, fsys, testDir); len(files) != 1 {
		t.Fatalf("appends after recovery went to a new segment: %v", files)
	}
}

func bytes2recs(rs []wal.Record) []wal.Record { return append([]wal.Record(nil), rs...) }

func TestOpenCutsTornTailAgain(t *testing.T) {
	// A segment that tears twice keeps both cut tails.
	recs := records(1, 4)
	fsys := faultfs.New(1)
	full := encode(recs...)
	fsys.WriteFile(segPath(1), full[:len(full)-3])
	equalRecords(t, replayAll(t, memOpts(fsys), 0), recs[:3])
	data, _ := fsys.ReadFile(segPath(1))
	fsys.WriteFile(segPath(1), append(data, 1, 2, 3))
	equalRecords(t, replayAll(t, memOpts(fsys), 0), recs[:3])
	for _, name := range []string{".broken", ".broken.1"} {
		if _, err := fsys.ReadFile(segPath(1) + name); err != nil {
			t.Fatalf("%s missing: %v", name, err)
		}
	}
}

// corruptCase builds a log directory and says where Open must report the
// corruption and what survives Check --fix.
type corruptCase struct {
	name      string
	files     map[uint64][]byte // segment base -> content
	file      uint64            // segment the problem is in
	offset    int64
	want      []wal.Record // records left after the fix
	wantError string       // in the error
}

func corruptCases() []corruptCase {
	recs := records(1, 10)
	full := encode(recs...)
	offs := boundaries(recs)
	flip := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		b[i] ^= 0x40
		return b
	}
	zeroRange := func(b []byte, from, to int) []byte {
		b = bytes.Clone(b)
		clear(b[from:to])
		return b
	}
	hugeLen := bytes.Clone(full)
	binary.LittleEndian.PutUint32(hugeLen[offs[4]:], 1<<20) // points past the end
	wrongSeq := encode(append(bytes2recs(recs[:5]), setRec(7, "k", "v"))...)
	return []corruptCase{
		{
			name:  "flipped payload byte",
			files: map[uint64][]byte{1: flip(full, offs[2]+12)},
			file:  1, offset: int64(offs[2]), want: recs[:2], wantError: "crc mismatch",
		},
		{
			name:  "flipped crc byte",
			files: map[uint64][]byte{1: flip(full, offs[7]+5)},
			file:  1, offset: int64(offs[7]), want: recs[:7], wantError: "crc mismatch",
		},
		{
			name:  "zeroed records in the middle",
			files: map[uint64][]byte{1: zeroRange(full, offs[3], offs[5])},
			file:  1, offset: int64(offs[3]), want: recs[:3], wantError: "a valid record follows",
		},
		{
			name:  "length pointing past the end",
			files: map[uint64][]byte{1: hugeLen},
			file:  1, offset: int64(offs[4]), want: recs[:4], wantError: "incomplete",
		},
		{
			name:  "corrupt first record",
			files: map[uint64][]byte{1: flip(full, 10)},
			file:  1, offset: 0, want: nil, wantError: "crc mismatch",
		},
		{
			name:  "valid frame with a wrong seq at the tail",
			files: map[uint64][]byte{1: wrongSeq},
			file:  1, offset: int64(offs[5]), want: recs[:5], wantError: "seq 7, want 6",
		},
		{
			name:  "first record does not match the file name",
			files: map[uint64][]byte{1: encode(recs[1:]...)},
			file:  1, offset: 0, want: nil, wantError: "seq 2, want 1",
		},
		{
			name: "torn tail in a segment that is not the last",
			files: map[uint64][]byte{
				1: full[:offs[5]-3],
				6: encode(recs[5:]...),
			},
			file: 1, offset: int64(offs[4]), want: recs[:4], wantError: "not the last",
		},
		{
			name: "corruption in an earlier segment",
			files: map[uint64][]byte{
				1: flip(encode(recs[:5]...), offs[1]+9),
				6: encode(recs[5:]...),
			},
			file: 1, offset: int64(offs[1]), want: recs[:1], wantError: "crc mismatch",
		},
		{
			name: "overlapping segments",
			files: map[uint64][]byte{
				1: encode(recs[:5]...),
				4: encode(recs[3:]...),
			},
			file: 4, offset: 0, want: recs[:5], wantError: "already holds records through 5",
		},
	}
}

func writeCase(t *testing.T, c corruptCase) *faultfs.FS {
	t.Helper()
	fsys := faultfs.New(1)
	for base, data := range c.files {
		if err := fsys.WriteFile(segPath(base), data); err != nil {
			t.Fatal(err)
		}
	}
	return fsys
}

func TestOpenRefusesCorruption(t *testing.T) {
	for _, c := range corruptCases() {
		t.Run(c.name, func(t *testing.T) {
			fsys := writeCase(t, c)
			before := fsys.String()
			_, err := wal.Open(memOpts(fsys))
			var ce *wal.CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("Open error = %v, want *CorruptError", err)
			}
			if ce.File != segPath(c.file) || ce.Offset != c.offset {
				t.Fatalf("CorruptError at %s:%d, want %s:%d", ce.File, ce.Offset, segPath(c.file), c.offset)
			}
			msg := err.Error()
			for _, want := range []string{segPath(c.file), fmt.Sprintf("offset %d", c.offset),
				"kvstore-server aof check --data-dir /data", "--fix --force", c.wantError} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
			if after := fsys.String(); after != before {
				t.Fatalf("Open changed a corrupt log:\n%s\nbecame\n%s", before, after)
			}
		})
	}
}

func TestCheckFixRepairsCorruption(t *testing.T) {
	for _, c := range corruptCases() {
		t.Run(c.name, func(t *testing.T) {
			fsys := writeCase(t, c)
			var out strings.Builder
			res, err := wal.Check(fsys, testDir, wal.CheckOptions{}, &out)
			if err != nil {
				t.Fatal(err)
			}
			if res.OK() || len(res.Problems) != 1 {
				t.Fatalf("Check = %+v, want one problem\n%s", res, out.String())
			}
			p := res.Problems[0]
			if p.File != segPath(c.file) || p.Offset != c.offset || p.Repair != wal.CutLog || !p.NeedsForce {
				t.Fatalf("Check = %+v, want a cut needing --force at %s:%d\n%s", p, segPath(c.file), c.offset, out.String())
			}
			if res.Fixed || res.Startable() {
				t.Fatalf("Check = %+v: fixed without fix, or startable", res)
			}
			if !strings.Contains(out.String(), "--fix --force") {
				t.Fatalf("report does not name --fix --force:\n%s", out.String())
			}
			if _, err := wal.Open(memOpts(fsys)); err == nil {
				t.Fatal("Check without fix repaired the log")
			}

			// Without --force the fix drops nothing.
			before := fsys.String()
			out.Reset()
			res, err = wal.Check(fsys, testDir, wal.CheckOptions{Fix: true}, &out)
			if err != nil || !res.Refused || res.Fixed || res.OK() {
				t.Fatalf("Check --fix = %+v, %v\n%s", res, err, out.String())
			}
			if after := fsys.String(); after != before {
				t.Fatalf("a refused fix changed the log:\n%s\nbecame\n%s", before, after)
			}

			out.Reset()
			res, err = wal.Check(fsys, testDir, wal.CheckOptions{Fix: true, Force: true}, &out)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Fixed || !res.OK() || len(res.Saved) == 0 {
				t.Fatalf("Check --fix --force = %+v\n%s", res, out.String())
			}
			equalRecords(t, replayAll(t, memOpts(fsys), 0), c.want)
			for _, saved := range res.Saved {
				if _, err := fsys.ReadFile(saved); err != nil {
					t.Fatalf("saved file %s: %v", saved, err)
				}
			}
			// And the log is clean now.
			res, err = wal.Check(fsys, testDir, wal.CheckOptions{}, io.Discard)
			if err != nil || !res.OK() || len(res.Problems) != 0 {
				t.Fatalf("second Check = %+v, %v", res, err)
			}
		})
	}
}

func TestReplay(t *testing.T) {
	recs := records(1, 10)
	fsys := faultfs.New(1)
	fsys.WriteFile(segPath(1), encode(recs[:5]...))
	fsys.WriteFile(segPath(6), encode(recs[5:]...))
	opts := memOpts(fsys)
	tests := []struct {
		after    uint64
		want     []wal.Record
		wantLast uint64
	}{
		{0, recs, 10},
		{3, recs[3:], 10},
		{5, recs[5:], 10},
		{9, recs[9:], 10},
		{10, nil, 10},
		{25, nil, 25}, // a snapshot newer than the log
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.after), func(t *testing.T) {
			l := mustOpen(t, opts)
			var got []wal.Record
			last, err := l.Replay(tt.after, func(r wal.Record) error {
				got = append(got, r)
				return nil
			})
			if err != nil || last != tt.wantLast {
				t.Fatalf("Replay(%d) = %d, %v; want %d", tt.after, last, err, tt.wantLast)
			}
			equalRecords(t, got, tt.want)
		})
	}
}

func TestReplayStopsOnCallbackError(t *testing.T) {
	fsys := faultfs.New(1)
	fsys.WriteFile(segPath(1), encode(records(1, 5)...))
	l := mustOpen(t, memOpts(fsys))
	stop := errors.New("stop")
	last, err := l.Replay(0, func(r wal.Record) error {
		if r.Seq == 3 {
			return stop
		}
		return nil
	})
	if err != stop || last != 2 {
		t.Fatalf("Replay = %d, %v; want 2, stop", last, err)
	}
}

func TestReplayDetectsGaps(t *testing.T) {
	recs := records(1, 12)
	fsys := faultfs.New(1)
	fsys.WriteFile(segPath(1), encode(recs[:5]...)) // 1..5
	fsys.WriteFile(segPath(8), encode(recs[7:]...)) // 8..12
	opts := memOpts(fsys)
	tests := []struct {
		after    uint64
		wantErr  string // empty: no error
		wantLast uint64
	}{
		{0, "holds seq 8, want 6", 5},
		{4, "holds seq 8, want 6", 5},
		{5, "holds seq 8, want 6", 5},
		{6, "holds seq 8, want 7", 6},
		{7, "", 12}, // a snapshot at 7 covers the gap
		{12, "", 12},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.after), func(t *testing.T) {
			l := mustOpen(t, opts)
			last, err := l.Replay(tt.after, func(wal.Record) error { return nil })
			if tt.wantErr == "" {
				if err != nil || last != tt.wantLast {
					t.Fatalf("Replay(%d) = %d, %v; want %d, nil", tt.after, last, err, tt.wantLast)
				}
				return
			}
			if !errors.Is(err, wal.ErrGap) || !strings.Contains(err.Error(), tt.wantErr) ||
				!strings.Contains(err.Error(), segPath(8)) {
				t.Fatalf("Replay(%d) error = %v; want ErrGap naming %s and %q", tt.after, err, segPath(8), tt.wantErr)
			}
			if last != tt.wantLast {
				t.Fatalf("Replay(%d) last = %d, want %d", tt.after, last, tt.wantLast)
			}
		})
	}
}

// After a crash under everysec the newest snapshot can be ahead of the
// log: the writer must start a new segment at the snapshot's next seq.
func TestStartAfterSnapshotAheadOfLog(t *testing.T) {
	fsys := faultfs.New(1)
	opts := memOpts(fsys)
	writeLog(t, opts, records(1, 5))
	writeLog(t, opts, records(11, 3)) // Start(11): a snapshot covers 1..10
	if got, want := segmentFiles(t, fsys, testDir), []string{wal.SegmentName(1), wal.SegmentName(11)}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("segments %v, want %v", got, want)
	}
	equalRecords(t, replayAll(t, opts, 10), records(11, 3))

	l := mustOpen(t, opts)
	if _, err := l.Replay(0, func(wal.Record) error { return nil }); !errors.Is(err, wal.ErrGap) {
		t.Fatalf("Replay(0) = %v, want ErrGap", err)
	}
}

func TestStartBehindLogFails(t *testing.T) {
	for _, next := range []uint64{0, 1, 5} {
		t.Run(fmt.Sprint(next), func(t *testing.T) {
			fsys := faultfs.New(1)
			opts := memOpts(fsys)
			writeLog(t, opts, records(1, 5))
			l := mustOpen(t, opts)
			l.Start(next)
			if err := l.Err(); !errors.Is(err, wal.ErrFailed) {
				t.Fatalf("Err() = %v, want ErrFailed", err)
			}
			w := newWaiter()
			l.Submit(wal.Batch{Records: []wal.Record{setRec(next, "k", "v")}, Waiters: []wal.Waiter{w}})
			if !w.released() || !errors.Is(w.err, wal.ErrFailed) {
				t.Fatal("Submit to a failed log did not fail at once")
			}
			l.Close()
			equalRecords(t, replayAll(t, opts, 0), records(1, 5))
		})
	}
}

// A crash right after creating a segment leaves it empty; if the next
// record does not match its name, Start replaces it.
func TestEmptyLastSegment(t *testing.T) {
	for _, next := range []uint64{6, 9} {
		t.Run(fmt.Sprint(next), func(t *testing.T) {
			fsys := faultfs.New(1)
			fsys.WriteFile(segPath(1), encode(records(1, 5)...))
			fsys.WriteFile(segPath(6), nil)
			opts := memOpts(fsys)
			writeLog(t, opts, records(next, 2))
			want := []string{wal.SegmentName(1), wal.SegmentName(next)}
			if got := segmentFiles(t, fsys, testDir); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("segments %v, want %v", got, want)
			}
			equalRecords(t, replayAll(t, opts, next-1), records(next, 2))
		})
	}
}

func TestOpenIgnoresOtherFiles(t *testing.T) {
	fsys := faultfs.New(1)
	fsys.WriteFile(segPath(1), encode(records(1, 3)...))
	for _, name := range []string{"00000000000000000001.wal.broken", "notes.txt", "1.wal", "00000000000000000000.wal", "0000000000000000000x.wal"} {
		fsys.WriteFile(testDir+"/"+name, []byte("junk"))
	}
	equalRecords(t, replayAll(t, memOpts(fsys), 0), records(1, 3))
}

// Frames larger than the reader's 1 MiB window, around small ones.
func TestLargeRecords(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 3<<20/16)
	recs := []wal.Record{
		setRec(1, "small", "v"),
		setRec(2, "big", big),
		setRec(3, "small", "w"),
		setRec(4, "big2", big[:1<<20+5]),
	}
	fsys := faultfs.New(1)
	opts := memOpts(fsys)
	writeLog(t, opts, recs)
	equalRecords(t, replayAll(t, opts, 0), recs)

	// Torn inside the last big frame: the three before it survive.
	data, _ := fsys.ReadFile(segPath(1))
	fsys.WriteFile(segPath(1), data[:len(data)-1000])
	equalRecords(t, replayAll(t, opts, 0), recs[:3])
}
