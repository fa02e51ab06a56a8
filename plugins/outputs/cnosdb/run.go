package cnosdb

import (
	"context"
	"io"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/delivery"
	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/execd"
	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/selfstat"
)

// Stats counts what became of the lines read; safe to read while Run runs.
type Stats struct {
	LinesRead        atomic.Int64 // entries read from stdin (blank and comment lines aside)
	LinesWritten     atomic.Int64 // stored by CnosDB
	LinesInvalid     atomic.Int64 // not line protocol: logged, never sent
	LinesRejected    atomic.Int64 // refused by CnosDB for their content: logged
	LinesUndelivered atomic.Int64 // still held when shutdown_timeout ran out
	BytesWritten     atomic.Int64 // line protocol bytes stored (before compression)
	Batches          atomic.Int64 // batches settled
	Requests         atomic.Int64 // write requests sent
	Retries          atomic.Int64 // failed attempts that were retried
	// The retries by cause (failureCause): CnosDB could not be reached;
	// it was there but failed (overload, timeouts, server errors); it
	// refused the credentials, the tenant or the database.
	RetriesUnreachable, RetriesServer, RetriesConfig atomic.Int64
	Writes                                           atomic.Int64 // requests CnosDB accepted
	// SelfLines counts the output's own self-metrics rows, which are
	// written like the lines read.
	SelfLines atomic.Int64
	// SelfSkipped counts the intervals whose row was left out: every
	// batch was in use.
	SelfSkipped atomic.Int64
	// Failing is true from a failed attempt until a write succeeds: the
	// output holds its data for CnosDB.
	Failing atomic.Bool
	// WriteLatency times every write request, answered or not.
	WriteLatency selfstat.Histogram
	// Stalls counts the times the reader stopped reading stdin because
	// max_buffered_bytes was in use; Waiting is true while it is stopped.
	Stalls  atomic.Int64
	Waiting atomic.Bool
}

// signalGrace bounds delivery after SIGTERM when stdin has not closed.
const signalGrace = 4 * time.Second

// Run reads line protocol from in and writes it to CnosDB until in ends,
// then delivers what it holds and returns. Once ctx is done (SIGTERM) it
// keeps reading until in ends, sending at once what it reads. It stops
// trying shutdown_timeout after in ended (or ctx ended with
// execd.ErrParentExited), or min(shutdown_timeout, 4s) after a signal
// that came first, and then logs a count of the lines it could not
// deliver. Until then it keeps trying: a back-off wait ends when stopping
// begins, and attempts follow every retry_initial_interval. What goes
// wrong with the data or with CnosDB is logged and counted in stats,
// never returned: the error is for future use.
func (c *CnosDB) Run(ctx context.Context, in io.Reader, stats *Stats) error {
	if stats == nil {
		stats = &Stats{}
	}
	var s *sender
	acks := delivery.NewAcker(c.Log, func() bool { return s.busy() })
	p := newPipeline(c, stats, acks)
	sendCtx, cancelSend := context.WithCancel(context.Background())
	defer cancelSend()
	hurry := make(chan struct{})
	s = newSender(sendCtx, hurry, c, p, stats)
	// The acknowledgements outlive the sender: the last ones go out after
	// the last batch settled.
	acksCtx, stopAcks := context.WithCancel(context.Background())
	go acks.Run(acksCtx)
	defer acks.Wait()
	defer stopAcks()
	senderDone := make(chan struct{})
	go func() {
		defer close(senderDone)
		s.run()
	}()
	go p.read(in)
	if c.StartupCheck {
		go c.startupCheck(sendCtx)
	}
	if c.StatsInterval > 0 {
		reportCtx, stopReports := context.WithCancel(context.Background())
		defer stopReports()
		r := &statsReporter{c: c, p: p, s: s, stats: stats}
		go r.run(reportCtx)
	}

	var deadline <-chan time.Time
	var limit time.Duration
	stopping := func(why string, d time.Duration) {
		if deadline != nil {
			return
		}
		c.Log.Debugf("%s: delivering what is held, for at most %s", why, d)
		limit = d
		deadline = time.After(d)
		close(hurry) // the sender stops waiting between attempts
		// Not inline: the reader may hold the lock while it waits for a
		// free batch, and the deadline must run meanwhile.
		go p.hurry()
	}
	ctxDone, inputEnd := ctx.Done(), p.inputEnd
	for {
		select {
		case <-senderDone:
			c.logSummary(stats)
			return nil
		case <-ctxDone:
			ctxDone = nil
			if execd.ParentExited(ctx) {
				// Telegraf died without a word (kill -9, the OOM killer):
				// no signal follows, and a reader held back by
				// max_buffered_bytes may never see stdin close.
				c.Log.Warnf("Telegraf exited without stopping this process: delivering what is held, then stopping")
				stopping("Telegraf exited", time.Duration(c.ShutdownTimeout))
				continue
			}
			// Telegraf sends SIGTERM 5 s after closing stdin and SIGKILL 5 s
			// later; a reader held back by max_buffered_bytes cannot have
			// seen stdin close, so a signal leaves less time.
			stopping("stop signal", min(time.Duration(c.ShutdownTimeout), signalGrace))
		case <-inputEnd:
			inputEnd = nil
			stopping("stdin closed", time.Duration(c.ShutdownTimeout))
		case <-deadline:
			c.Log.Debugf("shutdown deadline reached")
			close(p.abandon)
			cancelSend()
			<-senderDone
			lines, bytes := s.undelivered, s.undeliveredBytes
			p.mu.Lock()
			p.closeLocked()
			p.mu.Unlock()
			for b := range p.ready {
				lines += int64(b.lines)
				bytes += int64(len(b.body))
			}
			stats.LinesUndelivered.Add(lines)
			if lines > 0 {
				last := s.lastError
				if last == "" {
					last = "none (CnosDB too slow?)"
				}
				c.Log.Errorf("shutdown_timeout (%s) ran out: %d lines (%d bytes) were not delivered to CnosDB; last error: %s",
					limit, lines, bytes, last)
			}
			c.logSummary(stats)
			return nil
		}
	}
}

func (c *CnosDB) logSummary(stats *Stats) {
	invalid, rejected := stats.LinesInvalid.Load(), stats.LinesRejected.Load()
	if invalid+rejected > 0 {
		c.Log.Warnf("%d invalid and %d rejected lines were not written (each was logged, up to the rate limit)", invalid, rejected)
	}
	c.Log.Infof("stopped: %d lines read, %d written in %d batches (%d requests, %d retries), %d invalid, %d rejected, %d undelivered",
		stats.LinesRead.Load(), stats.LinesWritten.Load(), stats.Batches.Load(), stats.Requests.Load(), stats.Retries.Load(),
		invalid, rejected, stats.LinesUndelivered.Load())
}

// maxLoggedLine is how much of a line a log message shows.
const maxLoggedLine = 256

func (c *CnosDB) logInvalid(line []byte, reason string) {
	ok, suppressed := c.invalidLog.Allow(time.Now())
	if !ok {
		return
	}
	c.Log.Warnf("not line protocol, skipped: %s: %s%s", reason, quoteLine(line), suppressedNote(suppressed))
}

func (c *CnosDB) logRejected(line []byte, reason string) {
	ok, suppressed := c.rejectedLog.Allow(time.Now())
	if !ok {
		return
	}
	c.Log.Warnf("CnosDB rejected a line, dropped: %s: %s%s", reason, quoteLine(line), suppressedNote(suppressed))
}

func quoteLine(line []byte) string {
	for len(line) > 0 && (line[len(line)-1] == '\n' || line[len(line)-1] == '\r') {
		line = line[:len(line)-1]
	}
	if len(line) > maxLoggedLine {
		return strconv.Quote(string(line[:maxLoggedLine])) + "... (" + strconv.Itoa(len(line)) + " bytes)"
	}
	return strconv.Quote(string(line))
}

func suppressedNote(n int) string {
	if n == 0 {
		return ""
	}
	return " (" + strconv.Itoa(n) + " similar messages suppressed)"
}
