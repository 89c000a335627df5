package main

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

func testWorkload(m mix) *workload {
	return &workload{mix: m, keys: 1000, dist: distUniform, zipfS: 1.1, value: "v", seed: 42}
}

func TestMixProportions(t *testing.T) {
	const n = 20_000
	for _, m := range []mix{{50, 30, 20}, {50, 50, 0}, {100, 0, 0}, {0, 1, 0}, {0, 0, 7}, {1, 1, 1}} {
		g := testWorkload(m).generator(3)
		var got [numOps]int
		for range n {
			got[g.next().kind]++
		}
		total := m[0] + m[1] + m[2]
		for k := range numOps {
			want := float64(m[k]) / float64(total)
			share := float64(got[k]) / n
			if m[k] == 0 && got[k] != 0 || math.Abs(share-want) > 0.02 {
				t.Errorf("mix %v: %s share %.4f, want %.4f", m, k, share, want)
			}
		}
	}
}

func TestGeneratorIsReproducible(t *testing.T) {
	w := testWorkload(mix{1, 1, 1})
	a, b, c := w.generator(5), w.generator(5), w.generator(6)
	same := true
	for range 100 {
		x, y, z := a.next(), b.next(), c.next()
		if x != y {
			t.Fatalf("same seed and stream differ: %+v vs %+v", x, y)
		}
		same = same && x == z
	}
	if same {
		t.Error("streams 5 and 6 drew the same 100 ops")
	}
}

func TestUniformKeysCoverTheKeySpace(t *testing.T) {
	w := testWorkload(mix{0, 1, 0})
	w.keys = 10
	g := w.generator(0)
	seen := map[string]int{}
	for range 10_000 {
		seen[g.next().key]++
	}
	if len(seen) != 10 {
		t.Fatalf("saw %d distinct keys, want 10: %v", len(seen), seen)
	}
	for i := range 10 {
		if n := seen[keyName(i)]; n < 800 || n > 1200 {
			t.Errorf("%s drawn %d times of 10000, want about 1000", keyName(i), n)
		}
	}
}

func TestZipfKeysAreInRangeAndSkewed(t *testing.T) {
	w := testWorkload(mix{0, 1, 0})
	w.dist = distZipf
	w.keys = 1000
	g := w.generator(0)
	count := make([]int, w.keys)
	for range 100_000 {
		i := g.keyIndex()
		if i < 0 || i >= w.keys {
			t.Fatalf("zipf drew key %d outside [0, %d)", i, w.keys)
		}
		count[i]++
	}
	if !(count[0] > count[1] && count[1] > count[10] && count[10] > count[500]) {
		t.Errorf("zipf counts not decreasing with rank: key0 %d, key1 %d, key10 %d, key500 %d", count[0], count[1], count[10], count[500])
	}
	if count[0] < 100_000/10 {
		t.Errorf("hottest key drawn %d times of 100000; zipf s=1.1 should give it over 10%%", count[0])
	}

	w.keys = 1 // the smallest key space works for both distributions
	for _, dist := range []string{distUniform, distZipf} {
		w.dist = dist
		g := w.generator(0)
		for range 100 {
			if k := g.next().key; k != "key:00000000" {
				t.Fatalf("%s over one key drew %q", dist, k)
			}
		}
	}
}

func TestSetsCarryTTLByFraction(t *testing.T) {
	for _, tc := range []struct {
		ttl      int64
		fraction float64
		want     float64
	}{{30, 0.25, 0.25}, {30, 1, 1}, {30, 0, 0}, {0, 1, 0}} {
		w := testWorkload(mix{1, 0, 0})
		w.ttlSeconds, w.ttlFraction = tc.ttl, tc.fraction
		g := w.generator(0)
		with := 0
		for range 10_000 {
			o := g.next()
			if o.value != "v" {
				t.Fatalf("set carries value %q, want the workload's", o.value)
			}
			switch o.ttl {
			case tc.ttl:
				if tc.ttl > 0 {
					with++
				}
			case 0:
			default:
				t.Fatalf("set carries ttl %d, want 0 or %d", o.ttl, tc.ttl)
			}
		}
		if share := float64(with) / 10_000; math.Abs(share-tc.want) > 0.02 {
			t.Errorf("ttl %d fraction %v: %.3f of sets carry it, want %.3f", tc.ttl, tc.fraction, share, tc.want)
		}
	}
}

func TestKeyNameMatchesSprintf(t *testing.T) {
	for _, i := range []int{0, 7, 42, 99_999, 12_345_678, 99_999_999, 123_456_789, 1 << 40} {
		if got, want := keyName(i), fmt.Sprintf("key:%08d", i); got != want {
			t.Errorf("keyName(%d) = %q, want %q", i, got, want)
		}
	}
}

func TestRandomValueIsPrintableAndSeeded(t *testing.T) {
	v := randomValue(1000, 7)
	if len(v) != 1000 {
		t.Fatalf("len %d, want 1000", len(v))
	}
	if strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > 'z' }) >= 0 {
		t.Errorf("value has non-printable bytes: %q", v)
	}
	if v != randomValue(1000, 7) || v == randomValue(1000, 8) {
		t.Error("value is not a function of the seed")
	}
	if randomValue(0, 1) != "" {
		t.Error("size 0 is not empty")
	}
}

func TestMixFlagRoundTrips(t *testing.T) {
	for in, want := range map[string]mix{"50:50:0": {50, 50, 0}, "100:0:0": {100, 0, 0}, "3:1": {3, 1, 0}, " 1 : 2 : 3 ": {1, 2, 3}} {
		var m mix
		if err := m.Set(in); err != nil || m != want {
			t.Errorf("Set(%q) = %v, %v; want %v", in, m, err, want)
		}
		if err := new(mix).Set(m.String()); err != nil {
			t.Errorf("String() %q does not parse back: %v", m.String(), err)
		}
	}
}
