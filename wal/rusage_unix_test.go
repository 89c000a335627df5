//go:build unix

package wal_test

import (
	"syscall"
	"time"
)

// sysTime is the kernel CPU time the process has used so far.
func sysTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Stime.Nano())
}
