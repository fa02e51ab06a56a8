package kafka_consumer //nolint:revive,stylecheck // named after the Telegraf plugin it replaces

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/delivery"
)

// delivery_tracking values.
const (
	trackingAuto     = "auto"
	trackingRequired = "required"
	trackingOff      = "off"
)

// chunkFraction: a chunk (the lines written with one marker) holds at most
// this fraction of the window, and half a Telegraf batch, so that
// acknowledgements free room while the rest is still in flight, and what
// the output reports read is never far behind what it has read.
const chunkFraction = 8

// insideBatches is how many of Telegraf's batches the input lets sit in
// Telegraf's buffer (written, its marker not yet read by the output).
// Telegraf before 1.3x starts a batch write only when metric_batch_size
// new metrics arrive, and drops that signal while a write is running:
// with more than two batches waiting and the input paused by its window,
// nothing moves until flush_interval. Two batches keep a write going and
// one signal pending, never more.
const insideBatches = 2

// Short checkpoints (lines lost before them) are replayed, unless they
// keep coming: then something in Telegraf drops lines on purpose (a
// filter, a processor) and replaying cannot help.
const (
	maxShortReplays   = 3
	shortReplayWindow = 10 * time.Minute
)

type trackerState int

const (
	// Markers go out; no acknowledgement has come yet.
	probing trackerState = iota
	// The output acknowledges: offsets are committed on acknowledgement.
	tracking
	// No markers: delivery_tracking = "off", or "auto" found nobody
	// acknowledging. Offsets are committed once written to stdout.
	untracked
)

// checkpoint is a chunk written with its marker, awaiting acknowledgement.
type checkpoint struct {
	seq       uint64
	topic     string
	partition int32
	next      int64 // offset to commit once acknowledged
	messages  int
	lines     int
	written   time.Time
	received  bool // the output has read its marker
}

// tracker is the input's half of the delivery loop (package delivery): it
// writes chunks with their markers, commits offsets as markers are
// acknowledged, bounds what is in flight, and rewinds when a marker was
// lost.
type tracker struct {
	k     *KafkaConsumer
	stats *Stats
	out   io.Writer

	// wmu is held across a write, so each chunk and its marker reach
	// stdout whole, and markers in sequence order.
	wmu sync.Mutex

	mu       sync.Mutex
	state    trackerState
	socket   string
	queue    []checkpoint // written, unacknowledged, in sequence order
	nextSeq  uint64
	floor    uint64 // acknowledgements below it predate the last rewind
	messages int    // in flight: the queue's sum
	lines    int
	// Taken by chunks not yet written, so that partitions filling chunks
	// side by side stay within the window together. Their lines are not
	// known until converted: each claim adds its own when it asks.
	reservedMessages int
	// inside counts metrics (lines and markers) written whose marker the
	// output has not reported read: what sits in Telegraf's buffer.
	inside       int
	lastProgress time.Time
	lastAliveSeq uint64
	shorts       int // short checkpoints replayed since firstShort
	firstShort   time.Time
	acceptShort  bool
	session      sarama.ConsumerGroupSession
	endSession   context.CancelFunc
	room         chan struct{} // closed when the window frees up
	stopping     bool

	chunkMessages, chunkLines int // a chunk's bounds (chunkFraction)
	// tracked mirrors state != untracked, for the per-message path.
	tracked atomic.Bool
}

func newTracker(k *KafkaConsumer, out io.Writer, stats *Stats) *tracker {
	t := &tracker{k: k, stats: stats, out: out, nextSeq: 1, room: make(chan struct{})}
	t.chunkMessages = max(1, min(k.MaxUndeliveredMessages/chunkFraction, k.MetricBatchSize/2))
	t.chunkLines = max(1, min(k.MaxUndeliveredMetrics/chunkFraction, k.MetricBatchSize/2))
	if k.DeliveryTracking == trackingOff {
		t.state = untracked
	}
	t.tracked.Store(t.state != untracked)
	return t
}

// listen opens the acknowledgement socket and starts the timeout watch.
// With "auto", a socket that cannot be opened means no tracking.
func (t *tracker) listen(ctx context.Context) (stop func(), err error) {
	if t.state == untracked {
		return func() {}, nil
	}
	ln, err := delivery.Listen(t.k.DeliverySocketDir, t.event, func(err error) {
		t.k.Log.Warnf("acknowledgement socket: %v", err)
	})
	if err != nil {
		if t.k.DeliveryTracking == trackingRequired {
			return nil, fmt.Errorf("delivery_tracking: cannot open the acknowledgement socket: %w", err)
		}
		t.k.Log.Errorf("cannot open the acknowledgement socket (%v): running without delivery tracking, so offsets are committed before CnosDB has the data", err)
		t.state = untracked
		t.tracked.Store(false)
		return func() {}, nil
	}
	t.socket = ln.Path()
	t.k.Log.Infof("delivery tracking: checkpoints name %s; at most %d messages and %d metrics unacknowledged",
		t.socket, t.k.MaxUndeliveredMessages, t.k.MaxUndeliveredMetrics)
	watchCtx, stopWatch := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t.watch(watchCtx)
	}()
	return func() {
		stopWatch()
		<-done
		ln.Close()
	}, nil
}

// markers reports whether chunks are tracked, so an unwritten chunk can be
// left for a replay rather than written without a session to commit it.
func (t *tracker) markers() bool {
	return t.tracked.Load()
}

func (t *tracker) setEndSession(end context.CancelFunc) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.endSession = end
}

// setSession is called as a session starts (s) and ends (nil): offsets
// acknowledged in between are marked in it.
func (t *tracker) setSession(s sarama.ConsumerGroupSession) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.session = s
}

// write writes a chunk of lines, with its marker when tracking; untracked,
// it marks the chunk's offsets in the claim's session at once.
func (t *tracker) write(chunk []byte, cp checkpoint, session sarama.ConsumerGroupSession) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	t.mu.Lock()
	if t.state == untracked {
		t.reservedMessages -= cp.messages
		t.mu.Unlock()
		if _, err := t.out.Write(chunk); err != nil {
			return err
		}
		t.stats.Lines.Add(int64(cp.lines))
		session.MarkOffset(cp.topic, cp.partition, cp.next, "")
		return nil
	}
	t.reservedMessages -= cp.messages
	if session.Context().Err() != nil {
		// The session ended, by a rewind maybe: committing these
		// offsets could skip lines to be replayed. The next session
		// consumes them again.
		t.freeRoomLocked()
		t.mu.Unlock()
		return nil
	}
	now := time.Now()
	cp.seq, cp.written = t.nextSeq, now
	t.nextSeq++
	if len(t.queue) == 0 {
		t.lastProgress = now
	}
	t.queue = append(t.queue, cp)
	t.messages += cp.messages
	t.lines += cp.lines
	t.inside += cp.lines + 1
	t.mu.Unlock()
	// Queued first: the acknowledgement may come before Write returns.
	chunk = delivery.AppendMarker(chunk, delivery.Marker{Seq: cp.seq, Lines: uint64(cp.lines), Socket: t.socket})
	if _, err := t.out.Write(chunk); err != nil {
		return err
	}
	t.stats.Lines.Add(int64(cp.lines))
	return nil
}

// acquire takes room in the window for one more message, given the lines
// of the claim's chunk so far. When there is none, it writes the chunk
// (flush) so that it can be acknowledged, and waits. False means the
// session ended first.
func (t *tracker) acquire(ctx context.Context, chunkLines int, flush func() error) (bool, error) {
	for {
		t.mu.Lock()
		messages := t.messages + t.reservedMessages
		lines := t.lines + chunkLines
		if t.state == untracked || messages == 0 ||
			(messages < t.k.MaxUndeliveredMessages && lines < t.k.MaxUndeliveredMetrics &&
				t.inside+chunkLines < insideBatches*t.k.MetricBatchSize) {
			t.reservedMessages++
			t.mu.Unlock()
			return true, nil
		}
		room := t.room
		t.mu.Unlock()
		if err := flush(); err != nil {
			return false, err
		}
		chunkLines = 0
		select {
		case <-room:
		case <-ctx.Done():
			return false, nil
		}
	}
}

// release gives back the room of a chunk that will not be written.
func (t *tracker) release(messages int) {
	t.mu.Lock()
	t.reservedMessages -= messages
	t.freeRoomLocked()
	t.mu.Unlock()
}

// chunkDone reports whether a chunk this size should be written now.
func (t *tracker) chunkDone(messages, lines int) bool {
	return t.tracked.Load() && (messages >= t.chunkMessages || lines >= t.chunkLines)
}

func (t *tracker) freeRoomLocked() {
	close(t.room)
	t.room = make(chan struct{})
}

// event handles what the output says. Acknowledgements come in marker
// order, so one for a later marker than the oldest outstanding means the
// oldest was lost on the way.
func (t *tracker) event(e delivery.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state == untracked || t.stopping {
		return
	}
	if t.state == probing {
		t.state = tracking
		t.k.Log.Infof("the output acknowledges checkpoints: offsets are committed once CnosDB has the data")
	}
	now := time.Now()
	switch e.Kind {
	case delivery.Alive:
		if e.Busy || e.Seq != t.lastAliveSeq {
			t.lastProgress = now
		}
		t.lastAliveSeq = e.Seq
		return
	case delivery.Received:
		t.lastProgress = now
		for i := range t.queue {
			if t.queue[i].seq > e.Seq {
				break
			}
			t.receivedLocked(&t.queue[i])
		}
		return
	}
	if e.Seq < t.floor || len(t.queue) == 0 || e.Seq < t.queue[0].seq {
		return // from before a rewind, or repeated by a retry in Telegraf
	}
	if e.Kind == delivery.Lost {
		// Reported as the marker is read, often before the markers
		// ahead of it are acknowledged. Accepted, it is acknowledged
		// like any other once its lines are settled.
		if !t.acceptShortLocked(e, now) {
			t.rewindLocked(fmt.Sprintf("the output received %d of the %d lines written before checkpoint %d: Telegraf dropped some (look for \"Metric buffer overflow\" in its log; keep max_undelivered_metrics well below metric_buffer_limit)", e.Got, e.Expected, e.Seq))
		}
		return
	}
	if oldest := t.queue[0].seq; e.Seq > oldest {
		t.rewindLocked(fmt.Sprintf("checkpoint %d was never acknowledged, but %d was: lines were lost between this input and the output (Telegraf dropped them, or the output was restarted)", oldest, e.Seq))
		return
	}
	t.acknowledgedLocked(now)
}

// acceptShortLocked decides whether a short checkpoint is let through:
// only when shortfalls keep coming back after replays.
func (t *tracker) acceptShortLocked(e delivery.Event, now time.Time) bool {
	if t.acceptShort {
		return true
	}
	if t.shorts == 0 || now.Sub(t.firstShort) > shortReplayWindow {
		t.shorts, t.firstShort = 0, now
	}
	t.shorts++
	if t.shorts <= maxShortReplays {
		return false
	}
	t.acceptShort = true
	t.k.Log.Errorf("lines keep going missing between this input and the output (checkpoint %d: %d of %d arrived) after %d replays: something in Telegraf drops metrics on purpose (a namepass/fieldpass/tagpass filter on the output, a processor, an aggregator with drop_original). Accepting such shortfalls from now on: the dropped lines are not replayed.",
		e.Seq, e.Got, e.Expected, maxShortReplays)
	return true
}

func (t *tracker) receivedLocked(cp *checkpoint) {
	if !cp.received {
		cp.received = true
		t.inside -= cp.lines + 1
		t.freeRoomLocked()
	}
}

// acknowledgedLocked commits the oldest checkpoint's offsets.
func (t *tracker) acknowledgedLocked(now time.Time) {
	t.receivedLocked(&t.queue[0])
	cp := t.queue[0]
	t.queue = t.queue[1:]
	t.messages -= cp.messages
	t.lines -= cp.lines
	t.lastProgress = now
	t.stats.Acknowledged.Add(int64(cp.messages))
	if t.session != nil {
		t.session.MarkOffset(cp.topic, cp.partition, cp.next, "")
	}
	t.freeRoomLocked()
}

// rewindLocked forgets what is in flight and ends the session: the next
// one starts from the committed offsets, which only acknowledged
// checkpoints advanced.
func (t *tracker) rewindLocked(why string) {
	t.stats.Rewinds.Add(1)
	t.k.Log.Warnf("%s; replaying from the last acknowledged offsets (%d messages were unacknowledged)", why, t.messages)
	t.queue = t.queue[:0]
	t.messages, t.lines, t.inside = 0, 0, 0
	t.floor = t.nextSeq
	t.lastProgress = time.Now()
	t.freeRoomLocked()
	if t.endSession != nil {
		t.endSession()
	}
}

// watch applies delivery_timeout.
func (t *tracker) watch(ctx context.Context) {
	timeout := time.Duration(t.k.DeliveryTimeout)
	tick := time.NewTicker(min(time.Second, timeout/4))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			t.check(now, timeout)
		}
	}
}

func (t *tracker) check(now time.Time, timeout time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopping || t.state == untracked || len(t.queue) == 0 {
		return
	}
	oldest := t.queue[0]
	switch t.state {
	case probing:
		if now.Sub(oldest.written) < timeout {
			return
		}
		if t.k.DeliveryTracking == trackingAuto {
			t.fallBackLocked(timeout)
			return
		}
		t.rewindLocked(fmt.Sprintf("no acknowledgement in %s since checkpoint %d was written (delivery_tracking = \"required\"): is telegraf-cnosdb the output, and does %s reach it?", timeout, oldest.seq, delivery.Measurement))
	case tracking:
		if now.Sub(oldest.written) < timeout || now.Sub(t.lastProgress) < timeout {
			return
		}
		t.rewindLocked(fmt.Sprintf("checkpoint %d is unacknowledged after %s with no sign of progress from the output (raise delivery_timeout if Telegraf's flush_interval is longer)", oldest.seq, timeout))
	}
}

// fallBackLocked gives up on acknowledgements: nobody sends them.
func (t *tracker) fallBackLocked(timeout time.Duration) {
	t.k.Log.Errorf("no acknowledgement in %s since the first checkpoint: the output is not telegraf-cnosdb, or checkpoints (measurement %s) are filtered out before it. "+
		"Falling back to untracked delivery: offsets are committed once lines are written to Telegraf, so a Telegraf restart or a buffer overflow can lose data. "+
		"Set delivery_tracking = \"off\" to start that way without this wait, or \"required\" to never fall back.",
		timeout, delivery.Measurement)
	t.state = untracked
	t.tracked.Store(false)
	for _, cp := range t.queue {
		if t.session != nil {
			t.session.MarkOffset(cp.topic, cp.partition, cp.next, "")
		}
	}
	t.queue = t.queue[:0]
	t.messages, t.lines, t.inside = 0, 0, 0
	t.freeRoomLocked()
}

// stop ends tracking for shutdown and reports how many messages were
// written but never acknowledged: the next run consumes them again.
func (t *tracker) stop() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopping = true
	return t.messages
}
