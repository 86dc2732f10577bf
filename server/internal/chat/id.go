package chat

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"time"
)

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns a random 26-character identifier whose leading characters
// encode the time in milliseconds, so ids made later sort later (roughly;
// nothing relies on it but people reading logs).
func NewID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	rand.Read(b[6:]) // never fails (crypto/rand documents it)
	return idEncoding.EncodeToString(b[:])
}
