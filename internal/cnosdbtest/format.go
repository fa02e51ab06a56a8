package cnosdbtest

import (
	"bytes"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// cell is one value of a query result.
type cell struct {
	kind cellKind
	v    any // int64 nanoseconds for cellTime; the Go value otherwise
}

type cellKind uint8

const (
	cellNull cellKind = iota
	cellTime
	cellString
	cellFloat
	cellInt
	cellUint
	cellBool
)

// result is a query answer; a nil *result is a DDL answer with no body.
type result struct {
	columns []string
	rows    [][]cell
}

type resultFormat uint8

const (
	formatCSV resultFormat = iota
	formatTSV
	formatJSON
	formatNDJSON
	formatTable
)

func (f resultFormat) contentType() string {
	switch f {
	case formatTSV:
		return "application/tsv"
	case formatJSON:
		return "application/json"
	case formatNDJSON:
		return "application/nd-json"
	case formatTable:
		return "application/table"
	}
	return "application/csv"
}

// resultFormatFor reads the Accept header as CnosDB does: one media type,
// no parameters or lists; */* and application/* mean CSV; the variant is
// read in any case. 2.4 also takes text/..., and wraps the reason in a
// second "Invalid header: ".
func resultFormatFor(accept string, d Dialect) (resultFormat, *apiError) {
	if accept == "" || accept == "application/*" || accept == "*/*" {
		return formatCSV, nil
	}
	invalid := func(reason string) *apiError {
		if d != V230 {
			reason = "Invalid header: " + reason
		}
		return errInvalidHeader(reason)
	}
	name, ok := strings.CutPrefix(accept, "application/")
	if !ok && d != V230 {
		name, ok = strings.CutPrefix(accept, "text/")
	}
	if !ok {
		return 0, invalid("accept type not support: " + accept)
	}
	switch strings.ToLower(name) {
	case "csv":
		return formatCSV, nil
	case "tsv":
		return formatTSV, nil
	case "json":
		return formatJSON, nil
	case "nd-json":
		return formatNDJSON, nil
	case "table":
		return formatTable, nil
	}
	return 0, invalid("invalid variant: " + name)
}

// render writes a result the way CnosDB's Arrow writers do for the dialect.
func (r *result) render(f resultFormat, d Dialect) []byte {
	if r == nil {
		return nil
	}
	switch f {
	case formatTSV:
		return r.renderSeparated('\t')
	case formatJSON:
		return r.renderJSON(d, true)
	case formatNDJSON:
		return r.renderJSON(d, false)
	case formatTable:
		// 2.3.0 and 2.4.3 leave out the last newline.
		return bytes.TrimSuffix(r.renderTable(), []byte("\n"))
	}
	return r.renderSeparated(',')
}

func (r *result) renderSeparated(sep byte) []byte {
	var b []byte
	for i, c := range r.columns {
		if i > 0 {
			b = append(b, sep)
		}
		b = appendCSVField(b, c, sep)
	}
	b = append(b, '\n')
	for _, row := range r.rows {
		for i, c := range row {
			if i > 0 {
				b = append(b, sep)
			}
			switch c.kind {
			case cellNull:
			case cellString:
				b = appendCSVField(b, c.v.(string), sep)
			default:
				b = appendScalar(b, c, csvTime)
			}
		}
		b = append(b, '\n')
	}
	return b
}

// appendCSVField quotes like the Rust csv crate's "necessary" style.
func appendCSVField(b []byte, s string, sep byte) []byte {
	if strings.IndexByte(s, sep) < 0 && strings.IndexByte(s, '"') < 0 && strings.IndexAny(s, "\r\n") < 0 {
		return append(b, s...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

type timeStyle uint8

const (
	csvTime   timeStyle = iota // %Y-%m-%dT%H:%M:%S.%9f
	debugTime                  // chrono NaiveDateTime Debug: T, fraction only as long as needed
)

func appendScalar(b []byte, c cell, ts timeStyle) []byte {
	switch c.kind {
	case cellTime:
		return appendTime(b, c.v.(int64), ts)
	case cellFloat:
		return appendLexicalFloat(b, c.v.(float64))
	case cellInt:
		return strconv.AppendInt(b, c.v.(int64), 10)
	case cellUint:
		return strconv.AppendUint(b, c.v.(uint64), 10)
	case cellBool:
		return strconv.AppendBool(b, c.v.(bool))
	case cellString:
		return append(b, c.v.(string)...)
	}
	return b
}

func appendTime(b []byte, ns int64, style timeStyle) []byte {
	t := time.Unix(0, ns).UTC()
	switch style {
	case csvTime:
		return t.AppendFormat(b, "2006-01-02T15:04:05.000000000")
	default:
		b = t.AppendFormat(b, "2006-01-02T15:04:05")
	}
	// chrono prints 0, 3, 6 or 9 fraction digits, whichever is exact.
	switch nano := t.Nanosecond(); {
	case nano == 0:
	case nano%1_000_000 == 0:
		b = append(b, '.')
		b = appendPadded(b, int64(nano/1_000_000), 3)
	case nano%1_000 == 0:
		b = append(b, '.')
		b = appendPadded(b, int64(nano/1_000), 6)
	default:
		b = append(b, '.')
		b = appendPadded(b, int64(nano), 9)
	}
	return b
}

func appendPadded(b []byte, v int64, width int) []byte {
	s := strconv.FormatInt(v, 10)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// floatDigits splits |f| into its shortest round-trip digits and the decimal
// exponent of the first digit.
func floatDigits(f float64) (digits string, exp int) {
	s := strconv.FormatFloat(math.Abs(f), 'e', -1, 64) // d.ddde±XX
	e := strings.IndexByte(s, 'e')
	exp, _ = strconv.Atoi(s[e+1:])
	digits = strings.Replace(s[:e], ".", "", 1)
	return digits, exp
}

// appendLexicalFloat writes a float as Arrow's CSV writer does (the
// lexical-core crate): fixed notation for exponents -5..9, otherwise
// scientific, always with a fraction ("1.0", "1.0e10").
func appendLexicalFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "inf"...)
	case math.IsInf(f, -1):
		return append(b, "-inf"...)
	}
	if math.Signbit(f) {
		b = append(b, '-')
	}
	if f == 0 {
		return append(b, "0.0"...)
	}
	digits, exp := floatDigits(f)
	if exp < -5 || exp > 9 {
		b = append(b, digits[0], '.')
		if len(digits) > 1 {
			b = append(b, digits[1:]...)
		} else {
			b = append(b, '0')
		}
		b = append(b, 'e')
		return strconv.AppendInt(b, int64(exp), 10)
	}
	return appendFixed(b, digits, exp)
}

func appendFixed(b []byte, digits string, exp int) []byte {
	if exp < 0 {
		b = append(b, "0."...)
		for i := 0; i < -exp-1; i++ {
			b = append(b, '0')
		}
		return append(b, digits...)
	}
	if len(digits) <= exp+1 {
		b = append(b, digits...)
		for i := len(digits); i <= exp; i++ {
			b = append(b, '0')
		}
		return append(b, ".0"...)
	}
	b = append(b, digits[:exp+1]...)
	b = append(b, '.')
	return append(b, digits[exp+1:]...)
}

// appendRyuFloat writes a finite float as serde_json (ryu) does: fixed
// notation from 1e-5 up to 1e16, otherwise "1e16" / "1.5e-7".
func appendRyuFloat(b []byte, f float64) []byte {
	if math.Signbit(f) {
		b = append(b, '-')
	}
	if f == 0 {
		return append(b, "0.0"...)
	}
	digits, exp := floatDigits(f)
	kk := exp + 1 // position of the decimal point
	switch {
	case kk > 0 && kk <= 16:
		return appendFixed(b, digits, exp)
	case kk > -5 && kk <= 0:
		return appendFixed(b, digits, exp)
	}
	b = append(b, digits[0])
	if len(digits) > 1 {
		b = append(b, '.')
		b = append(b, digits[1:]...)
	}
	b = append(b, 'e')
	return strconv.AppendInt(b, int64(exp), 10)
}

// appendJSONString escapes as serde_json does: quotes, backslashes and
// control characters only; other text stays as it is.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, "\uFFFD"...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
			continue
		}
		switch c {
		case '"':
			b = append(b, `\"`...)
		case '\\':
			b = append(b, `\\`...)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case '\t':
			b = append(b, `\t`...)
		case '\b':
			b = append(b, `\b`...)
		case '\f':
			b = append(b, `\f`...)
		default:
			if c < 0x20 {
				b = append(b, `\u00`...)
				b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
			} else {
				b = append(b, c)
			}
		}
		i++
	}
	return append(b, '"')
}

// renderJSON follows the two Arrow JSON writers CnosDB shipped: 2.3.0 (arrow
// 36) and 2.4 (arrow 42) both sort the keys, write times as
// "2023-01-02T03:04:05.500" (a real 2.3.0 and 2.4.3 seen doing so) and leave
// out nulls.
func (r *result) renderJSON(d Dialect, array bool) []byte {
	order := make([]int, len(r.columns))
	for i := range order {
		order[i] = i
	}
	style := debugTime
	sort.SliceStable(order, func(i, j int) bool { return r.columns[order[i]] < r.columns[order[j]] })
	var b []byte
	if array {
		b = append(b, '[')
	}
	for n, row := range r.rows {
		if array && n > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		first := true
		for _, i := range order {
			c := row[i]
			if c.kind == cellNull {
				continue
			}
			if c.kind == cellFloat {
				f := c.v.(float64)
				if math.IsNaN(f) || math.IsInf(f, 0) {
					if d == V230 {
						continue // serde_json has no number for it: the key is left out
					}
				}
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendJSONString(b, r.columns[i])
			b = append(b, ':')
			b = appendJSONValue(b, c, d, style)
		}
		b = append(b, '}')
		if !array {
			b = append(b, '\n')
		}
	}
	if array {
		b = append(b, ']')
	}
	return b
}

func appendJSONValue(b []byte, c cell, d Dialect, style timeStyle) []byte {
	switch c.kind {
	case cellString:
		return appendJSONString(b, c.v.(string))
	case cellTime:
		b = append(b, '"')
		b = appendTime(b, c.v.(int64), style)
		return append(b, '"')
	case cellFloat:
		f := c.v.(float64)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return append(b, "null"...)
		}
		// Both write floats as serde_json does (2.4.3 seen: 16185542082.0).
		return appendRyuFloat(b, f)
	}
	return appendScalar(b, c, style)
}

// renderTable draws the result as Arrow's pretty printer does.
func (r *result) renderTable() []byte {
	texts := make([][]string, len(r.rows))
	widths := make([]int, len(r.columns))
	for i, c := range r.columns {
		widths[i] = utf8.RuneCountInString(c)
	}
	for n, row := range r.rows {
		texts[n] = make([]string, len(row))
		for i, c := range row {
			s := string(appendScalar(nil, c, debugTime))
			texts[n][i] = s
			if w := utf8.RuneCountInString(s); w > widths[i] {
				widths[i] = w
			}
		}
	}
	var b []byte
	rule := func() {
		b = append(b, '+')
		for _, w := range widths {
			b = append(b, strings.Repeat("-", w+2)...)
			b = append(b, '+')
		}
		b = append(b, '\n')
	}
	line := func(cells []string) {
		b = append(b, '|')
		for i, s := range cells {
			b = append(b, ' ')
			b = append(b, s...)
			b = append(b, strings.Repeat(" ", widths[i]-utf8.RuneCountInString(s)+1)...)
			b = append(b, '|')
		}
		b = append(b, '\n')
	}
	rule()
	line(r.columns)
	rule()
	for _, t := range texts {
		line(t)
	}
	rule()
	return b
}
