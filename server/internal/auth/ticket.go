package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
)

// IssueTicket returns a single-use WebSocket ticket for the bearer of c and
// when it expires: after the configured ticket lifetime, or when the session
// does, whichever comes first, so a ticket never outlives its token.
func (s *Service) IssueTicket(ctx context.Context, c Claims) (ticket string, expires time.Time, err error) {
	now := s.now()
	if !now.Before(c.ExpiresAt) {
		return "", time.Time{}, chat.Errorf(ErrUnauthorized, "session expired")
	}
	expires = now.Add(s.ticketTTL).UTC()
	if c.ExpiresAt.Before(expires) {
		expires = c.ExpiresAt
	}
	var secret [32]byte
	rand.Read(secret[:]) // never fails (crypto/rand documents it)
	ticket = base64.RawURLEncoding.EncodeToString(secret[:])
	// Only the hash is stored, so whoever reads the store (a backup, a
	// replica) cannot use the tickets in it.
	err = s.store.SaveTicket(ctx, chat.Ticket{
		Hash:           hashTicket(ticket),
		User:           c.User,
		Session:        c.Session,
		SessionExpires: c.ExpiresAt,
		Expires:        expires,
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("save ticket: %w", err)
	}
	return ticket, expires, nil
}

// RedeemTicket spends a ticket and returns who it was issued to. A ticket
// that is unknown, already spent or expired, or whose session has ended
// since it was issued, is ErrUnauthorized.
func (s *Service) RedeemTicket(ctx context.Context, ticket string) (Claims, error) {
	if ticket == "" {
		return Claims{}, chat.Errorf(ErrUnauthorized, "invalid or expired ticket")
	}
	now := s.now()
	t, err := s.store.TakeTicket(ctx, hashTicket(ticket), now)
	if errors.Is(err, chat.ErrNotFound) {
		return Claims{}, chat.Errorf(ErrUnauthorized, "invalid or expired ticket")
	}
	if err != nil {
		return Claims{}, fmt.Errorf("take ticket: %w", err)
	}
	// The store already refuses expired tickets; checking again keeps the
	// guarantee in the package that makes it, whatever the store does.
	if !now.Before(t.Expires) || !now.Before(t.SessionExpires) {
		return Claims{}, chat.Errorf(ErrUnauthorized, "invalid or expired ticket")
	}
	if err := s.checkSession(ctx, t.Session, t.User.ID); err != nil {
		return Claims{}, err
	}
	return Claims{User: t.User, Session: t.Session, ExpiresAt: t.SessionExpires}, nil
}

func hashTicket(ticket string) string {
	sum := sha256.Sum256([]byte(ticket))
	return hex.EncodeToString(sum[:])
}
