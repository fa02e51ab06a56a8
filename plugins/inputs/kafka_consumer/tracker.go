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
	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/execd"
	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/selfstat"
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

// Telegraf before 1.35.2 starts a batch write only when metric_batch_size
// new metrics arrive, and drops that signal while a write is running: with
// more than two batches waiting, or the input paused by its window while
// a write runs, nothing moves until flush_interval. So the input keeps two
// batches in Telegraf (a write going and one signal pending, never more),
// and Telegraf writes on only if the next batch is in before a write
// ends: the larger the batches, the longer acknowledgements may take on
// the way (sample.conf's 5,000 for telegraf-cnosdb's output, measured).
// From 1.35.2 (its pull request 17246) Telegraf writes again after a
// write while a batch is ready, and any amount inside works: four
// batches of 1,000 keep it from ever waiting for the input (two cost
// about a tenth of the throughput there), two of 5,000 too. Either way
// the output may hold markers for larger writes (holdLocked): it holds
// only what cannot make the input wait.
func retriggersWrites(telegraf execd.TelegrafVersion, known bool) bool {
	return known && telegraf.AtLeast(1, 35, 2)
}

// insideFor is how many metrics the input keeps inside Telegraf for
// batches of batch (retriggersWrites), within Telegraf's buffer for the
// output (0: unknown) less a batch, for other inputs' metrics and the
// self-metrics: an overflow there costs a replay. Never below a batch,
// or no batch would fill, unless the buffer itself is smaller.
func insideFor(batch, buffer int, retriggers bool) int {
	inside := 2 * batch
	if retriggers {
		inside = max(2*batch, min(4*batch, retriggerInside))
	}
	if buffer > 0 && inside > buffer-batch {
		inside = min(buffer, max(batch, buffer-batch))
	}
	return inside
}

// retriggerInside: a Telegraf that retriggers writes gets up to four
// batches, at most this many metrics in all, never fewer than two batches.
const retriggerInside = 10000

// Short checkpoints (lines lost before them) are replayed, unless the
// same messages come up short this many replays in a row with no
// checkpoint lost meanwhile: then something in Telegraf drops those lines
// on purpose (a filter, a processor), and replaying cannot help. A buffer
// overflow drops different lines each time, and whole checkpoints with
// them.
const maxShortReplays = 3

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
	first     int64 // offset of the chunk's first message
	next      int64 // offset to commit once acknowledged
	messages  int
	lines     int
	written   time.Time
	received  bool // the output has read its marker
	// ps is the partition's self-metrics (nil in some tests). A
	// checkpoint of self-metrics rows has no topic: it commits nothing.
	ps *partitionStats
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
	inside int
	// heldMessages and heldLines: in the queue and read by the output,
	// so held there until CnosDB has them.
	heldMessages, heldLines int

	lastProgress time.Time
	lastAliveSeq uint64
	shortAt      checkpoint // the messages of the last short checkpoint
	shortRepeats int        // times they came up short in a row
	acceptShort  bool       // lines are filtered on purpose: let shortfalls through
	// limbo holds the checkpoints written before a rewind whose markers
	// the output has not read: their lines are still in Telegraf's
	// buffer and count in inside until read, or until delivery_timeout.
	limbo      []checkpoint
	limboSince time.Time
	// insideLimit bounds inside: insideFor's (retriggersWrites),
	// halved at each loss in Telegraf (its buffer is smaller than we
	// assumed, or shared with busy inputs) and regained slowly as
	// checkpoints are acknowledged, so replays cannot overflow it for ever.
	insideLimit, fullInside int
	// holdMarkers: the window leaves the output room to hold markers
	// for larger writes (newTracker).
	holdMarkers bool
	// nudge asks Telegraf to flush (SIGUSR1): set for a Telegraf before
	// 1.35.2, which can leave whole batches in its buffer until
	// flush_interval. lastNudge rate-limits it.
	nudge      func() error
	lastNudge  time.Time
	session    sarama.ConsumerGroupSession
	endSession context.CancelFunc
	room       chan struct{} // closed when the window frees up
	stopping   bool

	chunkMessages, chunkLines int // a chunk's bounds (chunkFraction)
	// tracked mirrors state != untracked, for the per-message path.
	tracked atomic.Bool

	// For the self-metrics: every partition owned, and how long
	// checkpoints waited for their acknowledgement.
	parts      partitionRegistry
	ackLatency selfstat.Histogram
}

// newTracker makes the input's half of the loop; retriggers says whether
// Telegraf writes again while a batch is ready (retriggersWrites).
func newTracker(k *KafkaConsumer, out io.Writer, stats *Stats, retriggers bool) *tracker {
	t := &tracker{k: k, stats: stats, out: out, nextSeq: 1, room: make(chan struct{})}
	t.fullInside = insideFor(k.MetricBatchSize, k.telegrafBuffer, retriggers)
	if want := insideFor(k.MetricBatchSize, 0, retriggers); t.fullInside < want && k.DeliveryTracking != trackingOff {
		k.Log.Warnf("Telegraf's metric_buffer_limit for telegraf-cnosdb's output (%d) leaves room for %d of this input's metrics, not the %d that keep Telegraf writing: raise it to %d or more on that [[outputs.execd]] table",
			k.telegrafBuffer, t.fullInside, want, want+k.MetricBatchSize)
	}
	if k.DeliveryTracking != trackingOff && k.MaxUndeliveredMessages < 2*k.MetricBatchSize {
		k.Log.Warnf("max_undelivered_messages = %d is less than twice metric_batch_size (%d): Telegraf flushes full batches at once and the rest only every flush_interval, so with this window most batches wait for it; raise it to %d or more",
			k.MaxUndeliveredMessages, k.MetricBatchSize, 2*k.MetricBatchSize)
	}
	t.insideLimit = t.fullInside
	t.chunkMessages = max(1, min(k.MaxUndeliveredMessages/chunkFraction, k.MetricBatchSize/2))
	t.chunkLines = max(1, min(k.MaxUndeliveredMetrics/chunkFraction, k.MetricBatchSize/2))
	// Half the output's share of the window must take a Telegraf batch
	// and a chunk more: a marker without Hold leaves Telegraf promptly
	// only in a full batch.
	roomy := k.MaxUndeliveredMessages-t.fullInside >= 2*(k.MetricBatchSize+t.chunkMessages) &&
		k.MaxUndeliveredMetrics-t.fullInside >= 2*(k.MetricBatchSize+t.chunkLines)
	t.holdMarkers = roomy
	if !roomy && k.DeliveryTracking != trackingOff {
		k.Log.Infof("max_undelivered_messages = %d and max_undelivered_metrics = %d leave the output no room to batch beyond Telegraf's: it writes to CnosDB at every pause (%d and %d or more would let it)",
			k.MaxUndeliveredMessages, k.MaxUndeliveredMetrics,
			t.fullInside+2*(k.MetricBatchSize+t.chunkMessages), t.fullInside+2*(k.MetricBatchSize+t.chunkLines))
	}
	t.tracked.Store(true)
	if k.DeliveryTracking == trackingOff {
		t.untrackLocked()
	}
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
		t.untrackLocked()
		return func() {}, nil
	}
	t.socket = ln.Path()
	t.k.Log.Infof("delivery tracking: checkpoints name %s; at most %d messages and %d metrics unacknowledged, %d inside Telegraf",
		t.socket, t.k.MaxUndeliveredMessages, t.k.MaxUndeliveredMetrics, t.fullInside)
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
	t.reservedMessages -= cp.messages
	if t.state == untracked {
		t.mu.Unlock()
		if _, err := t.out.Write(chunk); err != nil {
			return err
		}
		t.stats.Lines.Add(int64(cp.lines))
		cp.ps.wrote(cp.lines)
		session.MarkOffset(cp.topic, cp.partition, cp.next, "")
		cp.ps.committedTo(cp.next)
		return nil
	}
	if session.Context().Err() != nil {
		// The session ended, by a rewind maybe: committing these
		// offsets could skip lines to be replayed. The next session
		// consumes them again.
		t.freeRoomLocked()
		t.mu.Unlock()
		return nil
	}
	marker := t.queueLocked(cp)
	t.mu.Unlock()
	// Queued first: the acknowledgement may come before Write returns.
	if _, err := t.out.Write(delivery.AppendMarker(chunk, marker)); err != nil {
		return err
	}
	t.stats.Lines.Add(int64(cp.lines))
	cp.ps.wrote(cp.lines)
	return nil
}

// queueLocked puts a checkpoint in the queue and returns its marker.
func (t *tracker) queueLocked(cp checkpoint) delivery.Marker {
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
	return delivery.Marker{Seq: cp.seq, Lines: uint64(cp.lines), Socket: t.socket, Hold: t.holdLocked()}
}

// writeStats writes self-metrics rows. Tracked, they get a checkpoint of
// their own, so the output's count of the lines between markers holds;
// it commits nothing when acknowledged, and a replay does not bring
// them back. They take no room in the window, but never overfill
// Telegraf: when the output stops reading, rows are left out until it
// reads again (false: left out).
func (t *tracker) writeStats(rows []byte, n int) (bool, error) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	t.mu.Lock()
	if t.stopping || (t.state != untracked && t.inside+n+1 > t.insideLimit) {
		t.mu.Unlock()
		return false, nil
	}
	if t.state == untracked {
		t.mu.Unlock()
		_, err := t.out.Write(rows)
		return err == nil, err
	}
	marker := t.queueLocked(checkpoint{lines: n})
	t.mu.Unlock()
	_, err := t.out.Write(delivery.AppendMarker(rows, marker))
	return err == nil, err
}

// acquire takes room in the window for one more message, given the lines
// of the claim's chunk so far. When there is none, it writes the chunk
// (flush) so that it can be acknowledged, and waits. False means the
// session ended first.
func (t *tracker) acquire(ctx context.Context, chunkLines int, flush func() error) (bool, error) {
	room, windowFull, ok := t.take(chunkLines)
	if ok {
		return true, nil
	}
	return t.pause(ctx, flush, room, windowFull)
}

// take reserves room for one message when there is some; otherwise it
// says what to wait on, and whether the window itself is full (else the
// room inside Telegraf is).
func (t *tracker) take(chunkLines int) (room <-chan struct{}, windowFull, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	messages := t.messages + t.reservedMessages
	lines := t.lines + chunkLines
	if t.state == untracked || messages == 0 ||
		(messages < t.k.MaxUndeliveredMessages && lines < t.k.MaxUndeliveredMetrics &&
			t.inside+chunkLines < t.insideLimit) {
		t.reservedMessages++
		return nil, false, true
	}
	return t.room, messages >= t.k.MaxUndeliveredMessages || lines >= t.k.MaxUndeliveredMetrics, false
}

// pause is acquire's slow path, counted and timed as one pause however
// often it wakes: it writes the claim's chunk and waits until take
// succeeds.
func (t *tracker) pause(ctx context.Context, flush func() error, room <-chan struct{}, windowFull bool) (bool, error) {
	if windowFull {
		t.stats.PausesForAcks.Add(1)
	} else {
		t.stats.PausesForTelegraf.Add(1)
	}
	start := time.Now()
	defer func() { t.stats.PausedNanos.Add(int64(time.Since(start))) }()
	if err := flush(); err != nil {
		return false, err
	}
	nudged := false
	for {
		if !t.waitForRoom(ctx, room, &nudged) {
			return false, nil
		}
		// The chunk is written: its lines count in the window now.
		var ok bool
		if room, _, ok = t.take(0); ok {
			return true, nil
		}
	}
}

// nudgeAfter is how long the input waits, paused, with lines of its
// still unread in Telegraf, before asking Telegraf to flush. Telegraf
// before 1.35.2 starts a batch write only when a batch's worth of new
// metrics arrived, and drops that signal while a write runs: with the
// input paused for room inside Telegraf, the lines left in its buffer
// waited for flush_interval (10 s by default), several times per million
// messages. Any release waits so for less than a batch (checkpoints of
// messages that were all invalid, or a limit halved after losses). A
// healthy batch write takes milliseconds.
const nudgeAfter = 250 * time.Millisecond

// waitForRoom waits until the window frees up; when nothing happens for
// nudgeAfter and lines sit unread in Telegraf, it asks Telegraf to flush,
// once per pause (nudged): an output that is stuck stays stuck. False
// means ctx ended first.
func (t *tracker) waitForRoom(ctx context.Context, room <-chan struct{}, nudged *bool) bool {
	var nudge <-chan time.Time
	if t.nudge != nil && !*nudged {
		timer := time.NewTimer(nudgeAfter)
		defer timer.Stop()
		nudge = timer.C
	}
	select {
	case <-room:
		return true
	case <-ctx.Done():
		return false
	case <-nudge:
		t.mu.Lock()
		waiting := t.inside > 0
		t.mu.Unlock()
		if waiting {
			*nudged = true
			t.nudgeTelegraf()
		}
		return true // look again; the next wait has no timer once nudged
	}
}

// nudgeTelegraf asks Telegraf to flush, at most once per nudgeAfter for
// all the partitions that wait.
func (t *tracker) nudgeTelegraf() {
	t.mu.Lock()
	if time.Since(t.lastNudge) < nudgeAfter {
		t.mu.Unlock()
		return
	}
	t.lastNudge = time.Now()
	t.mu.Unlock()
	if err := t.nudge(); err != nil {
		t.k.Log.Debugf("asking Telegraf to flush: %v", err)
		return
	}
	t.stats.Nudges.Add(1)
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
	// Alive names the last marker read; the other events one that was
	// read: all markers up to it have left Telegraf.
	t.readUpToLocked(e.Seq)
	switch e.Kind {
	case delivery.Alive:
		if e.Busy || e.Seq != t.lastAliveSeq {
			t.lastProgress = now
		}
		t.lastAliveSeq = e.Seq
		return
	case delivery.Received:
		t.lastProgress = now
		return
	}
	if e.Seq < t.floor || len(t.queue) == 0 || e.Seq < t.queue[0].seq {
		return // from before a rewind, or repeated by a retry in Telegraf
	}
	if e.Kind == delivery.Lost {
		// Reported as the marker is read, often before the markers
		// ahead of it are acknowledged. Accepted, it is acknowledged
		// like any other once its lines are settled.
		if !t.acceptShortLocked(e) {
			t.lostInTelegrafLocked()
			t.rewindLocked(fmt.Sprintf("the output received %d of the %d lines written before checkpoint %d: Telegraf dropped some (look for \"Metric buffer overflow\" in its log: its metric_buffer_limit must hold the %d metrics this input keeps inside it, plus what other inputs send)", e.Got, e.Expected, e.Seq, t.fullInside))
		}
		return
	}
	if oldest := t.queue[0].seq; e.Seq > oldest {
		t.shortRepeats = 0
		if t.acceptShort {
			t.acceptShort = false
			t.k.Log.Warnf("a whole checkpoint went missing, which no filter does: shortfalls are replayed again")
		}
		t.lostInTelegrafLocked()
		t.rewindLocked(fmt.Sprintf("checkpoint %d was never acknowledged, but %d was: lines were lost between this input and the output (Telegraf dropped them, or the output was restarted)", oldest, e.Seq))
		return
	}
	t.acknowledgedLocked(now)
}

// acceptShortLocked decides whether a short checkpoint is let through:
// only when the same messages came up short maxShortReplays replays in a
// row, and from then on until a whole checkpoint goes missing.
func (t *tracker) acceptShortLocked(e delivery.Event) bool {
	if t.acceptShort {
		return true
	}
	var cp checkpoint
	for _, q := range t.queue {
		if q.seq == e.Seq {
			cp = q
			break
		}
	}
	at := t.shortAt
	if t.shortRepeats > 0 && cp.topic == at.topic && cp.partition == at.partition && cp.first < at.next && at.first < cp.next {
		t.shortRepeats++
	} else {
		t.shortAt, t.shortRepeats = cp, 1
	}
	if t.shortRepeats <= maxShortReplays {
		return false
	}
	t.acceptShort = true
	t.k.Log.Errorf("the same lines went missing between this input and the output %d replays in a row (checkpoint %d: %d of %d arrived): something in Telegraf drops metrics on purpose (a namepass/fieldpass/tagpass filter on the output, a processor, an aggregator with drop_original). Accepting such shortfalls until a whole checkpoint goes missing: the dropped lines are not replayed.",
		maxShortReplays, e.Seq, e.Got, e.Expected)
	return true
}

// readUpToLocked notes that the output has read every marker up to seq:
// those lines have left Telegraf's buffer.
func (t *tracker) readUpToLocked(seq uint64) {
	for i := range t.queue {
		if t.queue[i].seq > seq {
			break
		}
		t.receivedLocked(&t.queue[i])
	}
	n := 0
	for n < len(t.limbo) && t.limbo[n].seq <= seq {
		t.inside -= t.limbo[n].lines + 1
		n++
	}
	if n > 0 {
		t.limbo = t.limbo[n:]
		t.freeRoomLocked()
	}
}

// receivedLocked notes that the output read a queued checkpoint's marker.
func (t *tracker) receivedLocked(cp *checkpoint) {
	if !cp.received {
		cp.received = true
		t.inside -= cp.lines + 1
		t.heldMessages += cp.messages
		t.heldLines += cp.lines
		t.freeRoomLocked()
	}
}

// holdLocked decides whether the next marker lets the output hold it in
// a batch until the batch fills (delivery.Marker.Hold). Of the window,
// Telegraf has at most fullInside; the rest is the output's, which must
// fit the batch being written to CnosDB and the one filling meanwhile.
// While it holds less than half of that, this input cannot be made to
// wait for an acknowledgement, and larger batches are fewer writes for
// CnosDB and both children (one per Telegraf batch otherwise). While
// probing, the first acknowledgement should come soon.
//
// holdMarkers is false when the window is too small for it (newTracker).
func (t *tracker) holdLocked() bool {
	return t.holdMarkers && t.state == tracking &&
		2*t.heldMessages < t.k.MaxUndeliveredMessages-t.fullInside &&
		2*t.heldLines < t.k.MaxUndeliveredMetrics-t.fullInside
}

// acknowledgedLocked commits the oldest checkpoint's offsets.
func (t *tracker) acknowledgedLocked(now time.Time) {
	t.receivedLocked(&t.queue[0])
	cp := t.queue[0]
	t.queue = t.queue[1:]
	t.messages -= cp.messages
	t.lines -= cp.lines
	t.heldMessages -= cp.messages
	t.heldLines -= cp.lines
	t.lastProgress = now
	t.stats.Acknowledged.Add(int64(cp.messages))
	t.ackLatency.Observe(now.Sub(cp.written))
	if t.insideLimit < t.fullInside {
		t.insideLimit = min(t.fullInside, t.insideLimit+max(1, cp.lines/chunkFraction))
	}
	if t.session != nil && cp.topic != "" {
		t.session.MarkOffset(cp.topic, cp.partition, cp.next, "")
		cp.ps.committedTo(cp.next)
	}
	t.freeRoomLocked()
}

// lostInTelegrafLocked halves what may sit in Telegraf after a loss there.
func (t *tracker) lostInTelegrafLocked() {
	limit := max(t.chunkLines+1, t.insideLimit/2)
	if limit < t.insideLimit {
		t.insideLimit = limit
		t.k.Log.Warnf("keeping at most %d metrics inside Telegraf for now (metric_batch_size = %d assumes %d)", limit, t.k.MetricBatchSize, t.fullInside)
	}
}

// rewindLocked forgets what is in flight and ends the session: the next
// one starts from the committed offsets, which only acknowledged
// checkpoints advanced.
func (t *tracker) rewindLocked(why string) {
	t.stats.Rewinds.Add(1)
	t.k.Log.Warnf("%s; replaying from the last acknowledged offsets (%d messages were unacknowledged)", why, t.messages)
	// What the output has not read is still in Telegraf: writing more on
	// top of it at once would overflow the buffer again.
	for _, cp := range t.queue {
		if !cp.received {
			t.limbo = append(t.limbo, cp)
		}
	}
	t.limboSince = time.Now()
	t.queue = t.queue[:0]
	t.messages, t.lines = 0, 0
	t.heldMessages, t.heldLines = 0, 0
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
	if t.stopping || t.state == untracked {
		return
	}
	if len(t.limbo) > 0 && now.Sub(t.limboSince) >= timeout {
		// Never read: lost in Telegraf after all.
		t.readUpToLocked(t.limbo[len(t.limbo)-1].seq)
	}
	if len(t.queue) == 0 {
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

// untrackLocked stops writing markers; the state only ever goes this way.
func (t *tracker) untrackLocked() {
	t.state = untracked
	t.tracked.Store(false)
}

// fallBackLocked gives up on acknowledgements: nobody sends them.
func (t *tracker) fallBackLocked(timeout time.Duration) {
	t.k.Log.Errorf("no acknowledgement in %s since the first checkpoint: the output is not telegraf-cnosdb, or checkpoints (measurement %s) are filtered out before it. "+
		"Falling back to untracked delivery: offsets are committed once lines are written to Telegraf, so a Telegraf restart or a buffer overflow can lose data. "+
		"Set delivery_tracking = \"off\" to start that way without this wait, or \"required\" to never fall back.",
		timeout, delivery.Measurement)
	t.untrackLocked()
	for _, cp := range t.queue {
		if t.session != nil && cp.topic != "" {
			t.session.MarkOffset(cp.topic, cp.partition, cp.next, "")
			cp.ps.committedTo(cp.next)
		}
	}
	t.queue = t.queue[:0]
	t.limbo = nil
	t.messages, t.lines, t.inside = 0, 0, 0
	t.heldMessages, t.heldLines = 0, 0
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
