package snap

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"kvstore/wal"
	"kvstore/wal/faultfs"
)

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		src  sliceSource
	}{
		{"empty", nil},
		{"one", sliceSource{{key: "k", value: "v"}}},
		{"one with deadline", sliceSource{{key: "k", value: "v", deadline: 1<<62 + 5}}},
		{"empty key and value", sliceSource{{key: "", value: "", deadline: 0}}},
		{"negative deadline kept as is", sliceSource{{key: "k", value: "v", deadline: -7}}},
		{"binary", sliceSource{{key: "\x00\xff\n", value: "\x80\x80\x80\x00"}}},
		{"10k", genEntries(10_000, false)},
		{"10k with deadlines", genEntries(10_000, true)},
		{"values spanning blocks", sliceSource{
			{key: "a", value: strings.Repeat("x", 3*blockSize+17)},
			{key: strings.Repeat("k", blockSize+1), value: "b", deadline: 9},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "snap")
			const seq = 42
			info := mustWrite(t, wal.OS, dir, seq, tt.src)
			want := Info{Path: filepath.Join(dir, fileName(seq)), Seq: seq, Count: uint64(len(tt.src))}
			if info.Path != want.Path || info.Seq != want.Seq || info.Count != want.Count || info.Skipped != nil {
				t.Fatalf("Write = %+v, want %+v", info, want)
			}
			if st, err := os.Stat(info.Path); err != nil || st.Size() != info.Bytes {
				t.Fatalf("Write Bytes = %d, file: %v %v", info.Bytes, st, err)
			}
			if v, err := Verify(wal.OS, info.Path); err != nil || !equalInfo(v, info) {
				t.Fatalf("Verify = %+v, %v; want %+v", v, err, info)
			}
			// now = 0: nothing counts as expired.
			got, m := loadAll(t, wal.OS, dir, 0)
			if !equalInfo(got, info) || len(got.Skipped) != 0 {
				t.Fatalf("Load = %+v, want %+v", got, info)
			}
			if want := asMap(tt.src); !maps.Equal(m, want) {
				t.Fatalf("Load: %d entries, want %d (contents differ)", len(m), len(want))
			}
		})
	}
}

func equalInfo(a, b Info) bool {
	return a.Path == b.Path && a.Seq == b.Seq && a.Count == b.Count && a.Bytes == b.Bytes
}

func TestLoadSkipsExpired(t *testing.T) {
	const now = 1_000
	src := sliceSource{
		{key: "none", deadline: 0},
		{key: "long ago", deadline: 1},
		{key: "just before", deadline: now - 1},
		{key: "exactly now", deadline: now},
		{key: "just after", deadline: now + 1},
		{key: "negative", deadline: -1},
	}
	dir := t.TempDir()
	mustWrite(t, wal.OS, dir, 1, src)
	info, m := loadAll(t, wal.OS, dir, now)
	if info.Count != uint64(len(src)) {
		t.Errorf("Count = %d, want %d: Count is the file's, expired included", info.Count, len(src))
	}
	got := slices.Sorted(maps.Keys(m))
	want := []string{"just after", "negative", "none"}
	if !slices.Equal(got, want) {
		t.Errorf("loaded %q, want %q", got, want)
	}
}

func TestLoadNoSnapshot(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"missing dir", func(t *testing.T, dir string) {}},
		{"empty dir", func(t *testing.T, dir string) { os.Mkdir(dir, 0o700) }},
		{"only other files", func(t *testing.T, dir string) {
			os.Mkdir(dir, 0o700)
			writeFile(t, filepath.Join(dir, fileName(5)+tmpExt), []byte("partial"))
			writeFile(t, filepath.Join(dir, "5.snap"), []byte("not our name"))
			writeFile(t, filepath.Join(dir, "00000000000000000000000000005.snap"), []byte("too long"))
			os.Mkdir(filepath.Join(dir, fileName(6)), 0o700)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "snap")
			tt.setup(t, dir)
			info, err := Load(wal.OS, dir, 0, func(string, string, int64) error {
				t.Fatal("fn called")
				return nil
			})
			if err != nil || info.Seq != 0 || info.Path != "" {
				t.Fatalf("Load = %+v, %v; want Info{}, nil", info, err)
			}
		})
	}
}

func TestLoadFallsBack(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
		want   error
	}{
		{"flipped byte", func(t *testing.T, path string) {
			b := readFile(t, path)
			b[len(b)/2] ^= 0x10
			writeFile(t, path, b)
		}, ErrChecksum},
		{"truncated", func(t *testing.T, path string) {
			b := readFile(t, path)
			writeFile(t, path, b[:len(b)-1])
		}, ErrTruncated},
		{"emptied", func(t *testing.T, path string) { writeFile(t, path, nil) }, ErrTruncated},
		{"version zero", func(t *testing.T, path string) {
			// No build writes version 0: a zeroed or flipped field is
			// damage, not a newer format (see TestLoadStops).
			b := readFile(t, path)
			b[8] = 0
			writeFile(t, path, b)
		}, ErrCorrupt},
		{"wrong name", func(t *testing.T, path string) {
			other := filepath.Join(t.TempDir(), "x")
			mustWrite(t, wal.OS, other, 25, genEntries(3, false))
			writeFile(t, path, readFile(t, filepath.Join(other, fileName(25))))
		}, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			older := sliceSource{{key: "older", value: "1"}}
			newer := sliceSource{{key: "newer", value: "2"}}
			mustWrite(t, wal.OS, dir, 10, older)
			bad := mustWrite(t, wal.OS, dir, 20, newer)
			tt.damage(t, bad.Path)

			info, m := loadAll(t, wal.OS, dir, 0)
			if info.Seq != 10 {
				t.Fatalf("Load Seq = %d, want the older snapshot's 10", info.Seq)
			}
			if !maps.Equal(m, asMap(older)) {
				t.Fatalf("Load handed %v, want only the older snapshot's entries", m)
			}
			if len(info.Skipped) != 1 {
				t.Fatalf("Skipped = %v, want the newer snapshot", info.Skipped)
			}
			if err := info.Skipped[0]; !errors.Is(err, tt.want) || !strings.Contains(err.Error(), bad.Path) {
				t.Fatalf("Skipped[0] = %v, want %v naming %s", err, tt.want, bad.Path)
			}
		})
	}
}

// TestLoadStops checks that a snapshot Load cannot verify for any reason
// but damage is never skipped: the caller sets skipped snapshots aside,
// and a transient I/O error or a newer build's file must not cost it a
// good snapshot. Load stops at the file and touches nothing.
func TestLoadStops(t *testing.T) {
	older := sliceSource{{key: "older", value: "1"}}
	newer := sliceSource{{key: "newer", value: "2"}}
	// twoOnDisk writes snapshots 10 and 20 and returns the dir and their
	// paths.
	twoOnDisk := func(t *testing.T) (dir, olderPath, newerPath string) {
		dir = t.TempDir()
		o := mustWrite(t, wal.OS, dir, 10, older)
		n := mustWrite(t, wal.OS, dir, 20, newer)
		return dir, o.Path, n.Path
	}
	tests := []struct {
		name string
		// setup returns the file system to load from, the dir, and the
		// file Load must stop at.
		setup func(t *testing.T) (fsys wal.FS, dir, stopAt string)
		want  error
	}{
		{"newest fails one read", func(t *testing.T) (wal.FS, string, string) {
			dir, _, n := twoOnDisk(t)
			return &faultFS{read: syscall.EIO, readFiles: 1}, dir, n
		}, syscall.EIO},
		{"newest fails one open", func(t *testing.T) (wal.FS, string, string) {
			fsys := faultfs.New(1)
			mustWrite(t, fsys, "/d", 10, older)
			n := mustWrite(t, fsys, "/d", 20, newer)
			fsys.FailNth(faultfs.OpOpen, 1, syscall.EIO)
			return fsys, "/d", n.Path
		}, syscall.EIO},
		{"newest in a newer format", func(t *testing.T) (wal.FS, string, string) {
			dir, _, n := twoOnDisk(t)
			b := readFile(t, n)
			b[8] = formatVersion + 1
			writeFile(t, n, b)
			return wal.OS, dir, n
		}, ErrVersion},
		{"older fails one read after the newest is damaged", func(t *testing.T) (wal.FS, string, string) {
			dir, o, n := twoOnDisk(t)
			b := readFile(t, n)
			b[len(b)/2] ^= 0x10
			writeFile(t, n, b)
			return &faultFS{read: syscall.EIO, readOpens: 1, readFiles: 1}, dir, o
		}, syscall.EIO},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys, dir, stopAt := tt.setup(t)
			info, err := Load(fsys, dir, 0, func(string, string, int64) error {
				t.Error("fn called: Load went past a file it could not verify")
				return nil
			})
			if !errors.Is(err, tt.want) || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNoValidSnapshot) {
				t.Fatalf("Load error = %v, want %v and neither ErrCorrupt nor ErrNoValidSnapshot", err, tt.want)
			}
			if !strings.Contains(err.Error(), stopAt) {
				t.Errorf("Load error %q does not name %s", err, stopAt)
			}
			if info.Seq != 0 || info.Path != "" || len(info.Skipped) != 0 {
				t.Errorf("Load = %+v with its error, want Info{}: nothing loaded, nothing skipped", info)
			}
		})
	}
}

func TestLoadNoneValid(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for _, seq := range []uint64{3, 7} {
		info := mustWrite(t, wal.OS, dir, seq, genEntries(5, true))
		b := readFile(t, info.Path)
		b[headerSize+frameHeaderSize+1] ^= 1
		writeFile(t, info.Path, b)
		paths = append(paths, info.Path)
	}
	info, err := Load(wal.OS, dir, 0, func(string, string, int64) error {
		t.Fatal("fn called for an invalid snapshot")
		return nil
	})
	if !errors.Is(err, ErrNoValidSnapshot) || !errors.Is(err, ErrChecksum) {
		t.Fatalf("Load error = %v, want ErrNoValidSnapshot and ErrChecksum", err)
	}
	for _, p := range paths {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("Load error %q does not name %s", err, p)
		}
	}
	if info.Seq != 0 {
		t.Errorf("Load Seq = %d on error", info.Seq)
	}
}

func TestLoadCallerError(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, wal.OS, dir, 1, genEntries(3, false))
	mustWrite(t, wal.OS, dir, 2, genEntries(3, false))
	stop := errors.New("stop")
	calls := 0
	_, err := Load(wal.OS, dir, 0, func(string, string, int64) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("Load error = %v, want fn's error and not corruption", err)
	}
	if calls != 1 {
		t.Fatalf("fn called %d times after returning an error, want 1 and no fallback", calls)
	}
}

func TestReadErrors(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, wal.OS, dir, 1, genEntries(3, false))
	info := mustWrite(t, wal.OS, dir, 2, genEntries(3, false))

	// An I/O error is not damage: the file may be fine.
	if _, err := Verify(&faultFS{read: syscall.EIO}, info.Path); !errors.Is(err, syscall.EIO) || errors.Is(err, ErrCorrupt) {
		t.Errorf("Verify with failing reads = %v, want EIO and not ErrCorrupt", err)
	}

	// Nothing readable must not look like an empty store, nor like
	// damage.
	_, err := Load(&faultFS{read: syscall.EIO}, dir, 0, func(string, string, int64) error { return nil })
	if !errors.Is(err, syscall.EIO) || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNoValidSnapshot) {
		t.Errorf("Load with failing reads = %v, want EIO only", err)
	}

	// Reads that fail after the verifying pass: fn may have run, so Load
	// must fail rather than fall back, and not call it damage.
	loaded, err := Load(&faultFS{read: syscall.EIO, readOpens: 1, readFiles: 1}, dir, 0, func(string, string, int64) error { return nil })
	if !errors.Is(err, syscall.EIO) || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNoValidSnapshot) ||
		!strings.Contains(err.Error(), info.Path) || len(loaded.Skipped) != 0 {
		t.Errorf("Load with a read failing in the second pass = %+v, %v; want EIO naming %s", loaded, err, info.Path)
	}

	// The same for an open that fails in the second pass.
	mem := faultfs.New(1)
	mustWrite(t, mem, "/d", 1, genEntries(3, false))
	newest := mustWrite(t, mem, "/d", 2, genEntries(3, false))
	mem.FailNth(faultfs.OpOpen, 2, syscall.EIO)
	loaded, err = Load(mem, "/d", 0, func(string, string, int64) error { return nil })
	if !errors.Is(err, syscall.EIO) || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNoValidSnapshot) ||
		!strings.Contains(err.Error(), newest.Path) || len(loaded.Skipped) != 0 {
		t.Errorf("Load with an open failing in the second pass = %+v, %v; want EIO naming %s", loaded, err, newest.Path)
	}
}

// shrinkingReader is a file that loses its tail after being measured.
type shrinkingReader struct{ data []byte }

func (r shrinkingReader) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(r.data).ReadAt(p, off)
}

func TestDecodeFileShrinks(t *testing.T) {
	data := snapshotBytes(t, 9)
	for n := range len(data) {
		_, err := decode(shrinkingReader{data[:n]}, int64(len(data)), nil, false, nil)
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("file shrank to %d of %d bytes: decode = %v, want ErrTruncated", n, len(data), err)
		}
	}
}

// snapshotBytes is a small snapshot over many tiny blocks, so that damage
// lands in every part of the format: header, block headers, entries split
// across blocks, end marker and trailer.
func snapshotBytes(t *testing.T, seq uint64) []byte {
	t.Helper()
	src := sliceSource{
		{key: "alpha", value: "one"},
		{key: "", value: "empty key", deadline: 1 << 40},
		{key: "gamma", value: strings.Repeat("z", 40), deadline: -3},
	}
	return encodeBytes(t, seq, src, 7)
}

func TestVerifyDetectsEveryBitFlip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, fileName(9))
	good := snapshotBytes(t, 9)
	writeFile(t, path, good)
	if _, err := Verify(wal.OS, path); err != nil {
		t.Fatalf("Verify(unchanged) = %v", err)
	}
	for i := range good {
		for bit := range 8 {
			b := slices.Clone(good)
			b[i] ^= 1 << bit
			writeFile(t, path, b)
			_, err := Verify(wal.OS, path)
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				t.Fatalf("byte %d bit %d flipped: Verify = %v, want ErrCorrupt", i, bit, err)
			}
		}
	}
}

func TestVerifyDetectsEveryTruncation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, fileName(9))
	good := snapshotBytes(t, 9)
	for n := range len(good) {
		writeFile(t, path, good[:n])
		if _, err := Verify(wal.OS, path); !errors.Is(err, ErrTruncated) {
			t.Fatalf("cut to %d of %d bytes: Verify = %v, want ErrTruncated", n, len(good), err)
		}
	}
}

func TestVerifyRejects(t *testing.T) {
	entries := func(es ...entry) []byte {
		var b []byte
		for _, e := range es {
			b = append(b, uvarint(uint64(len(e.key)))...)
			b = append(b, e.key...)
			b = append(b, uvarint(uint64(len(e.value)))...)
			b = append(b, e.value...)
			b = append(b, varint(e.deadline)...)
		}
		return b
	}
	one := entries(entry{key: "k", value: "v"})
	withTrailer := func(b []byte, count uint64) []byte {
		b = slices.Clone(b)
		copyAt(b, len(b)-trailerSize, u64(count))
		return b
	}
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"not a snapshot", []byte("hello, this is not a snapshot file at all, no"), ErrCorrupt},
		{"short garbage", []byte("abc"), ErrTruncated},
		{"huge count", craft(1, 1<<62, one, blockSize), ErrTruncated},
		{"max count", craft(1, ^uint64(0), one, blockSize), ErrTruncated},
		{"count too high", craft(1, 2, one, blockSize), ErrCorrupt},
		{"count too low", craft(1, 0, one, blockSize), ErrCorrupt},
		{"trailer count differs", withTrailer(craft(1, 1, one, blockSize), 2), ErrCorrupt},
		{"huge key length", craft(1, 1, append(uvarint(1<<40), "k"...), blockSize), ErrCorrupt},
		{"key length past end", craft(1, 1, append(uvarint(1000), make([]byte, 400)...), blockSize), ErrTruncated},
		{"value over max", craft(1, 1, append(append(uvarint(0), uvarint(MaxValueSize+1)...), "v"...), blockSize), ErrCorrupt},
		{"varint overflow", craft(1, 1, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0}, blockSize), ErrCorrupt},
		{"varint too long", craft(1, 1, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0}, 4), ErrCorrupt},
		{"entry cut by end", craft(1, 1, one[:len(one)-1], blockSize), ErrCorrupt},
		{"empty block", func() []byte {
			// An empty block reads as the end marker, so the real end
			// marker that follows sits where the trailer should be.
			b := craft(1, 0, nil, blockSize)
			return slices.Concat(b[:headerSize], b[headerSize:headerSize+frameHeaderSize], b[headerSize:])
		}(), ErrCorrupt},
		{"block over max", func() []byte {
			b := craft(1, 0, nil, blockSize)
			return slices.Concat(b[:headerSize], u32(blockSize+1), make([]byte, 4+blockSize+1), b[headerSize:])
		}(), ErrCorrupt},
		{"trailing bytes", append(craft(1, 1, one, blockSize), 0), ErrCorrupt},
		{"blocks swapped", func() []byte {
			// One entry per block: swapped, every block CRC and every
			// entry stays valid; only the body CRC catches it.
			body := entries(entry{key: "a", value: "b"}, entry{key: "c", value: "d"})
			b := craft(1, 2, body, len(body)/2)
			const frame = frameHeaderSize + 5
			f1 := slices.Clone(b[headerSize : headerSize+frame])
			f2 := slices.Clone(b[headerSize+frame : headerSize+2*frame])
			copy(b[headerSize:], f2)
			copy(b[headerSize+frame:], f1)
			return b
		}(), ErrChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), fileName(1))
			writeFile(t, path, tt.data)
			_, err := Verify(wal.OS, path)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "offset") {
				t.Fatalf("Verify error %q does not name the file and offset", err)
			}
		})
	}
}

func TestVerifyAcceptsCrafted(t *testing.T) {
	// The decoder must accept what the format allows even where Write
	// never produces it, so that the two are tested apart.
	body := slices.Concat(uvarint(3), []byte("key"), uvarint(5), []byte("value"), varint(77))
	path := filepath.Join(t.TempDir(), fileName(1))
	writeFile(t, path, craft(1, 1, body, 1))
	if info, err := Verify(wal.OS, path); err != nil || info.Count != 1 {
		t.Fatalf("Verify(one-byte blocks) = %+v, %v", info, err)
	}
}

func TestVerifyIgnoresOtherNames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "backup.bin")
	writeFile(t, path, encodeBytes(t, 77, genEntries(2, false), blockSize))
	info, err := Verify(wal.OS, path)
	if err != nil || info.Seq != 77 || info.Count != 2 {
		t.Fatalf("Verify = %+v, %v; want seq 77 from the header", info, err)
	}
}

func TestWriteKeepsNewestTwo(t *testing.T) {
	dir := t.TempDir()
	stale := []string{fileName(2) + tmpExt, fileName(99) + tmpExt}
	for _, name := range stale {
		writeFile(t, filepath.Join(dir, name), []byte("left by a crash"))
	}
	writeFile(t, filepath.Join(dir, "notes.txt"), []byte("not ours"))
	for seq := uint64(1); seq <= 5; seq++ {
		mustWrite(t, wal.OS, dir, seq, genEntries(int(seq), false))
	}
	want := []string{fileName(4), fileName(5), "notes.txt"}
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Fatalf("dir holds %q, want %q", got, want)
	}
	list, err := List(wal.OS, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Seq != 5 || list[1].Seq != 4 || list[0].Path != filepath.Join(dir, fileName(5)) {
		t.Fatalf("List = %+v, want 5 then 4", list)
	}
}

func TestWriteKeepsCurrentEvenIfOlder(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, wal.OS, dir, 10, genEntries(1, false))
	mustWrite(t, wal.OS, dir, 20, genEntries(1, false))
	mustWrite(t, wal.OS, dir, 5, genEntries(1, false))
	want := []string{fileName(5), fileName(10), fileName(20)}
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Fatalf("dir holds %q, want %q: Write must not delete what it just wrote", got, want)
	}
}

func TestWriteSameSeqReplaces(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, wal.OS, dir, 10, sliceSource{{key: "a"}})
	mustWrite(t, wal.OS, dir, 10, sliceSource{{key: "b"}})
	_, m := loadAll(t, wal.OS, dir, 0)
	if _, ok := m["b"]; !ok || len(m) != 1 {
		t.Fatalf("Load = %v, want the second write", m)
	}
}

func TestWriteFailureLeavesOlderIntact(t *testing.T) {
	errInjected := errors.New("injected")
	tests := []struct {
		name string
		fs   faultFS
		// atEnd moves the write failure to the last write, which
		// carries the end marker and trailer.
		atEnd bool
		// kept: the new file exists after the failure (it is complete
		// and fsynced, only its directory entry may not be).
		kept bool
	}{
		{name: "create fails", fs: faultFS{open: errInjected}},
		{name: "write fails at once", fs: faultFS{write: errInjected}},
		{name: "torn write mid block", fs: faultFS{write: errInjected, writeAfter: headerSize + 100}},
		{name: "torn write at trailer", fs: faultFS{write: errInjected}, atEnd: true},
		{name: "fsync fails", fs: faultFS{sync: errInjected}},
		{name: "close fails", fs: faultFS{close: errInjected}},
		{name: "rename fails", fs: faultFS{rename: errInjected}},
		{name: "dir fsync fails", fs: faultFS{syncDir: errInjected}, kept: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for seq := uint64(1); seq <= 2; seq++ {
				mustWrite(t, wal.OS, dir, seq, genEntries(10, true))
			}
			before := map[string][]byte{}
			for _, name := range dirNames(t, dir) {
				before[name] = readFile(t, filepath.Join(dir, name))
			}
			src := genEntries(2000, false)
			fsys := tt.fs
			if tt.atEnd {
				fsys.writeAfter = int64(len(encodeBytes(t, 3, src, blockSize))) - 1
			}
			_, err := Write(&fsys, dir, 3, src)
			if !errors.Is(err, errInjected) {
				t.Fatalf("Write error = %v, want the injected one", err)
			}
			for name, data := range before {
				if got := readFile(t, filepath.Join(dir, name)); string(got) != string(data) {
					t.Errorf("%s changed", name)
				}
			}
			want := slices.Sorted(maps.Keys(before))
			if tt.kept {
				want = append(want, fileName(3))
			}
			if got := dirNames(t, dir); !slices.Equal(got, want) {
				t.Fatalf("dir holds %q, want %q", got, want)
			}
		})
	}
}

func TestWritePruneFailure(t *testing.T) {
	dir := t.TempDir()
	for seq := uint64(1); seq <= 2; seq++ {
		mustWrite(t, wal.OS, dir, seq, genEntries(1, false))
	}
	fsys := &faultFS{remove: syscall.EACCES}
	info, err := Write(fsys, dir, 3, genEntries(1, false))
	if !errors.Is(err, ErrPrune) || !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("Write error = %v, want ErrPrune", err)
	}
	if info.Seq != 3 || info.Path != filepath.Join(dir, fileName(3)) {
		t.Fatalf("Write Info = %+v, want the durable new snapshot", info)
	}
	if got, _ := loadAll(t, wal.OS, dir, 0); got.Seq != 3 {
		t.Fatalf("Load Seq = %d, want 3", got.Seq)
	}
}

// miscountedSource reports len entries but visits n.
type miscountedSource struct{ len, n int }

func (s miscountedSource) Len() int { return s.len }
func (s miscountedSource) Release() {}
func (s miscountedSource) Range(fn func(string, string, int64) bool) {
	for i := range s.n {
		if !fn(fmt.Sprint(i), "v", 0) {
			return
		}
	}
}

func TestWriteRejects(t *testing.T) {
	// One allocation for both: MaxKeySize and MaxValueSize are 64 MiB.
	big := strings.Repeat("x", max(MaxKeySize, MaxValueSize)+1)
	tests := []struct {
		name string
		src  Source
		want error
	}{
		{"fewer than Len", miscountedSource{len: 5, n: 4}, ErrSourceLen},
		{"more than Len", miscountedSource{len: 5, n: 6}, ErrSourceLen},
		{"negative Len", miscountedSource{len: -1, n: 0}, ErrSourceLen},
		{"key too large", sliceSource{{key: big[:MaxKeySize+1]}}, ErrTooLarge},
		{"value too large", sliceSource{{key: "k", value: big[:MaxValueSize+1]}}, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			mustWrite(t, wal.OS, dir, 1, genEntries(1, false))
			if _, err := Write(wal.OS, dir, 2, tt.src); !errors.Is(err, tt.want) {
				t.Fatalf("Write error = %v, want %v", err, tt.want)
			}
			if got, want := dirNames(t, dir), []string{fileName(1)}; !slices.Equal(got, want) {
				t.Fatalf("dir holds %q, want %q", got, want)
			}
		})
	}
}

func TestWriteCreatesDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b", "snap")
	mustWrite(t, wal.OS, dir, 1, genEntries(1, false))
	if info, _ := loadAll(t, wal.OS, dir, 0); info.Seq != 1 {
		t.Fatalf("Load Seq = %d, want 1", info.Seq)
	}
}

// lazySource makes its entries up as Range visits them and, halfway,
// records how much of the file has been written already.
type lazySource struct {
	n          int
	fs         *faultFS
	ranges     int
	writtenMid int64
}

func (s *lazySource) Len() int { return s.n }

func (s *lazySource) Release() {}

func (s *lazySource) Range(fn func(string, string, int64) bool) {
	s.ranges++
	var buf [32]byte
	for i := range s.n {
		if i == s.n/2 {
			s.writtenMid = s.fs.written
		}
		key := fmt.Appendf(buf[:0], "%016d", i)
		if !fn(string(key), "0123456789abcdef", 0) {
			return
		}
	}
}

func TestWriteStreams(t *testing.T) {
	const n = 200_000
	fsys := &faultFS{}
	src := &lazySource{n: n, fs: fsys}
	info := mustWrite(t, fsys, t.TempDir(), 1, src)
	if src.ranges != 1 {
		t.Errorf("Range called %d times, want 1", src.ranges)
	}
	if info.Count != n {
		t.Errorf("Count = %d, want %d", info.Count, n)
	}
	// No threshold on memory: half the entries must be on their
	// way to the file before Range is done, and no write may exceed one
	// block, so nothing holds the whole state.
	if src.writtenMid < info.Bytes/3 {
		t.Errorf("%d of %d bytes written when Range was halfway; Write does not stream", src.writtenMid, info.Bytes)
	}
	if fsys.maxWrite > frameHeaderSize+blockSize {
		t.Errorf("largest write %d bytes, want at most one block (%d)", fsys.maxWrite, frameHeaderSize+blockSize)
	}
	if _, err := Verify(wal.OS, info.Path); err != nil {
		t.Fatal(err)
	}
}

func TestListNewestFirst(t *testing.T) {
	dir := t.TempDir()
	for _, seq := range []uint64{7, 300, 20, ^uint64(0)} {
		writeFile(t, filepath.Join(dir, fileName(seq)), nil)
	}
	writeFile(t, filepath.Join(dir, "99999999999999999999.snap"), nil) // overflows uint64
	writeFile(t, filepath.Join(dir, fileName(8)+tmpExt), nil)
	list, err := List(wal.OS, dir)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, info := range list {
		seqs = append(seqs, info.Seq)
	}
	if want := []uint64{^uint64(0), 300, 20, 7}; !slices.Equal(seqs, want) {
		t.Fatalf("List seqs = %v, want %v", seqs, want)
	}
	if _, err := List(wal.OS, filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("List(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestFileNames(t *testing.T) {
	for _, seq := range []uint64{0, 1, 1234567890, ^uint64(0)} {
		name := fileName(seq)
		if got, ok := parseName(name); !ok || got != seq {
			t.Errorf("parseName(%q) = %d, %v; want %d", name, got, ok, seq)
		}
		if !isTempName(name + tmpExt) {
			t.Errorf("isTempName(%q) = false", name+tmpExt)
		}
	}
	for _, name := range []string{"", "1.snap", "0000000000000000000a.snap", "00000000000000000001.snapx", "+0000000000000000001.snap", "00000000000000000001.tmp"} {
		if _, ok := parseName(name); ok {
			t.Errorf("parseName(%q) accepted", name)
		}
		if isTempName(name) {
			t.Errorf("isTempName(%q) accepted", name)
		}
	}
}

// TestStatOfABackup: Stat reads a snapshot under any name, reports the
// checksum Encode returned for the same bytes, and counts exactly the
// entries Load would leave out as expired.
func TestStatOfABackup(t *testing.T) {
	src := sliceSource{
		{"a", "1", 0},
		{"b", "2", 100},
		{"c", "3", 200},
		{"d", "4", 300},
	}
	var buf bytes.Buffer
	enc, err := Encode(&buf, 7, src)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kv.bak")
	writeFile(t, path, buf.Bytes())
	for _, tc := range []struct {
		now     int64
		expired uint64
	}{{0, 0}, {99, 0}, {100, 1}, {250, 2}, {1000, 3}} {
		st, err := Stat(wal.OS, path, tc.now)
		if err != nil {
			t.Fatal(err)
		}
		want := Status{Info: Info{Path: path, Seq: 7, Count: 4, Bytes: enc.Bytes, Checksum: enc.Checksum}, Expired: tc.expired}
		if st.Path != want.Path || st.Seq != want.Seq || st.Count != want.Count || st.Bytes != want.Bytes ||
			st.Checksum != want.Checksum || st.Expired != want.Expired {
			t.Errorf("now %d: Stat = %+v, want %+v", tc.now, st, want)
		}
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, fileName(7)), buf.Bytes())
		_, got := loadAll(t, wal.OS, dir, tc.now)
		if uint64(len(got)) != 4-tc.expired {
			t.Errorf("now %d: Load kept %d entries, Stat says %d of 4 expired", tc.now, len(got), tc.expired)
		}
	}
	if enc.Checksum == 0 {
		t.Fatal("checksum 0: the test cannot tell it from an unset one")
	}
}
