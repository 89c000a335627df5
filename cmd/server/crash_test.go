package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kvstorepb "kvstore/proto"
)

var (
	crashCycles = flag.Int("crash-cycles", 20, "SIGKILL/restart cycles of TestCrashRecovery")
	crashSeed   = flag.Uint64("crash-seed", 0, "seed of TestCrashRecovery (0 picks one and logs it)")
)

// keyModel is what the test knows about one key: its last acknowledged
// state and, when an operation on it was cut off by the crash, the state
// that operation would have left. nil means absent.
type keyModel struct {
	acked     *string
	uncertain bool
	maybe     *string
}

func strp(s string) *string { return &s }

func show(p *string) string {
	if p == nil {
		return "<absent>"
	}
	return fmt.Sprintf("%q", *p)
}

// TestCrashRecovery runs the real server binary with --fsync always under
// concurrent writes and deletes, SIGKILLs it after a random number of
// acknowledged operations, restarts it and checks that every acknowledged
// write is there with its value and every acknowledged delete stayed
// deleted. Small segments and a short snapshot interval make the crashes
// land during segment rolls, snapshots and log truncation too.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the server binary through many crashes")
	}
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -crash-seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	const workers, keysPerWorker = 8, 64
	models := make([][]keyModel, workers)
	for w := range models {
		models[w] = make([]keyModel, keysPerWorker)
	}
	key := func(w, k int) string { return fmt.Sprintf("w%d-k%d", w, k) }
	dir := t.TempDir()
	args := []string{"--data-dir", dir, "--fsync", "always", "--wal-segment-bytes", "4096",
		"--snapshot-interval", "50ms", "--no-final-snapshot"}
	totalAcked := 0

	for cycle := range *crashCycles {
		p := startBinary(t, args...)
		c := dial(t, p.addr)
		ctx := context.Background()

		// Every key must hold its acknowledged state, or the state of the
		// operation the last crash cut off.
		for w := range workers {
			for k := range keysPerWorker {
				m := &models[w][k]
				resp, err := c.Get(ctx, &kvstorepb.GetRequest{Key: key(w, k)})
				if err != nil {
					t.Fatalf("cycle %d: get %s after restart: %v; server stderr:\n%s", cycle, key(w, k), err, p.stderr)
				}
				var got *string
				if resp.GetFound() {
					got = strp(resp.GetValue())
				}
				ok := equalState(got, m.acked) || (m.uncertain && equalState(got, m.maybe))
				if !ok {
					t.Fatalf("cycle %d (seed %d): %s = %s; acknowledged %s (in flight at crash: %v %s)",
						cycle, seed, key(w, k), show(got), show(m.acked), m.uncertain, show(m.maybe))
				}
				*m = keyModel{acked: got} // what recovery returned is durable now
			}
		}

		// Load until a random number of acknowledgements, then SIGKILL.
		target := int64(50 + rng.IntN(1500))
		var acked atomic.Int64
		loadCtx, stopLoad := context.WithCancel(ctx)
		killed := make(chan struct{})
		var wg sync.WaitGroup
		for w := range workers {
			wrng := rand.New(rand.NewPCG(rng.Uint64(), uint64(w)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for op := 0; loadCtx.Err() == nil; op++ {
					k := wrng.IntN(keysPerWorker)
					m := &models[w][k]
					var err error
					if wrng.IntN(10) < 7 {
						v := fmt.Sprintf("c%d-w%d-op%d", cycle, w, op)
						m.uncertain, m.maybe = true, strp(v)
						req := &kvstorepb.SetRequest{Key: key(w, k), Value: v}
						if wrng.IntN(4) == 0 {
							req.TtlSeconds = 3600 // deadlines must survive too
						}
						_, err = c.Set(loadCtx, req)
					} else {
						m.uncertain, m.maybe = true, nil
						_, err = c.Delete(loadCtx, &kvstorepb.DeleteRequest{Key: key(w, k)})
					}
					if err != nil {
						return // the crash (or the stop): outcome unknown
					}
					m.acked, m.uncertain, m.maybe = m.maybe, false, nil
					if acked.Add(1) == target {
						close(killed)
					}
				}
			}()
		}
		<-killed
		if err := p.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		p.cmd.Wait()
		stopLoad()
		wg.Wait()
		totalAcked += int(acked.Load())
	}
	t.Logf("%d cycles, %d acknowledged operations checked", *crashCycles, totalAcked)
}

func equalState(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
