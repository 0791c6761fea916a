package ui

import (
	"strconv"
	"unicode/utf8"

	"github.com/hooktrace/hooktrace/decode"
)

// jsonBuf appends JSON to a byte slice. It implements decode.FieldWriter
// so layers write their fields straight into the output line, and tracks
// whether a comma is due before the next member. Values inside a list are
// written with an empty key.
type jsonBuf struct {
	b     []byte
	comma bool
}

func (j *jsonBuf) reset() {
	j.b, j.comma = j.b[:0], false
}

func (j *jsonBuf) key(k string) {
	if j.comma {
		j.b = append(j.b, ',')
	}
	j.comma = true
	if k != "" {
		j.b = append(append(append(j.b, '"'), k...), '"', ':')
	}
}

func (j *jsonBuf) open(c byte) {
	j.b = append(j.b, c)
	j.comma = false
}

func (j *jsonBuf) close(c byte) {
	j.b = append(j.b, c)
	j.comma = true
}

// Str writes a string member.
func (j *jsonBuf) Str(k, v string) {
	j.key(k)
	j.b = appendJSONString(j.b, v)
}

// plain writes a string member known to need no escaping: one of
// hooktrace's own names.
func (j *jsonBuf) plain(k, v string) {
	j.key(k)
	j.b = append(append(append(j.b, '"'), v...), '"')
}

// Text writes packet text as a string member.
func (j *jsonBuf) Text(k string, v []byte) {
	j.key(k)
	j.b = appendJSONString(j.b, v)
}

// Uint writes a number member.
func (j *jsonBuf) Uint(k string, v uint64) {
	j.key(k)
	j.b = decode.AppendUint(j.b, v)
}

// Int writes a signed number member.
func (j *jsonBuf) Int(k string, v int64) {
	j.key(k)
	j.b = strconv.AppendInt(j.b, v, 10)
}

// Hex writes a number as a "0x..." string member.
func (j *jsonBuf) Hex(k string, v uint64) {
	j.key(k)
	j.b = append(j.b, '"')
	j.b = decode.AppendHex(j.b, v)
	j.b = append(j.b, '"')
}

// Bool writes a boolean member.
func (j *jsonBuf) Bool(k string, v bool) {
	j.key(k)
	j.b = strconv.AppendBool(j.b, v)
}

// IP writes an address member.
func (j *jsonBuf) IP(k string, v []byte) {
	j.key(k)
	j.b = append(j.b, '"')
	j.b = decode.AppendIP(j.b, v)
	j.b = append(j.b, '"')
}

// MAC writes a hardware address member.
func (j *jsonBuf) MAC(k string, v []byte) {
	j.key(k)
	j.b = append(j.b, '"')
	j.b = decode.AppendMAC(j.b, v)
	j.b = append(j.b, '"')
}

// BeginList opens an array member.
func (j *jsonBuf) BeginList(k string) {
	j.key(k)
	j.open('[')
}

// EndList closes an array.
func (j *jsonBuf) EndList() { j.close(']') }

// BeginObject opens an object inside a list.
func (j *jsonBuf) BeginObject() {
	j.key("")
	j.open('{')
}

// EndObject closes an object.
func (j *jsonBuf) EndObject() { j.close('}') }

// appendJSONString quotes text, from hooktrace or from a packet; invalid
// UTF-8 becomes U+FFFD so the output is always valid JSON.
func appendJSONString[T ~string | ~[]byte](b []byte, s T) []byte {
	b = append(b, '"')
	// Most text needs no escape: copy the plain prefix in one go.
	i := 0
	for i < len(s) && plainJSON[s[i]] {
		i++
	}
	b = append(b, s[:i]...)
	for i < len(s) {
		c := s[i]
		if c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' {
			b = append(b, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = appendEscape(b, c)
			i++
			continue
		}
		var rb [utf8.UTFMax]byte
		n := copy(rb[:], s[i:])
		r, size := utf8.DecodeRune(rb[:n])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, rb[:size]...)
		}
		i += size
	}
	return append(b, '"')
}

// plainJSON marks the bytes that stand for themselves in a JSON string.
var plainJSON = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return
}()

func appendEscape(b []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(b, '\\', c)
	case '\n':
		return append(b, '\\', 'n')
	case '\r':
		return append(b, '\\', 'r')
	case '\t':
		return append(b, '\\', 't')
	}
	const hex = "0123456789abcdef"
	return append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
}
