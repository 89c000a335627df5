package actor

import (
	"cmp"
	"errors"
	"fmt"
)

// ErrTooLarge is returned for a request with a Set or Delete whose key or
// value is longer than Rules allow; no command of that request is
// applied. A server sets Rules to what its log and snapshots can hold, so
// that storing a command can never fail them for good.
var ErrTooLarge = errors.New("actor: command too large to store")

// Rules are the limits a Machine enforces. The zero value is no limits
// and DefaultExpireBatch.
type Rules struct {
	// MaxKeyBytes and MaxValueBytes bound the key of a Set or Delete and
	// the value of a Set; 0 is no limit. Commands past them are refused
	// with ErrTooLarge.
	MaxKeyBytes   int
	MaxValueBytes int
	// MaxMemory bounds State.Bytes, the estimated size of the data; 0 is
	// no limit. Writes that would grow the data past it are refused with
	// ErrMemoryLimit (Redis' noeviction).
	MaxMemory int64
	// ExpireBatch bounds the keys one Expire removes; 0 means
	// DefaultExpireBatch.
	ExpireBatch int
}

// Record is one mutation a Machine applied, for the log: replaying the
// records in Seq order onto the state the Machine started from (State.Apply)
// rebuilds its state. Expiry needs no record: deadlines are absolute, so
// replay never resurrects a key whose deadline has passed.
type Record struct {
	// Seq is the record's sequence number: one more than the record
	// before it, with no gaps.
	Seq uint64
	// Op is OpSet or OpDelete.
	Op    Op
	Key   string
	Value string // OpSet
	// Deadline is the absolute expiry time in Unix nanoseconds, 0 for
	// none (OpSet).
	Deadline int64
}

// Machine is the store's rules as a plain, deterministic value: it checks
// a batch of commands against its Rules, applies it to its State at a
// given time, and returns the results and the log records with their
// sequence numbers. It does no I/O, reads no clock, starts no goroutine
// and takes no lock; the Actor is the loop that feeds it on one goroutine
// (as etcd's node drives a RawNode), and a replica applying committed
// batches drives it the same way. The same commands at the same times on
// the same start state give the same results and the same state.
type Machine struct {
	state *State
	seq   uint64
	rules Rules
	// refuse, when set, refuses every mutating batch (RefuseWrites).
	refuse error
}

// NewMachine returns a Machine over st (nil: an empty State) whose last
// applied sequence number is seq.
func NewMachine(st *State, seq uint64, r Rules) *Machine {
	if st == nil {
		st = NewState()
	}
	if r.ExpireBatch <= 0 {
		r.ExpireBatch = DefaultExpireBatch
	}
	return &Machine{state: st, seq: seq, rules: r}
}

// State returns the Machine's State. Reads of it are the caller's to
// order with Apply and Expire; writes must go through the Machine.
func (m *Machine) State() *State { return m.state }

// Seq returns the sequence number of the last record Apply produced, or
// the one NewMachine was given.
func (m *Machine) Seq() uint64 { return m.seq }

// RefuseWrites makes every later batch that would mutate fail with err,
// which must not be nil; reads go on. The Actor calls it once its log has
// failed. It cannot be undone.
func (m *Machine) RefuseWrites(err error) { m.refuse = err }

// Refusing returns the error RefuseWrites set, nil if it was not called.
func (m *Machine) Refusing() error { return m.refuse }

// Check reports whether Apply would accept cmds, applying nothing: every
// op known, every key and value within Rules, the data within MaxMemory
// afterwards, and no mutation while writes are refused.
func (m *Machine) Check(cmds []Command) error {
	mutates := false
	var growth int64 // of the batch's writes, for the memory limit
	for i := range cmds {
		c := &cmds[i]
		switch {
		case c.Op == OpGet:
			continue
		case !c.Op.Valid():
			return fmt.Errorf("%w: op %d", ErrBadCommand, c.Op)
		}
		mutates = true
		if err := m.checkSize(c); err != nil {
			return err
		}
		if m.rules.MaxMemory > 0 {
			// A batch writing one key twice counts it twice: an
			// overestimate, never an underestimate.
			growth += max(0, m.growth(c))
		}
	}
	if mutates && m.refuse != nil {
		return m.refuse
	}
	if growth > 0 && m.state.Bytes()+growth > m.rules.MaxMemory {
		return fmt.Errorf("%w: %d of %d bytes used, the write needs %d more",
			ErrMemoryLimit, m.state.Bytes(), m.rules.MaxMemory, growth)
	}
	return nil
}

// growth is at most what c can add to the State's Bytes.
func (m *Machine) growth(c *Command) int64 {
	switch c.Op {
	case OpSet:
		return m.state.Growth(c.Key, c.Value)
	case OpAppend:
		return m.state.growthTo(c.Key, m.state.length(c.Key)+len(c.Value))
	case OpSetRange:
		return m.state.growthTo(c.Key, max(m.state.length(c.Key), int(min(c.Delta, 1<<40))+len(c.Value)))
	case OpIncr, OpIncrFloat:
		return m.state.growthTo(c.Key, maxNumberLen)
	}
	return 0 // deletes and deadline changes
}

// checkSize refuses a mutation longer than Rules allow.
func (m *Machine) checkSize(c *Command) error {
	if max := m.rules.MaxKeyBytes; max > 0 && len(c.Key) > max {
		return fmt.Errorf("%w: %d-byte key (at most %d)", ErrTooLarge, len(c.Key), max)
	}
	if max := m.rules.MaxValueBytes; max > 0 && c.Op == OpSet && len(c.Value) > max {
		return fmt.Errorf("%w: %d-byte value (at most %d)", ErrTooLarge, len(c.Value), max)
	}
	return nil
}

// Apply checks cmds (see Check) and, if they pass, applies them in order
// at now (Unix nanoseconds, the time expiry is judged at), with nothing
// interleaved. It appends one Result per command to res and one Record
// per mutation to recs, numbered from Seq()+1, and returns both slices.
// If the check fails, nothing is applied and res and recs come back as
// they were.
func (m *Machine) Apply(now int64, cmds []Command, res []Result, recs []Record) ([]Result, []Record, error) {
	if err := m.Check(cmds); err != nil {
		return res, recs, err
	}
	for i := 0; i < len(cmds); i++ {
		if cmds[i].Op == OpUnit {
			var n int
			res, recs, n = m.applyUnit(now, cmds[i:], res, recs)
			i += n
			continue
		}
		res = append(res, Result{})
		recs = m.apply(now, &cmds[i], &res[len(res)-1], recs)
	}
	return res, recs, nil
}

// ApplyEach is Apply for independent commands: each is checked on its
// own, after the ones before it were applied, and one the check refuses
// gets the error in its Result.Err while the others are applied.
func (m *Machine) ApplyEach(now int64, cmds []Command, res []Result, recs []Record) ([]Result, []Record, error) {
	for i := 0; i < len(cmds); i++ {
		if cmds[i].Op == OpUnit {
			var n int
			res, recs, n = m.applyUnit(now, cmds[i:], res, recs)
			i += n
			continue
		}
		res = append(res, Result{})
		if err := m.Check(cmds[i : i+1]); err != nil {
			res[len(res)-1].Err = err
		} else {
			recs = m.apply(now, &cmds[i], &res[len(res)-1], recs)
		}
	}
	return res, recs, nil
}

// applyUnit applies the OpUnit at cmds[0] and the commands it covers,
// and returns how many those are (its Delta, cut at the end of cmds).
func (m *Machine) applyUnit(now int64, cmds []Command, res []Result, recs []Record) ([]Result, []Record, int) {
	n := int(min(max(cmds[0].Delta, 0), int64(len(cmds)-1)))
	unit := cmds[1 : 1+n]
	res = append(res, Result{})
	head := len(res) - 1
	err := m.Check(unit)
	for i := range unit {
		if unit[i].Op == OpUnit {
			err = fmt.Errorf("%w: a unit within a unit", ErrBadCommand)
		}
	}
	if err == nil && cmds[0].Flags&FlagNX != 0 {
		for i := range unit {
			if _, _, live := m.state.Lookup(unit[i].Key, now); live {
				// Not applied: the commands' results stay empty.
				return append(res, make([]Result, n)...), recs, n
			}
		}
	}
	if err != nil {
		res[head].Err = err
		for range unit {
			res = append(res, Result{Err: err})
		}
		return res, recs, n
	}
	res[head].Found = true
	for i := range unit {
		res = append(res, Result{})
		recs = m.apply(now, &unit[i], &res[len(res)-1], recs)
	}
	return res, recs, n
}

// apply applies one checked command, its result into r.
func (m *Machine) apply(now int64, c *Command, r *Result, recs []Record) []Record {
	switch {
	case c.Op == OpGet:
		r.Value, r.Deadline, r.Found = m.state.Lookup(c.Key, now)
	case c.Op == OpSet && c.Flags&^FlagRelative == 0:
		recs = m.set(c.Key, c.Value, m.deadline(now, c), recs)
		r.Found = true
	case c.Op == OpDelete && c.Flags == 0:
		// Removing a key that is absent or already expired changes
		// nothing replay could see, so it needs no record.
		r.Found = m.state.Delete(c.Key, now)
		if r.Found {
			recs = m.del(c.Key, recs)
		}
	default:
		return m.modify(now, c, r, recs)
	}
	return recs
}

// deadline is c's absolute deadline at now.
func (m *Machine) deadline(now int64, c *Command) int64 {
	if c.Flags&FlagRelative != 0 && c.Deadline != 0 {
		return now + c.Deadline
	}
	return c.Deadline
}

// set stores key and records it.
func (m *Machine) set(key, value string, deadline int64, recs []Record) []Record {
	m.state.Set(key, value, deadline)
	m.seq++
	return append(recs, Record{Seq: m.seq, Op: OpSet, Key: key, Value: value, Deadline: deadline})
}

// del records the removal of key, which the caller has removed.
func (m *Machine) del(key string, recs []Record) []Record {
	m.seq++
	return append(recs, Record{Seq: m.seq, Op: OpDelete, Key: key})
}

// Expire removes up to Rules.ExpireBatch keys whose deadline has passed
// at now and reports how many it removed and whether more remain (see
// State.Expire for which keys, and in what order).
func (m *Machine) Expire(now int64) (removed int, more bool) {
	return m.state.Expire(now, m.rules.ExpireBatch)
}

// ExpireUpTo is Expire with a bound of its own, max keys (at least 1): a
// replica applies the bound its log entry names, whatever its Rules.
func (m *Machine) ExpireUpTo(now int64, max int) (removed int, more bool) {
	return m.state.Expire(now, cmp.Or(max, m.rules.ExpireBatch))
}
