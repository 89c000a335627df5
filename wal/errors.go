package wal

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
)

// Errors of the writer.
var (
	// ErrClosed is returned (through Waiter.Complete) for batches submitted
	// after Close, or before Start to a log that was then closed.
	ErrClosed = errors.New("wal: log closed")
	// ErrFailed is returned when a write or fsync of the log failed: the
	// error wrapping it names the file and the operation. The failure is
	// sticky, every later batch gets it too, and only a restart (which
	// recovers from what is on disk) clears it.
	ErrFailed = errors.New("wal: log failed, writes refused until restart")
	// ErrOutcomeUnknown is returned, wrapped with the log's failure, to
	// the waiters of a group that was written, in part or whole, but
	// neither made durable nor cut off the segment again: its records may
	// or may not be in the log after a restart. Without it, a group the
	// log failed on is not in the log, whatever a later restart finds.
	ErrOutcomeUnknown = errors.New("wal: outcome unknown, the records may be on disk")
)

// Errors of recovery.
var (
	// ErrGap is returned by Replay when the sequence numbers in the log do
	// not continue one by one from the point replay started at: records
	// are missing, so replaying further would build a wrong state.
	ErrGap = errors.New("wal: gap in sequence numbers")
)

// CorruptError is returned by Open (and reported by Check and Dump) when
// the log holds a bad frame that Open does not repair by itself: one
// whose repair would drop records that the snapshot recovery loaded does
// not cover (a bad frame followed by valid records above it, or in a
// segment that is not the last). The server must not start over such a
// log, since those records would be silently dropped; the operator
// decides, with `kvstore-server aof check`, which says what a repair
// drops.
type CorruptError struct {
	// File is the path of the segment.
	File string
	// Offset is where the bad frame starts in File.
	Offset int64
	// Err says what is wrong; it wraps ErrBadRecord or ErrIncomplete when
	// a frame failed to decode.
	Err error
	// Repair, when set, says what the repair would do and drop.
	Repair string
}

// Error names the file, the offset, what a repair would drop and the
// command that shows it. The data directory in the command is the parent
// of the log directory, which is how the server lays them out.
func (e *CorruptError) Error() string {
	dataDir := filepath.Dir(filepath.Dir(e.File))
	repair := ""
	if e.Repair != "" {
		repair = "; the repair would " + e.Repair
	}
	return fmt.Sprintf("wal: corrupt log %s at offset %d: %v%s; run: kvstore-server aof check --data-dir %s "+
		"(it says what a repair drops; --fix --force makes it, keeping the cut bytes in .broken files)",
		e.File, e.Offset, e.Err, repair, dataDir)
}

// Unwrap returns Err.
func (e *CorruptError) Unwrap() error { return e.Err }

// bare strips the *fs.PathError that os-style files put around errors, so
// messages that already name the operation and file do not name them
// twice. errors.Is still sees the underlying errno.
func bare(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
