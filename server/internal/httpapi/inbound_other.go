//go:build !unix

package httpapi

import "errors"

// rawReads is false where a socket is not a file descriptor that read(2)
// reads: inbound then reads every connection with Read.
const rawReads = false

func sysRead(uintptr, []byte) (int, error) { return 0, errors.ErrUnsupported }
