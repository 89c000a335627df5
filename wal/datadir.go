package wal

import (
	"fmt"
	"io"
	"path/filepath"
)

// Dir returns where a data dir keeps its log.
func Dir(dataDir string) string { return filepath.Join(dataDir, "wal") }

// DumpDataDir is `kvstore-server aof dump`: Dump of the log in dataDir on
// the OS file system. It reads only, so it needs no lock and works beside
// a running server (which may be appending meanwhile).
func DumpDataDir(dataDir string, w io.Writer, opts DumpOptions) error {
	return Dump(OS, Dir(dataDir), w, opts)
}

// Usage is the log's footprint on disk.
type Usage struct {
	// Segments is the number of segment files; Bytes their total size,
	// preallocated zeros included.
	Segments int
	Bytes    int64
}

// DiskUsage reports the segment files of the log in dir. It reads only
// the directory, so it is safe beside a running Log (a segment created or
// removed meanwhile may or may not be counted).
func DiskUsage(fsys FS, dir string) (Usage, error) {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return Usage{}, fmt.Errorf("wal: list %s: %w", dir, bare(err))
	}
	var u Usage
	for _, e := range entries {
		if _, ok := parseSegmentName(e.Name()); !ok || e.IsDir() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed since ReadDir
		}
		u.Segments++
		u.Bytes += info.Size()
	}
	return u, nil
}
