//go:build !linux

package server

import "errors"

// exchangeDirs would swap two directories atomically; only Linux has a
// call for it, so elsewhere a restore needs an empty data dir.
func exchangeDirs(a, b string) error {
	return errors.New("this system cannot swap two directories atomically: empty the data dir (or remove it) and restore again")
}
