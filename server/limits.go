package server

import (
	"fmt"

	"kvstore/actor"
	"kvstore/snap"
	"kvstore/wal"
)

// maxValue is the longest value a Set with a keyLen-byte key may have and
// still fit one log record and one snapshot entry, -1 if no Set with such
// a key can be stored.
func maxValue(keyLen int) int {
	if keyLen > snap.MaxKeySize {
		return -1
	}
	return min(wal.MaxSetValue(keyLen), snap.MaxValueSize)
}

// checkStorable reports whether every Set the given limits admit can be
// stored: a maxKeyBytes key with a maxValueBytes value and a deadline
// must fit in one log record and one snapshot entry. Otherwise the error,
// wrapping actor.ErrTooLarge, names the largest value size that fits with
// maxKeyBytes keys. The limits go to the fronts and to the actor's Rules,
// so a command past them is refused as bad input before it is applied,
// and a command within them can never fail the log or a snapshot.
func checkStorable(maxKeyBytes, maxValueBytes int) error {
	if maxKeyBytes < 0 || maxValueBytes < 0 {
		return fmt.Errorf("limits must not be negative: %d-byte keys, %d-byte values", maxKeyBytes, maxValueBytes)
	}
	fit := maxValue(maxKeyBytes)
	switch {
	case fit < 0:
		return fmt.Errorf("%w: a %d-byte key cannot be stored (the log and snapshots hold keys of at most %d bytes)",
			actor.ErrTooLarge, maxKeyBytes, min(snap.MaxKeySize, largestKey()))
	case maxValueBytes > fit:
		return fmt.Errorf("%w: a %d-byte key with a %d-byte value does not fit in a log record or snapshot entry; with %d-byte keys the largest value that fits is %d bytes",
			actor.ErrTooLarge, maxKeyBytes, maxValueBytes, maxKeyBytes, fit)
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
