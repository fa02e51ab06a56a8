package cnosdb

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/execd"
)

// fuzzEntry is one line-protocol entry as line-protocol/v2's decoder reads
// it: everything but the time rendered, and the time if the line has one.
type fuzzEntry struct {
	body    string
	hasTime bool
	time    int64
}

// fuzzDecode lists the entries the decoder accepts in input, in order;
// invalid entries are left out, as the output leaves them out.
func fuzzDecode(input []byte) []fuzzEntry {
	var out []fuzzEntry
	d := lineprotocol.NewDecoderWithBytes(input)
	for d.Next() {
		if e, err := fuzzDecodeOne(d); err == nil {
			out = append(out, e)
		}
	}
	return out
}

// markerMeasurement is the measurement of issue 9's checkpoint markers.
var markerMeasurement = strconv.Quote("kafka_json_checkpoint")

func withoutMarkers(entries []fuzzEntry) []fuzzEntry {
	var out []fuzzEntry
	for _, e := range entries {
		if name, _, _ := strings.Cut(e.body, " "); name != markerMeasurement {
			out = append(out, e)
		}
	}
	return out
}

// fuzzDecodeAll is fuzzDecode for a body that must be valid throughout.
func fuzzDecodeAll(body []byte) ([]fuzzEntry, error) {
	var out []fuzzEntry
	d := lineprotocol.NewDecoderWithBytes(body)
	for d.Next() {
		e, err := fuzzDecodeOne(d)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

func fuzzDecodeOne(d *lineprotocol.Decoder) (fuzzEntry, error) {
	var sb strings.Builder
	m, err := d.Measurement()
	if err != nil {
		return fuzzEntry{}, err
	}
	sb.WriteString(strconv.Quote(string(m)))
	for {
		k, v, err := d.NextTag()
		if err != nil {
			return fuzzEntry{}, err
		}
		if k == nil {
			break
		}
		sb.WriteString(" tag:" + strconv.Quote(string(k)) + "=" + strconv.Quote(string(v)))
	}
	for {
		k, v, err := d.NextField()
		if err != nil {
			return fuzzEntry{}, err
		}
		if k == nil {
			break
		}
		sb.WriteString(" field:" + strconv.Quote(string(k)) + "=" + v.Kind().String() + ":" + strconv.Quote(v.String()))
	}
	e := fuzzEntry{body: sb.String()}
	ts, err := d.TimeBytes()
	if err != nil {
		return fuzzEntry{}, err
	}
	if len(ts) > 0 {
		if e.time, err = strconv.ParseInt(string(ts), 10, 64); err != nil {
			return fuzzEntry{}, err
		}
		e.hasTime = true
	}
	return e, nil
}

// fuzzCaptureServer answers every write with 200 and keeps the bodies.
type fuzzCaptureServer struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (s *fuzzCaptureServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.URL.Path == "/api/v1/write" {
		s.mu.Lock()
		s.bodies = append(s.bodies, body)
		s.mu.Unlock()
	}
	w.WriteHeader(http.StatusOK)
}

func (s *fuzzCaptureServer) take() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bodies
	s.bodies = nil
	return b
}

// fuzzChunkReader hands out its input step bytes per Read, as a pipe might.
type fuzzChunkReader struct {
	data []byte
	step int
}

func (r *fuzzChunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.step, len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

var fuzzPrecisions = []struct {
	name    string
	divisor int64
}{{"ns", 1}, {"us", 1000}, {"ms", 1000000}}

// FuzzReaderWritesDecodableLines drives the whole reader (stdin in pieces,
// validation, batching, timestamp rewriting) into an HTTP server, with
// arbitrary bytes on stdin. It must not panic, and what reaches CnosDB must
// be exactly the entries line-protocol/v2's decoder accepts in the input,
// in order, each a complete line with a timestamp (the input's, divided for
// the precision; or the time it was read).
//
//	go test -run '^$' -fuzz FuzzReaderWritesDecodableLines -fuzztime 30s ./plugins/outputs/cnosdb
func FuzzReaderWritesDecodableLines(f *testing.F) {
	for _, s := range []string{
		"kafka_consumer,host=h pressure=5.1,temperature=23.4,visibility=80.2 1700000000000000000\n",
		"m f=1\nm,t=a f=2i 3\n\n# comment\nm f=\"a\nb\" -1500\n",
		"m f=1 123 x\nm f=1\r\nbad line\nm,t=1 f=1 99999999999999999999\n",
		"m f=\"unterminated\nm f=1 5\n",
	} {
		f.Add([]byte(s), uint8(7), uint8(0), uint8(2))
		f.Add([]byte(s), uint8(1), uint8(2), uint8(1))
	}
	srv := &fuzzCaptureServer{}
	hs := httptest.NewServer(srv)
	defer hs.Close()

	f.Fuzz(func(t *testing.T, input []byte, step, precision, batchSize uint8) {
		prec := fuzzPrecisions[int(precision)%len(fuzzPrecisions)]
		c := New()
		c.Log.SetOutput(io.Discard)
		config := fmt.Sprintf("[[outputs.cnosdb]]\nurls = [%q]\nprecision = %q\nbatch_size = %d\nbatch_size_bytes = \"1KiB\"\nmax_buffered_bytes = \"8KiB\"\nflush_interval = \"1h\"\nretry_initial_interval = \"1ms\"\n",
			hs.URL, prec.name, int(batchSize)%8+1)
		if err := execd.DecodeConfig(config, "outputs", "cnosdb", c); err != nil {
			t.Fatal(err)
		}
		if err := c.Init(); err != nil {
			t.Fatal(err)
		}
		srv.take()
		before := time.Now().UnixNano()
		var stats Stats
		if err := c.Run(context.Background(), &fuzzChunkReader{data: input, step: int(step)%64 + 1}, &stats); err != nil {
			t.Fatal(err)
		}
		after := time.Now().UnixNano()

		var got []fuzzEntry
		for _, body := range srv.take() {
			if len(body) == 0 || body[len(body)-1] != '\n' {
				t.Fatalf("body does not end in a newline: %q", body)
			}
			entries, err := fuzzDecodeAll(body)
			if err != nil {
				t.Fatalf("input %q: sent body %q holds an entry the decoder refuses: %v", input, body, err)
			}
			got = append(got, entries...)
		}
		sent := len(got)
		// Checkpoint markers (issue 9) are the output's to consume, never
		// CnosDB's: whether they are sent is not this target's question.
		got, want := withoutMarkers(got), withoutMarkers(fuzzDecode(input))
		if len(got) != len(want) {
			t.Fatalf("input %q: %d entries sent, the decoder accepts %d", input, len(got), len(want))
		}
		for i := range want {
			if got[i].body != want[i].body || !got[i].hasTime {
				t.Fatalf("input %q entry %d: sent %+v, want %+v with a time", input, i, got[i], want[i])
			}
			if want[i].hasTime {
				q := want[i].time / prec.divisor
				if want[i].time%prec.divisor < 0 {
					q--
				}
				if got[i].time != q {
					t.Fatalf("input %q entry %d: time %d, want %d (precision %s)", input, i, got[i].time, q, prec.name)
				}
			} else if got[i].time < before/prec.divisor || got[i].time > after/prec.divisor {
				t.Fatalf("input %q entry %d: time %d is not the time it was read", input, i, got[i].time)
			}
		}
		if w := stats.LinesWritten.Load(); w != int64(sent) {
			t.Fatalf("input %q: %d lines counted as written, %d sent", input, w, sent)
		}
	})
}
