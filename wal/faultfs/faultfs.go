// Package faultfs is an in-memory wal.FS that injects the failures a
// storage engine must survive: lost unsynced writes, torn writes, failing
// fsyncs and writes, and a full disk. It is for tests of kvstore/wal and
// kvstore/snap.
//
// # Durability model
//
// Every file has the content reads see and the content that survives a
// crash. Write and Truncate change the first at once and are queued for
// the second; File.Sync moves the queue into the durable content. In the
// same way, creating, renaming and removing a file change the directory
// tree at once, but become durable only when SyncDir is called on a
// directory they touch (for a rename, either one). Directories made by
// MkdirAll are durable at once.
//
// Crash powers the file system off, after which every operation on it and
// on its open files fails with ErrCrashed, and returns a new FS holding
// what a reboot would find. CrashAfter schedules the power-off at a
// deterministic point: after a given number of further operations. The
// CrashMode says what happens to unsynced changes:
//
//   - DropUnsynced: all are lost.
//   - TearUnsynced: a random prefix of each file's queue survives, the
//     last surviving write possibly only in part (a torn write), and a
//     random prefix of the directory changes survives.
//   - ZeroTail: like TearUnsynced, but the lost part of a torn write reads
//     back as zeros: the file size reached the disk, its data did not, as
//     some file systems leave it.
//
// # Failures
//
// FailNth makes the nth call of an operation fail. A failed Write first
// writes a random prefix of its data (a short write). A failed Sync drops
// the file's queued changes from the durable content while reads still
// see them, as Linux does when writeback fails: a later Sync that succeeds
// does not bring them back, which is why a caller must never retry an
// fsync and trust it. LimitSpace makes writes fail with ENOSPC once a
// number of bytes have been written, after a short write of what fits.
// SetHook runs a function before every operation, to inject any other
// failure or to block an operation until a test is ready.
//
// # Reproducibility
//
// Every random choice (torn lengths, surviving prefixes, short writes)
// comes from a generator seeded by New, and the power-off point of
// CrashAfter counts operations, not time. A test that logs its seed can
// replay a failure exactly as long as its own goroutines issue the same
// operations in the same order; where goroutine scheduling varies that
// order, the seed still fixes every choice the file system makes.
package faultfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"kvstore/wal"
)

// ErrCrashed is returned by every operation after the file system has
// been powered off by Crash or CrashAfter.
var ErrCrashed = errors.New("faultfs: powered off")

// Op names an operation for FailNth, SetHook and Count.
type Op int

// Operations. Reads, Seek, Stat and Close are not counted and cannot be
// failed, except that they too fail after a power-off.
const (
	OpOpen     Op = iota + 1 // FS.OpenFile
	OpWrite                  // File.Write
	OpSync                   // File.Sync
	OpTruncate               // File.Truncate
	OpRename                 // FS.Rename
	OpRemove                 // FS.Remove
	OpMkdirAll               // FS.MkdirAll
	OpSyncDir                // FS.SyncDir
	OpReadDir                // FS.ReadDir
)

var opNames = [...]string{
	OpOpen: "open", OpWrite: "write", OpSync: "sync", OpTruncate: "truncate",
	OpRename: "rename", OpRemove: "remove", OpMkdirAll: "mkdirall",
	OpSyncDir: "syncdir", OpReadDir: "readdir",
}

// String returns the operation's name.
func (o Op) String() string {
	if o > 0 && int(o) < len(opNames) {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

// CrashMode says which unsynced changes survive a crash.
type CrashMode int

const (
	// DropUnsynced loses every change not made durable by Sync or
	// SyncDir.
	DropUnsynced CrashMode = iota
	// TearUnsynced keeps a random prefix of each file's unsynced writes,
	// the last one possibly torn, and a random prefix of the unsynced
	// directory changes.
	TearUnsynced
	// ZeroTail is TearUnsynced where the lost part of a torn write reads
	// back as zeros.
	ZeroTail
)

// String returns the mode's name.
func (m CrashMode) String() string {
	switch m {
	case DropUnsynced:
		return "drop-unsynced"
	case TearUnsynced:
		return "tear-unsynced"
	case ZeroTail:
		return "zero-tail"
	}
	return fmt.Sprintf("CrashMode(%d)", int(m))
}

// FS is an in-memory file system with fault injection. It implements
// wal.FS and is safe for concurrent use. Paths are cleaned with
// filepath.Clean; "/" and "." exist from the start.
type FS struct {
	mu      sync.Mutex
	seed    int64
	rng     *rand.Rand
	dirs    map[string]bool
	files   map[string]*inode // what lookups see
	durable map[string]*inode // what a crash keeps
	dirOps  []dirOp           // directory changes not yet durable, oldest first
	off     bool              // powered off
	crashIn int               // operations left before power-off; -1 for none
	counts  map[Op]int
	faults  []*fault
	hook    func(Op, string) error
	space   int64 // bytes writes may still add; -1 for unlimited
}

type fault struct {
	op  Op
	n   int
	err error
}

type inode struct {
	data    []byte   // what reads see
	synced  []byte   // what a crash keeps
	pending []change // changes since the last Sync, oldest first
}

// change is a Write (data at off) or, when truncate is set, a Truncate.
type change struct {
	off      int64
	data     []byte
	truncate bool
	size     int64
}

type dirOpKind int

const (
	dirCreate dirOpKind = iota
	dirRename
	dirRemove
)

type dirOp struct {
	kind     dirOpKind
	path, to string
	ino      *inode
}

// New returns an empty file system whose random choices all derive from
// seed.
func New(seed int64) *FS {
	return newFS(seed, rand.New(rand.NewPCG(uint64(seed), 0x5eed)))
}

func newFS(seed int64, rng *rand.Rand) *FS {
	return &FS{
		seed:    seed,
		rng:     rng,
		dirs:    map[string]bool{"/": true, ".": true},
		files:   map[string]*inode{},
		durable: map[string]*inode{},
		crashIn: -1,
		counts:  map[Op]int{},
		space:   -1,
	}
}

// Seed returns the seed New was given; Crash passes it on.
func (f *FS) Seed() int64 { return f.seed }

// FailNth makes the nth call of op from now on fail with err (syscall.EIO
// when err is nil). n = 1 is the next call. Each call to FailNth arms one
// failure.
func (f *FS) FailNth(op Op, n int, err error) {
	if n < 1 {
		panic("faultfs: FailNth with n < 1")
	}
	if err == nil {
		err = syscall.EIO
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, &fault{op: op, n: n, err: err})
}

// LimitSpace lets writes add at most n more bytes in total. The write
// that crosses the limit writes what fits and fails with syscall.ENOSPC,
// as do all writes after it. A negative n removes the limit.
func (f *FS) LimitSpace(n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.space = max(n, -1)
}

// SetHook installs fn to run before every counted operation with the
// operation and the path it applies to; a non-nil result fails the
// operation (a failed Write or Sync behaves as with FailNth). fn runs
// without any lock held, so it may block, e.g. to hold a Sync until a test
// has queued more work. nil removes the hook.
func (f *FS) SetHook(fn func(op Op, name string) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = fn
}

// CrashAfter powers the file system off once n more operations have run:
// operation n+1 and all later ones fail with ErrCrashed. Call Crash to
// see what survived.
func (f *FS) CrashAfter(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.crashIn = max(n, 0)
}

// Count returns how many times op has been called, failed calls included.
func (f *FS) Count(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[op]
}

// PoweredOff reports whether the file system has crashed.
func (f *FS) PoweredOff() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.off
}

// Crash powers the file system off, if CrashAfter has not already, and
// returns a new one holding what survives under mode. Open files of the
// old one fail from now on; the new one starts with no faults, hook or
// space limit, and every file in it is durable.
func (f *FS) Crash(mode CrashMode) *FS {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.off = true

	names := sortedNames(f.durable)
	durable := make(map[string]*inode, len(names))
	for _, name := range names {
		durable[name] = f.durable[name]
	}
	if mode != DropUnsynced {
		k := f.rng.IntN(len(f.dirOps) + 1)
		for _, op := range f.dirOps[:k] {
			applyDirOp(durable, op)
		}
	}

	nf := newFS(f.seed, rand.New(rand.NewPCG(f.rng.Uint64(), f.rng.Uint64())))
	for d := range f.dirs {
		nf.dirs[d] = true
	}
	recovered := map[*inode][]byte{}
	for _, name := range sortedNames(durable) {
		ino := durable[name]
		data, ok := recovered[ino]
		if !ok {
			data = f.recover(ino, mode)
			recovered[ino] = data
		}
		// Two names can share an inode only when directory changes were
		// made durable out of order; give each its own copy.
		ni := &inode{data: slices.Clone(data), synced: slices.Clone(data)}
		nf.files[name] = ni
		nf.durable[name] = ni
	}
	return nf
}

// recover returns the content of ino after a crash under mode.
func (f *FS) recover(ino *inode, mode CrashMode) []byte {
	data := slices.Clone(ino.synced)
	if mode == DropUnsynced || len(ino.pending) == 0 {
		return data
	}
	k := f.rng.IntN(len(ino.pending) + 1)
	for _, c := range ino.pending[:k] {
		data = apply(data, c)
	}
	if k < len(ino.pending) && !ino.pending[k].truncate {
		c := ino.pending[k]
		keep := f.rng.IntN(len(c.data) + 1)
		torn := change{off: c.off, data: c.data[:keep]}
		if mode == ZeroTail {
			torn.data = make([]byte, len(c.data))
			copy(torn.data, c.data[:keep])
		}
		data = apply(data, torn)
	}
	return data
}

func sortedNames(m map[string]*inode) []string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func applyDirOp(ns map[string]*inode, op dirOp) {
	switch op.kind {
	case dirCreate:
		ns[op.path] = op.ino
	case dirRename:
		delete(ns, op.path)
		ns[op.to] = op.ino
	case dirRemove:
		delete(ns, op.path)
	}
}

// apply returns b with c applied; it may reuse b's storage.
func apply(b []byte, c change) []byte {
	if c.truncate {
		if c.size <= int64(len(b)) {
			return b[:c.size]
		}
		return append(b, make([]byte, c.size-int64(len(b)))...)
	}
	end := c.off + int64(len(c.data))
	if end > int64(len(b)) {
		b = append(b, make([]byte, end-int64(len(b)))...)
	}
	copy(b[c.off:], c.data)
	return b
}

// enter runs the hook, then locks f and decides whether the operation
// fails. It always returns with f.mu held.
func (f *FS) enter(op Op, name string) error {
	f.mu.Lock()
	hook := f.hook
	f.mu.Unlock()
	var hookErr error
	if hook != nil {
		hookErr = hook(op, name)
	}
	f.mu.Lock()
	if f.off {
		return ErrCrashed
	}
	if f.crashIn == 0 {
		f.off = true
		return ErrCrashed
	}
	if f.crashIn > 0 {
		f.crashIn--
	}
	f.counts[op]++
	if hookErr != nil {
		return hookErr
	}
	var err error
	f.faults = slices.DeleteFunc(f.faults, func(ft *fault) bool {
		if ft.op != op {
			return false
		}
		ft.n--
		if ft.n == 0 && err == nil {
			err = ft.err
			return true
		}
		return false
	})
	return err
}

func pathErr(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// exists reports whether the parent of name is a directory.
func (f *FS) parentExists(name string) bool { return f.dirs[filepath.Dir(name)] }

// OpenFile opens name. It supports O_RDONLY, O_WRONLY, O_RDWR, O_CREATE,
// O_EXCL, O_TRUNC and O_APPEND; perm is ignored. Creating a file is a
// directory change: durable after SyncDir of its directory.
func (f *FS) OpenFile(name string, flag int, perm fs.FileMode) (wal.File, error) {
	err := f.enter(OpOpen, name)
	defer f.mu.Unlock()
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	clean := filepath.Clean(name)
	if f.dirs[clean] {
		return nil, pathErr("open", name, syscall.EISDIR)
	}
	if !f.parentExists(clean) {
		return nil, pathErr("open", name, syscall.ENOENT)
	}
	acc := flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
	h := &file{fs: f, name: name, append: flag&os.O_APPEND != 0,
		readable: acc == os.O_RDONLY || acc == os.O_RDWR,
		writable: acc == os.O_WRONLY || acc == os.O_RDWR}
	ino, ok := f.files[clean]
	switch {
	case ok && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, pathErr("open", name, syscall.EEXIST)
	case !ok && flag&os.O_CREATE == 0:
		return nil, pathErr("open", name, syscall.ENOENT)
	case !ok:
		ino = &inode{}
		f.files[clean] = ino
		f.dirOps = append(f.dirOps, dirOp{kind: dirCreate, path: clean, ino: ino})
	case flag&os.O_TRUNC != 0 && h.writable:
		ino.change(change{truncate: true, size: 0})
	}
	h.ino = ino
	return h, nil
}

// Rename renames a file. Durable after SyncDir of either directory.
func (f *FS) Rename(oldpath, newpath string) error {
	err := f.enter(OpRename, oldpath)
	defer f.mu.Unlock()
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	from, to := filepath.Clean(oldpath), filepath.Clean(newpath)
	ino, ok := f.files[from]
	switch {
	case !ok:
		err = syscall.ENOENT
	case f.dirs[to]:
		err = syscall.EISDIR
	case !f.parentExists(to):
		err = syscall.ENOENT
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	if from == to {
		return nil
	}
	delete(f.files, from)
	f.files[to] = ino
	f.dirOps = append(f.dirOps, dirOp{kind: dirRename, path: from, to: to, ino: ino})
	return nil
}

// Remove removes a file, durable after SyncDir of its directory, or an
// empty directory, at once.
func (f *FS) Remove(name string) error {
	err := f.enter(OpRemove, name)
	defer f.mu.Unlock()
	if err != nil {
		return pathErr("remove", name, err)
	}
	clean := filepath.Clean(name)
	if f.dirs[clean] {
		if len(f.children(clean)) > 0 {
			return pathErr("remove", name, syscall.ENOTEMPTY)
		}
		delete(f.dirs, clean)
		return nil
	}
	if _, ok := f.files[clean]; !ok {
		return pathErr("remove", name, syscall.ENOENT)
	}
	delete(f.files, clean)
	f.dirOps = append(f.dirOps, dirOp{kind: dirRemove, path: clean})
	return nil
}

// children returns the entries directly in dir, sorted by name.
func (f *FS) children(dir string) []fs.DirEntry {
	var out []fs.DirEntry
	for name, ino := range f.files {
		if filepath.Dir(name) == dir {
			out = append(out, fs.FileInfoToDirEntry(fileInfo{name: filepath.Base(name), size: int64(len(ino.data))}))
		}
	}
	for d := range f.dirs {
		if d != dir && filepath.Dir(d) == dir {
			out = append(out, fs.FileInfoToDirEntry(fileInfo{name: filepath.Base(d), dir: true}))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}

// ReadDir lists dir, sorted by name.
func (f *FS) ReadDir(dir string) ([]fs.DirEntry, error) {
	err := f.enter(OpReadDir, dir)
	defer f.mu.Unlock()
	if err != nil {
		return nil, pathErr("readdir", dir, err)
	}
	clean := filepath.Clean(dir)
	if !f.dirs[clean] {
		if _, ok := f.files[clean]; ok {
			return nil, pathErr("readdir", dir, syscall.ENOTDIR)
		}
		return nil, pathErr("readdir", dir, syscall.ENOENT)
	}
	return f.children(clean), nil
}

// MkdirAll creates dir and its parents; directories are durable at once.
func (f *FS) MkdirAll(dir string, perm fs.FileMode) error {
	err := f.enter(OpMkdirAll, dir)
	defer f.mu.Unlock()
	if err != nil {
		return pathErr("mkdir", dir, err)
	}
	var missing []string
	for d := filepath.Clean(dir); !f.dirs[d]; d = filepath.Dir(d) {
		if _, ok := f.files[d]; ok {
			return pathErr("mkdir", d, syscall.ENOTDIR)
		}
		missing = append(missing, d)
	}
	for _, d := range missing {
		f.dirs[d] = true
	}
	return nil
}

// SyncDir makes the pending creations, renames and removals in dir
// durable.
func (f *FS) SyncDir(dir string) error {
	err := f.enter(OpSyncDir, dir)
	defer f.mu.Unlock()
	if err != nil {
		return pathErr("sync", dir, err)
	}
	clean := filepath.Clean(dir)
	if !f.dirs[clean] {
		return pathErr("sync", dir, syscall.ENOENT)
	}
	f.dirOps = slices.DeleteFunc(f.dirOps, func(op dirOp) bool {
		if filepath.Dir(op.path) != clean && (op.kind != dirRename || filepath.Dir(op.to) != clean) {
			return false
		}
		applyDirOp(f.durable, op)
		return true
	})
	return nil
}

// ReadFile returns the content of name as reads see it. It is a test
// helper: it is not counted and cannot fail except after a power-off.
func (f *FS) ReadFile(name string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.off {
		return nil, pathErr("open", name, ErrCrashed)
	}
	ino, ok := f.files[filepath.Clean(name)]
	if !ok {
		return nil, pathErr("open", name, syscall.ENOENT)
	}
	return slices.Clone(ino.data), nil
}

// WriteFile replaces the content of name with data, creating it and its
// directory if needed, and makes all of it durable at once. It is a test
// helper for setting up files: it is not counted and cannot fail except
// after a power-off.
func (f *FS) WriteFile(name string, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.off {
		return pathErr("open", name, ErrCrashed)
	}
	clean := filepath.Clean(name)
	if f.dirs[clean] {
		return pathErr("open", name, syscall.EISDIR)
	}
	for d := filepath.Dir(clean); !f.dirs[d]; d = filepath.Dir(d) {
		f.dirs[d] = true
	}
	ino, ok := f.files[clean]
	if !ok {
		ino = &inode{}
		f.files[clean] = ino
	}
	ino.data = slices.Clone(data)
	ino.synced = slices.Clone(data)
	ino.pending = nil
	f.durable[clean] = ino
	return nil
}

// String describes the durable state and what is pending, for test
// failure messages.
func (f *FS) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "faultfs(seed=%d", f.seed)
	if f.off {
		b.WriteString(", powered off")
	}
	b.WriteString(")")
	for _, name := range sortedNames(f.files) {
		ino := f.files[name]
		_, durable := f.durable[name]
		fmt.Fprintf(&b, "\n  %s: %d bytes, %d synced, %d pending change(s), entry durable=%t",
			name, len(ino.data), len(ino.synced), len(ino.pending), durable)
	}
	return b.String()
}

func (ino *inode) change(c change) {
	ino.data = apply(ino.data, c)
	if !c.truncate {
		c.data = slices.Clone(c.data)
	}
	ino.pending = append(ino.pending, c)
}

// file is an open file of an FS.
type file struct {
	fs       *FS
	ino      *inode
	name     string
	off      int64
	append   bool
	readable bool
	writable bool
	closed   bool
}

// usable checks the state every operation needs; f.fs.mu must be held.
func (h *file) usable(op string, write bool) error {
	switch {
	case h.fs.off:
		return pathErr(op, h.name, ErrCrashed)
	case h.closed:
		return pathErr(op, h.name, os.ErrClosed)
	case write && !h.writable, !write && !h.readable:
		return pathErr(op, h.name, syscall.EBADF)
	}
	return nil
}

func (h *file) Read(p []byte) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.usable("read", false); err != nil {
		return 0, err
	}
	if h.off >= int64(len(h.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, h.ino.data[h.off:])
	h.off += int64(n)
	return n, nil
}

func (h *file) ReadAt(p []byte, off int64) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.usable("read", false); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, pathErr("read", h.name, syscall.EINVAL)
	}
	if off >= int64(len(h.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, h.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Write writes at the file offset, or at the end with O_APPEND.
func (h *file) Write(p []byte) (int, error) {
	err := h.fs.enter(OpWrite, h.name)
	defer h.fs.mu.Unlock()
	if errors.Is(err, ErrCrashed) {
		return 0, pathErr("write", h.name, err)
	}
	if uerr := h.usable("write", true); uerr != nil {
		return 0, uerr
	}
	n := len(p)
	if err != nil {
		n = h.fs.rng.IntN(len(p) + 1)
	} else if h.fs.space >= 0 && int64(n) > h.fs.space {
		n = int(h.fs.space)
		err = syscall.ENOSPC
	}
	if h.fs.space >= 0 {
		h.fs.space -= int64(n)
	}
	off := h.off
	if h.append {
		off = int64(len(h.ino.data))
	}
	if n > 0 {
		h.ino.change(change{off: off, data: p[:n]})
	}
	h.off = off + int64(n)
	if err != nil {
		return n, pathErr("write", h.name, err)
	}
	return n, nil
}

func (h *file) Seek(offset int64, whence int) (int64, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if h.fs.off || h.closed {
		return 0, h.usable("seek", h.writable)
	}
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = h.off + offset
	case io.SeekEnd:
		abs = int64(len(h.ino.data)) + offset
	default:
		return 0, pathErr("seek", h.name, syscall.EINVAL)
	}
	if abs < 0 {
		return 0, pathErr("seek", h.name, syscall.EINVAL)
	}
	h.off = abs
	return abs, nil
}

// Sync makes the file's queued changes durable. When it fails they are
// dropped from the durable content for good (see the package comment).
func (h *file) Sync() error {
	err := h.fs.enter(OpSync, h.name)
	defer h.fs.mu.Unlock()
	if errors.Is(err, ErrCrashed) {
		return pathErr("sync", h.name, err)
	}
	if h.closed {
		return pathErr("sync", h.name, os.ErrClosed)
	}
	if err != nil {
		h.ino.pending = nil
		return pathErr("sync", h.name, err)
	}
	for _, c := range h.ino.pending {
		h.ino.synced = apply(h.ino.synced, c)
	}
	h.ino.pending = nil
	return nil
}

func (h *file) Truncate(size int64) error {
	err := h.fs.enter(OpTruncate, h.name)
	defer h.fs.mu.Unlock()
	if errors.Is(err, ErrCrashed) {
		return pathErr("truncate", h.name, err)
	}
	if uerr := h.usable("truncate", true); uerr != nil {
		return uerr
	}
	if err != nil {
		return pathErr("truncate", h.name, err)
	}
	if size < 0 {
		return pathErr("truncate", h.name, syscall.EINVAL)
	}
	h.ino.change(change{truncate: true, size: size})
	return nil
}

func (h *file) Stat() (fs.FileInfo, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if h.fs.off || h.closed {
		return nil, h.usable("stat", h.writable)
	}
	return fileInfo{name: filepath.Base(h.name), size: int64(len(h.ino.data))}, nil
}

func (h *file) Close() error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if h.closed {
		return pathErr("close", h.name, os.ErrClosed)
	}
	h.closed = true
	if h.fs.off {
		return pathErr("close", h.name, ErrCrashed)
	}
	return nil
}

func (h *file) Name() string { return h.name }

type fileInfo struct {
	name string
	size int64
	dir  bool
}

func (fi fileInfo) Name() string { return fi.name }
func (fi fileInfo) Size() int64  { return fi.size }
func (fi fileInfo) Mode() fs.FileMode {
	if fi.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}
func (fi fileInfo) ModTime() time.Time { return time.Time{} }
func (fi fileInfo) IsDir() bool        { return fi.dir }
func (fi fileInfo) Sys() any           { return nil }

var _ wal.FS = (*FS)(nil)
