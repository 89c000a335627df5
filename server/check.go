package server

import (
	"fmt"
	"io"

	"kvstore/snap"
	"kvstore/wal"
)

// CheckLogOptions configures CheckLog.
type CheckLogOptions struct {
	// Fix makes the repairs; Force lets them drop acknowledged records
	// the snapshot does not cover (see wal.Check).
	Fix, Force bool
}

// CheckLog is `kvstore-server aof check [--fix [--force]]`: wal.Check of
// the log in dataDir on the OS file system, measured against the snapshot
// that start-up would load (snap.Pick), so that the report tells the
// records start-up needs from those the snapshot already holds. With Fix
// it first takes the data dir's lock, since repairing a log under a
// running server would corrupt it. A snapshot dir that start-up would
// refuse (every snapshot damaged, or one that cannot be read) is an
// error.
func CheckLog(dataDir string, opts CheckLogOptions, w io.Writer) (wal.CheckResult, error) {
	if opts.Fix {
		lock, err := wal.LockDir(dataDir)
		if err != nil {
			return wal.CheckResult{}, err
		}
		defer lock.Release()
	}
	info, err := snap.Pick(wal.OS, snapDir(dataDir))
	if err != nil {
		return wal.CheckResult{}, fmt.Errorf("pick the snapshot start-up loads: %w", err)
	}
	for _, err := range info.Skipped {
		fmt.Fprintf(w, "note: start-up skips a damaged snapshot: %v\n", err)
	}
	return wal.Check(wal.OS, walDir(dataDir), wal.CheckOptions{
		Covered:  info.Seq,
		Snapshot: info.Path,
		Fix:      opts.Fix,
		Force:    opts.Force,
	}, w)
}
