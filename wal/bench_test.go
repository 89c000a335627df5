package wal_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"kvstore/wal"
)

// BenchmarkGroupCommit measures acknowledged writes under FsyncAlways on
// the real file system, with 1, 16 and 64 goroutines each submitting one
// record and waiting for it, as concurrent clients of the server would,
// with the segment preallocated (the default) and without. syncs/op shows
// how many records group commit folds into one fsync; sys-us/sync the
// kernel CPU time the process spent per fsync (the write included), which
// on a VM is far from free.
func BenchmarkGroupCommit(b *testing.B) {
	value := strings.Repeat("v", 100)
	for _, prealloc := range []int64{0, -1} {
		for _, submitters := range []int{1, 16, 64} {
			name := fmt.Sprintf("prealloc=%v/submitters=%d", prealloc == 0, submitters)
			b.Run(name, func(b *testing.B) {
				benchGroupCommit(b, wal.Options{Dir: b.TempDir(), PreallocBytes: prealloc}, submitters, value)
			})
		}
	}
}

func benchGroupCommit(b *testing.B, opts wal.Options, submitters int, value string) {
	l, err := wal.Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	l.Start(1)

	var (
		mu   sync.Mutex
		seq  uint64
		left = b.N
		wg   sync.WaitGroup
	)
	b.SetBytes(int64(wal.EncodedLen(setRec(1, "key:0000000000", value))))
	b.ResetTimer()
	sys0 := sysTime()
	for range submitters {
		wg.Go(func() {
			for {
				w := newWaiter()
				mu.Lock()
				if left == 0 {
					mu.Unlock()
					return
				}
				left--
				seq++
				l.Submit(wal.Batch{
					Records: []wal.Record{setRec(seq, fmt.Sprintf("key:%010d", seq), value)},
					Waiters: []wal.Waiter{w},
				})
				mu.Unlock()
				if err := w.wait(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	sys := sysTime() - sys0
	b.StopTimer()
	st := l.Stats()
	b.ReportMetric(float64(st.Syncs)/float64(b.N), "syncs/op")
	if st.Syncs > 0 && sys > 0 {
		b.ReportMetric(float64(sys.Microseconds())/float64(st.Syncs), "sys-us/sync")
	}
}

func BenchmarkEncode(b *testing.B) {
	r := wal.Record{Seq: 123456, Kind: wal.KindSet, Key: "user:0000000042", Value: strings.Repeat("v", 100), Deadline: 1767225600e9}
	b.SetBytes(int64(wal.EncodedLen(r)))
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf = wal.AppendRecord(buf[:0], r)
	}
}

func BenchmarkDecode(b *testing.B) {
	r := wal.Record{Seq: 123456, Kind: wal.KindSet, Key: "user:0000000042", Value: strings.Repeat("v", 100), Deadline: 1767225600e9}
	frame := wal.AppendRecord(nil, r)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := wal.DecodeRecord(frame); err != nil {
			b.Fatal(err)
		}
	}
}
