package cnosdbtest

import (
	"errors"
	"fmt"
	"math"
	"sort"
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
	var points []point
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
		sort.SliceStable(p.tags, func(i, j int) bool { return p.tags[i].key < p.tags[j].key })
		out := p.tags[:1]
		for _, t := range p.tags[1:] {
			if t.key != out[len(out)-1].key {
				out = append(out, t)
			}
		}
		p.tags = out
	}
	if len(p.fields) > 1 {
		sort.SliceStable(p.fields, func(i, j int) bool { return p.fields[i].key < p.fields[j].key })
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

// parseV230 follows the 2.3.0 parser token by token within each line: names,
// tag keys and values keep their backslashes, string values keep their
// escapes, the measurement is everything up to the first comma after the
// first letter or digit, and a line needs at least one tag.
//
// Unlike 2.3.0 it never lets a token run into the next line (2.3.0 can, for
// example taking the next line's first digits as the timestamp of a line
// that has none); such bodies are garbage there either way.
func parseV230(body string, defaultTime int64) ([]point, error) {
	var points []point
	for len(body) > 0 {
		line := body
		if i := strings.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = ""
		}
		p, ok, err := parseLineV230(line, defaultTime)
		if err != nil {
			return nil, err
		}
		if ok {
			points = append(points, p)
		}
	}
	return points, nil
}

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) }

// startOf finds the first rune for which ok is true.
func startOf(s string, ok func(rune) bool) int {
	for i, r := range s {
		if ok(r) {
			return i
		}
	}
	return -1
}

func parseLineV230(line string, defaultTime int64) (point, bool, error) {
	var p point
	start := startOf(line, func(r rune) bool { return r == '\\' || isAlnum(r) })
	if start < 0 {
		return p, false, nil // nothing that could begin a measurement
	}
	line = line[start:]
	comma := strings.IndexByte(line, ',')
	if comma < 0 {
		return p, false, errV230Syntax // no tag set
	}
	p.measurement = line[:comma]
	rest := line[comma+1:]

	// Tag set: pairs split at unescaped commas, ended by an unescaped space.
	tagStart := startOf(rest, func(r rune) bool { return r == '\\' || isAlnum(r) })
	if tagStart < 0 {
		return p, false, errV230Syntax
	}
	rest = rest[tagStart:]
	escaped := false
	pairStart, eq, end := 0, -1, -1
	for i := 0; i < len(rest) && end < 0; i++ {
		c := rest[i]
		if !escaped && c == '\\' {
			escaped = true
			continue
		}
		if !escaped {
			switch c {
			case '=':
				eq = i
			case ',', ' ':
				if eq < pairStart || eq == pairStart {
					return p, false, errV230Syntax
				}
				p.tags = append(p.tags, tagPair{key: rest[pairStart:eq], value: rest[eq+1 : i]})
				pairStart, eq = i+1, -1
				if c == ' ' {
					end = i
				}
			}
		}
		escaped = false
	}
	if end < 0 {
		return p, false, errV230Syntax // no field set after the tags
	}
	rest = rest[end+1:]

	// Field set: pairs split at commas outside quotes, ended by a space
	// outside quotes. A backslash escapes the next character only for the
	// purpose of quote matching, exactly as 2.3.0 scans it.
	fieldStart := startOf(rest, func(r rune) bool { return r == '\\' || isAlnum(r) })
	if fieldStart < 0 {
		return p, false, errV230Syntax
	}
	rest = rest[fieldStart:]
	escaped, quoted := false, false
	pairStart, eq, end = 0, -1, len(rest)
	pushField := func(i int) error {
		if eq < pairStart {
			return errV230Syntax
		}
		v, err := parseFieldV230(rest[eq+1 : i])
		if err != nil {
			return err
		}
		p.fields = append(p.fields, fieldPair{key: rest[pairStart:eq], value: v})
		pairStart, eq = i+1, -1
		return nil
	}
scan:
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if c == '\\' {
			escaped = true
			continue
		}
		switch {
		case !escaped && c == '"':
			quoted = !quoted
		case quoted:
		case c == '=':
			eq = i
		case c == ',':
			if err := pushField(i); err != nil {
				return p, false, err
			}
		case c == ' ':
			end = i
			break scan
		}
		escaped = false
	}
	if err := pushField(end); err != nil {
		return p, false, err
	}

	p.ts = defaultTime
	if end < len(rest) {
		ts, ok, err := timestampV230(rest[end+1:])
		if err != nil {
			return p, false, err
		}
		if ok {
			p.ts = ts
		}
	}
	sortDedup(&p)
	return p, true, nil
}

// timestampV230 takes the first run of digits (optionally after '-') as the
// timestamp, skipping anything before it as 2.3.0 does.
func timestampV230(s string) (int64, bool, error) {
	begin := startOf(s, func(r rune) bool { return r == '-' || unicode.IsNumber(r) })
	if begin < 0 {
		if strings.TrimSpace(s) != "" {
			return 0, false, errV230Syntax
		}
		return 0, false, nil
	}
	stop := len(s)
	for i, r := range s[begin+1:] {
		if !unicode.IsNumber(r) {
			stop = begin + 1 + i
			break
		}
	}
	if strings.TrimSpace(s[stop:]) != "" {
		// 2.3.0 would start the next line here; treat it as the garbage it is.
		return 0, false, errV230Syntax
	}
	ts, err := strconv.ParseInt(s[begin:stop], 10, 64)
	if err != nil {
		return 0, false, errV230Syntax
	}
	return ts, true, nil
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
