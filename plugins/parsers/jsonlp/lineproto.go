package jsonlp

import (
	"bytes"
	"hash/maphash"
)

// Tokens are written so that Telegraf's influx parser (the ragel machine in
// plugins/parsers/influx, identical in v1.27.1 and v1.37.2) reads back a
// string whose serializer escaping equals the escaping of the original. That
// parser has its own rules, which is why lineprotocol.Encoder does not fit:
//
//   - measurement, field keys: '\' pairs with the next byte; the parser then
//     replaces only `\,` and `\ ` (and `\=`, `\"` in keys), and only when the
//     token holds a raw ' ', ',' or '='.
//   - tag keys and values: like field keys, but `\\` consumes one byte, so a
//     run of backslashes always escapes the byte after it.
//   - no token may hold a raw \t, \n, \v, \f or \r, or a '\' before one; a
//     measurement may not start with '#' (a comment line).
//
// The serializer writes \t, \n, \f, \r as the two bytes `\t` etc. and the
// parser keeps those two bytes, so they reach the serializer again unchanged.

type tokClass uint8

const (
	clsName tokClass = iota
	clsTag
	clsField
)

type tokStatus uint8

const (
	tokOK    tokStatus = iota
	tokEmpty           // the serializer skips it
	tokBad             // Telegraf's parser cannot read it back
)

// escByte[cls][b]: 1 = escape with '\', 2 = needs the slow path.
var escByte = func() (t [3][256]uint8) {
	for cls := range t {
		for _, b := range []byte("\t\n\v\f\r\\") {
			t[cls][b] = 2
		}
		t[cls][' '] = 1
		t[cls][','] = 1
		if tokClass(cls) != clsName {
			t[cls]['='] = 1
		}
	}
	return t
}()

// appendToken appends s as a token of class cls. c.lastPlain reports whether
// Telegraf's parser will read back exactly s; otherwise c.pbuf holds what it
// will read.
func (c *Converter) appendToken(dst, s []byte, cls tokClass) ([]byte, tokStatus) {
	c.lastPlain = true
	if len(s) == 0 {
		return dst, tokEmpty
	}
	if cls == clsName && s[0] == '#' {
		return dst, tokBad
	}
	start := len(dst)
	esc := &escByte[cls]
	i := 0
	for i < len(s) {
		j := i
		for j < len(s) && esc[s[j]] == 0 {
			j++
		}
		dst = append(dst, s[i:j]...)
		if j == len(s) {
			break
		}
		if esc[s[j]] == 2 {
			c.lastPlain = false
			return c.appendTokenSlow(dst[:start], s, cls)
		}
		dst = append(dst, '\\', s[j])
		i = j + 1
	}
	return dst, tokOK
}

// appendTokenSlow handles tokens with backslashes or control characters.
func (c *Converter) appendTokenSlow(dst, s []byte, cls tokClass) ([]byte, tokStatus) {
	p := normalize(c.pbuf[:0], s)
	if cls == clsTag {
		// The serializer trims trailing backslashes from tags.
		p = bytes.TrimRight(p, `\`)
	}
	c.pbuf = p
	if len(p) == 0 {
		return dst, tokEmpty
	}
	// The parser unescapes `\"` in keys only when this holds.
	unescapes := cls != clsName && bytes.ContainsAny(p, " ,=")
	run := 0 // backslashes just written
	for _, b := range p {
		switch b {
		case '\v':
			return dst, tokBad
		case '\\':
			run++
			dst = append(dst, b)
			continue
		case ' ', ',', '=':
			if b == '=' && cls == clsName {
				dst = append(dst, b)
				break
			}
			// Outside tags an odd run would pair with our escape's '\'.
			if cls != clsTag && run%2 == 1 {
				return dst, tokBad
			}
			dst = append(dst, '\\', b)
		case '"':
			if unescapes && run > 0 {
				// `\"` would read back as '"'; `\\"` reads back as `\"`.
				dst = append(dst, '\\')
			}
			dst = append(dst, b)
		default:
			dst = append(dst, b)
		}
		run = 0
	}
	if run%2 == 1 {
		// A final '\' would pair with the separator after the token.
		return dst, tokBad
	}
	return dst, tokOK
}

// normalize replaces \t, \n, \f and \r with the two-byte escapes the
// serializer writes for them; that is what Telegraf's parser reads back.
func normalize(dst, s []byte) []byte {
	return appendSerializerEscaped(dst, s, "\t\n\f\r")
}

func hashBytes(c *Converter, b []byte) uint64 { return maphash.Bytes(c.seed, b) }
