package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"

	"kvstore/actor"
)

// A raft log entry of kvstore's (raft.LogCommand data) is one of:
//
//	batch:  0x01 varint(now) uvarint(n) n × command
//	expire: 0x02 varint(now) uvarint(max)
//	member: 0x03 varint(now) uvarint(len) id uvarint(len) client address
//	groups: 0x04 varint(now) uvarint(g) g × (uvarint(n) n × command)
//
//	command: op byte, uvarint(len) key, and for OpSet uvarint(len) value
//	         varint(deadline); or, for the other ops and for flagged
//	         commands, 0x80|op, uvarint(flags), uvarint(len) key,
//	         uvarint(len) value, varint(deadline), varint(delta)
//
// now is the leader's time in Unix nanoseconds when it proposed the
// entry: every replica applies the entry at that time, so expiry and the
// limits are judged the same everywhere. Deadlines are absolute. An
// expire entry removes at most max keys whose deadline has passed at now,
// in the State's deterministic order. A member entry records the client
// (gRPC) address of a node, so that every node can forward to the leader.
// A groups entry carries the requests the leader received together: each
// group is applied atomically on its own, as a batch entry would be, so
// that a group one replica's machine refuses fails alone, on every
// replica.
const (
	entryBatch  byte = 1
	entryExpire byte = 2
	entryMember byte = 3
	entryGroups byte = 4
)

// errBadEntry is a log entry this build cannot decode: a newer build's,
// or damage raft's checksums did not catch.
var errBadEntry = errors.New("cluster: bad log entry")

// entry is a decoded log entry.
type entry struct {
	kind byte
	now  int64
	cmds []actor.Command // entryBatch
	// groups are entryGroups' commands, group by group.
	groups [][]actor.Command
	max    int    // entryExpire
	id     string // entryMember
	addr   string // entryMember
}

// appendBatch encodes a batch entry.
func appendBatch(b []byte, now int64, cmds []actor.Command) []byte {
	b = append(b, entryBatch)
	b = binary.AppendVarint(b, now)
	return appendCommands(b, cmds)
}

// appendGroups encodes a groups entry.
func appendGroups(b []byte, now int64, groups [][]actor.Command) []byte {
	b = append(b, entryGroups)
	b = binary.AppendVarint(b, now)
	b = binary.AppendUvarint(b, uint64(len(groups)))
	for _, g := range groups {
		b = appendCommands(b, g)
	}
	return b
}

// appendCommands encodes a count and the commands.
func appendCommands(b []byte, cmds []actor.Command) []byte {
	b = binary.AppendUvarint(b, uint64(len(cmds)))
	for _, c := range cmds {
		if c.Flags != 0 || c.Delta != 0 || c.Op > actor.OpDelete {
			b = append(b, byte(c.Op)|extended)
			b = binary.AppendUvarint(b, uint64(c.Flags))
			b = binary.AppendUvarint(b, uint64(len(c.Key)))
			b = append(b, c.Key...)
			b = binary.AppendUvarint(b, uint64(len(c.Value)))
			b = append(b, c.Value...)
			b = binary.AppendVarint(b, c.Deadline)
			b = binary.AppendVarint(b, c.Delta)
			continue
		}
		b = append(b, byte(c.Op))
		b = binary.AppendUvarint(b, uint64(len(c.Key)))
		b = append(b, c.Key...)
		if c.Op == actor.OpSet {
			b = binary.AppendUvarint(b, uint64(len(c.Value)))
			b = append(b, c.Value...)
			b = binary.AppendVarint(b, c.Deadline)
		}
	}
	return b
}

// extended marks a command encoded with all its fields.
const extended = 0x80

// appendExpire encodes an expire entry.
func appendExpire(b []byte, now int64, max int) []byte {
	b = append(b, entryExpire)
	b = binary.AppendVarint(b, now)
	return binary.AppendUvarint(b, uint64(max))
}

// appendMember encodes a member entry.
func appendMember(b []byte, now int64, id, addr string) []byte {
	b = append(b, entryMember)
	b = binary.AppendVarint(b, now)
	b = binary.AppendUvarint(b, uint64(len(id)))
	b = append(b, id...)
	b = binary.AppendUvarint(b, uint64(len(addr)))
	return append(b, addr...)
}

// decoder reads the fields of an entry, remembering the first failure.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errBadEntry, what)
	}
}

func (d *decoder) uvarint(what string) uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint(what string) int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(what string) string {
	n := d.uvarint(what + " length")
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.fail(what + " past the end")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// commands reads a count and the commands.
func (d *decoder) commands() []actor.Command {
	n := d.uvarint("command count")
	// Every command takes at least two bytes: a count past that is
	// damage, not a reason to allocate.
	if n > uint64(len(d.b))/2 {
		d.fail("command count past the end")
		return nil
	}
	cmds := make([]actor.Command, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		if len(d.b) == 0 {
			d.fail("command past the end")
			break
		}
		c := actor.Command{Op: actor.Op(d.b[0])}
		d.b = d.b[1:]
		if c.Op&extended != 0 {
			c.Op &^= extended
			flags := d.uvarint("flags")
			c.Flags = actor.Flags(flags)
			c.Key = d.bytes("key")
			c.Value = d.bytes("value")
			c.Deadline = d.varint("deadline")
			c.Delta = d.varint("delta")
			if !c.Op.Valid() || flags != uint64(c.Flags) {
				d.fail(fmt.Sprintf("op %d, flags %#x", c.Op, flags))
			}
			cmds = append(cmds, c)
			continue
		}
		c.Key = d.bytes("key")
		switch c.Op {
		case actor.OpSet:
			c.Value = d.bytes("value")
			c.Deadline = d.varint("deadline")
		case actor.OpGet, actor.OpDelete:
		default:
			d.fail(fmt.Sprintf("op %d", c.Op))
		}
		cmds = append(cmds, c)
	}
	return cmds
}

// decodeEntry decodes data, copying keys and values out of it (raft may
// reuse the buffer).
func decodeEntry(data []byte) (entry, error) {
	if len(data) == 0 {
		return entry{}, fmt.Errorf("%w: empty", errBadEntry)
	}
	d := &decoder{b: data[1:]}
	e := entry{kind: data[0]}
	e.now = d.varint("time")
	switch e.kind {
	case entryBatch:
		e.cmds = d.commands()
	case entryGroups:
		n := d.uvarint("group count")
		// Every group takes at least one byte.
		if n > uint64(len(d.b)) {
			d.fail("group count past the end")
			break
		}
		e.groups = make([][]actor.Command, 0, n)
		for i := uint64(0); i < n && d.err == nil; i++ {
			e.groups = append(e.groups, d.commands())
		}
	case entryExpire:
		e.max = int(min(d.uvarint("max"), 1<<30))
	case entryMember:
		e.id = d.bytes("member id")
		e.addr = d.bytes("client address")
	default:
		return entry{}, fmt.Errorf("%w: kind %d", errBadEntry, e.kind)
	}
	if d.err == nil && len(d.b) > 0 {
		d.fail(fmt.Sprintf("%d bytes after the entry", len(d.b)))
	}
	if d.err != nil {
		return entry{}, d.err
	}
	return e, nil
}
