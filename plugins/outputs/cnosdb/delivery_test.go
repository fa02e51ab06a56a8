package cnosdb

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbtest"
	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/delivery"
)

// fakeInput listens like the Kafka input does and records the events.
type fakeInput struct {
	t      *testing.T
	ln     *delivery.Listener
	mu     sync.Mutex
	events []delivery.Event
}

func listen(t *testing.T) *fakeInput {
	t.Helper()
	in := &fakeInput{t: t}
	ln, err := delivery.Listen(t.TempDir(), func(e delivery.Event) {
		in.mu.Lock()
		in.events = append(in.events, e)
		in.mu.Unlock()
	}, func(err error) { t.Errorf("bad event: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	in.ln = ln
	return in
}

// marker is a marker line as Telegraf would pass it on: a host tag added,
// fields reordered, a timestamp.
func (in *fakeInput) marker(seq, lines int) string {
	return in.markerOf(delivery.Marker{Seq: uint64(seq), Lines: uint64(lines)})
}

// holdMarker is a marker of an input far from its window's end.
func (in *fakeInput) holdMarker(seq, lines int) string {
	return in.markerOf(delivery.Marker{Seq: uint64(seq), Lines: uint64(lines), Hold: true})
}

func (in *fakeInput) markerOf(m delivery.Marker) string {
	m.Socket = in.ln.Path()
	line := string(delivery.AppendMarker(nil, m))
	fields := strings.Split(strings.TrimSuffix(strings.SplitN(line, " ", 2)[1], "\n"), ",")
	slices.Reverse(fields)
	return delivery.Measurement + ",host=h " + strings.Join(fields, ",") + " 1700000000000000000\n"
}

func (in *fakeInput) of(kind delivery.Kind) []delivery.Event {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []delivery.Event
	for _, e := range in.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// waitBusy waits for a heartbeat saying the output holds lines up to
// marker seq.
func (in *fakeInput) waitBusy(seq uint64) {
	in.t.Helper()
	waitFor(in.t, "a busy heartbeat", func() bool {
		for _, e := range in.of(delivery.Alive) {
			if e.Busy && e.Seq == seq {
				return true
			}
		}
		return false
	})
}

func acked(events []delivery.Event) []int {
	out := make([]int, len(events))
	for i, e := range events {
		out[i] = int(e.Seq)
	}
	return out
}

// Markers are acknowledged in order, each once every line before it is
// settled, through retries and batch splits; none is stored.
func TestMarkersAcknowledgedInOrder(t *testing.T) {
	s := startServer(t, cnosdbtest.Options{})
	in := listen(t)
	c, _ := newPlugin(t, []string{s.URL()}, "batch_size = 7")
	s.Overload(2)
	var input strings.Builder
	for i := 0; i < 7; i++ {
		input.WriteString(seedLines("m", 10, 10*i))
		input.WriteString(in.marker(i+1, 10))
	}
	stats := runAll(t, c, input.String())
	wantStored(t, s, "", "m", seq(0, 70))
	if got := s.Measurements("", ""); len(got) != 1 {
		t.Fatalf("measurements %v: a marker was stored", got)
	}
	if stats.LinesRead.Load() != 70 {
		t.Fatalf("lines read %d: markers are not lines", stats.LinesRead.Load())
	}
	waitFor(t, "7 acknowledgements", func() bool { return len(in.of(delivery.Ack)) >= 7 })
	if got := acked(in.of(delivery.Ack)); !sameInts(got, seq(1, 8)) {
		t.Fatalf("acknowledged %v", got)
	}
	if lost := in.of(delivery.Lost); len(lost) > 0 {
		t.Fatalf("lost %v", lost)
	}
}

// A marker that came after fewer lines than its input wrote is reported
// lost at once, and still acknowledged once settled (the input decides
// whether to replay); the lines that came land.
func TestMarkerAfterMissingLines(t *testing.T) {
	s := startServer(t, cnosdbtest.Options{})
	in := listen(t)
	c, _ := newPlugin(t, []string{s.URL()}, "")
	input := in.marker(1, 0) + seedLines("m", 5, 0) + in.marker(2, 8) + seedLines("m", 3, 5) + in.marker(3, 3)
	runAll(t, c, input)
	wantStored(t, s, "", "m", seq(0, 8))
	waitFor(t, "3 acknowledgements", func() bool { return len(in.of(delivery.Ack)) >= 3 })
	lost := in.of(delivery.Lost)
	if len(lost) != 1 || lost[0] != (delivery.Event{Kind: delivery.Lost, Seq: 2, Expected: 8, Got: 5}) {
		t.Fatalf("lost %+v", lost)
	}
	if got := acked(in.of(delivery.Ack)); !sameInts(got, []int{1, 2, 3}) {
		t.Fatalf("acknowledged %v", got)
	}
}

// A marker seals its batch as soon as stdin has nothing more, whatever
// batch_size and flush_interval say: the input is waiting on it.
func TestMarkerSealsWhenStdinIsDrained(t *testing.T) {
	s := startServer(t, cnosdbtest.Options{})
	in := listen(t)
	c, _ := newPlugin(t, []string{s.URL()}, "batch_size = 100000\nflush_interval = \"1h\"")
	r := start(t, c)
	r.write(seedLines("m", 5, 0) + in.marker(1, 5))
	waitFor(t, "the acknowledgement", func() bool { return len(in.of(delivery.Ack)) == 1 })
	wantStored(t, s, "", "m", seq(0, 5))
	r.finish()
}

// A marker whose input has room to spare (Hold) rides in its batch while
// lines keep coming, until the batch is full; once stdin has been quiet
// for holdQuiet it goes (flush_interval is an hour here). One without
// Hold seals at the next pause, taking a held one along.
func TestHeldMarkerWaitsForItsBatch(t *testing.T) {
	s := startServer(t, cnosdbtest.Options{})
	in := listen(t)
	c, _ := newPlugin(t, []string{s.URL()}, "batch_size = 10\nflush_interval = \"1h\"")
	r := start(t, c)
	r.write(seedLines("m", 5, 0) + in.holdMarker(1, 5) + seedLines("m", 5, 5))
	waitFor(t, "the acknowledgement of the full batch", func() bool { return len(in.of(delivery.Ack)) == 1 })
	wantStored(t, s, "", "m", seq(0, 10))
	if writes := s.Stats().WriteRequests; writes != 1 {
		t.Fatalf("%d writes: the held marker sealed its batch before it filled", writes)
	}

	r.write(seedLines("m", 3, 10) + in.holdMarker(2, 3))
	waitFor(t, "the acknowledgement once stdin is quiet", func() bool { return len(in.of(delivery.Ack)) == 2 })
	wantStored(t, s, "", "m", seq(0, 13))

	r.write(seedLines("m", 2, 13) + in.holdMarker(3, 2) + seedLines("m", 2, 15) + in.marker(4, 2))
	waitFor(t, "both acknowledgements", func() bool { return len(in.of(delivery.Ack)) == 4 })
	if got := acked(in.of(delivery.Ack)); !slices.Equal(got, []int{1, 2, 3, 4}) {
		t.Fatalf("acknowledged %v", got)
	}
	r.finish()
	wantStored(t, s, "", "m", seq(0, 17))
}

// A held marker waits no longer than flush_interval, even in a batch of
// no lines (every message before it was bad).
func TestHeldMarkerSealedByFlushInterval(t *testing.T) {
	s := startServer(t, cnosdbtest.Options{})
	in := listen(t)
	c, _ := newPlugin(t, []string{s.URL()}, "batch_size = 100000\nflush_interval = \"100ms\"")
	r := start(t, c)
	r.write(in.holdMarker(1, 0))
	waitFor(t, "the acknowledgement of an empty batch", func() bool { return len(in.of(delivery.Ack)) == 1 })
	r.write(seedLines("m", 3, 0) + in.holdMarker(2, 3))
	waitFor(t, "the acknowledgement", func() bool { return len(in.of(delivery.Ack)) == 2 })
	wantStored(t, s, "", "m", seq(0, 3))
	r.finish()
}

// While CnosDB is down the output tells each input it is alive and busy,
// so the input does not take silence for a loss; once CnosDB is back the
// marker is acknowledged.
func TestHeartbeatWhileCnosDBDown(t *testing.T) {
	s := startServer(t, cnosdbtest.Options{})
	s.Down()
	in := listen(t)
	c, _ := newPlugin(t, []string{s.URL()}, "")
	r := start(t, c)
	r.write(seedLines("m", 5, 0) + in.marker(1, 5))
	in.waitBusy(1)
	if len(in.of(delivery.Ack)) != 0 {
		t.Fatal("acknowledged while CnosDB is down")
	}
	s.Up()
	waitFor(t, "the acknowledgement", func() bool { return len(in.of(delivery.Ack)) == 1 })
	r.finish()
	wantStored(t, s, "", "m", seq(0, 5))
}

// A marker renamed by a modifier on Telegraf's [[inputs.execd]] block
// (name_prefix, or name_override, which leaves only its fields to know it
// by) is still a marker; data that merely looks like one is data.
func TestRenamedMarkers(t *testing.T) {
	s := startServer(t, cnosdbtest.Options{})
	in := listen(t)
	c, _ := newPlugin(t, []string{s.URL()}, "")
	overridden := strings.Replace(in.marker(2, 2), delivery.Measurement, "m", 1)
	overridden = strings.Replace(overridden, " socket=", " seq=2i,lines=2i,socket=", 1)
	overridden = strings.Replace(overridden, ",lines=2i,seq=2i 1700", " 1700", 1)
	input := "x_" + in.marker(1, 0) + seedLines("m", 2, 0) + overridden +
		"x_kafka_json_checkpoint,host=h pressure=2.5 " + fmt.Sprint(base+2*int64(time.Second)) + "\n"
	runAll(t, c, input)
	waitFor(t, "2 acknowledgements", func() bool { return len(in.of(delivery.Ack)) >= 2 })
	wantStored(t, s, "", "m", seq(0, 2))
	wantStored(t, s, "", "x_kafka_json_checkpoint", []int{2})
}

// A marker naming a socket nobody listens on (its input is gone) costs
// nothing but a debug line: the data still lands.
func TestMarkerForVanishedInput(t *testing.T) {
	s := startServer(t, cnosdbtest.Options{})
	c, _ := newPlugin(t, []string{s.URL()}, "")
	gone := string(delivery.AppendMarker(nil, delivery.Marker{Seq: 1, Lines: 5, Socket: t.TempDir() + "/ack.sock"}))
	runAll(t, c, seedLines("m", 5, 0)+gone+seedLines("m", 5, 5))
	wantStored(t, s, "", "m", seq(0, 10))
	if got := s.Measurements("", ""); len(got) != 1 {
		t.Fatalf("measurements %v", got)
	}
}

// A quiet-timer callback that waited for the lock while a read armed the
// timer again must leave the batch to that new arming: stdin has been quiet
// only since that read.
func TestQuietTimeoutCountsFromTheLastArming(t *testing.T) {
	c := &CnosDB{MaxBufferedBytes: 1 << 20, BatchSizeBytes: 1 << 16, BatchSize: 10}
	p := newPipeline(c, &Stats{}, nil)
	p.cur = &batch{markers: []delivery.Marker{{Seq: 1, Hold: true}}}
	p.quietReads, p.quietArmed = p.reads, time.Now()
	p.quietTimeout()
	if p.markerPending {
		t.Fatal("a stale callback made the held marker pending right after stdin was read")
	}
	p.quietArmed = time.Now().Add(-holdQuiet)
	p.quietTimeout()
	if !p.markerPending {
		t.Fatal("the held marker is not pending after stdin was quiet for holdQuiet")
	}
}
