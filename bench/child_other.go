//go:build !linux

package main

import "syscall"

// childAttrs is nothing special where the kernel cannot tie a child's
// life to its parent's; the runner measures through /proc, so it runs on
// Linux anyway.
func childAttrs() *syscall.SysProcAttr { return nil }
