package kafka_consumer //nolint:revive,stylecheck // named after the Telegraf plugin it replaces

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/selfstat"
)

// Self-metrics (stats_interval): every interval the input writes a row per
// owned partition (stats_partition_measurement) and one for the process
// (stats_measurement) to stdout, with a checkpoint of their own, so they
// reach Telegraf and its outputs like the data does. Counters run from
// the start of the process, as in Telegraf's internal plugin; gauges are
// read at the tick.
const (
	defaultStatsMeasurement          = "kafka_json_stats"
	defaultStatsPartitionMeasurement = "kafka_json_partition"
)

// partitionKey names a partition.
type partitionKey struct {
	topic     string
	partition int32
}

// partitionStats is one partition's counters, kept across sessions. A
// claim adds to them once per chunk, not per message.
type partitionStats struct {
	partitionKey
	messages, bytes, badMessages, lines atomic.Int64
	// consumed is the offset after the last message written to stdout;
	// committed the offset last marked for commit (sarama sends it to
	// the broker within a second), or sarama.OffsetOldest/OffsetNewest
	// until a commit is known: where the group starts on this partition.
	consumed, committed atomic.Int64
	owned               atomic.Bool
}

// wrote counts lines written to stdout; a nil ps counts nothing.
func (ps *partitionStats) wrote(lines int) {
	if ps != nil {
		ps.lines.Add(int64(lines))
	}
}

func (ps *partitionStats) committedTo(next int64) {
	if ps != nil {
		ps.committed.Store(next)
	}
}

// partitionRegistry holds every partition this process has owned.
type partitionRegistry struct {
	mu    sync.Mutex
	parts map[partitionKey]*partitionStats
}

// claim returns the partition's stats, marked owned, with the offset the
// session starts from.
func (r *partitionRegistry) claim(topic string, partition int32, initial int64) *partitionStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := partitionKey{topic, partition}
	ps := r.parts[key]
	if ps == nil {
		if r.parts == nil {
			r.parts = map[partitionKey]*partitionStats{}
		}
		ps = &partitionStats{partitionKey: key}
		ps.consumed.Store(-1)
		r.parts[key] = ps
	}
	ps.committed.Store(initial)
	ps.owned.Store(true)
	return ps
}

// owned lists the partitions owned now.
func (r *partitionRegistry) owned() []*partitionStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	var list []*partitionStats
	for _, ps := range r.parts {
		if ps.owned.Load() {
			list = append(list, ps)
		}
	}
	return list
}

// windowSnapshot is the tracker's state at a tick.
type windowSnapshot struct {
	state           trackerState
	messages, lines int
	inside          int
	heldMessages    int
}

func (t *tracker) snapshot() windowSnapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	return windowSnapshot{
		state:    t.state,
		messages: t.messages, lines: t.lines,
		inside:       max(t.inside, 0),
		heldMessages: t.heldMessages,
	}
}

func (s trackerState) String() string {
	switch s {
	case probing:
		return "probing"
	case tracking:
		return "tracking"
	}
	return "untracked"
}

// statsReporter writes the self-metrics every stats_interval.
type statsReporter struct {
	k      *KafkaConsumer
	t      *tracker
	stats  *Stats
	client sarama.Client
	enc    selfstat.Encoder
}

func (r *statsReporter) run(ctx context.Context) {
	selfstat.Every(ctx, time.Duration(r.k.StatsInterval), r.report)
}

func (r *statsReporter) report(now time.Time) bool {
	r.enc.Reset()
	r.appendRows(now)
	if r.enc.Rows() == 0 {
		return true
	}
	written, err := r.t.writeStats(r.enc.Bytes(), r.enc.Rows())
	switch {
	case err != nil:
		r.k.Log.Debugf("writing self-metrics: %v", err)
	case !written:
		r.stats.StatsSkipped.Add(1)
	}
	return true
}

// appendRows encodes the partition rows, then the process row.
func (r *statsReporter) appendRows(now time.Time) {
	k := r.k
	group := selfstat.Tag{Key: "consumer_group", Value: k.ConsumerGroup}
	owned := r.t.parts.owned()
	for _, ps := range owned {
		r.appendPartition(ps, group, now)
	}
	w := r.t.snapshot()
	ack := r.t.ackLatency.Take()
	s := r.stats
	fields := []selfstat.Field{
		{Key: "messages", Value: s.Messages.Load()},
		{Key: "bytes", Value: s.Bytes.Load()},
		{Key: "bad_messages", Value: s.BadMessages.Load()},
		{Key: "lines", Value: s.Lines.Load()},
		{Key: "acknowledged", Value: s.Acknowledged.Load()},
		{Key: "replays", Value: s.Rewinds.Load()},
		{Key: "pauses_for_acks", Value: s.PausesForAcks.Load()},
		{Key: "pauses_for_telegraf", Value: s.PausesForTelegraf.Load()},
		{Key: "paused_ms", Value: selfstat.Milliseconds(time.Duration(s.PausedNanos.Load()))},
		{Key: "flush_requests", Value: s.Nudges.Load()},
		{Key: "partitions", Value: int64(len(owned))},
		{Key: "delivery", Value: w.state.String()},
		{Key: "unacknowledged_messages", Value: int64(w.messages)},
		{Key: "unacknowledged_metrics", Value: int64(w.lines)},
		{Key: "inside_telegraf", Value: int64(w.inside)},
		{Key: "held_by_output_messages", Value: int64(w.heldMessages)},
		{Key: "acks", Value: int64(ack.Count)},
		{Key: "stats_skipped", Value: s.StatsSkipped.Load()},
		{Key: "dead_lettered", Value: s.DeadLettered.Load()},
		{Key: "dead_letter_failures", Value: s.DeadLetterFailures.Load()},
	}
	if ack.Count > 0 {
		fields = append(fields,
			selfstat.Field{Key: "ack_latency_p50_ms", Value: selfstat.Milliseconds(ack.P50)},
			selfstat.Field{Key: "ack_latency_p99_ms", Value: selfstat.Milliseconds(ack.P99)},
			selfstat.Field{Key: "ack_latency_max_ms", Value: selfstat.Milliseconds(ack.Max)})
	}
	if err := r.enc.Row(k.StatsMeasurement, []selfstat.Tag{group}, fields, now); err != nil {
		k.Log.Errorf("stats_measurement %q: %v", k.StatsMeasurement, err)
	}
}

// appendPartition encodes one partition's row. The high watermark is
// asked of the partition's leader at every tick: the one in the last
// fetch answer stands still while the partition is paused, which is when
// lag matters most.
func (r *statsReporter) appendPartition(ps *partitionStats, group selfstat.Tag, now time.Time) {
	k := r.k
	committed := ps.committed.Load()
	if committed < 0 {
		// No commit yet: the group starts at the oldest or newest offset.
		if off, err := r.client.GetOffset(ps.topic, ps.partition, committed); err == nil {
			committed = off
		}
	}
	consumed := max(ps.consumed.Load(), committed)
	fields := []selfstat.Field{
		{Key: "messages", Value: ps.messages.Load()},
		{Key: "bytes", Value: ps.bytes.Load()},
		{Key: "bad_messages", Value: ps.badMessages.Load()},
		{Key: "lines", Value: ps.lines.Load()},
	}
	if committed >= 0 {
		fields = append(fields,
			selfstat.Field{Key: "committed_offset", Value: committed},
			selfstat.Field{Key: "consumed_offset", Value: consumed})
	}
	hwm, err := r.client.GetOffset(ps.topic, ps.partition, sarama.OffsetNewest)
	if err != nil {
		k.Log.Debugf("self-metrics: high watermark of %s/%d: %v", ps.topic, ps.partition, err)
	} else {
		fields = append(fields, selfstat.Field{Key: "high_watermark", Value: hwm})
		if committed >= 0 {
			fields = append(fields,
				selfstat.Field{Key: "lag_committed", Value: max(hwm-committed, 0)},
				selfstat.Field{Key: "lag_consumed", Value: max(hwm-consumed, 0)})
		}
	}
	tags := []selfstat.Tag{group, {Key: "topic", Value: ps.topic}, {Key: "partition", Value: strconv.Itoa(int(ps.partition))}}
	if err := r.enc.Row(k.StatsPartitionMeasurement, tags, fields, now); err != nil {
		k.Log.Errorf("stats_partition_measurement %q: %v", k.StatsPartitionMeasurement, err)
	}
}
