// Package wal is kvstore's write-ahead log: every mutation the actor
// applies is appended here, in sequence order, and its reply waits until
// the record is durable.
//
// # Format
//
// The log is a directory of segment files named by the sequence number of
// their first record, %020d.wal, so that name order is log order. A
// segment is a plain concatenation of frames, with no file header:
//
//	uint32 payload length | uint32 CRC-32C (Castagnoli) of payload | payload
//
//	payload: uint64 seq | uint8 kind | uvarint len | key
//	         [KindSet: uvarint len | value | int64 deadline (Unix ns, 0 = none)]
//
// Integers are little-endian. Seqs start at 1 and grow by one with no
// gaps; within a segment the first record's seq is the one in the file
// name. A payload is at least 10 bytes and at most MaxRecordBytes, so a
// zero-filled region (length 0) never decodes, and a corrupted length
// never makes a reader allocate more than the file holds. New kinds are
// how the format evolves; old readers reject them as bad records rather
// than misread them.
//
// # Recovery
//
// Open reads every segment. Zeros from the end of the records to the end
// of a file are space the writer preallocated (see Preallocation) and
// are kept for later appends. A crash in the middle of an append leaves
// the last segment with a torn tail: a bad frame followed by no valid
// frame. Open copies such a tail to <segment>.broken (fsynced) and cuts
// it, with a warning, which says when the frame looks like corruption
// rather than a torn write (it is all there, and no sector of it reads
// back as zeros).
//
// Any other bad frame (one followed by a valid frame, or one in a
// segment that is not the last) is damage, and what it costs depends on
// the snapshot recovery loaded (Options.Covered): the planner in
// repair.go reads each segment as runs of valid frames and works out the
// seqs lost and the records a repair drops. Damage confined to seqs the
// snapshot holds is repaired by Open, with a warning: a segment whose
// every seq is covered is renamed to .broken, and one whose damage is
// covered but not the records after it is rewritten from the first
// valid record after the damage. Damage whose repair would drop records
// above the snapshot makes Open fail with a *CorruptError, changing
// nothing; Check reports it with exactly what the repair drops and makes
// it only with Force. Replay then feeds the records after the snapshot's
// seq to the actor and fails with ErrGap on a missing seq, which Check
// also reports.
//
// Before a new segment is created the previous one is trimmed to its
// records and fsynced, whatever the policy, and creating a segment fsyncs
// the directory; so only the last segment can ever have a torn tail, and
// a crash under any policy leaves a log that Open accepts.
//
// # Preallocation
//
// The writer keeps the active segment zero-filled ahead of its records, 1
// MiB at a time (Options.PreallocBytes), and writes records over the
// zeros. An fdatasync after an append that grew the file must also write
// the inode (its size); after an overwrite inside the file it flushes the
// data alone. On ext4 without a journal, as on this project's benchmark
// machine, the inode write is a second synchronous write per fsync, and
// preallocation raised fsync=always set throughput by 5-15 % in A/B runs (docs/
// BENCHMARKS.md). It is the technique of PostgreSQL's zero-filled WAL
// segments; fallocate alone is not enough, as writing into an unwritten
// extent changes metadata too.
//
// # Group commit
//
// The actor hands the writer a Batch (records plus the replies that wait
// on them) with Submit, which only appends to a queue under a mutex and
// pokes a 1-buffered channel: it never waits for the disk. The writer
// goroutine takes every queued batch at once, encodes all their records
// into one buffer, issues one Write and, under FsyncAlways, one fsync,
// then releases the waiters in submission order. Batches submitted
// meanwhile form the next group. So the number of fsyncs depends on how
// long an fsync takes, not on the request rate: more concurrent clients
// means more records per fsync. A batch with no records is a read
// barrier: its waiters are released with the group it lands in, after
// every earlier record is durable.
//
// # Fsync policies
//
//   - FsyncAlways (default): waiters are released after the fsync. An
//     acknowledged write survives power loss.
//   - FsyncEverySec: waiters are released after the write; a ticker of
//     Options.Clock fsyncs once a second (inline on the writer, which
//     holds later groups for the duration of that fsync). A power cut
//     loses at most about one second of acknowledged writes; a process
//     crash loses none, since written data is in the page cache.
//   - FsyncNo: waiters are released after the write; the writer fsyncs
//     only when it finishes a segment and at Close.
//
// DurableSeq follows the policy: under FsyncEverySec and FsyncNo it
// advances when a group is written, as that is when its waiters are
// released. SyncThrough is the fsync itself, whatever the policy: the
// snapshot path calls it before writing a snapshot, so that no snapshot
// covers records a power cut can still take from the log.
//
// # Failures
//
// A failed write or fsync is final: the log records it (Err), logs it once,
// releases every queued and every later batch with an error wrapping
// ErrFailed that names the operation and the file, and never writes
// again. It never retries an fsync: after a failed one, Linux may have
// dropped the dirty pages, and a second fsync would report success for
// data that is not on disk. The group the log failed on was not
// persisted, and the log makes that true: it truncates what it wrote of
// the group back off the segment and fsyncs the truncation (trusting that
// fsync for the new size only), so neither a restart nor a power cut
// replays records whose callers were told they failed. If that cut fails
// too, the group's waiters get ErrOutcomeUnknown with the failure: their
// records may be found at the next start. Options.OnFail hears of the
// failure before any waiter does. The process keeps serving reads;
// restarting it recovers from what is on disk.
//
// # Deleting old segments
//
// Compact, called once a snapshot covering a seq is durable, deletes the
// segments whose records are all at or below it, never the one being
// written, and fsyncs the directory.
package wal
