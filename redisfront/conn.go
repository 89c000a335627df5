package redisfront

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"kvstore/actor"
	"kvstore/resp"
	"kvstore/rpc"
)

// Bounds of one batch: the commands parsed from what one read brought,
// executed as one Request and answered in one write.
const (
	maxPipeline   = 1024
	maxBatchBytes = 1 << 20
	// flushAt is the reply bytes past which replies are written out
	// within a batch, so that a batch of large replies is not held whole.
	flushAt = 64 << 10
	// maxKeepBuffer is the largest reply buffer kept between batches.
	maxKeepBuffer = 1 << 20
)

// conn is one client connection, served by one goroutine.
type conn struct {
	s       *Server
	nc      net.Conn
	rd      *resp.Reader
	w       resp.Writer
	id      int64
	created time.Time
	addr    string

	// role is what the connection may do: every command without Auth,
	// nothing but AUTH and HELLO until it authenticates with it.
	role   rpc.Role
	authed bool
	quit   bool
	// closing is set by Shutdown: the connection ends after its batch.
	closing atomic.Bool

	// Fields CLIENT LIST reads from other connections' goroutines.
	mu              sync.Mutex
	name            string
	libName, libVer string
	lastCmd         string
	user            string
	proto           int // c.w.Proto, for other goroutines

	// The batch being gathered: the commands for the actor, and one
	// pending reply per client command, in order.
	req        *actor.Request
	pending    []pending
	batchBytes int
	lower      [32]byte
	tx         tx

	// writeFailed is set once a write to the client failed: nothing is
	// written after it.
	writeFailed bool

	// The deadlines of batches and of writes (batchContext, writeOut).
	batchCtx    context.Context
	batchCancel context.CancelFunc
	batchEnd    time.Time
	writeEnd    time.Time
}

// replyKind says how a pending reply is made from its results.
type replyKind uint8

const (
	replyOK     replyKind = iota // +OK
	replyBulk                    // the value of a get, or null
	replyInt                     // Result.Int
	replyFound                   // Result.Found as 1 or 0
	replySet                     // +OK if applied, else null
	replyOld                     // the old value (FlagGet), or null
	replyCount                   // how many results are Found
	replyFn                      // fn
	replyError                   // text, an error reply
	replySimple                  // text, a simple string
	replyExec                    // EXEC: sub's replies, from the unit's results
)

// pending is one client command's reply, made once its n commands of
// the batch have run.
type pending struct {
	n    int
	kind replyKind
	text string
	fn   func(c *conn, res []actor.Result)
	sub  []pending // replyExec
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{s: s, nc: nc, id: s.nextID.Add(1), created: s.clock.Now(), addr: nc.RemoteAddr().String(),
		req: actor.NewRequest(), role: rpc.RoleAdmin}
	c.w.Proto, c.proto = 2, 2
	maxBulk := max(s.cfg.MaxKeyBytes, s.cfg.MaxValueBytes, 64<<10)
	c.rd = resp.NewReader(nc, resp.Limits{MaxBulk: maxBulk})
	if s.cfg.Auth != nil {
		c.role = 0
	}
	return c
}

// wake makes the connection end after the batch it runs, or now if it
// waits for a command.
func (c *conn) wake() {
	c.closing.Store(true)
	c.nc.SetReadDeadline(time.Now())
}

func (c *conn) serve() {
	defer c.nc.Close()
	defer func() {
		if c.batchCancel != nil {
			c.batchCancel()
		}
	}()
	if c.s.cfg.Auth != nil {
		c.nc.SetReadDeadline(time.Now().Add(c.s.cfg.AuthTimeout))
	}
	if c.closing.Load() {
		return
	}
	for {
		args, err := c.rd.ReadCommand()
		if err != nil {
			c.readFailed(err)
			return
		}
		c.dispatch(args)
		for !c.quit && c.rd.Buffered() > 0 && len(c.pending) < maxPipeline && c.batchBytes < maxBatchBytes {
			if args, err = c.rd.ReadCommand(); err != nil {
				if c.flush() {
					c.readFailed(err)
				}
				return
			}
			c.dispatch(args)
		}
		if !c.flush() || c.quit || c.closing.Load() {
			return
		}
	}
}

// readFailed answers a protocol error, as Redis does, before the
// connection closes.
func (c *conn) readFailed(err error) {
	var pe *resp.ProtocolError
	if errors.As(err, &pe) {
		c.w.Error("ERR " + pe.Error())
		c.writeOut()
		return
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isTimeout(err) {
		c.s.log.Debug("redis front: read failed", "client", c.addr, "err", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// dispatch checks one command and queues it, or runs it.
func (c *conn) dispatch(args [][]byte) {
	c.s.commandsProcessed.Add(1)
	spec := lookup(c.lowerName(args[0]))
	if spec == nil {
		c.refuse(unknownCommand(args))
		return
	}
	c.setLast(spec.name)
	if (spec.arity > 0 && len(args) != spec.arity) || (spec.arity < 0 && len(args) < -spec.arity) {
		c.refuse("ERR wrong number of arguments for '" + spec.name + "' command")
		return
	}
	if !c.authed && c.s.cfg.Auth != nil && spec.flags&flagNoAuth == 0 {
		c.refuse("NOAUTH Authentication required.")
		return
	}
	if spec.role > c.role {
		c.refuse(fmt.Sprintf("NOPERM a %s token may not run the '%s' command: it needs the %s role", c.role, spec.name, spec.role))
		return
	}
	for _, a := range args {
		c.batchBytes += len(a)
	}
	if c.tx.on && spec.flags&flagTxControl == 0 {
		c.queueTx(spec, args)
		return
	}
	spec.run(c, args)
}

// refuse replies with a refusal of the command as a whole, which makes a
// transaction being queued abort at EXEC.
func (c *conn) refuse(text string) {
	c.tx.dirty = c.tx.on
	c.replyError(text)
}

// lowerName is b in lower case, in the connection's buffer when short.
func (c *conn) lowerName(b []byte) []byte {
	if len(b) > len(c.lower) {
		return bytes.ToLower(b)
	}
	out := c.lower[:len(b)]
	for i, ch := range b {
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		out[i] = ch
	}
	return out
}

func (c *conn) setLast(name string) {
	c.mu.Lock()
	c.lastCmd = name
	c.mu.Unlock()
}

// unknownCommand is Redis 7's text for a command it does not know.
func unknownCommand(args [][]byte) string {
	var b []byte
	for _, a := range args[1:] {
		if len(b) >= 128 {
			break
		}
		b = append(b, '\'')
		b = append(b, a[:min(len(a), 128-len(b))]...)
		b = append(b, "' "...)
	}
	return fmt.Sprintf("ERR unknown command '%s', with args beginning with: %s", truncate(args[0], 128), b)
}

func truncate(b []byte, n int) []byte { return b[:min(len(b), n)] }

// queue adds cmd to the batch with its reply.
func (c *conn) queue(kind replyKind, cmd actor.Command) {
	c.req.Commands = append(c.req.Commands, cmd)
	c.pending = append(c.pending, pending{n: 1, kind: kind})
}

// queueFn adds cmds to the batch, replied to by fn with their results.
func (c *conn) queueFn(fn func(c *conn, res []actor.Result), cmds ...actor.Command) {
	c.req.Commands = append(c.req.Commands, cmds...)
	c.pending = append(c.pending, pending{n: len(cmds), kind: replyFn, fn: fn})
}

// queueKind is queue for several commands replied to by one kind.
func (c *conn) queueKind(kind replyKind, cmds []actor.Command) {
	c.req.Commands = append(c.req.Commands, cmds...)
	c.pending = append(c.pending, pending{n: len(cmds), kind: kind})
}

// replyError, replySimple and replyNow are replies that need no data,
// in their place in the batch.
func (c *conn) replyError(text string) {
	c.pending = append(c.pending, pending{kind: replyError, text: text})
}

func (c *conn) replySimple(text string) {
	c.pending = append(c.pending, pending{kind: replySimple, text: text})
}

func (c *conn) replyNow(fn func(c *conn)) {
	c.pending = append(c.pending, pending{kind: replyFn, fn: func(c *conn, _ []actor.Result) { fn(c) }})
}

// exec runs the batch and makes its replies; false when writing them
// out failed.
func (c *conn) exec() bool {
	var res []actor.Result
	var batchErr error
	if len(c.req.Commands) > 0 {
		batchErr = c.s.cfg.Backend.Do(c.batchContext(), c.req)
		res = c.req.Results
	}
	off := 0
	for i := range c.pending {
		p := &c.pending[i]
		var rs []actor.Result
		if p.n > 0 {
			if batchErr != nil {
				c.w.Error(errorText(batchErr))
				off += p.n
				continue
			}
			rs = res[off : off+p.n]
			off += p.n
		}
		c.replyOne(p, rs)
		if len(c.w.Buf) >= flushAt {
			c.writeOut()
		}
	}
	clear(c.pending)
	c.pending = c.pending[:0]
	c.batchBytes = 0
	if batchErr != nil {
		// The actor may still hold the request.
		c.req = actor.NewRequest()
	} else {
		clear(c.req.Commands)
		c.req.Commands = c.req.Commands[:0]
		clear(c.req.Results)
		c.req.Results = c.req.Results[:0]
	}
	return !c.writeFailed
}

// batchContext bounds a batch's wait by --request-timeout. A timer per
// batch cost 5 % of a GET under redis-benchmark, so one context serves
// the batches of a connection while at least half of the timeout is left
// on it: a batch may wait between half the timeout and all of it.
func (c *conn) batchContext() context.Context {
	t := c.s.cfg.RequestTimeout
	if t <= 0 {
		return context.Background()
	}
	now := time.Now()
	if c.batchCtx == nil || c.batchCtx.Err() != nil || c.batchEnd.Sub(now) < t/2 {
		if c.batchCancel != nil {
			c.batchCancel()
		}
		c.batchEnd = now.Add(t)
		c.batchCtx, c.batchCancel = context.WithDeadline(context.Background(), c.batchEnd)
	}
	return c.batchCtx
}

// flush runs the batch and writes every reply out.
func (c *conn) flush() bool {
	if !c.exec() {
		return false
	}
	return c.writeOut()
}

func firstErr(rs []actor.Result) error {
	for i := range rs {
		if rs[i].Err != nil {
			return rs[i].Err
		}
	}
	return nil
}

// replyOne makes p's reply from its results, or the error of the first
// that failed.
func (c *conn) replyOne(p *pending, rs []actor.Result) {
	if p.kind == replyExec {
		c.replyExec(p, rs)
		return
	}
	if err := firstErr(rs); err != nil {
		c.w.Error(errorText(err))
		return
	}
	c.reply(p, rs)
}

// reply makes p's reply from its results.
func (c *conn) reply(p *pending, rs []actor.Result) {
	w := &c.w
	switch p.kind {
	case replyOK:
		w.SimpleString("OK")
	case replyBulk:
		if rs[0].Found {
			c.bulk(rs[0].Value)
		} else {
			w.Null()
		}
	case replyInt:
		w.Integer(rs[0].Int)
	case replyFound:
		w.Integer(b2i(rs[0].Found))
	case replySet:
		if rs[0].Found {
			w.SimpleString("OK")
		} else {
			w.Null()
		}
	case replyOld:
		if rs[0].OldFound {
			c.bulk(rs[0].Value)
		} else {
			w.Null()
		}
	case replyCount:
		n := 0
		for i := range rs {
			if rs[i].Found {
				n++
			}
		}
		w.Integer(int64(n))
	case replyError:
		w.Error(p.text)
	case replySimple:
		w.SimpleString(p.text)
	case replyFn:
		p.fn(c, rs)
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// bulk writes a value as a bulk string, writing the buffer out once it
// holds flushAt bytes, so that a reply of many values (MGET) is not held
// whole. A value of flushAt bytes or more is not copied into the buffer:
// it goes out from the store's own string with what is buffered before
// it. A client that reads slowly holds at most about flushAt bytes of
// buffer and the values it asked for, not copies of them.
func (c *conn) bulk(v string) {
	if len(v) < flushAt {
		c.w.BulkString(v)
		if len(c.w.Buf) >= flushAt {
			c.writeOut()
		}
		return
	}
	c.w.BulkHeader(len(v))
	c.write(v)
}

// writeOut writes the reply buffer to the client. A client that reads
// nothing for WriteTimeout is disconnected.
func (c *conn) writeOut() bool { return c.write("") }

var crlf = []byte("\r\n")

// write writes the reply buffer, then big and CR LF if big is not empty,
// in one writev. False once a write failed.
func (c *conn) write(big string) bool {
	if c.writeFailed {
		c.w.Buf = c.w.Buf[:0]
		return false
	}
	if len(c.w.Buf) == 0 && big == "" {
		return true
	}
	// Moving the deadline is a timer update; as with batchContext it
	// moves only once half of it has passed, so a client that reads
	// nothing is disconnected after between half and all of WriteTimeout.
	if now := time.Now(); c.writeEnd.Sub(now) < c.s.cfg.WriteTimeout/2 {
		c.writeEnd = now.Add(c.s.cfg.WriteTimeout)
		c.nc.SetWriteDeadline(c.writeEnd)
	}
	var err error
	if big == "" {
		_, err = c.nc.Write(c.w.Buf)
	} else {
		// The store's strings are immutable and Write only reads.
		bufs := net.Buffers{c.w.Buf, unsafe.Slice(unsafe.StringData(big), len(big)), crlf}
		_, err = bufs.WriteTo(c.nc)
	}
	if cap(c.w.Buf) > maxKeepBuffer {
		c.w.Buf = nil
	} else {
		c.w.Buf = c.w.Buf[:0]
	}
	if err != nil {
		c.writeFailed = true
		c.s.log.Debug("redis front: write failed", "client", c.addr, "err", err)
		return false
	}
	return true
}

// errorText is the error reply for err, with Redis' prefixes where Redis
// has one for the same failure.
func errorText(err error) string {
	switch {
	case errors.Is(err, errLoading):
		return err.Error()
	case errors.Is(err, actor.ErrMemoryLimit):
		return "OOM command not allowed when used memory > 'maxmemory'."
	case errors.Is(err, actor.ErrTooLarge):
		return "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
	case errors.Is(err, actor.ErrNotInteger), errors.Is(err, actor.ErrOverflow),
		errors.Is(err, actor.ErrNotFloat), errors.Is(err, actor.ErrNaN):
		return "ERR " + err.Error()
	case errors.Is(err, actor.ErrStorage):
		return "MISCONF " + err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "ERR timeout: the request did not complete within --request-timeout; its outcome is unknown"
	}
	return "ERR " + err.Error()
}

// appendInfo is the connection's CLIENT LIST line.
func (c *conn) appendInfo(b []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	age := int64(c.s.clock.Since(c.created) / time.Second)
	b = fmt.Appendf(b, "id=%d addr=%s laddr=%s fd=0 name=%s age=%d idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 tot-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 events=r cmd=%s user=%s redir=-1 resp=%d lib-name=%s lib-ver=%s",
		c.id, c.addr, c.nc.LocalAddr(), c.name, age, c.lastCmd, cmp.Or(c.user, "default"), c.proto, c.libName, c.libVer)
	return b
}

func sortByID(cs []*conn) []*conn {
	slices.SortFunc(cs, func(a, b *conn) int { return int(a.id - b.id) })
	return cs
}

// itoa is strconv.Itoa for int64.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }
