package actor

import (
	"container/heap"
	"slices"
	"strings"
)

const secondNanos = int64(1e9)

// expiryIndex groups keys by the whole second of their deadline, with a
// min-heap of those seconds. It holds only seconds with a key in them: a
// bucket is dropped, from the map and the heap, as soon as its last key
// is overwritten, deleted or expired, so the index stays proportional to
// the stored keys with a TTL whatever the write pattern (overwriting a
// key with a deadline in a new second each time would otherwise leave
// one empty bucket per write until that second passed). Each bucket
// knows its place in the heap, so dropping one costs O(log seconds).
type expiryIndex struct {
	buckets map[int64]*bucket
	secs    []*bucket // a min-heap by sec
}

// bucket is the keys whose deadline falls in second sec; i is its index
// in expiryIndex.secs.
type bucket struct {
	sec  int64
	keys hashTrie
	i    int
}

func (x *expiryIndex) add(key string, deadline int64) {
	sec := deadline / secondNanos
	b, ok := x.buckets[sec]
	if !ok {
		b = &bucket{sec: sec}
		x.buckets[sec] = b
		heap.Push(x, b)
	}
	b.keys.add(key, fnv64a(key), 0)
}

// passed reports whether every deadline in second sec is at or before now.
// (sec+1)*1e9 <= now, written without the multiplication that overflows for
// deadlines near the end of int64 time.
func (x *expiryIndex) passed(sec, now int64) bool { return sec < now/secondNanos }

// remove takes key, whose deadline is deadline, out of the index, and
// drops its bucket if that was the bucket's last key.
func (x *expiryIndex) remove(key string, deadline int64) {
	b := x.buckets[deadline/secondNanos]
	b.keys.remove(key, fnv64a(key), 0)
	if b.keys.n == 0 {
		x.drop(b)
	}
}

// drop removes bucket b from the map and the heap.
func (x *expiryIndex) drop(b *bucket) {
	delete(x.buckets, b.sec)
	heap.Remove(x, b.i)
}

func (x *expiryIndex) Len() int           { return len(x.secs) }
func (x *expiryIndex) Less(i, j int) bool { return x.secs[i].sec < x.secs[j].sec }
func (x *expiryIndex) Swap(i, j int) {
	x.secs[i], x.secs[j] = x.secs[j], x.secs[i]
	x.secs[i].i = i
	x.secs[j].i = j
}

func (x *expiryIndex) Push(v any) {
	b := v.(*bucket)
	b.i = len(x.secs)
	x.secs = append(x.secs, b)
}

func (x *expiryIndex) Pop() any {
	b := x.secs[len(x.secs)-1]
	x.secs[len(x.secs)-1] = nil // the heap does not keep buckets alive
	x.secs = x.secs[:len(x.secs)-1]
	return b
}

// Shape of a hashTrie: a leaf splits into trieFan children, by the next
// trieBits of the key's hash, once it holds more than leafMax keys. A
// bounded pass sorts at most one leaf, so leafMax bounds the extra work
// any pass does for its determinism (BenchmarkExpireMillion's
// max-ns/pass).
const (
	leafMax   = 512
	trieBits  = 4
	trieFan   = 1 << trieBits
	trieDepth = 64 / trieBits // past it all the hash bits are used
)

// hashTrie is a set of keys kept in the order of a seedless hash (FNV-1a)
// of each key, then bytewise: a small set is one map; a large one is a
// trie on the hash's leading bits whose leaves are small maps. take
// removes the first keys in that order by removing whole subtrees while
// they fit and sorting only the one leaf that does not, so its work is
// proportional to the keys removed plus one leaf, whatever the set's
// size. The order depends only on the keys, so every State holding the
// same keys (a replica, or one rebuilt from a snapshot) removes the same.
type hashTrie struct {
	leaf map[string]struct{} // the keys, while kids is nil
	kids *[trieFan]hashTrie
	n    int // keys in the subtree
}

func trieIndex(h uint64, depth int) int {
	return int(h >> (64 - trieBits*(depth+1)) & (trieFan - 1))
}

// add puts key, whose hash is h, in the subtree at depth, and reports
// whether it was not there yet.
func (t *hashTrie) add(key string, h uint64, depth int) bool {
	if t.kids != nil {
		if !t.kids[trieIndex(h, depth)].add(key, h, depth+1) {
			return false
		}
		t.n++
		return true
	}
	if _, ok := t.leaf[key]; ok {
		return false
	}
	if t.leaf == nil {
		t.leaf = make(map[string]struct{}, 1)
	}
	t.leaf[key] = struct{}{}
	t.n++
	if t.n > leafMax && depth < trieDepth {
		t.kids = new([trieFan]hashTrie)
		for k := range t.leaf {
			t.kids[trieIndex(fnv64a(k), depth)].add(k, fnv64a(k), depth+1)
		}
		t.leaf = nil
	}
	return true
}

// remove takes key, whose hash is h, out of the subtree at depth, and
// reports whether it was there. An emptied subtree frees its maps.
func (t *hashTrie) remove(key string, h uint64, depth int) bool {
	if t.kids != nil {
		if !t.kids[trieIndex(h, depth)].remove(key, h, depth+1) {
			return false
		}
	} else {
		if _, ok := t.leaf[key]; !ok {
			return false
		}
		delete(t.leaf, key)
	}
	t.n--
	if t.n == 0 {
		*t = hashTrie{}
	}
	return true
}

// take removes the first (at most) limit keys of the subtree at depth in
// hash order, calls fn with each, and returns how many it removed.
func (t *hashTrie) take(limit, depth int, fn func(key string)) int {
	switch {
	case limit <= 0 || t.n == 0:
		return 0
	case t.n <= limit:
		// All of it: the order cannot matter.
		n := t.n
		t.each(fn)
		*t = hashTrie{}
		return n
	case t.kids != nil:
		taken := 0
		for i := range t.kids {
			if taken == limit {
				break
			}
			taken += t.kids[i].take(limit-taken, depth+1, fn)
		}
		t.n -= taken
		return taken
	}
	// A leaf with more keys than fit: sort it and take its first ones.
	keys := make([]hashedKey, 0, len(t.leaf))
	for k := range t.leaf {
		keys = append(keys, hashedKey{fnv64a(k), k})
	}
	slices.SortFunc(keys, func(a, b hashedKey) int {
		if a.h != b.h {
			if a.h < b.h {
				return -1
			}
			return 1
		}
		return strings.Compare(a.key, b.key)
	})
	for _, k := range keys[:limit] {
		delete(t.leaf, k.key)
		fn(k.key)
	}
	t.n -= limit
	return limit
}

// each calls fn with every key of the subtree, in no particular order.
func (t *hashTrie) each(fn func(key string)) {
	for k := range t.leaf {
		fn(k)
	}
	if t.kids != nil {
		for i := range t.kids {
			t.kids[i].each(fn)
		}
	}
}

type hashedKey struct {
	h   uint64
	key string
}

// fnv64a is FNV-1a: fixed, unlike maphash's seeds, so every replica and
// every run orders keys the same way.
func fnv64a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
