package faultfs_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"
	"testing"

	"kvstore/wal"
	"kvstore/wal/faultfs"
)

const dir = "/d"

func create(t *testing.T, f *faultfs.FS, name string) wal.File {
	t.Helper()
	file, err := f.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return file
}

func write(t *testing.T, file wal.File, s string) {
	t.Helper()
	if n, err := file.Write([]byte(s)); err != nil || n != len(s) {
		t.Fatalf("Write = %d, %v", n, err)
	}
}

func mustSync(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func content(t *testing.T, f *faultfs.FS, name string) string {
	t.Helper()
	b, err := f.ReadFile(name)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

func newFS(t *testing.T, seed int64) *faultfs.FS {
	t.Helper()
	f := faultfs.New(seed)
	if err := f.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestCrashDropsUnsynced(t *testing.T) {
	f := newFS(t, 1)
	a := create(t, f, dir+"/a")
	write(t, a, "synced")
	mustSync(t, a.Sync())
	write(t, a, "+lost")
	create(t, f, dir+"/b") // entry never synced
	mustSync(t, f.SyncDir(dir))
	create(t, f, dir+"/c") // after the last SyncDir

	if got := content(t, f, dir+"/a"); got != "synced+lost" {
		t.Fatalf("before the crash reads see %q", got)
	}
	after := f.Crash(faultfs.DropUnsynced)
	if got := content(t, after, dir+"/a"); got != "synced" {
		t.Fatalf("a = %q after crash", got)
	}
	if got := content(t, after, dir+"/b"); got != "" {
		t.Fatalf("b = %q after crash, want an empty file", got)
	}
	if _, err := after.ReadFile(dir + "/c"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("c survived without SyncDir: %v", err)
	}
	// The old file system and its files are dead.
	if _, err := a.Write([]byte("x")); !errors.Is(err, faultfs.ErrCrashed) {
		t.Fatalf("write after crash: %v", err)
	}
	if _, err := f.OpenFile(dir+"/a", os.O_RDONLY, 0); !errors.Is(err, faultfs.ErrCrashed) {
		t.Fatalf("open after crash: %v", err)
	}
}

func TestUnsyncedRenameAndRemove(t *testing.T) {
	f := newFS(t, 1)
	a := create(t, f, dir+"/tmp")
	write(t, a, "v1")
	mustSync(t, a.Sync())
	mustSync(t, f.SyncDir(dir))
	if err := f.Rename(dir+"/tmp", dir+"/final"); err != nil {
		t.Fatal(err)
	}
	after := f.Crash(faultfs.DropUnsynced)
	if content(t, after, dir+"/tmp") != "v1" || content(t, after, dir+"/final") != "<open /d/final: no such file or directory>" {
		t.Fatalf("rename without SyncDir survived:\n%s", after)
	}

	f = newFS(t, 1)
	create(t, f, dir+"/x")
	mustSync(t, f.SyncDir(dir))
	mustSync(t, f.Remove(dir+"/x"))
	if _, err := f.ReadFile(dir + "/x"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("removed file still readable")
	}
	if _, err := f.Crash(faultfs.DropUnsynced).ReadFile(dir + "/x"); err != nil {
		t.Fatal("remove without SyncDir survived")
	}
}

func TestTornWritesKeepAPrefix(t *testing.T) {
	const synced, full = "base|", "base|one|two|"
	sawTorn := false
	for seed := int64(0); seed < 50; seed++ {
		for _, mode := range []faultfs.CrashMode{faultfs.TearUnsynced, faultfs.ZeroTail} {
			f := newFS(t, seed)
			a := create(t, f, dir+"/a")
			mustSync(t, f.SyncDir(dir))
			write(t, a, synced)
			mustSync(t, a.Sync())
			write(t, a, "one|")
			write(t, a, "two|")
			got := content(t, f.Crash(mode), dir+"/a")
			if mode == faultfs.ZeroTail {
				// The lost part of a torn write reads back as zeros.
				got = string(bytes.TrimRight([]byte(got), "\x00"))
			}
			if len(got) < len(synced) || got != full[:len(got)] {
				t.Fatalf("seed %d %v: %q is not a prefix of %q that keeps the synced part", seed, mode, got, full)
			}
			if got != synced && got != "base|one|" && got != full {
				sawTorn = true
			}
		}
	}
	if !sawTorn {
		t.Fatal("no seed tore a write")
	}
}

func TestSameSeedSameOutcome(t *testing.T) {
	run := func() string {
		f := newFS(t, 7)
		a := create(t, f, dir+"/a")
		f.SyncDir(dir)
		for range 10 {
			write(t, a, "0123456789")
		}
		return content(t, f.Crash(faultfs.TearUnsynced), dir+"/a")
	}
	if a, b := run(), run(); a != b {
		t.Fatalf("same seed, different outcomes: %q, %q", a, b)
	}
}

func TestFailNth(t *testing.T) {
	f := newFS(t, 1)
	a := create(t, f, dir+"/a")
	f.FailNth(faultfs.OpSync, 2, nil)
	write(t, a, "one")
	mustSync(t, a.Sync())
	write(t, a, "two")
	if err := a.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("second Sync = %v, want EIO", err)
	}
	// Like Linux after a writeback error: the next fsync succeeds, but
	// the data of the failed one never reaches the disk.
	write(t, a, "three")
	mustSync(t, a.Sync())
	mustSync(t, f.SyncDir(dir))
	if got := content(t, f, dir+"/a"); got != "onetwothree" {
		t.Fatalf("reads see %q", got)
	}
	if got := content(t, f.Crash(faultfs.DropUnsynced), dir+"/a"); got != "one\x00\x00\x00three" {
		t.Fatalf("after crash %q, want the failed write lost", got)
	}
	if f.Count(faultfs.OpSync) != 3 {
		t.Fatalf("Count(OpSync) = %d", f.Count(faultfs.OpSync))
	}
}

func TestFailedWriteIsShort(t *testing.T) {
	for seed := int64(0); seed < 20; seed++ {
		f := newFS(t, seed)
		a := create(t, f, dir+"/a")
		f.FailNth(faultfs.OpWrite, 1, syscall.EIO)
		n, err := a.Write([]byte("0123456789"))
		if !errors.Is(err, syscall.EIO) || n < 0 || n > 10 {
			t.Fatalf("Write = %d, %v", n, err)
		}
		if got := content(t, f, dir+"/a"); got != "0123456789"[:n] {
			t.Fatalf("file holds %q after a short write of %d", got, n)
		}
	}
}

func TestLimitSpace(t *testing.T) {
	f := newFS(t, 1)
	a := create(t, f, dir+"/a")
	f.LimitSpace(8)
	write(t, a, "12345")
	n, err := a.Write([]byte("67890"))
	if n != 3 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Write = %d, %v; want 3, ENOSPC", n, err)
	}
	if _, err := a.Write([]byte("x")); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Write on a full disk = %v", err)
	}
	if got := content(t, f, dir+"/a"); got != "12345678" {
		t.Fatalf("file holds %q", got)
	}
}

func TestCrashAfter(t *testing.T) {
	f := newFS(t, 1)
	a := create(t, f, dir+"/a")
	f.CrashAfter(2)
	write(t, a, "one")
	mustSync(t, a.Sync())
	if _, err := a.Write([]byte("two")); !errors.Is(err, faultfs.ErrCrashed) {
		t.Fatalf("third operation = %v, want ErrCrashed", err)
	}
	if !f.PoweredOff() {
		t.Fatal("not powered off")
	}
	// The data was synced but the file's entry never was: it survives
	// only if the random prefix of directory changes includes it.
	if got := content(t, f.Crash(faultfs.TearUnsynced), dir+"/a"); got != "one" && got != "<open /d/a: no such file or directory>" {
		t.Fatalf("a = %q", got)
	}
}

func TestHookCanFailAndBlock(t *testing.T) {
	f := newFS(t, 1)
	boom := errors.New("boom")
	f.SetHook(func(op faultfs.Op, name string) error {
		if op == faultfs.OpRemove {
			return boom
		}
		return nil
	})
	create(t, f, dir+"/a")
	if err := f.Remove(dir + "/a"); !errors.Is(err, boom) {
		t.Fatalf("Remove = %v", err)
	}
}

func TestFileSemantics(t *testing.T) {
	f := newFS(t, 1)
	a := create(t, f, dir+"/a")
	write(t, a, "hello world")
	if _, err := a.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if n, err := a.Read(buf); n != 5 || err != nil || string(buf) != "hello" {
		t.Fatalf("Read = %d %v %q", n, err, buf)
	}
	if n, err := a.ReadAt(buf, 8); n != 3 || err != io.EOF {
		t.Fatalf("ReadAt past the end = %d, %v", n, err)
	}
	if err := a.Truncate(5); err != nil {
		t.Fatal(err)
	}
	if fi, err := a.Stat(); err != nil || fi.Size() != 5 || fi.Name() != "a" {
		t.Fatalf("Stat = %v, %v", fi, err)
	}
	if _, err := f.OpenFile(dir+"/a", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("O_EXCL on an existing file: %v", err)
	}
	if _, err := f.OpenFile("/nodir/a", os.O_CREATE|os.O_WRONLY, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("create in a missing directory: %v", err)
	}
	r, err := f.OpenFile(dir+"/a", os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write([]byte("x")); !errors.Is(err, syscall.EBADF) {
		t.Fatalf("write to a read-only file: %v", err)
	}
	ap, _ := f.OpenFile(dir+"/a", os.O_WRONLY|os.O_APPEND, 0)
	write(t, ap, "!")
	if got := content(t, f, dir+"/a"); got != "hello!" {
		t.Fatalf("append gave %q", got)
	}
	tr, _ := f.OpenFile(dir+"/a", os.O_WRONLY|os.O_TRUNC, 0)
	tr.Close()
	if got := content(t, f, dir+"/a"); got != "" {
		t.Fatalf("O_TRUNC left %q", got)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("second Close = %v", err)
	}
	entries, err := f.ReadDir(dir)
	if err != nil || len(entries) != 1 || entries[0].Name() != "a" {
		t.Fatalf("ReadDir = %v, %v", entries, err)
	}
}
