package wal

import (
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
