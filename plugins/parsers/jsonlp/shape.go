package jsonlp

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// A topic's messages usually repeat one layout: the same keys in the same
// order, only the values change. docShape remembers the last flat document
// the full path converted and what became of each of its members, so that the
// next document laid out the same way is converted by comparing its keys
// byte for byte and copying its values: no flattening, no duplicate-key
// bookkeeping, no escaping of keys, no tag sorting. The full path stays the
// reference: a shape only replays decisions it made, and anything the shape
// does not cover exactly (another key, a value of another kind, an escape in
// a string field, a number that does not parse) goes to the full path, which
// then learns the new layout.
type docShape struct {
	ok      bool
	members []shapeMember
	keys    []byte // each member's key as written, quotes included
	out     []byte // the line's measurement and tags, then each field's separator, key and '='
	headEnd int    // end of the measurement and tags in out
	name    string // Meta.Name and Meta.Tags the head was written with
	tags    []Tag
}

type shapeMember struct {
	keyEnd int // end of this member's key in docShape.keys
	outEnd int // end of this member's field prefix in docShape.out (fields only)
	act    memberAction
}

// memberAction is what the full path made of a member's value.
type memberAction uint8

const (
	actNumber memberAction = iota // a number: a float field
	actString                     // a string field (json_string_fields)
	actBool                       // a boolean field (json_string_fields)
	actSkip                       // a string, boolean or null left out
)

// appendShaped converts doc (trimmed, starting with '{') if it has the
// learnt shape; ok false means it does not, and dst is unchanged.
func (c *Converter) appendShaped(dst, doc []byte, meta *Meta) (out []byte, ok bool) {
	sh := &c.shape
	if meta.Name != sh.name || !sameTags(meta.Tags, sh.tags) {
		return dst, false
	}
	start := len(dst)
	dst = append(dst, sh.out[:sh.headEnd]...)
	n := len(doc)
	i := 1 // past '{'
	keyOff, outOff := 0, sh.headEnd
	for j := range sh.members {
		m := &sh.members[j]
		i = skipWS(doc, i)
		key := sh.keys[keyOff:m.keyEnd]
		keyOff = m.keyEnd
		if !bytes.HasPrefix(doc[i:], key) {
			return dst[:start], false
		}
		i = skipWS(doc, i+len(key))
		if i >= n || doc[i] != ':' {
			return dst[:start], false
		}
		if i = skipWS(doc, i+1); i >= n {
			return dst[:start], false
		}
		var fieldHead []byte
		if m.act != actSkip {
			fieldHead = sh.out[outOff:m.outEnd]
			outOff = m.outEnd
		}
		b := doc[i]
		switch m.act {
		case actNumber:
			if b != '-' && !isDigit(b) {
				return dst[:start], false
			}
			end, canonical, err := scanNumber(doc, i)
			if err != nil {
				return dst[:start], false
			}
			dst = append(dst, fieldHead...)
			if canonical {
				dst = append(dst, doc[i:end]...)
			} else {
				v, err := strconv.ParseFloat(bytesToString(doc[i:end]), 64)
				if err != nil {
					return dst[:start], false
				}
				dst = strconv.AppendFloat(dst, v, 'f', -1, 64)
			}
			i = end
		case actString:
			if b != '"' {
				return dst[:start], false
			}
			end, esc, high, err := scanString(doc, i+1)
			if err != nil || esc || (high && !utf8.Valid(doc[i+1:end-1])) {
				return dst[:start], false
			}
			// Unescaped JSON string content holds no '"' or '\': the
			// serializer would write it as it is.
			dst = append(dst, fieldHead...)
			dst = append(dst, doc[i:end]...)
			i = end
		case actBool:
			lit := "false"
			if b == 't' {
				lit = "true"
			}
			if !bytes.HasPrefix(doc[i:], []byte(lit)) {
				return dst[:start], false
			}
			dst = append(dst, fieldHead...)
			dst = append(dst, lit...)
			i += len(lit)
		case actSkip:
			switch b {
			case '"':
				end, _, _, err := scanString(doc, i+1)
				if err != nil {
					return dst[:start], false
				}
				i = end
			case 't', 'f', 'n':
				lit := literalAt(b)
				if !bytes.HasPrefix(doc[i:], []byte(lit)) {
					return dst[:start], false
				}
				i += len(lit)
			default:
				return dst[:start], false
			}
		}
		i = skipWS(doc, i)
		want := byte(',')
		if j == len(sh.members)-1 {
			want = '}'
		}
		if i >= n || doc[i] != want {
			return dst[:start], false
		}
		i++
	}
	if skipWS(doc, i) != n {
		return dst[:start], false
	}
	ts := meta.Now
	if !meta.Time.IsZero() {
		ts = meta.Time
	}
	dst = append(dst, ' ')
	dst = c.nanos.append(dst, ts.UnixNano())
	return append(dst, '\n'), true
}

func literalAt(b byte) string {
	switch b {
	case 't':
		return "true"
	case 'f':
		return "false"
	}
	return "null"
}

func sameTags(a, b []Tag) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// learnShape records the layout of doc, which the full path has just turned
// into line, when the shape can replay it: a flat object whose keys are
// plain, unique and non-empty, whose members are fields or left out (none a
// tag, a name or a time), written with our escaping.
func (c *Converter) learnShape(doc, line []byte, meta *Meta) {
	sh := &c.shape
	sh.ok = false
	cfg := &c.s.cfg
	if cfg.Query != "" || cfg.NameKey != "" || cfg.TimeKey != "" || !c.oursWritten || c.nextObjID != 1 {
		return
	}
	sh.members = sh.members[:0]
	sh.keys = sh.keys[:0]
	sh.out = append(sh.out[:0], line[:c.headEnd]...)
	sh.headEnd = c.headEnd
	next := 0 // into c.fields, which lists field leaves in document order
	sep := byte(' ')
	for k := range c.members {
		m := &c.members[k]
		key := doc[m.rawOff:m.rawEnd]
		if !m.plain || m.dead || len(key) == 0 || m.leafEnd-m.leafStart > 1 {
			return
		}
		if c.s.tagFilter != nil && c.s.tagFilter.Match(bytesToString(key)) {
			return
		}
		sh.keys = append(sh.keys, doc[m.rawOff-1:m.rawEnd+1]...)
		sm := shapeMember{keyEnd: len(sh.keys), act: actSkip}
		isField := next < len(c.fields) && m.leafEnd > m.leafStart && c.fields[next] == m.leafStart
		switch {
		case isField:
			next++
			l := &c.leaves[m.leafStart]
			switch l.kind {
			case kindNumber:
				sm.act = actNumber
			case kindString:
				sm.act = actString
			default:
				sm.act = actBool
			}
			sh.out = append(sh.out, sep)
			var st tokStatus
			if sh.out, st = c.appendToken(sh.out, key, clsField); st != tokOK {
				return
			}
			sh.out = append(sh.out, '=')
			sm.outEnd = len(sh.out)
			sep = ','
		case m.leafEnd > m.leafStart && c.leaves[m.leafStart].kind == kindNumber:
			return // a number that is not a field: not a case the shape knows
		case c.s.stringFilter != nil && c.s.stringFilter.Match(bytesToString(key)):
			return // a null whose key would make a string or boolean a field
		}
		sh.members = append(sh.members, sm)
	}
	if next != len(c.fields) || len(sh.members) == 0 {
		return
	}
	sh.name = meta.Name
	sh.tags = append(sh.tags[:0], meta.Tags...)
	sh.ok = true
}
