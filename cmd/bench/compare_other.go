//go:build !linux

package main

import "os/exec"

// setDeathSignal is a no-op where the kernel cannot kill a child with its
// parent; the children are still stopped at the end of every run.
func setDeathSignal(*exec.Cmd) {}
