package wal

import (
	"os"
	"syscall"
)

// fdatasync flushes data and the metadata needed to read it back (the file
// size), skipping timestamps: cheaper than fsync with the same guarantee
// for appends.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
