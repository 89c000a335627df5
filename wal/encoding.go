package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
)

// Frame layout (all integers little-endian):
//
//	uint32 payload length | uint32 CRC-32C of the payload | payload
//
// payload:
//
//	uint64 seq | uint8 kind | uvarint key length | key
//	[KindSet only: uvarint value length | value | int64 deadline]
const (
	// frameHeaderSize is the length and CRC in front of every payload.
	frameHeaderSize = 8
	// minPayload is the smallest payload that can be valid: a delete of
	// the empty key. Anything shorter, a zero-filled region included, is
	// rejected from its length alone.
	minPayload = 8 + 1 + 1
	// minFrame is the smallest valid frame on disk.
	minFrame = frameHeaderSize + minPayload
)

// MaxRecordBytes is the largest payload a frame may declare. Decoders
// reject larger lengths before allocating anything, so a corrupted length
// can never make recovery allocate gigabytes; the writer refuses records
// that would encode larger (see EncodedLen), which in practice bounds
// key plus value to a little under 64 MiB.
const MaxRecordBytes = 64 << 20

// Decoding errors. DecodeRecord wraps them with the check that failed.
var (
	// ErrIncomplete is returned by DecodeRecord when the input ends inside
	// a frame: the tail of a write that was torn by a crash, or a frame
	// whose length field was corrupted to point past the end of the input.
	ErrIncomplete = errors.New("wal: incomplete record")
	// ErrBadRecord is returned by DecodeRecord when a frame fails its
	// checks: impossible length (zero-filled regions included), CRC
	// mismatch, or a payload that does not parse.
	ErrBadRecord = errors.New("wal: bad record")
)

// Pre-built so that scanning garbage for the next valid frame does not
// allocate an error per byte.
var (
	errShortLength = fmt.Errorf("%w: length below minimum (zero-filled?)", ErrBadRecord)
	errLongLength  = fmt.Errorf("%w: length above MaxRecordBytes", ErrBadRecord)
	errCRC         = fmt.Errorf("%w: crc mismatch", ErrBadRecord)
	errSeqZero     = fmt.Errorf("%w: sequence number 0", ErrBadRecord)
	errKind        = fmt.Errorf("%w: unknown kind", ErrBadRecord)
	errKeyLen      = fmt.Errorf("%w: bad key length", ErrBadRecord)
	errValueLen    = fmt.Errorf("%w: bad value length", ErrBadRecord)
	errDeadline    = fmt.Errorf("%w: missing deadline", ErrBadRecord)
	errTrailing    = fmt.Errorf("%w: trailing bytes in payload", ErrBadRecord)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// payloadLen is the encoded payload size of r.
func payloadLen(r Record) int {
	n := 8 + 1 + uvarintLen(uint64(len(r.Key))) + len(r.Key)
	if r.Kind == KindSet {
		n += uvarintLen(uint64(len(r.Value))) + len(r.Value) + 8
	}
	return n
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// EncodedLen returns how many bytes AppendRecord adds for r, frame header
// included. A record is only writable when EncodedLen(r) is at most
// MaxRecordBytes plus 8; front ends can use it to reject oversized values
// before they reach the log.
func EncodedLen(r Record) int { return frameHeaderSize + payloadLen(r) }

// Fits reports whether the log can store r: its payload is at most
// MaxRecordBytes. The log fails on a record that does not fit, so callers
// check before they apply what the record describes.
func Fits(r Record) bool { return payloadLen(r) <= MaxRecordBytes }

// MaxSetValue returns the longest value a KindSet record with a keyLen-byte
// key can carry and still fit, or -1 when even an empty value does not.
func MaxSetValue(keyLen int) int {
	if keyLen < 0 || keyLen > MaxRecordBytes {
		return -1
	}
	// What is left after the seq, kind, deadline and key.
	budget := MaxRecordBytes - (8 + 1 + 8) - uvarintLen(uint64(keyLen)) - keyLen
	// The value costs its bytes plus its uvarint length.
	v := budget - 1
	for v >= 0 && v+uvarintLen(uint64(v)) > budget {
		v--
	}
	return max(v, -1)
}

// AppendRecord appends the frame of r to dst and returns the extended
// slice. Value and Deadline are encoded only for KindSet. It does not
// validate r: the writer checks Kind, Seq and size before encoding, and a
// frame with an unknown kind or a payload over MaxRecordBytes would not
// decode.
func AppendRecord(dst []byte, r Record) []byte {
	n := payloadLen(r)
	dst = slices.Grow(dst, frameHeaderSize+n)
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	dst = binary.LittleEndian.AppendUint64(dst, r.Seq)
	dst = append(dst, byte(r.Kind))
	dst = binary.AppendUvarint(dst, uint64(len(r.Key)))
	dst = append(dst, r.Key...)
	if r.Kind == KindSet {
		dst = binary.AppendUvarint(dst, uint64(len(r.Value)))
		dst = append(dst, r.Value...)
		dst = binary.LittleEndian.AppendUint64(dst, uint64(r.Deadline))
	}
	payload := dst[start+frameHeaderSize:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(payload, castagnoli))
	return dst
}

// DecodeRecord decodes the frame at the start of src. It returns the
// record and the number of bytes the frame occupies. On failure the error
// wraps ErrIncomplete (src ends before the frame does) or ErrBadRecord
// (the frame is invalid). It never panics, never reads past src, and
// allocates only the Key and Value strings, which are copies: the record
// does not alias src.
func DecodeRecord(src []byte) (Record, int, error) {
	f, n, err := decodeFrame(src)
	if err != nil {
		return Record{}, 0, err
	}
	return Record{
		Seq:      f.seq,
		Kind:     f.kind,
		Key:      string(f.key),
		Value:    string(f.value),
		Deadline: f.deadline,
	}, n, nil
}

// frame is a decoded frame whose key and value alias the input.
type frame struct {
	seq      uint64
	kind     Kind
	key      []byte
	value    []byte
	deadline int64
}

// frameLen returns the total frame length declared by a header, or 0 when
// hdr is too short to hold a length. The result is not validated.
func frameLen(hdr []byte) int64 {
	if len(hdr) < 4 {
		return 0
	}
	return frameHeaderSize + int64(binary.LittleEndian.Uint32(hdr))
}

// decodeFrame is DecodeRecord without allocations. Lengths are checked
// against the minimum, MaxRecordBytes and the available input before
// anything else, so garbage fails fast and never drives an allocation.
func decodeFrame(src []byte) (frame, int, error) {
	if len(src) < 4 {
		return frame{}, 0, ErrIncomplete
	}
	n := binary.LittleEndian.Uint32(src)
	switch {
	case n < minPayload:
		return frame{}, 0, errShortLength
	case n > MaxRecordBytes:
		return frame{}, 0, errLongLength
	case uint64(len(src)) < frameHeaderSize+uint64(n):
		return frame{}, 0, ErrIncomplete
	}
	payload := src[frameHeaderSize : frameHeaderSize+int(n)]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(src[4:]) {
		return frame{}, 0, errCRC
	}
	f, err := parsePayload(payload)
	if err != nil {
		return frame{}, 0, err
	}
	return f, frameHeaderSize + int(n), nil
}

func parsePayload(p []byte) (frame, error) {
	var f frame
	// len(p) >= minPayload was checked by the caller.
	f.seq = binary.LittleEndian.Uint64(p)
	if f.seq == 0 {
		return frame{}, errSeqZero
	}
	f.kind = Kind(p[8])
	p = p[9:]
	var ok bool
	if f.key, p, ok = lengthPrefixed(p); !ok {
		return frame{}, errKeyLen
	}
	switch f.kind {
	case KindSet:
		if f.value, p, ok = lengthPrefixed(p); !ok {
			return frame{}, errValueLen
		}
		if len(p) < 8 {
			return frame{}, errDeadline
		}
		f.deadline = int64(binary.LittleEndian.Uint64(p))
		p = p[8:]
	case KindDelete:
	default:
		return frame{}, errKind
	}
	if len(p) != 0 {
		return frame{}, errTrailing
	}
	return f, nil
}

// lengthPrefixed splits a uvarint-prefixed byte string off p.
func lengthPrefixed(p []byte) (s, rest []byte, ok bool) {
	n, k := binary.Uvarint(p)
	if k <= 0 || n > uint64(len(p)-k) {
		return nil, nil, false
	}
	end := k + int(n)
	return p[k:end:end], p[end:], true
}
