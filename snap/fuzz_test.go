package snap

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpora in testdata/fuzz")

// fuzzPath is where the fuzzed file sits: a snapshot name, so that the
// sequence number check takes part.
var fuzzPath = "d/" + fileName(2)

// seed is one input of the committed seed corpora.
type seed struct {
	name  string
	data  []byte
	fix   bool // fuzz targets rewrite the checksums to match first
	valid bool // Verify accepts it (after fixing)
}

// fuzzSeeds are the seed corpora of FuzzVerify and FuzzLoad: files at
// sequence number 2, valid and damaged in each way the decoder checks.
func fuzzSeeds(tb testing.TB) []seed {
	small := sliceSource{
		{key: "alpha", value: "one"},
		{key: "beta", value: "two", deadline: 1 << 50},
		{key: "", value: strings.Repeat("z", 20), deadline: 5},
	}
	valid := encodeBytes(tb, 2, small, blockSize)
	blocks := encodeBytes(tb, 2, small, 5)
	flipped := slices.Clone(valid)
	flipped[headerSize+frameHeaderSize+3] ^= 0x40
	newer := slices.Clone(valid)
	newer[8] = formatVersion + 1
	zero := slices.Clone(valid)
	zero[8] = 0
	return []seed{
		{name: "valid-empty", data: encodeBytes(tb, 2, sliceSource(nil), blockSize), valid: true},
		{name: "valid-small", data: valid, valid: true},
		{name: "valid-small-blocks", data: blocks, valid: true},
		{name: "valid-fixed", data: valid, fix: true, valid: true},
		{name: "truncated", data: blocks[:len(blocks)-5]},
		{name: "truncated-mid-body", data: blocks[:len(blocks)/2]},
		{name: "flipped", data: flipped},
		{name: "flipped-fixed", data: flipped, fix: true, valid: true},
		{name: "huge-count", data: craft(2, 1<<62, append(uvarint(1), 'k', 0, 0), blockSize)},
		{name: "huge-key-length", data: craft(2, 1, append(uvarint(1<<40), 'k'), blockSize)},
		{name: "value-over-max", data: craft(2, 1, slices.Concat(uvarint(0), uvarint(MaxValueSize+1), []byte("v")), blockSize)},
		{name: "block-over-max", data: slices.Concat(valid[:headerSize], u32(blockSize+1), valid[headerSize+4:])},
		{name: "wrong-seq", data: encodeBytes(tb, 3, small, blockSize)},
		{name: "newer-version", data: newer, fix: true},
		{name: "version-zero", data: zero, fix: true},
		{name: "garbage", data: []byte("\x89KVSNAP\nthis is not a snapshot")},
	}
}

func corpusFile(s seed) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%s)\nbool(%t)\n", strconv.Quote(string(s.data)), s.fix)
}

// TestSeedCorpus keeps the committed corpora in step with the format: run
// with -update-corpus after changing it.
func TestSeedCorpus(t *testing.T) {
	for _, s := range fuzzSeeds(t) {
		data := s.data
		if s.fix {
			data = fixChecksums(data)
		}
		_, err := Verify(memFS{fuzzPath: data}, fuzzPath)
		if (err == nil) != s.valid {
			t.Errorf("seed %s: Verify = %v, want valid %v", s.name, err, s.valid)
		}
		for _, target := range []string{"FuzzVerify", "FuzzLoad"} {
			path := filepath.Join("testdata", "fuzz", target, s.name)
			want := corpusFile(s)
			if *updateCorpus {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s is missing or stale (%v): run go test -run TestSeedCorpus -update-corpus ./snap/", path, err)
			}
		}
	}
}

func FuzzVerify(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, fix bool) {
		if fix {
			data = fixChecksums(data)
		}
		fsys := memFS{fuzzPath: data}
		info, err := Verify(fsys, fuzzPath)
		if err != nil {
			// memFS has no I/O errors: anything else is misclassified.
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				t.Fatalf("Verify error %v is neither ErrCorrupt nor ErrVersion", err)
			}
			return
		}
		if info.Seq != 2 || info.Bytes != int64(len(data)) {
			t.Fatalf("Verify = %+v for a %d-byte file named for seq 2", info, len(data))
		}
		// What Verify accepts, reading with the entries kept must accept
		// too, and writing those entries back must give the same entries.
		var got sliceSource
		if _, err := read(fsys, fuzzPath, true, func(key, value string, deadline int64) error {
			got = append(got, entry{key, value, deadline})
			return nil
		}); err != nil {
			t.Fatalf("Verify accepted, reading the entries failed: %v", err)
		}
		if uint64(len(got)) != info.Count {
			t.Fatalf("read %d entries, Verify counted %d", len(got), info.Count)
		}
		re := encodeBytes(t, info.Seq, got, blockSize)
		var again sliceSource
		if _, err := decode(bytes.NewReader(re), int64(len(re)), nil, true, func(key, value string, deadline int64) error {
			again = append(again, entry{key, value, deadline})
			return nil
		}); err != nil {
			t.Fatalf("re-encoded entries do not decode: %v", err)
		}
		if !slices.Equal(got, again) {
			t.Fatalf("re-encoding changed the entries")
		}
	})
}

func FuzzLoad(f *testing.F) {
	older := "d/" + fileName(1)
	olderData := encodeBytes(f, 1, sliceSource{{key: "older", value: "1"}}, blockSize)
	const now = 1 << 40
	f.Fuzz(func(t *testing.T, data []byte, fix bool) {
		if fix {
			data = fixChecksums(data)
		}
		fsys := memFS{older: olderData, fuzzPath: data}
		var keys []string
		info, err := Load(fsys, "d", now, func(key, value string, deadline int64) error {
			if deadline > 0 && deadline <= now {
				t.Errorf("Load handed key %q, expired at %d", key, deadline)
			}
			keys = append(keys, key)
			return nil
		})
		_, verr := Verify(fsys, fuzzPath)
		if verr != nil && !errors.Is(verr, ErrCorrupt) {
			// memFS has no I/O errors, so this is an unsupported
			// version (FuzzVerify allows no other): Load must stop at
			// the file, not skip it.
			if !errors.Is(err, ErrVersion) || errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), fuzzPath) {
				t.Fatalf("Load error = %v, want Verify's %v", err, verr)
			}
			if info.Seq != 0 || len(info.Skipped) != 0 || keys != nil {
				t.Fatalf("Load = %+v and handed %q with its error, want nothing", info, keys)
			}
			return
		}
		// A valid older snapshot is always there to fall back to.
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if verr == nil {
			if info.Seq != 2 || len(info.Skipped) != 0 {
				t.Fatalf("Load = %+v, want the valid newest snapshot", info)
			}
			return
		}
		if info.Seq != 1 || len(info.Skipped) != 1 || !strings.Contains(info.Skipped[0].Error(), fuzzPath) {
			t.Fatalf("Load = %+v, want a fall back to seq 1 naming %s", info, fuzzPath)
		}
		if !slices.Equal(keys, []string{"older"}) {
			t.Fatalf("Load handed %q, want only the older snapshot's key", keys)
		}
	})
}
