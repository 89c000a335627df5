package actor

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// indexSize returns how many per-second buckets and heap entries s's
// expiry index holds.
func indexSize(s *State) (buckets, heapLen int) {
	return len(s.expiry.buckets), len(s.expiry.secs)
}

// TestExpiryIndexBoundedByLiveKeys is the regression test for an index
// that kept every second a deadline was ever in: overwriting a few keys
// with a TTL in a new second each time left an empty bucket and a heap
// entry per write until that second passed (issue 12, item 4: 1.5M Sets
// over 10 keys held 406 MB). The index must stay within the live keys
// with a TTL, whatever the write pattern.
func TestExpiryIndexBoundedByLiveKeys(t *testing.T) {
	const keys, writes = 10, 20_000
	s := NewState()
	for i := range writes {
		s.Set(fmt.Sprint("k", i%keys), "v", int64(1_000_000+i)*sec)
	}
	if b, h := indexSize(s); b > s.TTLLen() || h > s.TTLLen() {
		t.Fatalf("after %d TTL overwrites of %d keys: %d buckets, %d heap entries; want at most %d (live keys with a TTL)",
			writes, keys, b, h, s.TTLLen())
	}
	// Dropping the TTL or the key empties the index.
	for i := range keys / 2 {
		s.Set(fmt.Sprint("k", i), "v", 0)
	}
	for i := keys / 2; i < keys; i++ {
		s.Delete(fmt.Sprint("k", i), 0)
	}
	if b, h := indexSize(s); b != 0 || h != 0 || s.TTLLen() != 0 {
		t.Fatalf("no key has a TTL, yet the index holds %d buckets, %d heap entries (TTLLen %d)", b, h, s.TTLLen())
	}
}

// TestReplayTTLOverwritesBoundedIndex: replaying a log of TTL overwrites
// (State.Apply, as recovery does) must not rebuild the garbage either.
func TestReplayTTLOverwritesBoundedIndex(t *testing.T) {
	const keys, writes = 10, 20_000
	m := NewMachine(nil, 0, Rules{})
	var recs []Record
	for i := range writes {
		var err error
		_, recs, err = m.Apply(0, []Command{{Op: OpSet, Key: fmt.Sprint("k", i%keys), Value: "v",
			Deadline: int64(1_000_000+i) * sec}}, nil, recs)
		if err != nil {
			t.Fatal(err)
		}
	}
	s := NewState()
	for _, r := range recs {
		s.Apply(r)
	}
	if s.TTLLen() != keys {
		t.Fatalf("TTLLen %d after replay; want %d", s.TTLLen(), keys)
	}
	if b, h := indexSize(s); b > keys || h > keys {
		t.Fatalf("replay of %d TTL overwrites of %d keys: %d buckets, %d heap entries; want at most %d",
			writes, keys, b, h, keys)
	}
}

// checkIndex verifies that s's expiry index holds exactly the stored keys
// with a deadline, one non-empty bucket per second, each at its place in
// a valid heap.
func checkIndex(t *testing.T, s *State, step string) {
	t.Helper()
	x := &s.expiry
	want := make(map[int64]map[string]struct{})
	for _, sh := range s.shards {
		for k, e := range sh.m {
			if e.deadline == 0 {
				continue
			}
			sec := e.deadline / secondNanos
			if want[sec] == nil {
				want[sec] = make(map[string]struct{})
			}
			want[sec][k] = struct{}{}
		}
	}
	if len(x.buckets) != len(want) || len(x.secs) != len(want) {
		t.Fatalf("%s: %d buckets, %d heap entries; want %d (seconds with a stored key)",
			step, len(x.buckets), len(x.secs), len(want))
	}
	for i, b := range x.secs {
		if b.i != i {
			t.Fatalf("%s: bucket of second %d at heap index %d thinks it is at %d", step, b.sec, i, b.i)
		}
		if p := (i - 1) / 2; i > 0 && x.secs[p].sec > b.sec {
			t.Fatalf("%s: heap order broken: second %d under %d", step, b.sec, x.secs[p].sec)
		}
		if x.buckets[b.sec] != b {
			t.Fatalf("%s: heap holds a bucket of second %d that the map does not", step, b.sec)
		}
		got := checkTrie(t, &b.keys, 0, 0)
		if len(got) == 0 || !maps.Equal(got, want[b.sec]) {
			t.Fatalf("%s: second %d holds %d keys; want %d", step, b.sec, len(got), len(want[b.sec]))
		}
	}
}

// TestExpiryIndexInvariants drives a State through a seeded random mix
// of TTL sets in a few and in many seconds, sets without TTL, deletes and
// bounded expiry passes, and checks the index after every step.
func TestExpiryIndexInvariants(t *testing.T) {
	s := NewState()
	rng := rand.New(rand.NewPCG(1, 2))
	now := int64(0)
	for i := range 5000 {
		k := fmt.Sprint("k", rng.IntN(50))
		var step string
		switch r := rng.IntN(10); {
		case r < 4: // a TTL in one of a few seconds, so buckets share keys
			d := now + int64(1+rng.IntN(3))*sec + rng.Int64N(sec)
			s.Set(k, "v", d)
			step = fmt.Sprintf("set %s deadline %d", k, d)
		case r < 6: // a TTL in a second of its own
			d := int64(1_000_000+i) * sec
			s.Set(k, "v", d)
			step = fmt.Sprintf("set %s deadline %d", k, d)
		case r < 7:
			s.Set(k, "v", 0)
			step = "set " + k
		case r < 8:
			s.Delete(k, now)
			step = "delete " + k
		default:
			now += rng.Int64N(2 * sec)
			limit := 1 + rng.IntN(4)
			s.Expire(now, limit)
			step = fmt.Sprintf("expire at %d limit %d", now, limit)
		}
		checkIndex(t, s, fmt.Sprintf("step %d (%s)", i, step))
	}
}

// TestExpireOrderIgnoresHistory: which keys a bounded Expire takes from a
// second depends on the keys stored now, not on how the State got there.
// A State that sorted a second in an earlier pass and was then given new
// keys in that second (a deadline already passed: replay, or a TTL
// stamped before a slow commit) must choose as a State rebuilt from the
// same contents does, as a replica restored from a snapshot would.
func TestExpireOrderIgnoresHistory(t *testing.T) {
	a := NewState()
	for i := range 20 {
		a.Set(fmt.Sprint("a", i), "v", 1*sec)
	}
	a.Expire(10*sec, 5) // sorts second 1, takes 5
	for i := range 20 {
		a.Set(fmt.Sprint("b", i), "v", 1*sec+int64(i))
	}
	b := NewState()
	v := a.Freeze()
	v.Range(func(k, val string, d int64) bool {
		b.Set(k, val, d)
		return true
	})
	v.Release()
	for pass := 0; a.Len() > 0; pass++ {
		na, _ := a.Expire(10*sec, 5)
		nb, _ := b.Expire(10*sec, 5)
		va, vb := a.Freeze(), b.Freeze()
		ca, cb := viewContents(va), viewContents(vb)
		va.Release()
		vb.Release()
		if na != nb || !maps.Equal(ca, cb) {
			t.Fatalf("pass %d: the State with history removed %d and kept %d keys, the rebuilt one removed %d and kept %d; want the same keys",
				pass, na, len(ca), nb, len(cb))
		}
	}
}

// checkTrie checks a hashTrie's invariants (counts, leaf sizes, every key
// under its hash prefix) and returns its keys.
func checkTrie(t *testing.T, tr *hashTrie, depth int, prefix uint64) map[string]struct{} {
	t.Helper()
	keys := map[string]struct{}{}
	if tr.kids != nil {
		if tr.leaf != nil {
			t.Fatalf("depth %d: a node with both a leaf and children", depth)
		}
		for i := range tr.kids {
			maps.Copy(keys, checkTrie(t, &tr.kids[i], depth+1, prefix<<trieBits|uint64(i)))
		}
	} else {
		if len(tr.leaf) > leafMax && depth < trieDepth {
			t.Fatalf("depth %d: a leaf of %d keys, past %d", depth, len(tr.leaf), leafMax)
		}
		for k := range tr.leaf {
			if depth > 0 && fnv64a(k)>>(64-trieBits*depth) != prefix {
				t.Fatalf("key %q (hash %x) under prefix %x at depth %d", k, fnv64a(k), prefix, depth)
			}
			keys[k] = struct{}{}
		}
	}
	if len(keys) != tr.n {
		t.Fatalf("depth %d: n = %d, holds %d keys", depth, tr.n, len(keys))
	}
	return keys
}

// TestHashTrieTakesInHashOrder: whatever the insertion order, removals
// in between and the trie's shape, take removes exactly the first keys in
// (FNV-1a hash, key) order — the same keys as sorting the whole set.
func TestHashTrieTakesInHashOrder(t *testing.T) {
	const n = 5000 // several levels with leafMax 512
	byHash := func(keys []string) []string {
		s := slices.Clone(keys)
		slices.SortFunc(s, func(a, b string) int {
			return cmp.Or(cmp.Compare(fnv64a(a), fnv64a(b)), strings.Compare(a, b))
		})
		return s
	}
	for _, seed := range []uint64{1, 2, 3} {
		rng := rand.New(rand.NewPCG(seed, 0))
		keys := make([]string, n)
		for i := range keys {
			keys[i] = fmt.Sprint("key", i)
		}
		rng.Shuffle(n, func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		var tr hashTrie
		for _, k := range keys {
			if !tr.add(k, fnv64a(k), 0) {
				t.Fatalf("add %q reported present", k)
			}
		}
		if tr.add(keys[0], fnv64a(keys[0]), 0) {
			t.Fatal("adding a present key reported new")
		}
		// Remove a random tenth, so leaves are uneven.
		live := map[string]bool{}
		for _, k := range keys {
			live[k] = true
		}
		for _, k := range keys[:n/10] {
			if !tr.remove(k, fnv64a(k), 0) {
				t.Fatalf("remove %q reported absent", k)
			}
			delete(live, k)
		}
		if tr.remove(keys[0], fnv64a(keys[0]), 0) {
			t.Fatal("removing an absent key reported present")
		}
		checkTrie(t, &tr, 0, 0)
		want := byHash(slices.Collect(maps.Keys(live)))
		// Each take removes the next keys of want, as a set (fn is
		// called in no particular order).
		for pos := 0; tr.n > 0; {
			var got []string
			taken := tr.take(1+rng.IntN(700), 0, func(k string) { got = append(got, k) })
			if taken != len(got) || taken == 0 {
				t.Fatalf("take returned %d, called fn %d times", taken, len(got))
			}
			if !slices.Equal(byHash(got), want[pos:pos+taken]) {
				t.Fatalf("seed %d: take at %d removed other keys than the next %d in (hash, key) order", seed, pos, taken)
			}
			pos += taken
			checkTrie(t, &tr, 0, 0)
		}
		if tr.leaf != nil || tr.kids != nil {
			t.Fatal("an emptied trie keeps its maps")
		}
	}
}
