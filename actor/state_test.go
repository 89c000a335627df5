package actor

import (
	"fmt"
	"testing"
)

const sec = int64(1e9)

// step is one operation of a scripted State test and what it must return.
type step struct {
	op       string // set, get, del, expire
	key      string
	value    string
	deadline int64
	now      int64
	limit    int // expire

	wantFound   bool
	wantValue   string
	wantRemoved int
	wantMore    bool
}

func TestState(t *testing.T) {
	tests := []struct {
		name    string
		steps   []step
		wantLen int
	}{
		{
			name: "set then get",
			steps: []step{
				{op: "set", key: "a", value: "1"},
				{op: "get", key: "a", wantFound: true, wantValue: "1"},
				{op: "get", key: "b"},
			},
			wantLen: 1,
		},
		{
			name: "overwrite replaces value",
			steps: []step{
				{op: "set", key: "a", value: "1"},
				{op: "set", key: "a", value: "2"},
				{op: "get", key: "a", wantFound: true, wantValue: "2"},
			},
			wantLen: 1,
		},
		{
			name: "delete reports liveness",
			steps: []step{
				{op: "set", key: "a", value: "1"},
				{op: "del", key: "a", wantFound: true},
				{op: "del", key: "a"},
				{op: "get", key: "a"},
			},
			wantLen: 0,
		},
		{
			name: "ttl hides key at its deadline",
			steps: []step{
				{op: "set", key: "a", value: "1", deadline: 10 * sec},
				{op: "get", key: "a", now: 10*sec - 1, wantFound: true, wantValue: "1"},
				{op: "get", key: "a", now: 10 * sec},
			},
			wantLen: 1, // hidden but not yet collected
		},
		{
			name: "set without ttl clears an earlier ttl",
			steps: []step{
				{op: "set", key: "a", value: "1", deadline: 10 * sec},
				{op: "set", key: "a", value: "2"},
				{op: "expire", now: 100 * sec, limit: 10},
				{op: "get", key: "a", now: 100 * sec, wantFound: true, wantValue: "2"},
			},
			wantLen: 1,
		},
		{
			name: "new ttl replaces old one",
			steps: []step{
				{op: "set", key: "a", value: "1", deadline: 10 * sec},
				{op: "set", key: "a", value: "2", deadline: 50 * sec},
				{op: "expire", now: 20 * sec, limit: 10},
				{op: "get", key: "a", now: 20 * sec, wantFound: true, wantValue: "2"},
				{op: "expire", now: 51 * sec, limit: 10, wantRemoved: 1},
			},
			wantLen: 0,
		},
		{
			name: "expire waits for the whole second to pass",
			steps: []step{
				{op: "set", key: "a", value: "1", deadline: 10*sec + 5},
				{op: "expire", now: 10*sec + 6, limit: 10},
				{op: "get", key: "a", now: 10*sec + 6},
				{op: "expire", now: 11 * sec, limit: 10, wantRemoved: 1},
			},
			wantLen: 0,
		},
		{
			name: "expire is bounded and resumes",
			steps: []step{
				{op: "set", key: "a", value: "1", deadline: 1 * sec},
				{op: "set", key: "b", value: "1", deadline: 1 * sec},
				{op: "set", key: "c", value: "1", deadline: 2 * sec},
				{op: "set", key: "d", value: "1"},
				{op: "expire", now: 10 * sec, limit: 2, wantRemoved: 2, wantMore: true},
				{op: "expire", now: 10 * sec, limit: 2, wantRemoved: 1},
				{op: "get", key: "d", now: 10 * sec, wantFound: true, wantValue: "1"},
			},
			wantLen: 1,
		},
		{
			name: "deleted key leaves nothing to expire",
			steps: []step{
				{op: "set", key: "a", value: "1", deadline: 1 * sec},
				{op: "del", key: "a", wantFound: true},
				{op: "expire", now: 10 * sec, limit: 10},
			},
			wantLen: 0,
		},
		{
			name: "delete of expired key is not a hit",
			steps: []step{
				{op: "set", key: "a", value: "1", deadline: 1 * sec},
				{op: "del", key: "a", now: 1 * sec},
				{op: "expire", now: 10 * sec, limit: 10},
			},
			wantLen: 0,
		},
		{
			name: "deadline at the end of int64 time",
			steps: []step{
				{op: "set", key: "a", value: "1", deadline: 1<<63 - 1},
				{op: "expire", now: 1<<63 - 1, limit: 10},
				{op: "get", key: "a", now: 1<<63 - 2, wantFound: true, wantValue: "1"},
			},
			wantLen: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewState()
			for i, st := range tt.steps {
				switch st.op {
				case "set":
					s.Set(st.key, st.value, st.deadline)
				case "get":
					v, ok := s.Get(st.key, st.now)
					if ok != st.wantFound || v != st.wantValue {
						t.Fatalf("step %d: Get(%q, %d) = %q, %v; want %q, %v", i, st.key, st.now, v, ok, st.wantValue, st.wantFound)
					}
				case "del":
					if ok := s.Delete(st.key, st.now); ok != st.wantFound {
						t.Fatalf("step %d: Delete(%q) = %v; want %v", i, st.key, ok, st.wantFound)
					}
				case "expire":
					n, more := s.Expire(st.now, st.limit)
					if n != st.wantRemoved || more != st.wantMore {
						t.Fatalf("step %d: Expire(%d, %d) = %d, %v; want %d, %v", i, st.now, st.limit, n, more, st.wantRemoved, st.wantMore)
					}
				default:
					t.Fatalf("step %d: unknown op %q", i, st.op)
				}
			}
			if s.Len() != tt.wantLen {
				t.Fatalf("Len() = %d; want %d", s.Len(), tt.wantLen)
			}
		})
	}
}

func TestStateApply(t *testing.T) {
	s := NewState()
	for _, r := range []Record{
		{Seq: 1, Op: OpSet, Key: "a", Value: "1"},
		{Seq: 2, Op: OpSet, Key: "b", Value: "2", Deadline: 5 * sec},
		{Seq: 3, Op: OpDelete, Key: "a"},
		{Seq: 4, Op: OpSet, Key: "c", Value: "3", Deadline: 1 * sec},
	} {
		s.Apply(r)
	}
	if _, ok := s.Get("a", 0); ok {
		t.Error("a survived its delete")
	}
	if v, ok := s.Get("b", 4*sec); !ok || v != "2" {
		t.Errorf("b = %q, %v; want 2", v, ok)
	}
	// A record replayed after its deadline stays invisible and is collected.
	if _, ok := s.Get("c", 10*sec); ok {
		t.Error("expired c is visible after replay")
	}
	if n, _ := s.Expire(10*sec, 10); n != 2 {
		t.Errorf("Expire removed %d; want 2 (b and c)", n)
	}
}

// TestFreezeIsolation checks that a frozen view never changes while the
// state goes on being written, across every kind of write and across
// several freezes.
func TestFreezeIsolation(t *testing.T) {
	s := NewState()
	for i := range 5000 {
		s.Set(fmt.Sprint("k", i), "v0", 0)
	}
	contents := func(v *View) map[string]string {
		m := make(map[string]string, v.Len())
		v.Range(func(k, val string, _ int64) bool {
			m[k] = val
			return true
		})
		return m
	}
	v1 := s.Freeze()
	want1 := contents(v1)

	for i := range 2500 {
		s.Set(fmt.Sprint("k", i), "v1", 0) // overwrite
	}
	for i := 2500; i < 3000; i++ {
		s.Delete(fmt.Sprint("k", i), 0)
	}
	for i := range 1000 {
		s.Set(fmt.Sprint("new", i), "v1", int64(i+1)*sec)
	}
	s.Expire(2000*sec, 1<<20)

	v2 := s.Freeze()
	want2 := contents(v2)
	s.Set("k0", "v2", 0)
	s.Set("after", "v2", 0)

	if got := contents(v1); !equalMaps(got, want1) || v1.Len() != 5000 || len(got) != 5000 {
		t.Fatalf("first view changed: len %d (Len %d), want 5000", len(got), v1.Len())
	}
	for k, v := range contents(v1) {
		if v != "v0" {
			t.Fatalf("first view has %s=%s; want v0", k, v)
		}
	}
	if got := contents(v2); !equalMaps(got, want2) || len(got) != 4500 || v2.Len() != 4500 {
		t.Fatalf("second view changed or wrong: len %d (Len %d), want 4500", len(got), v2.Len())
	}
	if v, _ := s.Get("k0", 0); v != "v2" {
		t.Fatalf("state lost a write after freeze: k0=%q", v)
	}
}

// viewContents reads a whole view into a map.
func viewContents(v *View) map[string]string {
	m := make(map[string]string, v.Len())
	v.Range(func(k, val string, _ int64) bool {
		m[k] = val
		return true
	})
	return m
}

// writeAll overwrites every key k0…k(n-1) with value, and deletes and
// re-adds a key of its own, so every kind of write is covered.
func writeAll(s *State, n int, value string) {
	for i := range n {
		s.Set(fmt.Sprint("k", i), value, 0)
	}
	s.Delete("extra", 0)
	s.Set("extra", value, 1)
	s.Expire(2*sec, 1) // removes extra: its deadline passed
}

// TestReleaseStopsCloning is the regression test for copy-on-write that
// never ended: once the only view is released, writes to every shard
// must reuse the shard in place instead of cloning it.
func TestReleaseStopsCloning(t *testing.T) {
	s := NewState()
	const n = 20_000 // touches every shard
	writeAll(s, n, "v0")
	if s.Clones() != 0 {
		t.Fatalf("%d clones before any freeze", s.Clones())
	}
	v := s.Freeze()
	v.Release()
	writeAll(s, n, "v1")
	if s.Clones() != 0 {
		t.Fatalf("%d shards cloned after the only view was released; want 0", s.Clones())
	}

	// Released through State.Release, twice: the same.
	v = s.Freeze()
	s.Release(v)
	s.Release(v)
	v.Release()
	writeAll(s, n, "v2")
	if s.Clones() != 0 {
		t.Fatalf("%d shards cloned after State.Release; want 0", s.Clones())
	}
}

// TestLiveViewsStayFrozen: a view not yet released keeps its data while
// writes go on, releasing one of two views leaves the other intact, and
// each shard is cloned at most once per live view.
func TestLiveViewsStayFrozen(t *testing.T) {
	for _, releaseFirst := range []string{"older", "newer"} {
		t.Run("release "+releaseFirst, func(t *testing.T) {
			s := NewState()
			const n = 10_000
			writeAll(s, n, "v0")
			older := s.Freeze()
			wantOlder := viewContents(older)
			writeAll(s, n, "v1")
			clones := s.Clones()
			if clones == 0 || clones > shardCount {
				t.Fatalf("%d clones for writes under one live view; want 1..%d", clones, shardCount)
			}
			newer := s.Freeze()
			wantNewer := viewContents(newer)

			keep := older
			if releaseFirst == "older" {
				older.Release()
				older.Release() // idempotent: must not release newer
				keep = newer
			} else {
				newer.Release()
			}
			writeAll(s, n, "v2")
			writeAll(s, n, "v3")
			if keep == older && !equalMaps(viewContents(older), wantOlder) {
				t.Fatal("older view changed after the newer one was released")
			}
			if keep == newer && !equalMaps(viewContents(newer), wantNewer) {
				t.Fatal("newer view changed after the older one was released")
			}
			if v, _ := s.Get("k0", 0); v != "v3" {
				t.Fatalf("k0 = %q; want v3", v)
			}

			keep.Release()
			clones = s.Clones()
			writeAll(s, n, "v4")
			if got := s.Clones() - clones; got != 0 {
				t.Fatalf("%d clones after both views were released; want 0", got)
			}
		})
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestRangeStops(t *testing.T) {
	s := NewState()
	for i := range 100 {
		s.Set(fmt.Sprint(i), "", 0)
	}
	n := 0
	s.Freeze().Range(func(string, string, int64) bool {
		n++
		return n < 3
	})
	if n != 3 {
		t.Fatalf("Range visited %d entries after fn returned false; want 3", n)
	}
}

// TestStateCounts follows Len, TTLLen and Expired through every way a key
// gains, loses or changes its deadline.
func TestStateCounts(t *testing.T) {
	s := NewState()
	check := func(step string, keys, ttl int, expired uint64) {
		t.Helper()
		if s.Len() != keys || s.TTLLen() != ttl || s.Expired() != expired {
			t.Fatalf("after %s: Len %d TTLLen %d Expired %d; want %d %d %d",
				step, s.Len(), s.TTLLen(), s.Expired(), keys, ttl, expired)
		}
	}
	s.Set("a", "v", 0)
	s.Set("b", "v", 5*sec)
	s.Set("c", "v", 5*sec)
	s.Set("d", "v", 5*sec)
	check("sets", 4, 3, 0)
	s.Set("b", "v", 6*sec) // new deadline
	s.Set("a", "v", 7*sec) // gains one
	s.Set("c", "v", 0)     // loses it
	check("overwrites", 4, 3, 0)
	s.Delete("d", 0)
	s.Delete("c", 0)
	s.Delete("missing", 0)
	check("deletes", 2, 2, 0)
	s.Expire(10*sec, 1)
	check("bounded expire", 1, 1, 1)
	s.Expire(10*sec, 10)
	check("expire", 0, 0, 2)
	s.Apply(Record{Op: OpSet, Key: "e", Value: "v", Deadline: 20 * sec})
	check("apply", 1, 1, 2)
}

func TestStateBytes(t *testing.T) {
	s := NewState()
	s.Set("a", "12345", 0)
	s.Set("b", "1", 1*sec)
	if want := entryBytes("a", "12345") + entryBytes("b", "1"); s.Bytes() != want {
		t.Fatalf("Bytes = %d; want %d", s.Bytes(), want)
	}
	if g := s.Growth("a", "123"); g != -2 {
		t.Fatalf("Growth of a shrinking overwrite = %d; want -2", g)
	}
	if g := s.Growth("c", "123"); g != entryBytes("c", "123") {
		t.Fatalf("Growth of a new key = %d; want %d", g, entryBytes("c", "123"))
	}
	s.Set("a", "123", 0)
	s.Delete("a", 0)
	s.Expire(2*sec, 10)
	if s.Bytes() != 0 {
		t.Fatalf("Bytes = %d after removing everything; want 0", s.Bytes())
	}
}
