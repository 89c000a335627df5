package wal

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// CheckResult is what Check found.
type CheckResult struct {
	// Segments is the number of segment files examined.
	Segments int
	// Records is the number of valid records before the first problem.
	Records uint64
	// FirstSeq and LastSeq are the seqs of the first and last valid
	// records; 0 when there are none.
	FirstSeq, LastSeq uint64
	// Problem is the first bad frame (or misplaced segment); nil when the
	// whole log is valid. Nothing after it was examined.
	Problem *CorruptError
	// TornTail is true when Problem is a torn or zero-filled tail of the
	// last segment: what a crash during an append leaves, which Open cuts
	// by itself.
	TornTail bool
	// Gaps lists places where a segment does not continue the previous
	// one. They are fine when a snapshot covers the missing seqs (the log
	// is replayed from the snapshot on), so Check only reports them.
	Gaps []Gap
	// Fixed is true when fix was set and the log was cut at Problem.
	Fixed bool
	// Saved lists the .broken files the fix moved the cut bytes and any
	// later segments to.
	Saved []string
}

// Gap is a jump in seqs between two consecutive segments.
type Gap struct {
	// File is the segment that starts after the gap.
	File string
	// Want is the seq that should have come next; Got is the one found.
	Want, Got uint64
}

// OK reports whether the log, as it is after Check, has no problem left.
func (r CheckResult) OK() bool { return r.Problem == nil || r.Fixed }

// Check validates every segment of the log in dir, like
// redis-check-aof, and writes a human-readable report to w. With fix, it
// cuts the log at the first problem: the rest of that segment is copied to
// a .broken file and truncated, and every later segment is renamed to
// .broken, since records after a hole cannot be replayed. Every step is
// fsynced. Only records after the problem are dropped, and they stay on
// disk in the .broken files. Run it only while the server is stopped. The
// error is for I/O failures; what the log holds is in the result.
func Check(fsys FS, dir string, fix bool, w io.Writer) (CheckResult, error) {
	var res CheckResult
	segs, err := listSegments(fsys, dir)
	if err != nil {
		return res, err
	}
	fmt.Fprintf(w, "checking %d segment(s) in %s\n", len(segs), dir)
	var prev *segment // last segment with records
	bad := -1
	for i, s := range segs {
		res.Segments++
		sc, err := scanSegment(fsys, s.path, s.base, nil)
		if err != nil {
			return res, err
		}
		s.last, s.size = sc.last, sc.end
		name := filepath.Base(s.path)
		if prev != nil && sc.records > 0 && s.base <= prev.last {
			res.Problem = &CorruptError{File: s.path, Offset: 0, Err: fmt.Errorf(
				"segment starts at seq %d but %s already holds records through %d",
				s.base, filepath.Base(prev.path), prev.last)}
			fmt.Fprintf(w, "  %s: overlaps the segment before it\n", name)
			bad = i
			break
		}
		if prev != nil && sc.records > 0 && s.base != prev.last+1 {
			res.Gaps = append(res.Gaps, Gap{File: s.path, Want: prev.last + 1, Got: s.base})
			fmt.Fprintf(w, "  note: seqs %d..%d are not in the log (fine if a snapshot covers them)\n",
				prev.last+1, s.base-1)
		}
		if sc.records > 0 {
			if res.FirstSeq == 0 {
				res.FirstSeq = s.base
			}
			res.LastSeq = sc.last
			res.Records += sc.records
			prev = s
		}
		fmt.Fprintf(w, "  %s: %d record(s)", name, sc.records)
		if sc.records > 0 {
			fmt.Fprintf(w, ", seq %d..%d", s.base, sc.last)
		}
		fmt.Fprintf(w, ", %d valid byte(s) of %d", sc.end, sc.size)
		if sc.zeros > 0 {
			fmt.Fprintf(w, " (%d preallocated zero byte(s) after them)", sc.zeros)
		}
		fmt.Fprintln(w)
		if sc.bad != nil {
			res.Problem = &CorruptError{File: s.path, Offset: sc.end, Err: sc.bad}
			res.TornTail = sc.torn && i == len(segs)-1
			bad = i
			break
		}
	}

	if res.Problem == nil {
		fmt.Fprintf(w, "ok: %d record(s) in %d segment(s)\n", res.Records, res.Segments)
		return res, nil
	}
	p := res.Problem
	kind := "bad record"
	if res.TornTail {
		kind = "torn tail (the server cuts it by itself at startup)"
	}
	fmt.Fprintf(w, "problem: %s in %s at offset %d: %v\n", kind, p.File, p.Offset, p.Err)
	fmt.Fprintf(w, "%d valid record(s) before it", res.Records)
	if res.Records > 0 {
		fmt.Fprintf(w, " (seq %d..%d)", res.FirstSeq, res.LastSeq)
	}
	fmt.Fprintln(w)
	if !fix {
		fmt.Fprintln(w, "run again with --fix to cut the log there")
		return res, nil
	}

	s := segs[bad]
	if p.Offset == 0 {
		saved, err := moveAside(fsys, s.path)
		if err != nil {
			return res, err
		}
		res.Saved = append(res.Saved, saved)
	} else {
		size, err := fileSize(fsys, s.path)
		if err != nil {
			return res, err
		}
		saved, err := cutSegment(fsys, s.path, p.Offset, size)
		if err != nil {
			return res, err
		}
		res.Saved = append(res.Saved, saved)
	}
	for _, later := range segs[bad+1:] {
		saved, err := moveAside(fsys, later.path)
		if err != nil {
			return res, err
		}
		res.Saved = append(res.Saved, saved)
	}
	if err := fsys.SyncDir(dir); err != nil {
		return res, fmt.Errorf("wal: sync dir %s: %w", dir, bare(err))
	}
	res.Fixed = true
	fmt.Fprintf(w, "fixed: log cut at %s offset %d; %d record(s) remain; cut data saved to:\n", p.File, p.Offset, res.Records)
	for _, s := range res.Saved {
		fmt.Fprintf(w, "  %s\n", s)
	}
	return res, nil
}

// moveAside renames path to an unused path.broken[.N]. The caller syncs
// the directory.
func moveAside(fsys FS, path string) (string, error) {
	for i := 0; i < 1000; i++ {
		to := path + brokenExt
		if i > 0 {
			to = fmt.Sprintf("%s.%d", to, i)
		}
		f, err := fsys.OpenFile(to, os.O_RDONLY, 0)
		if err == nil {
			f.Close()
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("wal: stat %s: %w", to, bare(err))
		}
		if err := fsys.Rename(path, to); err != nil {
			return "", fmt.Errorf("wal: rename %s to %s: %w", path, to, bare(err))
		}
		return to, nil
	}
	return "", fmt.Errorf("wal: rename %s: too many earlier .broken copies", path)
}

func fileSize(fsys FS, path string) (int64, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return 0, fmt.Errorf("wal: open %s: %w", path, bare(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("wal: stat %s: %w", path, bare(err))
	}
	return fi.Size(), nil
}
