// Package snap writes and loads snapshots: point-in-time copies of the whole
// key space at a log sequence number S. Recovery loads the newest snapshot
// that validates and replays the log records after S.
//
// The owner goroutine freezes its state and hands a read-only Source to a
// snapshot goroutine, which calls Write. Write streams the entries to a
// temporary file through a fixed 64 KiB block buffer, so memory does not grow
// with the key space; it fsyncs the file, renames it into place and fsyncs
// the directory before it removes anything older, then keeps the newest two
// snapshots. Two, so that Load can fall back when the newest one turns out to
// be damaged; the log must therefore keep every record after the older of the
// two (see Info.Skipped), and hold them durably through the newest: the
// Snapshotter has the log fsynced through a view's seq before writing it
// (SnapshotterConfig.Sync).
//
// Load reads a file twice: once to verify it end to end without keeping
// anything, and once to hand the entries to the caller. Damage is therefore
// found before the caller has seen a single entry, and a damaged newest
// snapshot can be skipped for the one before it.
//
// All file access goes through wal.FS, so tests can inject faults.
//
// # File format
//
// A snapshot named %020d.snap (its sequence number, zero-padded so that name
// order is sequence order) holds, all fixed-width integers little-endian:
//
//	File    = Header Block* End Trailer
//
//	Header  (32 bytes)
//	   0  8  magic    "\x89KVSNAP\n"
//	   8  4  version  uint32, 1
//	  12  8  seq      uint64, the last log record the snapshot covers
//	  20  8  count    uint64, the number of entries
//	  28  4  crc      CRC-32C of bytes 0-27
//
//	Block   (8 + n bytes)
//	   0  4  n        uint32, payload length, 1 to 65536
//	   4  4  crc      CRC-32C of the 4 length bytes followed by the payload
//	   8  n  payload
//
//	End     a block header with n = 0 (its crc is that of four zero bytes)
//
//	Trailer (20 bytes)
//	   0  8  count    uint64, equal to the header's
//	   8  4  bodycrc  CRC-32C of all payload bytes, in order
//	  12  8  magic    "\x89KVSEND\n"
//
// The payloads, concatenated, are the entries; block boundaries fall at
// arbitrary bytes, so an entry may span blocks. One entry is:
//
//	uvarint  key length (at most MaxKeySize)
//	bytes    key
//	uvarint  value length (at most MaxValueSize)
//	bytes    value
//	varint   deadline: absolute expiry in Unix nanoseconds, 0 for none
//
// Why this shape:
//
//   - A block is checked against its CRC before any of its bytes is parsed,
//     so a flipped entry length is caught by the checksum instead of being
//     trusted. The decoder also bounds every length by the bytes left in the
//     file and by the per-field maximum before it allocates, because a
//     crafted file can carry valid checksums.
//   - The CRC covers the block length too, so a flipped length cannot make
//     the decoder check the wrong span of bytes and accept it.
//   - The body CRC in the trailer ties the blocks together: a block dropped,
//     duplicated or swapped with another keeps every block CRC valid but
//     changes the body CRC.
//   - The trailer repeats the count and ends in a magic, and nothing may
//     follow it, so a file cut at any offset, even at a block boundary, is
//     detected as truncated.
//   - The header carries the sequence number and count, so a file renamed to
//     the wrong name, or read for its metadata, needs no body scan to tell.
//   - Deadlines are absolute, so an entry that expired while the server was
//     down is dropped by Load instead of coming back to life.
package snap
