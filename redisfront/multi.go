package redisfront

import (
	"kvstore/actor"
)

// Transactions. Between MULTI and EXEC a connection's commands are
// checked and queued, not run; EXEC hands them to the actor as one unit
// (actor.OpUnit) within the batch: the limits accept all of them or
// none, nothing else is applied in between, and a command that fails at
// run time (INCR of a non-integer) fails alone, as in Redis. WATCH needs
// versions of keys, which kvstore does not keep yet: it is refused.

// Bounds of one transaction's queue, so that a client cannot grow a
// connection's memory by queueing for ever.
const (
	maxTxCommands = 1 << 16
	maxTxBytes    = 8 << 20
)

// tx is the transaction a connection is queueing.
type tx struct {
	on      bool
	dirty   bool // a command was refused while queueing: EXEC aborts
	cmds    []actor.Command
	pending []pending
	bytes   int
}

func (t *tx) reset() {
	clear(t.cmds)
	*t = tx{cmds: t.cmds[:0]}
}

// errAbort is EXEC's answer once a command was refused while queued.
const errAbort = "EXECABORT Transaction discarded because of previous errors."

// queueTx queues one checked command in the transaction, replying QUEUED,
// or the refusal a command's own checks make (syntax, limits), which
// makes EXEC abort as in Redis.
func (c *conn) queueTx(spec *command, args [][]byte) {
	nc, np := len(c.req.Commands), len(c.pending)
	spec.run(c, args)
	added := c.pending[np:]
	if len(added) == 1 && added[0].kind == replyError {
		c.tx.dirty = true
		return
	}
	size := 0
	for _, a := range args {
		size += len(a)
	}
	if len(c.tx.cmds)+len(c.req.Commands)-nc > maxTxCommands || c.tx.bytes+size > maxTxBytes {
		clear(c.req.Commands[nc:])
		c.req.Commands, c.pending = c.req.Commands[:nc], c.pending[:np]
		c.tx.dirty = true
		c.replyError("ERR transaction too large: at most 65536 commands and 8 MiB of arguments between MULTI and EXEC")
		return
	}
	c.tx.bytes += size
	c.tx.cmds = append(c.tx.cmds, c.req.Commands[nc:]...)
	c.tx.pending = append(c.tx.pending, added...)
	clear(c.req.Commands[nc:])
	clear(added)
	c.req.Commands, c.pending = c.req.Commands[:nc], c.pending[:np]
	c.replySimple("QUEUED")
}

func runMulti(c *conn, _ [][]byte) {
	if c.tx.on {
		c.replyError("ERR MULTI calls can not be nested")
		return
	}
	c.tx.on = true
	c.replySimple("OK")
}

func runExec(c *conn, _ [][]byte) {
	switch {
	case !c.tx.on:
		c.replyError("ERR EXEC without MULTI")
		return
	case c.tx.dirty:
		c.tx.reset()
		c.replyError(errAbort)
		return
	}
	c.req.Commands = append(c.req.Commands, actor.Command{Op: actor.OpUnit, Delta: int64(len(c.tx.cmds))})
	c.req.Commands = append(c.req.Commands, c.tx.cmds...)
	c.pending = append(c.pending, pending{n: 1 + len(c.tx.cmds), kind: replyExec, sub: c.tx.pending})
	c.tx.pending = nil // the pending reply owns them now
	c.tx.reset()
}

func runDiscard(c *conn, _ [][]byte) {
	if !c.tx.on {
		c.replyError("ERR DISCARD without MULTI")
		return
	}
	c.tx.reset()
	c.replySimple("OK")
}

func runWatch(c *conn, _ [][]byte) {
	if c.tx.on {
		c.replyError("ERR WATCH inside MULTI is not allowed")
		return
	}
	c.replyError("ERR WATCH is not supported by kvstore yet: use MULTI/EXEC (applied as one unit) or the atomic commands (SET NX/XX/GET, INCR, MSETNX)")
}

// replyExec is EXEC's reply: an array of the queued commands' replies,
// or the error that refused the unit as a whole.
func (c *conn) replyExec(p *pending, rs []actor.Result) {
	if rs[0].Err != nil {
		c.w.Error(errorText(rs[0].Err))
		return
	}
	c.w.Array(len(p.sub))
	off := 1
	for i := range p.sub {
		s := &p.sub[i]
		c.replyOne(s, rs[off:off+s.n])
		off += s.n
	}
}
