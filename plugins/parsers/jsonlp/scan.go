package jsonlp

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"strconv"
)

// maxDepth is encoding/json's nesting limit; deeper documents are errors there.
const maxDepth = 10000

const (
	kindNumber uint8 = iota
	kindString
	kindTrue
	kindFalse
)

// leaf is one scalar of the flattened object: a field, tag, name or time
// candidate. Values stay in the document until they are written.
type leaf struct {
	num            float64
	keyOff, keyLen int32 // flattened key in Converter.keys
	off, end       int32 // number text, or string content without quotes
	kind           uint8
	dead           bool // replaced by a later duplicate
	parsed         bool // num is set
	canonical      bool // number text is exactly what strconv.AppendFloat(num, 'f', -1, 64) gives
	esc            bool // string has escapes
	high           bool // string has bytes >= 0x80
}

// member is one key of an object, kept to apply "last duplicate wins" to
// whole subtrees as encoding/json's map does.
type member struct {
	rawOff, rawEnd     int32 // the key as written in the document
	leafStart, leafEnd int32 // leaves produced by the member's value
	prev               int32
	obj                int32
	plain              bool // raw key is the decoded key
	dead               bool
}

type frame struct {
	pathLen    int // length of Converter.path holding this container's key
	index      int // arrays: index of the current element
	lastMember int32
	count      int32
	id         int32
	bloom      uint64
	isArray    bool
	big        bool // members tracked in memberTable
}

// smallObject is the member count up to which duplicates are searched by
// walking the siblings (guarded by a 64-bit bloom word) instead of hashing.
const smallObject = 32

type syntaxError struct {
	msg string
	off int
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at offset %d: %s", e.off, e.msg)
}

func errAt(off int, msg string) error { return &syntaxError{msg: msg, off: off} }

func errUnexpected(buf []byte, i int, where string) error {
	if i >= len(buf) {
		return errAt(i, "unexpected end of JSON input")
	}
	return errAt(i, fmt.Sprintf("invalid character %q %s", buf[i], where))
}

func skipWS(buf []byte, i int) int {
	for i < len(buf) {
		switch buf[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// strPlain marks bytes that may appear in a JSON string without further checks.
var strPlain = func() (t [256]bool) {
	for b := 0x20; b < 0x80; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

var hexDigit = func() (t [256]bool) {
	for _, b := range []byte("0123456789abcdefABCDEF") {
		t[b] = true
	}
	return t
}()

// scanString validates a JSON string whose opening quote is at buf[i-1] and
// returns the index after its closing quote. Like encoding/json's scanner it
// accepts any byte >= 0x20 other than '"' and '\\', including invalid UTF-8.
func scanString(buf []byte, i int) (end int, esc, high bool, err error) {
	n := len(buf)
	for i < n {
		c := buf[i]
		if strPlain[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			return i + 1, esc, high, nil
		case c == '\\':
			esc = true
			if i+1 >= n {
				return 0, false, false, errUnexpected(buf, n, "")
			}
			switch buf[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := i + 2; k < i+6; k++ {
					if k >= n {
						return 0, false, false, errUnexpected(buf, n, "")
					}
					if !hexDigit[buf[k]] {
						return 0, false, false, errUnexpected(buf, k, "in \\u hexadecimal character escape")
					}
				}
				i += 6
			default:
				return 0, false, false, errUnexpected(buf, i+1, "in string escape code")
			}
		case c < 0x20:
			return 0, false, false, errUnexpected(buf, i, "in string literal")
		default:
			high = true
			i++
		}
	}
	return 0, false, false, errUnexpected(buf, n, "")
}

func hasCtl(b []byte) bool {
	for _, x := range b {
		if x == '\t' || x == '\n' || x == '\f' || x == '\r' {
			return true
		}
	}
	return false
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// scanNumber validates a JSON number starting at buf[i]. canonical reports
// that the text is already what the influx serializer writes for its float64
// (at most 15 significant digits, no exponent, no trailing fraction zero,
// magnitude well inside the normal range), so it needs no conversion.
func scanNumber(buf []byte, i int) (end int, canonical bool, err error) {
	n := len(buf)
	if buf[i] == '-' {
		i++
	}
	intStart := i
	switch {
	case i >= n:
		return 0, false, errUnexpected(buf, i, "")
	case buf[i] == '0':
		i++
	case buf[i] >= '1' && buf[i] <= '9':
		for i < n && isDigit(buf[i]) {
			i++
		}
	default:
		return 0, false, errUnexpected(buf, i, "in numeric literal")
	}
	intDigits := i - intStart
	fracDigits, fracLeadZeros := 0, 0
	lastFracZero := false
	if i < n && buf[i] == '.' {
		i++
		fs := i
		for i < n && isDigit(buf[i]) {
			i++
		}
		fracDigits = i - fs
		if fracDigits == 0 {
			return 0, false, errUnexpected(buf, i, "after decimal point in numeric literal")
		}
		lastFracZero = buf[i-1] == '0'
		for k := fs; k < i && buf[k] == '0'; k++ {
			fracLeadZeros++
		}
	}
	exp := false
	if i < n && (buf[i] == 'e' || buf[i] == 'E') {
		exp = true
		i++
		if i < n && (buf[i] == '+' || buf[i] == '-') {
			i++
		}
		es := i
		for i < n && isDigit(buf[i]) {
			i++
		}
		if i == es {
			return 0, false, errUnexpected(buf, i, "in exponent of numeric literal")
		}
	}
	sig := intDigits + fracDigits
	if intDigits == 1 && buf[intStart] == '0' {
		sig = fracDigits - fracLeadZeros
	}
	canonical = !exp && intDigits <= 15 && fracDigits <= 20 && !lastFracZero && sig <= 15
	return i, canonical, nil
}

// resetMetric clears the per-metric scratch state.
func (c *Converter) resetMetric() {
	c.leaves = c.leaves[:0]
	c.keys = c.keys[:0]
	c.members = c.members[:0]
	c.nextObjID = 0
	c.mayCollide = false
	c.ctlKey = false
	c.memberTable.n = -1 // reset lazily on first use
	c.path = c.path[:0]
	c.frames = c.frames[:0]
}

func (c *Converter) pushFrame(isArray bool, outer int, off int) error {
	if outer+len(c.frames)+1 > maxDepth {
		return errAt(off, "exceeded max depth")
	}
	c.frames = append(c.frames, frame{pathLen: len(c.path), lastMember: -1, id: c.nextObjID, isArray: isArray})
	c.nextObjID++
	return nil
}

// setElementKey makes c.path the flattened key of the current array element.
func (c *Converter) setElementKey(f *frame) {
	c.path = c.path[:f.pathLen]
	if f.pathLen > 0 {
		c.path = append(c.path, '_')
	}
	c.path = strconv.AppendInt(c.path, int64(f.index), 10)
}

// maxArena bounds offsets kept in int32; Append rejects larger documents
// and parseObject larger sums of flattened keys.
const maxArena = math.MaxInt32

func (c *Converter) addLeaf(kind uint8, off, end int) *leaf {
	koff := len(c.keys)
	c.keys = append(c.keys, c.path...)
	c.leaves = append(c.leaves, leaf{keyOff: int32(koff), keyLen: int32(len(c.path)), off: int32(off), end: int32(end), kind: kind})
	return &c.leaves[len(c.leaves)-1]
}

func (c *Converter) leafKey(l *leaf) []byte { return c.keys[l.keyOff : l.keyOff+l.keyLen] }

// memberKeyIs reports whether member m's decoded key equals key.
func (c *Converter) memberKeyIs(m *member, key []byte) bool {
	raw := c.doc[m.rawOff:m.rawEnd]
	if m.plain {
		return bytes.Equal(raw, key)
	}
	c.sbuf = appendUnquoted(c.sbuf[:0], raw)
	return bytes.Equal(c.sbuf, key)
}

func (c *Converter) memberKey(m *member) []byte {
	raw := c.doc[m.rawOff:m.rawEnd]
	if m.plain {
		return raw
	}
	c.sbuf = appendUnquoted(c.sbuf[:0], raw)
	return c.sbuf
}

// parseObject parses the object at buf[i] into leaves as one metric's worth
// of flattened fields; outer is the number of enclosing containers. It
// returns the index after the object.
func (c *Converter) parseObject(buf []byte, i int, outer int) (int, error) {
	const (
		stObjFirst = iota // after '{'
		stObjNext         // after ','
		stArrFirst        // after '['
		stValue           // a value for c.path is expected
		stAfter           // a value has ended
	)
	c.resetMetric()
	c.doc = buf
	if err := c.pushFrame(false, outer, i); err != nil {
		return 0, err
	}
	n := len(buf)
	i++
	st := stObjFirst
	for {
		switch st {
		case stObjFirst, stObjNext:
			i = skipWS(buf, i)
			if i < n && buf[i] == '}' && st == stObjFirst {
				i++
				if c.popFrame() {
					return i, nil
				}
				st = stAfter
				continue
			}
			if i >= n || buf[i] != '"' {
				return 0, errUnexpected(buf, i, "looking for beginning of object key string")
			}
			end, esc, high, err := scanString(buf, i+1)
			if err != nil {
				return 0, err
			}
			fi := len(c.frames) - 1
			f := &c.frames[fi]
			c.path = c.path[:f.pathLen]
			if f.pathLen > 0 {
				c.path = append(c.path, '_')
			}
			ks := len(c.path)
			if esc || high {
				c.path = appendUnquoted(c.path, buf[i+1:end-1])
				// Raw JSON strings hold no control characters; escapes may.
				if esc && !c.ctlKey && hasCtl(c.path[ks:]) {
					c.ctlKey = true
				}
			} else {
				c.path = append(c.path, buf[i+1:end-1]...)
			}
			key := c.path[ks:]
			if len(key) == 0 || bytes.IndexByte(key, '_') >= 0 {
				c.mayCollide = true
			}
			c.addMember(fi, key, i+1, end-1, !esc && !high)
			i = skipWS(buf, end)
			if i >= n || buf[i] != ':' {
				return 0, errUnexpected(buf, i, "after object key")
			}
			i++
			st = stValue
		case stArrFirst:
			i = skipWS(buf, i)
			f := &c.frames[len(c.frames)-1]
			if i < n && buf[i] == ']' {
				i++
				c.popFrame() // an array is never the root here
				st = stAfter
				continue
			}
			c.setElementKey(f)
			st = stValue
		case stValue:
			i = skipWS(buf, i)
			if i >= n {
				return 0, errUnexpected(buf, i, "")
			}
			switch b := buf[i]; {
			case b == '{':
				if err := c.pushFrame(false, outer, i); err != nil {
					return 0, err
				}
				i++
				st = stObjFirst
				continue
			case b == '[':
				if err := c.pushFrame(true, outer, i); err != nil {
					return 0, err
				}
				i++
				st = stArrFirst
				continue
			case b == '"':
				end, esc, high, err := scanString(buf, i+1)
				if err != nil {
					return 0, err
				}
				l := c.addLeaf(kindString, i+1, end-1)
				l.esc, l.high = esc, high
				i = end
			case b == '-' || isDigit(b):
				end, canonical, err := scanNumber(buf, i)
				if err != nil {
					return 0, err
				}
				var v float64
				if !canonical {
					v, err = strconv.ParseFloat(bytesToString(buf[i:end]), 64)
					if err != nil {
						return 0, fmt.Errorf("json: cannot unmarshal number %s into a float64", buf[i:end])
					}
				}
				l := c.addLeaf(kindNumber, i, end)
				l.canonical, l.num, l.parsed = canonical, v, !canonical
				i = end
			case b == 't':
				if !bytes.HasPrefix(buf[i:], []byte("true")) {
					return 0, errUnexpected(buf, i+literalMismatch(buf[i:], "true"), "in literal true")
				}
				c.addLeaf(kindTrue, i, i+4)
				i += 4
			case b == 'f':
				if !bytes.HasPrefix(buf[i:], []byte("false")) {
					return 0, errUnexpected(buf, i+literalMismatch(buf[i:], "false"), "in literal false")
				}
				c.addLeaf(kindFalse, i, i+5)
				i += 5
			case b == 'n':
				if !bytes.HasPrefix(buf[i:], []byte("null")) {
					return 0, errUnexpected(buf, i+literalMismatch(buf[i:], "null"), "in literal null")
				}
				i += 4
			default:
				return 0, errUnexpected(buf, i, "looking for beginning of value")
			}
			st = stAfter
		case stAfter:
			f := &c.frames[len(c.frames)-1]
			i = skipWS(buf, i)
			if f.isArray {
				switch {
				case i < n && buf[i] == ',':
					i++
					f.index++
					c.setElementKey(f)
					st = stValue
				case i < n && buf[i] == ']':
					i++
					c.popFrame()
				default:
					return 0, errUnexpected(buf, i, "after array element")
				}
				continue
			}
			c.members[f.lastMember].leafEnd = int32(len(c.leaves))
			switch {
			case i < n && buf[i] == ',':
				i++
				st = stObjNext
			case i < n && buf[i] == '}':
				i++
				if c.popFrame() {
					if len(c.keys) > maxArena {
						return 0, errors.New("flattened keys exceed 2 GiB")
					}
					return i, nil
				}
			default:
				return 0, errUnexpected(buf, i, "after object key:value pair")
			}
		}
	}
}

// popFrame closes the innermost container and reports whether it was the root.
func (c *Converter) popFrame() bool {
	c.frames = c.frames[:len(c.frames)-1]
	return len(c.frames) == 0
}

func literalMismatch(b []byte, lit string) int {
	for k := 0; k < len(lit); k++ {
		if k >= len(b) || b[k] != lit[k] {
			return k
		}
	}
	return len(lit)
}

func bloomBit(key []byte) uint64 {
	h := uint(len(key)) * 0x9E37
	if len(key) > 0 {
		h ^= uint(key[0])*31 + uint(key[len(key)-1])*131 + uint(key[len(key)/2])*7
	}
	return 1 << ((h ^ h>>6) & 63)
}

// addMember records key as the next member of frame fi and, if an earlier
// member of the same object has the same key, drops that member's leaves:
// encoding/json keeps only the last value of a duplicated key.
func (c *Converter) addMember(fi int, key []byte, rawOff, rawEnd int, plain bool) {
	f := &c.frames[fi]
	idx := int32(len(c.members))
	if f.big {
		if prev := c.memberTable.put(c.memberHash(f.id, key), idx, func(j int32) bool {
			m := &c.members[j]
			return m.obj == f.id && c.memberKeyIs(m, key)
		}); prev >= 0 {
			c.killMember(prev)
		}
	} else {
		bit := bloomBit(key)
		if f.bloom&bit != 0 {
			for j := f.lastMember; j >= 0; j = c.members[j].prev {
				if m := &c.members[j]; !m.dead && c.memberKeyIs(m, key) {
					c.killMember(j)
					break
				}
			}
		}
		f.bloom |= bit
	}
	n := int32(len(c.leaves))
	c.members = append(c.members, member{rawOff: int32(rawOff), rawEnd: int32(rawEnd), leafStart: n, leafEnd: n, prev: f.lastMember, obj: f.id, plain: plain})
	f.lastMember = idx
	f.count++
	if !f.big && f.count > smallObject {
		f.big = true
		if c.memberTable.n < 0 {
			c.memberTable.reset(64)
		}
		for j := f.lastMember; j >= 0; j = c.members[j].prev {
			if m := &c.members[j]; !m.dead {
				c.memberTable.put(c.memberHash(f.id, c.memberKey(m)), j, func(int32) bool { return false })
			}
		}
	}
}

func (c *Converter) memberHash(obj int32, key []byte) uint64 {
	return maphash.Bytes(c.seed, key) ^ uint64(obj)*0x9E3779B97F4A7C15
}

func (c *Converter) killMember(j int32) {
	m := &c.members[j]
	m.dead = true
	for k := m.leafStart; k < m.leafEnd; k++ {
		c.leaves[k].dead = true
	}
}

// dedupeLeaves applies "last wins" to flattened keys that collide across
// paths ({"a_b":1,"a":{"b":2}}). Telegraf's result depends on Go's random
// map order there; the last value in document order is one of its outcomes.
func (c *Converter) dedupeLeaves() {
	c.leafTable.reset(len(c.leaves))
	for i := range c.leaves {
		l := &c.leaves[i]
		if l.dead {
			continue
		}
		key := c.leafKey(l)
		if prev := c.leafTable.put(maphash.Bytes(c.seed, key), int32(i), func(j int32) bool {
			return bytes.Equal(c.leafKey(&c.leaves[j]), key)
		}); prev >= 0 {
			c.leaves[prev].dead = true
		}
	}
}

// idxTable is an open-addressing hash set of indices; the caller supplies
// hashes and equality, so it allocates only when it grows.
type idxTable struct {
	slots  []int32 // index+1; 0 is empty
	hashes []uint64
	n      int
}

func (t *idxTable) reset(hint int) {
	size := 16
	for size < 2*hint {
		size <<= 1
	}
	if cap(t.slots) < size {
		t.slots = make([]int32, size)
		t.hashes = make([]uint64, size)
	} else {
		t.slots = t.slots[:size]
		t.hashes = t.hashes[:size]
		clear(t.slots)
	}
	t.n = 0
}

// put stores idx under h unless an equal entry exists; then it replaces that
// entry and returns its index (otherwise -1).
func (t *idxTable) put(h uint64, idx int32, eq func(int32) bool) int32 {
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	mask := uint64(len(t.slots) - 1)
	for p := h & mask; ; p = (p + 1) & mask {
		s := t.slots[p]
		if s == 0 {
			t.slots[p] = idx + 1
			t.hashes[p] = h
			t.n++
			return -1
		}
		if t.hashes[p] == h && eq(s-1) {
			t.slots[p] = idx + 1
			return s - 1
		}
	}
}

func (t *idxTable) grow() {
	oldSlots, oldHashes := t.slots, t.hashes
	size := 2 * len(oldSlots)
	if size < 16 {
		size = 16
	}
	t.slots = make([]int32, size)
	t.hashes = make([]uint64, size)
	mask := uint64(size - 1)
	for k, s := range oldSlots {
		if s == 0 {
			continue
		}
		h := oldHashes[k]
		p := h & mask
		for t.slots[p] != 0 {
			p = (p + 1) & mask
		}
		t.slots[p] = s
		t.hashes[p] = h
	}
}
