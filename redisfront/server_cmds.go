package redisfront

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"time"
)

// redisVersion is the Redis version kvstore answers as: the one whose
// commands and replies it follows. Clients look at it to pick features.
const redisVersion = "7.2.0"

// runAuth is AUTH [username] password: the password is a token of the
// auth file; the username, if given, is "default" or the token's name.
func runAuth(c *conn, args [][]byte) {
	if len(args) > 3 {
		c.replyError(errSyntax)
		return
	}
	user, token := "", string(args[len(args)-1])
	if len(args) == 3 {
		user = string(args[1])
	}
	if err := c.authenticate(user, token); err != "" {
		c.replyError(err)
		return
	}
	c.replySimple("OK")
}

// authenticate checks a token and gives the connection its role; it
// returns the error reply, "" on success.
func (c *conn) authenticate(user, token string) string {
	a := c.s.cfg.Auth
	if a == nil {
		return "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
	}
	role, name, ok := a.Lookup(token)
	if !ok || (user != "" && user != "default" && user != name) {
		return "WRONGPASS invalid username-password pair or user is disabled."
	}
	c.role, c.authed = role, true
	c.mu.Lock()
	c.user = cmp.Or(name, "default")
	c.mu.Unlock()
	// Authenticated connections are not timed out while idle.
	c.nc.SetReadDeadline(time.Time{})
	return ""
}

// runHello is HELLO [protover [AUTH username password] [SETNAME name]].
func runHello(c *conn, args [][]byte) {
	proto := c.w.Proto
	if len(args) > 1 {
		v, ok := parseInt(args[1])
		if !ok {
			c.replyError("ERR Protocol version is not an integer or out of range")
			return
		}
		if v != 2 && v != 3 {
			c.replyError("NOPROTO unsupported protocol version")
			return
		}
		proto = int(v)
	}
	var name []byte
	setName := false
	for i := 2; i < len(args); i++ {
		switch {
		case eq(args[i], "auth") && i+2 < len(args):
			if err := c.authenticate(string(args[i+1]), string(args[i+2])); err != "" {
				c.replyError(err)
				return
			}
			i += 2
		case eq(args[i], "setname") && i+1 < len(args):
			name, setName = args[i+1], true
			i++
		default:
			c.replyError("ERR Syntax error in HELLO option '" + string(args[i]) + "'")
			return
		}
	}
	if !c.authed && c.s.cfg.Auth != nil {
		c.replyError("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if setName {
		if err := validName(name); err != "" {
			c.replyError(err)
			return
		}
		c.mu.Lock()
		c.name = string(name)
		c.mu.Unlock()
	}
	c.replyNow(func(c *conn) {
		c.setProto(proto)
		w := &c.w
		w.Map(7)
		w.BulkString("server")
		w.BulkString("redis")
		w.BulkString("version")
		w.BulkString(redisVersion)
		w.BulkString("proto")
		w.Integer(int64(proto))
		w.BulkString("id")
		w.Integer(c.id)
		w.BulkString("mode")
		w.BulkString("standalone")
		w.BulkString("role")
		w.BulkString("master")
		w.BulkString("modules")
		w.Array(0)
	})
}

func (c *conn) setProto(p int) {
	c.mu.Lock()
	c.w.Proto = p
	c.proto = p
	c.mu.Unlock()
}

// validName is CLIENT SETNAME's rule: no spaces or newlines.
func validName(b []byte) string {
	for _, ch := range b {
		if ch < '!' || ch > '~' {
			return "ERR Client names cannot contain spaces, newlines or special characters."
		}
	}
	return ""
}

// runClient is CLIENT SETNAME|GETNAME|ID|SETINFO|LIST|INFO.
func runClient(c *conn, args [][]byte) {
	sub := strings.ToLower(string(args[1]))
	switch {
	case sub == "setname" && len(args) == 3:
		if err := validName(args[2]); err != "" {
			c.replyError(err)
			return
		}
		c.mu.Lock()
		c.name = string(args[2])
		c.mu.Unlock()
		c.replySimple("OK")
	case sub == "getname" && len(args) == 2:
		c.replyNow(func(c *conn) {
			c.mu.Lock()
			name := c.name
			c.mu.Unlock()
			if name == "" {
				c.w.Null()
			} else {
				c.w.BulkString(name)
			}
		})
	case sub == "id" && len(args) == 2:
		c.replyNow(func(c *conn) { c.w.Integer(c.id) })
	case sub == "setinfo" && len(args) == 4:
		attr := strings.ToLower(string(args[2]))
		if attr != "lib-name" && attr != "lib-ver" {
			c.replyError("ERR Unrecognized option '" + string(args[2]) + "'")
			return
		}
		if err := validName(args[3]); err != "" {
			c.replyError(strings.Replace(err, "Client names", "lib-name and lib-ver", 1))
			return
		}
		c.mu.Lock()
		if attr == "lib-name" {
			c.libName = string(args[3])
		} else {
			c.libVer = string(args[3])
		}
		c.mu.Unlock()
		c.replySimple("OK")
	case sub == "list" && len(args) == 2:
		c.replyNow(func(c *conn) { c.w.Verbatim("txt", string(c.s.clientList())) })
	case sub == "info" && len(args) == 2:
		c.replyNow(func(c *conn) { c.w.Verbatim("txt", string(append(c.appendInfo(nil), '\n'))) })
	case sub == "help":
		c.replyNow(func(c *conn) {
			lines := []string{"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
				"GETNAME", "    Return the name of the current connection.",
				"ID", "    Return the ID of the current connection.",
				"INFO", "    Return information about the current client connection.",
				"LIST", "    Return information about client connections.",
				"SETINFO <option> <value>", "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
				"SETNAME <name>", "    Assign the name <name> to the current connection."}
			c.w.Array(len(lines))
			for _, l := range lines {
				c.w.SimpleString(l)
			}
		})
	default:
		c.replyError("ERR unknown subcommand or wrong number of arguments for '" + string(args[1]) + "'. Try CLIENT HELP.")
	}
}

// scanCount is SCAN's default COUNT, Redis'.
const scanCount = 10

// runScan is SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]. The
// cursor is a shard of the key space: every key present for a whole
// iteration is returned at least once, whatever is written meanwhile.
func runScan(c *conn, args [][]byte) {
	cursor, err := strconv.ParseUint(string(args[1]), 10, 64)
	if err != nil {
		c.replyError("ERR invalid cursor")
		return
	}
	count := scanCount
	var pattern string
	havePattern, stringsOnly := false, true
	for i := 2; i < len(args); i += 2 {
		if i+1 >= len(args) {
			c.replyError(errSyntax)
			return
		}
		switch {
		case eq(args[i], "match"):
			pattern, havePattern = string(args[i+1]), true
		case eq(args[i], "count"):
			n, ok := parseInt(args[i+1])
			if !ok {
				c.replyError(errNotInt)
				return
			}
			if n < 1 {
				c.replyError(errSyntax)
				return
			}
			count = int(min(n, 1<<20))
		case eq(args[i], "type"):
			stringsOnly = eq(args[i+1], "string")
		default:
			c.replyError(errSyntax)
			return
		}
	}
	c.replyNow(func(c *conn) {
		var keys []string
		next := uint64(0)
		if stringsOnly {
			var err error
			if keys, next, err = c.scan(cursor, count, matcher(pattern, havePattern)); err != nil {
				c.w.Error(errorText(err))
				return
			}
		}
		c.w.Array(2)
		c.w.BulkString(strconv.FormatUint(next, 10))
		c.w.Array(len(keys))
		for _, k := range keys {
			c.w.BulkString(k)
		}
	})
}

func matcher(pattern string, have bool) func(string) bool {
	if !have || pattern == "*" {
		return nil
	}
	return func(k string) bool { return match(pattern, k) }
}

// ctx bounds a call the front makes outside a batch.
func (c *conn) ctx() (context.Context, context.CancelFunc) {
	if t := c.s.cfg.RequestTimeout; t > 0 {
		return context.WithTimeout(context.Background(), t)
	}
	return context.Background(), func() {}
}

// scan is one step of a scan, bounded like a batch.
func (c *conn) scan(cursor uint64, count int, m func(string) bool) ([]string, uint64, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	return c.s.cfg.Backend.Scan(ctx, cursor, count, m)
}

// runKeys is KEYS pattern: a whole scan, in bounded steps on the owner.
func runKeys(c *conn, args [][]byte) {
	pattern := string(args[1])
	c.replyNow(func(c *conn) {
		var all []string
		cursor := uint64(0)
		m := matcher(pattern, true)
		for {
			keys, next, err := c.scan(cursor, 1024, m)
			if err != nil {
				c.w.Error(errorText(err))
				return
			}
			all = append(all, keys...)
			if cursor = next; cursor == 0 {
				break
			}
		}
		c.w.Array(len(all))
		for _, k := range all {
			c.w.BulkString(k)
		}
	})
}

// runCommand is COMMAND, COMMAND COUNT, COMMAND INFO name..., COMMAND
// DOCS [name...], COMMAND LIST.
func runCommand(c *conn, args [][]byte) {
	sub := ""
	if len(args) > 1 {
		sub = strings.ToLower(string(args[1]))
	}
	names := make([]string, 0, len(args))
	for _, a := range args[min(2, len(args)):] {
		names = append(names, strings.ToLower(string(a)))
	}
	switch sub {
	case "":
		c.replyNow(func(c *conn) {
			all := sortedCommands()
			c.w.Array(len(all))
			for _, cmd := range all {
				c.commandInfo(cmd)
			}
		})
	case "count":
		c.replyNow(func(c *conn) { c.w.Integer(int64(len(commands))) })
	case "list":
		c.replyNow(func(c *conn) {
			all := sortedCommands()
			c.w.Array(len(all))
			for _, cmd := range all {
				c.w.BulkString(cmd.name)
			}
		})
	case "info":
		c.replyNow(func(c *conn) {
			c.w.Array(len(names))
			for _, n := range names {
				if cmd := commands[n]; cmd != nil {
					c.commandInfo(cmd)
				} else {
					c.w.NullArray()
				}
			}
		})
	case "docs":
		c.replyNow(func(c *conn) {
			var list []*command
			if len(names) == 0 {
				list = sortedCommands()
			}
			for _, n := range names {
				if cmd := commands[n]; cmd != nil {
					list = append(list, cmd)
				}
			}
			c.w.Map(len(list))
			for _, cmd := range list {
				c.w.BulkString(cmd.name)
				args := parseSyntax(syntax[cmd.name])
				c.w.Map(3 + int(b2i(len(args) > 0)))
				c.w.BulkString("summary")
				c.w.BulkString(cmd.summary)
				c.w.BulkString("since")
				c.w.BulkString(cmd.since)
				c.w.BulkString("group")
				c.w.BulkString(cmd.group)
				if len(args) > 0 {
					c.w.BulkString("arguments")
					c.writeDocArgs(args)
				}
			}
		})
	default:
		c.replyError("ERR unknown subcommand '" + string(args[1]) + "'. Try COMMAND HELP.")
	}
}

func sortedCommands() []*command {
	all := make([]*command, 0, len(commands))
	for _, cmd := range commands {
		all = append(all, cmd)
	}
	slices.SortFunc(all, func(a, b *command) int { return strings.Compare(a.name, b.name) })
	return all
}

// commandInfo is one command's COMMAND reply: name, arity, flags, first
// key, last key, step, ACL categories, tips, key specs, subcommands.
func (c *conn) commandInfo(cmd *command) {
	w := &c.w
	w.Array(10)
	w.BulkString(cmd.name)
	w.Integer(int64(cmd.arity))
	var flags []string
	for _, f := range []struct {
		f    cmdFlags
		name string
	}{{flagWrite, "write"}, {flagReadonly, "readonly"}, {flagAdmin, "admin"}, {flagFast, "fast"}, {flagNoAuth, "no_auth"}, {flagLoading, "loading"}, {flagStale, "stale"}} {
		if cmd.flags&f.f != 0 {
			flags = append(flags, f.name)
		}
	}
	if cmd.flags&flagWrite != 0 {
		flags = append(flags, "denyoom")
	}
	w.Set(len(flags))
	for _, f := range flags {
		w.SimpleString(f)
	}
	w.Integer(int64(cmd.firstKey))
	w.Integer(int64(cmd.lastKey))
	w.Integer(int64(cmd.step))
	w.Set(1)
	w.SimpleString("@" + cmd.group)
	w.Set(0)
	w.Array(0)
	w.Array(0)
}

// configValues are the parameters CONFIG GET reports: enough for
// redis-benchmark and tools that look at persistence and memory.
func (s *Server) configValues() [][2]string {
	appendonly, fsync := "no", "everysec"
	if s.cfg.Fsync != "" {
		appendonly, fsync = "yes", s.cfg.Fsync
	}
	return [][2]string{
		{"maxmemory", strconv.FormatInt(s.cfg.MaxMemory, 10)},
		{"maxmemory-policy", "noeviction"},
		{"appendonly", appendonly},
		{"appendfsync", fsync},
		{"save", ""},
		{"databases", "1"},
		{"proto-max-bulk-len", strconv.Itoa(max(s.cfg.MaxKeyBytes, s.cfg.MaxValueBytes, 64<<10))},
		{"timeout", "0"},
	}
}

// runConfig is CONFIG GET pattern... and CONFIG RESETSTAT.
func runConfig(c *conn, args [][]byte) {
	switch sub := strings.ToLower(string(args[1])); sub {
	case "get":
		if len(args) < 3 {
			c.replyError("ERR wrong number of arguments for 'config|get' command")
			return
		}
		patterns := make([]string, 0, len(args)-2)
		for _, a := range args[2:] {
			patterns = append(patterns, strings.ToLower(string(a)))
		}
		c.replyNow(func(c *conn) {
			var out [][2]string
			for _, kv := range c.s.configValues() {
				for _, p := range patterns {
					if match(p, kv[0]) {
						out = append(out, kv)
						break
					}
				}
			}
			c.w.Map(len(out))
			for _, kv := range out {
				c.w.BulkString(kv[0])
				c.w.BulkString(kv[1])
			}
		})
	case "set":
		c.replyError("ERR CONFIG SET is not supported: kvstore is configured by its flags, environment and config file")
	case "resetstat":
		c.s.commandsProcessed.Store(0)
		c.replySimple("OK")
	default:
		c.replyError("ERR unknown subcommand '" + string(args[1]) + "'. Try CONFIG HELP.")
	}
}

// runInfo is INFO [section...]: server, clients, memory, persistence,
// stats, keyspace, with real figures.
func runInfo(c *conn, args [][]byte) {
	want := map[string]bool{}
	for _, a := range args[1:] {
		want[strings.ToLower(string(a))] = true
	}
	all := len(want) == 0 || want["all"] || want["everything"] || want["default"]
	c.replyNow(func(c *conn) {
		var b []byte
		section := func(name string, fill func()) {
			if all || want[name] {
				if len(b) > 0 {
					b = append(b, "\r\n"...)
				}
				b = append(b, "# "+strings.ToUpper(name[:1])+name[1:]+"\r\n"...)
				fill()
			}
		}
		line := func(k string, v any) { b = fmt.Appendf(b, "%s:%v\r\n", k, v) }
		s := c.s
		st, loaded := s.cfg.Backend.Stats()
		section("server", func() {
			line("redis_version", redisVersion)
			line("kvstore_version", cmp.Or(s.cfg.Version, "dev"))
			line("redis_mode", "standalone")
			line("os", runtime.GOOS+" "+runtime.GOARCH)
			line("arch_bits", strconv.IntSize)
			line("process_id", os.Getpid())
			line("uptime_in_seconds", int64(s.clock.Since(s.start)/time.Second))
			line("uptime_in_days", int64(s.clock.Since(s.start)/(24*time.Hour)))
		})
		section("clients", func() {
			line("connected_clients", s.clients())
		})
		section("memory", func() {
			used, rss := memoryFigures()
			line("used_memory", used)
			line("used_memory_human", human(used))
			line("used_memory_rss", rss)
			line("used_memory_dataset", st.Bytes)
			line("maxmemory", s.cfg.MaxMemory)
			line("maxmemory_human", human(uint64(s.cfg.MaxMemory)))
			line("maxmemory_policy", "noeviction")
		})
		section("persistence", func() {
			line("loading", b2i(!loaded))
			line("aof_enabled", b2i(s.cfg.Fsync != ""))
			line("aof_fsync", cmp.Or(s.cfg.Fsync, "none"))
		})
		section("stats", func() {
			line("total_connections_received", s.connectionsReceived.Load())
			line("total_commands_processed", s.commandsProcessed.Load())
			line("expired_keys", st.Expired)
		})
		section("keyspace", func() {
			if st.Keys > 0 {
				b = fmt.Appendf(b, "db0:keys=%d,expires=%d,avg_ttl=0\r\n", st.Keys, st.KeysWithTTL)
			}
		})
		c.w.Verbatim("txt", string(b))
	})
}

// memoryFigures are the Go heap's live objects' bytes and the memory the
// runtime holds from the OS, for INFO memory.
func memoryFigures() (used, rss uint64) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/total:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		used = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		rss = s[1].Value.Uint64()
	}
	return used, rss
}

func human(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.2fK", float64(n)/(1<<10))
	}
	return strconv.FormatUint(n, 10) + "B"
}
