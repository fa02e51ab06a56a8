package jsonlp

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/tidwall/gjson"
)

var errTimeKeyMissing = errors.New("'json_time_key' could not be found")

type span struct{ off, end int }

type tagRec struct {
	keyOff, keyLen int // raw key in c.tbuf
	valOff, valLen int // raw value in c.tbuf
}

// Append converts one document, appending one line per metric (each ending
// in '\n') to dst. On error dst is returned at its original length: never a
// partial line. Metrics without fields produce no line, as in Telegraf.
func (c *Converter) Append(dst, doc []byte, meta *Meta) (out []byte, lines int, err error) {
	c.dropped = Dropped{}
	c.metric = 0
	orig := len(dst)
	buf := doc
	if q := c.s.cfg.Query; q != "" {
		var res gjson.Result
		if doc != nil {
			res = gjson.Get(bytesToString(doc), q)
		}
		if !res.IsArray() && !res.IsObject() {
			if res.Type == gjson.Null {
				return dst, 0, nil
			}
			return dst, 0, fmt.Errorf("query path must lead to a JSON object, array of objects or null, but lead to: %v", res.Type)
		}
		buf = stringToBytes(res.Raw)
	}
	if !bracketed(buf) {
		buf = bytes.TrimSpace(buf)
		buf = bytes.TrimPrefix(buf, utf8BOM)
	}
	if len(buf) == 0 {
		return dst, 0, nil
	}
	if len(buf) > maxArena {
		return dst, 0, errors.New("document exceeds 2 GiB")
	}
	var m Meta
	if meta != nil {
		m = *meta
	}
	if m.Now.IsZero() {
		m.Now = time.Now()
	}
	out, lines, err = c.convert(dst, buf, &m)
	c.doc = nil // do not keep the caller's message alive
	if err != nil {
		return dst[:orig], 0, err
	}
	return out, lines, nil
}

// bracketed reports whether doc starts with '{' or '[' and ends with '}'
// or ']': nothing to trim, which is nearly every message.
func bracketed(doc []byte) bool {
	if len(doc) < 2 {
		return false
	}
	first, last := doc[0], doc[len(doc)-1]
	return (first == '{' || first == '[') && (last == '}' || last == ']')
}

func (c *Converter) convert(dst, buf []byte, meta *Meta) ([]byte, int, error) {
	i := skipWS(buf, 0)
	if i >= len(buf) {
		return dst, 0, errUnexpected(buf, i, "")
	}
	switch buf[i] {
	case '{':
		if c.shape.ok && i == 0 {
			if out, ok := c.appendShaped(dst, buf, meta); ok {
				c.shapeHits++
				return out, 1, nil
			}
		}
		end, err := c.parseObject(buf, i, 0)
		if err != nil {
			c.shape.ok = false
			return dst, 0, err
		}
		if end = skipWS(buf, end); end < len(buf) {
			c.shape.ok = false
			return dst, 0, errUnexpected(buf, end, "after top-level value")
		}
		out, lines, err := c.emit(dst, buf, meta)
		if err == nil && lines == 1 {
			c.learnShape(buf, out[len(dst):], meta)
		} else {
			c.shape.ok = false
		}
		return out, lines, err
	case '[':
		return c.convertArray(dst, buf, i, meta)
	}
	return dst, 0, topLevelScalarError(buf, i)
}

// topLevelScalarError reports a syntax error if the scalar is not valid JSON,
// and otherwise ErrWrongType; "null" alone is not an error (no metric).
func topLevelScalarError(buf []byte, i int) error {
	var end int
	var err error
	isNull := false
	switch b := buf[i]; {
	case b == '"':
		end, _, _, err = scanString(buf, i+1)
	case b == '-' || isDigit(b):
		end, _, err = scanNumber(buf, i)
		if err == nil {
			if _, perr := strconv.ParseFloat(bytesToString(buf[i:end]), 64); perr != nil {
				return fmt.Errorf("json: cannot unmarshal number %s into a float64", buf[i:end])
			}
		}
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if bytes.HasPrefix(buf[i:], []byte(lit)) {
				end, isNull = i+len(lit), lit == "null"
				break
			}
		}
		if end == 0 {
			return errUnexpected(buf, i, "looking for beginning of value")
		}
	}
	if err != nil {
		return err
	}
	if end = skipWS(buf, end); end < len(buf) {
		return errUnexpected(buf, end, "after top-level value")
	}
	if isNull {
		return nil
	}
	return ErrWrongType
}

func (c *Converter) convertArray(dst, buf []byte, i int, meta *Meta) ([]byte, int, error) {
	n := len(buf)
	lines := 0
	i = skipWS(buf, i+1)
	if i < n && buf[i] == ']' {
		i++
	} else {
		for {
			if i >= n {
				return dst, 0, errUnexpected(buf, i, "")
			}
			if buf[i] != '{' {
				if err := c.validateElement(buf, i); err != nil {
					return dst, 0, err
				}
				return dst, 0, ErrWrongType
			}
			end, err := c.parseObject(buf, i, 1)
			if err != nil {
				return dst, 0, err
			}
			var k int
			dst, k, err = c.emit(dst, buf, meta)
			if err != nil && c.s.cfg.Strict {
				return dst, 0, err
			}
			lines += k
			i = skipWS(buf, end)
			if i < n && buf[i] == ',' {
				i = skipWS(buf, i+1)
				continue
			}
			if i < n && buf[i] == ']' {
				i++
				break
			}
			return dst, 0, errUnexpected(buf, i, "after array element")
		}
	}
	if i = skipWS(buf, i); i < n {
		return dst, 0, errUnexpected(buf, i, "after top-level value")
	}
	return dst, lines, nil
}

// validateElement reports a syntax error in a non-object array element; the
// element is an error anyway, this only picks the more telling message.
func (c *Converter) validateElement(buf []byte, i int) error {
	switch b := buf[i]; {
	case b == '[', b == '"', b == '-', isDigit(b), b == 't', b == 'f', b == 'n':
		return nil
	}
	return errUnexpected(buf, i, "looking for beginning of value")
}

// emit writes the line for the metric whose leaves were just parsed. A
// metric error (time key) writes nothing and returns the error.
func (c *Converter) emit(dst, doc []byte, meta *Meta) ([]byte, int, error) {
	s := c.s
	cfg := &s.cfg
	if c.mayCollide {
		c.dedupeLeaves()
	}

	nameLeaf, timeLeaf := -1, -1
	if cfg.NameKey != "" || cfg.TimeKey != "" {
		for i := range c.leaves {
			l := &c.leaves[i]
			if l.dead {
				continue
			}
			key := bytesToString(c.leafKey(l))
			if l.kind == kindString && cfg.NameKey != "" && key == cfg.NameKey {
				nameLeaf = i
			}
			if cfg.TimeKey != "" && key == cfg.TimeKey {
				timeLeaf = i
			}
		}
	}
	ts := meta.Now
	if cfg.TimeKey != "" {
		if timeLeaf < 0 {
			return dst, 0, errTimeKeyMissing
		}
		t, err := c.parseTime(doc, &c.leaves[timeLeaf], meta.Now)
		if err != nil {
			return dst, 0, err
		}
		ts = t
	}
	if !meta.Time.IsZero() {
		ts = meta.Time
	}

	// Sort leaves into tags and fields the way switchFieldToTag does.
	c.tags = c.tags[:0]
	c.fields = c.fields[:0]
	c.tbuf = c.tbuf[:0]
	for i := range c.leaves {
		l := &c.leaves[i]
		if l.dead || i == timeLeaf {
			continue
		}
		key := c.leafKey(l)
		if s.tagFilter != nil && s.tagFilter.Match(bytesToString(key)) {
			t := tagRec{keyOff: len(c.tbuf), keyLen: len(key)}
			c.tbuf = append(c.tbuf, key...)
			t.valOff = len(c.tbuf)
			c.tbuf = c.appendTagValue(c.tbuf, doc, l)
			t.valLen = len(c.tbuf) - t.valOff
			c.tags = append(c.tags, t)
			continue
		}
		if l.kind != kindNumber && (s.stringFilter == nil || !s.stringFilter.Match(bytesToString(key))) {
			continue
		}
		c.fields = append(c.fields, int32(i))
	}
	for _, mt := range meta.Tags {
		c.setTag(mt.Key, mt.Value)
	}
	c.sortTags()

	var name []byte
	switch {
	case meta.Name != "":
		name = stringToBytes(meta.Name)
	case nameLeaf >= 0:
		off := len(c.tbuf)
		c.tbuf = append(c.tbuf, c.stringValue(doc, &c.leaves[nameLeaf])...)
		name = c.tbuf[off:]
	default:
		name = stringToBytes(cfg.MetricName)
	}
	dst, lines, err := c.writeLine(dst, doc, name, ts)
	c.metric++ // counts the metrics Telegraf's parser would have returned
	return dst, lines, err
}

// appendTagValue stringifies a leaf the way switchFieldToTag does.
func (c *Converter) appendTagValue(dst, doc []byte, l *leaf) []byte {
	switch l.kind {
	case kindNumber:
		return appendNumber(dst, doc, l)
	case kindTrue:
		return append(dst, "true"...)
	case kindFalse:
		return append(dst, "false"...)
	}
	return append(dst, c.stringValue(doc, l)...)
}

func appendNumber(dst, doc []byte, l *leaf) []byte {
	if l.canonical {
		return append(dst, doc[l.off:l.end]...)
	}
	return strconv.AppendFloat(dst, l.num, 'f', -1, 64)
}

func (c *Converter) tagKey(t *tagRec) []byte { return c.tbuf[t.keyOff : t.keyOff+t.keyLen] }
func (c *Converter) tagVal(t *tagRec) []byte { return c.tbuf[t.valOff : t.valOff+t.valLen] }

// setTag adds or replaces a tag like telegraf.Metric.AddTag.
func (c *Converter) setTag(key, value string) {
	valOff := len(c.tbuf)
	c.tbuf = append(c.tbuf, value...)
	for i := range c.tags {
		if bytesToString(c.tagKey(&c.tags[i])) == key {
			c.tags[i].valOff, c.tags[i].valLen = valOff, len(value)
			return
		}
	}
	keyOff := len(c.tbuf)
	c.tbuf = append(c.tbuf, key...)
	c.tags = append(c.tags, tagRec{keyOff: keyOff, keyLen: len(key), valOff: valOff, valLen: len(value)})
}

// sortTags orders tags by raw key, the order Telegraf's metric keeps them in.
func (c *Converter) sortTags() {
	tags := c.tags
	if len(tags) <= 12 {
		for i := 1; i < len(tags); i++ {
			for j := i; j > 0 && bytes.Compare(c.tagKey(&tags[j]), c.tagKey(&tags[j-1])) < 0; j-- {
				tags[j], tags[j-1] = tags[j-1], tags[j]
			}
		}
		return
	}
	slices.SortFunc(tags, func(a, b tagRec) int { return bytes.Compare(c.tagKey(&a), c.tagKey(&b)) })
}

func (c *Converter) dropMetric() {
	c.dropped.Metrics++
	if c.onDrop != nil {
		c.onDrop(c.metric, nil)
	}
}

func (c *Converter) dropField(key []byte) {
	c.dropped.Fields++
	if c.onDrop != nil {
		c.onDrop(c.metric, key)
	}
}

// writeLine appends the metric's line: measurement, tags in key order, the
// fields, the timestamp in nanoseconds. It writes nothing when the influx
// serializer would have skipped the metric (empty name, no fields). When our
// escaping cannot carry part of the metric through Telegraf's parser, it
// writes the serializer's own bytes if those survive Telegraf's round trip,
// and otherwise leaves out the field or metric (counted in Dropped).
func (c *Converter) writeLine(dst, doc, name []byte, ts time.Time) ([]byte, int, error) {
	start := len(dst)
	c.badFields = c.badFields[:0]
	dst, lines, badMetric := c.writeOurs(dst, doc, name, ts)
	if c.oursWritten = !badMetric && len(c.badFields) == 0; c.oursWritten {
		return dst, lines, nil
	}
	// Fields in key order: one of the orders stock Telegraf writes.
	slices.SortFunc(c.fields, func(a, b int32) int {
		return bytes.Compare(c.leafKey(&c.leaves[a]), c.leafKey(&c.leaves[b]))
	})
	c.stock = c.appendStockLine(c.stock[:0], doc, name, ts)
	if len(c.stock) > 0 && telegrafRoundTrips(c.stock) {
		if c.onStock != nil {
			c.onStock(c.metric)
		}
		return append(dst[:start], c.stock...), 1, nil
	}
	if badMetric {
		if len(c.stock) > 0 {
			c.dropMetric()
		}
		return dst[:start], 0, nil
	}
	for _, fi := range c.badFields {
		c.dropField(c.leafKey(&c.leaves[fi]))
	}
	return dst, lines, nil
}

// writeOurs writes the line with our escaping. badMetric reports a name or
// tag Telegraf's parser cannot read back as written (nothing is written);
// fields it cannot carry are left out and listed in c.badFields.
func (c *Converter) writeOurs(dst, doc, name []byte, ts time.Time) ([]byte, int, bool) {
	start := len(dst)
	var st tokStatus
	dst, st = c.appendToken(dst, name, clsName)
	if st == tokEmpty {
		return dst[:start], 0, false
	}
	ok := st == tokOK
	if ok {
		dst, ok = c.appendTags(dst)
	}
	if !ok {
		return dst[:start], 0, true
	}
	c.headEnd = len(dst) - start

	if c.fieldKeysNeedDedupe() {
		c.dedupeFieldKeys()
	}
	sep := byte(' ')
	nfields := 0
	for _, fi := range c.fields {
		l := &c.leaves[fi]
		if l.dead {
			continue // merged with another key by dedupeFieldKeys
		}
		key := c.leafKey(l)
		before := len(dst)
		dst = append(dst, sep)
		dst, st = c.appendToken(dst, key, clsField)
		if st != tokOK {
			dst = dst[:before]
			if st == tokBad {
				c.badFields = append(c.badFields, fi)
			}
			continue
		}
		dst = append(dst, '=')
		dst = c.appendFieldValue(dst, doc, l)
		sep = ','
		nfields++
	}
	if nfields == 0 {
		return dst[:start], 0, false
	}
	dst = append(dst, ' ')
	dst = c.nanos.append(dst, ts.UnixNano())
	dst = append(dst, '\n')
	return dst, 1, false
}

// appendTags writes the tags (already in Telegraf's order) and reports false
// if Telegraf's parser cannot read them back as the serializer wrote them.
func (c *Converter) appendTags(dst []byte) ([]byte, bool) {
	prevPlain := true
	var prevKey []byte
	for i := range c.tags {
		t := &c.tags[i]
		before := len(dst)
		dst = append(dst, ',')
		var kst, vst tokStatus
		dst, kst = c.appendToken(dst, c.tagKey(t), clsTag)
		keyPlain := c.lastPlain
		if kst == tokOK {
			// Keep the key as Telegraf's parser will read it, for the order check.
			if keyPlain {
				c.curKey = c.tagKey(t)
			} else {
				c.curBuf = append(c.curBuf[:0], c.pbuf...)
				c.curKey = c.curBuf
			}
		}
		dst = append(dst, '=')
		dst, vst = c.appendToken(dst, c.tagVal(t), clsTag)
		if kst == tokBad || vst == tokBad {
			return dst, false
		}
		if kst == tokEmpty || vst == tokEmpty {
			dst = dst[:before] // the serializer skips such tags
			continue
		}
		// Telegraf's parser re-sorts tags by the key it reads; if that
		// reorders (or merges) them, the serializer's bytes cannot match.
		if (!keyPlain || !prevPlain) && prevKey != nil && bytes.Compare(prevKey, c.curKey) >= 0 {
			return dst, false
		}
		if keyPlain {
			prevKey = c.curKey
		} else {
			c.prevKey = append(c.prevKey[:0], c.curKey...)
			prevKey = c.prevKey
		}
		prevPlain = keyPlain
	}
	return dst, true
}

// appendStringField writes a quoted string field value, escaping '"' and '\'
// as the serializer does; newlines stay raw, which Telegraf's parser accepts.
func appendStringField(dst, v []byte) []byte {
	dst = append(dst, '"')
	for {
		k := bytes.IndexAny(v, "\"\\")
		if k < 0 {
			break
		}
		dst = append(dst, v[:k]...)
		dst = append(dst, '\\', v[k])
		v = v[k+1:]
	}
	dst = append(dst, v...)
	return append(dst, '"')
}

// fieldKeysNeedDedupe reports whether two field keys may read back as the
// same key: only when a key holds \t, \n, \f or \r, which travel as the
// two-byte escapes the serializer writes for them.
func (c *Converter) fieldKeysNeedDedupe() bool {
	return c.ctlKey && len(c.fields) > 1
}

// dedupeFieldKeys keeps the last of fields whose keys read back the same
// (what Telegraf's parser does with a repeated key) and counts the others.
func (c *Converter) dedupeFieldKeys() {
	c.sbuf = c.sbuf[:0]
	c.spans = c.spans[:0]
	for _, fi := range c.fields {
		off := len(c.sbuf)
		c.sbuf = normalize(c.sbuf, c.leafKey(&c.leaves[fi]))
		c.spans = append(c.spans, span{off: off, end: len(c.sbuf)})
	}
	c.leafTable.reset(len(c.fields))
	for i, sp := range c.spans {
		key := c.sbuf[sp.off:sp.end]
		if prev := c.leafTable.put(hashBytes(c, key), int32(i), func(j int32) bool {
			o := c.spans[j]
			return bytes.Equal(c.sbuf[o.off:o.end], key)
		}); prev >= 0 {
			// Marking the leaf dead is safe: leaves are not scanned again.
			c.leaves[c.fields[prev]].dead = true
			c.badFields = append(c.badFields, c.fields[prev])
		}
	}
}

// appendFieldValue writes a leaf's value as the influx serializer does.
func (c *Converter) appendFieldValue(dst, doc []byte, l *leaf) []byte {
	switch l.kind {
	case kindNumber:
		return appendNumber(dst, doc, l)
	case kindTrue:
		return append(dst, "true"...)
	case kindFalse:
		return append(dst, "false"...)
	default:
		return appendStringField(dst, c.stringValue(doc, l))
	}
}
