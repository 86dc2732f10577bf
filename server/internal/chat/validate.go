package chat

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of the public protocol.
const (
	MaxBodyChars     = 4000
	MaxClientIDChars = 64
	MaxRoomNameChars = 64
	MinUsernameLen   = 3
	MaxUsernameLen   = 32
)

// ValidateUsername accepts 3 to 32 characters of A-Z, a-z, 0-9, '_', '.', '-'.
func ValidateUsername(name string) error {
	if n := len(name); n < MinUsernameLen || n > MaxUsernameLen {
		return Errorf(ErrInvalid, "username must be %d to %d characters", MinUsernameLen, MaxUsernameLen)
	}
	if strings.IndexFunc(name, func(c rune) bool { return !usernameChar(c) }) >= 0 {
		return Errorf(ErrInvalid, "username may hold only letters A-Z, digits, '_', '.' and '-'")
	}
	return nil
}

func usernameChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
}

// ValidateRoomName accepts 1 to 64 characters of valid UTF-8 without control
// characters and not blank. It is the one check of a room name: every path
// that takes one (creation today, a rename tomorrow) calls it.
func ValidateRoomName(name string) error {
	if !utf8.ValidString(name) {
		return Errorf(ErrInvalid, "room name must be valid UTF-8")
	}
	if blank(name) {
		return Errorf(ErrInvalid, "room name must not be blank")
	}
	if utf8.RuneCountInString(name) > MaxRoomNameChars {
		return Errorf(ErrInvalid, "room name must be at most %d characters", MaxRoomNameChars)
	}
	if strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return Errorf(ErrInvalid, "room name must not contain control characters")
	}
	return nil
}

// blank reports whether s shows nothing: it is empty, or every character in
// it is invisible by itself. Such characters stay valid inside visible text
// (a joiner in an emoji sequence, an accent on a letter, a space between
// words); only a name made of nothing else is blank.
func blank(s string) bool {
	return strings.IndexFunc(s, func(c rune) bool { return !invisible(c) }) < 0
}

// invisible reports whether c shows nothing on its own. The classes are
// Unicode's: White_Space (U+00A0, U+2003, U+3000, ...); format characters,
// category Cf (U+200B, U+200D, U+2060, U+FEFF, bidirectional controls,
// tags); Other_Default_Ignorable_Code_Point (Hangul fillers U+115F, U+1160,
// U+3164, U+FFA0, ...); variation selectors; and non-spacing and enclosing
// marks, categories Mn and Me, which draw nothing without a base (spacing
// marks, Mc, take room of their own and do not count). Together these hold
// every Default_Ignorable_Code_Point. U+2800 BRAILLE PATTERN BLANK is added
// by name: it is a symbol, not space, but it renders as an empty cell and is
// the usual way around a rule on white space.
func invisible(c rune) bool {
	return unicode.In(c,
		unicode.White_Space,
		unicode.Cf,
		unicode.Other_Default_Ignorable_Code_Point,
		unicode.Variation_Selector,
		unicode.Mn,
		unicode.Me,
	) || c == '\u2800'
}

// ValidateClientID accepts 1 to 64 characters of valid UTF-8 without NUL.
func ValidateClientID(id string) error {
	if id == "" {
		return Errorf(ErrInvalid, "client_id is required")
	}
	if !utf8.ValidString(id) {
		return Errorf(ErrInvalid, "client_id must be valid UTF-8")
	}
	if strings.IndexByte(id, 0) >= 0 {
		return Errorf(ErrInvalid, "client_id must not contain NUL characters")
	}
	if utf8.RuneCountInString(id) > MaxClientIDChars {
		return Errorf(ErrInvalid, "client_id must be at most %d characters", MaxClientIDChars)
	}
	return nil
}

// ValidateBody accepts 1 to 4000 characters of valid UTF-8 without NUL. A longer body is
// ErrTooLarge rather than ErrInvalid, so HTTP answers it with 413.
func ValidateBody(body string) error {
	if !utf8.ValidString(body) {
		return Errorf(ErrInvalid, "body must be valid UTF-8")
	}
	if body == "" {
		return Errorf(ErrInvalid, "body must not be empty")
	}
	// PostgreSQL text cannot hold NUL, and no chat message needs one.
	if strings.IndexByte(body, 0) >= 0 {
		return Errorf(ErrInvalid, "body must not contain NUL characters")
	}
	if utf8.RuneCountInString(body) > MaxBodyChars {
		return Errorf(ErrTooLarge, "body must be at most %d characters", MaxBodyChars)
	}
	return nil
}
