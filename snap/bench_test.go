package snap

import (
	"fmt"
	"testing"

	"kvstore/wal"
)

var benchSizes = []int{100_000, 1_000_000}

// benchEntries returns n entries with 16-byte keys and 16-byte values.
func benchEntries(n int) sliceSource {
	s := make(sliceSource, n)
	for i := range s {
		s[i] = entry{key: fmt.Sprintf("k%015d", i), value: fmt.Sprintf("v%015x", i)}
	}
	return s
}

func reportPerEntry(b *testing.B, info Info, n int) {
	b.SetBytes(info.Bytes)
	b.ReportMetric(float64(info.Bytes)/float64(n), "bytes/entry")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/entry")
}

func BenchmarkWrite(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			src := benchEntries(n)
			dir := b.TempDir()
			var info Info
			var seq uint64
			for b.Loop() {
				seq++
				var err error
				if info, err = Write(wal.OS, dir, seq, src); err != nil {
					b.Fatal(err)
				}
			}
			reportPerEntry(b, info, n)
		})
	}
}

func BenchmarkLoad(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			mustWrite(b, wal.OS, dir, 1, benchEntries(n))
			var info Info
			for b.Loop() {
				loaded := 0
				var err error
				info, err = Load(wal.OS, dir, 0, func(key, value string, deadline int64) error {
					loaded++
					return nil
				})
				if err != nil || loaded != n {
					b.Fatalf("Load: %d entries, %v", loaded, err)
				}
			}
			reportPerEntry(b, info, n)
		})
	}
}

// BenchmarkVerify is Load's first pass alone: what checking costs before
// any entry is handed over.
func BenchmarkVerify(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			written := mustWrite(b, wal.OS, dir, 1, benchEntries(n))
			var info Info
			for b.Loop() {
				var err error
				if info, err = Verify(wal.OS, written.Path); err != nil {
					b.Fatal(err)
				}
			}
			reportPerEntry(b, info, n)
		})
	}
}
