package snap

import (
	"errors"
	"maps"
	"testing"

	"kvstore/wal/faultfs"
)

// TestWriteCrashConsistency powers the file system off at every operation
// of a Write, under every crash mode, and checks what a restart finds: the
// new snapshot if Write reported it durable, else the new one or the one
// before, complete either way and never an error.
func TestWriteCrashConsistency(t *testing.T) {
	const dir = "/data/snap"
	srcs := map[uint64]sliceSource{
		1: genEntries(50, true),
		2: genEntries(300, false),
		3: genEntries(3000, true), // several blocks, so several writes
	}
	for _, mode := range []faultfs.CrashMode{faultfs.DropUnsynced, faultfs.TearUnsynced, faultfs.ZeroTail} {
		for seed := int64(1); seed <= 3; seed++ {
			for n := 0; ; n++ {
				fsys := faultfs.New(seed)
				mustWrite(t, fsys, dir, 1, srcs[1])
				mustWrite(t, fsys, dir, 2, srcs[2])
				fsys.CrashAfter(n)
				_, err := Write(fsys, dir, 3, srcs[3])
				crashed := fsys.PoweredOff()
				if err != nil && !crashed {
					t.Fatalf("seed %d: Write failed without a crash: %v", seed, err)
				}
				durable := err == nil || errors.Is(err, ErrPrune)

				after := fsys.Crash(mode)
				got := map[string]entry{}
				info, lerr := Load(after, dir, 0, func(key, value string, deadline int64) error {
					got[key] = entry{key, value, deadline}
					return nil
				})
				if lerr != nil {
					t.Fatalf("%v seed %d crash after %d ops: Load: %v", mode, seed, n, lerr)
				}
				if info.Seq != 3 && (durable || info.Seq != 2) {
					t.Fatalf("%v seed %d crash after %d ops (Write: %v): Load Seq %d", mode, seed, n, err, info.Seq)
				}
				if !maps.Equal(got, asMap(srcs[info.Seq])) {
					t.Fatalf("%v seed %d crash after %d ops: snapshot %d loaded with wrong entries", mode, seed, n, info.Seq)
				}
				if !crashed {
					break
				}
			}
		}
	}
}
