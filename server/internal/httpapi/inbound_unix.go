//go:build unix

package httpapi

import "syscall"

// rawReads says that inbound reads system sockets with raw reads.
const rawReads = true

func sysRead(fd uintptr, p []byte) (int, error) { return syscall.Read(int(fd), p) }
