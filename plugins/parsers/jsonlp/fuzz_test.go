package jsonlp

import (
	"sort"
	"testing"
)

// FuzzAppend checks, for any document and config variant: no panic, an
// error exactly when Telegraf errors, the same bytes after Telegraf's
// parse-and-serialize as on the stock path, and output Telegraf can parse.
func FuzzAppend(f *testing.F) {
	docs := loadCorpus(f)
	names := make([]string, 0, len(docs))
	for name := range docs {
		names = append(names, name)
	}
	sort.Strings(names)
	for i, name := range names {
		f.Add(docs[name], uint8(0))
		f.Add(docs[name], uint8(i%len(variants)))
	}
	converters := make([]*Converter, len(variants))
	for i, v := range variants {
		converters[i] = mustNew(f, v.cfg)
	}
	f.Fuzz(func(t *testing.T, doc []byte, vi uint8) {
		k := int(vi) % len(variants)
		checkParity(t, converters[k], variants[k], doc)
	})
}

// FuzzParserModel checks stock.go's model of Telegraf's influx parser
// against the real one on arbitrary lines.
func FuzzParserModel(f *testing.F) {
	for _, s := range []string{
		"m,t=v f=1 1\n",
		"back\\,name=back v=1 1\n",
		"m a\\\\\"b\\==1 1\n",
		"m,a\\\\,b=1 f=1i,g=2u,h=t,s=\"x\\\"\ny\" -5\n",
		"m\vb f=1 1\n",
		"#m f=1 1\n",
		"m f=1.,g=.5,h=-1e+5,i=01 1\n",
		"m,t=a\\\\\\\"\\,x f=\"\" 1\r\n",
		"m f=1 1 \n",
		"m f=1,f=2 1\n",
		"m,b=1,a=2,a=3 f=T 9223372036854775807\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		// Telegraf's stream parser never returns on a line cut off after a
		// backslash at EOF; we only ever write whole lines.
		if len(line) == 0 || line[len(line)-1] != '\n' {
			line = append(line[:len(line):len(line)], '\n') // never write into the fuzzer's buffer
		}
		checkSimulator(t, line)
	})
}

// FuzzAppendStructured builds mostly valid documents from the fuzz input
// (keys and values drawn from awkward sets, duplicates and collisions
// likely) so the parity check reaches deep into flattening and escaping.
func FuzzAppendStructured(f *testing.F) {
	for _, seed := range []string{"", "\x00\x01\x02\x03", "\x05\x06\x07\x08\x09\x0a\x0b", "\xff\xfe\xfd\xfc\xfb\xfa", "abcdefghijklmnopqrstuvwxyz0123456789"} {
		f.Add([]byte(seed))
	}
	converters := make([]*Converter, len(variants))
	for i, v := range variants {
		converters[i] = mustNew(f, v.cfg)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &docGen{data: data}
		k := int(g.next()) % len(variants)
		doc := g.document()
		checkParity(t, converters[k], variants[k], doc)
	})
}

var (
	genKeys = []string{`"a"`, `"b"`, `"a_b"`, `"_"`, `""`, `"0"`, `"1"`, `"\u0061"`, `"a\\"`, `"\\"`,
		`"a b"`, `"a,b"`, `"a=b"`, `"\t"`, `"a\nb"`, `"\u000b"`, `"#"`, `"\""`, `"\\\""`, `"\\,"`, `"\\ x"`,
		`"é"`, `"\ud800"`, "\"\xff\"", `"name"`, `"time"`, `"host"`, `"tag"`, `"data"`, `"s"`, `"items"`,
		`"meta"`, `"topic"`, `"id"`, `"x_name"`, `"b1"`, `"a\tb"`, `"a["`, `"a!"`, `"m"`, `"\r"`}
	genNumbers = []string{"1", "-0", "1.5", "1e308", "123456789012345678901", "0.1", "5e-324", "1700000000",
		"1700000000.5", "-1.5", "0", "1.0", "1e21", "2.5e-7", "1e400", "9007199254740993", "100", "0.000001"}
	genStrings = []string{`"x"`, `""`, `"a b,c=d"`, `"\\"`, `"x\\"`, `"\"q\""`, `"\t\n\r"`, `"\u000b"`, `"#c"`,
		`"2024-01-02T03:04:05Z"`, `"1700000000,5"`, `"\ud83d\ude00"`, `"\ud800"`, `"é"`, `"\\\\\""`, `"a\\\" b"`,
		"\"\xc3\x28\"", `"Jan  2 15:04:05"`, `"cpu"`, `"1 700 000 000"`, `"true"`}
)

type docGen struct {
	data []byte
	pos  int
}

func (g *docGen) next() byte {
	if g.pos >= len(g.data) {
		return 0
	}
	g.pos++
	return g.data[g.pos-1]
}

func (g *docGen) pick(list []string) string { return list[int(g.next())%len(list)] }

func (g *docGen) document() []byte {
	var b []byte
	switch g.next() % 10 {
	case 0:
		b = append(b, '[')
		for i, n := 0, int(g.next()%4); i < n; i++ {
			if i > 0 {
				b = append(b, ',')
			}
			if g.next()%16 == 0 {
				b = g.value(b, 1)
			} else {
				b = g.object(b, 1)
			}
		}
		b = append(b, ']')
	case 1:
		b = g.value(b, 0)
	case 2:
		b = append(b, `{"data":`...)
		b = g.value(b, 1)
		b = append(b, `,"x":1}`...)
	default:
		b = g.object(b, 0)
	}
	return b
}

func (g *docGen) object(b []byte, depth int) []byte {
	b = append(b, '{')
	for i, n := 0, int(g.next()%7); i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, g.pick(genKeys)...)
		b = append(b, ':')
		b = g.value(b, depth+1)
	}
	return append(b, '}')
}

func (g *docGen) value(b []byte, depth int) []byte {
	switch c := g.next() % 12; {
	case c < 3:
		return append(b, g.pick(genNumbers)...)
	case c < 5:
		return append(b, g.pick(genStrings)...)
	case c == 5:
		return append(b, "true"...)
	case c == 6:
		return append(b, "false"...)
	case c == 7:
		return append(b, "null"...)
	case c < 10 && depth < 6:
		return g.object(b, depth)
	case depth < 6:
		b = append(b, '[')
		for i, n := 0, int(g.next()%4); i < n; i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = g.value(b, depth+1)
		}
		return append(b, ']')
	}
	return append(b, '1')
}
