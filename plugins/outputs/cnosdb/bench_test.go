package cnosdb

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbtest"
)

// seedLine is the seed guide's line shape.
const seedLine = "kafka_consumer,host=h pressure=5.1,temperature=23.4,visibility=80.2 1700000000000000000\n"

// lineSource produces n seed-shaped lines with increasing timestamps,
// without holding them: the input is as large as asked, memory is not.
type lineSource struct {
	pool [][]byte // lines taken in turn, each ticked when it is next used
	next int
	line []byte
	left int
	off  int
}

func newLineSource(n int) *lineSource {
	return &lineSource{pool: [][]byte{[]byte(seedLine)}, left: n}
}

// newReadingsSource cycles through 1000 seed-shaped lines with readings
// drawn like the guide's sensors (tenths, fixed seed): as compressible as
// real data, where newLineSource's one line, repeated, is not.
func newReadingsSource(n int) *lineSource {
	rng := rand.New(rand.NewPCG(1, 2))
	pool := make([][]byte, 1000)
	for i := range pool {
		line := []byte("kafka_consumer,host=h ")
		for j, field := range []string{"pressure", "temperature", "visibility"} {
			if j > 0 {
				line = append(line, ',')
			}
			tenths := rng.IntN(1001)
			line = fmt.Appendf(line, "%s=%d.%d", field, tenths/10, tenths%10)
		}
		pool[i] = fmt.Appendf(line, " %d\n", 1700000000000000000+i)
	}
	return &lineSource{pool: pool, left: n}
}

func (s *lineSource) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if s.off == 0 {
			if s.left == 0 {
				break
			}
			s.left--
			s.line = s.pool[s.next]
			s.next = (s.next + 1) % len(s.pool)
			s.tick()
		}
		c := copy(p[n:], s.line[s.off:])
		n += c
		s.off += c
		if s.off == len(s.line) {
			s.off = 0
		}
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// tick adds one to the timestamp's digits in place.
func (s *lineSource) tick() {
	for i := len(s.line) - 2; i >= 0 && s.line[i] != ' '; i-- {
		if s.line[i] < '9' {
			s.line[i]++
			return
		}
		s.line[i] = '0'
	}
}

// acceptAll answers 200 after reading the body: it measures our side.
var acceptAll = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body) //nolint:errcheck // benchmark sink
})

// peakHeap samples the live heap until stop is closed.
func peakHeap(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-stop:
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// BenchmarkStdinToHTTP: seed lines through the whole plugin (read,
// validate, batch, POST) into an accept-all server. One op is one line.
func BenchmarkStdinToHTTP(b *testing.B) { benchmarkHTTP(b, acceptAll, "") }

// benchmarkHTTP runs the plugin, with extra TOML, into handler.
func benchmarkHTTP(b *testing.B, handler http.Handler, extra string) {
	benchmarkHTTPFrom(b, handler, extra, newLineSource)
}

// benchmarkHTTPFrom is benchmarkHTTP with the lines from source.
func benchmarkHTTPFrom(b *testing.B, handler http.Handler, extra string, source func(int) *lineSource) {
	srv := httptest.NewServer(handler)
	defer srv.Close()
	c, err := load(&testing.T{}, "[[outputs.cnosdb]]\nurls = [\""+srv.URL+"\"]\n"+extra)
	if err != nil {
		b.Fatal(err)
	}
	c.Log.SetOutput(io.Discard)
	benchmarkRun(b, c, source)
}

// BenchmarkStdinToHTTP230: the same into a server whose ping says 2.3.0:
// every batch is checked for tagless lines and field types (typeguard.go)
// before it goes.
func BenchmarkStdinToHTTP230(b *testing.B) {
	benchmarkHTTP(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == pingPath {
			io.WriteString(w, `{"status":"healthy","version":"2.3.0, revision x"}`) //nolint:errcheck // to a test client
			return
		}
		acceptAll.ServeHTTP(w, r)
	}), "")
}

// BenchmarkStdinToTestServer: the same into the CnosDB test server, which
// parses and stores every row (its cost dominates, and its memory grows
// with the rows it keeps).
func BenchmarkStdinToTestServer(b *testing.B) {
	s, err := cnosdbtest.Start(cnosdbtest.Options{Dialect: cnosdbtest.V24})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c, err := load(&testing.T{}, "[[outputs.cnosdb]]\nurls = [\""+s.URL()+"\"]\n")
	if err != nil {
		b.Fatal(err)
	}
	c.Log.SetOutput(io.Discard)
	benchmarkRun(b, c, newLineSource)
	if n := len(s.Rows("", "", "kafka_consumer")); n != b.N {
		b.Fatalf("%d rows stored, want %d", n, b.N)
	}
}

// BenchmarkStdinToHTTPEncoding: guide-like readings (newReadingsSource)
// sent as they are and with content_encoding = "gzip": what compressing
// each batch costs the output (the server's inflating is not counted),
// and in wire-B/line what it saves on the network.
func BenchmarkStdinToHTTPEncoding(b *testing.B) {
	for _, encoding := range []string{"identity", "gzip"} {
		b.Run(encoding, func(b *testing.B) {
			var wire atomic.Int64
			benchmarkHTTPFrom(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n, _ := io.Copy(io.Discard, r.Body)
				if r.URL.Path == writePath {
					wire.Add(n)
				}
			}), "content_encoding = \""+encoding+"\"\n", newReadingsSource)
			b.ReportMetric(float64(wire.Load())/float64(b.N), "wire-B/line")
		})
	}
}

// BenchmarkStdinToHTTPPrecisionMs: the same with every timestamp rewritten.
func BenchmarkStdinToHTTPPrecisionMs(b *testing.B) {
	benchmarkHTTP(b, acceptAll, "precision = \"ms\"\n")
}

func benchmarkRun(b *testing.B, c *CnosDB, source func(int) *lineSource) {
	b.SetBytes(int64(len(seedLine)))
	b.ReportAllocs()
	runtime.GC()
	stop := make(chan struct{})
	peak := peakHeap(stop)
	var stats Stats
	b.ResetTimer()
	start := time.Now()
	if err := c.Run(context.Background(), source(b.N), &stats); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	close(stop)
	if got := stats.LinesWritten.Load(); got != int64(b.N) {
		b.Fatalf("wrote %d of %d lines", got, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "lines/s")
	b.ReportMetric(float64(<-peak)/(1<<20), "peak-heap-MiB")
}

// BenchmarkValidate compares the scanner with line-protocol/v2's Decoder
// on seed lines, validation alone. One op is one line.
func BenchmarkValidate(b *testing.B) {
	const lines = 1000
	input, _ := io.ReadAll(newLineSource(lines))
	b.Run("scanner", func(b *testing.B) {
		b.SetBytes(int64(len(seedLine)))
		b.ReportAllocs()
		for done := 0; done < b.N; done += lines {
			var e entry
			n := 0
			for pos := 0; ; pos = e.end {
				if scanEntry(input, pos, true, &e) != scanEntryOK {
					break
				}
				n++
			}
			if n != lines {
				b.Fatal(n)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	})
	b.Run("decoder", func(b *testing.B) {
		b.SetBytes(int64(len(seedLine)))
		b.ReportAllocs()
		for done := 0; done < b.N; done += lines {
			d := lineprotocol.NewDecoderWithBytes(input)
			n := 0
			for d.Next() {
				if err := decoderValidate(d); err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n != lines {
				b.Fatal(n)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	})
}

// decoderValidate is the least work the Decoder needs to validate an entry.
func decoderValidate(d *lineprotocol.Decoder) error {
	if _, err := d.Measurement(); err != nil {
		return err
	}
	for {
		k, _, err := d.NextTag()
		if err != nil {
			return err
		}
		if k == nil {
			break
		}
	}
	for {
		k, _, err := d.NextField()
		if err != nil {
			return err
		}
		if k == nil {
			break
		}
	}
	_, err := d.Time(lineprotocol.Nanosecond, time.Time{})
	return err
}
