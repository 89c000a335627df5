//go:build !unix

package wal_test

import "time"

// sysTime is not measured here.
func sysTime() time.Duration { return 0 }
