package kafka_consumer //nolint:revive,stylecheck // named after the Telegraf plugin it replaces

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/internal/kafkatest"
)

// statsRows is the latest self-metrics row of each partition, and the
// latest process row, among the lines the sink holds.
func statsRows(t *testing.T, lines []string) (parts map[string]map[string]float64, process map[string]string) {
	t.Helper()
	parts = map[string]map[string]float64{}
	for _, line := range lines {
		name, tags, fields, _ := decodeLine(t, line)
		switch name {
		case defaultStatsPartitionMeasurement:
			row := map[string]float64{}
			for k, v := range fields {
				f, err := strconv.ParseFloat(strings.TrimRight(v, "iu"), 64)
				if err != nil {
					t.Fatalf("%s=%s in %q", k, v, line)
				}
				row[k] = f
			}
			parts[tags["topic"]+"/"+tags["partition"]] = row
		case defaultStatsMeasurement:
			process = fields
			process["consumer_group"] = tags["consumer_group"]
		}
	}
	return parts, process
}

// waitForStats waits until the latest rows of every partition satisfy ok.
func (s *lineSink) waitForStats(t *testing.T, partitions int, what string, ok func(map[string]map[string]float64) bool) map[string]map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		parts, _ := statsRows(t, s.Lines())
		if len(parts) == partitions && ok(parts) {
			return parts
		}
		if time.Now().After(deadline) {
			t.Fatalf("self-metrics never showed %s; last rows %v", what, parts)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func sumOf(parts map[string]map[string]float64, field string) float64 {
	sum := 0.0
	for _, row := range parts {
		sum += row[field]
	}
	return sum
}

// Consumer lag, from the self-metrics: a pre-loaded backlog shows as lag,
// which rises while the output holds every checkpoint back and new
// messages arrive, and falls to 0 once the output lets them through.
func TestBrokerSelfMetricsLag(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.NewTopic(t, 2)
	group := uniqueGroup(t)
	const backlog, more = 1000, 500
	kafkatest.ProduceN(t, brokers, topic, backlog, guideMessage)

	sink := newLineSink(t)
	sink.setHold(true)
	r := startWith(t, brokerConfig(brokers, topic, group)+"stats_interval = \"200ms\"\nmax_undelivered_messages = 400\n", sink)
	// Consumed up to the window, none of it committed.
	parts := sink.waitForStats(t, 2, "the backlog as committed lag, the window consumed", func(p map[string]map[string]float64) bool {
		return sumOf(p, "lag_committed") == backlog && sumOf(p, "high_watermark") == backlog &&
			sumOf(p, "lag_consumed") <= backlog-300
	})
	if consumed := sumOf(parts, "lag_consumed"); consumed < backlog-400 {
		t.Errorf("lag_consumed = %v with a window of 400 held, want at least %d", consumed, backlog-400)
	}

	kafkatest.ProduceN(t, brokers, topic, more, func(i int) []byte { return guideMessage(backlog + i) })
	sink.waitForStats(t, 2, "the lag rising while the output holds", func(p map[string]map[string]float64) bool {
		return sumOf(p, "lag_committed") == backlog+more
	})

	sink.setHold(false)
	parts = sink.waitForStats(t, 2, "the lag falling to 0", func(p map[string]map[string]float64) bool {
		return sumOf(p, "lag_committed") == 0 && sumOf(p, "lag_consumed") == 0
	})
	if got := sumOf(parts, "committed_offset"); got != backlog+more {
		t.Errorf("committed offsets sum to %v, want %d", got, backlog+more)
	}
	if got := sumOf(parts, "messages"); got < backlog+more {
		t.Errorf("messages = %v, want at least %d", got, backlog+more)
	}
	_, process := statsRows(t, sink.Lines())
	if process["consumer_group"] != group || strings.Trim(process["delivery"], `"`) != "tracking" {
		t.Errorf("process row: %v", process)
	}
	for _, field := range []string{"messages", "bytes", "lines", "acknowledged", "unacknowledged_messages", "pauses_for_acks", "paused_ms", "replays"} {
		if _, ok := process[field]; !ok {
			t.Errorf("process row has no %s: %v", field, process)
		}
	}
	r.stop(t)
	// The rows came with checkpoints of their own: every data message
	// was delivered and committed once, nothing replayed.
	if got := kafkatest.CommittedOffsets(t, brokers, group, topic); got[0]+got[1] != backlog+more {
		t.Errorf("committed %v, want %d in all", got, backlog+more)
	}
	if rw := r.stats.Rewinds.Load(); rw != 0 {
		t.Errorf("%d replays", rw)
	}
}
