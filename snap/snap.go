package snap

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"kvstore/wal"
)

// MaxKeySize is the longest key a snapshot holds, in bytes. Load rejects
// longer ones as corruption, so Write refuses them.
const MaxKeySize = 64 << 20

// MaxValueSize is the longest value a snapshot holds, in bytes. Load rejects
// longer ones as corruption, so Write refuses them.
const MaxValueSize = 64 << 20

// Errors of reading a snapshot. Every error that means "this file is
// damaged" matches ErrCorrupt with errors.Is; I/O errors and ErrVersion do
// not, and Load skips a file only for damage.
var (
	// ErrCorrupt is returned when a snapshot file fails validation: bad
	// magic, version 0 (which no build writes), a checksum or count
	// mismatch, bad framing, or truncation.
	// ErrChecksum and ErrTruncated wrap it.
	ErrCorrupt = errors.New("snapshot corrupt")
	// ErrChecksum is returned when a snapshot's header, a block or the
	// whole body does not match its CRC-32C. It wraps ErrCorrupt.
	ErrChecksum = fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	// ErrTruncated is returned when a snapshot file ends before its
	// trailer, or is too short for the lengths it declares. It wraps
	// ErrCorrupt.
	ErrTruncated = fmt.Errorf("%w: truncated", ErrCorrupt)
	// ErrVersion is returned when a file is a snapshot in a format version
	// this build cannot read, most likely one a newer build wrote. It is
	// not damage: Load stops at such a file rather than skip it.
	ErrVersion = errors.New("unsupported snapshot version")
	// ErrNoValidSnapshot is returned by Load when the directory holds
	// snapshots but none of them validates.
	ErrNoValidSnapshot = errors.New("no valid snapshot")
)

// Errors of writing a snapshot.
var (
	// ErrTooLarge is returned by Write when a key exceeds MaxKeySize or a
	// value exceeds MaxValueSize.
	ErrTooLarge = errors.New("entry too large for a snapshot")
	// ErrSourceLen is returned by Write when Source.Range visits a
	// different number of entries than Source.Len reported.
	ErrSourceLen = errors.New("source length mismatch")
	// ErrPrune is returned by Write, together with the new snapshot's
	// Info, when the new snapshot is durable but removing older snapshots
	// or stale temporary files failed. The new snapshot is good.
	ErrPrune = errors.New("prune old snapshots")
)

// Source is a frozen, read-only point-in-time view of the key space. It
// must be safe to read from another goroutine while the owner keeps
// writing, and must not change while Write reads it. Its lifetime follows
// hashicorp/raft's FSMSnapshot: whoever obtained it calls Release once it
// is done, whether it was written, failed or was not needed; Write itself
// never calls Release.
type Source interface {
	// Len returns the number of entries Range will visit, which may
	// include entries that have already expired.
	Len() int
	// Range calls fn for every entry, in any order, until fn returns
	// false. deadline is the absolute expiry in Unix nanoseconds, 0 for
	// none.
	Range(fn func(key, value string, deadline int64) bool)
	// Release tells the owner the view will not be read again, so it can
	// stop preserving it. It must be safe to call from any goroutine.
	Release()
}

// Info describes one snapshot file.
type Info struct {
	// Path is the file's path: the directory joined with its name.
	Path string
	// Seq is the sequence number of the last log record the snapshot
	// covers; recovery replays the records after it.
	Seq uint64
	// Count is the number of entries in the file, including any Load
	// skipped as expired. List leaves it 0.
	Count uint64
	// Bytes is the size of the file. List leaves it 0.
	Bytes int64
	// Checksum is the CRC-32C of the entries that the trailer records
	// (Encoded.Checksum of the same data). Only reading the whole file
	// sets it: List and Write leave it 0.
	Checksum uint32
	// Skipped is set by Load only: the newer snapshots it passed over
	// because they did not validate, newest first, each error naming its
	// file and what is wrong with it. Non-empty means the snapshot loaded
	// is not the newest, so the log must still hold every record after
	// its Seq; the caller should log these.
	Skipped []error
}

const (
	snapExt = ".snap"
	tmpExt  = ".tmp"
	// nameDigits fits any uint64 in decimal, so that name order is
	// sequence order.
	nameDigits = 20
	// keep is how many snapshots Write leaves: the new one and one to fall
	// back to.
	keep = 2
)

func fileName(seq uint64) string { return fmt.Sprintf("%020d%s", seq, snapExt) }

// FileName is the name a snapshot at seq has in a snapshot directory.
func FileName(seq uint64) string { return fileName(seq) }

// parseName returns the sequence number of a snapshot file name.
func parseName(name string) (uint64, bool) {
	if len(name) != nameDigits+len(snapExt) || name[nameDigits:] != snapExt {
		return 0, false
	}
	digits := name[:nameDigits]
	for i := range len(digits) {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	return seq, err == nil
}

// isTempName reports whether name is a temporary file Write creates.
func isTempName(name string) bool {
	base, ok := strings.CutSuffix(name, tmpExt)
	if !ok {
		return false
	}
	_, ok = parseName(base)
	return ok
}

// Write streams src into a new snapshot at seq in dir, creating dir if
// needed, and returns its Info once it is durable: the file is written to
// a temporary name, fsynced, renamed into place, and the directory fsynced.
// Only then does Write remove older snapshots beyond the newest two, and
// any temporary files left by an earlier crash; it never removes the
// snapshot it just wrote.
//
// Write calls src.Range exactly once and holds one 64 KiB block in memory,
// however large src is. Only one Write may run per directory at a time.
//
// On an error before the rename, Write removes the temporary file and the
// directory is as it was. If fsyncing the directory fails after the rename,
// the new file stays (it is complete and fsynced, and removing it could
// lose a same-sequence snapshot it replaced) but Write reports the error:
// the caller must not rely on it, for instance to drop log segments. If
// only the pruning fails, Write returns the Info with an error wrapping
// ErrPrune.
func Write(fsys wal.FS, dir string, seq uint64, src Source) (Info, error) {
	return write(fsys, dir, seq, src, blockSize)
}

// Encoded is what Encode wrote.
type Encoded struct {
	// Seq and Count are the file's sequence number and entries.
	Seq, Count uint64
	// Bytes is the file's size.
	Bytes int64
	// Checksum is the CRC-32C of the entries that the trailer records.
	Checksum uint32
}

// Encode writes src to w as a snapshot file at seq, the bytes Write puts
// in a file: for a backup streamed elsewhere. It calls src.Range once and
// holds one block (64 KiB) in memory, writing whole blocks to w; it does
// not Release src. On error w holds a prefix that does not validate.
func Encode(w io.Writer, seq uint64, src Source) (Encoded, error) {
	e, err := encode(w, seq, src, blockSize)
	if err != nil {
		return Encoded{}, fmt.Errorf("snap: encode: %w", err)
	}
	return Encoded{Seq: seq, Count: e.count, Bytes: e.n, Checksum: e.body}, nil
}

func write(fsys wal.FS, dir string, seq uint64, src Source, limit int) (Info, error) {
	if err := mkdirDurable(fsys, dir); err != nil {
		return Info{}, fmt.Errorf("snap: create dir %s: %w", dir, err)
	}
	name := fileName(seq)
	path := filepath.Join(dir, name)
	tmp := path + tmpExt
	// O_TRUNC: a crash during an earlier Write of the same seq may have
	// left this very name behind.
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return Info{}, fmt.Errorf("snap: create %s: %w", tmp, err)
	}
	e, err := encode(f, seq, src, limit)
	if err == nil {
		if err = f.Sync(); err != nil {
			err = fmt.Errorf("fsync: %w", err)
		}
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	if err == nil {
		err = fsys.Rename(tmp, path)
	}
	if err != nil {
		err = fmt.Errorf("snap: write %s: %w", tmp, err)
		if rerr := fsys.Remove(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = errors.Join(err, fmt.Errorf("snap: remove %s: %w", tmp, rerr))
		}
		return Info{}, err
	}
	if err := fsys.SyncDir(dir); err != nil {
		return Info{}, fmt.Errorf("snap: fsync dir %s after renaming %s: %w", dir, name, err)
	}
	info := Info{Path: path, Seq: seq, Count: e.count, Bytes: e.n}
	if err := prune(fsys, dir, name); err != nil {
		return info, err
	}
	return info, nil
}

// mkdirDurable creates dir and any missing parents, fsyncing the parent of
// each directory it creates so that the new entries survive a crash.
func mkdirDurable(fsys wal.FS, dir string) error {
	_, err := fsys.ReadDir(dir)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirDurable(fsys, parent); err != nil {
			return err
		}
	}
	if err := fsys.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return fsys.SyncDir(parent)
}

// prune removes snapshots beyond the newest keep, except current, and
// temporary files, which with one Write per directory can only be stale.
func prune(fsys wal.FS, dir, current string) error {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("snap: %w: list %s: %w", ErrPrune, dir, err)
	}
	var snaps []string
	var errs []error
	remove := func(name string) {
		p := filepath.Join(dir, name)
		if err := fsys.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("snap: %w: remove %s: %w", ErrPrune, p, err))
		}
	}
	for _, ent := range entries {
		switch name := ent.Name(); {
		case ent.IsDir():
		case isTempName(name):
			remove(name)
		default:
			if _, ok := parseName(name); ok {
				snaps = append(snaps, name)
			}
		}
	}
	// Zero-padded names sort like their sequence numbers.
	slices.Sort(snaps)
	slices.Reverse(snaps)
	for i, name := range snaps {
		if i >= keep && name != current {
			remove(name)
		}
	}
	return errors.Join(errs...)
}

// List returns the snapshots in dir, newest first, from their file names
// alone: Path and Seq are set, the other fields are left zero, and no file
// is opened or validated. Temporary files are not listed. A missing dir is
// an error matching fs.ErrNotExist.
func List(fsys wal.FS, dir string) ([]Info, error) {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("snap: list %s: %w", dir, err)
	}
	var infos []Info
	for _, ent := range entries {
		if ent.IsDir() {
			continue
		}
		if seq, ok := parseName(ent.Name()); ok {
			infos = append(infos, Info{Path: filepath.Join(dir, ent.Name()), Seq: seq})
		}
	}
	slices.SortFunc(infos, func(a, b Info) int { return cmp.Compare(b.Seq, a.Seq) })
	return infos, nil
}

// Verify checks the snapshot at path end to end, keeping no entries: its
// header, every block checksum, every entry's framing, the count, the body
// checksum and the trailer, and, if the file has a snapshot name, that the
// name matches the sequence number inside. Damage is reported as an error
// matching ErrCorrupt that names the file and the offset.
func Verify(fsys wal.FS, path string) (Info, error) {
	return read(fsys, path, false, nil)
}

// Status is what Stat reports about a snapshot file.
type Status struct {
	Info
	// Expired counts the entries with 0 < deadline <= now, which Load
	// leaves out.
	Expired uint64
}

// Stat verifies the snapshot at path as Verify does, and also counts the
// entries that have expired by now, without keeping any: `backup check`
// and restore use it on a backup, which may have any name.
func Stat(fsys wal.FS, path string, now int64) (Status, error) {
	var expired uint64
	info, err := read(fsys, path, false, func(_, _ string, deadline int64) error {
		if deadline > 0 && deadline <= now {
			expired++
		}
		return nil
	})
	if err != nil {
		return Status{}, err
	}
	return Status{Info: info, Expired: expired}, nil
}

// read decodes the snapshot at path, handing entries to fn if not nil, the
// keys and values too if keep.
func read(fsys wal.FS, path string, keep bool, fn func(key, value string, deadline int64) error) (Info, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return Info{}, fmt.Errorf("snap: open %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Info{}, fmt.Errorf("snap: stat %s: %w", path, err)
	}
	check := func(h header) error {
		if seq, ok := parseName(filepath.Base(path)); ok && seq != h.seq {
			return fmt.Errorf("offset 12: %w: header seq %d does not match the file name", ErrCorrupt, h.seq)
		}
		return nil
	}
	h, err := decode(f, st.Size(), check, keep, fn)
	if err != nil {
		if ce, ok := errors.AsType[*callerError](err); ok {
			return Info{}, fmt.Errorf("snap: load %s: %w", path, ce.err)
		}
		return Info{}, fmt.Errorf("snap: %s: %w", path, err)
	}
	return Info{Path: path, Seq: h.seq, Count: h.count, Bytes: st.Size(), Checksum: h.body}, nil
}

// Load hands fn every entry of the newest snapshot in dir that validates,
// except those with 0 < deadline <= now, which expired while the server was
// down, and returns that snapshot's Info. A snapshot is verified in full
// before fn sees any of its entries, so a damaged newest snapshot is
// skipped, listed in Info.Skipped, and the one before it is loaded.
//
// Only damage is skipped: an error matching ErrCorrupt. Any other error
// while verifying a snapshot, such as a failed open or read or an
// unsupported format version (ErrVersion, likely a newer build's file),
// says nothing against the file, so Load stops there and returns that
// error wrapped, naming the file, with nothing loaded and nothing skipped.
// A caller that sets skipped snapshots aside therefore never moves a good
// one because of a transient fault, and an older build never discards a
// newer build's snapshot to start from an older one.
//
// A dir that is missing or holds no snapshot yields Info{Seq: 0} and no
// error. If snapshots exist but all are damaged, Load returns an error
// matching ErrNoValidSnapshot that names every file and what is wrong with
// it, rather than let the server start empty.
//
// If fn returns an error, Load stops and returns it wrapped. An error
// returned after fn was called (fn's own, or an I/O error or damage that
// appeared between the verifying and the loading pass) means the caller
// holds a partial snapshot and must discard it; Load never falls back to
// an older snapshot then, and Info.Skipped is empty.
func Load(fsys wal.FS, dir string, now int64, fn func(key, value string, deadline int64) error) (Info, error) {
	picked, err := Pick(fsys, dir)
	if err != nil || picked.Path == "" {
		return picked, err
	}
	info, err := read(fsys, picked.Path, true, unexpired(now, fn))
	if err != nil {
		return Info{}, err
	}
	info.Skipped = picked.Skipped
	return info, nil
}

// unexpired passes fn the entries live at now: all of them for now <= 0.
func unexpired(now int64, fn func(key, value string, deadline int64) error) func(key, value string, deadline int64) error {
	return func(key, value string, deadline int64) error {
		if deadline > 0 && deadline <= now {
			return nil
		}
		return fn(key, value, deadline)
	}
}

// LoadFile is Load for the one snapshot file at path, whatever its name:
// it verifies the file in full, then hands fn its entries except those
// with 0 < deadline <= now (now <= 0 keeps them all). A replica installs
// a snapshot streamed from its leader this way.
func LoadFile(fsys wal.FS, path string, now int64, fn func(key, value string, deadline int64) error) (Info, error) {
	if _, err := Verify(fsys, path); err != nil {
		return Info{}, err
	}
	return read(fsys, path, true, unexpired(now, fn))
}

// Pick returns the Info of the snapshot Load would load from dir, verified
// in full but not loaded, with Skipped set as Load sets it, and fails as
// Load fails before it hands out any entry. `aof check` uses it to know
// which log records start-up needs.
func Pick(fsys wal.FS, dir string) (Info, error) {
	snaps, err := List(fsys, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, nil
	}
	if err != nil {
		return Info{}, err
	}
	var skipped []error
	for _, s := range snaps {
		info, err := Verify(fsys, s.Path)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				return Info{}, unverifiable(dir, err)
			}
			skipped = append(skipped, err)
			continue
		}
		info.Skipped = skipped
		return info, nil
	}
	if len(skipped) == 0 {
		return Info{}, nil
	}
	return Info{}, fmt.Errorf("snap: load %s: %w: %w", dir, ErrNoValidSnapshot, errors.Join(skipped...))
}

// unverifiable wraps an error of verifying a snapshot that is not damage,
// saying why Load stopped at the file instead of skipping it. err names
// the file.
func unverifiable(dir string, err error) error {
	if errors.Is(err, ErrVersion) {
		return fmt.Errorf("snap: load %s: %w (a newer build's snapshot? it is not skipped)", dir, err)
	}
	return fmt.Errorf("snap: load %s: %w (could not be checked, so it is not skipped)", dir, err)
}
