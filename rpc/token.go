package rpc

import (
	"fmt"
	"io"
)

// PrintNewToken is `kvstore-server token new`: it makes a fresh random
// token with the named role and prints the token, for the client, and the
// line to add to the --auth-file, which holds only the token's hash, to
// stdout; the advice on what to do with them goes to stderr.
func PrintNewToken(roleName, name string, stdout, stderr io.Writer) error {
	role, err := ParseRole(roleName)
	if err != nil {
		return fmt.Errorf("--role: %w", err)
	}
	token, line, err := NewToken(role, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "token: %s\nauth-file line: %s\n", token, line)
	fmt.Fprintln(stderr, "Give the token to the client (--token or KVSTORE_TOKEN) and add the line to the --auth-file; the server never stores the token itself.")
	return nil
}
