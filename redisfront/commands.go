package redisfront

import (
	"math"
	"strconv"
	"strings"
	"time"

	"kvstore/actor"
	"kvstore/rpc"
)

// cmdFlags are a command's properties, as COMMAND reports them.
type cmdFlags uint16

const (
	flagWrite cmdFlags = 1 << iota
	flagReadonly
	flagAdmin
	flagFast
	flagNoAuth // runs before AUTH
	flagLoading
	flagStale
	// flagTxControl: run at once within MULTI, not queued.
	flagTxControl
)

// command is one entry of the command table: everything the front knows
// about a command is here, from parsing to the reply.
type command struct {
	name string
	// arity is Redis': the argument count with the name, negative for
	// "at least".
	arity int
	flags cmdFlags
	// firstKey, lastKey, step locate the keys among the arguments, for
	// COMMAND (lastKey -1: to the end).
	firstKey, lastKey, step int
	// role is what a token needs to run it.
	role    rpc.Role
	group   string
	summary string
	since   string
	run     func(c *conn, args [][]byte)
}

// commands is the command table, by lower-case name.
var commands = map[string]*command{}

func init() {
	for _, c := range table {
		if c.role == 0 && c.flags&flagNoAuth == 0 {
			switch {
			case c.flags&flagAdmin != 0:
				c.role = rpc.RoleAdmin
			case c.flags&flagWrite != 0:
				c.role = rpc.RoleWrite
			default:
				c.role = rpc.RoleRead
			}
		}
		commands[c.name] = c
	}
}

func lookup(lower []byte) *command { return commands[string(lower)] }

// key and value checks: the machine enforces the same limits, this gives
// the client a clear error before anything is queued.
func (c *conn) checkKey(k []byte) bool {
	if max := c.s.cfg.MaxKeyBytes; max > 0 && len(k) > max {
		c.replyError("ERR key is " + itoa(int64(len(k))) + " bytes, over the " + itoa(int64(max)) + "-byte limit (--max-key-bytes)")
		return false
	}
	return true
}

func (c *conn) checkValue(v []byte) bool {
	if max := c.s.cfg.MaxValueBytes; max > 0 && len(v) > max {
		c.replyError("ERR value is " + itoa(int64(len(v))) + " bytes, over the " + itoa(int64(max)) + "-byte limit (--max-value-bytes)")
		return false
	}
	return true
}

// checkKeys checks every argument from first on, step apart.
func (c *conn) checkKeys(args [][]byte, first, step int) bool {
	for i := first; i < len(args); i += step {
		if !c.checkKey(args[i]) {
			return false
		}
	}
	return true
}

const (
	errSyntax    = "ERR syntax error"
	errNotInt    = "ERR value is not an integer or out of range"
	errNotFloat  = "ERR value is not a valid float"
	errOffset    = "ERR offset is out of range"
	errMaxString = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
)

func parseInt(b []byte) (int64, bool) {
	n, err := strconv.ParseInt(string(b), 10, 64)
	return n, err == nil
}

func eq(b []byte, lower string) bool { return strings.EqualFold(string(b), lower) }

// expireArg turns an expiry argument in unit into a deadline command
// field: relative (EX, PX, EXPIRE) or absolute (EXAT, PXAT, EXPIREAT), in
// nanoseconds; ok is false past int64, as Redis refuses it.
func expireArg(b []byte, unit time.Duration) (int64, bool, bool) {
	n, ok := parseInt(b)
	if !ok {
		return 0, false, false
	}
	if n > math.MaxInt64/int64(unit) || n < math.MinInt64/int64(unit) {
		return 0, true, false
	}
	return n * int64(unit), true, true
}

var table = []*command{
	{name: "get", arity: 2, flags: flagReadonly | flagFast, firstKey: 1, lastKey: 1, step: 1, group: "string", summary: "Returns the string value of a key.", since: "1.0.0",
		run: func(c *conn, args [][]byte) {
			if c.checkKey(args[1]) {
				c.queue(replyBulk, actor.Command{Op: actor.OpGet, Key: string(args[1])})
			}
		}},
	{name: "set", arity: -3, flags: flagWrite, firstKey: 1, lastKey: 1, step: 1, group: "string", summary: "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", since: "1.0.0",
		run: runSet},
	{name: "setnx", arity: 3, flags: flagWrite | flagFast, firstKey: 1, lastKey: 1, step: 1, group: "string", summary: "Set the string value of a key only when the key doesn't exist.", since: "1.0.0",
		run: func(c *conn, args [][]byte) {
			if c.checkKey(args[1]) && c.checkValue(args[2]) {
				c.queue(replyFound, actor.Command{Op: actor.OpSet, Flags: actor.FlagNX, Key: string(args[1]), Value: string(args[2])})
			}
		}},
	{name: "setex", arity: 4, flags: flagWrite, firstKey: 1, lastKey: 1, step: 1, group: "string", summary: "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", since: "2.0.0",
		run: func(c *conn, args [][]byte) { runSetEx(c, args, time.Second, "setex") }},
	{name: "psetex", arity: 4, flags: flagWrite, firstKey: 1, lastKey: 1, step: 1, group: "string", summary: "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", since: "2.6.0",
		run: func(c *conn, args [][]byte) { runSetEx(c, args, time.Millisecond, "psetex") }},
	{name: "getset", arity: 3, flags: flagWrite | flagFast, firstKey: 1, lastKey: 1, step: 1, group: "string", summary: "Returns the previous string value of a key after setting it to a new value.", since: "1.0.0",
		run: func(c *conn, args [][]byte) {
			if c.checkKey(args[1]) && c.checkValue(args[2]) {
				c.queue(replyOld, actor.Command{Op: actor.OpSet, Flags: actor.FlagGet, Key: string(args[1]), Value: string(args[2])})
			}
		}},
	{name: "getdel", arity: 2, flags: flagWrite | flagFast, firstKey: 1, lastKey: 1, step: 1, group: "string", summary: "Returns the string value of a key after deleting the key.", since: "6.2.0",
		run: func(c *conn, args [][]byte) {
			if c.checkKey(args[1]) {
				c.queue(replyOld, actor.Command{Op: actor.OpDelete, Flags: actor.FlagGet, Key: string(args[1])})
			}
		}},
	{name: "getex", arity: -2, flags: flagWrite | flagFast, firstKey: 1, lastKey: 1, step: 1, group: "string", summary: "Returns the string value of a key after setting its expiration time.", since: "6.2.0",
		run: runGetEx},
	{name: "mget", arity: -2, flags: flagReadonly | flagFast, firstKey: 1, lastKey: -1, step: 1, group: "string", summary: "Atomically returns the string values of one or more keys.", since: "1.0.0",
		run: func(c *conn, args [][]byte) {
			cmds, ok := c.keyCommands(args, actor.OpGet)
			if !ok {
				return
			}
			c.queueFn(func(c *conn, rs []actor.Result) {
				c.w.Array(len(rs))
				for i := range rs {
					if rs[i].Found {
						c.bulk(rs[i].Value)
					} else {
						c.w.Null()
					}
				}
			}, cmds...)
		}},
	{name: "mset", arity: -3, flags: flagWrite, firstKey: 1, lastKey: -1, step: 2, group: "string", summary: "Atomically creates or modifies the string values of one or more keys.", since: "1.0.1",
		run: func(c *conn, args [][]byte) {
			// One unit, so that --max-memory takes all or none.
			if cmds, ok := c.setPairs(args, "mset"); ok {
				c.queueKind(replyOK, unit(0, cmds))
			}
		}},
	{name: "del", arity: -2, flags: flagWrite, firstKey: 1, lastKey: -1, step: 1, group: "generic", summary: "Deletes one or more keys.", since: "1.0.0", run: runDel},
	{name: "unlink", arity: -2, flags: flagWrite | flagFast, firstKey: 1, lastKey: -1, step: 1, group: "generic", summary: "Asynchronously deletes one or more keys.", since: "4.0.0", run: runDel},
	{name: "exists", arity: -2, flags: flagReadonly | flagFast, firstKey: 1, lastKey: -1, step: 1, group: "generic", summary: "Determines whether one or more keys exist.", since: "1.0.0",
		run: func(c *conn, args [][]byte) {
			cmds, ok := c.keyCommands(args, actor.OpGet)
			if !ok {
				return
			}
			c.queueKind(replyCount, cmds)
		}},
	{name: "expire", arity: -3, flags: flagWrite | flagFast, firstKey: 1, lastKey: 1, step: 1, group: "generic", summary: "Sets the expiration time of a key in seconds.", since: "1.0.0",
		run: func(c *conn, args [][]byte) { runExpire(c, args, time.Second, true) }},
	{name: "pexpire", arity: -3, flags: flagWrite | flagFast, firstKey: 1, lastKey: 1, step: 1, group: "generic", summary: "Sets the expiration time of a key in milliseconds.", since: "2.6.0",
		run: func(c *conn, args [][]byte) { runExpire(c, args, time.Millisecond, true) }},
	{name: "expireat", arity: -3, flags: flagWrite | flagFast, firstKey: 1, lastKey: 1, step: 1, group: "generic", summary: "Sets the expiration time of a key to a Unix timestamp.", since: "1.2.0",
		run: func(c *conn, args [][]byte) { runExpire(c, args, time.Second, false) }},
	{name: "pexpireat", arity: -3, flags: flagWrite | flagFast, firstKey: 1, lastKey: 1, step: 1, group: "generic", summary: "Sets the expiration time of a key to a Unix milliseconds timestamp.", since: "2.6.0",
		run: func(c *conn, args [][]byte) { runExpire(c, args, time.Millisecond, false) }},
	{name: "ttl", arity: 2, flags: flagReadonly | flagFast, firstKey: 1, lastKey: 1, step: 1, group: "generic", summary: "Returns the expiration time in seconds of a key.", since: "1.0.0",
		run: func(c *conn, args [][]byte) { runTTL(c, args, time.Second, true) }},
	{name: "pttl", arity: 2, flags: flagReadonly | flagFast, firstKey: 1, lastKey: 1, step: 1, group: "generic", summary: "Returns the expiration time in milliseconds of a key.", since: "2.6.0",
		run: func(c *conn, args [][]byte) { runTTL(c, args, time.Millisecond, true) }},
	{name: "expiretime", arity: 2, flags: flagReadonly | flagFast, firstKey: 1, lastKey: 1, step: 1, group: "generic", summary: "Returns the expiration time of a key as a Unix timestamp.", since: "7.0.0",
		run: func(c *conn, args [][]byte) { runTTL(c, args, time.Second, false) }},
	{name: "pexpiretime", arity: 2, flags: flagReadonly | flagFast, firstKey: 1, lastKey: 1, step: 1, group: "generic", summary: "Returns the expiration time of a key as a Unix milliseconds timestamp.", since: "7.0.0",
		run: func(c *conn, args [][]byte) { runTTL(c, args, time.Millisecond, false) }},
	{name: "persist", arity: 2, flags: flagWrite | flagFast, firstKey: 1, lastKey: 1, step: 1, group: "generic", summary: "Removes the expiration time of a key.", since: "2.2.0",
		run: func(c *conn, args [][]byte) {
			if c.checkKey(args[1]) {
				c.queue(replyFound, actor.Command{Op: actor.OpPersist, Key: string(args[1])})
			}
		}},
	{name: "incr", arity: 2, flags: flagWrite | flagFast, firstKey: 1, lastKey: 1, step: 1, group: "string", summary: "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", since: "1.0.0",
		run: func(c *conn, args [][]byte) { runIncr(c, args[1], 1) }},
	{name: "decr", arity: 2, flags: flagWrite | flagFast, firstKey: 1, lastKey: 1, step: 1, group: "string", summary: "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", since: "1.0.0",
		run: func(c *conn, args [][]byte) { runIncr(c, args[1], -1) }},
	{name: "incrby", arity: 3, flags: flagWrite | flagFast, firstKey: 1, lastKey: 1, step: 1, group: "string", summary: "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", since: "1.0.0",
		run: func(c *conn, args [][]byte) {
			n, ok := parseInt(args[2])
			if !ok {
				c.replyError(errNotInt)
				return
			}
			runIncr(c, args[1], n)
		}},
	{name: "decrby", arity: 3, flags: flagWrite | flagFast, firstKey: 1, lastKey: 1, step: 1, group: "string", summary: "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", since: "1.0.0",
		run: func(c *conn, args [][]byte) {
			n, ok := parseInt(args[2])
			if !ok {
				c.replyError(errNotInt)
				return
			}
			if n == math.MinInt64 {
				c.replyError("ERR decrement would overflow")
				return
			}
			runIncr(c, args[1], -n)
		}},
	{name: "incrbyfloat", arity: 3, flags: flagWrite | flagFast, firstKey: 1, lastKey: 1, step: 1, group: "string", summary: "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", since: "2.6.0",
		run: func(c *conn, args [][]byte) {
			if !c.checkKey(args[1]) {
				return
			}
			if f, err := strconv.ParseFloat(string(args[2]), 64); err != nil || math.IsNaN(f) || strings.TrimSpace(string(args[2])) != string(args[2]) {
				c.replyError(errNotFloat)
				return
			}
			c.queueFn(func(c *conn, rs []actor.Result) { c.w.BulkString(rs[0].Value) },
				actor.Command{Op: actor.OpIncrFloat, Key: string(args[1]), Value: string(args[2])})
		}},
	{name: "append", arity: 3, flags: flagWrite | flagFast, firstKey: 1, lastKey: 1, step: 1, group: "string", summary: "Appends a string to the value of a key. Creates the key if it doesn't exist.", since: "2.0.0",
		run: func(c *conn, args [][]byte) {
			if c.checkKey(args[1]) && c.checkValue(args[2]) {
				c.queue(replyInt, actor.Command{Op: actor.OpAppend, Key: string(args[1]), Value: string(args[2])})
			}
		}},
	{name: "strlen", arity: 2, flags: flagReadonly | flagFast, firstKey: 1, lastKey: 1, step: 1, group: "string", summary: "Returns the length of a string value.", since: "2.2.0",
		run: func(c *conn, args [][]byte) {
			if c.checkKey(args[1]) {
				c.queueFn(func(c *conn, rs []actor.Result) { c.w.Integer(int64(len(rs[0].Value))) },
					actor.Command{Op: actor.OpGet, Key: string(args[1])})
			}
		}},
	{name: "getrange", arity: 4, flags: flagReadonly, firstKey: 1, lastKey: 1, step: 1, group: "string", summary: "Returns a substring of the string stored at a key.", since: "2.4.0",
		run: func(c *conn, args [][]byte) {
			start, ok1 := parseInt(args[2])
			end, ok2 := parseInt(args[3])
			if !ok1 || !ok2 {
				c.replyError(errNotInt)
				return
			}
			if !c.checkKey(args[1]) {
				return
			}
			c.queueFn(func(c *conn, rs []actor.Result) { c.w.BulkString(substr(rs[0].Value, start, end)) },
				actor.Command{Op: actor.OpGet, Key: string(args[1])})
		}},
	{name: "setrange", arity: 4, flags: flagWrite, firstKey: 1, lastKey: 1, step: 1, group: "string", summary: "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", since: "2.2.0",
		run: func(c *conn, args [][]byte) {
			off, ok := parseInt(args[2])
			if !ok {
				c.replyError(errNotInt)
				return
			}
			if off < 0 {
				c.replyError(errOffset)
				return
			}
			if off+int64(len(args[3])) > 512<<20 {
				c.replyError(errMaxString)
				return
			}
			if c.checkKey(args[1]) {
				c.queue(replyInt, actor.Command{Op: actor.OpSetRange, Key: string(args[1]), Value: string(args[3]), Delta: off})
			}
		}},
	{name: "type", arity: 2, flags: flagReadonly | flagFast, firstKey: 1, lastKey: 1, step: 1, group: "generic", summary: "Determines the type of value stored at a key.", since: "1.0.0",
		run: func(c *conn, args [][]byte) {
			if c.checkKey(args[1]) {
				c.queueFn(func(c *conn, rs []actor.Result) {
					if rs[0].Found {
						c.w.SimpleString("string")
					} else {
						c.w.SimpleString("none")
					}
				}, actor.Command{Op: actor.OpGet, Key: string(args[1])})
			}
		}},
	{name: "dbsize", arity: 1, flags: flagReadonly | flagFast, group: "server", summary: "Returns the number of keys in the database.", since: "1.0.0",
		run: func(c *conn, args [][]byte) {
			c.replyNow(func(c *conn) {
				st, _ := c.s.cfg.Backend.Stats()
				c.w.Integer(int64(st.Keys))
			})
		}},
	{name: "scan", arity: -2, flags: flagReadonly, group: "generic", summary: "Iterates over the key names in the database.", since: "2.8.0", run: runScan},
	{name: "keys", arity: 2, flags: flagReadonly, group: "generic", summary: "Returns all key names that match a pattern.", since: "1.0.0", run: runKeys},
	{name: "ping", arity: -1, flags: flagFast, group: "connection", summary: "Returns the server's liveliness response.", since: "1.0.0",
		run: func(c *conn, args [][]byte) {
			switch len(args) {
			case 1:
				c.replySimple("PONG")
			case 2:
				msg := string(args[1])
				c.replyNow(func(c *conn) { c.w.BulkString(msg) })
			default:
				c.replyError("ERR wrong number of arguments for 'ping' command")
			}
		}},
	{name: "echo", arity: 2, flags: flagFast, group: "connection", summary: "Returns the given string.", since: "1.0.0",
		run: func(c *conn, args [][]byte) {
			msg := string(args[1])
			c.replyNow(func(c *conn) { c.w.BulkString(msg) })
		}},
	{name: "quit", arity: -1, flags: flagNoAuth | flagFast | flagTxControl, group: "connection", summary: "Closes the connection.", since: "1.0.0",
		run: func(c *conn, args [][]byte) {
			c.replySimple("OK")
			c.quit = true
		}},
	{name: "select", arity: 2, flags: flagFast | flagLoading, group: "connection", summary: "Changes the selected database.", since: "1.0.0",
		run: func(c *conn, args [][]byte) {
			n, ok := parseInt(args[1])
			switch {
			case !ok:
				c.replyError(errNotInt)
			case n != 0:
				c.replyError("ERR DB index is out of range")
			default:
				c.replySimple("OK")
			}
		}},
	{name: "auth", arity: -2, flags: flagNoAuth | flagFast | flagLoading, group: "connection", summary: "Authenticates the connection.", since: "1.0.0", run: runAuth},
	{name: "hello", arity: -1, flags: flagNoAuth | flagFast | flagLoading, group: "connection", summary: "Handshakes with the Redis server.", since: "6.0.0", run: runHello},
	{name: "client", arity: -2, flags: flagLoading, group: "connection", summary: "A container for client connection commands.", since: "2.4.0", run: runClient},
	{name: "time", arity: 1, flags: flagFast | flagLoading, group: "server", summary: "Returns the server time.", since: "2.6.0",
		run: func(c *conn, args [][]byte) {
			c.replyNow(func(c *conn) {
				now := c.s.clock.Now()
				c.w.Array(2)
				c.w.BulkString(itoa(now.Unix()))
				c.w.BulkString(itoa(int64(now.Nanosecond() / 1000)))
			})
		}},
	{name: "command", arity: -1, flags: flagLoading, group: "server", summary: "Returns detailed information about all commands.", since: "2.8.13", run: runCommand},
	{name: "config", arity: -2, flags: flagAdmin | flagLoading, group: "server", summary: "A container for server configuration commands.", since: "2.0.0", run: runConfig},
	{name: "info", arity: -1, flags: flagLoading, group: "server", summary: "Returns information and statistics about the server.", since: "1.0.0", run: runInfo},
	{name: "wait", arity: 3, group: "generic", summary: "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed.", since: "3.0.0",
		run: func(c *conn, args [][]byte) {
			if _, ok := parseInt(args[1]); !ok {
				c.replyError(errNotInt)
				return
			}
			if t, ok := parseInt(args[2]); !ok || t < 0 {
				c.replyError("ERR timeout is negative")
				return
			}
			// A single node has no replicas: every write acknowledged
			// before is durable here, on zero others.
			c.replyNow(func(c *conn) { c.w.Integer(0) })
		}},
	{name: "multi", arity: 1, flags: flagFast | flagTxControl, group: "transactions", summary: "Starts a transaction.", since: "1.2.0", run: runMulti},
	{name: "exec", arity: 1, flags: flagTxControl, group: "transactions", summary: "Executes all commands in a transaction.", since: "1.2.0", run: runExec},
	{name: "discard", arity: 1, flags: flagFast | flagTxControl, group: "transactions", summary: "Discards a transaction.", since: "2.0.0", run: runDiscard},
	{name: "watch", arity: -2, flags: flagFast | flagTxControl, group: "transactions", summary: "Monitors changes to keys to determine the execution of a transaction.", since: "2.2.0", run: runWatch},
	{name: "unwatch", arity: 1, flags: flagFast, group: "transactions", summary: "Forgets about watched keys of a transaction.", since: "2.2.0",
		run: func(c *conn, _ [][]byte) { c.replySimple("OK") }},
	{name: "msetnx", arity: -3, flags: flagWrite, firstKey: 1, lastKey: -1, step: 2, group: "string", summary: "Atomically modifies the string values of one or more keys only when all keys don't exist.", since: "1.0.1",
		run: func(c *conn, args [][]byte) {
			cmds, ok := c.setPairs(args, "msetnx")
			if !ok {
				return
			}
			c.queueKind(replyFound, unit(actor.FlagNX, cmds))
		}},
	{name: "flushdb", arity: -1, flags: flagWrite | flagAdmin, group: "server", summary: "Removes all keys from the current database.", since: "1.0.0", run: runFlush},
	{name: "flushall", arity: -1, flags: flagWrite | flagAdmin, group: "server", summary: "Removes all keys from all databases.", since: "1.0.0", run: runFlush},
}

// setPairs is one set per key and value pair of MSET and MSETNX; false,
// with the error replied, when they are not pairs or one is too large.
func (c *conn) setPairs(args [][]byte, name string) ([]actor.Command, bool) {
	if len(args)%2 != 1 {
		c.replyError("ERR wrong number of arguments for '" + name + "' command")
		return nil, false
	}
	if !c.checkKeys(args, 1, 2) {
		return nil, false
	}
	cmds := make([]actor.Command, 0, len(args)/2)
	for i := 1; i < len(args); i += 2 {
		if !c.checkValue(args[i+1]) {
			return nil, false
		}
		cmds = append(cmds, actor.Command{Op: actor.OpSet, Key: string(args[i]), Value: string(args[i+1])})
	}
	return cmds, true
}

// unit is cmds as one actor.OpUnit with flags.
func unit(flags actor.Flags, cmds []actor.Command) []actor.Command {
	return append([]actor.Command{{Op: actor.OpUnit, Flags: flags, Delta: int64(len(cmds))}}, cmds...)
}

// runFlush is FLUSHDB and FLUSHALL [ASYNC|SYNC]: one database, so both
// remove every key, at once (ASYNC too: the removal is one command of
// the machine).
func runFlush(c *conn, args [][]byte) {
	if len(args) > 2 || (len(args) == 2 && !eq(args[1], "async") && !eq(args[1], "sync")) {
		c.replyError(errSyntax)
		return
	}
	c.queue(replyOK, actor.Command{Op: actor.OpFlush})
}

// runSet is SET key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ms|KEEPTTL].
func runSet(c *conn, args [][]byte) {
	cmd := actor.Command{Op: actor.OpSet}
	expiry := false
	for i := 3; i < len(args); i++ {
		a := args[i]
		switch {
		case eq(a, "nx") && cmd.Flags&actor.FlagXX == 0:
			cmd.Flags |= actor.FlagNX
		case eq(a, "xx") && cmd.Flags&actor.FlagNX == 0:
			cmd.Flags |= actor.FlagXX
		case eq(a, "get"):
			cmd.Flags |= actor.FlagGet
		case eq(a, "keepttl") && !expiry:
			cmd.Flags |= actor.FlagKeepTTL
			expiry = true
		case isExpiryOption(a) && !expiry && i+1 < len(args):
			if !c.expiryOption(&cmd, a, args[i+1], "set") {
				return
			}
			expiry = true
			i++
		default:
			c.replyError(errSyntax)
			return
		}
	}
	if !c.checkKey(args[1]) || !c.checkValue(args[2]) {
		return
	}
	cmd.Key, cmd.Value = string(args[1]), string(args[2])
	if cmd.Flags&actor.FlagGet != 0 {
		c.queue(replyOld, cmd)
		return
	}
	if cmd.Flags&(actor.FlagNX|actor.FlagXX) != 0 {
		c.queue(replySet, cmd)
		return
	}
	c.queue(replyOK, cmd)
}

// isExpiryOption reports whether a is EX, PX, EXAT or PXAT.
func isExpiryOption(a []byte) bool {
	return eq(a, "ex") || eq(a, "px") || eq(a, "exat") || eq(a, "pxat")
}

// expiryOption sets cmd's deadline from the option opt (EX, PX, EXAT,
// PXAT) and its value, or replies with name's error and returns false.
func (c *conn) expiryOption(cmd *actor.Command, opt, value []byte, name string) bool {
	unit := time.Second
	if opt[0] == 'p' || opt[0] == 'P' {
		unit = time.Millisecond
	}
	d, isInt, ok := expireArg(value, unit)
	if !isInt {
		c.replyError(errNotInt)
		return false
	}
	if !ok || d <= 0 {
		c.replyError("ERR invalid expire time in '" + name + "' command")
		return false
	}
	if len(opt) == 2 {
		cmd.Flags |= actor.FlagRelative
	}
	cmd.Deadline = d
	return true
}

// runSetEx is SETEX and PSETEX.
func runSetEx(c *conn, args [][]byte, unit time.Duration, name string) {
	d, isInt, ok := expireArg(args[2], unit)
	if !isInt {
		c.replyError(errNotInt)
		return
	}
	if !ok || d <= 0 {
		c.replyError("ERR invalid expire time in '" + name + "' command")
		return
	}
	if c.checkKey(args[1]) && c.checkValue(args[3]) {
		c.queue(replyOK, actor.Command{Op: actor.OpSet, Flags: actor.FlagRelative, Key: string(args[1]), Value: string(args[3]), Deadline: d})
	}
}

// runGetEx is GETEX key [EX s|PX ms|EXAT ts|PXAT ms|PERSIST].
func runGetEx(c *conn, args [][]byte) {
	cmd := actor.Command{Op: actor.OpGetEx}
	if len(args) > 4 {
		c.replyError(errSyntax)
		return
	}
	if len(args) == 3 {
		if !eq(args[2], "persist") {
			c.replyError(errSyntax)
			return
		}
		cmd.Flags |= actor.FlagPersist
	}
	if len(args) == 4 {
		if !isExpiryOption(args[2]) {
			c.replyError(errSyntax)
			return
		}
		if !c.expiryOption(&cmd, args[2], args[3], "getex") {
			return
		}
	}
	if c.checkKey(args[1]) {
		cmd.Key = string(args[1])
		c.queue(replyBulk, cmd)
	}
}

func runDel(c *conn, args [][]byte) {
	if cmds, ok := c.keyCommands(args, actor.OpDelete); ok {
		c.queueKind(replyCount, cmds)
	}
}

// keyCommands is one op command per key argument (args[1:]); false, with
// the error replied, when a key is past the limit.
func (c *conn) keyCommands(args [][]byte, op actor.Op) ([]actor.Command, bool) {
	if !c.checkKeys(args, 1, 1) {
		return nil, false
	}
	cmds := make([]actor.Command, 0, len(args)-1)
	for _, k := range args[1:] {
		cmds = append(cmds, actor.Command{Op: op, Key: string(k)})
	}
	return cmds, true
}

// runExpire is EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT with NX XX GT LT.
func runExpire(c *conn, args [][]byte, unit time.Duration, relative bool) {
	d, isInt, ok := expireArg(args[2], unit)
	if !isInt {
		c.replyError(errNotInt)
		return
	}
	name := strings.ToLower(string(args[0]))
	if !ok {
		c.replyError("ERR invalid expire time in '" + name + "' command")
		return
	}
	cmd := actor.Command{Op: actor.OpExpire, Deadline: d}
	if relative {
		cmd.Flags |= actor.FlagRelative
		if d == 0 {
			// EXPIRE k 0 deletes k; a relative 0 means "no deadline" to
			// the machine, so make it the past instead.
			cmd.Deadline = -1
		}
	} else if d <= 0 {
		cmd.Deadline = math.MinInt64 + 1 // a time long past, not "none"
	}
	for _, a := range args[3:] {
		switch {
		case eq(a, "nx"):
			cmd.Flags |= actor.FlagNX
		case eq(a, "xx"):
			cmd.Flags |= actor.FlagXX
		case eq(a, "gt"):
			cmd.Flags |= actor.FlagGT
		case eq(a, "lt"):
			cmd.Flags |= actor.FlagLT
		default:
			c.replyError("ERR Unsupported option " + string(a))
			return
		}
	}
	f := cmd.Flags
	if f&actor.FlagNX != 0 && f&(actor.FlagXX|actor.FlagGT|actor.FlagLT) != 0 {
		c.replyError("ERR NX and XX, GT or LT options at the same time are not compatible")
		return
	}
	if f&actor.FlagGT != 0 && f&actor.FlagLT != 0 {
		c.replyError("ERR GT and LT options at the same time are not compatible")
		return
	}
	if c.checkKey(args[1]) {
		cmd.Key = string(args[1])
		c.queue(replyFound, cmd)
	}
}

// runTTL is TTL and PTTL (left), EXPIRETIME and PEXPIRETIME (absolute).
func runTTL(c *conn, args [][]byte, unit time.Duration, left bool) {
	if !c.checkKey(args[1]) {
		return
	}
	c.queueFn(func(c *conn, rs []actor.Result) {
		r := rs[0]
		switch {
		case !r.Found:
			c.w.Integer(-2)
		case r.Deadline == 0:
			c.w.Integer(-1)
		case left:
			ms := max(0, (r.Deadline-c.req.Now+int64(time.Millisecond)/2)/int64(time.Millisecond))
			if unit == time.Second {
				c.w.Integer((ms + 500) / 1000)
			} else {
				c.w.Integer(ms)
			}
		default:
			c.w.Integer(r.Deadline / int64(unit))
		}
	}, actor.Command{Op: actor.OpGet, Key: string(args[1])})
}

func runIncr(c *conn, key []byte, by int64) {
	if c.checkKey(key) {
		c.queue(replyInt, actor.Command{Op: actor.OpIncr, Key: string(key), Delta: by})
	}
}

// substr is GETRANGE's slice of s: negative indexes count from the end,
// both ends inclusive.
func substr(s string, start, end int64) string {
	n := int64(len(s))
	if start < 0 && end < 0 && start > end {
		return ""
	}
	if start < 0 {
		start = max(0, n+start)
	}
	if end < 0 {
		end = max(0, n+end)
	}
	end = min(end, n-1)
	if start > end || n == 0 {
		return ""
	}
	return s[start : end+1]
}
