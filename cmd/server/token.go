package main

import (
	"flag"
	"fmt"
	"io"

	"kvstore/rpc"
)

// runToken is `kvstore-server token new --role ROLE [--name NAME]`: it
// prints a fresh random token, for the client, and the line to add to the
// --auth-file, which holds only the token's hash. Exit 0, or 2 for bad
// usage.
func runToken(args []string, stdout, stderr io.Writer) int {
	usage := func() {
		fmt.Fprint(stderr, "Usage: kvstore-server token new --role read|write|admin [--name NAME]\n")
	}
	if len(args) == 0 || args[0] != "new" {
		usage()
		return 2
	}
	fs := flag.NewFlagSet("token new", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	roleName := fs.String("role", "", "read (Get), write (Get, Set, Delete) or admin (everything)")
	name := fs.String("name", "", "a name for the token, kept in the auth file to tell tokens apart")
	if code, ok := parseSubcommand(fs, args[1:], "token", usage, stderr); !ok {
		return code
	}
	role, err := rpc.ParseRole(*roleName)
	if err != nil {
		fmt.Fprintf(stderr, "kvstore-server token: --role: %v\n", err)
		return 2
	}
	token, line, err := rpc.NewToken(role, *name)
	if err != nil {
		fmt.Fprintf(stderr, "kvstore-server token: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "token: %s\nauth-file line: %s\n", token, line)
	fmt.Fprintln(stderr, "Give the token to the client (--token or KVSTORE_TOKEN) and add the line to the --auth-file; the server never stores the token itself.")
	return 0
}
