package cnosdbtest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// parseLines turns a write body into points. defaultTime (nanoseconds) is
// given to lines without a timestamp; like CnosDB it is used as is, in
// whatever precision the request names.
func parseLines(d Dialect, body []byte, defaultTime int64) ([]point, error) {
	if d == V230 {
		return parseV230(string(body), defaultTime)
	}
	return parseV24(body, defaultTime)
}

// parseV24 reads the later dialect: standard line protocol with escapes
// removed and tagless lines allowed, which is what lineprotocol decodes,
// once the escapes are ones CnosDB 2.4.3's parser takes.
func parseV24(body []byte, defaultTime int64) ([]point, error) {
	if err := checkEscapes24(body); err != nil {
		return nil, err
	}
	points := make([]point, 0, bytes.Count(body, []byte{'\n'})+1)
	dec := lineprotocol.NewDecoderWithBytes(body)
	for dec.Next() {
		var p point
		m, err := dec.Measurement()
		if err != nil {
			return nil, err
		}
		p.measurement = string(m)
		for {
			k, v, err := dec.NextTag()
			if err != nil {
				return nil, err
			}
			if k == nil {
				break
			}
			p.tags = append(p.tags, tagPair{key: string(k), value: string(v)})
		}
		for {
			k, v, err := dec.NextField()
			if err != nil {
				return nil, err
			}
			if k == nil {
				break
			}
			p.fields = append(p.fields, fieldPair{key: string(k), value: v.Interface()})
		}
		tb, err := dec.TimeBytes()
		if err != nil {
			return nil, err
		}
		p.ts = defaultTime
		if tb != nil {
			ts, err := strconv.ParseInt(string(tb), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("fail to parse timestamp %q", tb)
			}
			p.ts = ts
		}
		sortDedup(&p)
		points = append(points, p)
	}
	return points, nil
}

// sortDedup orders tags and fields by key and keeps the first of duplicate
// keys, as CnosDB's Line::sort_and_dedup does.
func sortDedup(p *point) {
	if len(p.tags) > 1 {
		slices.SortStableFunc(p.tags, func(a, b tagPair) int { return strings.Compare(a.key, b.key) })
		out := p.tags[:1]
		for _, t := range p.tags[1:] {
			if t.key != out[len(out)-1].key {
				out = append(out, t)
			}
		}
		p.tags = out
	}
	if len(p.fields) > 1 {
		slices.SortStableFunc(p.fields, func(a, b fieldPair) int { return strings.Compare(a.key, b.key) })
		out := p.fields[:1]
		for _, f := range p.fields[1:] {
			if f.key != out[len(out)-1].key {
				out = append(out, f)
			}
		}
		p.fields = out
	}
}

var errV230Syntax = errors.New("line protocol parse error")

// parseV230 reads a body the way CnosDB 2.3.0's tokenizer does: over the
// whole body, not line by line, one token after another, each skipping
// what comes before it, so that a malformed line runs into the next one
// instead of failing (a real 2.3.0, compared by the conformance test, does
// exactly that):
//
//   - the measurement starts at the first letter, digit or backslash and
//     runs to the next comma, escaped or not, across newlines: a line
//     without tags takes the next line's text up to its first comma as
//     its name, and the body is stored with a garbage table; only a
//     tagless last line fails (500);
//   - tags start at a letter, digit or backslash and end at an unescaped
//     space; names and values keep their backslashes;
//   - fields end at a space outside quotes or at any newline, even inside
//     a quoted string (so a string holding a newline fails to parse);
//   - the timestamp is the next run of digits (with a '-' first), wherever
//     it is: a line without one takes the next line's first digits.
func parseV230(body string, defaultTime int64) ([]point, error) {
	// Sized once: a benchmark's writes are thousands of lines.
	points := make([]point, 0, strings.Count(body, "\n")+1)
	for pos := 0; pos <= len(body); {
		name, n, ok := measurementV230(body[pos:])
		if !ok {
			break
		}
		p := point{measurement: name}
		if pos += n; pos >= len(body) {
			return nil, errV230Syntax
		}
		if p.tags, n, ok = tagSetV230(body[pos:]); !ok {
			return nil, errV230Syntax
		}
		if pos += n; pos >= len(body) {
			return nil, errV230Syntax
		}
		var err error
		if p.fields, n, err = fieldSetV230(body[pos:]); err != nil {
			return nil, err
		}
		pos += n
		p.ts = defaultTime
		if pos < len(body) {
			if digits, n, ok := timestampV230(body[pos:]); ok {
				if p.ts, err = strconv.ParseInt(digits, 10, 64); err != nil {
					return nil, errV230Syntax
				}
				pos += n
			}
		}
		sortDedup(&p)
		points = append(points, p)
	}
	return points, nil
}

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) }

// measurementV230 returns the measurement and how far past its comma the
// tags begin (len+1 when there is no comma: the body then fails).
func measurementV230(s string) (string, int, bool) {
	begin := -1
	for i, r := range s {
		switch {
		case begin < 0 && (r == '\\' || isAlnum(r)):
			begin = i
		case begin >= 0 && r == ',':
			return s[begin:i], i + 1, true
		}
	}
	if begin < 0 {
		return "", 0, false
	}
	return s[begin:], len(s) + 1, true
}

// tagSetV230 returns the tags and how far past their closing space the
// fields begin.
func tagSetV230(s string) ([]tagPair, int, bool) {
	var tags []tagPair
	escaped, started := false, false
	keyStart, eq, valueStart, end := 0, -1, -1, -1
	pair := func(stop int) bool {
		if eq < keyStart || valueStart < 0 || valueStart > stop {
			return false // 2.3.0 panics on such slices: the request fails
		}
		tags = append(tags, tagPair{key: s[keyStart:eq], value: s[valueStart:stop]})
		return true
	}
	for i, r := range s {
		if !escaped && r == '\\' {
			escaped = true
			if !started {
				started, keyStart = true, i
			}
			continue
		}
		switch {
		case !started:
			if isAlnum(r) {
				started, keyStart = true, i
			}
		case !escaped && r == '=':
			if eq, valueStart = i, i+1; i+1 >= len(s) {
				return nil, 0, false
			}
		case !escaped && r == ',':
			if !pair(i) || i+1 >= len(s) {
				return nil, 0, false
			}
			keyStart = i + 1
		case !escaped && r == ' ':
			end = i
		}
		escaped = false
		if end >= 0 {
			break
		}
	}
	if !started {
		return nil, 0, false
	}
	if end < 0 {
		end = len(s)
		if strings.HasSuffix(s, "\n") {
			end--
		}
	}
	if !pair(end) {
		return nil, 0, false
	}
	return tags, end + 1, true
}

// fieldSetV230 returns the fields and how far past their end the
// timestamp may begin.
func fieldSetV230(s string) ([]fieldPair, int, error) {
	fields := make([]fieldPair, 0, 4) // grown once for most lines, not thrice
	escaped, quoted, started := false, false, false
	keyStart, eq, valueStart, end := 0, -1, -1, -1
	pair := func(stop int) error {
		if eq < keyStart || valueStart < 0 || valueStart > stop {
			return errV230Syntax
		}
		v, err := parseFieldV230(s[valueStart:stop])
		if err != nil {
			return err
		}
		fields = append(fields, fieldPair{key: s[keyStart:eq], value: v})
		return nil
	}
	for i, r := range s {
		if r == '\\' {
			escaped = true
			if !started {
				started, keyStart = true, i
			}
			continue
		}
		if !started {
			if isAlnum(r) {
				started, keyStart = true, i
			}
			escaped = false
			continue
		}
		if !escaped && r == '"' {
			quoted = !quoted
			continue // escaped stays as it was, as in 2.3.0
		}
		switch {
		case !quoted && r == '=':
			if eq, valueStart = i, i+1; i+1 >= len(s) {
				return nil, 0, errV230Syntax
			}
		case !quoted && r == ',':
			if err := pair(i); err != nil {
				return nil, 0, err
			}
			if i+1 >= len(s) {
				return nil, 0, errV230Syntax
			}
			keyStart = i + 1
		case !quoted && r == ' ', r == '\n':
			end = i
		}
		escaped = false
		if end >= 0 {
			break
		}
	}
	if !started {
		return nil, 0, errV230Syntax
	}
	if end < 0 {
		end = len(s)
	}
	if err := pair(end); err != nil {
		return nil, 0, err
	}
	return fields, end + 1, nil
}

// timestampV230 takes the next run of digits (optionally after a '-') as
// the timestamp, skipping whatever comes before it, newlines included.
func timestampV230(s string) (string, int, bool) {
	begin := -1
	for i, r := range s {
		switch {
		case begin >= 0 && !unicode.IsNumber(r):
			return s[begin:i], i + 1, true
		case begin < 0 && (r == '-' || unicode.IsNumber(r)):
			begin = i
		}
	}
	if begin < 0 {
		return "", 0, false
	}
	return s[begin:], len(s) + 1, true
}

// parseFieldValue230 mirrors 2.3.0's parse_field_value, including its
// leniencies: an empty value is the float 1, "trueish" text after "true" is
// ignored, and strings keep their escapes.
func parseFieldV230(s string) (any, error) {
	if s == "" {
		return 1.0, nil
	}
	switch c := s[0]; {
	case c >= '0' && c <= '9':
		return numberV230(s, true)
	case c == '+':
		return numberV230(s[1:], true)
	case c == '-':
		return numberV230(s[1:], false)
	case c == 't' || c == 'T':
		return boolV230(s, "true", true)
	case c == 'f' || c == 'F':
		return boolV230(s, "false", false)
	case c == '"':
		if len(s) < 2 || s[len(s)-1] != '"' {
			return nil, errV230Syntax
		}
		return s[1 : len(s)-1], nil
	}
	return nil, errV230Syntax
}

func boolV230(s, word string, v bool) (any, error) {
	if len(s) == 1 {
		return v, nil
	}
	if len(s) < len(word) || strings.ToLower(s[:len(word)]) != word {
		return nil, errV230Syntax
	}
	return v, nil
}

func numberV230(s string, positive bool) (any, error) {
	if s == "" {
		return nil, errV230Syntax
	}
	body := s[:len(s)-1]
	switch s[len(s)-1] {
	case 'i', 'I':
		v, err := strconv.ParseInt(body, 10, 64)
		if err != nil {
			return nil, errV230Syntax
		}
		if !positive {
			v = -v
		}
		return v, nil
	case 'u', 'U':
		if !positive {
			return nil, errV230Syntax
		}
		// Rust's u64 parser accepts one leading '+'; Go's does not.
		v, err := strconv.ParseUint(strings.TrimPrefix(body, "+"), 10, 64)
		if err != nil {
			return nil, errV230Syntax
		}
		return v, nil
	}
	// Rust's f64 parser knows no hex floats or digit separators.
	if strings.ContainsAny(s, "xX_pP") {
		return nil, errV230Syntax
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, errV230Syntax
	}
	if err != nil && !math.IsInf(v, 0) {
		return nil, errV230Syntax
	}
	if !positive {
		v = -v
	}
	return v, nil
}

// checkEscapes24 refuses what CnosDB 2.4.3's line-protocol parser refuses
// and line-protocol/v2 takes: a backslash before a character it does not
// escape. Its parser walks the body with one state per part of a line and
// takes after a backslash only
//
//	measurement          , space \ " '
//	tag key, tag value,
//	field key            , space = \ " '
//	field value          \ " '  (inside a string or not)
//
// so the \t, \n, \r and \f that Telegraf's serializer writes for those
// characters in names, tags and field keys are errors, "unexpect token 't'
// at N", N the byte's offset in the body.
func checkEscapes24(body []byte) error {
	const (
		lineBegin = iota
		table
		tagKey
		tagValue
		fieldKey
		fieldValue
		timestamp
	)
	state := lineBegin
	var escaped, quoted, comment, skipSpace bool
	allowed := func(c byte) bool {
		switch state {
		case table:
			return c == ',' || c == ' ' || c == '\\' || c == '"' || c == '\''
		case fieldValue:
			return c == '\\' || c == '"' || c == '\''
		}
		return c == ',' || c == ' ' || c == '=' || c == '\\' || c == '"' || c == '\''
	}
	for i, c := range body {
		if escaped {
			if !allowed(c) {
				return fmt.Errorf("unexpect token '%c' at %d", c, i)
			}
			escaped = false
			continue
		}
		switch state {
		case lineBegin:
			switch {
			case comment:
				comment = c != '\r' && c != '\n'
			case c == '#':
				comment = true
			case c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f':
				state = table // this byte is the name's first, taken as it is
			}
			continue
		case table, tagValue, fieldValue:
			if skipSpace {
				if c != ' ' {
					skipSpace = false
					state = map[int]int{table: fieldKey, tagValue: fieldKey, fieldValue: timestamp}[state]
				}
				continue
			}
		case timestamp:
			if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' {
				state = lineBegin
			}
			continue
		}
		switch {
		case c == '\\':
			escaped = true
		case state == fieldValue && c == '"':
			quoted = !quoted
		case quoted:
		case c == ',' && (state == table || state == tagValue):
			state = tagKey
		case c == ',' && state == fieldValue:
			state = fieldKey
		case c == '=' && state == tagKey:
			state = tagValue
		case c == '=' && state == fieldKey:
			state = fieldValue
		case c == ' ' && (state == table || state == tagValue || state == fieldValue):
			skipSpace = true
		case (c == '\r' || c == '\n') && state == fieldValue:
			state = lineBegin
		}
	}
	return nil
}
