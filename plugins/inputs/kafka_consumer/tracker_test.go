package kafka_consumer //nolint:revive,stylecheck // named after the Telegraf plugin it replaces

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/kafka-cnosdb/telegraf-execd/internal/syncbuf"
	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/delivery"
	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/execd"
)

// The tracker's logic without Kafka: a fake session records the offsets
// marked, the test plays the output by calling event, and check is
// driven with explicit times.

const trackerTopic = "events"

type markedOffset struct {
	topic     string
	partition int32
	offset    int64
}

// fakeSession is the part of a sarama session the tracker uses.
type fakeSession struct {
	sarama.ConsumerGroupSession // nil: any other method panics
	ctx                         context.Context
	end                         context.CancelFunc

	mu    sync.Mutex
	marks []markedOffset
}

func newFakeSession() *fakeSession {
	ctx, end := context.WithCancel(context.Background())
	return &fakeSession{ctx: ctx, end: end}
}

func (s *fakeSession) Context() context.Context { return s.ctx }

func (s *fakeSession) MarkOffset(topic string, partition int32, offset int64, _ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.marks = append(s.marks, markedOffset{topic, partition, offset})
}

func (s *fakeSession) marked() []markedOffset {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]markedOffset(nil), s.marks...)
}

func (s *fakeSession) wantMarked(t *testing.T, want ...markedOffset) {
	t.Helper()
	got := s.marked()
	if len(got) != len(want) {
		t.Fatalf("marked %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("marked %v, want %v", got, want)
		}
	}
}

type trackerFixture struct {
	t        *testing.T
	k        *KafkaConsumer
	tr       *tracker
	session  *fakeSession
	out      *bytes.Buffer
	log      *syncbuf.Buffer
	stats    *Stats
	sessions int // sessions ended (rewinds)
	timeout  time.Duration
	// retriggers: the Telegraf in the middle is 1.35.2 or later.
	retriggers bool
}

// newTrackerFixture builds the plugin as the binary does (New, options,
// Init, which does not connect) and a tracker on it, without a socket:
// the markers name a made-up path.
func newTrackerFixture(t *testing.T, tracking string, options func(k *KafkaConsumer)) *trackerFixture {
	t.Helper()
	return newTrackerFixtureFor(t, false, tracking, options)
}

// newTrackerFixtureFor is newTrackerFixture between the input and a
// Telegraf that does (retriggers) or does not write again while a batch
// is ready.
func newTrackerFixtureFor(t *testing.T, retriggers bool, tracking string, options func(k *KafkaConsumer)) *trackerFixture {
	t.Helper()
	f := &trackerFixture{t: t, out: &bytes.Buffer{}, log: &syncbuf.Buffer{}, stats: &Stats{}, retriggers: retriggers}
	k := New()
	k.Log.SetOutput(f.log)
	k.Brokers = []string{"127.0.0.1:1"}
	k.Topics = []string{trackerTopic}
	k.DataFormat = "json"
	k.DeliveryTracking = tracking
	k.MaxUndeliveredMessages = 100
	k.MaxUndeliveredMetrics = 1000
	k.MetricBatchSize = 1000
	if options != nil {
		options(k)
	}
	if err := k.Init(); err != nil {
		t.Fatal(err)
	}
	f.k = k
	f.timeout = time.Duration(k.DeliveryTimeout)
	f.tr = newTracker(k, f.out, f.stats, f.retriggers)
	if f.tr.state != untracked {
		f.tr.socket = "/run/telegraf kafka/\"ack\".sock"
	}
	f.newSession()
	return f
}

// newSession starts a session as Run and Setup do.
func (f *trackerFixture) newSession() *fakeSession {
	s := newFakeSession()
	f.session = s
	f.tr.setEndSession(func() {
		f.sessions++ // called with the tracker's lock held
		s.end()
	})
	f.tr.setSession(s)
	return s
}

// write writes a chunk of lines for messages ending at offset next-1 of
// partition, as ConsumeClaim does after taking room for each message.
func (f *trackerFixture) write(partition int32, next int64, messages, lines int) {
	f.t.Helper()
	f.writeIn(f.session, partition, next, messages, lines)
}

func (f *trackerFixture) writeIn(s *fakeSession, partition int32, next int64, messages, lines int) {
	f.t.Helper()
	f.tr.mu.Lock()
	f.tr.reservedMessages += messages
	f.tr.mu.Unlock()
	chunk := []byte(strings.Repeat("m v=1i\n", lines))
	cp := checkpoint{topic: trackerTopic, partition: partition, first: next - int64(messages), next: next, messages: messages, lines: lines}
	if err := f.tr.write(chunk, cp, s); err != nil {
		f.t.Fatal(err)
	}
}

func (f *trackerFixture) ack(seq uint64) { f.tr.event(delivery.Event{Kind: delivery.Ack, Seq: seq}) }
func (f *trackerFixture) recv(seq uint64) {
	f.tr.event(delivery.Event{Kind: delivery.Received, Seq: seq})
}

func (f *trackerFixture) lost(seq uint64) {
	f.tr.event(delivery.Event{Kind: delivery.Lost, Seq: seq, Expected: 10, Got: 9})
}

func (f *trackerFixture) alive(seq uint64, busy bool) {
	f.tr.event(delivery.Event{Kind: delivery.Alive, Seq: seq, Busy: busy})
}

// inFlight reads the window's counters.
func (f *trackerFixture) inFlight() (queued, messages, lines, inside int) {
	f.tr.mu.Lock()
	defer f.tr.mu.Unlock()
	return len(f.tr.queue), f.tr.messages, f.tr.lines, f.tr.inside
}

func (f *trackerFixture) wantInFlight(queued, messages, lines, inside int) {
	f.t.Helper()
	q, m, l, i := f.inFlight()
	if q != queued || m != messages || l != lines || i != inside {
		f.t.Fatalf("in flight: %d checkpoints, %d messages, %d lines, %d inside; want %d, %d, %d, %d", q, m, l, i, queued, messages, lines, inside)
	}
}

// age moves everything written and all progress d into the past, so
// check can be driven with the clock's own time.
func (f *trackerFixture) age(d time.Duration) {
	f.tr.mu.Lock()
	defer f.tr.mu.Unlock()
	for i := range f.tr.queue {
		f.tr.queue[i].written = f.tr.queue[i].written.Add(-d)
	}
	f.tr.lastProgress = f.tr.lastProgress.Add(-d)
}

func (f *trackerFixture) wantLog(text string, times int) {
	f.t.Helper()
	if n := strings.Count(f.log.String(), text); n != times {
		f.t.Fatalf("%q logged %d times, want %d; log:\n%s", text, n, times, f.log.String())
	}
}

func (f *trackerFixture) state() trackerState {
	f.tr.mu.Lock()
	defer f.tr.mu.Unlock()
	return f.tr.state
}

func at(partition int32, offset int64) markedOffset {
	return markedOffset{trackerTopic, partition, offset}
}

func TestTrackerWritesAMarkerAfterEachChunk(t *testing.T) {
	f := newTrackerFixture(t, trackingAuto, nil)
	f.write(0, 10, 4, 3)
	f.write(1, 5, 1, 0) // a message that made no line still gets its marker
	lines := strings.SplitAfter(f.out.String(), "\n")
	want := []string{"m v=1i\n", "m v=1i\n", "m v=1i\n", "", "", ""}
	if len(lines) != 6 || lines[5] != "" {
		t.Fatalf("stdout %q", f.out.String())
	}
	for i, markerAt := range map[int]int{0: 3, 1: 4} {
		m, err := delivery.ParseMarker([]byte(lines[markerAt]))
		if err != nil {
			t.Fatalf("line %q: %v", lines[markerAt], err)
		}
		wantMarker := delivery.Marker{Seq: uint64(i + 1), Lines: []uint64{3, 0}[i], Socket: f.tr.socket}
		if m != wantMarker {
			t.Fatalf("marker %+v, want %+v", m, wantMarker)
		}
		want[markerAt] = lines[markerAt]
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Fatalf("stdout %q", f.out.String())
		}
	}
	f.session.wantMarked(t) // nothing before an acknowledgement
	f.wantInFlight(2, 5, 3, 3+1+0+1)
}

func TestTrackerAcknowledgementsMarkOffsetsInOrder(t *testing.T) {
	f := newTrackerFixture(t, trackingAuto, nil)
	f.write(0, 10, 10, 20)
	f.write(1, 5, 5, 5)
	f.write(0, 20, 10, 30)
	f.wantInFlight(3, 25, 55, 58)
	for seq := uint64(1); seq <= 3; seq++ {
		f.recv(seq)
	}
	f.wantInFlight(3, 25, 55, 0)
	f.wantLog("the output acknowledges checkpoints", 1)

	f.ack(1)
	f.session.wantMarked(t, at(0, 10))
	f.wantInFlight(2, 15, 35, 0)
	f.ack(1) // repeated (Telegraf retried a batch): ignored
	f.ack(2)
	f.ack(3)
	f.session.wantMarked(t, at(0, 10), at(1, 5), at(0, 20))
	f.wantInFlight(0, 0, 0, 0)
	if f.stats.Acknowledged.Load() != 25 || f.stats.Rewinds.Load() != 0 || f.sessions != 0 {
		t.Fatalf("acknowledged %d, rewinds %d, sessions ended %d", f.stats.Acknowledged.Load(), f.stats.Rewinds.Load(), f.sessions)
	}
	f.ack(4) // nothing outstanding: ignored
	if f.stats.Rewinds.Load() != 0 {
		t.Fatal("an acknowledgement with nothing outstanding rewound")
	}
}

// An acknowledgement may come before the Received for the same marker
// (both are sent in order, but the test checks the tracker copes).
func TestTrackerAckFreesWhatItsMarkerHeldInside(t *testing.T) {
	f := newTrackerFixture(t, trackingAuto, nil)
	f.write(0, 3, 3, 6)
	f.ack(1)
	f.wantInFlight(0, 0, 0, 0)
	f.recv(1) // late: nothing left to lower
	f.wantInFlight(0, 0, 0, 0)
}

func TestTrackerRewindsOnAGapInAcknowledgements(t *testing.T) {
	f := newTrackerFixture(t, trackingAuto, nil)
	f.write(0, 10, 10, 10)
	f.write(0, 20, 10, 10)
	f.write(0, 30, 10, 10)
	old := f.session
	f.ack(2) // 1 never came: lost on the way
	if f.sessions != 1 || f.stats.Rewinds.Load() != 1 || old.ctx.Err() == nil {
		t.Fatalf("sessions ended %d, rewinds %d", f.sessions, f.stats.Rewinds.Load())
	}
	f.wantInFlight(0, 0, 0, 11) // checkpoint 3 is still in Telegraf
	f.wantLog("checkpoint 1 was never acknowledged, but 2 was", 1)
	f.wantLog("replaying from the last acknowledged offsets (30 messages were unacknowledged)", 1)
	old.wantMarked(t)

	// The next session starts from the committed offsets; the old
	// session's acknowledgements, late, are ignored.
	s := f.newSession()
	f.ack(1)
	f.ack(3)
	f.write(0, 10, 10, 10) // the replay, seq 4
	f.ack(2)
	f.ack(3)
	s.wantMarked(t)
	f.ack(4)
	s.wantMarked(t, at(0, 10))
	if f.stats.Rewinds.Load() != 1 {
		t.Fatalf("%d rewinds, want 1", f.stats.Rewinds.Load())
	}
}

func TestTrackerRewindsOnLostUntilShortfallsKeepComing(t *testing.T) {
	f := newTrackerFixture(t, trackingAuto, nil)
	var seq uint64
	for replay := 1; replay <= maxShortReplays; replay++ {
		f.write(0, 10, 10, 10)
		seq++
		f.lost(seq)
		if f.stats.Rewinds.Load() != int64(replay) || f.sessions != replay {
			t.Fatalf("replay %d: %d rewinds, %d sessions ended", replay, f.stats.Rewinds.Load(), f.sessions)
		}
		f.wantInFlight(0, 0, 0, 0)
		f.newSession()
	}
	f.wantLog("the output received 9 of the 10 lines written before checkpoint 1", 1)
	f.wantLog("Accepting such shortfalls", 0)

	// One more within shortReplayWindow: replaying does not help, so
	// the checkpoint is let through and its offsets committed. (Today
	// on the Lost itself; an acknowledgement that follows, once the
	// lines that did arrive are settled, changes nothing then.)
	f.write(0, 10, 10, 10)
	seq++
	f.lost(seq)
	f.ack(seq)
	f.session.wantMarked(t, at(0, 10))
	f.wantLog("Accepting such shortfalls", 1)
	f.write(0, 20, 10, 10)
	seq++
	f.lost(seq)
	f.ack(seq)
	f.session.wantMarked(t, at(0, 10), at(0, 20))
	f.wantLog("Accepting such shortfalls", 1)
	if f.stats.Rewinds.Load() != maxShortReplays {
		t.Fatalf("%d rewinds, want %d", f.stats.Rewinds.Load(), maxShortReplays)
	}
}

// Shortfalls on different messages each time are what an overflowing
// buffer causes: always replayed.
func TestTrackerShortfallsElsewhereAreAlwaysReplayed(t *testing.T) {
	f := newTrackerFixture(t, trackingAuto, nil)
	var seq uint64
	for replay := 1; replay <= 2*maxShortReplays; replay++ {
		f.write(0, int64(10*replay), 10, 10)
		seq++
		f.lost(seq)
		f.newSession()
	}
	if f.stats.Rewinds.Load() != 2*maxShortReplays {
		t.Fatalf("%d rewinds, want %d", f.stats.Rewinds.Load(), 2*maxShortReplays)
	}
	f.wantLog("Accepting such shortfalls", 0)
}

// The output reports a marker read (Received, or Lost when lines before
// it are missing) as it reads it, and acknowledges markers only once
// their batch is in CnosDB: Lost for a marker usually overtakes the
// acknowledgement of the one before. Those shortfalls must count towards
// maxShortReplays too, or an output behind a filter that drops lines on
// purpose makes the input replay its window over and over.
func TestTrackerShortfallsCountWhenLostOvertakesAnAcknowledgement(t *testing.T) {
	f := newTrackerFixture(t, trackingAuto, nil)
	var seq uint64
	for round := 1; round <= maxShortReplays+1; round++ {
		f.write(0, 10, 5, 5)
		f.write(0, 20, 5, 5)
		seq += 2
		f.recv(seq - 1)
		f.lost(seq)
		f.ack(seq - 1)
		f.newSession()
	}
	if got := f.stats.Rewinds.Load(); got != maxShortReplays {
		t.Errorf("%d rewinds after %d rounds, want %d: the shortfalls never counted (log:\n%s)", got, maxShortReplays+1, maxShortReplays, f.log.String())
	}
	if !strings.Contains(f.log.String(), "Accepting such shortfalls") {
		t.Errorf("shortfalls never accepted")
	}
}

func TestTrackerReceivedMakesRoomInside(t *testing.T) {
	f := newTrackerFixture(t, trackingAuto, func(k *KafkaConsumer) { k.MetricBatchSize = 10 })
	f.write(0, 1, 1, 19) // 19 lines and the marker: two batches inside
	f.wantInFlight(1, 1, 19, 20)

	flushed := make(chan struct{}, 10)
	done := make(chan bool)
	go func() {
		ok, _ := f.tr.acquire(context.Background(), 0, func() error {
			flushed <- struct{}{}
			return nil
		})
		done <- ok
	}()
	<-flushed // no room: acquire wrote the claim's chunk and waits
	f.recv(1)
	if !<-done {
		t.Fatal("acquire failed")
	}
	f.wantInFlight(1, 1, 19, 0)
	f.tr.mu.Lock()
	reserved := f.tr.reservedMessages
	f.tr.mu.Unlock()
	if reserved != 1 {
		t.Fatalf("%d messages reserved, want 1", reserved)
	}
}

func TestTrackerAcquireWaitsForRoom(t *testing.T) {
	tests := []struct {
		name     string
		options  func(k *KafkaConsumer)
		messages int
		lines    int
	}{
		{"max_undelivered_messages", func(k *KafkaConsumer) { k.MaxUndeliveredMessages = 8 }, 8, 8},
		{"max_undelivered_metrics", func(k *KafkaConsumer) { k.MaxUndeliveredMetrics = 50 }, 1, 50},
		{"inside", func(k *KafkaConsumer) { k.MetricBatchSize = 20 }, 1, 39},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newTrackerFixture(t, trackingAuto, tt.options)
			// Room for the first message, even when it alone fills the
			// window.
			if ok, err := f.tr.acquire(context.Background(), 0, nil); !ok || err != nil {
				t.Fatalf("first acquire: %v, %v", ok, err)
			}
			f.tr.release(1)
			f.write(0, 8, tt.messages, tt.lines)

			flushed := make(chan struct{}, 10)
			done := make(chan bool)
			go func() {
				ok, _ := f.tr.acquire(context.Background(), 0, func() error {
					flushed <- struct{}{}
					return nil
				})
				done <- ok
			}()
			<-flushed
			select {
			case <-done:
				t.Fatal("acquire returned with the window full")
			default:
			}
			f.recv(1)
			f.ack(1)
			if !<-done {
				t.Fatal("acquire failed after the acknowledgement")
			}

			// Full again: a cancelled session makes acquire give up.
			f.tr.release(1)
			f.write(0, 16, tt.messages, tt.lines)
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				ok, err := f.tr.acquire(ctx, 0, func() error {
					flushed <- struct{}{}
					return nil
				})
				done <- ok || err != nil
			}()
			<-flushed
			cancel()
			if <-done {
				t.Fatal("acquire took room after its session ended")
			}

			// A failing flush is returned.
			boom := errors.New("stdout closed")
			if ok, err := f.tr.acquire(context.Background(), 0, func() error { return boom }); ok || !errors.Is(err, boom) {
				t.Fatalf("acquire with a failing flush: %v, %v", ok, err)
			}
		})
	}
}

// The lines the claim has converted but not written count against the
// window: with no room, acquire writes them (flush) and then waits for
// the written chunk to be acknowledged.
func TestTrackerAcquireCountsTheClaimsUnwrittenLines(t *testing.T) {
	f := newTrackerFixture(t, trackingAuto, func(k *KafkaConsumer) { k.MaxUndeliveredMetrics = 50 })
	if ok, _ := f.tr.acquire(context.Background(), 0, nil); !ok {
		t.Fatal("first acquire failed")
	}
	// The message became 49 lines: one more message still fits.
	if ok, _ := f.tr.acquire(context.Background(), 49, nil); !ok {
		t.Fatal("second acquire failed")
	}
	// 50 lines now: the next has to wait.
	flushes := 0
	done := make(chan bool)
	wrote := make(chan struct{})
	go func() {
		ok, _ := f.tr.acquire(context.Background(), 50, func() error {
			flushes++
			// The two messages that took room above, as ConsumeClaim's
			// flush writes them.
			cp := checkpoint{topic: trackerTopic, partition: 0, next: 2, messages: 2, lines: 50}
			err := f.tr.write([]byte(strings.Repeat("m v=1i\n", 50)), cp, f.session)
			close(wrote)
			return err
		})
		done <- ok
	}()
	<-wrote
	f.wantInFlight(1, 2, 50, 51)
	f.recv(1)
	f.ack(1)
	if !<-done || flushes != 1 {
		t.Fatalf("acquire after the acknowledgement: %d flushes", flushes)
	}
	f.session.wantMarked(t, at(0, 2))
}

func TestTrackerFallsBackWhenNobodyAcknowledges(t *testing.T) {
	f := newTrackerFixture(t, trackingAuto, nil)
	f.write(0, 10, 10, 10)
	f.write(1, 4, 4, 4)
	f.tr.mu.Lock()
	written := f.tr.queue[0].written
	f.tr.mu.Unlock()

	f.tr.check(written.Add(f.timeout-time.Nanosecond), f.timeout)
	if f.state() != probing {
		t.Fatal("gave up before delivery_timeout")
	}
	f.tr.check(written.Add(f.timeout), f.timeout)
	if f.state() != untracked {
		t.Fatalf("state %v, want untracked", f.state())
	}
	f.session.wantMarked(t, at(0, 10), at(1, 4))
	f.wantInFlight(0, 0, 0, 0)
	f.wantLog("Falling back to untracked delivery", 1)
	f.wantLog("delivery_tracking", 1)
	if f.sessions != 0 || f.stats.Rewinds.Load() != 0 {
		t.Fatal("fell back by rewinding")
	}

	// From now on: no markers, offsets marked as written, no window.
	f.out.Reset()
	f.write(0, 11, 1, 2)
	if strings.Contains(f.out.String(), delivery.Measurement) || f.out.String() != "m v=1i\nm v=1i\n" {
		t.Fatalf("untracked chunk written as %q", f.out.String())
	}
	f.session.wantMarked(t, at(0, 10), at(1, 4), at(0, 11))
	if f.tr.markers() || f.tr.chunkDone(1<<20, 1<<20) {
		t.Fatal("still tracking")
	}
	for range 3 * f.k.MaxUndeliveredMessages {
		if ok, err := f.tr.acquire(context.Background(), 0, nil); !ok || err != nil {
			t.Fatal("untracked acquire waited")
		}
	}
	// A late acknowledgement changes nothing.
	f.ack(1)
	if f.state() != untracked {
		t.Fatal("an acknowledgement after the fallback resumed tracking")
	}
}

func TestTrackerRequiredRewindsInsteadOfFallingBack(t *testing.T) {
	f := newTrackerFixture(t, trackingRequired, nil)
	f.write(0, 10, 10, 10)
	f.tr.check(time.Now().Add(f.timeout), f.timeout)
	if f.state() != probing || f.sessions != 1 || f.stats.Rewinds.Load() != 1 {
		t.Fatalf("state %v, sessions ended %d, rewinds %d", f.state(), f.sessions, f.stats.Rewinds.Load())
	}
	f.session.wantMarked(t)
	f.wantInFlight(0, 0, 0, 11) // maybe still in Telegraf
	f.wantLog(`(delivery_tracking = "required")`, 1)
	f.wantLog("Falling back", 0)
	if !f.tr.markers() {
		t.Fatal("markers no longer written")
	}
}

func TestTrackerOffWritesNoMarkers(t *testing.T) {
	f := newTrackerFixture(t, trackingOff, nil)
	f.write(0, 3, 3, 3)
	if f.out.String() != "m v=1i\nm v=1i\nm v=1i\n" {
		t.Fatalf("stdout %q", f.out.String())
	}
	f.session.wantMarked(t, at(0, 3))
	stop, err := f.tr.listen(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if f.tr.socket != "" {
		t.Fatal("off opened a socket")
	}
}

func TestTrackerTimeoutWhileTracking(t *testing.T) {
	f := newTrackerFixture(t, trackingAuto, nil)
	f.write(0, 10, 10, 10)
	f.recv(1) // tracking from now on
	f.alive(1, false)
	f.age(2 * f.timeout)

	// The output is busy (CnosDB slow): that is progress enough.
	f.alive(1, true)
	f.tr.check(time.Now(), f.timeout)
	if f.sessions != 0 {
		t.Fatal("rewound while the output said it was busy")
	}
	// A heartbeat saying nothing new is no progress.
	f.age(2 * f.timeout)
	f.alive(1, false)
	f.tr.check(time.Now(), f.timeout)
	if f.sessions != 1 || f.stats.Rewinds.Load() != 1 {
		t.Fatalf("sessions ended %d after %s of silence", f.sessions, 2*f.timeout)
	}
	f.wantLog("checkpoint 1 is unacknowledged after", 1)
	f.wantInFlight(0, 0, 0, 0)
	if f.state() != tracking {
		t.Fatalf("state %v, want tracking", f.state())
	}

	// A heartbeat naming a newer marker read is progress.
	f.newSession()
	f.write(0, 10, 10, 10)
	f.age(2 * f.timeout)
	f.alive(2, false)
	f.tr.check(time.Now(), f.timeout)
	if f.sessions != 1 {
		t.Fatal("rewound although the output read a new marker")
	}
	// A young checkpoint is never timed out, however quiet it is.
	f.age(2 * f.timeout)
	f.write(0, 20, 10, 10)
	f.tr.mu.Lock()
	f.tr.queue = f.tr.queue[1:] // only the young one left
	f.tr.mu.Unlock()
	f.tr.check(time.Now(), f.timeout)
	if f.sessions != 1 {
		t.Fatal("rewound a checkpoint younger than delivery_timeout")
	}
}

func TestTrackerStop(t *testing.T) {
	f := newTrackerFixture(t, trackingAuto, nil)
	f.write(0, 10, 10, 10)
	f.write(0, 17, 7, 7)
	f.recv(2)
	f.ack(1)
	if n := f.tr.stop(); n != 7 {
		t.Fatalf("stop reported %d unacknowledged messages, want 7", n)
	}
	f.ack(2)
	f.lost(2)
	f.tr.check(time.Now().Add(10*f.timeout), f.timeout)
	f.session.wantMarked(t, at(0, 10))
	if f.sessions != 0 || f.stats.Rewinds.Load() != 0 {
		t.Fatal("events after stop acted on")
	}
}

// A rewind ends the session, but a ConsumeClaim busy converting does not
// see it at once: it may still write the chunk it holds (ConsumeClaim's
// select also picks a waiting message over the ended context half the
// time). That chunk comes from after the lost one, so acknowledging it
// must not commit its offsets, which would skip the lines to be
// replayed.
func TestTrackerChunkFromARewoundSessionCommitsNothing(t *testing.T) {
	f := newTrackerFixture(t, trackingAuto, nil)
	f.write(0, 10, 10, 10) // offsets 0-9, seq 1: its lines get lost
	f.write(0, 20, 10, 10) // seq 2
	old := f.session
	f.ack(2) // rewind: the next session starts again at offset 0
	if old.ctx.Err() == nil {
		t.Fatal("session not ended")
	}
	f.writeIn(old, 0, 30, 10, 10) // offsets 20-29, written after the rewind
	s := f.newSession()
	f.ack(3) // the output settles what it was given
	for _, m := range append(old.marked(), s.marked()...) {
		if m.partition == 0 && m.offset > 0 {
			t.Fatalf("offset %d marked while offsets 0-9 were lost and not replayed yet (old session %v, new %v)", m.offset, old.marked(), s.marked())
		}
	}
}

// Once shortfalls are accepted (a filter), a whole checkpoint going
// missing, which no filter does, ends that: the next shortfall is
// replayed again.
func TestTrackerLostCheckpointEndsAcceptingShortfalls(t *testing.T) {
	f := newTrackerFixture(t, trackingAuto, nil)
	var seq uint64
	for round := 0; round <= maxShortReplays; round++ {
		f.write(0, 10, 10, 10)
		seq++
		f.lost(seq)
		f.newSession()
	}
	f.wantLog("Accepting such shortfalls", 1)
	rewinds := f.stats.Rewinds.Load()
	f.write(0, 20, 10, 10)
	f.write(0, 30, 10, 10)
	seq += 2
	f.ack(seq) // seq-1 never came: a gap
	f.wantLog("shortfalls are replayed again", 1)
	f.newSession()
	f.write(0, 20, 10, 10)
	seq++
	f.lost(seq)
	if got := f.stats.Rewinds.Load(); got != rewinds+2 {
		t.Fatalf("%d rewinds, want %d", got, rewinds+2)
	}
}

// After a rewind, the lines the output has not read are still in
// Telegraf's buffer: they keep counting as inside until the output reads
// their markers (or delivery_timeout), so the replay does not pile on top
// of them and overflow the buffer again.
func TestTrackerRewindKeepsUnreadLinesInside(t *testing.T) {
	f := newTrackerFixture(t, trackingAuto, func(k *KafkaConsumer) { k.MetricBatchSize = 10 })
	f.write(0, 5, 5, 5) // seq 1
	f.write(0, 10, 5, 5)
	f.write(0, 15, 5, 5)
	f.lost(2) // lines before 2 went missing: 1 and 2 were read, 3 was not
	f.tr.mu.Lock()
	inside, limbo := f.tr.inside, len(f.tr.limbo)
	f.tr.mu.Unlock()
	if inside != 6 || limbo != 1 {
		t.Fatalf("inside %d, limbo %d; want 6 (one unread chunk), 1", inside, limbo)
	}
	f.newSession()
	f.recv(3) // the old markers come through
	f.tr.mu.Lock()
	inside, limbo = f.tr.inside, len(f.tr.limbo)
	f.tr.mu.Unlock()
	if inside != 0 || limbo != 0 {
		t.Fatalf("inside %d, limbo %d after the output read them", inside, limbo)
	}

	f.write(0, 20, 5, 5) // seq 4
	f.write(0, 25, 5, 5)
	f.ack(5)
	f.tr.check(time.Now().Add(time.Hour), time.Minute)
	f.tr.mu.Lock()
	inside, limbo = f.tr.inside, len(f.tr.limbo)
	f.tr.mu.Unlock()
	if inside != 0 || limbo != 0 {
		t.Fatalf("inside %d, limbo %d after delivery_timeout", inside, limbo)
	}
}

// lastMarker parses the last line written, a marker.
func (f *trackerFixture) lastMarker() delivery.Marker {
	f.t.Helper()
	lines := strings.Split(strings.TrimSuffix(f.out.String(), "\n"), "\n")
	m, err := delivery.ParseMarker([]byte(lines[len(lines)-1]))
	if err != nil {
		f.t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	return m
}

// Markers let the output hold them in a batch only while what the output
// holds unacknowledged is under half its share of the window (the window
// less the batches Telegraf may hold: four, or two before 1.35.2), and
// never while probing.
func TestTrackerHoldsWhileTheOutputHasRoom(t *testing.T) {
	f := newTrackerFixtureFor(t, true, trackingAuto, func(k *KafkaConsumer) {
		k.MaxUndeliveredMessages = 140 // the output's share: 140 - 4*20 = 60
		k.MetricBatchSize = 20
	})
	steps := []struct {
		event    func()
		wantHold bool
	}{
		{func() {}, false},            // 1: probing
		{func() { f.ack(1) }, true},   // 2: tracking, the output holds 0
		{func() { f.recv(2) }, true},  // 3: it holds 10
		{func() { f.recv(3) }, true},  // 4: 20
		{func() { f.recv(4) }, false}, // 5: 30, half its share
		{func() { f.ack(2) }, true},   // 6: 20 again
	}
	for i, step := range steps {
		step.event()
		f.write(0, int64(10*(i+1)), 10, 10)
		if m := f.lastMarker(); m.Seq != uint64(i+1) || m.Hold != step.wantHold {
			t.Fatalf("marker %d: %+v, want hold %v", i+1, m, step.wantHold)
		}
	}
	f.ack(4) // 3 never was: a rewind forgets what the output held
	f.write(0, 70, 10, 10)
	if m := f.lastMarker(); !m.Hold {
		t.Fatalf("after a rewind: %+v, want hold", m)
	}

	for name, f := range map[string]*trackerFixture{
		// A window no larger than Telegraf's batches leaves the output
		// no share.
		"no share": newTrackerFixtureFor(t, true, trackingAuto, func(k *KafkaConsumer) {
			k.MaxUndeliveredMessages = 80
			k.MetricBatchSize = 20
		}),
		// Before 1.35.2 two batches: a share of 140 - 2*40 = 60, half
		// of which does not take a batch and a chunk (40 + 17).
		"two batches inside, no room": newTrackerFixtureFor(t, false, trackingAuto, func(k *KafkaConsumer) {
			k.MaxUndeliveredMessages = 140
			k.MetricBatchSize = 40
		}),
	} {
		f.write(0, 10, 10, 10)
		f.ack(1)
		f.write(0, 20, 10, 10)
		if m := f.lastMarker(); m.Hold {
			t.Fatalf("%s: %+v held", name, m)
		}
		f.wantLog("leave the output no room to batch", 1)
	}

	// Telegraf before 1.35.2 keeps two batches: the output's share is
	// 140 - 2*20 = 100, and it holds while it has under 50.
	old := newTrackerFixtureFor(t, false, trackingAuto, func(k *KafkaConsumer) {
		k.MaxUndeliveredMessages = 140
		k.MetricBatchSize = 20
	})
	// Marker 1 while probing; 2 once 1 is acknowledged; then the output
	// reports each read and holds 10 more before each next marker.
	for i, want := range []bool{false, true, true, true, true, true, false} {
		if i == 1 {
			old.ack(1)
		} else if i > 1 {
			old.recv(uint64(i))
		}
		old.write(0, int64(10*(i+1)), 10, 10)
		if m := old.lastMarker(); m.Seq != uint64(i+1) || m.Hold != want {
			t.Fatalf("before 1.35.2, marker %d: %+v, want hold %v", i+1, m, want)
		}
	}
}

// Telegraf that writes again while a batch is ready (1.35.2 and later)
// may hold four batches of the input's; older or unknown releases two.
func TestTrackerBatchesInsideByTelegrafRelease(t *testing.T) {
	for _, tt := range []struct {
		v     execd.TelegrafVersion
		known bool
		want  int
	}{
		{execd.TelegrafVersion{Major: 1, Minor: 27, Patch: 1}, true, 2},
		{execd.TelegrafVersion{Major: 1, Minor: 35, Patch: 1}, true, 2},
		{execd.TelegrafVersion{Major: 1, Minor: 35, Patch: 2}, true, 4},
		{execd.TelegrafVersion{Major: 1, Minor: 37, Patch: 2}, true, 4},
		{execd.TelegrafVersion{Major: 1, Minor: 37, Patch: 2}, false, 2},
	} {
		f := newTrackerFixtureFor(t, retriggersWrites(tt.v, tt.known), trackingAuto, nil)
		if got := f.tr.fullInside / f.k.MetricBatchSize; got != tt.want {
			t.Errorf("Telegraf %v (known %v): %d batches, want %d", tt.v, tt.known, got, tt.want)
		}
	}
}

// How much sits inside Telegraf: two batches before 1.35.2, whatever
// their size (more would lose batch signals); later up to four, at most
// retriggerInside in all, never fewer than two; never more than Telegraf's
// buffer for the output holds beside a batch of other metrics.
func TestInsideFor(t *testing.T) {
	for _, tt := range []struct {
		batch, buffer int
		retriggers    bool
		want          int
	}{
		{1000, 0, false, 2000},
		{5000, 0, false, 10000},
		{1000, 0, true, 4000},
		{2500, 0, true, 10000},
		{5000, 0, true, 10000},
		{10000, 0, true, 20000},
		{20, 0, true, 80},
		{1000, 10000, true, 4000},   // Telegraf's default buffer holds four
		{5000, 50000, false, 10000}, // sample.conf's
		{5000, 10000, false, 5000},  // the default buffer: one batch and room for others
		{5000, 6000, false, 5000},   // never below a batch, or no batch would fill
		{5000, 4000, false, 4000},   // nor above the buffer
	} {
		if got := insideFor(tt.batch, tt.buffer, tt.retriggers); got != tt.want {
			t.Errorf("insideFor(%d, %d, %v) = %d, want %d", tt.batch, tt.buffer, tt.retriggers, got, tt.want)
		}
	}
}

// An input paused with lines still unread in Telegraf asks it to flush once
// nothing happened for nudgeAfter, once per pause (Telegraf can sit on
// them until flush_interval: before 1.35.2 after a lost batch signal, on
// any release below a batch). Paused with everything read by the output,
// it does not: only the output can end that wait.
func TestTrackerNudgesTelegrafThatHoldsItsLines(t *testing.T) {
	for _, tt := range []struct {
		name      string
		options   func(k *KafkaConsumer)
		lines     int
		read      bool // the output read the marker: nothing left in Telegraf
		wantNudge bool
	}{
		{"room inside Telegraf", func(k *KafkaConsumer) { k.MetricBatchSize = 20 }, 39, false, true},
		{"acknowledgements, lines in Telegraf", func(k *KafkaConsumer) { k.MaxUndeliveredMessages = 8 }, 8, false, true},
		{"acknowledgements, all read", func(k *KafkaConsumer) { k.MaxUndeliveredMessages = 8 }, 8, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newTrackerFixture(t, trackingAuto, tt.options)
			nudges := make(chan struct{}, 10)
			f.tr.nudge = func() error {
				nudges <- struct{}{}
				return nil
			}
			f.write(0, 8, 8, tt.lines)
			if tt.read {
				f.recv(1)
			}
			done := make(chan bool)
			go func() {
				ok, _ := f.tr.acquire(context.Background(), 0, func() error { return nil })
				done <- ok
			}()
			wait := 4 * nudgeAfter
			if tt.wantNudge {
				wait = 40 * nudgeAfter // returns at the nudge; a slow machine may be late
			}
			select {
			case <-nudges:
				if !tt.wantNudge {
					t.Fatal("nudged Telegraf with nothing of ours in it")
				}
			case <-time.After(wait):
				if tt.wantNudge {
					t.Fatal("no nudge")
				}
			}
			select {
			case <-nudges:
				t.Fatal("nudged twice in one pause")
			case <-time.After(3 * nudgeAfter):
			}
			f.recv(1)
			f.ack(1)
			if !<-done {
				t.Fatal("acquire failed after the acknowledgement")
			}
			if got, want := f.stats.Nudges.Load(), map[bool]int64{true: 1, false: 0}[tt.wantNudge]; got != want {
				t.Fatalf("%d nudges counted, want %d", got, want)
			}
			if got := f.stats.PausesForAcks.Load() + f.stats.PausesForTelegraf.Load(); got != 1 {
				t.Fatalf("%d pauses counted, want 1", got)
			}
		})
	}
}

// A buffer too small for what the input would keep inside Telegraf caps
// it, and the log names the option and what would do.
func TestTrackerWarnsOfASmallTelegrafBuffer(t *testing.T) {
	f := newTrackerFixture(t, trackingAuto, func(k *KafkaConsumer) {
		k.MetricBatchSize = 5000
		k.MaxUndeliveredMessages = 25000
		k.MaxUndeliveredMetrics = 50000
		k.telegrafBuffer = 10000
	})
	if f.tr.fullInside != 5000 {
		t.Fatalf("inside %d, want one batch (5000)", f.tr.fullInside)
	}
	if want := "raise it to 15000 or more on that [[outputs.execd]] table"; !strings.Contains(f.log.String(), want) {
		t.Fatalf("log %q lacks %q", f.log.String(), want)
	}
}
