package snap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"kvstore/wal"
)

// entry is one key of a test snapshot.
type entry struct {
	key, value string
	deadline   int64
}

// sliceSource is a Source over a slice, visited in order so that encoded
// files are deterministic.
type sliceSource []entry

func (s sliceSource) Len() int { return len(s) }

func (s sliceSource) Release() {}

func (s sliceSource) Range(fn func(key, value string, deadline int64) bool) {
	for _, e := range s {
		if !fn(e.key, e.value, e.deadline) {
			return
		}
	}
}

// genEntries returns n entries with distinct keys; with deadlines, every
// other one gets a deadline that varies in size.
func genEntries(n int, deadlines bool) sliceSource {
	s := make(sliceSource, n)
	for i := range s {
		s[i] = entry{key: fmt.Sprintf("key-%08d", i), value: fmt.Sprintf("value-%d-%s", i, strings.Repeat("v", i%7))}
		if deadlines && i%2 == 0 {
			s[i].deadline = int64(i+1) << (i % 40)
		}
	}
	return s
}

func mustWrite(tb testing.TB, fsys wal.FS, dir string, seq uint64, src Source) Info {
	tb.Helper()
	info, err := Write(fsys, dir, seq, src)
	if err != nil {
		tb.Fatalf("Write(seq %d): %v", seq, err)
	}
	return info
}

// encodeBytes returns src encoded as a snapshot file at seq with blocks of
// at most limit payload bytes.
func encodeBytes(tb testing.TB, seq uint64, src Source, limit int) []byte {
	tb.Helper()
	var b bytes.Buffer
	if _, err := encode(&b, seq, src, limit); err != nil {
		tb.Fatalf("encode: %v", err)
	}
	return b.Bytes()
}

// loadAll loads dir into a map and fails the test on error.
func loadAll(tb testing.TB, fsys wal.FS, dir string, now int64) (Info, map[string]entry) {
	tb.Helper()
	got := map[string]entry{}
	info, err := Load(fsys, dir, now, func(key, value string, deadline int64) error {
		if _, dup := got[key]; dup {
			tb.Errorf("Load: key %q twice", key)
		}
		got[key] = entry{key, value, deadline}
		return nil
	})
	if err != nil {
		tb.Fatalf("Load(%s): %v", dir, err)
	}
	return info, got
}

func asMap(s sliceSource) map[string]entry {
	m := make(map[string]entry, len(s))
	for _, e := range s {
		m[e.key] = e
	}
	return m
}

// dirNames lists the file names in dir.
func dirNames(tb testing.TB, dir string) []string {
	tb.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func writeFile(tb testing.TB, name string, data []byte) {
	tb.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		tb.Fatal(err)
	}
}

func readFile(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// craft builds a snapshot file around an arbitrary body with every
// checksum valid, for files whose damage only the decoder's own checks can
// catch.
func craft(seq, count uint64, body []byte, limit int) []byte {
	b := appendHeader(nil, header{seq: seq, count: count})
	var bodyCRC uint32
	for len(body) > 0 {
		n := min(len(body), limit)
		lenBytes := binary.LittleEndian.AppendUint32(nil, uint32(n))
		b = append(b, lenBytes...)
		b = binary.LittleEndian.AppendUint32(b, frameCRC(lenBytes, body[:n]))
		b = append(b, body[:n]...)
		bodyCRC = crc32.Update(bodyCRC, castagnoli, body[:n])
		body = body[n:]
	}
	return appendEnd(b, count, bodyCRC)
}

// fixChecksums rewrites every checksum it can find in data to match, so
// that fuzzing gets past them into the decoder's other checks.
func fixChecksums(data []byte) []byte {
	data = slices.Clone(data)
	if len(data) < headerSize {
		return data
	}
	binary.LittleEndian.PutUint32(data[28:32], crc32.Checksum(data[:28], castagnoli))
	count := data[20:28]
	var bodyCRC uint32
	off := headerSize
	for off+frameHeaderSize <= len(data) {
		n := int(binary.LittleEndian.Uint32(data[off:]))
		if n > blockSize || off+frameHeaderSize+n > len(data) {
			return data
		}
		payload := data[off+frameHeaderSize : off+frameHeaderSize+n]
		binary.LittleEndian.PutUint32(data[off+4:], frameCRC(data[off:off+4], payload))
		off += frameHeaderSize + n
		if n == 0 {
			if off+12 <= len(data) {
				copy(data[off:], count)
				binary.LittleEndian.PutUint32(data[off+8:], bodyCRC)
			}
			return data
		}
		bodyCRC = crc32.Update(bodyCRC, castagnoli, payload)
	}
	return data
}

// faultFS wraps wal.OS and fails the operations whose error is set. It
// also records how the snapshot was written, to show that Write streams.
type faultFS struct {
	open, write, sync, close, rename, remove, syncDir error
	// writeAfter lets this many bytes through before write fails.
	writeAfter int64
	// read fails ReadAt on files opened for reading after the first
	// readOpens of them; on readFiles of them if that is not 0, so that
	// the fault is transient and the files after read fine.
	read      error
	readOpens int
	readFiles int

	opened   int   // files opened for reading
	written  int64 // bytes written through all files
	maxWrite int   // largest single Write call
	writes   int   // Write calls
}

func (f *faultFS) OpenFile(name string, flag int, perm fs.FileMode) (wal.File, error) {
	if f.open != nil && flag&os.O_CREATE != 0 {
		return nil, &fs.PathError{Op: "open", Path: name, Err: f.open}
	}
	file, err := wal.OS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	ff := &faultFile{File: file, fs: f}
	if flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		f.opened++
		ff.failRead = f.read != nil && f.opened > f.readOpens &&
			(f.readFiles == 0 || f.opened <= f.readOpens+f.readFiles)
	}
	return ff, nil
}

func (f *faultFS) Rename(oldpath, newpath string) error {
	if f.rename != nil {
		return f.rename
	}
	return wal.OS.Rename(oldpath, newpath)
}

func (f *faultFS) Remove(name string) error {
	if f.remove != nil && !strings.HasSuffix(name, tmpExt) {
		return f.remove
	}
	return wal.OS.Remove(name)
}

func (f *faultFS) ReadDir(dir string) ([]fs.DirEntry, error) { return wal.OS.ReadDir(dir) }
func (f *faultFS) MkdirAll(dir string, perm fs.FileMode) error {
	return wal.OS.MkdirAll(dir, perm)
}

func (f *faultFS) SyncDir(dir string) error {
	if f.syncDir != nil {
		return f.syncDir
	}
	return wal.OS.SyncDir(dir)
}

type faultFile struct {
	wal.File
	fs       *faultFS
	failRead bool
}

func (f *faultFile) ReadAt(p []byte, off int64) (int, error) {
	if f.failRead {
		return 0, f.fs.read
	}
	return f.File.ReadAt(p, off)
}

func (f *faultFile) Write(p []byte) (int, error) {
	f.fs.writes++
	f.fs.maxWrite = max(f.fs.maxWrite, len(p))
	if f.fs.write != nil && f.fs.written+int64(len(p)) > f.fs.writeAfter {
		// A torn write: the part before the limit lands.
		n, _ := f.File.Write(p[:f.fs.writeAfter-f.fs.written])
		f.fs.written += int64(n)
		return n, f.fs.write
	}
	n, err := f.File.Write(p)
	f.fs.written += int64(n)
	return n, err
}

func (f *faultFile) Sync() error {
	if f.fs.sync != nil {
		return f.fs.sync
	}
	return f.File.Sync()
}

func (f *faultFile) Close() error {
	err := f.File.Close()
	if f.fs.close != nil {
		return f.fs.close
	}
	return err
}

// memFS is a read-only in-memory wal.FS with slash-separated paths. It
// keeps fuzzing off the disk.
type memFS map[string][]byte

var errReadOnly = errors.New("memFS is read-only")

func (m memFS) OpenFile(name string, flag int, perm fs.FileMode) (wal.File, error) {
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND) != 0 {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errReadOnly}
	}
	b, ok := m[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &memFile{Reader: bytes.NewReader(b), name: name, size: int64(len(b))}, nil
}

func (m memFS) ReadDir(dir string) ([]fs.DirEntry, error) {
	var ents []fs.DirEntry
	for name, b := range m {
		if path.Dir(name) == dir {
			ents = append(ents, fs.FileInfoToDirEntry(memInfo{name: path.Base(name), size: int64(len(b))}))
		}
	}
	if ents == nil {
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: fs.ErrNotExist}
	}
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return ents, nil
}

func (m memFS) Rename(oldpath, newpath string) error        { return errReadOnly }
func (m memFS) Remove(name string) error                    { return errReadOnly }
func (m memFS) MkdirAll(dir string, perm fs.FileMode) error { return errReadOnly }
func (m memFS) SyncDir(dir string) error                    { return errReadOnly }

type memFile struct {
	*bytes.Reader
	name string
	size int64
}

func (f *memFile) Write([]byte) (int, error) { return 0, errReadOnly }
func (f *memFile) Close() error              { return nil }
func (f *memFile) Sync() error               { return errReadOnly }
func (f *memFile) Truncate(int64) error      { return errReadOnly }
func (f *memFile) Name() string              { return f.name }
func (f *memFile) Stat() (fs.FileInfo, error) {
	return memInfo{name: path.Base(f.name), size: f.size}, nil
}

type memInfo struct {
	name string
	size int64
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() fs.FileMode  { return 0o600 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }

func uvarint(v uint64) []byte                { return binary.AppendUvarint(nil, v) }
func varint(v int64) []byte                  { return binary.AppendVarint(nil, v) }
func u32(v uint32) []byte                    { return binary.LittleEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte                    { return binary.LittleEndian.AppendUint64(nil, v) }
func copyAt(dst []byte, off int, src []byte) { copy(dst[off:], src) }
