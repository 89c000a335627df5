package actor

import (
	"errors"
	"fmt"

	"kvstore/snap"
	"kvstore/wal"
)

// ErrTooLarge is returned for a request with a Set or Delete whose log
// record would exceed wal.MaxRecordBytes, or whose key or value exceeds a
// snapshot entry's limits (snap.MaxKeySize, snap.MaxValueSize); no command
// of that request is applied. Storing it would fail the log, or every
// later snapshot, for good.
var ErrTooLarge = errors.New("actor: command too large to store")

// checkSize refuses a mutation that the log or a snapshot could not hold.
func checkSize(c *Command) error {
	rec := wal.Record{Kind: wal.KindDelete, Key: c.Key}
	if c.Op == OpSet {
		rec.Kind, rec.Value = wal.KindSet, c.Value
	}
	switch {
	case len(c.Key) > snap.MaxKeySize:
		return fmt.Errorf("%w: %d-byte key (at most %d)", ErrTooLarge, len(c.Key), snap.MaxKeySize)
	case len(rec.Value) > snap.MaxValueSize:
		return fmt.Errorf("%w: %d-byte value (at most %d)", ErrTooLarge, len(rec.Value), snap.MaxValueSize)
	case !wal.Fits(rec):
		return fmt.Errorf("%w: %d-byte key and %d-byte value exceed a log record (at most %d bytes of value with this key)",
			ErrTooLarge, len(c.Key), len(rec.Value), max(0, maxValue(len(c.Key))))
	}
	return nil
}

// maxValue is the longest value a Set with a keyLen-byte key may have,
// -1 if no Set with such a key can be stored.
func maxValue(keyLen int) int {
	if keyLen > snap.MaxKeySize {
		return -1
	}
	return min(wal.MaxSetValue(keyLen), snap.MaxValueSize)
}

// CheckLimits reports whether every Set the given limits admit can be
// stored: a maxKeyBytes key with a maxValueBytes value and a deadline
// must fit in one log record and one snapshot entry. Otherwise the error,
// wrapping ErrTooLarge, names the largest value size that fits with
// maxKeyBytes keys. A server checks its configured limits with it at
// startup, so that oversized writes are refused as bad input by the
// fronts rather than by the actor.
func CheckLimits(maxKeyBytes, maxValueBytes int) error {
	if maxKeyBytes < 0 || maxValueBytes < 0 {
		return fmt.Errorf("limits must not be negative: %d-byte keys, %d-byte values", maxKeyBytes, maxValueBytes)
	}
	fit := maxValue(maxKeyBytes)
	switch {
	case fit < 0:
		return fmt.Errorf("%w: a %d-byte key cannot be stored (the log and snapshots hold keys of at most %d bytes)",
			ErrTooLarge, maxKeyBytes, min(snap.MaxKeySize, largestKey()))
	case maxValueBytes > fit:
		return fmt.Errorf("%w: a %d-byte key with a %d-byte value does not fit in a log record or snapshot entry; with %d-byte keys the largest value that fits is %d bytes",
			ErrTooLarge, maxKeyBytes, maxValueBytes, maxKeyBytes, fit)
	}
	return nil
}

// largestKey is the longest key a Set with an empty value may have in a
// log record.
func largestKey() int {
	k := wal.MaxRecordBytes
	for k > 0 && wal.MaxSetValue(k) < 0 {
		k--
	}
	return k
}
