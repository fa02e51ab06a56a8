package cnosdb

import (
	"bytes"
	"hash/maphash"
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// The scanner below splits and validates line protocol in one pass over the
// bytes, without copying or allocating. It accepts exactly what
// line-protocol/v2's Decoder accepts (FuzzScanMatchesDecoder checks this
// against the Decoder itself), and on top of a yes/no it reports where the
// entry ends (a quoted string field may hold a raw newline, so an entry
// does not always end at the first '\n'), whether it has tags (CnosDB 2.3.0
// refuses tagless lines), where its measurement and timestamp are (for the
// precision rewrite), which the Decoder cannot tell without a copy per
// line. It is about 2.4 times as fast as driving the Decoder
// (BenchmarkValidate).

// Byte classes, as in line-protocol/v2.
const (
	clsMeasurement = 1 << iota // may appear unescaped in a measurement
	clsKey                     // may appear unescaped in a tag key, tag value or field key
	clsFieldValue              // may appear in a number or boolean field value
	clsTime                    // may appear in a timestamp
	clsComment                 // may appear in a comment line
)

var byteClass = func() (t [256]uint8) {
	for i := range t {
		c := byte(i)
		printable := c >= 0x20 && c != 0x7f
		if printable && c != ',' && c != ' ' && c != '\\' {
			t[i] |= clsMeasurement
		}
		if printable && c != ',' && c != ' ' && c != '=' && c != '\\' {
			t[i] |= clsKey
		}
		if c != ',' && c != ' ' && c != '\r' && c != '\n' {
			t[i] |= clsFieldValue
		}
		if c == '-' || (c >= '0' && c <= '9') {
			t[i] |= clsTime
		}
		if printable {
			t[i] |= clsComment
		}
	}
	return t
}()

// scanResult says what scanEntry found.
type scanResult uint8

const (
	// scanEntryOK: a valid entry.
	scanEntryOK scanResult = iota
	// scanInvalid: a record that is not valid line protocol.
	scanInvalid
	// scanEnd: only blank lines or comments up to the end of the input.
	scanEnd
	// scanNeedMore: the record goes on past the end of the buffer.
	scanNeedMore
	// scanInvalidOpen: an invalid record that goes on past the end of the
	// buffer; the rest of it, up to the next newline, is to be skipped.
	scanInvalidOpen
)

// entry locates one record inside the scanned buffer. Offsets are absolute
// indexes into that buffer.
type entry struct {
	start   int // first byte of the measurement (leading blanks skipped)
	end     int // just past the record, terminator included
	nameEnd int // end of the (escaped) measurement
	// fieldsStart is the first byte of the first field key.
	fieldsStart int
	// tsStart == tsEnd when the entry has no timestamp.
	tsStart, tsEnd int
	// bodyEnd is where the entry's own bytes stop: before the trailing
	// blanks and the "\n" or "\r\n" terminator.
	bodyEnd int
	tagged  bool
	// reason tells why a record is invalid.
	reason string
	// With wantShape set by the caller, shape is a hash of the entry's
	// measurement and field keys with their kinds (the 2.3.0 type guard
	// skips a line shaped as the one before it); its lowest bit is set
	// when a field is a string, whose raw newlines hide the line's end.
	wantShape bool
	shape     uint64
}

// scanEntry finds the record starting at buf[pos]. Blank lines and comment
// lines before it are skipped. With atEOF false, a record that reaches the
// end of buf is reported as scanNeedMore and e.start tells from where to
// keep the bytes (blank lines already seen are consumed). With atEOF true
// the end of buf ends the input, as the Decoder treats it.
func scanEntry(buf []byte, pos int, atEOF bool, e *entry) scanResult {
	n := len(buf)
	i := pos
	// Blank and comment lines, as the Decoder's skipEmptyLines.
	for {
		consumed := i
		for i < n && buf[i] == ' ' {
			i++
		}
		if i >= n {
			if atEOF {
				e.start, e.end = n, n
				return scanEnd
			}
			e.start = consumed
			return scanNeedMore
		}
		switch buf[i] {
		case '#':
			j := i + 1
			for j < n && byteClass[buf[j]]&clsComment != 0 {
				j++
			}
			if j >= n {
				if atEOF {
					e.start, e.end = n, n
					return scanEnd
				}
				e.start = consumed
				return scanNeedMore
			}
			if buf[j] == '\n' {
				i = j + 1
				continue
			}
			if buf[j] == '\r' {
				if j+1 >= n {
					if atEOF {
						e.start, e.end = n, n
						return scanEnd
					}
					e.start = consumed
					return scanNeedMore
				}
				if buf[j+1] == '\n' {
					i = j + 2
					continue
				}
			}
			// The Decoder rewinds to the start of the line and fails there.
			e.start = consumed
			return invalidFrom(buf, consumed, j, atEOF, e, "invalid character in comment line")
		case '\n':
			i++
			continue
		case '\r':
			if i+1 >= n {
				if atEOF {
					e.start, e.end = n, n
					return scanEnd
				}
				e.start = consumed
				return scanNeedMore
			}
			if buf[i+1] == '\n' {
				i += 2
				continue
			}
		}
		break
	}
	e.start = i
	e.tagged = false
	e.tsStart, e.tsEnd = 0, 0

	// Measurement.
	j, r, high := takeToken(buf, i, atEOF, clsMeasurement, escMeasurement)
	if r != scanEntryOK {
		return r
	}
	if j == i {
		return invalidFrom(buf, i, j, atEOF, e, "no measurement name")
	}
	if utf8Bad(high, buf[i:j]) {
		return invalidFrom(buf, i, j, atEOF, e, "invalid UTF-8 in measurement")
	}
	e.nameEnd = j
	var shape maphash.Hash
	if e.wantShape {
		shape.SetSeed(shapeSeed)
		shape.Write(buf[i:j])
		shape.WriteByte(0)
	}
	stringField := uint64(0)
	if j < n && buf[j] == ',' {
		if j, r = skipTagComma(buf, i, j, atEOF, e); r != scanEntryOK {
			return r
		}
	}

	// Tags.
	for {
		if j >= n {
			if !atEOF {
				return scanNeedMore
			}
			return invalidFrom(buf, i, j, atEOF, e, "no fields")
		}
		if buf[j] == ' ' {
			for j < n && buf[j] == ' ' {
				j++
			}
			e.fieldsStart = j
			break
		}
		k0 := j
		j, r, high = takeToken(buf, j, atEOF, clsKey, escKey)
		if r != scanEntryOK {
			return r
		}
		if j == k0 {
			return invalidFrom(buf, i, j, atEOF, e, "expected tag key or field")
		}
		if j >= n && !atEOF {
			return scanNeedMore
		}
		if j >= n || buf[j] != '=' {
			return invalidFrom(buf, i, j, atEOF, e, "expected '=' after tag key")
		}
		if utf8Bad(high, buf[k0:j]) {
			return invalidFrom(buf, i, j, atEOF, e, "invalid UTF-8 in tag key")
		}
		j++
		v0 := j
		j, r, high = takeToken(buf, j, atEOF, clsKey, escKey)
		if r != scanEntryOK {
			return r
		}
		if j == v0 {
			return invalidFrom(buf, i, j, atEOF, e, "expected tag value")
		}
		if utf8Bad(high, buf[v0:j]) {
			return invalidFrom(buf, i, j, atEOF, e, "invalid UTF-8 in tag value")
		}
		e.tagged = true
		if j >= n {
			if !atEOF {
				return scanNeedMore
			}
			return invalidFrom(buf, i, j, atEOF, e, "no fields")
		}
		if buf[j] == ',' {
			if j, r = skipTagComma(buf, i, j, atEOF, e); r != scanEntryOK {
				return r
			}
		}
	}

	// Fields.
	for {
		k0 := j
		j, r, high = takeToken(buf, j, atEOF, clsKey, escKey)
		if r != scanEntryOK {
			return r
		}
		if j >= n && !atEOF {
			return scanNeedMore
		}
		if j == k0 {
			return invalidFrom(buf, i, j, atEOF, e, "expected field key")
		}
		if j >= n || buf[j] != '=' {
			return invalidFrom(buf, i, j, atEOF, e, "expected '=' after field key")
		}
		if utf8Bad(high, buf[k0:j]) {
			return invalidFrom(buf, i, j, atEOF, e, "invalid UTF-8 in field key")
		}
		if e.wantShape {
			shape.Write(buf[k0:j])
		}
		j++
		if j >= n {
			if !atEOF {
				return scanNeedMore
			}
			return invalidFrom(buf, i, j, atEOF, e, "expected field value")
		}
		var badValue string
		kind := kindFloat
		switch c := buf[j]; {
		case c == '"':
			kind, stringField = kindString, 1
			j++
			v0 := j
			high := byte(0)
			for {
				if j >= n {
					if !atEOF {
						return scanNeedMore
					}
					return invalidFrom(buf, i, j, atEOF, e, "unterminated string field value")
				}
				c := buf[j]
				if c == '"' {
					break
				}
				high |= c
				if c == '\\' {
					if j+1 >= n {
						if !atEOF {
							return scanNeedMore
						}
						j++
						continue
					}
					switch buf[j+1] {
					case '\\', '"', 'n', 'r', 't':
						j += 2
						continue
					}
				}
				j++
			}
			if high >= utf8.RuneSelf && !utf8.Valid(buf[v0:j]) {
				// The Decoder checks the string once it has taken it.
				return invalidFrom(buf, i, j, atEOF, e, "invalid UTF-8 in string field value")
			}
			j++ // closing quote
		case c == 't' || c == 'T' || c == 'f' || c == 'F':
			kind = kindBool
			v0 := j
			for j < n && byteClass[buf[j]]&clsFieldValue != 0 {
				j++
			}
			if j >= n && !atEOF {
				return scanNeedMore
			}
			if !validBool(buf[v0:j]) {
				badValue = "invalid boolean field value"
			}
		case c == '-' || c == '.' || (c >= '0' && c <= '9'):
			if k, ok := plainDecimal(buf, j); ok {
				// What Telegraf writes for a float, valid as it is.
				j = k
				if j >= n && !atEOF {
					return scanNeedMore
				}
				break
			}
			v0 := j
			for j < n && byteClass[buf[j]]&clsFieldValue != 0 {
				j++
			}
			if j >= n && !atEOF {
				return scanNeedMore
			}
			badValue = checkNumber(buf[v0:j])
			kind = kindOfValue(buf[v0:j])
		default:
			return invalidFrom(buf, i, j, atEOF, e, "field value has unrecognized type")
		}
		if e.wantShape {
			shape.WriteByte(byte(kind)) // not printable: no key holds it
		}
		// What follows the value is checked before the value itself, as
		// the Decoder does: it decides where a bad record ends.
		if j >= n {
			if !atEOF {
				return scanNeedMore
			}
			if badValue != "" {
				return invalidEnded(e, n, badValue)
			}
			e.setShape(&shape, stringField)
			e.bodyEnd, e.end = n, n
			return scanEntryOK
		}
		c := buf[j]
		if c == ',' {
			j++
			if badValue != "" {
				return invalidFrom(buf, i, j, atEOF, e, badValue)
			}
			continue
		}
		if c != ' ' && c != '\r' && c != '\n' {
			return invalidFrom(buf, i, j, atEOF, e, "unexpected character after field value")
		}
		bodyEnd := j
		for j < n && buf[j] == ' ' {
			j++
		}
		if end, r := takeEOL(buf, j, atEOF); r == scanNeedMore {
			return scanNeedMore
		} else if r == scanEntryOK {
			if badValue != "" {
				return invalidEnded(e, end, badValue)
			}
			e.setShape(&shape, stringField)
			e.bodyEnd, e.end = bodyEnd, end
			return scanEntryOK
		}
		if badValue != "" {
			return invalidFrom(buf, i, j, atEOF, e, badValue)
		}
		break
	}

	// Timestamp: digits, in one pass when that is all it is.
	t0 := j
	if j < n && buf[j] == '-' {
		j++
	}
	for j < n && buf[j]-'0' <= 9 {
		j++
	}
	plain := j < n && byteClass[buf[j]]&clsTime == 0
	for j < n && byteClass[buf[j]]&clsTime != 0 {
		j++
	}
	if j >= n && !atEOF {
		return scanNeedMore
	}
	t1 := j
	if j < n {
		if c := buf[j]; c != ' ' && c != '\r' && c != '\n' {
			return invalidFrom(buf, i, j, atEOF, e, "invalid timestamp")
		}
		for j < n && buf[j] == ' ' {
			j++
		}
	}
	end, r := takeEOL(buf, j, atEOF)
	switch r {
	case scanNeedMore:
		return scanNeedMore
	case scanInvalid:
		return invalidFrom(buf, i, j, atEOF, e, "unexpected text after timestamp")
	}
	if t1 > t0 && !(plain && plainIntFits(buf[t0:t1])) && !validInt(buf[t0:t1]) {
		return invalidEnded(e, end, "invalid timestamp")
	}
	e.setShape(&shape, stringField)
	e.tsStart, e.tsEnd = t0, t1
	e.bodyEnd, e.end = t1, end
	return scanEntryOK
}

var shapeSeed = maphash.MakeSeed()

func (e *entry) setShape(h *maphash.Hash, stringField uint64) {
	e.shape = 0
	if e.wantShape {
		e.shape = h.Sum64()&^1 | stringField
	}
}

// Escapable characters, per token kind.
const (
	escMeasurement = iota
	escKey
)

// takeToken takes bytes of class cls from buf[j], with backslash escapes
// as the Decoder's takeEsc: a backslash before an escapable character
// takes both, any other backslash stays and the next byte is judged on its
// own.
func takeToken(buf []byte, j int, atEOF bool, cls uint8, esc int) (int, scanResult, byte) {
	n := len(buf)
	high := byte(0) // the bytes taken, or-ed: below utf8.RuneSelf means ASCII
	for j < n {
		c := buf[j]
		if byteClass[c]&cls != 0 {
			high |= c
			j++
			continue
		}
		if c != '\\' {
			return j, scanEntryOK, high
		}
		if j+1 >= n {
			if !atEOF {
				return j, scanNeedMore, high
			}
			return n, scanEntryOK, high
		}
		switch d := buf[j+1]; {
		case d == ' ' || d == ',' || (esc == escKey && d == '='):
			j += 2
		default:
			j++
		}
	}
	if !atEOF {
		return j, scanNeedMore, high
	}
	return j, scanEntryOK, high
}

// takeEOL checks for the end of an entry at buf[j]: the end of the
// input, "\n", "\r\n", or a "\r" that ends the input.
func takeEOL(buf []byte, j int, atEOF bool) (int, scanResult) {
	n := len(buf)
	if j >= n {
		if !atEOF {
			return j, scanNeedMore
		}
		return n, scanEntryOK
	}
	switch buf[j] {
	case '\n':
		return j + 1, scanEntryOK
	case '\r':
		if j+1 >= n {
			if !atEOF {
				return j, scanNeedMore
			}
			return n, scanEntryOK
		}
		if buf[j+1] == '\n' {
			return j + 2, scanEntryOK
		}
	}
	return j, scanInvalid
}

// invalidFrom reports an invalid record that started at start and failed
// at j: like the Decoder, it skips to the next newline.
// skipTagComma steps over the comma at j that must be followed by a tag key;
// a result other than scanEntryOK decides the record.
func skipTagComma(buf []byte, i, j int, atEOF bool, e *entry) (int, scanResult) {
	j++
	if j >= len(buf) {
		if !atEOF {
			return j, scanNeedMore
		}
		return j, invalidFrom(buf, i, j, atEOF, e, "expected tag key after comma")
	}
	if c := buf[j]; c == ' ' || c == '\r' || c == '\n' {
		return j, invalidFrom(buf, i, j, atEOF, e, "expected tag key after comma")
	}
	return j, scanEntryOK
}

func invalidFrom(buf []byte, start, j int, atEOF bool, e *entry, reason string) scanResult {
	n := len(buf)
	if k := bytes.IndexByte(buf[j:], '\n'); k >= 0 {
		j += k
	} else {
		j = n
	}
	if j >= n {
		e.start, e.end, e.reason = start, n, reason
		if !atEOF {
			// Known to be bad already: no need to hold it whole.
			return scanInvalidOpen
		}
		return scanInvalid
	}
	e.start, e.end, e.reason = start, j+1, reason
	return scanInvalid
}

// invalidEnded reports an invalid record whose end is already known.
func invalidEnded(e *entry, end int, reason string) scanResult {
	e.end, e.reason = end, reason
	return scanInvalid
}

// utf8Bad reports whether b, whose bytes or-ed are high, is not UTF-8.
func utf8Bad(high byte, b []byte) bool {
	return high >= utf8.RuneSelf && !utf8.Valid(b)
}

func validBool(b []byte) bool {
	switch string(b) {
	case "t", "T", "true", "True", "TRUE", "f", "F", "false", "False", "FALSE":
		return true
	}
	return false
}

// checkNumber validates a number field value as the Decoder does (Go's
// strconv on the bytes, with an i or u suffix choosing the type) and says
// what is wrong, or "". Plain decimals, what Telegraf writes, are decided
// without strconv.
func checkNumber(b []byte) string {
	switch b[len(b)-1] {
	case 'i':
		if !validInt(b[:len(b)-1]) {
			return "invalid integer field value"
		}
	case 'u':
		v := b[:len(b)-1]
		if len(v) > 0 && len(v) <= 19 && allDigits(v) {
			return ""
		}
		if _, err := strconv.ParseUint(bytesString(v), 10, 64); err != nil {
			return "invalid unsigned integer field value"
		}
	default:
		if !validFloat(b) {
			return "invalid float field value"
		}
	}
	return ""
}

// validInt reports whether b parses as a base-10 int64 without strconv
// for plain digits: up to 18 always fit, and 19 (every nanosecond
// timestamp since 2001) fit when not above the largest int64 (its
// magnitude one more when negative).
func validInt(b []byte) bool {
	d := b
	limit := maxInt64Digits
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
		limit = minInt64Digits
	}
	if len(d) > 0 && allDigits(d) {
		switch {
		case len(d) < len(limit):
			return true
		case len(d) == len(limit) && d[0] != '0':
			return string(d) <= limit
		}
	}
	_, err := strconv.ParseInt(bytesString(b), 10, 64)
	return err == nil
}

// plainDecimal takes a number field value at buf[j] that is digits with at
// most one '.' (and a leading '-'), up to 300 before the point: a float
// that strconv takes and that cannot overflow. false when the value goes
// on (an exponent, a suffix, anything else): it is to be checked in full.
func plainDecimal(buf []byte, j int) (int, bool) {
	n := len(buf)
	if j < n && buf[j] == '-' {
		j++
	}
	start := j
	for j < n && buf[j]-'0' <= 9 {
		j++
	}
	whole := j - start
	digits := whole
	if j < n && buf[j] == '.' {
		j++
		f := j
		for j < n && buf[j]-'0' <= 9 {
			j++
		}
		digits += j - f
	}
	if digits == 0 || whole > 300 || (j < n && byteClass[buf[j]]&clsFieldValue != 0) {
		return j, false
	}
	return j, true
}

// plainIntFits decides, for an optional '-' and digits only, the common
// case of validInt: fewer than 19 digits, or 19 without a leading zero up
// to the largest int64. false: ask validInt.
func plainIntFits(b []byte) bool {
	limit := maxInt64Digits
	if len(b) > 0 && b[0] == '-' {
		b, limit = b[1:], minInt64Digits
	}
	switch {
	case len(b) == 0:
		return false
	case len(b) < len(limit):
		return true
	}
	return len(b) == len(limit) && b[0] != '0' && string(b) <= limit
}

const (
	maxInt64Digits = "9223372036854775807"
	minInt64Digits = "9223372036854775808"
)

func validFloat(b []byte) bool {
	d := b
	if d[0] == '-' {
		d = d[1:]
	}
	digits, intDigits, dots := 0, 0, 0
	simple := true
	for _, c := range d {
		switch {
		case c >= '0' && c <= '9':
			digits++
			if dots == 0 {
				intDigits++
			}
		case c == '.' && dots == 0:
			dots++
		default:
			simple = false
		}
		if !simple {
			break
		}
	}
	// Below 10^300 nothing overflows a float64.
	if simple && digits > 0 && intDigits <= 300 {
		return true
	}
	f, err := strconv.ParseFloat(bytesString(b), 64)
	return err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// bytesString views b as a string for strconv, which keeps no reference.
func bytesString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}
