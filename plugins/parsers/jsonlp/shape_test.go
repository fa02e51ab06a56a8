package jsonlp

import (
	"bytes"
	"fmt"
	"math/rand"
	"strconv"
	"testing"
)

// convertPair converts doc with warm (which may have learnt a shape) and with
// a fresh converter (full path only) and fails unless both say the same.
func convertPair(t *testing.T, warm *Converter, cfg Config, meta Meta, doc []byte) {
	t.Helper()
	fresh := mustNew(t, cfg)
	want, wantLines, wantErr := fresh.Append(nil, doc, &meta)
	got, gotLines, gotErr := warm.Append(nil, doc, &meta)
	if fmt.Sprint(wantErr) != fmt.Sprint(gotErr) || wantLines != gotLines || !bytes.Equal(want, got) {
		t.Fatalf("doc %q after a learnt shape:\n got  %q, %d lines, err %v\n want %q, %d lines, err %v",
			doc, got, gotLines, gotErr, want, wantLines, wantErr)
	}
	if warm.Dropped() != fresh.Dropped() {
		t.Fatalf("doc %q: dropped %+v, full path %+v", doc, warm.Dropped(), fresh.Dropped())
	}
}

// TestShapeMatchesFullPath: after a document teaches the converter its layout,
// every next document converts to exactly what the full path writes, whether
// it fits the layout or differs from it in one way.
func TestShapeMatchesFullPath(t *testing.T) {
	const first = `{"pressure":5.1,"temperature":23.4,"visibility":80.2,"site":"s1","ok":true,"gone":null}`
	next := map[string]string{
		"same":                   first,
		"other values":           `{"pressure":-0,"temperature":1e3,"visibility":80.20,"site":"s\u00e9","ok":false,"gone":"x"}`,
		"spaces":                 " \t{ \"pressure\" : 5.1 ,\n\"temperature\":23.4,\"visibility\":80.2,\"site\":\"s1\",\"ok\":true,\"gone\":null }\r\n",
		"fraction zeros":         `{"pressure":5.0,"temperature":-0.00,"visibility":80.20,"site":"s1","ok":true,"gone":null}`,
		"fraction zeros, long":   `{"pressure":1234567890123456.0,"temperature":0.1234567890123450,"visibility":100000000000000000000.0,"site":"s1","ok":true,"gone":null}`,
		"fraction zeros, exp":    `{"pressure":1.0e5,"temperature":10E0,"visibility":0.0,"site":"s1","ok":true,"gone":null}`,
		"huge number":            `{"pressure":1e400,"temperature":23.4,"visibility":80.2,"site":"s1","ok":true,"gone":null}`,
		"long number":            `{"pressure":9007199254740993,"temperature":0.1000000000000000055511151231257827,"visibility":80.2,"site":"s1","ok":true,"gone":null}`,
		"bad number":             `{"pressure":05,"temperature":23.4,"visibility":80.2,"site":"s1","ok":true,"gone":null}`,
		"number becomes string":  `{"pressure":"5.1","temperature":23.4,"visibility":80.2,"site":"s1","ok":true,"gone":null}`,
		"string becomes number":  `{"pressure":5.1,"temperature":23.4,"visibility":80.2,"site":7,"ok":true,"gone":null}`,
		"null becomes number":    `{"pressure":5.1,"temperature":23.4,"visibility":80.2,"site":"s1","ok":true,"gone":3}`,
		"bool becomes string":    `{"pressure":5.1,"temperature":23.4,"visibility":80.2,"site":"s1","ok":"yes","gone":null}`,
		"escaped string":         `{"pressure":5.1,"temperature":23.4,"visibility":80.2,"site":"a\"b\\c\n","ok":true,"gone":null}`,
		"invalid utf-8 string":   "{\"pressure\":5.1,\"temperature\":23.4,\"visibility\":80.2,\"site\":\"\xff\",\"ok\":true,\"gone\":null}",
		"escaped key":            `{"pr\u0065ssure":5.1,"temperature":23.4,"visibility":80.2,"site":"s1","ok":true,"gone":null}`,
		"key prefix":             `{"pressure2":5.1,"temperature":23.4,"visibility":80.2,"site":"s1","ok":true,"gone":null}`,
		"member missing":         `{"pressure":5.1,"temperature":23.4,"visibility":80.2,"site":"s1","ok":true}`,
		"member added":           `{"pressure":5.1,"temperature":23.4,"visibility":80.2,"site":"s1","ok":true,"gone":null,"x":1}`,
		"member repeated":        `{"pressure":5.1,"pressure":23.4,"visibility":80.2,"site":"s1","ok":true,"gone":null}`,
		"members swapped":        `{"temperature":23.4,"pressure":5.1,"visibility":80.2,"site":"s1","ok":true,"gone":null}`,
		"nested value":           `{"pressure":{"a":1},"temperature":23.4,"visibility":80.2,"site":"s1","ok":true,"gone":null}`,
		"array value":            `{"pressure":5.1,"temperature":23.4,"visibility":80.2,"site":[1],"ok":true,"gone":null}`,
		"trailing garbage":       first + "x",
		"two documents":          first + first,
		"cut short":              first[:len(first)-1],
		"bad literal":            `{"pressure":5.1,"temperature":23.4,"visibility":80.2,"site":"s1","ok":tru,"gone":null}`,
		"unterminated string":    `{"pressure":5.1,"temperature":23.4,"visibility":80.2,"site":"s1`,
		"missing colon":          `{"pressure" 5.1,"temperature":23.4,"visibility":80.2,"site":"s1","ok":true,"gone":null}`,
		"an array of it":         "[" + first + "]",
		"empty object":           `{}`,
		"the time key":           `{"pressure":5.1,"temperature":23.4,"visibility":80.2,"site":"s1","ok":true,"time":1700000000}`,
		"control char in string": "{\"pressure\":5.1,\"temperature\":23.4,\"visibility\":80.2,\"site\":\"a\x01\",\"ok\":true,\"gone\":null}",
	}
	const nested = `{"dev":{"id":"d1","site":{"lat":31.2,"on":true}},"s":[{"v":1.5,"n":null},{"v":2,"h":[1,2,"x"]}],"a_b":{"c":3},"e":{},"z":[]}`
	nestedNext := map[string]string{
		"same":                nested,
		"other values":        `{"dev":{"id":"d2","site":{"lat":-0.25,"on":false}},"s":[{"v":1e2,"n":null},{"v":7,"h":[3,4,"y"]}],"a_b":{"c":4},"e":{},"z":[]}`,
		"null takes a value":  `{"dev":{"id":"d1","site":{"lat":31.2,"on":true}},"s":[{"v":1.5,"n":"x"},{"v":2,"h":[1,2,"x"]}],"a_b":{"c":3},"e":{},"z":[]}`,
		"value becomes null":  `{"dev":{"id":null,"site":{"lat":31.2,"on":true}},"s":[{"v":1.5,"n":null},{"v":2,"h":[1,2,"x"]}],"a_b":{"c":3},"e":{},"z":[]}`,
		"array grows":         `{"dev":{"id":"d1","site":{"lat":31.2,"on":true}},"s":[{"v":1.5,"n":null},{"v":2,"h":[1,2,"x",4]}],"a_b":{"c":3},"e":{},"z":[]}`,
		"collision":           `{"dev":{"id":"d1","site":{"lat":31.2,"on":true}},"s":[{"v":1.5,"n":null},{"v":2,"h":[1,2,"x"]}],"a_b":{"c":3},"a":{"b_c":9},"z":[]}`,
		"empty object fills":  `{"dev":{"id":"d1","site":{"lat":31.2,"on":true}},"s":[{"v":1.5,"n":null},{"v":2,"h":[1,2,"x"]}],"a_b":{"c":3},"e":{"f":1},"z":[]}`,
		"number in a string":  `{"dev":{"id":5,"site":{"lat":31.2,"on":true}},"s":[{"v":1.5,"n":null},{"v":2,"h":[1,2,"x"]}],"a_b":{"c":3},"e":{},"z":[]}`,
		"object for a number": `{"dev":{"id":"d1","site":{"lat":{"x":1},"on":true}},"s":[{"v":1.5,"n":null},{"v":2,"h":[1,2,"x"]}],"a_b":{"c":3},"e":{},"z":[]}`,
		"repeated key":        `{"dev":{"id":"d1","site":{"lat":31.2,"lat":true}},"s":[{"v":1.5,"n":null},{"v":2,"h":[1,2,"x"]}],"a_b":{"c":3},"e":{},"z":[]}`,
		"time key nested":     `{"dev":{"id":"d1","site":{"lat":31.2,"on":true}},"s":[{"v":1.5,"n":null},{"v":2,"h":[1,2,"x"]}],"a_b":{"c":3},"e":{},"time":1700000000}`,
	}
	for _, v := range variants {
		for _, set := range []struct {
			first string
			next  map[string]string
		}{{first, next}, {nested, nestedNext}} {
			for name, doc := range set.next {
				t.Run(v.name+"/"+name, func(t *testing.T) {
					meta := v.meta
					meta.Now = testNow
					warm := mustNew(t, v.cfg)
					convertPair(t, warm, v.cfg, meta, []byte(set.first))
					convertPair(t, warm, v.cfg, meta, []byte(doc))
					convertPair(t, warm, v.cfg, meta, []byte(set.first)) // and back
				})
			}
		}
	}
}

// TestShapeUsed: the guide's messages take the shape after the first, and a
// change of Meta (another topic's tag) is not written with the old head.
func TestShapeUsed(t *testing.T) {
	cfg := baseConfig()
	c := mustNew(t, cfg)
	meta := Meta{Now: testNow, Tags: []Tag{{"topic", "oceanic"}}}
	for _, doc := range []string{
		`{"pressure":5.1,"temperature":23.4,"visibility":80.2}`,
		`{"pressure":5.2,"temperature":23.5,"visibility":80.3}`,
		`{"pressure":5.3,"temperature":23.6,"visibility":80.4}`,
	} {
		convertPair(t, c, cfg, meta, []byte(doc))
	}
	if c.shapeHits != 2 {
		t.Fatalf("shape converted %d of the 2 documents after the first", c.shapeHits)
	}
	meta.Tags = []Tag{{"topic", "other"}}
	convertPair(t, c, cfg, meta, []byte(`{"pressure":5.4,"temperature":23.7,"visibility":80.5}`))
	meta.Name = "renamed"
	convertPair(t, c, cfg, meta, []byte(`{"pressure":5.4,"temperature":23.7,"visibility":80.5}`))
	meta.Time = testNow.Add(1234)
	convertPair(t, c, cfg, meta, []byte(`{"pressure":5.4,"temperature":23.7,"visibility":80.5}`))
	if c.shapeHits != 3 {
		t.Fatalf("shape converted %d documents, want 3 (the one with only a new time)", c.shapeHits)
	}
}

// TestShapeRandomStreams feeds streams of flat documents that mostly keep one
// layout (values, kinds, keys and spacing change now and then) to one
// converter per config variant, each document checked against the full path.
func TestShapeRandomStreams(t *testing.T) {
	streams := 400
	if testing.Short() {
		streams = 60
	}
	r := rand.New(rand.NewSource(15))
	values := append(append(append([]string{}, genNumbers...), genStrings...), "true", "false", "null")
	totalHits := 0
	for _, v := range variants {
		meta := v.meta
		meta.Now = testNow
		warm := mustNew(t, v.cfg)
		for s := 0; s < streams; s++ {
			if s%2 == 1 {
				nestedStream(t, r, warm, v, meta, values)
				continue
			}
			keys := make([]string, 1+r.Intn(6))
			vals := make([]string, len(keys))
			for i := range keys {
				keys[i] = genKeys[r.Intn(len(genKeys))]
				vals[i] = values[r.Intn(len(values))]
			}
			for d := 0; d < 6; d++ {
				var b []byte
				b = append(b, '{')
				for i := range keys {
					if i > 0 {
						b = append(b, ',')
					}
					if r.Intn(8) == 0 {
						vals[i] = values[r.Intn(len(values))]
					}
					if r.Intn(40) == 0 {
						keys[i] = genKeys[r.Intn(len(genKeys))]
					}
					if r.Intn(20) == 0 {
						b = append(b, ' ')
					}
					b = append(b, keys[i]...)
					b = append(b, ':')
					b = append(b, vals[i]...)
				}
				b = append(b, '}')
				convertPair(t, warm, v.cfg, meta, b)
			}
		}
		totalHits += warm.shapeHits
	}
	if totalHits == 0 {
		t.Fatal("no document took the shape: the test no longer tests it")
	}
	t.Logf("%d documents took the shape", totalHits)
}

func TestNanoDigits(t *testing.T) {
	var d nanoDigits
	r := rand.New(rand.NewSource(1))
	for _, ns := range []int64{0, 1, -1, 999999999, 1e9, 1e9 + 1, 1700000000000000000, 1700000000000000001, 1700000000999999999, 1700000001000000000, -1700000000000000000, 9223372036854775807, -9223372036854775808} {
		if got, want := string(d.append(nil, ns)), fmt.Sprint(ns); got != want {
			t.Fatalf("%d: got %s", ns, got)
		}
	}
	for i := 0; i < 100000; i++ {
		ns := 1700000000000000000 + r.Int63n(5e9)
		if got, want := string(d.append(nil, ns)), fmt.Sprint(ns); got != want {
			t.Fatalf("%d: got %s", ns, got)
		}
	}
	// Runs counting up one nanosecond at a time, across carries, a new
	// second and a new digit, after a jump back.
	for _, from := range []int64{1700000000999999990, 1700000000000000000, 1699999999999999998, 999999999999999995, 1e9 - 2, 1700000000000000000} {
		for ns := from; ns < from+12; ns++ {
			if got, want := string(d.append([]byte("x"), ns)), "x"+fmt.Sprint(ns); got != want {
				t.Fatalf("%d: got %s", ns, got)
			}
		}
	}
}

// FuzzShape: whatever document taught the layout, the next one converts as
// the full path converts it.
func FuzzShape(f *testing.F) {
	guide := `{"pressure":5.1,"temperature":23.4,"visibility":80.2}`
	for _, pair := range [][2]string{
		{guide, `{"pressure":5.2,"temperature":23.5,"visibility":80.3}`},
		{guide, `{"pressure":5.2 , "temperature":"x","visibility":null}`},
		{`{"s":"a","b":true,"n":null,"x":1}`, `{"s":"b","b":false,"n":null,"x":1.50}`},
		{`{"a_b":1,"c":"d"}`, `{"a_b":2,"c":"d\u0000"}`},
	} {
		f.Add([]byte(pair[0]), []byte(pair[1]), uint8(0))
	}
	f.Fuzz(func(t *testing.T, learn, doc []byte, vi uint8) {
		v := variants[int(vi)%len(variants)]
		meta := v.meta
		meta.Now = testNow
		warm := mustNew(t, v.cfg)
		_, _, _ = warm.Append(nil, learn, &meta)
		convertPair(t, warm, v.cfg, meta, doc)
	})
}

// jsonNode is a document's tree for nestedStream: an object, an array or a
// scalar (value indexes into the stream's values).
type jsonNode struct {
	keys     []string // objects
	children []*jsonNode
	isArray  bool
	value    int // scalars: -1 for containers
}

func randomTree(r *rand.Rand, depth, nvalues int) *jsonNode {
	if depth > 0 && r.Intn(3) == 0 {
		return &jsonNode{value: r.Intn(nvalues)}
	}
	n := &jsonNode{value: -1, isArray: depth > 0 && r.Intn(3) == 0}
	for i, count := 0, r.Intn(4); i < count; i++ {
		if !n.isArray {
			n.keys = append(n.keys, genKeys[r.Intn(len(genKeys))])
		}
		child := &jsonNode{value: r.Intn(nvalues)}
		if depth < 3 && r.Intn(3) == 0 {
			child = randomTree(r, depth+1, nvalues)
		}
		n.children = append(n.children, child)
	}
	return n
}

// mutate changes the tree a little: most often a value, now and then a key.
func (n *jsonNode) mutate(r *rand.Rand, nvalues int) {
	if n.value >= 0 {
		if r.Intn(4) == 0 {
			n.value = r.Intn(nvalues)
		}
		return
	}
	for i, child := range n.children {
		if !n.isArray && r.Intn(60) == 0 {
			n.keys[i] = genKeys[r.Intn(len(genKeys))]
		}
		child.mutate(r, nvalues)
	}
}

func (n *jsonNode) render(b []byte, values []string) []byte {
	if n.value >= 0 {
		return append(b, values[n.value]...)
	}
	open, close := byte('{'), byte('}')
	if n.isArray {
		open, close = '[', ']'
	}
	b = append(b, open)
	for i, child := range n.children {
		if i > 0 {
			b = append(b, ',')
		}
		if !n.isArray {
			b = append(b, n.keys[i]...)
			b = append(b, ':')
		}
		b = child.render(b, values)
	}
	return append(b, close)
}

// nestedStream converts documents of one random nested layout whose values
// (and now and then keys) change.
func nestedStream(t *testing.T, r *rand.Rand, warm *Converter, v variant, meta Meta, values []string) {
	tree := randomTree(r, 0, len(values))
	for d := 0; d < 6; d++ {
		convertPair(t, warm, v.cfg, meta, tree.render(nil, values))
		tree.mutate(r, len(values))
	}
}

func TestTrimFractionZeros(t *testing.T) {
	tests := []struct {
		num  string
		want string // "" when the trimmed text is not what AppendFloat writes
	}{
		{"5.0", "5"},
		{"2.50", "2.5"},
		{"-0.0", "-0"},
		{"0.000", "0"},
		{"0.0100", "0.01"},
		{"100", ""},
		{"100.5", "100.5"}, // nothing to trim
		{"1.0e5", ""},
		{"1234567890123456.0", ""},
		{"0.12345678901234560", ""},
	}
	for _, tt := range tests {
		j, ok := trimFractionZeros([]byte(tt.num))
		got := ""
		if ok {
			got = tt.num[:j]
		}
		if got != tt.want {
			t.Errorf("trimFractionZeros(%s) = %q, want %q", tt.num, got, tt.want)
		}
		if ok {
			v, _ := strconv.ParseFloat(tt.num, 64)
			if s := strconv.FormatFloat(v, 'f', -1, 64); s != got {
				t.Errorf("%s: trimmed %q, AppendFloat writes %q", tt.num, got, s)
			}
		}
	}
}
