package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbtest"
	"github.com/kafka-cnosdb/telegraf-execd/internal/kafkatest"
)

// backlogSize is how many messages TestBacklogWithDefaultAgentSettings
// pre-loads; E2E_BACKLOG raises it (scripts/bench.sh runs 1,000,000).
func backlogSize(t *testing.T) int {
	n := 100_000
	if v := os.Getenv("E2E_BACKLOG"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			t.Fatalf("E2E_BACKLOG=%q is not a count", v)
		}
	}
	return n
}

// A backlog far larger than Telegraf's metric_buffer_limit goes through
// stock Telegraf with its default settings (metric_batch_size 1000,
// metric_buffer_limit 10000, flush_interval 10s, none of sample.conf's on
// the output's block) with nothing lost and no
// buffer overflow: the delivery loop keeps the input within
// max_undelivered_messages. Each message carries its own timestamp, so a
// replayed message lands on its own row again: rows count messages, the
// server's stored-line count shows the replays.
func TestBacklogWithDefaultAgentSettings(t *testing.T) {
	n := backlogSize(t)
	forEachTelegrafAndBackend(t, func(t *testing.T, name, binary string, be backend) { checkBacklog(t, name, binary, be, n) })
}

func checkBacklog(t *testing.T, name, binary string, be backend, n int) {
	brokers := kafkatest.Brokers(t)
	input, output := binaries(t)
	topic := kafkatest.NewTopic(t, 2)
	// Milliseconds: a JSON number holds them exactly, unlike
	// nanoseconds since 1970.
	base := time.Now().Add(-time.Hour).UnixMilli()
	kafkatest.ProduceN(t, brokers, topic, n, func(i int) []byte {
		return []byte(fmt.Sprintf(`{"ts":%d,"pressure":%d.5,"temperature":23.4,"visibility":%d}`, base+int64(i), i%10, i))
	})
	srv := be.start(t, cnosdbtest.Options{Dialect: cnosdbtest.V24})
	inputConf, outputConf := childConfigs(t, brokers[0], topic, srv, fmt.Sprintf(`  json_time_key = "ts"
  json_time_format = "unix_ms"
  consumer_group = %q
`, "backlog-"+topic))
	// Only the hostname is set: every other agent setting is
	// Telegraf's default.
	tg := startTelegraf(t, binary, "[agent]\n  hostname = \"e2e-host\"\n"+execdBlocksWith(t, binary, input, inputConf, output, outputConf, ""))
	start := time.Now()
	waitRowsFor(t, srv, "public", "kafka_consumer", n, tg, backlogLimit)
	elapsed := time.Since(start)
	tg.stop(t)

	log := tg.log.String()
	// The input read Telegraf's release from its parent: four
	// batches (of Telegraf's default 1000) inside 1.35.2 and
	// later, two before.
	inside := "2000 inside Telegraf"
	if telegrafMinor(t, binary) >= 36 {
		inside = "4000 inside Telegraf"
	}
	if !strings.Contains(log, inside) {
		t.Errorf("the input's log does not say %q:\n%s", inside, grepLines(log, "inside Telegraf"))
	}
	if strings.Contains(log, "overflow") {
		t.Fatalf("Telegraf dropped metrics:\n%s", grepLines(log, "overflow"))
	}
	written := "lines written: not counted by a real CnosDB"
	if fake, ok := srv.(*cnosdbtest.Server); ok {
		stored := fake.Stats().LinesStored
		written = fmt.Sprintf("%d lines written: %d replayed", stored, stored-n)
	}
	t.Logf("%s on %s: %d messages stored as %d rows in %s (%s); replays logged: %d",
		name, be.name, n, n, elapsed.Round(time.Millisecond), written, strings.Count(log, "replaying from"))
}

// waitRowsFor waits until CnosDB holds n rows of measurement.
func waitRowsFor(t *testing.T, srv cnosdbtest.Target, db, measurement string, n int, tg *telegraf, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		rows := srv.RowCount("cnosdb", db, measurement)
		if rows >= n {
			if rows > n {
				t.Fatalf("%d rows, more than the %d messages", rows, n)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("CnosDB holds %d rows of %s after %s, want %d\ntelegraf log:\n%s", rows, measurement, limit, n, tg.log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func grepLines(text, substr string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// backlogLimit bounds the wait for the whole backlog.
var backlogLimit = 5 * time.Minute
