package cnosdb

import (
	"context"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/selfstat"
)

// Self-metrics (stats_interval): every interval the output adds a row
// about itself to the batch being filled, so it reaches CnosDB in the
// output's own batches, held and retried like the data (an outage shows
// in the rows written once CnosDB is back). They never pass through
// Telegraf. Counters run from the start of the process; gauges are read
// at the tick; latencies and batch sizes are of the interval.
const defaultStatsMeasurement = "cnosdb_output_stats"

// held is the lines taken in and not yet settled: written, refused or
// given up.
func (s *Stats) held() int64 {
	return max(0, s.LinesRead.Load()+s.SelfLines.Load()-s.LinesWritten.Load()-
		s.LinesInvalid.Load()-s.LinesRejected.Load()-s.LinesUndelivered.Load())
}

type statsReporter struct {
	c     *CnosDB
	p     *pipeline
	s     *sender
	stats *Stats
	enc   selfstat.Encoder
	// At the last tick, for the interval's average batch.
	lastWritten, lastWrites int64
}

func (r *statsReporter) run(ctx context.Context) {
	r.enc.SetPrecision(time.Duration(r.c.tsDivisor))
	selfstat.Every(ctx, time.Duration(r.c.StatsInterval), r.report)
}

// report adds one row; false once the pipeline takes no more input.
func (r *statsReporter) report(now time.Time) bool {
	st := r.stats
	written, writes := st.LinesWritten.Load(), st.Writes.Load()
	latency := st.WriteLatency.Take()
	fields := []selfstat.Field{
		{Key: "lines_read", Value: st.LinesRead.Load()},
		{Key: "lines_written", Value: written},
		{Key: "lines_rejected", Value: st.LinesRejected.Load()},
		{Key: "lines_invalid", Value: st.LinesInvalid.Load()},
		{Key: "bytes_written", Value: st.BytesWritten.Load()},
		{Key: "batches", Value: st.Batches.Load()},
		{Key: "requests", Value: st.Requests.Load()},
		{Key: "retries", Value: st.Retries.Load()},
		{Key: "retries_unreachable", Value: st.RetriesUnreachable.Load()},
		{Key: "retries_server", Value: st.RetriesServer.Load()},
		{Key: "retries_config", Value: st.RetriesConfig.Load()},
		{Key: "stalls", Value: st.Stalls.Load()},
		{Key: "stats_skipped", Value: st.SelfSkipped.Load()},
		{Key: "lines_held", Value: st.held()},
		{Key: "holding", Value: st.Failing.Load()},
		{Key: "requests_interval", Value: int64(latency.Count)},
	}
	if latency.Count > 0 {
		fields = append(fields,
			selfstat.Field{Key: "write_latency_p50_ms", Value: selfstat.Milliseconds(latency.P50)},
			selfstat.Field{Key: "write_latency_p99_ms", Value: selfstat.Milliseconds(latency.P99)},
			selfstat.Field{Key: "write_latency_max_ms", Value: selfstat.Milliseconds(latency.Max)})
	}
	if n := writes - r.lastWrites; n > 0 {
		fields = append(fields, selfstat.Field{Key: "batch_lines_avg", Value: float64(written-r.lastWritten) / float64(n)})
	}
	r.lastWritten, r.lastWrites = written, writes
	tags := []selfstat.Tag{
		{Key: "url", Value: r.c.endpoints[r.s.currentURL.Load()].name},
		{Key: "database", Value: r.c.Database},
	}
	r.enc.Reset()
	if err := r.enc.Row(r.c.StatsMeasurement, tags, fields, now); err != nil {
		r.c.Log.Errorf("stats_measurement %q: %v", r.c.StatsMeasurement, err)
		return true
	}
	return r.p.inject(r.enc.Bytes(), r.enc.Rows())
}

// inject adds the output's own rows to the batch being filled. They are
// not lines read, so the count of lines between checkpoints leaves them
// out. They never wait for a free batch, which would hold up the reader:
// with all of max_buffered_bytes in use they are left out (counted). It
// reports false once the pipeline is closed.
func (p *pipeline) inject(rows []byte, n int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	if p.cur != nil && p.cur.lines > 0 && len(p.cur.body)+len(rows) > p.batchBytes {
		p.sealLocked()
	}
	if p.cur == nil && !p.takeFreeBatchLocked() {
		p.stats.SelfSkipped.Add(1)
		return true
	}
	b := p.cur
	p.armTimerIfEmpty(b)
	b.body = append(b.body, rows...)
	b.lines += n
	for range n {
		b.addShape(0, len(b.body)) // not known: each checked in full
	}
	p.stats.SelfLines.Add(int64(n))
	if b.lines >= p.batchLines {
		p.sealLocked()
	}
	return true
}
