package jsonlp

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/influxdata/telegraf"
	jsonparser "github.com/influxdata/telegraf/plugins/parsers/json"
	serinflux "github.com/influxdata/telegraf/plugins/serializers/influx"
)

var ratio = flag.Bool("jsonlp.ratio", false, "run TestSpeedRatio (ours vs Telegraf's json parser + influx serializer)")

var benchDocs = []string{"guide", "nested-2k"}

func benchDoc(tb testing.TB, name string) []byte {
	tb.Helper()
	path := filepath.Join("testdata", name+".json")
	if name == "guide" {
		path = filepath.Join("testdata", "corpus", "guide.json")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func benchOurs(b *testing.B, doc []byte) {
	c := mustNew(b, baseConfig())
	meta := &Meta{Now: testNow}
	dst, _, err := c.Append(nil, doc, meta)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dst, _, _ = c.Append(dst[:0], doc, meta)
	}
}

// benchTelegraf is the stock path's own work: json parser, then the influx
// serializer (as outputs.http with use_batch_format does).
func benchTelegraf(b *testing.B, doc []byte) {
	p := &jsonparser.Parser{MetricName: "kafka_consumer", Strict: true}
	if err := p.Init(); err != nil {
		b.Fatal(err)
	}
	s := &serinflux.Serializer{}
	if err := s.Init(); err != nil {
		b.Fatal(err)
	}
	var ms []telegraf.Metric
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var err error
		ms, err = p.Parse(doc)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.SerializeBatch(ms); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppend(b *testing.B) {
	for _, name := range benchDocs {
		doc := benchDoc(b, name)
		b.Run(name, func(b *testing.B) { benchOurs(b, doc) })
	}
}

func BenchmarkTelegraf(b *testing.B) {
	for _, name := range benchDocs {
		doc := benchDoc(b, name)
		b.Run(name, func(b *testing.B) { benchTelegraf(b, doc) })
	}
}

// TestSpeedRatio prints ours against Telegraf's json parser + influx
// serializer; it asserts nothing. Run with -jsonlp.ratio.
func TestSpeedRatio(t *testing.T) {
	if !*ratio {
		t.Skip("run with -jsonlp.ratio")
	}
	for _, name := range benchDocs {
		doc := benchDoc(t, name)
		ours := testing.Benchmark(func(b *testing.B) { benchOurs(b, doc) })
		stock := testing.Benchmark(func(b *testing.B) { benchTelegraf(b, doc) })
		t.Logf("%-10s %5d B  ours %8.0f ns/msg %3d allocs  telegraf %8.0f ns/msg %4d allocs  ratio %.1fx",
			name, len(doc), float64(ours.NsPerOp()), ours.AllocsPerOp(),
			float64(stock.NsPerOp()), stock.AllocsPerOp(), float64(stock.NsPerOp())/float64(ours.NsPerOp()))
	}
}
