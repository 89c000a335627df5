package main

import (
	"os/exec"
	"syscall"
)

// setDeathSignal has the kernel kill cmd when this process dies, so a
// crashed or killed --compare leaves no server behind.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
