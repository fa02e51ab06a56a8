package cnosdb

import "bytes"

// Telegraf hands the output runs of lines that differ only in their values
// and timestamps: one measurement, the same tags, the same field keys.
// lineLayout keeps the bytes of the last data line the full scanner
// accepted, up to each field value, so that the next line is checked by
// comparing those bytes and validating only its numbers and timestamp. It
// is learnt only from lines without backslashes or quotes, whose numbers
// are plain decimals or integers and whose timestamp follows a single space
// and ends the line at '\n': there the bytes compared decide every token
// boundary exactly as the full scanner would, so a line that matches is one
// scanEntry accepts, with the same entry. Anything else goes to scanEntry.
type lineLayout struct {
	ok          bool
	prefixes    []byte      // each field's bytes before its value: the first with the measurement and tags
	prefixEnds  []int       // end of each field's prefix in prefixes
	kinds       []fieldKind // kindFloat (a plain decimal) or kindInt
	nameEnd     int         // offsets from the line's start
	fieldsStart int
	tagged      bool
	wantShape   bool // shape below was computed
	shape       uint64
}

// learn records the layout of the valid entry e, when it has one that
// match can replay.
func (l *lineLayout) learn(buf []byte, e *entry) {
	l.ok = false
	if e.tsStart == e.tsEnd || e.end != e.tsEnd+1 || buf[e.tsEnd] != '\n' || buf[e.tsStart-1] != ' ' {
		return
	}
	line := buf[e.start:e.tsEnd]
	if bytes.IndexByte(line, '\\') >= 0 || bytes.IndexByte(line, '"') >= 0 {
		return
	}
	l.prefixes = append(l.prefixes[:0], buf[e.start:e.fieldsStart]...)
	l.prefixEnds = l.prefixEnds[:0]
	l.kinds = l.kinds[:0]
	fields := buf[e.fieldsStart : e.tsStart-1]
	for first := true; ; first = false {
		eq := bytes.IndexByte(fields, '=')
		if eq <= 0 {
			return
		}
		if !first {
			l.prefixes = append(l.prefixes, ',')
		}
		l.prefixes = append(l.prefixes, fields[:eq+1]...)
		l.prefixEnds = append(l.prefixEnds, len(l.prefixes))
		rest := fields[eq+1:]
		end := bytes.IndexByte(rest, ',')
		if end < 0 {
			end = len(rest)
		}
		kind, ok := layoutValue(rest[:end])
		if !ok {
			return
		}
		l.kinds = append(l.kinds, kind)
		if end == len(rest) {
			break
		}
		fields = rest[end+1:]
	}
	l.nameEnd = e.nameEnd - e.start
	l.fieldsStart = e.fieldsStart - e.start
	l.tagged, l.wantShape, l.shape = e.tagged, e.wantShape, e.shape
	l.ok = true
}

// layoutValue says which kind of value v is when match can check it.
func layoutValue(v []byte) (fieldKind, bool) {
	if k, ok := plainDecimal(v, 0); ok && k == len(v) {
		return kindFloat, true
	}
	if k := intDigitsEnd(v, 0); k > 0 && k == len(v)-1 && v[k] == 'i' && validInt(v[:k]) {
		return kindInt, true
	}
	return kindUnknown, false
}

// intDigitsEnd returns the end of an optional '-' and at least one digit at
// buf[j], or 0 when there are no digits.
func intDigitsEnd(buf []byte, j int) int {
	if j < len(buf) && buf[j] == '-' {
		j++
	}
	d := j
	for j < len(buf) && buf[j]-'0' <= 9 {
		j++
	}
	if j == d {
		return 0
	}
	return j
}

// match checks the line at buf[pos] against the layout and fills e as
// scanEntry would; false means the line is to be scanned in full.
func (l *lineLayout) match(buf []byte, pos int, e *entry) bool {
	if !l.ok || l.wantShape != e.wantShape {
		return false
	}
	n := len(buf)
	j := pos
	from := 0
	for k, to := range l.prefixEnds {
		prefix := l.prefixes[from:to]
		from = to
		if !bytes.HasPrefix(buf[j:], prefix) {
			return false
		}
		j += len(prefix)
		if l.kinds[k] == kindFloat {
			v, ok := plainDecimal(buf, j)
			if !ok || v >= n {
				return false
			}
			j = v
		} else {
			v := intDigitsEnd(buf, j)
			if v == 0 || v >= n || buf[v] != 'i' || !validInt(buf[j:v]) {
				return false
			}
			j = v + 1
		}
	}
	if j >= n || buf[j] != ' ' {
		return false
	}
	t0 := j + 1
	t := t0
	for t < n && buf[t]-'0' <= 9 {
		t++
	}
	if t == t0 || t >= n || buf[t] != '\n' || !plainIntFits(buf[t0:t]) {
		return false
	}
	e.start, e.end = pos, t+1
	e.nameEnd, e.fieldsStart = pos+l.nameEnd, pos+l.fieldsStart
	e.tsStart, e.tsEnd, e.bodyEnd = t0, t, t
	e.tagged, e.shape = l.tagged, l.shape
	return true
}
