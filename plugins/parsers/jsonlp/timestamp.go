package jsonlp

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

type timeKind uint8

const (
	timeUnix   timeKind = iota // unix, unix_ms, unix_us, unix_ns
	timeUnixTZ                 // timestamp_tz* (v1.37.2): unix, then shifted by the zone offset
	timeLayout                 // a Go layout or one of its names
)

var errUnsupportedType = errors.New("unsupported type")

// compileTimeFormat resolves json_time_format once, the way Telegraf's
// internal.ParseTimestamp resolves it on every call.
func (s *settings) compileTimeFormat() error {
	format := s.cfg.TimeFormat
	switch format {
	case "unix", "unix_ms", "unix_us", "unix_ns":
		s.timeKind = timeUnix
		s.timeFactor = unixFactor(format)
		return nil
	case "timestamp_tz", "timestamp_tz_ms", "timestamp_tz_us", "timestamp_tz_ns":
		if s.location == nil {
			// Telegraf calls Time.In(nil) here and panics.
			return fmt.Errorf("json_time_format %q requires json_timezone", format)
		}
		s.timeKind = timeUnixTZ
		s.timeFactor = unixFactor("unix" + strings.TrimPrefix(format, "timestamp_tz"))
		return nil
	}
	s.timeKind = timeLayout
	switch strings.ToLower(format) {
	case "ansic":
		format = time.ANSIC
	case "unixdate":
		format = time.UnixDate
	case "rubydate":
		format = time.RubyDate
	case "rfc822":
		format = time.RFC822
	case "rfc822z":
		format = time.RFC822Z
	case "rfc850":
		format = time.RFC850
	case "rfc1123":
		format = time.RFC1123
	case "rfc1123z":
		format = time.RFC1123Z
	case "rfc3339":
		format = time.RFC3339
	case "rfc3339nano":
		format = time.RFC3339Nano
	case "stamp":
		format = time.Stamp
	case "stampmilli":
		format = time.StampMilli
	case "stampmicro":
		format = time.StampMicro
	case "stampnano":
		format = time.StampNano
	}
	s.timeLayout = format
	s.layoutHasMST = strings.Contains(format, "MST")
	return nil
}

func unixFactor(format string) int64 {
	switch format {
	case "unix_ms":
		return int64(time.Millisecond)
	case "unix_us":
		return int64(time.Microsecond)
	case "unix_ns":
		return int64(time.Nanosecond)
	}
	return int64(time.Second)
}

// parseTime turns the time key's value into a time as Telegraf's
// internal.ParseTimestamp does, followed by the parser's "year 0" fix.
func (c *Converter) parseTime(doc []byte, l *leaf, now time.Time) (time.Time, error) {
	s := c.s
	var t time.Time
	var err error
	switch s.timeKind {
	case timeUnix, timeUnixTZ:
		t, err = c.parseUnix(doc, l)
		if err != nil {
			return t, err
		}
		if s.timeKind == timeUnixTZ {
			_, offset := t.In(s.location).Zone()
			t = t.Add(-time.Duration(offset) * time.Second)
		}
	default:
		if l.kind != kindString {
			return t, errUnsupportedType
		}
		t, err = parseLayout(s.timeLayout, s.layoutHasMST, string(c.stringValue(doc, l)), s.location)
		if err != nil {
			return t, err
		}
	}
	if t.Year() == 0 {
		t = t.AddDate(now.Year(), 0, 0)
	}
	return t, nil
}

func (c *Converter) parseUnix(doc []byte, l *leaf) (time.Time, error) {
	factor := c.s.timeFactor
	switch l.kind {
	case kindNumber:
		v := c.numberValue(doc, l)
		// Integral seconds (the usual case) need no fraction arithmetic.
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			iv := int64(v)
			if iv <= math.MaxInt64/factor && iv >= math.MinInt64/factor {
				return time.Unix(0, iv*factor).UTC(), nil
			}
		}
		if c.ratNum.SetFloat64(v) == nil {
			return time.Unix(0, 0), errors.New("invalid number")
		}
		return c.timeFromFraction(factor), nil
	case kindString:
		v := sanitizeTimestamp(string(c.stringValue(doc, l)))
		if _, ok := c.ratNum.SetString(v); !ok {
			return time.Unix(0, 0), errors.New("invalid number")
		}
		return c.timeFromFraction(factor), nil
	}
	return time.Unix(0, 0), errUnsupportedType
}

// timeFromFraction scales the exact fraction to nanoseconds and keeps the
// Euclidean quotient, with big.Int.Int64's wrap-around for huge values.
func (c *Converter) timeFromFraction(factor int64) time.Time {
	num := c.ratNum.Num()
	c.bigFac.SetInt64(factor)
	num.Mul(num, &c.bigFac)
	c.bigInt.Div(num, c.ratNum.Denom())
	return time.Unix(0, c.bigInt.Int64()).UTC()
}

// sanitizeTimestamp drops spaces used as thousand separators and makes the
// first comma the decimal point, as Telegraf does with its default separators.
func sanitizeTimestamp(v string) string {
	v = strings.ReplaceAll(v, " ", "")
	if strings.Contains(v, ",") {
		return strings.Replace(v, ",", ".", 1)
	}
	return v
}

func parseLayout(layout string, hasMST bool, v string, location *time.Location) (time.Time, error) {
	loc := location
	if loc == nil {
		loc = time.UTC
	}
	if !hasMST {
		return time.ParseInLocation(layout, v, loc)
	}
	// Go parses an ambiguous zone abbreviation with offset 0; Telegraf then
	// loads the zone by that name and parses again in it.
	ts, err := time.Parse(layout, v)
	if err != nil {
		return time.Time{}, err
	}
	zone, offset := ts.Zone()
	if zone == "UTC" || offset != 0 {
		return ts.In(loc), nil
	}
	abbrevLoc, err := time.LoadLocation(zone)
	if err != nil {
		return time.Time{}, fmt.Errorf("cannot resolve timezone abbreviation %q: %w", zone, err)
	}
	ts, err = time.ParseInLocation(layout, v, abbrevLoc)
	if err != nil {
		return time.Time{}, err
	}
	return ts.In(loc), nil
}

// numberValue returns a number leaf's float64, parsing it on first use.
func (c *Converter) numberValue(doc []byte, l *leaf) float64 {
	if !l.parsed {
		// Canonical numbers were validated by the scanner and cannot fail.
		l.num, _ = strconv.ParseFloat(bytesToString(doc[l.off:l.end]), 64)
		l.parsed = true
	}
	return l.num
}

// nanoDigits writes line timestamps. A stream's timestamps share their
// seconds, so the seconds' digits are kept from the call before and only
// the nine digits of the nanoseconds are written each time; a timestamp
// one nanosecond after the one before (as the Kafka input stamps the
// messages of a burst) is the text before with its last digits counted
// up.
type nanoDigits struct {
	sec    int64
	digits []byte // sec in decimal; empty until the first call
	prev   int64
	text   []byte // prev in decimal, when prev is 1e9 or more
}

func (d *nanoDigits) append(dst []byte, ns int64) []byte {
	if ns < 1e9 {
		return strconv.AppendInt(dst, ns, 10)
	}
	if ns-1 == d.prev && len(d.text) > 0 && countUp(d.text) {
		d.prev = ns
		return append(dst, d.text...)
	}
	start := len(dst)
	sec, frac := ns/1e9, ns%1e9
	if sec != d.sec || len(d.digits) == 0 {
		d.sec, d.digits = sec, strconv.AppendInt(d.digits[:0], sec, 10)
	}
	dst = append(dst, d.digits...)
	var b [9]byte
	for i := 7; i > 0; i -= 2 {
		pair := frac % 100 * 2
		frac /= 100
		b[i], b[i+1] = digitPairs[pair], digitPairs[pair+1]
	}
	b[0] = byte('0' + frac)
	dst = append(dst, b[:]...)
	d.prev, d.text = ns, append(d.text[:0], dst[start:]...)
	return dst
}

// countUp adds one to the decimal number in text, in place; false (text
// left as nines turned zeros) when the number needs another digit.
func countUp(text []byte) bool {
	for i := len(text) - 1; i >= 0; i-- {
		if text[i] < '9' {
			text[i]++
			return true
		}
		text[i] = '0'
	}
	return false
}

// digitPairs holds "00" to "99": two digits per division.
const digitPairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"
