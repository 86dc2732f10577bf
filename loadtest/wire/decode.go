package wire

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// DecodeIn decodes a server frame into In. At tens of thousands of frames a
// second, encoding/json's reflection is most of the generator's cost per
// delivery, so the frames the server writes (plain JSON objects, string
// fields without escapes) take a direct path; anything else, escapes
// included, goes through encoding/json, which gives the same answer.
func DecodeIn(raw []byte) (In, error) {
	// json.Valid is a fraction of Unmarshal's cost, and lets the direct
	// path trust the frame's shape.
	if json.Valid(raw) {
		if f, ok := scanIn(raw); ok {
			return f, nil
		}
	}
	var f In
	err := json.Unmarshal(raw, &f)
	return f, err
}

// scanIn is the direct path: ok is false when the frame needs
// encoding/json.
func scanIn(b []byte) (f In, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return In{}, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return f, skipSpace(b, i+1) == len(b)
	}
	for {
		key, next, ok := plainString(b, i)
		if !ok {
			return In{}, false
		}
		i = skipSpace(b, next)
		if i >= len(b) || b[i] != ':' {
			return In{}, false
		}
		i = skipSpace(b, i+1)
		if dst := f.stringField(key); dst != nil {
			s, next, ok := plainString(b, i)
			if !ok {
				return In{}, false
			}
			*dst, i = string(s), next
		} else if dst := f.intField(key); dst != nil {
			end := i
			for end < len(b) && (b[end] == '-' || b[end] >= '0' && b[end] <= '9') {
				end++
			}
			n, err := strconv.ParseInt(string(b[i:end]), 10, 64)
			if err != nil {
				return In{}, false // a float, null or something odd
			}
			*dst, i = n, end
		} else if dst := f.floatField(key); dst != nil {
			end := i
			for end < len(b) && strings.IndexByte("+-.eE0123456789", b[end]) >= 0 {
				end++
			}
			if end == i {
				return In{}, false // null or something odd
			}
			v, err := strconv.ParseFloat(string(b[i:end]), 64)
			if err != nil {
				return In{}, false
			}
			*dst, i = v, end
		} else {
			if foldsToKnown(key) {
				return In{}, false // encoding/json matches keys case-insensitively
			}
			next, ok := skipValue(b, i)
			if !ok {
				return In{}, false
			}
			i = next
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return In{}, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return f, skipSpace(b, i+1) == len(b)
		default:
			return In{}, false
		}
	}
}

func (f *In) stringField(key []byte) *string {
	switch string(key) {
	case "type":
		return &f.Type
	case "room":
		return &f.Room
	case "client_id":
		return &f.ClientID
	case "code":
		return &f.Code
	case "message":
		return &f.Message
	case "ref":
		return &f.Ref
	}
	return nil
}

func (f *In) intField(key []byte) *int64 {
	switch string(key) {
	case "seq":
		return &f.Seq
	case "last_seq":
		return &f.LastSeq
	}
	return nil
}

func (f *In) floatField(key []byte) *float64 {
	if string(key) == "retry_after" {
		return &f.RetryAfter
	}
	return nil
}

var knownKeys = [][]byte{[]byte("retry_after"), []byte("type"), []byte("room"), []byte("client_id"), []byte("code"), []byte("message"), []byte("ref"), []byte("seq"), []byte("last_seq")}

func foldsToKnown(key []byte) bool {
	for _, k := range knownKeys {
		if bytes.EqualFold(key, k) {
			return true
		}
	}
	return false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString reads a string at b[i] that has no escapes and no control
// characters, and returns its contents and the index after it.
func plainString(b []byte, i int) (s []byte, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, 0, false // escapes and non-ASCII: encoding/json's job
		}
	}
	return nil, 0, false
}

// skipValue skips the JSON value at b[i] without decoding it: strings (with
// escapes), and objects and arrays by depth. The frame is known to be
// valid JSON, so numbers and literals are runs of characters up to the
// next comma or closing brace.
func skipValue(b []byte, i int) (int, bool) {
	depth := 0
	for i < len(b) {
		switch c := b[i]; c {
		case '"':
			j := i + 1
			for ; j < len(b) && b[j] != '"'; j++ {
				if b[j] == '\\' {
					j++
				}
			}
			if j >= len(b) {
				return 0, false
			}
			i = j + 1
		case '{', '[':
			depth++
			i++
		case '}', ']':
			if depth == 0 {
				return i, true // the end of the enclosing object
			}
			depth--
			i++
		case ',':
			if depth == 0 {
				return i, true
			}
			i++
		default:
			i++
		}
		if depth == 0 && i < len(b) && (b[i] == ',' || b[i] == '}') {
			return i, true
		}
	}
	return 0, false
}
