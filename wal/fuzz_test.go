package wal_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"kvstore/wal"
	"kvstore/wal/faultfs"
)

// FuzzDecode checks that DecodeRecord never panics, only fails with its
// two errors, and that whatever it accepts re-encodes to the same record.
// The committed corpus is in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	valid := encode(records(1, 3)...)
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add(make([]byte, 32))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, data)
		// Random bytes almost never pass the CRC; also feed them as a
		// payload behind a correct header to reach the payload parser.
		checkDecode(t, frameWith(data))
	})
}

func checkDecode(t *testing.T, data []byte) {
	t.Helper()
	r, n, err := wal.DecodeRecord(data)
	if err != nil {
		if !errors.Is(err, wal.ErrIncomplete) && !errors.Is(err, wal.ErrBadRecord) {
			t.Fatalf("unexpected error %v", err)
		}
		if n != 0 {
			t.Fatalf("n = %d with error", n)
		}
		return
	}
	if n < 18 || n > len(data) {
		t.Fatalf("n = %d for %d bytes of input", n, len(data))
	}
	again, m, err := wal.DecodeRecord(wal.AppendRecord(nil, r))
	if err != nil || again != r || m != wal.EncodedLen(r) {
		t.Fatalf("re-encoding %+v: %+v, %d, %v", r, again, m, err)
	}
	// No prefix of a valid frame decodes.
	for k := range n {
		if _, _, err := wal.DecodeRecord(data[:k]); err == nil {
			t.Fatalf("prefix of %d bytes of a %d-byte frame decoded", k, n)
		}
	}
}

// FuzzOpen runs recovery on an arbitrary segment file: Open either
// accepts it, cutting a torn tail, or reports a *CorruptError that Check
// reports too and Check --fix repairs; and an accepted log replays, opens
// again unchanged, and passes Check.
func FuzzOpen(f *testing.F) {
	valid := encode(records(1, 4)...)
	f.Add(valid)
	f.Add(valid[:len(valid)-5])
	f.Add(append(bytes.Clone(valid), make([]byte, 40)...))
	f.Add(append(make([]byte, 20), valid...))
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := faultfs.New(1)
		fsys.WriteFile(segPath(1), data)
		opts := memOpts(fsys)
		l, err := wal.Open(opts)
		if err != nil {
			var ce *wal.CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("Open: %v", err)
			}
			res, err := wal.Check(fsys, testDir, wal.CheckOptions{}, io.Discard)
			if err != nil || len(res.Problems) == 0 {
				t.Fatalf("Open found %v, Check found %+v, %v", ce, res.Problems, err)
			}
			// Open refuses at the first problem whose repair drops
			// records; Check reports that one too.
			var forced *wal.Problem
			for i := range res.Problems {
				if res.Problems[i].NeedsForce {
					forced = &res.Problems[i]
					break
				}
			}
			if forced == nil || forced.Offset != ce.Offset {
				t.Fatalf("Open found %v, Check found %+v", ce, res.Problems)
			}
			if res, err = wal.Check(fsys, testDir, wal.CheckOptions{Fix: true}, io.Discard); err != nil || !res.Refused {
				t.Fatalf("Check --fix without --force: %+v, %v", res, err)
			}
			if res, err = wal.Check(fsys, testDir, wal.CheckOptions{Fix: true, Force: true}, io.Discard); err != nil || !res.Fixed {
				t.Fatalf("Check --fix: %+v, %v", res, err)
			}
			if l, err = wal.Open(opts); err != nil {
				t.Fatalf("Open after Check --fix: %v", err)
			}
		}
		var got []wal.Record
		if _, err := l.Replay(0, func(r wal.Record) error {
			got = append(got, r)
			return nil
		}); err != nil {
			t.Fatalf("Replay of an accepted log: %v", err)
		}
		l.Close()
		before, _ := fsys.ReadFile(segPath(1))
		equalRecords(t, replayAll(t, opts, 0), got)
		if after, _ := fsys.ReadFile(segPath(1)); !bytes.Equal(before, after) {
			t.Fatal("a second Open changed the log")
		}
		if res, err := wal.Check(fsys, testDir, wal.CheckOptions{}, io.Discard); err != nil || !res.OK() {
			t.Fatalf("Check of a recovered log: %+v, %v", res, err)
		}
	})
}
