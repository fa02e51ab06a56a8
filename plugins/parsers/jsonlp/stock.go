package jsonlp

import (
	"bytes"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// This file is the fallback for metrics our own escaping cannot carry: it
// writes the exact bytes Telegraf's influx serializer would have written and
// checks, with a model of Telegraf's influx parser, whether those bytes come
// out of Telegraf's parse-then-serialize unchanged. Only runs for odd input.

// appendStockLine writes the line Telegraf's influx serializer writes for
// the metric (fields in our order); it writes nothing if the serializer
// would skip the metric.
func (c *Converter) appendStockLine(dst, doc, name []byte, ts time.Time) []byte {
	start := len(dst)
	if len(name) == 0 {
		return dst
	}
	dst = appendSerializerEscaped(dst, name, nameEscapes)
	for i := range c.tags {
		t := &c.tags[i]
		k := len(dst)
		dst = append(dst, ',')
		ks := len(dst)
		dst = trimBackslashes(appendSerializerEscaped(dst, c.tagKey(t), keyEscapes), ks)
		if len(dst) == ks {
			dst = dst[:k]
			continue
		}
		dst = append(dst, '=')
		vs := len(dst)
		dst = trimBackslashes(appendSerializerEscaped(dst, c.tagVal(t), keyEscapes), vs)
		if len(dst) == vs {
			dst = dst[:k]
		}
	}
	sep := byte(' ')
	for _, fi := range c.fields {
		l := &c.leaves[fi]
		key := c.leafKey(l)
		if len(key) == 0 {
			continue
		}
		dst = append(dst, sep)
		dst = appendSerializerEscaped(dst, key, keyEscapes)
		dst = append(dst, '=')
		dst = c.appendFieldValue(dst, doc, l)
		sep = ','
	}
	if sep == ' ' {
		return dst[:start]
	}
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, ts.UnixNano(), 10)
	return append(dst, '\n')
}

const (
	nameEscapes = "\t\n\f\r ,"
	keyEscapes  = "\t\n\f\r ,="
)

// appendSerializerEscaped escapes like the serializer's strings.Replacer.
func appendSerializerEscaped(dst, s []byte, escapes string) []byte {
	for _, b := range s {
		if strings.IndexByte(escapes, b) < 0 {
			dst = append(dst, b)
			continue
		}
		switch b {
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\r':
			dst = append(dst, '\\', 'r')
		default:
			dst = append(dst, '\\', b)
		}
	}
	return dst
}

func trimBackslashes(dst []byte, from int) []byte {
	for len(dst) > from && dst[len(dst)-1] == '\\' {
		dst = dst[:len(dst)-1]
	}
	return dst
}

// simMetric is what Telegraf's parser builds from a line.
type simMetric struct {
	name   string
	tags   []simPair // sorted by key, unique
	fields []simPair // in line order, unique
	ts     int64
}

type simPair struct{ key, val string } // val: a serialized field value for fields

// telegrafRoundTrips reports whether Telegraf's influx parser (v1.27.1 and
// v1.37.2 share the same machine) reads line as exactly one metric that its
// influx serializer writes back as the same bytes.
func telegrafRoundTrips(line []byte) bool {
	m, ok := simParse(line)
	if !ok {
		return false
	}
	return bytes.Equal(simSerialize(m), line)
}

func isWS(b byte) bool { return b == ' ' || b == '\t' || b == '\v' || b == '\f' }

func isCtl(b byte) bool { return b == '\t' || b == '\n' || b == '\v' || b == '\f' || b == '\r' }

// simParse follows machine.go.rl: measurement, tagset, ws+, fieldset,
// (ws+ timestamp)?, ws*, newline; it requires the line to be one metric.
func simParse(line []byte) (simMetric, bool) {
	var m simMetric
	n := len(line)
	i := 0
	for i < n && isWS(line[i]) {
		i++
	}
	if i >= n || line[i] == '#' {
		return m, false
	}
	// measurement: '\' pairs with any byte but \t\n\v\f\r
	start := i
	for i < n {
		b := line[i]
		if b == '\\' {
			if i+1 >= n || isCtl(line[i+1]) {
				return m, false
			}
			i += 2
			continue
		}
		if isCtl(b) || b == ' ' || b == ',' {
			break
		}
		i++
	}
	if i == start {
		return m, false
	}
	m.name = simUnescape(line[start:i], "\\,", "\\ ")
	// tagset
	for i < n && line[i] == ',' {
		i++
		k0 := i
		i = simTagToken(line, i)
		if i <= k0 || i >= n || line[i] != '=' {
			return m, false
		}
		key := line[k0:i]
		i++
		v0 := i
		i = simTagToken(line, i)
		if i <= v0 || (i < n && line[i] != ',' && !isWS(line[i])) {
			return m, false
		}
		simAddTag(&m, simKeyUnescape(key), simKeyUnescape(line[v0:i]))
	}
	if i >= n || !isWS(line[i]) {
		return m, false
	}
	for i < n && isWS(line[i]) {
		i++
	}
	// fieldset
	for {
		k0 := i
		for i < n {
			b := line[i]
			if b == '\\' {
				if i+1 >= n || isCtl(line[i+1]) {
					return m, false
				}
				i += 2
				continue
			}
			if isCtl(b) || b == ' ' || b == ',' || b == '=' {
				break
			}
			i++
		}
		if i == k0 || i >= n || line[i] != '=' {
			return m, false
		}
		key := simKeyUnescape(line[k0:i])
		i++
		val, next, ok := simFieldValue(line, i)
		if !ok {
			return m, false
		}
		simAddField(&m, key, val)
		i = next
		if i < n && line[i] == ',' {
			i++
			continue
		}
		break
	}
	// (ws+ timestamp)? ws* newline
	if i < n && isWS(line[i]) {
		for i < n && isWS(line[i]) {
			i++
		}
		t0 := i
		if i < n && line[i] == '-' {
			i++
		}
		d0 := i
		for i < n && i-d0 < 19 && isDigit(line[i]) {
			i++
		}
		if i > d0 {
			ts, err := strconv.ParseInt(string(line[t0:i]), 10, 64)
			if err != nil {
				return m, false
			}
			m.ts = ts
		} else {
			return m, false // no timestamp: the parser would use the clock
		}
		for i < n && isWS(line[i]) {
			i++
		}
	} else {
		return m, false
	}
	if i < n && line[i] == '\r' {
		i++
	}
	return m, i == n-1 && line[i] == '\n'
}

// simTagToken scans a tag key or value: '\' escapes the next byte unless it
// is another '\' (then only the first is consumed).
func simTagToken(line []byte, i int) int {
	n := len(line)
	for i < n {
		b := line[i]
		if b == '\\' {
			if i+1 >= n || isCtl(line[i+1]) {
				return -1
			}
			if line[i+1] == '\\' {
				i++
				continue
			}
			i += 2
			continue
		}
		if isCtl(b) || b == ' ' || b == ',' || b == '=' {
			break
		}
		i++
	}
	return i
}

// simFieldValue scans a field value and returns it as the serializer would
// write the parsed value.
func simFieldValue(line []byte, i int) (string, int, bool) {
	n := len(line)
	if i < n && line[i] == '"' {
		i++
		var b strings.Builder
		for i < n {
			switch c := line[i]; c {
			case '"':
				return string(appendStringField(nil, []byte(b.String()))), i + 1, simValueEnd(line, i+1)
			case '\\':
				if i+1 < n && (line[i+1] == '\\' || line[i+1] == '"') {
					b.WriteByte(line[i+1])
					i += 2
					continue
				}
				return "", 0, false
			default:
				b.WriteByte(c)
				i++
			}
		}
		return "", 0, false
	}
	j := i
	for j < n && line[j] != ',' && !isWS(line[j]) && line[j] != '\r' && line[j] != '\n' {
		j++
	}
	tok := string(line[i:j])
	if !simValueEnd(line, j) || tok == "" {
		return "", 0, false
	}
	switch tok {
	case "true", "TRUE", "True", "T", "t":
		return "true", j, true
	case "false", "FALSE", "False", "F", "f":
		return "false", j, true
	}
	last := tok[len(tok)-1]
	if last == 'i' || last == 'u' {
		digits := tok[:len(tok)-1]
		if !simIntSyntax(digits, last == 'i') {
			return "", 0, false
		}
		if last == 'i' {
			v, err := strconv.ParseInt(digits, 10, 64)
			if err != nil {
				return "", 0, false
			}
			return strconv.FormatInt(v, 10) + "i", j, true
		}
		v, err := strconv.ParseUint(digits, 10, 64)
		if err != nil {
			return "", 0, false
		}
		if v > math.MaxInt64 {
			v = math.MaxInt64
		}
		return strconv.FormatUint(v, 10) + "i", j, true
	}
	if !simFloatSyntax(tok) {
		return "", 0, false
	}
	v, err := strconv.ParseFloat(tok, 64)
	if err != nil {
		return "", 0, false
	}
	return strconv.FormatFloat(v, 'f', -1, 64), j, true
}

func simValueEnd(line []byte, i int) bool {
	return i >= len(line) || line[i] == ',' || isWS(line[i]) || line[i] == '\r' || line[i] == '\n'
}

func allDigits(s string) bool {
	for k := 0; k < len(s); k++ {
		if !isDigit(s[k]) {
			return false
		}
	}
	return s != ""
}

// simIntSyntax: '-'? (digit | [1-9] digit*); no sign for unsigned.
func simIntSyntax(s string, signed bool) bool {
	if signed && strings.HasPrefix(s, "-") {
		s = s[1:]
	}
	return allDigits(s) && (len(s) == 1 || s[0] != '0')
}

// simFloatSyntax: '-'? (digit+ ('.' digit*)? | '.' digit+) ('e'i [+-]? digit+)?
func simFloatSyntax(s string) bool {
	s = strings.TrimPrefix(s, "-")
	mant, exp, hasExp := s, "", false
	if k := strings.IndexAny(s, "eE"); k >= 0 {
		mant, exp, hasExp = s[:k], s[k+1:], true
	}
	if hasExp {
		exp = strings.TrimLeft(exp[:min(1, len(exp))], "+-") + exp[min(1, len(exp)):]
		if !allDigits(exp) {
			return false
		}
	}
	intPart, frac, hasDot := strings.Cut(mant, ".")
	switch {
	case !hasDot:
		return allDigits(intPart)
	case intPart == "":
		return allDigits(frac)
	default:
		return allDigits(intPart) && (frac == "" || allDigits(frac))
	}
}

// simUnescape mirrors the parser's strings.Replacer unescaping, applied
// only when the token holds a raw ' ', ',' (or '=' for keys).
func simUnescape(b []byte, pairs ...string) string {
	s := string(b)
	if !strings.ContainsAny(s, " ,") {
		return s
	}
	args := make([]string, 0, 2*len(pairs))
	for _, p := range pairs {
		args = append(args, p, p[1:])
	}
	return strings.NewReplacer(args...).Replace(s)
}

func simKeyUnescape(b []byte) string {
	s := string(b)
	if !strings.ContainsAny(s, " ,=") {
		return s
	}
	return strings.NewReplacer(`\,`, `,`, `\"`, `"`, `\ `, ` `, `\=`, `=`).Replace(s)
}

func simAddTag(m *simMetric, k, v string) {
	i := sort.Search(len(m.tags), func(i int) bool { return m.tags[i].key >= k })
	if i < len(m.tags) && m.tags[i].key == k {
		m.tags[i].val = v
		return
	}
	m.tags = append(m.tags, simPair{})
	copy(m.tags[i+1:], m.tags[i:])
	m.tags[i] = simPair{k, v}
}

func simAddField(m *simMetric, k, v string) {
	for i := range m.fields {
		if m.fields[i].key == k {
			m.fields[i].val = v
			return
		}
	}
	m.fields = append(m.fields, simPair{k, v})
}

// simSerialize is Telegraf's influx serializer on the parsed metric.
func simSerialize(m simMetric) []byte {
	if m.name == "" {
		return nil
	}
	out := appendSerializerEscaped(nil, []byte(m.name), nameEscapes)
	for _, t := range m.tags {
		k := strings.TrimRight(string(appendSerializerEscaped(nil, []byte(t.key), keyEscapes)), `\`)
		v := strings.TrimRight(string(appendSerializerEscaped(nil, []byte(t.val), keyEscapes)), `\`)
		if k == "" || v == "" {
			continue
		}
		out = append(out, ',')
		out = append(out, k...)
		out = append(out, '=')
		out = append(out, v...)
	}
	sep := byte(' ')
	for _, f := range m.fields {
		if f.key == "" {
			continue
		}
		out = append(out, sep)
		out = appendSerializerEscaped(out, []byte(f.key), keyEscapes)
		out = append(out, '=')
		out = append(out, f.val...)
		sep = ','
	}
	if sep == ' ' {
		return nil
	}
	out = append(out, ' ')
	out = strconv.AppendInt(out, m.ts, 10)
	return append(out, '\n')
}
