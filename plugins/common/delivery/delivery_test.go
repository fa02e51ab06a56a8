package delivery

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/plugins/parsers/influx"
	serinflux "github.com/influxdata/telegraf/plugins/serializers/influx"

	"github.com/kafka-cnosdb/telegraf-execd/internal/syncbuf"
	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/execd"
)

// waitLimit only turns a hang into a failure; no test waits for it to
// pass.
const waitLimit = 10 * time.Second

var markerSockets = []string{
	"/tmp/telegraf-kafka-json-1/ack.sock",
	"/tmp/with space/ack.sock",
	`/tmp/with "quotes"/ack.sock`,
	`/tmp/back\slash/ack.sock`,
	`/tmp/trailing\`,
	`/tmp/\"mixed\\"/a b,c=d`,
	"/tmp/ünïcødé/ack.sock",
	"relative.sock",
}

// throughTelegraf carries a marker line the way Telegraf does: its own
// parser and serializer, with a host tag added, fields in another order
// and, when floats is set, every integer turned into a float as a
// processor (converter, starlark) may do.
func throughTelegraf(t *testing.T, line []byte, floats, sortFields bool) []byte {
	t.Helper()
	p := influx.NewStreamParser(bytes.NewReader(line))
	m, err := p.Next()
	if err != nil {
		t.Fatalf("Telegraf cannot parse %q: %v", line, err)
	}
	m.AddTag("host", "telegraf host")
	m.AddTag("region", `eu,"west"`)
	if floats {
		for _, f := range m.FieldList() {
			if v, ok := f.Value.(int64); ok {
				m.AddField(f.Key, float64(v))
			}
		}
	}
	s := &serinflux.Serializer{SortFields: sortFields}
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	out, err := s.Serialize(m)
	if err != nil {
		t.Fatalf("Telegraf cannot serialize %v: %v", m, err)
	}
	return out
}

func TestMarkerRoundTrip(t *testing.T) {
	for _, socket := range markerSockets {
		for _, m := range []Marker{
			{Seq: 1, Lines: 0, Socket: socket},
			{Seq: 42, Lines: 1000, Socket: socket},
			{Seq: math.MaxInt64, Lines: math.MaxInt64, Socket: socket},
			{Seq: 43, Lines: 500, Socket: socket, Hold: true},
		} {
			line := AppendMarker(nil, m)
			if !bytes.HasSuffix(line, []byte("\n")) || bytes.Count(line, []byte("\n")) != 1 {
				t.Fatalf("%+v: not one line: %q", m, line)
			}
			got, err := ParseMarker(line)
			if err != nil || got != m {
				t.Fatalf("%q: parsed %+v, %v; want %+v", line, got, err, m)
			}
			// Appending keeps what was in dst.
			if prefixed := AppendMarker([]byte("data 1\n"), m); !bytes.Equal(prefixed, append([]byte("data 1\n"), line...)) {
				t.Fatalf("AppendMarker overwrote dst: %q", prefixed)
			}
		}
	}
}

func TestMarkerSurvivesTelegraf(t *testing.T) {
	for _, socket := range markerSockets {
		for _, m := range []Marker{{Seq: 7, Lines: 123, Socket: socket}, {Seq: 8, Lines: 5, Socket: socket, Hold: true}} {
			for _, floats := range []bool{false, true} {
				for _, sortFields := range []bool{false, true} {
					line := throughTelegraf(t, AppendMarker(nil, m), floats, sortFields)
					got, err := ParseMarker(line)
					if err != nil || got != m {
						t.Fatalf("%q (floats %v): parsed %+v, %v; want %+v", line, floats, got, err, m)
					}
				}
			}
		}
	}
}

func TestParseMarker(t *testing.T) {
	const sock = `socket="/s"`
	tests := []struct {
		name, line string
		want       Marker
		wantErr    string // empty: must parse
	}{
		{name: "as written", line: "kafka_json_checkpoint seq=3i,lines=5i," + sock + "\n", want: Marker{Seq: 3, Lines: 5, Socket: "/s"}},
		{name: "no newline", line: "kafka_json_checkpoint seq=3i,lines=5i," + sock, want: Marker{Seq: 3, Lines: 5, Socket: "/s"}},
		{name: "crlf", line: "kafka_json_checkpoint seq=3i,lines=5i," + sock + "\r\n", want: Marker{Seq: 3, Lines: 5, Socket: "/s"}},
		{name: "reordered with tags and timestamp", line: `kafka_json_checkpoint,host=a\ b,env=prod ` + sock + ",lines=5i,seq=3i 1700000000000000000\n", want: Marker{Seq: 3, Lines: 5, Socket: "/s"}},
		{name: "floats", line: "kafka_json_checkpoint seq=3,lines=5.0," + sock, want: Marker{Seq: 3, Lines: 5, Socket: "/s"}},
		{name: "float exponent", line: "kafka_json_checkpoint seq=3e3,lines=5," + sock, want: Marker{Seq: 3000, Lines: 5, Socket: "/s"}},
		{name: "unsigned", line: "kafka_json_checkpoint seq=3u,lines=5u," + sock, want: Marker{Seq: 3, Lines: 5, Socket: "/s"}},
		{name: "other fields ignored", line: "kafka_json_checkpoint seq=3i,extra=\"x\",lines=5i,flag=true," + sock, want: Marker{Seq: 3, Lines: 5, Socket: "/s"}},
		{name: "hold", line: "kafka_json_checkpoint seq=3i,lines=5i," + sock + ",hold=true", want: Marker{Seq: 3, Lines: 5, Socket: "/s", Hold: true}},
		{name: "hold first, short bool", line: "kafka_json_checkpoint hold=t,seq=3i,lines=5i," + sock, want: Marker{Seq: 3, Lines: 5, Socket: "/s", Hold: true}},
		{name: "hold false", line: "kafka_json_checkpoint seq=3i,lines=5i," + sock + ",hold=false", want: Marker{Seq: 3, Lines: 5, Socket: "/s"}},
		// Holding is an optimisation: anything odd is read as no.
		{name: "hold not a bool", line: "kafka_json_checkpoint seq=3i,lines=5i," + sock + ",hold=1i", want: Marker{Seq: 3, Lines: 5, Socket: "/s"}},
		{name: "zero seq", line: "kafka_json_checkpoint seq=0i,lines=0i," + sock, want: Marker{Seq: 0, Lines: 0, Socket: "/s"}},

		{name: "empty", line: "", wantErr: "empty"},
		// The name is IsMarker's business: a modifier may have renamed it.
		{name: "renamed", line: "x_kafka_json_checkpoint seq=3i,lines=5i," + sock, want: Marker{Seq: 3, Lines: 5, Socket: "/s"}},
		{name: "name overridden", line: "weather seq=3i,lines=5i," + sock, want: Marker{Seq: 3, Lines: 5, Socket: "/s"}},

		{name: "data line", line: "weather,city=x temp=1 1\n", wantErr: "needs the fields"},
		{name: "no seq", line: "kafka_json_checkpoint lines=5i," + sock, wantErr: "needs the fields"},
		{name: "no lines", line: "kafka_json_checkpoint seq=3i," + sock, wantErr: "needs the fields"},
		{name: "no socket", line: "kafka_json_checkpoint seq=3i,lines=5i", wantErr: "needs the fields"},
		{name: "empty socket", line: `kafka_json_checkpoint seq=3i,lines=5i,socket=""`, wantErr: "needs the fields"},
		{name: "socket not a string", line: "kafka_json_checkpoint seq=3i,lines=5i,socket=4i", wantErr: "not a string"},
		{name: "negative seq", line: "kafka_json_checkpoint seq=-3i,lines=5i," + sock, wantErr: "field seq"},
		{name: "negative float lines", line: "kafka_json_checkpoint seq=3i,lines=-5," + sock, wantErr: "field lines"},
		{name: "fractional seq", line: "kafka_json_checkpoint seq=3.5,lines=5i," + sock, wantErr: "field seq"},
		{name: "string seq", line: `kafka_json_checkpoint seq="3",lines=5i,` + sock, wantErr: "field seq"},
		{name: "bool lines", line: "kafka_json_checkpoint seq=3i,lines=true," + sock, wantErr: "field lines"},
		{name: "huge float", line: "kafka_json_checkpoint seq=1e30,lines=5i," + sock, wantErr: "field seq"},
		{name: "no fields", line: "kafka_json_checkpoint", wantErr: ""},
		{name: "bad syntax", line: "kafka_json_checkpoint seq=3i,lines", wantErr: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMarkerNoPanic(t, []byte(tt.line))
			if tt.wantErr == "" && tt.want == (Marker{}) {
				// Only an error is wanted, whatever it says.
				if err == nil {
					t.Fatalf("%q parsed as %+v, want an error", tt.line, got)
				}
				return
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("%q: error %v, want one containing %q", tt.line, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("%q: %+v, %v; want %+v", tt.line, got, err, tt.want)
			}
		})
	}
}

// parseMarkerNoPanic turns a panic in ParseMarker into a test failure, so
// that one bad case does not end the whole run.
func parseMarkerNoPanic(t *testing.T, line []byte) (m Marker, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("ParseMarker(%q) panicked: %v", line, r)
		}
	}()
	return ParseMarker(line)
}

func TestIsMarker(t *testing.T) {
	const fields = `seq=1i,lines=2i,socket="/s"`
	tests := []struct {
		measurement, fields string
		want                bool
	}{
		{"kafka_json_checkpoint", fields, true},
		// name_prefix, name_suffix keep the name inside.
		{"x_kafka_json_checkpoint", fields, true},
		{"kafka_json_checkpoint_y", "lines=2i,socket=\"/s\",seq=1i", true},
		// name_override leaves only the fields, as the input wrote them.
		{"renamed", fields, true},
		{"renamed", `seq=1,lines=2,socket="/s"`, true},
		{"kafka_json_checkpoin", "temp=1", false},
		{`kafka_json\ checkpoint`, "temp=1", false},
		{"weather", "temp=1,seq=1i", false},
		{"weather", `socket="/s",seq=1i`, false},
		{"", "", false},
	}
	for _, tt := range tests {
		if got := IsMarker([]byte(tt.measurement), []byte(tt.fields)); got != tt.want {
			t.Errorf("IsMarker(%q, %q) = %v, want %v", tt.measurement, tt.fields, got, tt.want)
		}
	}
	// Whatever AppendMarker writes is a marker.
	for _, socket := range markerSockets {
		line := AppendMarker(nil, Marker{Seq: 1, Lines: 2, Socket: socket})
		name, rest, _ := bytes.Cut(line, []byte(" "))
		if !IsMarker(name, rest) {
			t.Errorf("%q not recognised", line)
		}
	}
}

func FuzzParseMarker(f *testing.F) {
	for _, socket := range markerSockets {
		f.Add(AppendMarker(nil, Marker{Seq: 5, Lines: 9, Socket: socket}))
	}
	f.Add([]byte("kafka_json_checkpoint,host=h lines=5,seq=3," + `socket="/s" 1700000000000000000` + "\n"))
	f.Add([]byte(`kafka_json_checkpoint seq=3u,lines=5u,socket="a\"b\\c"`))
	f.Add([]byte("kafka_json_checkpoint seq=1e18,lines=0i,socket=\"x\""))
	// Found failing: a socket that is not a string panics, and a count
	// above MaxInt64 is written back as an out-of-range integer.
	f.Add([]byte("kafka_json_checkpoint seq=3i,lines=5i,socket=4i"))
	f.Add([]byte(`kafka_json_checkpoint seq=18446744073709551615u,lines=1i,socket="x"`))
	f.Add([]byte("weather temp=1"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := parseMarkerNoPanic(t, line)
		if err != nil {
			return
		}
		again := AppendMarker(nil, m)
		back, err := ParseMarker(again)
		if err != nil || back != m {
			t.Fatalf("%q parsed as %+v, written as %q, parsed back as %+v, %v", line, m, again, back, err)
		}
	})
}

func TestEventRoundTrip(t *testing.T) {
	events := []Event{
		{Kind: Ack, Seq: 1},
		{Kind: Ack, Seq: math.MaxUint64},
		{Kind: Received, Seq: 0},
		{Kind: Received, Seq: 77},
		{Kind: Lost, Seq: 3, Expected: 100, Got: 99},
		{Kind: Lost, Seq: 3, Expected: 0, Got: math.MaxUint64},
		{Kind: Alive, Seq: 9, Busy: true},
		{Kind: Alive, Seq: 0, Busy: false},
	}
	var all []byte
	for _, e := range events {
		line := AppendEvent(nil, e)
		if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
			t.Fatalf("%+v: not one line: %q", e, line)
		}
		got, err := ParseEvent(strings.TrimSuffix(string(line), "\n"))
		if err != nil || got != e {
			t.Fatalf("%q: %+v, %v; want %+v", line, got, err, e)
		}
		all = AppendEvent(all, e)
	}
	// Appended one after another, they read back in order.
	sc := bufio.NewScanner(bytes.NewReader(all))
	for i := 0; sc.Scan(); i++ {
		if got, err := ParseEvent(sc.Text()); err != nil || got != events[i] {
			t.Fatalf("event %d: %+v, %v; want %+v", i, got, err, events[i])
		}
	}
}

func TestParseEvent(t *testing.T) {
	good := map[string]Event{
		"ack 5":                     {Kind: Ack, Seq: 5},
		"  ack   5  ":               {Kind: Ack, Seq: 5},
		"recv 0":                    {Kind: Received},
		"lost 4 10 7":               {Kind: Lost, Seq: 4, Expected: 10, Got: 7},
		"alive 3 1":                 {Kind: Alive, Seq: 3, Busy: true},
		"alive 3 0":                 {Kind: Alive, Seq: 3},
		"alive 3 2":                 {Kind: Alive, Seq: 3, Busy: true},
		"ack 007":                   {Kind: Ack, Seq: 7},
		"ack\t5":                    {Kind: Ack, Seq: 5},
		"recv 18446744073709551615": {Kind: Received, Seq: math.MaxUint64},
	}
	for line, want := range good {
		if got, err := ParseEvent(line); err != nil || got != want {
			t.Errorf("%q: %+v, %v; want %+v", line, got, err, want)
		}
	}
	for _, line := range []string{
		"", " ", "ack", "ack x", "ack -1", "ack 1 2", "ACK 1", "recv", "lost 1 2",
		"lost 1 2 3 4", "alive 1", "alive 1 yes", "hello 1", "nack 1",
		"recv 18446744073709551616", "1 2", "ack 1.5",
	} {
		if got, err := ParseEvent(line); err == nil {
			t.Errorf("%q parsed as %+v, want an error", line, got)
		}
	}
}

func TestTally(t *testing.T) {
	a := Marker{Socket: "/a"}
	b := Marker{Socket: "/b"}
	with := func(m Marker, seq, lines uint64) Marker { m.Seq, m.Lines = seq, lines; return m }
	type step struct {
		m         Marker
		read      uint64 // the reader's count of data lines so far
		got       uint64
		wantShort bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first marker is not checked", []step{
			{with(a, 1, 100), 5, 5, false},
		}},
		{"exact counts", []step{
			{with(a, 1, 10), 10, 10, false},
			{with(a, 2, 10), 20, 10, false},
			{with(a, 3, 0), 20, 0, false},
		}},
		{"short is detected", []step{
			{with(a, 1, 10), 10, 10, false},
			{with(a, 2, 10), 19, 9, true},
			// The count restarts at each marker, short or not.
			{with(a, 3, 5), 24, 5, false},
		}},
		{"lines of other inputs only raise the count", []step{
			{with(a, 1, 10), 10, 10, false},
			{with(b, 1, 4), 14, 14, false},
			// a's 10 lines and b's 4 came since a's last marker: a lost
			// 3, which the shared count hides.
			{with(a, 2, 10), 21, 11, false},
			{with(b, 2, 7), 28, 14, false},
			{with(a, 3, 10), 30, 9, true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tally Tally
			for i, s := range tt.steps {
				got, short := tally.Marker(s.m, s.read)
				if got != s.got || short != s.wantShort {
					t.Fatalf("step %d (%+v after %d lines): got %d short %v, want %d %v", i, s.m, s.read, got, short, s.got, s.wantShort)
				}
			}
		})
	}
}

func TestTallyForgetsInputsPastMaxInputs(t *testing.T) {
	var tally Tally
	var read uint64
	for i := range maxInputs {
		read++
		tally.Marker(Marker{Seq: 1, Lines: 1, Socket: "/in/" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)}, read)
	}
	if len(tally.at) != maxInputs {
		t.Fatalf("remembers %d inputs, want %d", len(tally.at), maxInputs)
	}
	// One more input: all are forgotten, so the next marker of an old
	// input is not checked even though it came after too few lines.
	read++
	if _, short := tally.Marker(Marker{Seq: 1, Lines: 1, Socket: "/new"}, read); short {
		t.Fatal("first marker of a new input checked")
	}
	if len(tally.at) != 1 {
		t.Fatalf("remembers %d inputs after the reset, want 1", len(tally.at))
	}
	if _, short := tally.Marker(Marker{Seq: 2, Lines: 1000, Socket: "/in/a"}, read); short {
		t.Fatal("a forgotten input's marker was checked")
	}
	// From there on it is checked again.
	if _, short := tally.Marker(Marker{Seq: 3, Lines: 1000, Socket: "/in/a"}, read+1); !short {
		t.Fatal("short not detected after the reset")
	}
}

// eventSink collects what a Listener hands over.
type eventSink struct {
	events chan Event
	mu     sync.Mutex
	bad    []error
}

func newEventSink() *eventSink { return &eventSink{events: make(chan Event, 100)} }

func (s *eventSink) handle(e Event) { s.events <- e }

func (s *eventSink) badLine(err error) {
	s.mu.Lock()
	s.bad = append(s.bad, err)
	s.mu.Unlock()
}

func (s *eventSink) badCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bad)
}

func (s *eventSink) next(t *testing.T) Event {
	t.Helper()
	select {
	case e := <-s.events:
		return e
	case <-time.After(waitLimit):
		t.Fatal("no event arrived")
		return Event{}
	}
}

func (s *eventSink) expect(t *testing.T, want ...Event) {
	t.Helper()
	for i, w := range want {
		if got := s.next(t); got != w {
			t.Fatalf("event %d: %+v, want %+v", i, got, w)
		}
	}
}

func listen(t *testing.T) (*Listener, *eventSink) {
	t.Helper()
	sink := newEventSink()
	l, err := Listen(t.TempDir(), sink.handle, sink.badLine)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, sink
}

func testLogger(buf *syncbuf.Buffer) *execd.Logger {
	log := execd.NewLogger("outputs.test", telegraf.Debug)
	log.SetOutput(buf)
	return log
}

func TestListenerAndAckerEndToEnd(t *testing.T) {
	l, sink := listen(t)
	if info, err := os.Stat(filepath.Dir(l.Path())); err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("socket directory: %v, %v; want mode 0700", info, err)
	}
	var logs syncbuf.Buffer
	acker := NewAcker(testLogger(&logs), func() bool { return false })
	ctx, cancel := context.WithCancel(context.Background())
	go acker.Run(ctx)

	var want []Event
	for seq := uint64(1); seq <= 50; seq++ {
		m := Marker{Seq: seq, Lines: 10, Socket: l.Path()}
		if seq == 20 {
			acker.Received(m, true, 7)
			want = append(want, Event{Kind: Lost, Seq: seq, Expected: 10, Got: 7})
			continue
		}
		acker.Received(m, false, 10)
		acker.Settled(m)
		want = append(want, Event{Kind: Received, Seq: seq}, Event{Kind: Ack, Seq: seq})
	}
	sink.expect(t, want...)
	cancel()
	acker.Wait()
	if acker.Dropped() != 0 || sink.badCount() != 0 {
		t.Fatalf("dropped %d, bad %d; log:\n%s", acker.Dropped(), sink.badCount(), logs.String())
	}
}

// Run sends what is queued before it returns.
func TestAckerFlushesQueuedEventsWhenStopped(t *testing.T) {
	l, sink := listen(t)
	acker := NewAcker(testLogger(&syncbuf.Buffer{}), func() bool { return false })
	m := Marker{Seq: 4, Lines: 1, Socket: l.Path()}
	acker.Received(m, false, 1)
	acker.Settled(m)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	acker.Run(ctx) // returns at once, ctx being done
	acker.Wait()
	sink.expect(t, Event{Kind: Received, Seq: 4}, Event{Kind: Ack, Seq: 4})
}

// The heartbeat is driven by hand (heartbeat, flush) so that no test
// waits for HeartbeatInterval.
func TestAckerHeartbeat(t *testing.T) {
	l, sink := listen(t)
	var busy bool
	acker := NewAcker(testLogger(&syncbuf.Buffer{}), func() bool { return busy })
	t0 := time.Now()

	acker.heartbeat(t0)
	acker.flush(t0)
	if len(acker.inputs) != 0 {
		t.Fatal("heartbeat for an input never heard of")
	}

	acker.Received(Marker{Seq: 3, Socket: l.Path()}, false, 0)
	acker.drain()
	acker.flush(t0)
	sink.expect(t, Event{Kind: Received, Seq: 3})

	busy = true
	acker.heartbeat(t0.Add(time.Second))
	acker.flush(t0.Add(time.Second))
	sink.expect(t, Event{Kind: Alive, Seq: 3, Busy: true})

	busy = false
	acker.Settled(Marker{Seq: 3, Socket: l.Path()})
	acker.drain()
	acker.heartbeat(t0.Add(2 * time.Second))
	acker.flush(t0.Add(2 * time.Second))
	sink.expect(t, Event{Kind: Ack, Seq: 3}, Event{Kind: Alive, Seq: 3})

	// An input with nothing outstanding that sent no marker for
	// forgetAfter is forgotten, and its connection closed.
	later := t0.Add(forgetAfter + time.Minute)
	acker.heartbeat(later)
	acker.flush(later)
	if len(acker.inputs) != 0 {
		t.Fatalf("input not forgotten after %s", forgetAfter)
	}
}

// While the output is busy (CnosDB down), an input whose window is full
// writes no marker, so the last one read gets old. Its heartbeats must go
// on, or the input sees silence and replays the whole window into
// Telegraf while nothing can be written.
func TestAckerKeepsBeatingForAnInputWaitingOnABusyOutput(t *testing.T) {
	acker := NewAcker(testLogger(&syncbuf.Buffer{}), func() bool { return true })
	const socket = "/nowhere/ack.sock"
	t0 := time.Now()
	acker.Received(Marker{Seq: 8, Lines: 10, Socket: socket}, false, 10)
	acker.drain()
	acker.inputs[socket].pending = nil // not sent anywhere
	later := t0.Add(forgetAfter + time.Minute)
	acker.heartbeat(later)
	in := acker.inputs[socket]
	if in == nil {
		t.Fatalf("input forgotten %s after its last marker, while marker 8 is unsettled and the output busy: it stops hearing heartbeats and rewinds", forgetAfter+time.Minute)
	}
	if got := string(in.pending); got != "alive 8 1\n" {
		t.Fatalf("pending %q, want the busy heartbeat", got)
	}
}

// rawInput plays an input at a fixed socket path, so that a test can make
// it vanish and come back at the same place.
type rawInput struct {
	ln   *net.UnixListener
	sink *eventSink
	mu   sync.Mutex
	conn []net.Conn
	wg   sync.WaitGroup
}

func startRawInput(t *testing.T, path string) *rawInput {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	r := &rawInput{ln: ln, sink: newEventSink()}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conn = append(r.conn, conn)
			r.mu.Unlock()
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				sc := bufio.NewScanner(conn)
				for sc.Scan() {
					e, err := ParseEvent(sc.Text())
					if err != nil {
						r.sink.badLine(err)
						continue
					}
					r.sink.handle(e)
				}
			}()
		}
	}()
	t.Cleanup(r.close)
	return r
}

func (r *rawInput) close() {
	r.ln.Close() // removes the socket file too
	r.mu.Lock()
	for _, c := range r.conn {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func TestAckerSurvivesTheInputVanishingAndComingBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ack.sock")
	var logs syncbuf.Buffer
	acker := NewAcker(testLogger(&logs), func() bool { return false })
	now := time.Now()
	send := func(seq uint64) {
		acker.Settled(Marker{Seq: seq, Socket: path})
		acker.drain()
		acker.flush(now)
	}

	first := startRawInput(t, path)
	send(1)
	first.sink.expect(t, Event{Kind: Ack, Seq: 1})
	first.close()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket still there: %v", err)
	}

	// Gone: events are dropped (the input replays what they covered),
	// and after a failed dial the acker waits redialDelay before the
	// next.
	var seq uint64 = 1
	for acker.inputs[path].conn != nil || acker.inputs[path].retryAt.IsZero() {
		seq++
		if seq > 5 {
			t.Fatal("the acker never noticed the input was gone")
		}
		now = now.Add(time.Millisecond)
		send(seq)
	}
	if !strings.Contains(logs.String(), "cannot reach the input at "+path) {
		t.Fatalf("failed dial not logged:\n%s", logs.String())
	}

	second := startRawInput(t, path)
	now = now.Add(redialDelay / 2)
	send(100) // within redialDelay: not dialled, dropped
	now = now.Add(redialDelay)
	send(101)
	send(102)
	second.sink.expect(t, Event{Kind: Ack, Seq: 101}, Event{Kind: Ack, Seq: 102})
	select {
	case e := <-second.sink.events:
		t.Fatalf("unexpected event %+v", e)
	default:
	}
	if n := strings.Count(logs.String(), "cannot reach the input"); n != 1 {
		t.Fatalf("dial failure logged %d times, want once:\n%s", n, logs.String())
	}
}

func TestListenerCloseRemovesItsDirectory(t *testing.T) {
	parent := t.TempDir()
	sink := newEventSink()
	l, err := Listen(parent, sink.handle, sink.badLine)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(l.Path())
	if filepath.Dir(dir) != parent || filepath.Base(l.Path()) != socketName {
		t.Fatalf("socket %s not in a directory of its own under %s", l.Path(), parent)
	}
	// An open connection must not keep Close waiting.
	conn, err := net.Dial("unix", l.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("ack 1\n")); err != nil {
		t.Fatal(err)
	}
	sink.expect(t, Event{Kind: Ack, Seq: 1})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("directory %s still there after Close: %v", dir, err)
	}
	// Two listeners never share a path.
	l1, err := Listen(parent, sink.handle, sink.badLine)
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Close()
	l2, err := Listen(parent, sink.handle, sink.badLine)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if l1.Path() == l2.Path() {
		t.Fatal("two listeners share a socket path")
	}
}

func TestListenRefusesAPathTooLong(t *testing.T) {
	parent := filepath.Join(t.TempDir(), strings.Repeat("d", 100))
	if err := os.Mkdir(parent, 0o700); err != nil {
		t.Fatal(err)
	}
	sink := newEventSink()
	if l, err := Listen(parent, sink.handle, sink.badLine); err == nil {
		l.Close()
		t.Fatalf("listened on %s, longer than a Unix socket path", l.Path())
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Fatalf("left %v behind", entries)
	}
}

func TestListenerDropsAConnectionSendingGarbage(t *testing.T) {
	l, sink := listen(t)
	good, err := net.Dial("unix", l.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	bad, err := net.Dial("unix", l.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()

	if _, err := good.Write([]byte("ack 1\n")); err != nil {
		t.Fatal(err)
	}
	sink.expect(t, Event{Kind: Ack, Seq: 1})
	if _, err := bad.Write([]byte("GET / HTTP/1.1\nack 99\n")); err != nil {
		t.Fatal(err)
	}
	// The listener hangs up on it: reading sees the end.
	bad.SetReadDeadline(time.Now().Add(waitLimit))
	if _, err := bad.Read(make([]byte, 1)); err == nil {
		t.Fatal("garbage connection still open")
	}
	if sink.badCount() != 1 {
		t.Fatalf("%d bad lines reported, want 1", sink.badCount())
	}
	if _, err := good.Write([]byte("recv 2\nalive 2 1\n")); err != nil {
		t.Fatal(err)
	}
	sink.expect(t, Event{Kind: Received, Seq: 2}, Event{Kind: Alive, Seq: 2, Busy: true})
	select {
	case e := <-sink.events:
		t.Fatalf("event %+v after the garbage was taken", e)
	default:
	}
}
