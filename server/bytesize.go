package server

import (
	"fmt"
	"strconv"
	"strings"
)

// ByteSize is a size in bytes that, as a flag, takes an optional unit: 512MiB,
// 2GB, 1048576. KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// String is the size as the flag takes it back, with the largest binary
// unit that divides it (64MiB, 1023), for --help and --print-config.
func (b *ByteSize) String() string { return formatBytes(int64(*b)) }

func (b *ByteSize) Set(s string) error {
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range byteUnits {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("want a size like 512MiB, 2GB or 1048576, got %q", s)
	}
	if n > 0 && mult > (1<<63-1)/n {
		return fmt.Errorf("%q is too large", s)
	}
	*b = ByteSize(n * mult)
	return nil
}
