package jsonlp

import (
	"bytes"
	"slices"
	"strconv"
	"unicode/utf8"
)

// A topic's messages usually repeat one layout: the same keys in the same
// order and nesting, only the values change. docShape remembers the last
// document the full path converted as the bytes between its scalar values
// and what became of each value, so that the next document laid out the
// same way is converted by comparing those bytes and copying its values:
// no flattening, no duplicate-key bookkeeping, no escaping of keys, no tag
// sorting. The full path stays the reference: a shape only replays
// decisions it made, and anything the shape does not cover exactly (other
// bytes between values, a value of another kind, an escape in a string
// field, a number that does not parse) goes to the full path, which then
// learns the new layout.
//
// Equal bytes between values mean equal keys, nesting and array indexes,
// so equal flattened keys; a value of the same kind in each place then
// gets the same fate (field, left out) as in the document learnt.
type docShape struct {
	ok      bool
	slots   []shapeSlot
	between []byte // the bytes before each value, then those after the last
	out     []byte // the line's measurement and tags, then each field's separator, key and '='
	headEnd int    // end of the measurement and tags in out
	name    string // Meta.Name and Meta.Tags the head was written with
	tags    []Tag
}

// shapeSlot is one scalar value of the document learnt.
type shapeSlot struct {
	betweenEnd int // end of the bytes before this value in docShape.between
	outEnd     int // end of this value's field prefix in docShape.out (fields only)
	act        slotAction
}

// slotAction is what the full path made of a value.
type slotAction uint8

const (
	actNumber slotAction = iota // a number: a float field
	actString                   // a string field (json_string_fields)
	actBool                     // a boolean field (json_string_fields)
	actSkip                     // a string or boolean left out (a null too)
	actNull                     // a null: nothing, and only a null keeps it so
)

// appendShaped converts doc (trimmed) if it has the learnt shape; ok false
// means it does not, and dst is unchanged.
func (c *Converter) appendShaped(dst, doc []byte, meta *Meta) (out []byte, ok bool) {
	sh := &c.shape
	if meta.Name != sh.name || !slices.Equal(meta.Tags, sh.tags) {
		return dst, false
	}
	start := len(dst)
	dst = append(dst, sh.out[:sh.headEnd]...)
	n := len(doc)
	i, from, outFrom := 0, 0, sh.headEnd
	for k := range sh.slots {
		s := &sh.slots[k]
		before := sh.between[from:s.betweenEnd]
		from = s.betweenEnd
		if !bytes.HasPrefix(doc[i:], before) {
			return dst[:start], false
		}
		if i += len(before); i >= n {
			return dst[:start], false
		}
		var fieldHead []byte
		if s.act <= actBool {
			fieldHead = sh.out[outFrom:s.outEnd]
			outFrom = s.outEnd
		}
		b := doc[i]
		switch s.act {
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
			} else if j, ok := trimFractionZeros(doc[i:end]); ok {
				dst = append(dst, doc[i:i+j]...)
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
			// serializer writes it as it is.
			dst = append(dst, fieldHead...)
			dst = append(dst, doc[i:end]...)
			i = end
		case actBool:
			lit := literalAt(b)
			if b == 'n' || !bytes.HasPrefix(doc[i:], []byte(lit)) {
				return dst[:start], false
			}
			dst = append(dst, fieldHead...)
			dst = append(dst, lit...)
			i += len(lit)
		case actSkip, actNull:
			switch {
			case b == '"' && s.act == actSkip:
				end, _, _, err := scanString(doc, i+1)
				if err != nil {
					return dst[:start], false
				}
				i = end
			case b == 'n' || (s.act == actSkip && (b == 't' || b == 'f')):
				lit := literalAt(b)
				if !bytes.HasPrefix(doc[i:], []byte(lit)) {
					return dst[:start], false
				}
				i += len(lit)
			default:
				return dst[:start], false
			}
		}
	}
	if !bytes.Equal(doc[i:], sh.between[from:]) {
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

// trimFractionZeros returns the length of num (a valid JSON number)
// without the trailing zeros of its fraction, and a '.' left bare, when
// that text is what strconv.AppendFloat writes for the number: "5.0" is
// written "5", "2.50" "2.5". Producers that format a fixed number of
// decimals (Python's json.dumps of 5.0) make one number in ten such.
func trimFractionZeros(num []byte) (int, bool) {
	dot := -1
	for k, b := range num {
		switch b {
		case '.':
			dot = k
		case 'e', 'E':
			return 0, false
		}
	}
	if dot < 0 {
		return 0, false // an integer's zeros are its value's
	}
	j := len(num)
	for j > dot+1 && num[j-1] == '0' {
		j--
	}
	if j == dot+1 {
		j = dot
	}
	end, canonical, err := scanNumber(num[:j], 0)
	return j, err == nil && canonical && end == j
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

// learnShape records the layout of doc (trimmed, one object), which the
// full path has just turned into line, when the shape can replay it: no
// tag, name or time from the document, no key repeated or colliding once
// flattened, no key escaped into a control character, the line written
// with our escaping.
func (c *Converter) learnShape(doc, line []byte, meta *Meta) {
	sh := &c.shape
	sh.ok = false
	cfg := &c.s.cfg
	if cfg.Query != "" || cfg.NameKey != "" || cfg.TimeKey != "" || !c.oursWritten || c.ctlKey {
		return
	}
	for k := range c.members {
		if c.members[k].dead {
			return
		}
	}
	sh.slots = sh.slots[:0]
	sh.between = sh.between[:0]
	sh.out = append(sh.out[:0], line[:c.headEnd]...)
	sh.headEnd = c.headEnd
	leaf, field := 0, 0 // next leaf, next of c.fields (field leaves in document order)
	sep := byte(' ')
	from := 0 // start of the bytes before the next value
	for i := 0; i < len(doc); {
		b := doc[i]
		start, end := i, 0
		switch {
		case b == '"':
			e, _, _, err := scanString(doc, i+1)
			if err != nil {
				return
			}
			if j := skipWS(doc, e); j < len(doc) && doc[j] == ':' {
				i = j + 1 // a key: part of the bytes between values
				continue
			}
			end = e
		case b == '-' || isDigit(b):
			e, _, err := scanNumber(doc, i)
			if err != nil {
				return
			}
			end = e
		case b == 't' || b == 'f' || b == 'n':
			end = i + len(literalAt(b))
		default:
			i++
			continue
		}
		sh.between = append(sh.between, doc[from:start]...)
		slot := shapeSlot{betweenEnd: len(sh.between), act: actNull}
		from, i = end, end
		if b != 'n' {
			if leaf >= len(c.leaves) {
				return
			}
			l := &c.leaves[leaf]
			leaf++
			key := c.leafKey(l)
			if l.dead || (c.s.tagFilter != nil && c.s.tagFilter.Match(bytesToString(key))) {
				return
			}
			if field < len(c.fields) && int(c.fields[field]) == leaf-1 {
				field++
				switch l.kind {
				case kindNumber:
					slot.act = actNumber
				case kindString:
					slot.act = actString
				default:
					slot.act = actBool
				}
				sh.out = append(sh.out, sep)
				var st tokStatus
				if sh.out, st = c.appendToken(sh.out, key, clsField); st != tokOK {
					return
				}
				sh.out = append(sh.out, '=')
				slot.outEnd = len(sh.out)
				sep = ','
			} else {
				if l.kind == kindNumber {
					return // a number that is no field: not a case the shape knows
				}
				slot.act = actSkip
			}
		}
		sh.slots = append(sh.slots, slot)
	}
	if leaf != len(c.leaves) || field != len(c.fields) || field == 0 {
		return
	}
	sh.between = append(sh.between, doc[from:]...)
	sh.name = meta.Name
	sh.tags = append(sh.tags[:0], meta.Tags...)
	sh.ok = true
}
