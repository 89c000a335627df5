package wal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Repairs of a damaged log. Open and Check share one planner: it reads
// every segment as runs of valid frames ("pieces") split by bad frames,
// and decides, in log order, what each problem costs measured against
// the snapshot recovery loads (the covered seq). A repair that drops no
// record above it is made by Open itself, with a warning; one that does
// is left to the operator (`aof check --fix --force`), who is first told
// exactly what it drops.

// Repair is what a fix does about a Problem.
type Repair int

const (
	// CutTornTail truncates the last segment at the bad frame, keeping
	// the cut bytes in a .broken file. Open does it by itself.
	CutTornTail Repair = iota + 1
	// SetAside renames a damaged segment to .broken: every seq it can
	// hold (up to the next segment's first) is covered by the snapshot.
	// Open does it by itself.
	SetAside
	// CutHead rewrites a damaged segment from the first valid record
	// after the damage, keeping the old file as .broken: everything
	// before that record is covered by the snapshot. Open does it by
	// itself.
	CutHead
	// CutLog cuts the log at the problem: the rest of the segment and
	// every later segment go to .broken files, since replay cannot cross
	// the hole. Open does it by itself only when everything it drops is
	// covered by the snapshot; otherwise it takes --fix --force.
	CutLog
)

// SeqRange is the seqs First..Last, both included.
type SeqRange struct{ First, Last uint64 }

// String formats the range as "a..b", or "a" for one seq.
func (r SeqRange) String() string {
	if r.First == r.Last {
		return fmt.Sprint(r.First)
	}
	return fmt.Sprintf("%d..%d", r.First, r.Last)
}

// Problem is one thing wrong with the log, the repair a fix makes and
// what that repair costs.
type Problem struct {
	// File and Offset are where: the bad frame, or the start of the
	// segment that overlaps the one before it or follows a gap.
	File   string
	Offset int64
	// Err says what is wrong; it wraps ErrGap for missing seqs.
	Err error
	// Repair is what a fix does.
	Repair Repair
	// Lost are the seqs no file holds readably: unreadable frames, or
	// segments that are missing. They are gone whatever the fix does.
	Lost []SeqRange
	// Drops are the readable records the repair drops (they stay in the
	// .broken files), and Records how many there are.
	Drops   []SeqRange
	Records uint64
	// Uncovered is how many records in Lost and Drops have seqs above
	// the covered one: acknowledged writes the snapshot does not hold.
	Uncovered uint64
	// NeedsForce is true when the repair drops readable records above
	// the covered seq, or when Lost has seqs above it: a fix then needs
	// Force, and Open refuses to start.
	NeedsForce bool
	// TornWrite, for CutTornTail, is true when the bad frame looks like
	// an append a crash interrupted, and false when it looks like damage
	// to a record that reached the disk (a flipped bit, not zeros or a
	// short frame).
	TornWrite bool

	// Where the repair acts: the file as it will be once earlier repairs
	// are made (a CutHead renames it), and the offset in it.
	path   string
	off    int64
	resume int64  // CutHead: offset of the first kept frame
	keep   uint64 // CutHead: its seq
	// keptThrough, for CutLog, is the last seq the log keeps.
	keptThrough uint64
	later       []string // CutLog: the segments after path, moved aside
}

// uncoveredIn returns how many seqs of rs are above covered.
func uncoveredIn(rs []SeqRange, covered uint64) uint64 {
	var n uint64
	for _, r := range rs {
		if r.Last > covered {
			n += r.Last - max(r.First, covered+1) + 1
		}
	}
	return n
}

// piece is a run of valid frames in a segment file.
type piece struct {
	off, end    int64
	first, last uint64 // last is first-1 when the run is empty
	zeros       int64  // preallocated zeros after the run (bad is nil)
	bad         error  // the bad frame at end; nil when the run ends the file
	torn        bool   // bad is followed by no valid frame
	tornWrite   bool
}

func (p piece) records() uint64 { return p.last + 1 - p.first }

// fileScan is a segment file read as pieces: one when it is valid, and
// one more after each bad frame that a valid frame follows.
type fileScan struct {
	path   string
	base   uint64 // from the name
	size   int64
	pieces []piece
	// shift is how much offsets in path are below those in the file on
	// disk now: a planned CutHead moves the frames to a new file.
	shift int64
	orig  string // the file on disk now
}

func scanFile(fsys FS, s *segment) (fileScan, error) {
	f := fileScan{path: s.path, orig: s.path, base: s.base}
	off, base := int64(0), s.base
	for {
		sc, err := scanSegmentFrom(fsys, s.path, off, base, nil)
		if err != nil {
			return f, err
		}
		f.size = sc.size
		f.pieces = append(f.pieces, piece{off: off, end: sc.end, first: base, last: sc.last,
			zeros: sc.zeros, bad: sc.bad, torn: sc.torn, tornWrite: sc.tornWrite})
		if sc.bad == nil || !sc.hasNext {
			return f, nil
		}
		off, base = sc.next, sc.nextSeq
	}
}

func scanFiles(fsys FS, segs []*segment) ([]fileScan, error) {
	scans := make([]fileScan, 0, len(segs))
	for _, s := range segs {
		f, err := scanFile(fsys, s)
		if err != nil {
			return nil, err
		}
		scans = append(scans, f)
	}
	return scans, nil
}

// ranges returns the seq ranges of the records in ps, adjacent ones
// merged, and how many records they hold.
func ranges(dst []SeqRange, ps []piece) ([]SeqRange, uint64) {
	var n uint64
	for _, p := range ps {
		if p.records() == 0 {
			continue
		}
		n += p.records()
		if k := len(dst); k > 0 && dst[k-1].Last+1 == p.first {
			dst[k-1].Last = p.last
			continue
		}
		dst = append(dst, SeqRange{p.first, p.last})
	}
	return dst, n
}

// planRepairs works out, in log order, the repairs that make the log
// replayable after seq covered. It stops after the first CutLog, since
// nothing after the cut is kept. It may change scans: a planned CutHead
// replaces the segment's entry with what the new segment will hold. With gaps false, missing seqs between
// segments are not problems (Open leaves them to Replay); with gaps true
// those above covered are, and those at or below it are returned as
// notes.
func planRepairs(scans []fileScan, covered uint64, gaps bool) (problems []Problem, notes []Gap) {
	var prevLast uint64 // last seq of the last kept segment with records
	hasPrev := false
	cutLog := func(i int, f fileScan, from int, p Problem) []Problem {
		p.Repair = CutLog
		p.keptThrough = prevLast
		if from > 0 && f.pieces[0].records() > 0 {
			p.keptThrough = f.pieces[0].last
		}
		p.Drops, p.Records = ranges(nil, f.pieces[from:])
		for _, later := range scans[i+1:] {
			var n uint64
			p.Drops, n = ranges(p.Drops, later.pieces)
			p.Records += n
			p.later = append(p.later, later.path)
		}
		p.Uncovered = uncoveredIn(p.Lost, covered) + uncoveredIn(p.Drops, covered)
		p.NeedsForce = p.Uncovered > 0
		return append(problems, p)
	}
	for i := 0; i < len(scans); i++ {
		f := scans[i]
		p0 := f.pieces[0]
		at := func(off int64) Problem {
			return Problem{File: f.orig, Offset: off + f.shift, path: f.path, off: off}
		}
		if p0.records() > 0 && hasPrev && f.base <= prevLast {
			p := at(0)
			p.Err = fmt.Errorf("segment starts at seq %d but an earlier segment already holds records through %d",
				f.base, prevLast)
			return cutLog(i, f, 0, p), notes
		}
		if gaps && p0.records() > 0 && f.base > prevLast+1 {
			missing := SeqRange{prevLast + 1, f.base - 1}
			if missing.Last > covered {
				p := at(0)
				p.Lost = []SeqRange{{max(missing.First, covered+1), missing.Last}}
				p.Err = fmt.Errorf("%w: seqs %v are in no segment, and the snapshot covers only through seq %d",
					ErrGap, p.Lost[0], covered)
				return cutLog(i, f, 0, p), notes
			}
			if hasPrev {
				notes = append(notes, Gap{File: f.orig, Want: missing.First, Got: f.base})
			}
		}
		if p0.bad == nil {
			if p0.records() > 0 {
				prevLast, hasPrev = p0.last, true
			}
			continue
		}

		p := at(p0.end)
		p.Err = p0.bad
		isLast := i == len(scans)-1
		if p0.torn && !isLast {
			p.Err = fmt.Errorf("%w, in a segment that is not the last", p0.bad)
		}
		switch {
		case p0.torn && isLast:
			p.Repair = CutTornTail
			p.TornWrite = p0.tornWrite
			problems = append(problems, p)
			if p0.records() > 0 {
				prevLast, hasPrev = p0.last, true
			}
			continue

		case !isLast && scans[i+1].base-1 <= covered:
			// Everything this segment can hold is in the snapshot.
			p.Repair = SetAside
			p.Drops, p.Records = ranges(nil, f.pieces)
			p.Lost = holes(f.pieces, scans[i+1].base-1)
			problems = append(problems, p)
			continue

		case len(f.pieces) > 1 && f.pieces[1].first-1 <= covered:
			// The frames before the next valid one are in the snapshot:
			// keep the segment from there, as a segment named by it.
			// The next segment, if any, starts above covered+1 (or the
			// case before would have matched), so the name is free.
			p.Repair = CutHead
			p.resume, p.keep = f.pieces[1].off, f.pieces[1].first
			p.Drops, p.Records = ranges(nil, f.pieces[:1])
			p.Lost = holes(f.pieces[:2], 0)
			problems = append(problems, p)
			rest := fileScan{
				path:   filepath.Join(filepath.Dir(f.path), segmentName(f.pieces[1].first)),
				orig:   f.orig,
				base:   f.pieces[1].first,
				size:   f.size - p.resume,
				shift:  f.shift + p.resume,
				pieces: make([]piece, 0, len(f.pieces)-1),
			}
			for _, q := range f.pieces[1:] {
				q.off -= p.resume
				q.end -= p.resume
				rest.pieces = append(rest.pieces, q)
			}
			scans[i] = rest
			i-- // look at what is left of the segment again
			continue
		}

		// The hole reaches records the snapshot lacks, or no valid
		// record follows to say where it ends.
		switch {
		case len(f.pieces) > 1:
			p.Lost = holes(f.pieces[:2], 0)
		case !isLast:
			p.Lost = holes(f.pieces[:1], scans[i+1].base-1)
		}
		return cutLog(i, f, 1, p), notes
	}
	return problems, notes
}

// holes returns the seqs between consecutive pieces that no valid frame
// holds, and those after the last piece up to through (0: none).
func holes(ps []piece, through uint64) []SeqRange {
	var hs []SeqRange
	for k := 0; k+1 < len(ps); k++ {
		if ps[k+1].first > ps[k].last+1 {
			hs = append(hs, SeqRange{ps[k].last + 1, ps[k+1].first - 1})
		}
	}
	if last := ps[len(ps)-1].last; through > last {
		hs = append(hs, SeqRange{last + 1, through})
	}
	return hs
}

// apply makes the repair p describes, each step durable before the next,
// and returns the .broken files it wrote the dropped bytes to. dir is the
// log directory.
func apply(fsys FS, dir string, p Problem) ([]string, error) {
	var saved []string
	switch p.Repair {
	case CutTornTail:
		size, err := fileSize(fsys, p.path)
		if err != nil {
			return nil, err
		}
		broken, err := cutSegment(fsys, p.path, p.off, size)
		if err != nil {
			return nil, err
		}
		saved = append(saved, broken)
	case SetAside:
		broken, err := moveAside(fsys, p.path)
		if err != nil {
			return nil, err
		}
		saved = append(saved, broken)
	case CutHead:
		broken, err := cutHead(fsys, p)
		if err != nil {
			return nil, err
		}
		saved = append(saved, broken)
	case CutLog:
		if p.off == 0 {
			broken, err := moveAside(fsys, p.path)
			if err != nil {
				return nil, err
			}
			saved = append(saved, broken)
		} else {
			size, err := fileSize(fsys, p.path)
			if err != nil {
				return nil, err
			}
			broken, err := cutSegment(fsys, p.path, p.off, size)
			if err != nil {
				return nil, err
			}
			saved = append(saved, broken)
		}
		for _, later := range p.later {
			broken, err := moveAside(fsys, later)
			if err != nil {
				return saved, err
			}
			saved = append(saved, broken)
		}
	default:
		return nil, fmt.Errorf("wal: unknown repair %d", p.Repair)
	}
	if err := fsys.SyncDir(dir); err != nil {
		return saved, fmt.Errorf("wal: sync dir %s: %w", dir, bare(err))
	}
	return saved, nil
}

// cutHead copies the frames of p.path from p.resume on into a new segment
// named by their first seq, and moves the old file aside. The new file is
// complete and durable under a temporary name before it becomes a
// segment, and the old one goes only after that: a crash in between
// leaves both, and then the old one, whose every seq the new one or the
// snapshot holds, is set aside at the next start.
func cutHead(fsys FS, p Problem) (string, error) {
	dir := filepath.Dir(p.path)
	name := filepath.Join(dir, segmentName(p.keep))
	tmp := name + ".tmp"
	src, err := fsys.OpenFile(p.path, os.O_RDONLY, 0)
	if err != nil {
		return "", fmt.Errorf("wal: open %s: %w", p.path, bare(err))
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return "", fmt.Errorf("wal: stat %s: %w", p.path, bare(err))
	}
	dst, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return "", fmt.Errorf("wal: create %s: %w", tmp, bare(err))
	}
	if _, err := io.Copy(dst, io.NewSectionReader(src, p.resume, fi.Size()-p.resume)); err != nil {
		dst.Close()
		return "", fmt.Errorf("wal: copy %s to %s: %w", p.path, tmp, bare(err))
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		return "", fmt.Errorf("wal: sync %s: %w", tmp, bare(err))
	}
	if err := dst.Close(); err != nil {
		return "", fmt.Errorf("wal: close %s: %w", tmp, bare(err))
	}
	if name == p.path {
		// Garbage before the first record: the new file replaces the
		// old one in one rename, after a copy of the old one is safe.
		broken, err := saveBroken(fsys, p.path, 0, fi.Size())
		if err != nil {
			return "", err
		}
		if err := fsys.Rename(tmp, name); err != nil {
			return "", fmt.Errorf("wal: rename %s to %s: %w", tmp, name, bare(err))
		}
		return broken, nil
	}
	if err := fsys.Rename(tmp, name); err != nil {
		return "", fmt.Errorf("wal: rename %s to %s: %w", tmp, name, bare(err))
	}
	if err := fsys.SyncDir(dir); err != nil {
		return "", fmt.Errorf("wal: sync dir %s: %w", dir, bare(err))
	}
	return moveAside(fsys, p.path)
}

// describe says in one line what the repair does and drops, for logs and
// reports.
func (p Problem) describe(covered uint64) string {
	var b strings.Builder
	switch p.Repair {
	case CutTornTail:
		fmt.Fprintf(&b, "cut the last segment at offset %d", p.Offset)
	case SetAside:
		fmt.Fprintf(&b, "set the segment aside: every seq it can hold is covered by the snapshot (seq <= %d)", covered)
	case CutHead:
		fmt.Fprintf(&b, "keep the segment from the valid record at offset %d on: what comes before it is covered by the snapshot (seq <= %d)",
			p.resume+p.Offset-p.off, covered)
	case CutLog:
		if p.off == 0 {
			fmt.Fprintf(&b, "cut the log before %s: it and %d later segment(s) go to .broken files",
				filepath.Base(p.File), len(p.later))
		} else {
			fmt.Fprintf(&b, "cut the log at %s offset %d: the rest of it and %d later segment(s) go to .broken files",
				filepath.Base(p.File), p.Offset, len(p.later))
		}
	}
	if len(p.Lost) > 0 {
		fmt.Fprintf(&b, "; unreadable or missing: seq %s", joinRanges(p.Lost))
	}
	if p.Records > 0 {
		fmt.Fprintf(&b, "; drops %d readable record(s), seq %s", p.Records, joinRanges(p.Drops))
	}
	switch {
	case p.Uncovered > 0:
		fmt.Fprintf(&b, "; this gives up %d acknowledged write(s) above the snapshot's seq %d", p.Uncovered, covered)
	case p.Repair != CutTornTail:
		b.WriteString("; the snapshot holds all of them")
	}
	return b.String()
}

func joinRanges(rs []SeqRange) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.String()
	}
	return strings.Join(s, ", ")
}

// corruptError is the error Open returns for a problem it does not
// repair by itself.
func (p Problem) corruptError(covered uint64) error {
	err := p.Err
	if errors.Is(err, ErrGap) {
		return fmt.Errorf("wal: %s: %w", p.File, err)
	}
	return &CorruptError{File: p.File, Offset: p.Offset, Err: err, Repair: p.describe(covered)}
}
