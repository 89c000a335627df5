package server

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"kvstore/cluster"
	"kvstore/snap"
	"kvstore/wal"
)

// CheckBackup is `kvstore-server backup check FILE`: it verifies a backup
// (any snapshot file) end to end without keeping any entry, and counts
// the keys that have expired by now, which a restore does not bring back.
// Damage is an error matching snap.ErrCorrupt that names the offset.
func CheckBackup(path string, now time.Time) (snap.Status, error) {
	return snap.Stat(wal.OS, path, now.UnixNano())
}

// RestoreOptions configures Restore.
type RestoreOptions struct {
	// Force lets Restore replace a data dir that already holds data,
	// which is then deleted.
	Force bool
	// Now judges which keys have expired, for the report; zero is the
	// current time. Start-up judges them again when it loads the file.
	Now time.Time
	// NodeID and InitialCluster ("n1=host:port,..."), when set, restore
	// a cluster node instead, etcd style: the data dir becomes node
	// NodeID of a new cluster of those members, all holding the backup.
	// Run it on every member with the same backup and members.
	NodeID, InitialCluster string
}

// RestoreResult is what Restore did.
type RestoreResult struct {
	// Backup is the backup as verified.
	Backup snap.Status
	// Path is the snapshot file in the data dir.
	Path string
	// Replaced lists what the data dir held before (--force), now deleted.
	Replaced []string
}

// ErrDataDirNotEmpty is returned by Restore for a data dir that holds
// anything but a lock file, unless RestoreOptions.Force is set.
var ErrDataDirNotEmpty = errors.New("data dir is not empty")

// Restore is `kvstore-server restore FILE --data-dir D`, offline: it makes
// D a data dir whose only content is the backup as its snapshot, so that
// the next start serves exactly the backup's data, at the backup's
// sequence number, and logs new writes after it.
//
// It verifies the backup first, then takes D's lock (a running server
// holds it, so its dir is refused) and refuses a D that holds data unless
// opts.Force. The new contents are built and fsynced in a temporary dir
// beside D and verified again there; one rename then puts them in place
// (with Force, an atomic exchange of the two dirs, after which the old
// contents are deleted). A failure or a crash at any point therefore
// leaves D as it was or fully restored, never in between; at worst a
// temporary dir named .D.restore-* is left beside it.
func Restore(backup, dataDir string, opts RestoreOptions) (RestoreResult, error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	st, err := CheckBackup(backup, now)
	if err != nil {
		return RestoreResult{}, err
	}
	res := RestoreResult{Backup: st}
	var members map[string]string
	if opts.InitialCluster != "" || opts.NodeID != "" {
		if members, err = parseInitialCluster(opts.InitialCluster); err != nil {
			return res, err
		}
		if _, ok := members[opts.NodeID]; !ok {
			return res, fmt.Errorf("--initial-cluster does not list --node-id %q", opts.NodeID)
		}
	}
	_, statErr := os.Stat(dataDir)
	created := errors.Is(statErr, os.ErrNotExist)
	lock, err := wal.LockDir(dataDir)
	if err != nil {
		return res, err
	}
	defer lock.Release()
	old, err := dataDirContents(dataDir)
	if err != nil {
		return res, err
	}
	if len(old) > 0 && !opts.Force {
		return res, fmt.Errorf("%w: %s holds %s; restore replaces a data dir's contents: pass --force to delete them, or restore into a new dir",
			ErrDataDirNotEmpty, dataDir, strings.Join(old, ", "))
	}
	undo := func(err error) (RestoreResult, error) {
		if created {
			// Only the lock file is in it: nothing was moved in.
			os.Remove(filepath.Join(dataDir, "LOCK"))
			os.Remove(dataDir)
		}
		return res, err
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return undo(err)
	}
	parent := filepath.Dir(abs)
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(abs)+".restore-")
	if err != nil {
		return undo(fmt.Errorf("create a temporary dir beside the data dir: %w", err))
	}
	defer os.RemoveAll(tmp)
	sub := "snap"
	if members != nil {
		sub = "raft"
		res.Path = raftDir(dataDir)
		if err := stageRaft(backup, filepath.Join(tmp, sub), members); err != nil {
			return undo(err)
		}
	} else {
		res.Path = filepath.Join(dataDir, "snap", snap.FileName(st.Seq))
		if err := stageSnapshot(backup, filepath.Join(tmp, sub), st); err != nil {
			return undo(err)
		}
	}
	staged := filepath.Join(tmp, sub)
	if len(old) == 0 {
		// D holds only its lock: moving the new dir in is one rename,
		// and the lock stays where it is.
		if err := os.Rename(staged, filepath.Join(abs, sub)); err != nil {
			return undo(fmt.Errorf("move the restored snapshot into %s: %w", dataDir, err))
		}
		if err := wal.OS.SyncDir(abs); err != nil {
			return res, fmt.Errorf("fsync %s: %w", dataDir, err)
		}
		return res, nil
	}
	// The old contents, lock file included, end up in tmp, which is
	// deleted on return; the server creates a lock file when it starts.
	if err := exchangeDirs(tmp, abs); err != nil {
		return res, fmt.Errorf("replace %s: %w", dataDir, err)
	}
	if err := wal.OS.SyncDir(parent); err != nil {
		return res, fmt.Errorf("fsync %s: %w", parent, err)
	}
	res.Replaced = old
	return res, nil
}

// dataDirContents lists what dir holds besides its lock file.
func dataDirContents(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.Name() == "LOCK" {
			continue
		}
		name := e.Name()
		if e.IsDir() {
			name += "/"
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

// stageSnapshot copies the backup into dir (created) under its snapshot
// name, fsyncs file and dir, and verifies the copy: it is what start-up
// will load, and the backup may have changed since it was checked.
func stageSnapshot(backup, dir string, want snap.Status) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	dst := filepath.Join(dir, snap.FileName(want.Seq))
	if err := copyFileDurable(backup, dst); err != nil {
		return fmt.Errorf("copy the backup: %w", err)
	}
	got, err := snap.Verify(wal.OS, dst)
	if err != nil {
		return fmt.Errorf("the copy of the backup does not verify (did %s change?): %w", backup, err)
	}
	if got.Seq != want.Seq || got.Count != want.Count || got.Checksum != want.Checksum {
		return fmt.Errorf("%s changed while it was restored (seq %d, %d keys, checksum %08x; was seq %d, %d keys, checksum %08x)",
			backup, got.Seq, got.Count, got.Checksum, want.Seq, want.Count, want.Checksum)
	}
	if err := wal.OS.SyncDir(dir); err != nil {
		return err
	}
	return wal.OS.SyncDir(filepath.Dir(dir))
}

// stageRaft makes dir the raft dir of a new cluster of members whose data
// is the backup: one raft snapshot holding it and the membership, which
// every member starts from (cluster.WriteSnapshot).
func stageRaft(backup, dir string, members map[string]string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	snaps, err := raft.NewFileSnapshotStore(dir, 2, io.Discard)
	if err != nil {
		return err
	}
	f, err := os.Open(backup)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := cluster.WriteSnapshot(snaps, f, members); err != nil {
		return err
	}
	return syncTree(dir)
}

// syncTree fsyncs every directory under dir, dir included, bottom up:
// the snapshot store fsyncs its files but not its new directories.
func syncTree(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return err
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := wal.OS.SyncDir(dirs[i]); err != nil {
			return err
		}
	}
	return wal.OS.SyncDir(filepath.Dir(dir))
}

// copyFileDurable copies src to a new file dst and fsyncs it.
func copyFileDurable(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return err
	}
	return out.Sync()
}
