package snap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
)

const (
	formatVersion   = 1
	headerSize      = 32
	frameHeaderSize = 8
	trailerSize     = 20
	// blockSize bounds a block's payload: the memory Write and Load hold
	// besides the entry in hand, and the span one checksum covers.
	blockSize = 64 << 10
	// minFileSize is a snapshot with no entries: header, end, trailer.
	minFileSize = headerSize + frameHeaderSize + trailerSize
	// minEntrySize is an entry with an empty key, an empty value and no
	// deadline: three one-byte varints. It bounds the count a file of a
	// given size can honestly claim.
	minEntrySize = 3
)

var (
	magic    = [8]byte{0x89, 'K', 'V', 'S', 'N', 'A', 'P', '\n'}
	endMagic = [8]byte{0x89, 'K', 'V', 'S', 'E', 'N', 'D', '\n'}

	castagnoli = crc32.MakeTable(crc32.Castagnoli)
	// endCRC is the checksum of the end marker, a block header with
	// length 0.
	endCRC = crc32.Checksum(make([]byte, 4), castagnoli)
)

// header is the fixed-size start of a snapshot file.
type header struct {
	seq   uint64
	count uint64
}

func appendHeader(b []byte, h header) []byte {
	start := len(b)
	b = append(b, magic[:]...)
	b = binary.LittleEndian.AppendUint32(b, formatVersion)
	b = binary.LittleEndian.AppendUint64(b, h.seq)
	b = binary.LittleEndian.AppendUint64(b, h.count)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

func appendEnd(b []byte, count uint64, bodyCRC uint32) []byte {
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, endCRC)
	b = binary.LittleEndian.AppendUint64(b, count)
	b = binary.LittleEndian.AppendUint32(b, bodyCRC)
	return append(b, endMagic[:]...)
}

// frameCRC is a block's checksum: it covers the length as well as the
// payload, so a damaged length cannot point the check at the wrong bytes.
func frameCRC(lenBytes, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(lenBytes, castagnoli), castagnoli, payload)
}

// encoder writes a snapshot to w one block at a time. buf is the only
// buffer: entries are appended to it until the block is full, then the
// block goes out in one write. A bufio.Writer on top would only add a copy,
// since every write but the header and trailer is a whole block.
type encoder struct {
	w     io.Writer
	buf   []byte // frame header space, then the payload so far
	limit int    // payload bytes per block; smaller in tests for many blocks
	body  uint32 // CRC-32C of every payload byte flushed so far
	n     int64  // bytes written
	count uint64 // entries encoded
}

func newEncoder(w io.Writer, limit int) *encoder {
	return &encoder{w: w, buf: make([]byte, frameHeaderSize, frameHeaderSize+limit), limit: limit}
}

func (e *encoder) write(p []byte) error {
	n, err := e.w.Write(p)
	e.n += int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return err
}

func (e *encoder) header(seq, count uint64) error {
	var b [headerSize]byte
	return e.write(appendHeader(b[:0], header{seq: seq, count: count}))
}

func (e *encoder) room() int { return frameHeaderSize + e.limit - len(e.buf) }

func (e *encoder) flush() error {
	payload := e.buf[frameHeaderSize:]
	if len(payload) == 0 {
		// An empty block would read back as the end marker.
		return nil
	}
	binary.LittleEndian.PutUint32(e.buf[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(e.buf[4:8], frameCRC(e.buf[0:4], payload))
	e.body = crc32.Update(e.body, castagnoli, payload)
	err := e.write(e.buf)
	e.buf = e.buf[:frameHeaderSize]
	return err
}

func appendPayload[T string | []byte](e *encoder, p T) error {
	for len(p) > 0 {
		if e.room() == 0 {
			if err := e.flush(); err != nil {
				return err
			}
		}
		n := min(len(p), e.room())
		e.buf = append(e.buf, p[:n]...)
		p = p[n:]
	}
	return nil
}

func (e *encoder) uvarint(v uint64) error {
	if e.room() >= binary.MaxVarintLen64 {
		e.buf = binary.AppendUvarint(e.buf, v)
		return nil
	}
	var b [binary.MaxVarintLen64]byte
	return appendPayload(e, binary.AppendUvarint(b[:0], v))
}

func (e *encoder) varint(v int64) error {
	if e.room() >= binary.MaxVarintLen64 {
		e.buf = binary.AppendVarint(e.buf, v)
		return nil
	}
	var b [binary.MaxVarintLen64]byte
	return appendPayload(e, binary.AppendVarint(b[:0], v))
}

func (e *encoder) entry(key, value string, deadline int64) error {
	// Checked here rather than left to Load: a snapshot Load would reject
	// must never be written.
	if len(key) > MaxKeySize {
		return fmt.Errorf("%w: key of %d bytes (max %d)", ErrTooLarge, len(key), MaxKeySize)
	}
	if len(value) > MaxValueSize {
		return fmt.Errorf("%w: value of %d bytes for key %.64q (max %d)", ErrTooLarge, len(value), key, MaxValueSize)
	}
	if err := e.uvarint(uint64(len(key))); err != nil {
		return err
	}
	if err := appendPayload(e, key); err != nil {
		return err
	}
	if err := e.uvarint(uint64(len(value))); err != nil {
		return err
	}
	if err := appendPayload(e, value); err != nil {
		return err
	}
	if err := e.varint(deadline); err != nil {
		return err
	}
	e.count++
	return nil
}

func (e *encoder) finish() error {
	if err := e.flush(); err != nil {
		return err
	}
	var b [frameHeaderSize + trailerSize]byte
	return e.write(appendEnd(b[:0], e.count, e.body))
}

// encode writes src as a snapshot at seq to w, calling src.Range once.
func encode(w io.Writer, seq uint64, src Source, limit int) (*encoder, error) {
	n := src.Len()
	if n < 0 {
		return nil, fmt.Errorf("%w: Len returned %d", ErrSourceLen, n)
	}
	want := uint64(n)
	e := newEncoder(w, limit)
	if err := e.header(seq, want); err != nil {
		return e, err
	}
	var err error
	src.Range(func(key, value string, deadline int64) bool {
		if e.count == want {
			// The header already promised want entries.
			err = fmt.Errorf("%w: Len returned %d but Range visits more", ErrSourceLen, want)
			return false
		}
		err = e.entry(key, value, deadline)
		return err == nil
	})
	if err != nil {
		return e, err
	}
	if e.count != want {
		return e, fmt.Errorf("%w: Len returned %d but Range visited %d", ErrSourceLen, want, e.count)
	}
	return e, e.finish()
}

// decoder reads a snapshot through ReadAt, one verified block at a time.
// No byte of a block is parsed before the block's checksum matched, and no
// length is used before it was checked against what the file can hold.
type decoder struct {
	r    io.ReaderAt
	size int64  // file size; nothing past it is read
	off  int64  // file offset of the next frame
	buf  []byte // holds the current frame
	blk  []byte // unread verified payload of the current block
	done bool   // the end marker has been read
	body uint32 // CRC-32C of every payload byte read so far
}

// corruptf returns an error at the current read position.
func (d *decoder) corruptf(kind error, format string, args ...any) error {
	return fmt.Errorf("offset %d: %w: %s", d.pos(), kind, fmt.Sprintf(format, args...))
}

// pos is the file offset of the next unread byte.
func (d *decoder) pos() int64 { return d.off - int64(len(d.blk)) }

// readAt fills p from off. The file was measured before reading, so
// running out of bytes means it shrank underneath us: truncation.
func (d *decoder) readAt(p []byte, off int64) error {
	n, err := d.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("offset %d: %w: read %d of %d bytes", off, ErrTruncated, n, len(p))
	}
	return fmt.Errorf("offset %d: read: %w", off, err)
}

func (d *decoder) header() (header, error) {
	var b [headerSize]byte
	n := min(int64(len(b)), d.size)
	if err := d.readAt(b[:n], 0); err != nil {
		return header{}, err
	}
	if n >= int64(len(magic)) && [8]byte(b[:8]) != magic {
		return header{}, fmt.Errorf("offset 0: %w: bad magic %q, not a snapshot", ErrCorrupt, b[:8])
	}
	if d.size < minFileSize {
		return header{}, fmt.Errorf("offset 0: %w: file is %d bytes, an empty snapshot has %d", ErrTruncated, d.size, minFileSize)
	}
	// The version is checked before the CRC: another version may lay the
	// header out differently. Load stops at ErrVersion rather than skip
	// the file, so only a version some build may write gets it: no build
	// writes 0, which is a zeroed or flipped field, that is, damage.
	switch v := binary.LittleEndian.Uint32(b[8:12]); v {
	case formatVersion:
	case 0:
		return header{}, fmt.Errorf("offset 8: %w: version 0", ErrCorrupt)
	default:
		return header{}, fmt.Errorf("offset 8: %w: version %d, want %d", ErrVersion, v, formatVersion)
	}
	if got, want := binary.LittleEndian.Uint32(b[28:32]), crc32.Checksum(b[:28], castagnoli); got != want {
		return header{}, fmt.Errorf("offset 28: %w: header crc %#08x, computed %#08x", ErrChecksum, got, want)
	}
	h := header{
		seq:   binary.LittleEndian.Uint64(b[12:20]),
		count: binary.LittleEndian.Uint64(b[20:28]),
	}
	if body := uint64(d.size - minFileSize); h.count > body/minEntrySize {
		return header{}, fmt.Errorf("offset 20: %w: %d entries need at least %d bytes, the file has %d",
			ErrTruncated, h.count, satMul(h.count, minEntrySize)+minFileSize, d.size)
	}
	d.off = headerSize
	return h, nil
}

func satMul(a, b uint64) uint64 {
	if a != 0 && a*b/a != b {
		return ^uint64(0)
	}
	return a * b
}

// nextBlock reads and verifies the frame at d.off. It must only be called
// once the current block is used up.
func (d *decoder) nextBlock() error {
	left := d.size - d.off
	if left < frameHeaderSize+trailerSize {
		return fmt.Errorf("offset %d: %w: %d bytes left, the end needs %d", d.off, ErrTruncated, left, frameHeaderSize+trailerSize)
	}
	if d.buf == nil {
		d.buf = make([]byte, frameHeaderSize+blockSize)
	}
	if err := d.readAt(d.buf[:frameHeaderSize], d.off); err != nil {
		return err
	}
	n := int64(binary.LittleEndian.Uint32(d.buf[0:4]))
	if n > blockSize {
		return fmt.Errorf("offset %d: %w: block length %d exceeds %d", d.off, ErrCorrupt, n, blockSize)
	}
	if n > 0 && frameHeaderSize+n+frameHeaderSize+trailerSize > left {
		return fmt.Errorf("offset %d: %w: block of %d bytes, only %d bytes left", d.off, ErrTruncated, n, left)
	}
	frame := d.buf[:frameHeaderSize+n]
	if err := d.readAt(frame[frameHeaderSize:], d.off+frameHeaderSize); err != nil {
		return err
	}
	payload := frame[frameHeaderSize:]
	if got, want := binary.LittleEndian.Uint32(frame[4:8]), frameCRC(frame[0:4], payload); got != want {
		return fmt.Errorf("offset %d: %w: block crc %#08x, computed %#08x", d.off, ErrChecksum, got, want)
	}
	d.off += int64(len(frame))
	if n == 0 {
		d.done = true
		return nil
	}
	d.body = crc32.Update(d.body, castagnoli, payload)
	d.blk = payload
	return nil
}

// fill makes d.blk non-empty, reading the next block if needed.
func (d *decoder) fill() error {
	if len(d.blk) > 0 {
		return nil
	}
	if d.done {
		return d.corruptf(ErrCorrupt, "entries end in the middle of an entry")
	}
	if err := d.nextBlock(); err != nil {
		return err
	}
	if d.done {
		return d.corruptf(ErrCorrupt, "entries end in the middle of an entry")
	}
	return nil
}

// remaining bounds the payload bytes the rest of the file can hold.
func (d *decoder) remaining() uint64 {
	n := uint64(len(d.blk))
	if !d.done {
		if rest := d.size - d.off - frameHeaderSize - frameHeaderSize - trailerSize; rest > 0 {
			n += uint64(rest)
		}
	}
	return n
}

// rawVarint returns the bytes of the varint at the read position, which may
// span blocks. tmp backs the result when it does.
func (d *decoder) rawVarint(tmp *[binary.MaxVarintLen64]byte) ([]byte, error) {
	if err := d.fill(); err != nil {
		return nil, err
	}
	for i, c := range d.blk {
		if c < 0x80 {
			v := d.blk[:i+1]
			d.blk = d.blk[i+1:]
			return v, nil
		}
		if i+1 == len(tmp) {
			break
		}
	}
	start := d.pos()
	for i := range tmp {
		if err := d.fill(); err != nil {
			return nil, err
		}
		tmp[i] = d.blk[0]
		d.blk = d.blk[1:]
		if tmp[i] < 0x80 {
			return tmp[:i+1], nil
		}
	}
	return nil, fmt.Errorf("offset %d: %w: varint longer than %d bytes", start, ErrCorrupt, len(tmp))
}

func (d *decoder) uvarint() (uint64, error) {
	var tmp [binary.MaxVarintLen64]byte
	start := d.pos()
	b, err := d.rawVarint(&tmp)
	if err != nil {
		return 0, err
	}
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, fmt.Errorf("offset %d: %w: varint overflows 64 bits", start, ErrCorrupt)
	}
	return v, nil
}

func (d *decoder) varint() (int64, error) {
	var tmp [binary.MaxVarintLen64]byte
	start := d.pos()
	b, err := d.rawVarint(&tmp)
	if err != nil {
		return 0, err
	}
	v, n := binary.Varint(b)
	if n <= 0 {
		return 0, fmt.Errorf("offset %d: %w: varint overflows 64 bits", start, ErrCorrupt)
	}
	return v, nil
}

// field reads a length-prefixed key or value. With keep false it only
// skips the bytes, so verifying allocates nothing per entry.
func (d *decoder) field(what string, max uint64, keep bool) (string, error) {
	start := d.pos()
	n, err := d.uvarint()
	if err != nil {
		return "", err
	}
	if n > max {
		return "", fmt.Errorf("offset %d: %w: %s length %d exceeds %d", start, ErrCorrupt, what, n, max)
	}
	if left := d.remaining(); n > left {
		// The block holding the length passed its checksum, so a file
		// too short for it was most likely cut off.
		return "", fmt.Errorf("offset %d: %w: %s length %d, at most %d bytes left", start, ErrTruncated, what, n, left)
	}
	if n == 0 {
		return "", nil
	}
	if keep && n <= uint64(len(d.blk)) {
		s := string(d.blk[:n])
		d.blk = d.blk[n:]
		return s, nil
	}
	var sb strings.Builder
	if keep {
		sb.Grow(int(n))
	}
	for n > 0 {
		if err := d.fill(); err != nil {
			return "", err
		}
		k := min(n, uint64(len(d.blk)))
		if keep {
			sb.Write(d.blk[:k])
		}
		d.blk = d.blk[k:]
		n -= k
	}
	return sb.String(), nil
}

// decoded is the header of a file read to the end, and the body checksum
// its trailer holds.
type decoded struct {
	header
	body uint32
}

// decode reads and checks a whole snapshot of the given size. check, if
// not nil, vets the header before any entry is read. fn, if not nil, gets
// every entry in file order; with keep false it gets only the deadlines
// (key and value are "") and nothing is allocated for them.
func decode(r io.ReaderAt, size int64, check func(header) error, keep bool, fn func(key, value string, deadline int64) error) (decoded, error) {
	d := &decoder{r: r, size: size}
	h, err := d.header()
	if err != nil {
		return decoded{}, err
	}
	if check != nil {
		if err := check(h); err != nil {
			return decoded{}, err
		}
	}
	for i := uint64(0); i < h.count; i++ {
		key, err := d.field("key", MaxKeySize, keep)
		if err != nil {
			return decoded{}, err
		}
		value, err := d.field("value", MaxValueSize, keep)
		if err != nil {
			return decoded{}, err
		}
		deadline, err := d.varint()
		if err != nil {
			return decoded{}, err
		}
		if fn != nil {
			if err := fn(key, value, deadline); err != nil {
				return decoded{}, &callerError{err}
			}
		}
	}
	if len(d.blk) > 0 {
		return decoded{}, d.corruptf(ErrCorrupt, "%d payload bytes after entry %d of %d", len(d.blk), h.count, h.count)
	}
	if !d.done {
		if err := d.nextBlock(); err != nil {
			return decoded{}, err
		}
		if !d.done {
			return decoded{}, fmt.Errorf("offset %d: %w: block after entry %d of %d", d.off-int64(len(d.blk))-frameHeaderSize, ErrCorrupt, h.count, h.count)
		}
	}
	// nextBlock left at least trailerSize bytes.
	var t [trailerSize]byte
	if err := d.readAt(t[:], d.off); err != nil {
		return decoded{}, err
	}
	if count := binary.LittleEndian.Uint64(t[0:8]); count != h.count {
		return decoded{}, fmt.Errorf("offset %d: %w: trailer count %d, header count %d", d.off, ErrCorrupt, count, h.count)
	}
	if got := binary.LittleEndian.Uint32(t[8:12]); got != d.body {
		return decoded{}, fmt.Errorf("offset %d: %w: body crc %#08x, computed %#08x", d.off+8, ErrChecksum, got, d.body)
	}
	if [8]byte(t[12:20]) != endMagic {
		return decoded{}, fmt.Errorf("offset %d: %w: bad end magic %q", d.off+12, ErrCorrupt, t[12:20])
	}
	if extra := d.size - d.off - trailerSize; extra != 0 {
		return decoded{}, fmt.Errorf("offset %d: %w: %d bytes after the trailer", d.off+trailerSize, ErrCorrupt, extra)
	}
	return decoded{h, d.body}, nil
}

// callerError carries an error returned by Load's fn through decode, so
// that it is reported as the caller's and never as damage to the file.
type callerError struct{ err error }

func (e *callerError) Error() string { return e.err.Error() }
