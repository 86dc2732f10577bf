package httpapi

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
)

// inbound is what a connection has read from its socket and the frame
// reader (clientframes.go) has not taken yet. It holds a buffer only
// while it holds bytes: the buffer comes from a pool shared by every
// connection when a read brings bytes, and goes back as soon as the frame
// reader has taken them all. So an idle connection, waiting for its
// client's next frame, holds no buffer at all, and a frame that arrives
// whole (a chat frame nearly always does) costs one read.
//
// On a system socket the wait is the runtime's: the socket's raw read
// waits until it is readable, and the buffer is taken only then. Any other
// connection is read with Read, and holds its buffer while it waits: the
// tests' in-memory pipes, and the rare socket whose client sent bytes
// before the 101 came, which gorilla hands over behind the bytes net/http
// had read.
type inbound struct {
	nc   net.Conn
	raw  syscall.RawConn // nil when nc is not a system socket
	pool *sync.Pool      // of *inboundBuf
	buf  *inboundBuf     // nil while empty
	r, w int             // buf[r:w] is what is held

	readRaw func(fd uintptr) bool // in.readFD, bound once
	rawErr  error                 // what readFD's read failed with
}

// inboundSize is the buffer's size: a chat frame fits many times over,
// and bigger frames are read in several goes.
const inboundSize = 4 << 10

type inboundBuf [inboundSize]byte

// init readies in, in place, to read nc with buffers from pool.
func (in *inbound) init(nc net.Conn, pool *sync.Pool) {
	*in = inbound{nc: nc, pool: pool}
	if sc, ok := nc.(syscall.Conn); ok && rawReads {
		if raw, err := sc.SyscallConn(); err == nil {
			in.raw = raw
			in.readRaw = in.readFD
		}
	}
}

// readFull fills p from what is held and, when that is not enough, from the
// socket.
func (in *inbound) readFull(p []byte) error {
	for len(p) > 0 {
		if in.r == in.w {
			if err := in.fill(); err != nil {
				return err
			}
		}
		n := copy(p, in.buf[in.r:in.w])
		p = p[n:]
		in.r += n
		if in.r == in.w {
			in.release()
		}
	}
	return nil
}

// fill reads what the socket has, waiting for at least one byte. It is
// called only when nothing is held.
func (in *inbound) fill() error {
	if in.raw == nil {
		in.take()
		n, err := in.nc.Read(in.buf[:])
		in.w = n
		if n > 0 {
			return nil
		}
		in.release()
		if err == nil {
			err = io.ErrNoProgress
		}
		return err
	}
	in.rawErr = nil
	if err := in.raw.Read(in.readRaw); err != nil {
		return err
	}
	return in.rawErr
}

// readFD is the raw read's callback: it reports false, to wait for the
// socket to be readable, when the read would block; the buffer is taken
// for the read and given back if it brought nothing.
func (in *inbound) readFD(fd uintptr) bool {
	in.take()
	for {
		n, err := sysRead(fd, in.buf[:])
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			in.release()
			return false
		case err != nil:
			in.rawErr = err
		case n == 0:
			in.rawErr = io.EOF
		default:
			in.w = n
			return true
		}
		in.release()
		return true
	}
}

func (in *inbound) take() {
	if in.buf == nil {
		in.buf = in.pool.Get().(*inboundBuf)
	}
	in.r, in.w = 0, 0
}

// release gives the buffer back; nothing is held.
func (in *inbound) release() {
	if in.buf != nil {
		in.pool.Put(in.buf)
		in.buf = nil
	}
	in.r, in.w = 0, 0
}
