package wal

import (
	"io"
	"io/fs"
	"os"
)

// FS is the file-system layer under the log and the snapshots. Production
// uses OS; tests inject faults (lost unsynced writes, torn writes, failing
// fsyncs) through another implementation.
type FS interface {
	// OpenFile opens name like os.OpenFile.
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	// Rename renames oldpath to newpath like os.Rename.
	Rename(oldpath, newpath string) error
	// Remove removes name like os.Remove.
	Remove(name string) error
	// ReadDir lists dir like os.ReadDir, sorted by name.
	ReadDir(dir string) ([]fs.DirEntry, error)
	// MkdirAll creates dir and its parents like os.MkdirAll.
	MkdirAll(dir string, perm fs.FileMode) error
	// SyncDir makes the directory entries of dir (creations, renames,
	// removals) durable.
	SyncDir(dir string) error
}

// File is an open file of an FS.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.Seeker
	io.Closer
	// Sync makes everything written so far durable (fdatasync where the
	// platform has it).
	Sync() error
	// Truncate changes the size of the file.
	Truncate(size int64) error
	// Stat returns the file's metadata.
	Stat() (fs.FileInfo, error)
	// Name returns the name the file was opened with.
	Name() string
}

// OS is the FS of the operating system.
var OS FS = osFS{}

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Rename(oldpath, newpath string) error      { return os.Rename(oldpath, newpath) }
func (osFS) Remove(name string) error                  { return os.Remove(name) }
func (osFS) ReadDir(dir string) ([]fs.DirEntry, error) { return os.ReadDir(dir) }
func (osFS) MkdirAll(dir string, perm fs.FileMode) error {
	return os.MkdirAll(dir, perm)
}

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}

// osFile uses fdatasync: it covers the data and the size, the only
// metadata a segment's reader needs.
type osFile struct{ *os.File }

func (f osFile) Sync() error { return fdatasync(f.File) }
