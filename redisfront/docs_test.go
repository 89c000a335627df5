package redisfront

import (
	"strings"
	"testing"
)

// hint renders arguments as redis-cli renders COMMAND DOCS into its hints.
func hint(args []docArg, sep string) string {
	var parts []string
	for _, a := range args {
		var s string
		switch a.typ {
		case "oneof":
			s = hint(a.args, "|")
		case "block":
			s = hint(a.args, " ")
		case "pure-token":
			s = a.token
		default:
			s = a.name
			if a.token != "" {
				s = a.token + " " + s
			}
		}
		if a.multiple {
			s = s + " [" + s + " ...]"
		}
		if a.optional {
			s = "[" + s + "]"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, sep)
}

// Every command has its syntax, and the arguments made from it read back
// as Redis' own documentation writes them.
func TestCommandDocs(t *testing.T) {
	for name := range commands {
		if _, ok := syntax[name]; !ok && !strings.Contains(name, "-") {
			t.Errorf("command %q has no syntax entry", name)
		}
	}
	for name, want := range map[string]string{
		"set":    "key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]",
		"mset":   "key value [key value ...]",
		"del":    "key [key ...]",
		"hello":  "[protover [AUTH username password] [SETNAME clientname]]",
		"scan":   "cursor [MATCH pattern] [COUNT count] [TYPE type]",
		"client": "GETNAME|SETNAME connection-name|ID|LIST|INFO|SETINFO LIB-NAME libname|LIB-VER libver",
	} {
		if got := hint(parseSyntax(syntax[name]), " "); got != want {
			t.Errorf("%s: %s\nwant %s", name, got, want)
		}
	}
	args := parseSyntax(syntax["set"])
	if args[0].typ != "key" || args[4].typ != "oneof" || args[4].args[0].token != "EX" || args[4].args[0].typ != "integer" || !args[4].optional {
		t.Errorf("set's arguments: %+v", args)
	}
}
