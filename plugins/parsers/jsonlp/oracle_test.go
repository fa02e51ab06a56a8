package jsonlp

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/metric"
	"github.com/influxdata/telegraf/plugins/parsers/influx"
	jsonparser "github.com/influxdata/telegraf/plugins/parsers/json"
	serinflux "github.com/influxdata/telegraf/plugins/serializers/influx"
)

// The oracle is Telegraf v1.37.2 itself: its json parser, the metric edits
// kafka_consumer makes, its influx serializer; and on our side its influx
// parser (what inputs.execd runs on our stdout) and the same serializer.

type variant struct {
	name string
	cfg  Config
	meta Meta // Now is filled in per call
}

func baseConfig() Config { return Config{MetricName: "kafka_consumer", Strict: true} }

var variants = func() []variant {
	v := func(name string, edit func(*Config), meta Meta) variant {
		cfg := baseConfig()
		if edit != nil {
			edit(&cfg)
		}
		return variant{name: name, cfg: cfg, meta: meta}
	}
	fixed := time.Date(2023, 11, 14, 22, 13, 20, 123456789, time.UTC)
	timeFmt := func(format, tz string, strict bool) func(*Config) {
		return func(c *Config) {
			c.TimeKey, c.TimeFormat, c.Timezone, c.Strict = "time", format, tz, strict
		}
	}
	return []variant{
		v("default", nil, Meta{}),
		v("nonstrict", func(c *Config) { c.Strict = false }, Meta{}),
		v("tags", func(c *Config) { c.TagKeys = []string{"host", "tag*", "b?", "[xyz]", "a\tb", "a\\"} }, Meta{}),
		v("tags-exact", func(c *Config) { c.TagKeys = []string{"host"} }, Meta{}),
		v("tags-set", func(c *Config) { c.TagKeys = []string{"host", "id", "a!", "a", "a\tb", "a\\"} }, Meta{}),
		v("tags-all", func(c *Config) { c.TagKeys = []string{"*"} }, Meta{}),
		v("strings-all", func(c *Config) { c.StringFields = []string{"*"} }, Meta{}),
		v("strings-glob", func(c *Config) {
			c.StringFields = []string{"s*", "*_name", "str", "{bool,x}_*"}
			c.TagKeys = []string{"id"}
		}, Meta{}),
		v("tags-and-strings", func(c *Config) { c.TagKeys = []string{"*a*"}; c.StringFields = []string{"*"} }, Meta{}),
		v("namekey", func(c *Config) { c.NameKey = "name" }, Meta{}),
		v("namekey-nested-strings", func(c *Config) { c.NameKey = "meta_name"; c.StringFields = []string{"*"} }, Meta{}),
		v("namekey-tag", func(c *Config) { c.NameKey = "name"; c.TagKeys = []string{"name", "host"} }, Meta{}),
		v("time-unix", timeFmt("unix", "", true), Meta{}),
		v("time-unix-ms", timeFmt("unix_ms", "", true), Meta{}),
		v("time-unix-us", timeFmt("unix_us", "", true), Meta{}),
		v("time-unix-ns", timeFmt("unix_ns", "", true), Meta{}),
		v("time-unix-nonstrict", timeFmt("unix", "", false), Meta{}),
		v("time-rfc3339-layout", timeFmt("2006-01-02T15:04:05Z07:00", "", true), Meta{}),
		v("time-layout-tz", timeFmt("2006-01-02 15:04:05", "America/New_York", true), Meta{}),
		v("time-named", timeFmt("RFC3339Nano", "", true), Meta{}),
		v("time-noyear", timeFmt("Jan _2 15:04:05", "", true), Meta{}),
		v("time-mst", timeFmt("Mon Jan _2 15:04:05 MST 2006", "Asia/Shanghai", true), Meta{}),
		v("time-tz", timeFmt("timestamp_tz", "Europe/Berlin", true), Meta{}),
		v("time-unix-tags", func(c *Config) {
			timeFmt("unix", "", true)(c)
			c.TagKeys = []string{"*"}
			c.StringFields = []string{"*"}
		}, Meta{}),
		v("query-data", func(c *Config) { c.Query = "data" }, Meta{}),
		v("query-items", func(c *Config) { c.Query = "data.items" }, Meta{}),
		v("query-hash", func(c *Config) { c.Query = "data.items.#.m" }, Meta{}),
		v("query-time", func(c *Config) { c.Query = "data.items"; timeFmt("unix", "", false)(c) }, Meta{}),
		v("meta", func(c *Config) { c.TagKeys = []string{"host", "topic"} }, Meta{
			Name: "from_header",
			Tags: []Tag{{"topic", "t1"}, {"host", "override"}, {"partition", "3"}},
			Time: fixed,
		}),
		v("meta-weird", func(c *Config) { c.TagKeys = []string{"*"} }, Meta{
			Name: "a b,c=d\\\\",
			Tags: []Tag{{"k\tx", "v"}, {"", "x"}, {"e", ""}, {"tr\\", "v\\\\"}, {"q\\\"", "w x"}, {"k\tx", "again"}, {"\xff", "\xfe"}},
		}),
		v("meta-name-comment", nil, Meta{Name: "#comment"}),
		v("meta-name-vtab", nil, Meta{Name: "a\vb"}),
		v("meta-name-backslash", nil, Meta{Name: "a\\"}),
		v("meta-tag-order", func(c *Config) { c.TagKeys = []string{"*"} }, Meta{Tags: []Tag{{"a\tz", "1"}, {"a[", "2"}}}),
	}
}()

// oracleParsers caches one initialised Telegraf parser per config; Parse is
// safe to reuse.
var oracleParsers sync.Map

func oracleParser(t testing.TB, cfg Config) *jsonparser.Parser {
	key := fmt.Sprintf("%#v", cfg)
	if p, ok := oracleParsers.Load(key); ok {
		return p.(*jsonparser.Parser)
	}
	p := &jsonparser.Parser{
		MetricName:   cfg.MetricName,
		TagKeys:      cfg.TagKeys,
		StringFields: cfg.StringFields,
		NameKey:      cfg.NameKey,
		Query:        cfg.Query,
		TimeKey:      cfg.TimeKey,
		TimeFormat:   cfg.TimeFormat,
		Timezone:     cfg.Timezone,
		Strict:       cfg.Strict,
	}
	if err := p.Init(); err != nil {
		t.Fatalf("oracle init: %v", err)
	}
	oracleParsers.Store(key, p)
	return p
}

// stockMetrics is what stock kafka_consumer hands to the agent.
func stockMetrics(t testing.TB, cfg Config, doc []byte, meta *Meta) ([]telegraf.Metric, error) {
	ms, err := oracleParser(t, cfg).Parse(doc)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if cfg.TimeKey == "" {
			m.SetTime(meta.Now) // the parser took time.Now() itself
		}
		if meta.Name != "" {
			m.SetName(meta.Name)
		}
		for _, tag := range meta.Tags {
			m.AddTag(tag.Key, tag.Value)
		}
		if !meta.Time.IsZero() {
			m.SetTime(meta.Time)
		}
	}
	return ms, nil
}

// deterministicStock replaces the stock result of a document with colliding
// flattened keys by the stock result of its last-wins rewrite (see
// collide_test.go); for other documents it checks the rewrite is neutral.
func deterministicStock(t testing.TB, v variant, doc []byte, meta *Meta, want []telegraf.Metric) ([]telegraf.Metric, error) {
	queried, ok := applyQuery(doc, v.cfg.Query)
	if !ok || len(want) == 0 {
		return want, nil
	}
	collide := hasCollisions(queried)
	if !collide && len(doc) > 4096 {
		return want, nil // keep big documents cheap
	}
	flat, err := rewriteLastWins(queried)
	if err != nil {
		t.Fatalf("%s: rewrite of %q: %v", v.name, queried, err)
	}
	cfg := v.cfg
	cfg.Query = ""
	again, err := stockMetrics(t, cfg, flat, meta)
	if err != nil {
		t.Fatalf("%s: stock rejects rewrite %q of %q: %v", v.name, flat, doc, err)
	}
	if !collide {
		// Self-check of the rewrite: same metrics when nothing collides.
		if dump(again) != dump(want) {
			t.Fatalf("%s: rewrite %q of %q changes the stock result:\n%s\n%s", v.name, flat, doc, dump(want), dump(again))
		}
		return want, nil
	}
	return again, nil
}

func serialize(m telegraf.Metric) ([]byte, error) {
	s := &serinflux.Serializer{SortFields: true}
	if err := s.Init(); err != nil {
		return nil, err
	}
	return s.Serialize(m)
}

// readLines parses line protocol as inputs.execd does (streaming parser).
func readLines(data []byte) ([]telegraf.Metric, error) {
	p := influx.NewStreamParser(bytes.NewReader(data))
	var out []telegraf.Metric
	for {
		m, err := p.Next()
		if errors.Is(err, influx.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

// roundTrips reports whether a serialized line survives Telegraf's parser
// and serializer unchanged. If it does, the line itself would have been a
// faithful representation, so we must never drop such a metric or field.
func roundTrips(line []byte) bool {
	ms, err := readLines(line)
	if err != nil || len(ms) != 1 {
		return false
	}
	s := &serinflux.Serializer{} // keeps the parsed field order
	if err := s.Init(); err != nil {
		panic(err)
	}
	again, err := s.Serialize(ms[0])
	return err == nil && bytes.Equal(again, line)
}

// checkSimulator compares our model of Telegraf's parser (stock.go) with
// the real one on a line.
func checkSimulator(t testing.TB, line []byte) {
	t.Helper()
	if got, want := telegrafRoundTrips(line), roundTrips(line); got != want {
		ms, err := readLines(line)
		t.Fatalf("parser model says round trip %v, Telegraf says %v for %q (parsed %v, %v)", got, want, line, dump(ms), err)
	}
}

func withFields(m telegraf.Metric, keep func(string) bool) telegraf.Metric {
	c := metric.FromMetric(m)
	for _, f := range m.FieldList() {
		if !keep(f.Key) {
			c.RemoveField(f.Key)
		}
	}
	return c
}

// fieldLines serializes each field alone: an order-free view of a metric.
func fieldLines(m telegraf.Metric) []string {
	var out []string
	for _, f := range m.FieldList() {
		key := f.Key
		b, err := serialize(withFields(m, func(k string) bool { return k == key }))
		if err == nil {
			out = append(out, string(b))
		}
	}
	sort.Strings(out)
	return out
}

type drop struct {
	metric int
	field  string
	whole  bool
}

// checkParity runs doc through both paths and reports any difference.
func checkParity(t testing.TB, c *Converter, v variant, doc []byte) {
	t.Helper()
	meta := v.meta
	meta.Now = time.Now()
	var drops []drop
	c.onDrop = func(metric int, fieldKey []byte) {
		drops = append(drops, drop{metric: metric, field: string(fieldKey), whole: fieldKey == nil})
	}
	stockLines := map[int]bool{}
	c.onStock = func(metric int) { stockLines[metric] = true }
	defer func() { c.onDrop, c.onStock = nil, nil }()

	want, wantErr := stockMetrics(t, v.cfg, doc, &meta)
	if wantErr == nil {
		want, wantErr = deterministicStock(t, v, doc, &meta, want)
	}
	prefix := []byte("prefix 1\n")
	out, lines, err := c.Append(append([]byte(nil), prefix...), doc, &meta)
	if !bytes.HasPrefix(out, prefix) {
		t.Fatalf("%s: dst prefix clobbered: %q", v.name, out)
	}
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%s: doc %q: error mismatch: ours %v, telegraf %v", v.name, doc, err, wantErr)
	}
	if err != nil {
		if len(out) != len(prefix) {
			t.Fatalf("%s: error but dst grew: %q", v.name, out)
		}
		return
	}
	ours := out[len(prefix):]
	if len(ours) > 0 && ours[len(ours)-1] != '\n' {
		t.Fatalf("%s: output does not end in a newline: %q", v.name, ours)
	}
	got, perr := readLines(ours)
	if perr != nil {
		t.Fatalf("%s: doc %q: Telegraf's parser rejects our output %q: %v", v.name, doc, ours, perr)
	}
	if len(got) != lines {
		t.Fatalf("%s: Append reported %d lines, parser read %d from %q", v.name, lines, len(got), ours)
	}
	if d := c.Dropped(); d.Metrics+d.Fields != len(drops) {
		t.Fatalf("%s: Dropped() %+v but %d drops reported", v.name, d, len(drops))
	}

	// What stock Telegraf would have written, minus what we report dropped.
	var expect []telegraf.Metric
	var expectStock []bool // we wrote the serializer's own bytes
	for i, m := range want {
		dropped := map[string]bool{}
		whole := false
		for _, d := range drops {
			if d.metric != i {
				continue
			}
			if d.whole {
				whole = true
			} else {
				dropped[d.field] = true
			}
		}
		stock, serr := serialize(m)
		if serr == nil {
			checkSimulator(t, stock)
		}
		if whole {
			if serr == nil && roundTrips(stock) {
				t.Fatalf("%s: doc %q: dropped metric %d although its stock line %q round-trips", v.name, doc, i, stock)
			}
			continue
		}
		for key := range dropped {
			single, err := serialize(withFields(m, func(k string) bool { return k == key }))
			if err != nil {
				t.Fatalf("%s: dropped field %q that the serializer would not write", v.name, key)
			}
			if roundTrips(single) && !escapedKeyRepeats(m, key) {
				t.Fatalf("%s: doc %q: dropped field %q although %q round-trips", v.name, doc, key, single)
			}
		}
		if serr != nil {
			continue // the serializer skips it too (no name, no fields)
		}
		if len(dropped) > 0 {
			m = withFields(m, func(k string) bool { return !dropped[k] })
			if _, err := serialize(m); err != nil {
				continue
			}
		}
		expect = append(expect, m)
		expectStock = append(expectStock, stockLines[i])
	}
	if len(expect) != len(got) {
		t.Fatalf("%s: doc %q: want %d lines, got %d:\nwant %s\ngot  %q", v.name, doc, len(expect), len(got), dump(expect), ours)
	}
	var ourLines [][]byte
	if len(stockLines) > 0 {
		ourLines = splitLines(ours, len(got))
	}
	for i := range expect {
		if expectStock[i] {
			// Our line must be the stock line itself and must come out of
			// Telegraf's parser and serializer unchanged.
			stock, _ := serialize(expect[i])
			if !bytes.Equal(ourLines[i], stock) || !roundTrips(ourLines[i]) {
				t.Fatalf("%s: doc %q: fallback line %q, stock %q, round trip %v", v.name, doc, ourLines[i], stock, roundTrips(ourLines[i]))
			}
			continue
		}
		compareMetric(t, v.name, doc, expect[i], got[i], ours)
	}
}

// splitLines cuts our output into its n lines; a line ends at a newline
// that Telegraf's parser treats as the end of a metric, so re-read prefixes.
func splitLines(out []byte, n int) [][]byte {
	var lines [][]byte
	start := 0
	for i := 0; i < len(out) && len(lines) < n; i++ {
		if out[i] != '\n' {
			continue
		}
		if ms, err := readLines(out[start : i+1]); err == nil && len(ms) == 1 {
			lines = append(lines, out[start:i+1])
			start = i + 1
		}
	}
	return lines
}

func escapedKeyRepeats(m telegraf.Metric, key string) bool {
	esc := escapeKey(key)
	for _, f := range m.FieldList() {
		if f.Key != key && escapeKey(f.Key) == esc {
			return true
		}
	}
	return false
}

var keyEscaper = strings.NewReplacer("\t", `\t`, "\n", `\n`, "\f", `\f`, "\r", `\r`, ",", `\,`, " ", `\ `, "=", `\=`)

func escapeKey(s string) string { return keyEscaper.Replace(s) }

func dump(ms []telegraf.Metric) string {
	var b strings.Builder
	for _, m := range ms {
		s, err := serialize(m)
		fmt.Fprintf(&b, "%q %v; ", s, err)
	}
	return b.String()
}

// compareMetric requires the bytes CnosDB would receive to be equal, and the
// metric itself to be equal where line protocol can carry it unchanged.
func compareMetric(t testing.TB, name string, doc []byte, want, got telegraf.Metric, ours []byte) {
	t.Helper()
	wb, werr := serialize(want)
	gb, gerr := serialize(got)
	if werr != nil || gerr != nil {
		t.Fatalf("%s: serialize: %v / %v", name, werr, gerr)
	}
	if !bytes.Equal(wb, gb) {
		// Sorting by a key that holds \t etc. may order differently once it
		// reads back escaped; stock Telegraf's field order is random anyway.
		wf, gf := fieldLines(want), fieldLines(got)
		if !anyFieldKeyHas(want, "\t\n\f\r") || strings.Join(wf, "") != strings.Join(gf, "") {
			t.Fatalf("%s: doc %q:\nstock path: %q\nour path:   %q\nour line:   %q", name, doc, wb, gb, ours)
		}
	}
	if !representable(want) {
		return
	}
	if want.Name() != got.Name() {
		t.Fatalf("%s: name %q != %q", name, got.Name(), want.Name())
	}
	if fmt.Sprint(want.Tags()) != fmt.Sprint(got.Tags()) {
		t.Fatalf("%s: tags %q != %q", name, got.Tags(), want.Tags())
	}
	wfs, gfs := want.Fields(), got.Fields()
	if len(wfs) != len(gfs) {
		t.Fatalf("%s: fields %v != %v", name, gfs, wfs)
	}
	for k, wv := range wfs {
		gv, ok := gfs[k]
		if !ok || !sameValue(wv, gv) {
			t.Fatalf("%s: field %q: %#v != %#v", name, k, gv, wv)
		}
	}
	if want.Time().UnixNano() != got.Time().UnixNano() {
		t.Fatalf("%s: time %d != %d", name, got.Time().UnixNano(), want.Time().UnixNano())
	}
}

func sameValue(a, b any) bool {
	af, aok := a.(float64)
	bf, bok := b.(float64)
	if aok && bok {
		return math.Float64bits(af) == math.Float64bits(bf)
	}
	return a == b
}

func anyFieldKeyHas(m telegraf.Metric, chars string) bool {
	for _, f := range m.FieldList() {
		if strings.ContainsAny(f.Key, chars) {
			return true
		}
	}
	return false
}

// representable: no string the round trip changes (control characters
// travel as escapes, tags lose trailing backslashes, empty ones vanish).
func representable(m telegraf.Metric) bool {
	bad := func(s string) bool { return s == "" || strings.ContainsAny(s, "\t\n\v\f\r\\") }
	if bad(m.Name()) {
		return false
	}
	for _, tag := range m.TagList() {
		if bad(tag.Key) || bad(tag.Value) {
			return false
		}
	}
	for _, f := range m.FieldList() {
		if bad(f.Key) {
			return false
		}
	}
	return true
}

func mustNew(t testing.TB, cfg Config) *Converter {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return c
}

func loadCorpus(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "corpus", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	docs := make(map[string][]byte, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs[strings.TrimSuffix(filepath.Base(f), ".json")] = b
	}
	return docs
}

// generatedDocs are corpus entries too large or regular to keep as files.
func generatedDocs() map[string][]byte {
	deep := func(n int) []byte {
		return []byte(`{"a":` + strings.Repeat("[", n-1) + "1" + strings.Repeat("]", n-1) + "}")
	}
	deepArray := func(n int) []byte {
		return []byte(`[{"a":` + strings.Repeat("[", n-2) + strings.Repeat("]", n-2) + "}]")
	}
	long := strings.Repeat("x\"\\\n\t\u00e9", 200000)
	return map[string][]byte{
		"depth-10000":       deep(10000),
		"depth-10001":       deep(10001),
		"array-depth-10000": deepArray(10000),
		"array-depth-10001": deepArray(10001),
		"long-string":       []byte(`{"s":"` + strings.NewReplacer("\"", `\"`, "\\", `\\`, "\n", `\n`, "\t", `\t`).Replace(long) + `","n":1,"host":"` + strings.Repeat("h", 100000) + `"}`),
		"many-fields":       manyFields(5000),
	}
}

func manyFields(n int) []byte {
	var b strings.Builder
	b.WriteString("{")
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"f%d_x":%d.%d`, i%1000, i, i%7)
	}
	b.WriteString("}")
	return []byte(b.String())
}

func TestDifferential(t *testing.T) {
	docs := loadCorpus(t)
	for name, doc := range generatedDocs() {
		docs[name] = doc
	}
	names := make([]string, 0, len(docs))
	for name := range docs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, v := range variants {
		c := mustNew(t, v.cfg)
		t.Run(v.name, func(t *testing.T) {
			for _, name := range names {
				if testing.Short() && len(docs[name]) > 100000 {
					continue
				}
				checkParity(&namedTB{TB: t, doc: name}, c, v, docs[name])
			}
		})
	}
}

// namedTB prefixes failures with the corpus entry's name.
type namedTB struct {
	testing.TB
	doc string
}

func (n *namedTB) Fatalf(format string, args ...any) {
	n.TB.Helper()
	n.TB.Fatalf("[%s] "+format, append([]any{n.doc}, args...)...)
}
