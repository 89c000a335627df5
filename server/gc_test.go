package server

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, tt := range []struct {
		live, floor uint64
		base, want  int
	}{
		{live: 10 * mib, floor: 64 * mib, base: 100, want: 540},
		{live: 32 * mib, floor: 64 * mib, base: 100, want: 100}, // goal 64 MiB already
		{live: 40 * mib, floor: 64 * mib, base: 100, want: 100},
		{live: 200 * mib, floor: 64 * mib, base: 100, want: 100},
		{live: 10 * mib, floor: 64 * mib, base: 50, want: 540},
		{live: 10 * mib, floor: 64 * mib, base: 800, want: 800}, // the user's GOGC is higher
		{live: 0, floor: 64 * mib, base: 100, want: 6300},       // counted as 1 MiB
		{live: 1, floor: 0, base: 100, want: 100},
	} {
		if got := gcPercentFor(tt.live, tt.floor, tt.base); got != tt.want {
			t.Errorf("gcPercentFor(%d, %d, %d) = %d, want %d", tt.live, tt.floor, tt.base, got, tt.want)
		}
	}
}

// gogc reads the percent in force without changing it.
func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// TestGCFloor: after a collection the floor raises the percent for this
// test's small heap, and stop puts the starting percent back. Not
// parallel: the percent is the process's.
func TestGCFloor(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	g := newGCFloor(1 << 30)
	g.tuned = make(chan int, 16)
	g.arm()
	runtime.GC()
	p := <-g.tuned // the explicit hand-off: the finalizer ran
	if p <= 100 {
		t.Fatalf("percent after a collection = %d, want > 100 for a 1 GiB floor", p)
	}
	if got := gogc(); got != p {
		t.Fatalf("GOGC in force = %d, want %d", got, p)
	}
	g.stop()
	if got := gogc(); got != 100 {
		t.Fatalf("GOGC after stop = %d, want 100 back", got)
	}
	// Stopped: a later collection changes nothing.
	runtime.GC()
	runtime.GC()
	if got := gogc(); got != 100 {
		t.Fatalf("GOGC after stop and two collections = %d, want 100", got)
	}
}

// TestGCFloorRespectsGOGCOff: with collection disabled the floor does not
// turn it back on.
func TestGCFloorRespectsGOGCOff(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	g, stop := startGCFloor(1 << 30)
	defer stop()
	if g.base != -1 {
		t.Fatalf("base = %d, want -1 (off)", g.base)
	}
	if got := debug.SetGCPercent(-1); got != -1 {
		t.Fatalf("GOGC = %d, want off", got)
	}
}
