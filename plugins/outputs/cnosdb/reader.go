package cnosdb

import (
	"bytes"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/delivery"
)

const (
	// readBufferSize is the stdin buffer; it grows only for a single
	// entry longer than itself, and shrinks back afterwards.
	readBufferSize = 256 << 10
	// minRead is the room below which the buffer is compacted before
	// the next read.
	minRead = 16 << 10
)

// batch is a run of complete entries, each ending in "\n", ready to be a
// request body.
type batch struct {
	seq     uint64
	body    []byte
	lines   int
	tagless int

	// Filled only when the batch has to be split (index).
	ends   []int  // ends[i]: offset just past line i
	tagged []bool // tagged[i]: line i has tags
	// shapes holds the lines' entry.shape as runs of one shape (0: not
	// known), while the type guard is on; used only when the runs cover
	// the whole batch (shapesCover).
	shapes []shapeRun

	// markers were read after this batch's lines (and the previous
	// batches'): they are acknowledged once it is settled.
	markers []delivery.Marker
}

// shapeRun is a run of consecutive lines of one shape, and where the last
// of them ends in the body.
type shapeRun struct {
	shape uint64
	lines int
	end   int
}

// addShape records the shape of the line that ends the body at end.
func (b *batch) addShape(shape uint64, end int) {
	if n := len(b.shapes); n > 0 && b.shapes[n-1].shape == shape {
		b.shapes[n-1].lines++
		b.shapes[n-1].end = end
		return
	}
	b.shapes = append(b.shapes, shapeRun{shape: shape, lines: 1, end: end})
}

// shapesCover tells whether the runs of shapes account for every line.
func (b *batch) shapesCover() bool {
	lines := 0
	for _, r := range b.shapes {
		lines += r.lines
	}
	return len(b.shapes) > 0 && lines == b.lines && b.shapes[len(b.shapes)-1].end == len(b.body)
}

func (b *batch) reset(seq uint64) {
	b.seq = seq
	b.body = b.body[:0]
	b.lines = 0
	b.tagless = 0
	b.ends = b.ends[:0]
	b.tagged = b.tagged[:0]
	b.shapes = b.shapes[:0]
	b.markers = b.markers[:0]
}

// pipeline holds the reader's side: the batch being filled, the pool of
// free batches and the queue of sealed ones.
type pipeline struct {
	c      *CnosDB
	stats  *Stats
	acks   *delivery.Acker
	layout lineLayout // of the last data line scanned in full (reader side only)

	pool       chan *batch // free batches
	ready      chan *batch // sealed batches, in sequence order
	allocated  int         // batches made so far (reader side only)
	maxBatches int
	batchBytes int
	batchLines int

	// taglessRefused is set by the sender once CnosDB has refused a line
	// for having no tags (CnosDB 2.3.0).
	taglessRefused atomic.Bool
	// guardTypes: the sender checks field types itself (CnosDB before
	// 2.4.1), so lines are read with their shape.
	guardTypes atomic.Bool

	mu       sync.Mutex // guards everything below
	cur      *batch
	nextSeq  uint64
	closed   bool // ready is closed: no batch may be sealed any more
	eager    bool // stopping: seal after every read instead of waiting
	timer    *time.Timer
	timerSeq uint64
	// The run of pass-through entries not yet copied into cur.
	runStart, runEnd int
	// skipping: the reader is in the middle of an invalid record.
	skipping bool
	// dataLines counts the entries read that are not markers, for tally.
	dataLines uint64
	tally     delivery.Tally
	// markerPending: cur holds a marker the input may be waiting on, so
	// it is sealed as soon as the sender is free and stdin has nothing
	// more to give, or the sender becomes free, rather than at batch_size
	// or flush_interval. While the sender is busy, lines keep going into
	// cur, so batches grow with the load. A marker that says the input
	// can go on (Hold) waits for the batch to fill like any line, as long
	// as stdin does not go quiet (quiet).
	markerPending bool
	// quiet makes a held marker pending once stdin has been quiet for
	// holdQuiet after a read (quietReads: the read count then; quietArmed:
	// when, so that a callback the timer started just before a read armed
	// it again does not take that read's arming for its own).
	quiet             *time.Timer
	reads, quietReads uint64
	quietArmed        time.Time

	// abandon is closed when shutdown_timeout has run out.
	abandon chan struct{}
	// inputEnd is closed when the reader has stopped.
	inputEnd chan struct{}
	// senderIdle: the sender waits for a batch. Not under mu: the reader
	// may hold mu while it waits for the sender to free a batch.
	senderIdle atomic.Bool
	// holding: cur holds markers not yet sealed, which the heartbeats
	// report as busy so the input does not take the wait for a loss.
	holding atomic.Bool
}

func newPipeline(c *CnosDB, stats *Stats, acks *delivery.Acker) *pipeline {
	maxBatches := int(c.MaxBufferedBytes / c.BatchSizeBytes)
	p := &pipeline{
		c:          c,
		stats:      stats,
		pool:       make(chan *batch, maxBatches),
		ready:      make(chan *batch, maxBatches),
		maxBatches: maxBatches,
		batchBytes: int(c.BatchSizeBytes),
		batchLines: c.BatchSize,
		acks:       acks,
		abandon:    make(chan struct{}),
		inputEnd:   make(chan struct{}),
	}
	p.timer = time.AfterFunc(time.Hour, p.flushTimeout)
	p.timer.Stop()
	p.quiet = time.AfterFunc(time.Hour, p.quietTimeout)
	p.quiet.Stop()
	return p
}

// holdQuiet is how long stdin stays quiet before a batch holding markers
// with Hold is sent as soon as the sender is free: the input has nothing
// more for now (the end of a backlog, a pause in the stream), and holding
// the batch for flush_interval would only delay its acknowledgement. A
// stream that keeps Telegraf writing leaves no such gap, so its batches
// still fill.
const holdQuiet = 50 * time.Millisecond

// quietTimeout: no read since the timer was armed.
func (p *pipeline) quietTimeout() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.reads != p.quietReads || p.cur == nil || len(p.cur.markers) == 0 {
		return
	}
	if time.Since(p.quietArmed) < holdQuiet {
		return // armed again meanwhile: that timer will call again
	}
	p.markerPending = true
	if p.senderIdle.Load() {
		p.sealLocked()
	}
}

// read reads stdin until its end, or until the pipeline is closed.
func (p *pipeline) read(in io.Reader) {
	defer close(p.inputEnd)
	buf := make([]byte, 0, readBufferSize)
	rescanAt := 0
	for {
		n, err := in.Read(buf[len(buf):cap(buf)])
		// A short read means the pipe was empty: Telegraf has written
		// all it has for now.
		drained := n < cap(buf)-len(buf)
		fresh := buf[len(buf) : len(buf)+n]
		buf = buf[:len(buf)+n]
		atEOF := err != nil
		if err != nil && err != io.EOF {
			p.c.Log.Errorf("reading stdin: %v: treating it as the end of input", err)
		}
		// An entry ends only at a newline (or the end of input). Without
		// one in the new bytes the incomplete entry held cannot be done,
		// so it is scanned again only once it has doubled: a huge line
		// read 64 KiB at a time costs O(n), not O(n^2), and garbage behind
		// a long valid start is still found before it doubles memory.
		if !atEOF && len(buf) < rescanAt && bytes.IndexByte(fresh, '\n') < 0 {
			if cap(buf)-len(buf) < minRead {
				buf = grow(buf)
			}
			continue
		}
		keep, ok := p.consume(buf, atEOF, drained)
		if !ok || atEOF {
			p.finishInput()
			return
		}
		// Keep the incomplete entry at the end for the next read: moving
		// it costs at most one entry per read, never a copy per line.
		if keep > 0 {
			n := copy(buf, buf[keep:])
			buf = buf[:n]
		}
		rescanAt = 2 * len(buf)
		switch {
		case cap(buf)-len(buf) < minRead:
			buf = grow(buf)
		case cap(buf) > readBufferSize && len(buf) < readBufferSize/2:
			// The long entry is done: give the memory back.
			small := make([]byte, len(buf), readBufferSize)
			copy(small, buf)
			buf = small
		}
	}
}

// grow doubles the buffer for one entry nearly as long as itself.
func grow(buf []byte) []byte {
	grown := make([]byte, len(buf), 2*cap(buf))
	copy(grown, buf)
	return grown
}

// consume takes the complete entries in buf and reports how many bytes it
// used; ok is false once the pipeline no longer takes input.
func (p *pipeline) consume(buf []byte, atEOF, drained bool) (used int, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		p.countUndeliveredInput(buf)
		return len(buf), false
	}
	pos := 0
	read := int64(0)
	now := int64(0) // for entries without a timestamp; read once per call
	defer func() {
		p.stats.LinesRead.Add(read)
		p.dataLines += uint64(read)
	}()
	p.reads++
	endOfInput := func() {
		p.flushRun(buf)
		if p.markerPending && drained && p.senderIdle.Load() {
			p.sealLocked()
		}
		if drained && !p.markerPending && p.holding.Load() {
			p.quietReads = p.reads
			p.quietArmed = time.Now()
			p.quiet.Reset(holdQuiet)
		}
		p.maybeSealEager()
	}
	if p.skipping {
		// The rest of an invalid record, already counted.
		k := bytes.IndexByte(buf, '\n')
		if k < 0 {
			return len(buf), true
		}
		p.skipping = false
		pos = k + 1
	}
	e := entry{wantShape: p.guardTypes.Load()}
	for {
		r := scanEntryOK
		laidOut := p.layout.match(buf, pos, &e)
		if !laidOut {
			r = scanEntry(buf, pos, atEOF, &e)
		}
		switch r {
		case scanNeedMore:
			endOfInput()
			return e.start, true
		case scanEnd:
			endOfInput()
			return len(buf), true
		case scanInvalid, scanInvalidOpen:
			read++
			p.flushRun(buf)
			p.c.logInvalid(buf[e.start:e.end], e.reason)
			p.stats.LinesInvalid.Add(1)
			if r == scanInvalidOpen {
				// Skip the rest as it comes rather than hold it: garbage
				// without newlines must not grow the buffer.
				p.skipping = true
				p.maybeSealEager()
				return len(buf), true
			}
			pos = e.end
			continue
		}
		// Before the tagless check: with omit_hostname a marker has no
		// tags, and it is never sent anyway.
		if delivery.IsMarker(buf[e.start:e.nameEnd], buf[e.fieldsStart:e.bodyEnd]) {
			if m, ok := p.marker(buf[e.start:e.nameEnd], buf[e.start:e.bodyEnd]); ok {
				p.flushRun(buf)
				if !p.checkpoint(m, p.dataLines+uint64(read)) {
					return len(buf), false
				}
				pos = e.end
				continue
			}
		}
		read++
		if !laidOut {
			p.layout.learn(buf, &e)
		}
		if !e.tagged && p.taglessRefused.Load() {
			p.flushRun(buf)
			p.c.logRejected(buf[e.start:e.bodyEnd], reasonTagless)
			p.stats.LinesRejected.Add(1)
			pos = e.end
			continue
		}
		size := e.bodyEnd - e.start + 1
		if e.tsStart == e.tsEnd {
			size += 21 // the timestamp it will get
			if now == 0 {
				now = time.Now().UnixNano()
			}
		}
		if p.cur != nil && p.cur.lines > 0 && len(p.cur.body)+(p.runEnd-p.runStart)+size > p.batchBytes {
			p.flushRun(buf)
			p.sealLocked()
		}
		if p.cur == nil && !p.takeBatchLocked() {
			read--
			p.countUndeliveredInput(buf[pos:])
			return len(buf), false
		}
		b := p.cur
		p.armTimerIfEmpty(b)
		b.lines++
		if !e.tagged {
			b.tagless++
		}
		passThrough := e.end == e.bodyEnd+1 && buf[e.bodyEnd] == '\n' &&
			p.c.tsDivisor == 1 && e.tsStart != e.tsEnd
		if passThrough {
			if p.runEnd == e.start && p.runEnd > p.runStart {
				p.runEnd = e.end
			} else {
				p.flushRun(buf)
				p.runStart, p.runEnd = e.start, e.end
			}
		} else {
			p.flushRun(buf)
			b.body = appendCanonical(b.body, buf, &e, p.c.tsDivisor, now)
		}
		if e.wantShape {
			b.addShape(e.shape, len(b.body)+p.runEnd-p.runStart)
		}
		pos = e.end
		if b.lines >= p.batchLines {
			p.flushRun(buf)
			p.sealLocked()
		}
	}
}

// marker parses a line that looks like a checkpoint marker. One that
// fails to parse is data, unless it bears the marker's own name: then it
// is logged and dropped, since it must never reach CnosDB.
func (p *pipeline) marker(name, line []byte) (delivery.Marker, bool) {
	m, err := delivery.ParseMarker(line)
	if err == nil {
		return m, true
	}
	if string(name) != delivery.Measurement {
		return m, false
	}
	p.c.logInvalid(line, "checkpoint marker: "+err.Error())
	p.stats.LinesInvalid.Add(1)
	return m, true // dropped: nothing to acknowledge, as m.Socket is ""
}

// checkpoint ties a marker to the batch being filled, so it is
// acknowledged once every line read before it is settled. A marker that
// came after fewer lines than its input wrote is also reported lost at
// once: the input decides whether to replay. It reports false when the
// pipeline is stopping.
func (p *pipeline) checkpoint(m delivery.Marker, lines uint64) bool {
	if m.Socket == "" {
		return true // unparseable, already logged
	}
	got, short := p.tally.Marker(m, lines)
	p.acks.Received(m, short, got)
	if short {
		p.c.Log.Warnf("checkpoint %d from %s came after %d lines, but its input wrote %d: Telegraf dropped some (look for \"Metric buffer overflow\" in its log, or a filter); the input replays them unless the same lines keep going missing",
			m.Seq, m.Socket, got, m.Lines)
	}
	if p.cur == nil && !p.takeBatchLocked() {
		return false // stopping: the input replays what this covered
	}
	p.armTimerIfEmpty(p.cur)
	p.cur.markers = append(p.cur.markers, m)
	p.holding.Store(true)
	if !m.Hold {
		p.markerPending = true
	}
	return true
}

// flushRun copies the pending run of pass-through entries into the
// current batch: one copy for many lines.
func (p *pipeline) flushRun(buf []byte) {
	if p.runEnd > p.runStart {
		p.cur.body = append(p.cur.body, buf[p.runStart:p.runEnd]...)
	}
	p.runStart, p.runEnd = 0, 0
}

// appendCanonical appends the entry as one line ending in "\n", without
// trailing blanks or "\r", its timestamp divided for the precision. An
// entry without a timestamp gets now: CnosDB 2.3.0 would take the next
// line's first digits for it, and any version reads its own clock, in
// nanoseconds, in the request's precision (so us or ms overflow).
func appendCanonical(dst, buf []byte, e *entry, divisor, now int64) []byte {
	if e.tsStart == e.tsEnd {
		dst = append(dst, buf[e.start:e.bodyEnd]...)
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, now/divisor, 10)
		return append(dst, '\n')
	}
	if divisor == 1 {
		dst = append(dst, buf[e.start:e.bodyEnd]...)
		return append(dst, '\n')
	}
	dst = append(dst, buf[e.start:e.tsStart]...)
	ts, _ := strconv.ParseInt(bytesString(buf[e.tsStart:e.tsEnd]), 10, 64) // validated by the scanner
	q := ts / divisor
	if ts%divisor < 0 {
		q-- // floor, so times before 1970 round the same way as after
	}
	dst = strconv.AppendInt(dst, q, 10)
	return append(dst, '\n')
}

// takeBatchLocked makes a free batch current, waiting for one when
// max_buffered_bytes is in use: that wait is what stops reading stdin.
// It reports false when the pipeline is stopping for good.
func (p *pipeline) takeBatchLocked() bool {
	var b *batch
	select {
	case b = <-p.pool:
	default:
		if p.allocated < p.maxBatches {
			p.allocated++
			b = &batch{}
		} else {
			p.stats.Stalls.Add(1)
			p.stats.Waiting.Store(true)
			select {
			case b = <-p.pool:
			case <-p.abandon:
			}
			p.stats.Waiting.Store(false)
			if b == nil {
				return false
			}
		}
	}
	if b.body == nil {
		b.body = make([]byte, 0, p.batchBytes)
	}
	b.reset(p.nextSeq)
	p.nextSeq++
	p.cur = b
	return true
}

// takeFreeBatchLocked is takeBatchLocked without the wait: false when
// every batch is in use.
func (p *pipeline) takeFreeBatchLocked() bool {
	if len(p.pool) == 0 && p.allocated >= p.maxBatches {
		return false
	}
	return p.takeBatchLocked()
}

// release gives a settled batch back to the pool.
func (p *pipeline) release(b *batch) {
	if cap(b.body) > 2*p.batchBytes {
		b.body = nil // it grew for one long line: don't keep that memory
	}
	p.pool <- b
}

// sealLocked queues the current batch for the sender.
func (p *pipeline) sealLocked() {
	if p.cur == nil || (p.cur.lines == 0 && len(p.cur.markers) == 0) {
		return
	}
	p.ready <- p.cur // never blocks: ready holds every batch there is
	p.cur = nil
	p.markerPending = false
	p.holding.Store(false)
}

func (p *pipeline) maybeSealEager() {
	if p.eager {
		p.sealLocked()
	}
}

// armTimerIfEmpty starts b's flush_interval as its first line or marker
// goes in.
func (p *pipeline) armTimerIfEmpty(b *batch) {
	if b.lines == 0 && len(b.markers) == 0 {
		p.timerSeq = b.seq
		p.timer.Reset(time.Duration(p.c.FlushInterval))
	}
}

// flushTimeout seals the current batch flush_interval after its first
// line or marker. While writes fail (CnosDB down or refusing), a batch
// sealed early would only wait in the queue, taking a whole buffer of
// max_buffered_bytes for a few lines: it goes on filling, and is looked
// at again a flush_interval later.
func (p *pipeline) flushTimeout() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed && p.cur != nil && p.cur.seq == p.timerSeq {
		if p.stats.Failing.Load() && !p.eager {
			p.timer.Reset(time.Duration(p.c.FlushInterval))
			return
		}
		p.sealLocked()
	}
}

// next is the sender's way to the next batch: when none is sealed but one
// holds a marker, the sender, now free, takes that one. It returns false
// once the queue is closed and empty.
//
// Idle is announced before the check: a reader holding mu meanwhile sees
// it when its read ends, and seals then; between reads every pending run
// is already in cur, so sealing here is safe.
func (p *pipeline) next() (*batch, bool) {
	p.senderIdle.Store(true)
	if len(p.ready) == 0 && p.mu.TryLock() {
		if p.markerPending && !p.closed {
			p.sealLocked()
		}
		p.mu.Unlock()
	}
	b, ok := <-p.ready
	p.senderIdle.Store(false)
	return b, ok
}

// finishInput seals what is left once stdin has ended.
func (p *pipeline) finishInput() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closeLocked()
}

// closeLocked seals the current batch and closes the queue.
func (p *pipeline) closeLocked() {
	if p.closed {
		return
	}
	p.sealLocked()
	p.closed = true
	p.timer.Stop()
	p.quiet.Stop()
	close(p.ready)
}

// hurry makes the reader seal after every read: the process is stopping.
func (p *pipeline) hurry() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.eager = true
	if !p.closed {
		p.sealLocked()
	}
}

// countUndeliveredInput counts the entries read after the pipeline closed.
func (p *pipeline) countUndeliveredInput(buf []byte) {
	var e entry
	for pos := 0; ; pos = e.end {
		r := scanEntry(buf, pos, true, &e)
		if r == scanEnd || r == scanNeedMore {
			return
		}
		p.stats.LinesRead.Add(1)
		p.stats.LinesUndelivered.Add(1)
	}
}
