package actor

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Failures of one read-modify-write command, in its Result.Err; the
// texts are Redis'.
var (
	ErrNotInteger = errors.New("value is not an integer or out of range")
	ErrOverflow   = errors.New("increment or decrement would overflow")
	ErrNotFloat   = errors.New("value is not a valid float")
	ErrNaN        = errors.New("increment would produce NaN or Infinity")
)

// maxNumberLen bounds the length of a value OpIncr or OpIncrFloat
// writes, for the memory check.
const maxNumberLen = 40

// maxStringLen is the longest value OpAppend and OpSetRange make when
// Rules set no MaxValueBytes: Redis' proto-max-bulk-len.
const maxStringLen = 512 << 20

// modify applies the commands apply does not take on its fast path: the
// read-modify-writes and the flagged sets and deletes. A command that
// fails changes nothing and says why in Result.Err.
func (m *Machine) modify(now int64, c *Command, r *Result, recs []Record) []Record {
	if c.Op == OpFlush {
		return m.flush(now, r, recs)
	}
	old, oldDeadline, live := m.state.Lookup(c.Key, now)
	switch c.Op {
	case OpSet:
		if c.Flags&FlagGet != 0 {
			r.Value, r.OldFound = old, live
		}
		if (c.Flags&FlagNX != 0 && live) || (c.Flags&FlagXX != 0 && !live) {
			return recs
		}
		deadline := m.deadline(now, c)
		if c.Flags&FlagKeepTTL != 0 {
			deadline = oldDeadline
		}
		r.Found = true
		return m.set(c.Key, c.Value, deadline, recs)
	case OpDelete:
		r.Value, r.OldFound = old, live
		r.Found = m.state.Delete(c.Key, now)
		if r.Found {
			recs = m.del(c.Key, recs)
		}
		return recs
	case OpIncr:
		n := int64(0)
		if live {
			var ok bool
			if n, ok = parseInt(old); !ok {
				r.Err = ErrNotInteger
				return recs
			}
		}
		if (c.Delta > 0 && n > math.MaxInt64-c.Delta) || (c.Delta < 0 && n < math.MinInt64-c.Delta) {
			r.Err = ErrOverflow
			return recs
		}
		r.Int = n + c.Delta
		return m.set(c.Key, strconv.FormatInt(r.Int, 10), oldDeadline, recs)
	case OpIncrFloat:
		by, ok := parseFloat(c.Value)
		if !ok {
			r.Err = ErrNotFloat
			return recs
		}
		f := 0.0
		if live {
			if f, ok = parseFloat(old); !ok {
				r.Err = ErrNotFloat
				return recs
			}
		}
		f += by
		if math.IsNaN(f) || math.IsInf(f, 0) {
			r.Err = ErrNaN
			return recs
		}
		r.Value = strconv.FormatFloat(f, 'f', -1, 64)
		return m.set(c.Key, r.Value, oldDeadline, recs)
	case OpAppend:
		if err := m.checkLength(len(old) + len(c.Value)); err != nil {
			r.Err = err
			return recs
		}
		v := old + c.Value
		r.Int = int64(len(v))
		return m.set(c.Key, v, oldDeadline, recs)
	case OpSetRange:
		if c.Value == "" {
			r.Int = int64(len(old))
			return recs
		}
		if c.Delta < 0 || c.Delta > maxStringLen {
			r.Err = fmt.Errorf("%w: offset %d", ErrTooLarge, c.Delta)
			return recs
		}
		end := int(c.Delta) + len(c.Value)
		n := max(len(old), end)
		if err := m.checkLength(n); err != nil {
			r.Err = err
			return recs
		}
		var b strings.Builder
		b.Grow(n)
		b.WriteString(old[:min(len(old), int(c.Delta))])
		for b.Len() < int(c.Delta) {
			b.WriteByte(0)
		}
		b.WriteString(c.Value)
		if end < len(old) {
			b.WriteString(old[end:])
		}
		r.Int = int64(n)
		return m.set(c.Key, b.String(), oldDeadline, recs)
	case OpExpire:
		if !live {
			return recs
		}
		d := m.deadline(now, c)
		switch {
		case c.Flags&FlagNX != 0 && oldDeadline != 0,
			c.Flags&FlagXX != 0 && oldDeadline == 0,
			c.Flags&FlagGT != 0 && (oldDeadline == 0 || d <= oldDeadline),
			c.Flags&FlagLT != 0 && oldDeadline != 0 && d >= oldDeadline:
			return recs
		}
		r.Found = true
		return m.redeadline(now, c.Key, old, d, recs)
	case OpPersist:
		if !live || oldDeadline == 0 {
			return recs
		}
		r.Found = true
		return m.set(c.Key, old, 0, recs)
	case OpGetEx:
		r.Value, r.Found, r.Deadline = old, live, oldDeadline
		switch {
		case !live:
		case c.Flags&FlagPersist != 0:
			if oldDeadline != 0 {
				recs = m.set(c.Key, old, 0, recs)
				r.Deadline = 0
			}
		case c.Deadline != 0:
			r.Deadline = m.deadline(now, c)
			recs = m.redeadline(now, c.Key, old, r.Deadline, recs)
		}
		return recs
	}
	r.Err = fmt.Errorf("%w: op %d", ErrBadCommand, c.Op)
	return recs
}

// redeadline gives the live key the deadline d; one not after now
// deletes it, as Redis does.
func (m *Machine) redeadline(now int64, key, value string, d int64, recs []Record) []Record {
	if d <= now {
		m.state.Delete(key, now)
		return m.del(key, recs)
	}
	return m.set(key, value, d, recs)
}

// checkLength refuses a value of n bytes past the limits.
func (m *Machine) checkLength(n int) error {
	limit := m.rules.MaxValueBytes
	if limit <= 0 {
		limit = maxStringLen
	}
	if n > limit {
		return fmt.Errorf("%w: the value would be %d bytes (at most %d)", ErrTooLarge, n, limit)
	}
	return nil
}

// parseInt parses a value as Redis' string2ll does: an optional minus,
// then decimal digits without a leading zero, in int64's range.
func parseInt(s string) (int64, bool) {
	if s == "" || len(s) > 20 {
		return 0, false
	}
	if s == "0" {
		return 0, true
	}
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || digits[0] < '1' || digits[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// parseFloat parses a value as INCRBYFLOAT does: a decimal float without
// spaces, not NaN.
func parseFloat(s string) (float64, bool) {
	if s == "" || s != strings.TrimSpace(s) || strings.ContainsAny(s, "_xXpP") {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// flush removes every key, recording each removal, live or not, so that
// a replay removes them all too. The keys go in byte order, so that the
// records are the same on every run.
func (m *Machine) flush(now int64, r *Result, recs []Record) []Record {
	keys, _ := m.state.ScanShards(0, math.MaxInt, math.MinInt64, nil, nil)
	slices.Sort(keys)
	for _, k := range keys {
		if m.state.Delete(k, now) {
			r.Int++
		}
		recs = m.del(k, recs)
	}
	return recs
}
