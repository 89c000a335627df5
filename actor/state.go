package actor

import (
	"hash/maphash"
	"maps"
	"slices"
	"sync/atomic"
)

// shardCount is a power of two, picked by BenchmarkSnapshotMemory and
// BenchmarkFreeze at 1M keys: freezing copies one pointer per shard (tens
// of microseconds at 4096), and every shard written while a snapshot holds
// a view is cloned once, so more shards mean less extra memory for a
// snapshot under light writes (1,000 writes clone ~20 MB at 4096 shards,
// ~60 MB at 1024). Past 4096 the small maps cost more memory than they
// save.
const shardCount = 4096

// entry is one stored value. deadline is an absolute time in Unix
// nanoseconds; 0 means the key never expires.
type entry struct {
	value    string
	deadline int64
}

// live reports whether e is visible at now.
func (e entry) live(now int64) bool { return e.deadline == 0 || now < e.deadline }

// shard is one slice of the key space. gen is the State's gen when the
// shard was made: a shard older than a live View is shared with it and
// must be cloned before it is written (see State.writable).
type shard struct {
	m   map[string]entry
	gen uint64
}

// State is the whole data set: a sharded map plus an index of deadlines.
// It is a plain single-threaded value: no I/O, no clock, no goroutines, no
// locks. Time comes in as arguments. Only the actor goroutine touches it.
type State struct {
	shards [shardCount]*shard
	// gen counts freezes; see shard. live holds the gens of the Views not
	// released yet, ascending, so the newest live one is last.
	gen  uint64
	live []uint64
	// clones counts copy-on-write shard clones, for tests.
	clones uint64
	n      int
	// ttl counts stored keys with a deadline; expired counts the keys
	// Expire has removed. Plain counters for metrics, read by the owner.
	ttl     int
	expired uint64
	// bytes estimates the memory the data takes (see entryBytes), for
	// --max-memory.
	bytes  int64
	seed   maphash.Seed
	expiry expiryIndex
	// expireFn is s.expireKey, bound once so that an expiry pass does not
	// allocate a method value.
	expireFn func(key string)
}

// NewState returns an empty State.
func NewState() *State {
	s := &State{seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i] = &shard{m: make(map[string]entry)}
	}
	s.expiry.buckets = make(map[int64]*bucket)
	s.expireFn = s.expireKey
	return s
}

func (s *State) shardOf(key string) int {
	return int(maphash.String(s.seed, key) & (shardCount - 1))
}

// writable returns shard i's map, cloning it first if a live View shares
// it. A shard is in every View frozen since it was made and not released,
// so it is shared exactly when it is older than the newest live View;
// once every View is released nothing is cloned.
func (s *State) writable(i int) map[string]entry {
	sh := s.shards[i]
	if sh.gen < s.pinned() {
		sh = &shard{m: maps.Clone(sh.m), gen: s.gen}
		s.shards[i] = sh
		s.clones++
	}
	return sh.m
}

// pinned is the gen of the newest live View, 0 when there is none.
func (s *State) pinned() uint64 {
	if len(s.live) == 0 {
		return 0
	}
	return s.live[len(s.live)-1]
}

// Len returns the number of stored keys, counting expired keys that active
// expiry has not removed yet.
func (s *State) Len() int { return s.n }

// TTLLen returns the number of stored keys that have a deadline, counting
// expired keys that active expiry has not removed yet.
func (s *State) TTLLen() int { return s.ttl }

// Expired returns the number of keys active expiry (Expire) has removed
// since NewState. Expired keys that a Set overwrites or a Delete removes
// first are not counted.
func (s *State) Expired() uint64 { return s.expired }

// Get returns the value of key if it exists and has not expired at now.
func (s *State) Get(key string, now int64) (string, bool) {
	e, ok := s.shards[s.shardOf(key)].m[key]
	if !ok || !e.live(now) {
		return "", false
	}
	return e.value, true
}

// Lookup returns the value and deadline of key if it exists and has not
// expired at now.
func (s *State) Lookup(key string, now int64) (value string, deadline int64, ok bool) {
	e, ok := s.shards[s.shardOf(key)].m[key]
	if !ok || !e.live(now) {
		return "", 0, false
	}
	return e.value, e.deadline, true
}

// ScanShards is a cursor over the keys: it appends to keys those live at
// now that match (nil: all), from shard cursor on, whole shards at a
// time until it has at least count, and returns the cursor to go on
// from, 0 once every shard was visited. A key stays in one shard for the
// State's life, so a scan from 0 to 0 returns every key that was live
// throughout it at least once, and each at most once, whatever was
// written in between (Redis' SCAN guarantee).
func (s *State) ScanShards(cursor uint64, count int, now int64, match func(string) bool, keys []string) ([]string, uint64) {
	for i := cursor; i < shardCount; i++ {
		for k, e := range s.shards[i].m {
			if e.live(now) && (match == nil || match(k)) {
				keys = append(keys, k)
			}
		}
		if len(keys) >= count {
			if i+1 == shardCount {
				return keys, 0
			}
			return keys, i + 1
		}
	}
	return keys, 0
}

// entryOverhead is what a stored entry costs beyond its key and value
// bytes, measured with BenchmarkSnapshotMemory's state size at 1M keys
// (~103 bytes an entry for 12-byte keys and 16-byte values): the map slot,
// the string headers, the deadline and the index entry of keys with a TTL.
const entryOverhead = 72

// entryBytes is the estimated memory of one entry.
func entryBytes(key, value string) int64 {
	return int64(len(key)+len(value)) + entryOverhead
}

// Bytes returns the estimated memory the stored data takes: keys, values
// and a fixed per-entry overhead. It is what --max-memory limits.
func (s *State) Bytes() int64 { return s.bytes }

// Growth returns how much Set(key, value, …) would add to Bytes: negative
// or zero for an overwrite with a value no longer than the old one.
func (s *State) Growth(key, value string) int64 {
	return s.growthTo(key, len(value))
}

// growthTo is Growth for a value of n bytes.
func (s *State) growthTo(key string, n int) int64 {
	if old, ok := s.shards[s.shardOf(key)].m[key]; ok {
		return int64(n - len(old.value))
	}
	return int64(len(key)+n) + entryOverhead
}

// length is the length of the value of key stored, expired or not.
func (s *State) length(key string) int {
	return len(s.shards[s.shardOf(key)].m[key].value)
}

// Set stores value under key with the given absolute deadline (0 = never
// expires), replacing any earlier value and deadline.
func (s *State) Set(key, value string, deadline int64) {
	m := s.writable(s.shardOf(key))
	old, existed := m[key]
	if !existed {
		s.n++
		s.bytes += entryBytes(key, value)
	} else {
		s.bytes += int64(len(value) - len(old.value))
		if old.deadline != 0 {
			s.expiry.remove(key, old.deadline)
			s.ttl--
		}
	}
	m[key] = entry{value: value, deadline: deadline}
	if deadline != 0 {
		s.expiry.add(key, deadline)
		s.ttl++
	}
}

// Delete removes key and reports whether it was live at now.
func (s *State) Delete(key string, now int64) bool {
	i := s.shardOf(key)
	old, ok := s.shards[i].m[key]
	if !ok {
		return false
	}
	delete(s.writable(i), key)
	s.n--
	s.bytes -= entryBytes(key, old.value)
	if old.deadline != 0 {
		s.expiry.remove(key, old.deadline)
		s.ttl--
	}
	return old.live(now)
}

// Apply replays one record a Machine produced. Records of keys whose
// deadline has passed are applied too: the key is invisible and active
// expiry removes it.
func (s *State) Apply(r Record) {
	switch r.Op {
	case OpSet:
		s.Set(r.Key, r.Value, r.Deadline)
	case OpDelete:
		s.Delete(r.Key, 0)
	}
}

// Expire removes up to limit keys whose deadline is at or before now and
// returns how many it removed and whether more expired keys remain. The work
// is proportional to the keys removed, not to the key count: deadlines are
// indexed by whole second, and only seconds that have fully passed are
// visited, so every key visited has expired. A key may therefore stay in
// memory up to a second after its deadline; Get never returns it.
//
// Which keys a bounded pass removes depends only on the keys stored, never
// on map order or on the history that stored them, so replicas applying
// the same commands and passes stay identical: seconds go oldest first,
// and a second that does not fit in what is left of the pass gives up its
// first keys in the order of a seedless hash (see hashTrie).
func (s *State) Expire(now int64, limit int) (removed int, more bool) {
	x := &s.expiry
	for removed < limit && len(x.secs) > 0 {
		b := x.secs[0]
		if !x.passed(b.sec, now) {
			return removed, false
		}
		removed += b.keys.take(limit-removed, 0, s.expireFn)
		if b.keys.n > 0 {
			return removed, true
		}
		x.drop(b)
	}
	return removed, len(x.secs) > 0 && x.passed(x.secs[0].sec, now)
}

// expireKey removes key, which active expiry has just taken out of the
// index.
func (s *State) expireKey(key string) {
	m := s.writable(s.shardOf(key))
	s.bytes -= entryBytes(key, m[key].value)
	delete(m, key)
	s.n--
	s.ttl--
	s.expired++
}

// Freeze returns a read-only point-in-time view of the data. It costs
// O(shards), independent of the key count: the view shares every shard map
// with s, and until the view is released s clones a shard on its first
// write after the freeze. The view may be read from any goroutine while s
// goes on changing. Release it (View.Release or State.Release, on the
// goroutine that owns s) once it is no longer read, or every later freeze
// leaves s cloning shards as if the view were still alive.
func (s *State) Freeze() *View {
	s.gen++
	s.live = append(s.live, s.gen)
	v := &View{shards: s.shards, n: s.n, gen: s.gen, owner: s}
	v.release = func() { s.Release(v) }
	return v
}

// Release tells s that v, one of its Views, is no longer read, so writes
// stop cloning the shards only v shares. It is idempotent; releasing a
// View that s did not freeze does nothing. Reading v after Release may
// see later writes.
func (s *State) Release(v *View) {
	if v.owner != s {
		return
	}
	if i := slices.Index(s.live, v.gen); i >= 0 {
		s.live = slices.Delete(s.live, i, i+1)
	}
}

// View is a frozen point-in-time copy of a State. Its contents never
// change until it is released; it is safe for concurrent reads.
type View struct {
	shards [shardCount]*shard
	n      int
	// gen identifies the freeze in owner, the State it was frozen from;
	// release tells the owner, once.
	gen      uint64
	owner    *State
	release  func()
	released atomic.Bool
}

// Release ends the view's life: the owner stops copying the shards it
// shares, so the view must not be read afterwards. It is idempotent. A
// View from Actor.Snapshot may be released from any goroutine, even after
// the actor stopped; one from State.Freeze only on the goroutine that owns
// the State. This is the Release of hashicorp/raft's FSMSnapshot: call it
// whether the view was persisted, failed to, or was not needed.
func (v *View) Release() {
	if !v.released.Swap(true) {
		v.release()
	}
}

// Len returns the number of entries Range visits.
func (v *View) Len() int { return v.n }

// Range calls fn for every entry, expired ones included, in no particular
// order, until fn returns false. deadline is in Unix nanoseconds, 0 for none.
func (v *View) Range(fn func(key, value string, deadline int64) bool) {
	for _, sh := range v.shards {
		for k, e := range sh.m {
			if !fn(k, e.value, e.deadline) {
				return
			}
		}
	}
}
