package server

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// gcFloor keeps the garbage collector's heap goal at or above a floor.
//
// Go starts a collection when the heap has grown by GOGC percent (100 by
// default) over what the last one left live. A server with a small data
// set has a few MB live, and grpc-go leaves ~4 KB of garbage per request:
// at 40k requests/s that was a collection every ~50 ms, whose mark
// assists took ~5 % of the CPU and stretched p99 by ~40 % (docs/
// BENCHMARKS.md). Raising GOGC for good would double the memory of a
// large data set; the floor instead raises the percent only while
// live×(1+GOGC/100) is below it, so large heaps keep the user's GOGC.
// GOMEMLIMIT, if set, still bounds the heap: the runtime collects at the
// limit whatever the percent says.
//
// After every collection (a finalizer on a sentinel object is the hook)
// it reads the live heap and sets the percent for the next cycle. It
// starts no goroutine: finalizers run on the runtime's own.
type gcFloor struct {
	floor uint64
	base  int // the percent in force at start: GOGC, or 100

	mu      sync.Mutex
	stopped bool
	percent int // last percent set
	sample  []metrics.Sample
	// tuned, when set by a test, receives each percent computed: the
	// explicit hand-off after a collection.
	tuned chan int
}

// gcSentinel is the object whose finalizer marks the end of a collection.
// It holds a pointer so the allocator does not pack it with other tiny
// objects, which would delay its finalizer.
type gcSentinel struct{ _ *byte }

// startGCFloor starts keeping the heap goal at or above floor bytes and
// returns the function that stops it and restores the starting percent.
// A floor of 0, or GOGC=off, leaves the collector alone.
func startGCFloor(floor uint64) (g *gcFloor, stop func()) {
	g = newGCFloor(floor)
	if floor == 0 || g.base < 0 {
		return g, func() {}
	}
	g.arm()
	return g, g.stop
}

func newGCFloor(floor uint64) *gcFloor {
	// SetGCPercent returns the percent in force (GOGC's), and the second
	// call puts it back.
	base := debug.SetGCPercent(100)
	debug.SetGCPercent(base)
	return &gcFloor{
		floor:   floor,
		base:    base,
		percent: base,
		sample:  []metrics.Sample{{Name: "/gc/heap/live:bytes"}},
	}
}

func (g *gcFloor) arm() {
	runtime.SetFinalizer(new(gcSentinel), g.afterGC)
}

func (g *gcFloor) afterGC(*gcSentinel) {
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		return
	}
	metrics.Read(g.sample)
	live := g.sample[0].Value.Uint64()
	p := gcPercentFor(live, g.floor, g.base)
	// Small moves are not worth a pacer update.
	if p != g.percent && (p == g.base || p*10 < g.percent*9 || p*10 > g.percent*11) {
		debug.SetGCPercent(p)
		g.percent = p
	}
	g.mu.Unlock()
	if g.tuned != nil {
		select {
		case g.tuned <- p:
		default: // never block the runtime's finalizer goroutine
		}
	}
	g.arm()
}

func (g *gcFloor) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return
	}
	g.stopped = true
	debug.SetGCPercent(g.base)
}

// gcPercentFor returns the GOGC percent that puts the heap goal,
// live×(1+percent/100), at floor, or base when base already reaches it.
func gcPercentFor(live, floor uint64, base int) int {
	const minLive = 1 << 20 // a nearly empty heap must not ask for a huge percent
	live = max(live, minLive)
	if live >= floor || live+live*uint64(base)/100 >= floor {
		return base
	}
	return int((floor - live) * 100 / live)
}
