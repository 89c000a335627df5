package redisfront

import (
	"strings"
)

// syntax is each command's arguments after its name, in the notation of
// Redis' documentation: UPPER is a literal token, lower an argument
// ("key" a key), [x] optional, a|b one of them, (a b) a block, x... one
// or more. It makes COMMAND DOCS' arguments, from which redis-cli draws
// its hints as you type.
var syntax = map[string]string{
	"get":         "key",
	"set":         "key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]",
	"setnx":       "key value",
	"setex":       "key seconds value",
	"psetex":      "key milliseconds value",
	"getset":      "key value",
	"getdel":      "key",
	"getex":       "key [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|PERSIST]",
	"mget":        "key...",
	"mset":        "(key value)...",
	"msetnx":      "(key value)...",
	"del":         "key...",
	"unlink":      "key...",
	"exists":      "key...",
	"expire":      "key seconds [NX|XX|GT|LT]",
	"pexpire":     "key milliseconds [NX|XX|GT|LT]",
	"expireat":    "key unix-time-seconds [NX|XX|GT|LT]",
	"pexpireat":   "key unix-time-milliseconds [NX|XX|GT|LT]",
	"ttl":         "key",
	"pttl":        "key",
	"expiretime":  "key",
	"pexpiretime": "key",
	"persist":     "key",
	"incr":        "key",
	"decr":        "key",
	"incrby":      "key increment",
	"decrby":      "key decrement",
	"incrbyfloat": "key increment",
	"append":      "key value",
	"strlen":      "key",
	"getrange":    "key start end",
	"setrange":    "key offset value",
	"type":        "key",
	"dbsize":      "",
	"scan":        "cursor [MATCH pattern] [COUNT count] [TYPE type]",
	"keys":        "pattern",
	"ping":        "[message]",
	"echo":        "message",
	"quit":        "",
	"select":      "index",
	"auth":        "[username] password",
	"hello":       "[protover [AUTH username password] [SETNAME clientname]]",
	"client":      "GETNAME|SETNAME connection-name|ID|LIST|INFO|SETINFO (LIB-NAME libname|LIB-VER libver)",
	"time":        "",
	"command":     "[COUNT|LIST|INFO command-name...|DOCS command-name...]",
	"config":      "GET parameter...",
	"info":        "[section...]",
	"wait":        "numreplicas timeout",
	"multi":       "",
	"exec":        "",
	"discard":     "",
	"watch":       "key...",
	"unwatch":     "",
	"flushdb":     "[ASYNC|SYNC]",
	"flushall":    "[ASYNC|SYNC]",
}

// docArg is one argument of COMMAND DOCS.
type docArg struct {
	name, typ, token   string
	optional, multiple bool
	args               []docArg // of a oneof or a block
}

// integerArgs are the argument names whose type is integer.
var integerArgs = map[string]bool{"seconds": true, "milliseconds": true, "unix-time-seconds": true,
	"unix-time-milliseconds": true, "decrement": true, "start": true, "end": true, "offset": true,
	"cursor": true, "count": true, "index": true, "numreplicas": true, "timeout": true, "protover": true}

// parseSyntax turns a syntax string into COMMAND DOCS arguments.
func parseSyntax(s string) []docArg {
	s = strings.NewReplacer("[", " [ ", "]", " ] ", "(", " ( ", ")", " ) ", "|", " | ").Replace(s)
	p := &syntaxParser{words: strings.Fields(s)}
	items := p.seq()
	if p.peek() == "|" {
		// One of several forms, as CLIENT's subcommands.
		p.i = 0
		return []docArg{p.alts()}
	}
	return items
}

type syntaxParser struct {
	words []string
	i     int
}

func (p *syntaxParser) peek() string {
	if p.i < len(p.words) {
		return p.words[p.i]
	}
	return ""
}

// seq is items up to a closing bracket or a bar.
func (p *syntaxParser) seq() []docArg {
	var out []docArg
	for {
		w := p.peek()
		switch w {
		case "", "]", ")", "|":
			return out
		case "[", "(":
			p.i++
			a := p.alts()
			p.i++ // the closing bracket
			a.optional = w == "["
			if strings.HasPrefix(p.peek(), "...") {
				a.multiple = true
				p.i++
			}
			out = append(out, a)
		default:
			p.i++
			multiple := strings.HasSuffix(w, "...")
			w = strings.TrimSuffix(w, "...")
			a := docArg{name: strings.ToLower(w), typ: argType(w), multiple: multiple}
			if a.typ == "pure-token" {
				a.token = w
				// A token and the argument after it are one argument.
				if n := p.peek(); n != "" && strings.ToLower(n) == n && !strings.ContainsAny(n, "[]()|") {
					p.i++
					a.multiple = strings.HasSuffix(n, "...")
					n = strings.TrimSuffix(n, "...")
					a.name, a.typ = n, argType(n)
				}
			}
			out = append(out, a)
		}
	}
}

// alts is sequences separated by bars: one of them, or a block if one.
func (p *syntaxParser) alts() docArg {
	var alts []docArg
	for {
		items := p.seq()
		if len(items) == 1 {
			alts = append(alts, items[0])
		} else {
			alts = append(alts, docArg{name: blockName(items), typ: "block", args: items})
		}
		if p.peek() != "|" {
			break
		}
		p.i++
	}
	if len(alts) == 1 {
		return alts[0]
	}
	return docArg{name: blockName(alts), typ: "oneof", args: alts}
}

func blockName(items []docArg) string {
	var names []string
	for _, a := range items {
		names = append(names, a.name)
	}
	return strings.Join(names, "-")
}

func argType(w string) string {
	switch {
	case strings.ToUpper(w) == w && strings.ToLower(w) != w:
		return "pure-token"
	case w == "key":
		return "key"
	case w == "pattern":
		return "pattern"
	case integerArgs[w]:
		return "integer"
	case w == "increment":
		return "double"
	}
	return "string"
}

// writeDocArgs writes args as COMMAND DOCS' arguments array.
func (c *conn) writeDocArgs(args []docArg) {
	w := &c.w
	w.Array(len(args))
	for _, a := range args {
		n := 2
		var flags []string
		if a.token != "" {
			n++
		}
		if a.typ == "key" {
			n++
		}
		if a.optional {
			flags = append(flags, "optional")
		}
		if a.multiple {
			flags = append(flags, "multiple")
		}
		if len(flags) > 0 {
			n++
		}
		if len(a.args) > 0 {
			n++
		}
		w.Map(n)
		w.BulkString("name")
		w.BulkString(a.name)
		w.BulkString("type")
		w.BulkString(a.typ)
		if a.typ == "key" {
			w.BulkString("key_spec_index")
			w.Integer(0)
		}
		if a.token != "" {
			w.BulkString("token")
			w.BulkString(a.token)
		}
		if len(flags) > 0 {
			w.BulkString("flags")
			w.Set(len(flags))
			for _, f := range flags {
				w.SimpleString(f)
			}
		}
		if len(a.args) > 0 {
			w.BulkString("arguments")
			c.writeDocArgs(a.args)
		}
	}
}
