package main

import "syscall"

// childAttrs makes a child die with the runner, however the runner ends:
// a killed runner must not leave a server holding a core.
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
