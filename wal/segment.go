package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// Segment files are named by the sequence number of their first record,
// zero-padded so that name order is sequence order.
const (
	segmentExt     = ".wal"
	segmentNameLen = 20 + len(segmentExt)
	brokenExt      = ".broken"
)

func segmentName(base uint64) string { return fmt.Sprintf("%020d%s", base, segmentExt) }

// parseSegmentName returns the first sequence number a segment name
// declares, or false for any other file (.broken copies, strays).
func parseSegmentName(name string) (uint64, bool) {
	if len(name) != segmentNameLen || name[20:] != segmentExt {
		return 0, false
	}
	for _, c := range name[:20] {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	base, err := strconv.ParseUint(name[:20], 10, 64)
	if err != nil || base == 0 {
		return 0, false
	}
	return base, true
}

// segment is one file of the log. Once a segment is no longer the active
// one its fields never change, which is what lets Compact read them under
// Log.segMu alone.
type segment struct {
	path string
	base uint64 // seq of the first record, from the name
	last uint64 // seq of the last record; base-1 when empty
	size int64  // bytes of valid frames
	// alloc is the file's size: size plus the zeros preallocated after
	// the records (see Options.PreallocBytes and Log.extend).
	alloc int64
}

// listSegments returns the segment files of dir in sequence order.
func listSegments(fsys FS, dir string) ([]*segment, error) {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: list %s: %w", dir, bare(err))
	}
	var segs []*segment
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		base, ok := parseSegmentName(e.Name())
		if !ok {
			continue
		}
		segs = append(segs, &segment{path: filepath.Join(dir, e.Name()), base: base, last: base - 1})
	}
	// ReadDir sorts by name, and names sort by base.
	return segs, nil
}

// readChunk is how much a reader fetches at once: large enough that small
// records cost no syscall each, small enough not to matter in memory.
const readChunk = 1 << 20

// reader serves byte ranges of a file from a window that it refills with
// ReadAt. It never holds more than max(readChunk, one frame) bytes, and
// never more than the file has.
type reader struct {
	r     io.ReaderAt
	size  int64
	start int64 // file offset of win[0]
	win   []byte
	store []byte
}

// peek returns up to n bytes at off; fewer only where the file ends.
func (rd *reader) peek(off int64, n int) ([]byte, error) {
	if off >= rd.start && off+int64(n) <= rd.start+int64(len(rd.win)) {
		i := off - rd.start
		return rd.win[i : i+int64(n)], nil
	}
	avail := rd.size - off
	if avail <= 0 {
		return nil, nil
	}
	want := int64(max(n, readChunk))
	if want > avail {
		want = avail
	}
	if int64(cap(rd.store)) < want {
		rd.store = make([]byte, want)
	}
	b := rd.store[:want]
	m, err := rd.r.ReadAt(b, off)
	if m < len(b) && err != nil && err != io.EOF {
		rd.win = nil
		return nil, err
	}
	rd.start, rd.win = off, b[:m]
	return rd.win[:min(n, m)], nil
}

// segScan is what scanSegment learned about one segment file.
type segScan struct {
	size    int64  // file size
	end     int64  // offset just past the last valid frame
	records uint64 // valid frames
	last    uint64 // seq of the last valid frame, base-1 when none
	// bad is the first problem, found at offset end; nil when every byte
	// up to size is valid frames.
	bad error
	// torn is true when bad is followed by no valid frame: what a crash
	// in the middle of an append leaves behind.
	torn bool
	// tornWrite, for a torn bad frame, is true when the frame looks like
	// a write that did not all reach the disk (see reader.tornWrite), and
	// false when it looks like damage to a record that did.
	tornWrite bool
	// next and nextSeq, when bad is set and torn is not, are the offset
	// and seq of the first valid frame after the bad one with a seq
	// above last; hasNext says whether there is one.
	next    int64
	nextSeq uint64
	hasNext bool
	// zeros is the length of the all-zero tail after the last valid
	// frame: space the writer preallocated (bad is nil then).
	zeros int64
}

// scanSegment reads the frames of the segment at path, whose first record
// must be base and each next one one higher, calling fn (if not nil) for
// each valid record in order. It stops at the first invalid frame and
// reports it in the result; the error is for I/O failures and fn's
// errors only.
func scanSegment(fsys FS, path string, base uint64, fn func(Record) error) (segScan, error) {
	return scanSegmentFrom(fsys, path, 0, base, fn)
}

// scanSegmentFrom is scanSegment starting at offset off, where a frame
// with seq base must start; records counts the frames from there.
func scanSegmentFrom(fsys FS, path string, off int64, base uint64, fn func(Record) error) (segScan, error) {
	sc := segScan{last: base - 1, end: off}
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return sc, fmt.Errorf("wal: open %s: %w", path, bare(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return sc, fmt.Errorf("wal: stat %s: %w", path, bare(err))
	}
	sc.size = fi.Size()
	rd := &reader{r: f, size: sc.size}
	for sc.end < sc.size {
		b, err := rd.peek(sc.end, frameHeaderSize)
		if err != nil {
			return sc, fmt.Errorf("wal: read %s: %w", path, bare(err))
		}
		// Peek the whole frame only when its length can be valid: a
		// corrupted length must not make us read (or allocate) more.
		if n := frameLen(b); n >= minFrame && n <= frameHeaderSize+MaxRecordBytes {
			if b, err = rd.peek(sc.end, int(n)); err != nil {
				return sc, fmt.Errorf("wal: read %s: %w", path, bare(err))
			}
		}
		fr, n, err := decodeFrame(b)
		if err != nil {
			zero, err2 := rd.zeroFrom(sc.end)
			if err2 != nil {
				return sc, fmt.Errorf("wal: read %s: %w", path, bare(err2))
			}
			if zero {
				sc.zeros = sc.size - sc.end
				return sc, nil
			}
			sc.bad = err
			next, seq, found, err := rd.validFrameAfter(sc.end, sc.last)
			if err != nil {
				return sc, fmt.Errorf("wal: read %s: %w", path, bare(err))
			}
			sc.torn = !found
			if found {
				sc.bad = fmt.Errorf("%w (a valid record follows at offset %d)", sc.bad, next)
				sc.next, sc.nextSeq, sc.hasNext = next, seq, true
			} else if sc.tornWrite, err = rd.tornWrite(sc.end); err != nil {
				return sc, fmt.Errorf("wal: read %s: %w", path, bare(err))
			}
			return sc, nil
		}
		if fr.seq != sc.last+1 {
			sc.bad = fmt.Errorf("record has seq %d, want %d", fr.seq, sc.last+1)
			// A valid frame with a later seq: the records between are
			// missing, and the log goes on from it.
			if fr.seq > sc.last {
				sc.next, sc.nextSeq, sc.hasNext = sc.end, fr.seq, true
				return sc, nil
			}
			next, seq, found, err := rd.validFrameAfter(sc.end, sc.last)
			if err != nil {
				return sc, fmt.Errorf("wal: read %s: %w", path, bare(err))
			}
			sc.next, sc.nextSeq, sc.hasNext = next, seq, found
			return sc, nil
		}
		if fn != nil {
			r := Record{Seq: fr.seq, Kind: fr.kind, Key: string(fr.key), Value: string(fr.value), Deadline: fr.deadline}
			if err := fn(r); err != nil {
				return sc, err
			}
		}
		sc.end += int64(n)
		sc.records++
		sc.last = fr.seq
	}
	return sc, nil
}

// zeroFrom reports whether every byte from off to the end of the file is
// zero.
func (rd *reader) zeroFrom(off int64) (bool, error) {
	for off < rd.size {
		b, err := rd.peek(off, int(min(rd.size-off, readChunk)))
		if err != nil {
			return false, err
		}
		for _, c := range b {
			if c != 0 {
				return false, nil
			}
		}
		off += int64(len(b))
	}
	return true, nil
}

// validFrameAfter looks for a valid frame starting anywhere after the bad
// frame at off, which tells a torn tail (nothing valid follows) from
// corruption in the middle of the log. lastSeq is the seq of the last
// valid frame before off. A genuine later frame must carry a seq above
// lastSeq and at most one more than the number of minimum-sized frames
// that fit between off and it; checking that before the CRC keeps the
// scan linear on garbage and on zero-filled tails.
func (rd *reader) validFrameAfter(off int64, lastSeq uint64) (int64, uint64, bool, error) {
	for p := off + 1; p+minFrame <= rd.size; p++ {
		h, err := rd.peek(p, frameHeaderSize+8)
		if err != nil {
			return 0, 0, false, err
		}
		n := frameLen(h)
		if n < minFrame || n > frameHeaderSize+MaxRecordBytes || n > rd.size-p {
			continue
		}
		seq := binary.LittleEndian.Uint64(h[frameHeaderSize:])
		if seq <= lastSeq || seq-lastSeq-1 > uint64((p-off)/minFrame) {
			continue
		}
		b, err := rd.peek(p, int(n))
		if err != nil {
			return 0, 0, false, err
		}
		if _, _, err := decodeFrame(b); err == nil {
			return p, seq, true, nil
		}
	}
	return 0, 0, false, nil
}

// sectorSize is the unit a disk writes atomically, at the least.
const sectorSize = 512

// tornWrite reports whether the bad frame at off, with no valid frame
// after it, looks like a write that did not all reach the disk: it runs
// past the end of the file, or one of its sectors (file-aligned, clipped
// to the frame) reads back as zeros, which is what the unwritten part of
// a torn append leaves in a preallocated or freshly extended file. A
// frame that is all there and still fails its checks (a flipped bit, a
// garbage length) looks like damage to a record that was written, and
// perhaps acknowledged. etcd's WAL draws the same line.
func (rd *reader) tornWrite(off int64) (bool, error) {
	h, err := rd.peek(off, frameHeaderSize)
	if err != nil {
		return false, err
	}
	if len(h) < frameHeaderSize {
		return true, nil // the file ends inside the header
	}
	n := frameLen(h)
	switch {
	case n > frameHeaderSize+MaxRecordBytes:
		return false, nil
	case n < minFrame:
		n = frameHeaderSize // only the header says anything
	case n > rd.size-off:
		return true, nil
	}
	for a := off; a < off+n; {
		b := min((a/sectorSize+1)*sectorSize, off+n)
		chunk, err := rd.peek(a, int(b-a))
		if err != nil {
			return false, err
		}
		zero := true
		for _, c := range chunk {
			if c != 0 {
				zero = false
				break
			}
		}
		if zero {
			return true, nil
		}
		a = b
	}
	return false, nil
}

// saveBroken copies bytes [off, size) of path into a new .broken file
// beside it and makes that copy durable, so a cut never destroys the only
// copy of data an operator may want to look at. It returns the copy's path.
func saveBroken(fsys FS, path string, off, size int64) (string, error) {
	src, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return "", fmt.Errorf("wal: open %s: %w", path, bare(err))
	}
	defer src.Close()
	dst, name, err := createUnique(fsys, path+brokenExt)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(dst, io.NewSectionReader(src, off, size-off)); err != nil {
		dst.Close()
		return "", fmt.Errorf("wal: copy tail of %s to %s: %w", path, name, bare(err))
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		return "", fmt.Errorf("wal: sync %s: %w", name, bare(err))
	}
	if err := dst.Close(); err != nil {
		return "", fmt.Errorf("wal: close %s: %w", name, bare(err))
	}
	if err := fsys.SyncDir(filepath.Dir(path)); err != nil {
		return "", fmt.Errorf("wal: sync dir %s: %w", filepath.Dir(path), bare(err))
	}
	return name, nil
}

// createUnique creates name, or name.1, name.2, ... if it exists: a
// segment that tears again after an earlier cut must not overwrite the
// earlier evidence.
func createUnique(fsys FS, name string) (File, string, error) {
	for i := 0; i < 1000; i++ {
		try := name
		if i > 0 {
			try = fmt.Sprintf("%s.%d", name, i)
		}
		f, err := fsys.OpenFile(try, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			return f, try, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, "", fmt.Errorf("wal: create %s: %w", try, bare(err))
		}
	}
	return nil, "", fmt.Errorf("wal: create %s: too many earlier copies", name)
}

// cutSegment saves bytes [off, size) of path to a .broken file, then
// truncates path to off and fsyncs it. Each step is durable before the
// next starts, so a crash in between leaves either the uncut file or an
// extra copy, never a lost tail. It returns the copy's path.
func cutSegment(fsys FS, path string, off, size int64) (string, error) {
	broken, err := saveBroken(fsys, path, off, size)
	if err != nil {
		return "", err
	}
	f, err := fsys.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return "", fmt.Errorf("wal: open %s: %w", path, bare(err))
	}
	if err := f.Truncate(off); err != nil {
		f.Close()
		return "", fmt.Errorf("wal: truncate %s to %d: %w", path, off, bare(err))
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("wal: sync %s: %w", path, bare(err))
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("wal: close %s: %w", path, bare(err))
	}
	return broken, nil
}

// syncFile fsyncs an existing file. Open uses it on the last segment: a
// previous process may have died with appended data still only in the page
// cache, and records replayed from it must not vanish at the next power cut.
func syncFile(fsys FS, path string) error {
	f, err := fsys.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("wal: open %s: %w", path, bare(err))
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("wal: sync %s: %w", path, bare(err))
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("wal: close %s: %w", path, bare(err))
	}
	return nil
}
