package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"kvstore/actor"
	"kvstore/snap"
	"kvstore/wal"
)

// fsm is raft's state machine over the actor: committed entries go to the
// owner goroutine as requests stamped with the leader's time, through the
// same pure command machine a single node runs, so every replica reaches
// the same state from the same log.
type fsm struct {
	actor   *actor.Actor
	tempDir string

	// now is the newest leader time applied, in Unix nanoseconds: a
	// replica's own clock never judges expiry.
	now atomic.Int64

	// restores counts the snapshots installed.
	restores atomic.Int64

	// members are the client addresses by node ID, from member entries.
	membersMu sync.Mutex
	members   map[string]string

	mu      sync.Mutex
	applied uint64        // index of the last entry known applied
	waitc   chan struct{} // closed when applied grows
}

var (
	_ raft.BatchingFSM = (*fsm)(nil)
	_ raft.FSMSnapshot = (*fsmSnapshot)(nil)
)

func newFSM(a *actor.Actor, tempDir string) *fsm {
	return &fsm{actor: a, tempDir: tempDir, waitc: make(chan struct{}), members: map[string]string{}}
}

// applyResult is the FSM's response to one entry, which raft hands to the
// ApplyFuture of the node that proposed it.
type applyResult struct {
	results []actor.Result // entryBatch
	groups  []groupResult  // entryGroups
	removed int            // entryExpire
	more    bool           // entryExpire: expired keys remain
	err     error
}

// groupResult is the outcome of one group of a groups entry.
type groupResult struct {
	results []actor.Result
	err     error
}

func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies committed entries in order. An entry the machine
// refuses (a limit, a bad command) is refused the same way on every
// replica: its error is the response, and the state is unchanged.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	for i, l := range logs {
		if l.Type == raft.LogCommand {
			out[i] = f.applyEntry(l.Data)
		}
	}
	if len(logs) > 0 {
		f.advance(logs[len(logs)-1].Index)
	}
	return out
}

func (f *fsm) applyEntry(data []byte) *applyResult {
	e, err := decodeEntry(data)
	if err != nil {
		return &applyResult{err: err}
	}
	for {
		old := f.now.Load()
		if e.now <= old || f.now.CompareAndSwap(old, e.now) {
			break
		}
	}
	// Only a stopped actor fails these, when the node is closing.
	ctx := context.Background()
	switch e.kind {
	case entryBatch:
		r := actor.NewRequest()
		r.Now, r.Commands = e.now, e.cmds
		if err := f.actor.Do(ctx, r); err != nil {
			return &applyResult{err: err}
		}
		return &applyResult{results: r.Results}
	case entryGroups:
		rs := make([]*actor.Request, len(e.groups))
		for i, g := range e.groups {
			rs[i] = actor.NewRequest()
			rs[i].Now, rs[i].Commands = e.now, g
		}
		errs := f.actor.DoAll(ctx, rs)
		res := &applyResult{groups: make([]groupResult, len(rs))}
		for i, r := range rs {
			res.groups[i] = groupResult{results: r.Results, err: errs[i]}
		}
		return res
	case entryMember:
		f.membersMu.Lock()
		f.members[e.id] = e.addr
		f.membersMu.Unlock()
		return &applyResult{}
	default: // entryExpire
		removed, more, err := f.actor.ExpireAt(ctx, e.now, e.max)
		return &applyResult{removed: removed, more: more, err: err}
	}
}

// member returns the client address of node id, "" if none is known.
func (f *fsm) member(id string) string {
	f.membersMu.Lock()
	defer f.membersMu.Unlock()
	return f.members[id]
}

// memberList copies the client addresses.
func (f *fsm) memberList() map[string]string {
	f.membersMu.Lock()
	defer f.membersMu.Unlock()
	return maps.Clone(f.members)
}

// advance records that the entries through idx are applied.
func (f *fsm) advance(idx uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if idx > f.applied {
		f.applied = idx
		close(f.waitc)
		f.waitc = make(chan struct{})
	}
}

// appliedIndex is the index of the last entry known applied.
func (f *fsm) appliedIndex() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied
}

// waitApplied waits until the entries through idx are applied.
func (f *fsm) waitApplied(ctx context.Context, idx uint64) error {
	for {
		f.mu.Lock()
		applied, c := f.applied, f.waitc
		f.mu.Unlock()
		if applied >= idx {
			return nil
		}
		select {
		case <-c:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// A raft snapshot of kvstore is a header, then a snapshot file (package
// snap's format, the same bytes as a backup):
//
//	 0  8  magic   "KVRAFT1\n"
//	 8  8  now     int64, the newest leader time applied
//	16  4  length  uint32, of the members that follow
//	20  -  members uvarint(n), n × (uvarint(len) id, uvarint(len) address)
var snapMagic = [8]byte{'K', 'V', 'R', 'A', 'F', 'T', '1', '\n'}

const (
	snapHeaderSize = 20
	maxMembersSize = 1 << 20
)

// Snapshot freezes the data: O(shards) on the owner. raft calls it on
// its FSM goroutine, between applies, so the view is exactly the applied
// entries.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	v, seq, err := f.actor.Snapshot(context.Background())
	if err != nil {
		return nil, err
	}
	return &fsmSnapshot{view: v, seq: seq, now: f.now.Load(), members: f.memberList()}, nil
}

// fsmSnapshot is a frozen view on its way to raft's snapshot store or to
// a follower.
type fsmSnapshot struct {
	view    *actor.View
	seq     uint64
	now     int64
	members map[string]string
}

// Persist streams the view in the snapshot format, one block at a time.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	w := bufio.NewWriterSize(sink, 64<<10)
	_, err := w.Write(appendSnapHeader(nil, s.now, s.members))
	if err == nil {
		_, err = snap.Encode(w, s.seq, s.view)
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

// appendSnapHeader appends a raft snapshot's header: the leader time
// and the members' client addresses.
func appendSnapHeader(b []byte, now int64, members map[string]string) []byte {
	var m []byte
	m = binary.AppendUvarint(m, uint64(len(members)))
	for _, id := range slices.Sorted(maps.Keys(members)) {
		m = binary.AppendUvarint(m, uint64(len(id)))
		m = append(m, id...)
		m = binary.AppendUvarint(m, uint64(len(members[id])))
		m = append(m, members[id]...)
	}
	b = append(b, snapMagic[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(now))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(m)))
	return append(b, m...)
}

// Release lets the owner stop preserving the view.
func (s *fsmSnapshot) Release() { s.view.Release() }

// Restore replaces the data with a snapshot: raft's own at start-up, or
// one a leader sends a follower too far behind. The stream is spooled to a
// file and verified in full before the data is touched; entries with a
// passed deadline are kept, as on the replicas that did not restore, so
// that every replica holds the same keys (reads hide them, expire entries
// remove them).
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var h [snapHeaderSize]byte
	if _, err := io.ReadFull(rc, h[:]); err != nil {
		return fmt.Errorf("cluster: restore: read the header: %w", err)
	}
	if [8]byte(h[:8]) != snapMagic {
		return fmt.Errorf("cluster: restore: not a kvstore raft snapshot (magic %q)", h[:8])
	}
	now := int64(binary.LittleEndian.Uint64(h[8:]))
	members, err := readMembers(rc, binary.LittleEndian.Uint32(h[16:]))
	if err != nil {
		return fmt.Errorf("cluster: restore: %w", err)
	}
	tmp, err := os.CreateTemp(f.tempDir, "raft-restore-*.snap")
	if err != nil {
		return fmt.Errorf("cluster: restore: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, rc)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cluster: restore: spool the snapshot: %w", err)
	}
	st := actor.NewState()
	info, err := snap.LoadFile(wal.OS, tmp.Name(), 0, func(key, value string, deadline int64) error {
		st.Set(key, value, deadline)
		return nil
	})
	if err != nil {
		return fmt.Errorf("cluster: restore: %w", err)
	}
	if err := f.actor.Restore(context.Background(), st, info.Seq); err != nil {
		return fmt.Errorf("cluster: restore: %w", err)
	}
	f.restores.Add(1)
	f.membersMu.Lock()
	f.members = members
	f.membersMu.Unlock()
	for {
		old := f.now.Load()
		if now <= old || f.now.CompareAndSwap(old, now) {
			break
		}
	}
	return nil
}

// readMembers reads the members of a snapshot header, n bytes.
func readMembers(r io.Reader, n uint32) (map[string]string, error) {
	if n > maxMembersSize {
		return nil, fmt.Errorf("%w: %d bytes of members", errBadEntry, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("read the members: %w", err)
	}
	d := &decoder{b: b}
	count := d.uvarint("member count")
	members := map[string]string{}
	for i := uint64(0); i < count && d.err == nil; i++ {
		id := d.bytes("member id")
		members[id] = d.bytes("client address")
	}
	if d.err == nil && len(d.b) > 0 {
		d.fail("bytes after the members")
	}
	return members, d.err
}

// WriteSnapshot puts into snaps a raft snapshot whose data is the
// snapshot file (a backup) read from r and whose configuration is
// members (raft ID to raft address, all voters), at index 1 of term 1: a
// node that starts on it is a member of a new cluster holding that data,
// with no bootstrap. `kvstore-server restore --initial-cluster` writes
// one on every member, as etcdutl snapshot restore does.
func WriteSnapshot(snaps raft.SnapshotStore, r io.Reader, members map[string]string) error {
	_, trans := raft.NewInmemTransport("")
	defer trans.Close()
	sink, err := snaps.Create(raft.SnapshotVersionMax, 1, 1, voters(members), 1, trans)
	if err != nil {
		return err
	}
	// No client addresses yet: the nodes publish them once started.
	_, err = sink.Write(appendSnapHeader(nil, 0, nil))
	if err == nil {
		_, err = io.Copy(sink, r)
	}
	if err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}
