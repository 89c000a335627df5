package wal

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// CheckOptions configures Check.
type CheckOptions struct {
	// Covered is the seq of the snapshot that recovery would load (0:
	// none): the records at or below it are not needed to start. The
	// server's `aof check` passes the one snap.Pick chooses.
	Covered uint64
	// Snapshot names that snapshot in the report; empty for none.
	Snapshot string
	// Fix makes the repairs (see Check).
	Fix bool
	// Force lets Fix make repairs that drop records above Covered.
	Force bool
}

// CheckResult is what Check found.
type CheckResult struct {
	// Segments is the number of segment files examined.
	Segments int
	// Records is the number of readable records in them, and FirstSeq
	// and LastSeq the lowest and highest seq among those; 0 when there
	// are none.
	Records           uint64
	FirstSeq, LastSeq uint64
	// Covered is CheckOptions.Covered.
	Covered uint64
	// Problems are the problems found, in log order, each with the
	// repair a fix makes and what it drops. They stop at the first
	// CutLog: nothing after the cut is kept.
	Problems []Problem
	// Gaps lists places where a segment does not continue the previous
	// one but the snapshot covers every seq missing: replay starts
	// after them, so they are only reported.
	Gaps []Gap
	// Fixed is true when Fix was set and every problem was repaired.
	Fixed bool
	// Refused is true when Fix was set but a repair needs Force: then
	// nothing was changed.
	Refused bool
	// Saved lists the .broken files the fix moved cut bytes and
	// segments to.
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
func (r CheckResult) OK() bool { return len(r.Problems) == 0 || r.Fixed }

// Startable reports whether the server would start on the log as it was
// checked: every problem is one Open repairs by itself.
func (r CheckResult) Startable() bool {
	for _, p := range r.Problems {
		if p.NeedsForce {
			return false
		}
	}
	return true
}

// Check validates every segment of the log in dir, like
// redis-check-aof, and writes a human-readable report to w: each
// segment's records and seq ranges, and each problem with the repair a
// fix makes and exactly what it drops, in records and seq ranges, told
// apart into what the snapshot at opts.Covered holds and what it does
// not. Problems are bad frames, segments that overlap, and seqs above
// Covered that no segment holds (a missing segment, or one cut short at
// a record boundary).
//
// With opts.Fix it makes the repairs: a torn tail is cut; a damaged
// segment whose seqs the snapshot all covers is set aside; one whose
// damage the snapshot covers but not the records after it is rewritten
// from the first valid record after the damage; otherwise the log is cut
// at the problem, the rest of that segment copied to a .broken file and
// truncated, and every later segment renamed to .broken, since records
// after a hole cannot be replayed. A repair that drops records above
// Covered (acknowledged writes the snapshot does not hold) is made only
// with opts.Force; without it Check changes nothing and says so
// (Refused). Every step is fsynced, and dropped records stay on disk in
// the .broken files. Run it only while the server is stopped. The error
// is for I/O failures; what the log holds is in the result.
func Check(fsys FS, dir string, opts CheckOptions, w io.Writer) (CheckResult, error) {
	res := CheckResult{Covered: opts.Covered}
	segs, err := listSegments(fsys, dir)
	if err != nil {
		return res, err
	}
	fmt.Fprintf(w, "checking %d segment(s) in %s\n", len(segs), dir)
	if opts.Snapshot != "" {
		fmt.Fprintf(w, "the snapshot start-up loads covers seq 1..%d: %s\n", opts.Covered, opts.Snapshot)
	} else {
		fmt.Fprintln(w, "no snapshot: start-up replays the whole log")
	}
	scans, err := scanFiles(fsys, segs)
	if err != nil {
		return res, err
	}
	for _, f := range scans {
		res.Segments++
		fmt.Fprintf(w, "  %s: ", filepath.Base(f.path))
		rs, n := ranges(nil, f.pieces)
		fmt.Fprintf(w, "%d record(s)", n)
		if n > 0 {
			fmt.Fprintf(w, ", seq %s", joinRanges(rs))
			if res.FirstSeq == 0 || rs[0].First < res.FirstSeq {
				res.FirstSeq = rs[0].First
			}
			res.LastSeq = max(res.LastSeq, rs[len(rs)-1].Last)
		}
		res.Records += n
		valid := int64(0)
		for _, p := range f.pieces {
			valid += p.end - p.off
		}
		fmt.Fprintf(w, ", %d valid byte(s) of %d", valid, f.size)
		if z := f.pieces[len(f.pieces)-1].zeros; z > 0 {
			fmt.Fprintf(w, " (%d preallocated zero byte(s) after them)", z)
		}
		fmt.Fprintln(w)
		for _, p := range f.pieces {
			if p.bad != nil {
				fmt.Fprintf(w, "    bad frame at offset %d: %v\n", p.end, p.bad)
			}
		}
	}
	res.Problems, res.Gaps = planRepairs(scans, opts.Covered, true)
	for _, g := range res.Gaps {
		fmt.Fprintf(w, "note: seqs %d..%d are not in the log; the snapshot covers them\n", g.Want, g.Got-1)
	}
	if len(res.Problems) == 0 {
		fmt.Fprintf(w, "ok: %d record(s) in %d segment(s)\n", res.Records, res.Segments)
		return res, nil
	}

	var mustForce uint64
	for i, p := range res.Problems {
		kind := "bad record"
		switch {
		case p.Repair == CutTornTail && p.TornWrite:
			kind = "torn tail"
		case p.Repair == CutTornTail:
			kind = "bad last record (it looks like corruption, not a torn write: the frame is all there but fails its checks)"
		case errors.Is(p.Err, ErrGap):
			kind = "missing records"
		}
		fmt.Fprintf(w, "problem %d: %s in %s at offset %d: %v\n", i+1, kind, p.File, p.Offset, p.Err)
		fmt.Fprintf(w, "  repair: %s\n", p.describe(opts.Covered))
		if p.NeedsForce {
			fmt.Fprintln(w, "  start-up stops here; the repair needs --fix --force")
			mustForce += p.Uncovered
		} else {
			fmt.Fprintln(w, "  the server makes this repair by itself at start-up")
		}
	}
	if last := res.Problems[len(res.Problems)-1]; last.Repair == CutLog {
		fmt.Fprintf(w, "after the repairs the server starts from the snapshot (seq %d) and the log through seq %d\n",
			opts.Covered, max(opts.Covered, last.keptThrough))
	}
	if !opts.Fix {
		if mustForce > 0 {
			fmt.Fprintf(w, "run again with --fix --force to make the repairs, giving up %d acknowledged record(s) the snapshot does not cover\n", mustForce)
		} else {
			fmt.Fprintln(w, "run again with --fix to make the repairs now")
		}
		return res, nil
	}
	if mustForce > 0 && !opts.Force {
		res.Refused = true
		fmt.Fprintf(w, "refused: the repairs would drop %d acknowledged record(s) the snapshot does not cover; nothing was changed; "+
			"add --force to drop them (they stay in .broken files)\n", mustForce)
		return res, nil
	}
	for _, p := range res.Problems {
		saved, err := apply(fsys, dir, p)
		res.Saved = append(res.Saved, saved...)
		if err != nil {
			return res, err
		}
	}
	res.Fixed = true
	fmt.Fprintf(w, "fixed: %d repair(s) made; cut data saved to:\n", len(res.Problems))
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
