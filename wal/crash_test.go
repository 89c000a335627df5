package wal_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"kvstore/wal"
	"kvstore/wal/faultfs"
)

// crashSeeds is how many seeded crash scenarios TestCrashRecovery runs.
// Each takes about a millisecond in memory.
const crashSeeds = 200

// TestCrashRecovery powers the file system off at a seeded point while
// the log is being written, reboots it keeping a seeded part of the
// unsynced data, and checks that recovery always succeeds and keeps
// exactly a prefix of the submitted records that contains every record
// acknowledged under FsyncAlways. To rerun one scenario:
//
//	go test -run 'TestCrashRecovery/seed=57$' ./wal/
func TestCrashRecovery(t *testing.T) {
	for seed := int64(1); seed <= crashSeeds; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			crashScenario(t, seed)
		})
	}
}

func crashScenario(t *testing.T, seed int64) {
	rng := rand.New(rand.NewPCG(uint64(seed), 42))
	fsys := faultfs.New(seed)
	opts := wal.Options{Dir: testDir, FS: fsys, SegmentBytes: 64 + rng.Int64N(512), PreallocBytes: -1}
	if rng.IntN(4) != 0 {
		opts.PreallocBytes = 16 + rng.Int64N(256)
	}
	if rng.IntN(4) == 0 {
		opts.Fsync = wal.FsyncNo
	}
	mode := faultfs.CrashMode(rng.IntN(3))
	desc := fmt.Sprintf("seed %d: policy %v, segment bytes %d, prealloc %d, crash mode %v",
		seed, opts.Fsync, opts.SegmentBytes, opts.PreallocBytes, mode)

	// A log from an earlier run, written and closed cleanly.
	prior := rng.IntN(20)
	all := records(1, prior+300)
	writeLog(t, opts, all[:prior])
	fsys.CrashAfter(rng.IntN(150))

	acked := uint64(prior) // highest seq acknowledged with nil
	var released uint64    // highest seq passed to Compact
	if l, err := wal.Open(opts); err == nil {
		last, err := l.Replay(0, func(wal.Record) error { return nil })
		if err == nil {
			l.Start(last + 1)
			acked, released = runLoad(t, rng, l, all, last, desc)
		}
		l.Close()
	} else if !errors.Is(err, faultfs.ErrCrashed) {
		t.Fatalf("%s: Open: %v", desc, err)
	}
	rebooted := fsys.Crash(mode)

	// Sometimes crash again while recovery cuts the torn tail.
	if rng.IntN(3) == 0 {
		rebooted.CrashAfter(rng.IntN(12))
		if l, err := wal.Open(wal.Options{Dir: testDir, FS: rebooted, PreallocBytes: opts.PreallocBytes}); err == nil {
			l.Close()
		}
		rebooted = rebooted.Crash(faultfs.CrashMode(rng.IntN(3)))
	}

	// The restarted server may use another policy; always is the
	// strictest for what follows.
	policy := opts.Fsync
	opts = wal.Options{Dir: testDir, FS: rebooted, SegmentBytes: opts.SegmentBytes, PreallocBytes: opts.PreallocBytes}
	l, err := wal.Open(opts)
	if err != nil {
		t.Fatalf("%s: Open after crash: %v\n%s", desc, err, rebooted)
	}
	var got []wal.Record
	last, err := l.Replay(released, func(r wal.Record) error {
		got = append(got, r)
		return nil
	})
	l.Close()
	if err != nil {
		t.Fatalf("%s: Replay(%d) after crash: %v\n%s", desc, released, err, rebooted)
	}
	want := all[released : int(released)+len(got)]
	if !slices.Equal(got, want) {
		t.Fatalf("%s: recovered records are not a prefix of those submitted: %s", desc, summary(got))
	}
	if policy == wal.FsyncAlways && last < acked {
		t.Fatalf("%s: recovered through seq %d, but %d was acknowledged", desc, last, acked)
	}
	if last < uint64(prior) {
		t.Fatalf("%s: lost records of the cleanly closed log: have %d, had %d", desc, last, prior)
	}

	// The recovered log takes new records.
	more := all[last : last+3]
	writeLog(t, opts, more)
	got = replayAll(t, opts, released)
	if !slices.Equal(got, all[released:last+3]) {
		t.Fatalf("%s: after appending to the recovered log: %s", desc, summary(got))
	}
}

// runLoad submits batches of 0-4 records after seq last until the log
// fails or the records run out, sometimes waiting for what is
// outstanding, sometimes releasing segments as a snapshot would. It
// returns the highest acknowledged seq and the highest seq released.
func runLoad(t *testing.T, rng *rand.Rand, l *wal.Log, all []wal.Record, last uint64, desc string) (acked, released uint64) {
	t.Helper()
	type pending struct {
		w    *waiter
		last uint64 // seq the batch ends at
	}
	var out []pending
	acked = last
	failed := false
	collect := func() {
		for _, p := range out {
			err := p.w.wait()
			switch {
			case err == nil && failed:
				t.Fatalf("%s: batch through seq %d acknowledged after an earlier one failed", desc, p.last)
			case err == nil:
				acked = p.last
			default:
				failed = true
			}
		}
		out = out[:0]
	}
	next := last + 1
	for i := 0; i < 120 && int(next)+4 < len(all); i++ {
		n := rng.IntN(5)
		w := newWaiter()
		l.Submit(wal.Batch{Records: all[next-1 : next-1+uint64(n)], Waiters: []wal.Waiter{w}})
		next += uint64(n)
		out = append(out, pending{w, next - 1})
		switch rng.IntN(6) {
		case 0:
			collect()
		case 1:
			collect()
			if acked > released {
				through := released + rng.Uint64N(acked-released+1)
				// The snapshot covering through is durable before
				// Compact is called, so even a Compact that fails
				// part way may have deleted what it covers.
				released = through
				if err := l.Compact(through); err != nil && !errors.Is(err, faultfs.ErrCrashed) {
					t.Fatalf("%s: Compact: %v", desc, err)
				}
			}
		}
	}
	collect()
	return acked, released
}
