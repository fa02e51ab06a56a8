package cnosdb

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbreal"
	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbtest"
)

// The output's self-metrics land in CnosDB beside the data: rows tagged
// with the URL and database, counting the lines, showing the outage
// while CnosDB was down (holding, retries_unreachable) once it is back.
func checkSelfMetrics(t *testing.T, s cnosdbtest.Target) {
	c, _ := newPlugin(t, []string{s.URL()}, `stats_interval = "100ms"
retry_initial_interval = "5ms"
retry_max_interval = "50ms"`)
	r := start(t, c)
	r.write(seedLines("m", 100, 0))
	// lines_written counts these rows too, and one may share the batch
	// of the 100 lines: a row counts them once it says 100 or more.
	waitFor(t, "a row counting the first lines", func() bool {
		for _, row := range s.Rows("", "public", defaultStatsMeasurement) {
			if written, _ := row.Fields["lines_written"].(int64); written >= 100 {
				return true
			}
		}
		return false
	})
	s.Down()
	r.write(seedLines("m", 100, 100))
	waitFor(t, "a retry while CnosDB is down", func() bool { return r.stats.RetriesUnreachable.Load() > 0 })
	// Rows made meanwhile say so, and are delivered with the data.
	made := r.stats.SelfLines.Load()
	waitFor(t, "self-metrics made while holding", func() bool { return r.stats.SelfLines.Load() >= made+3 })
	if err := s.Up(); err != nil {
		t.Fatal(err)
	}
	stats := r.finish()
	wantStored(t, s, "public", "m", seq(0, 200))
	rows := s.Rows("", "public", defaultStatsMeasurement)
	if int64(len(rows)) != stats.SelfLines.Load() {
		t.Errorf("%d rows stored, %d made", len(rows), stats.SelfLines.Load())
	}
	holding, holdingData := 0, 0
	for _, row := range rows {
		if row.Tags["url"] != c.endpoints[0].name || row.Tags["database"] != "public" {
			t.Fatalf("tags %v", row.Tags)
		}
		for _, f := range []string{"lines_read", "lines_written", "lines_rejected", "retries_unreachable", "retries_server", "retries_config", "lines_held", "holding", "batches"} {
			if _, ok := row.Fields[f]; !ok {
				t.Fatalf("row without %s: %v", f, row.Fields)
			}
		}
		if row.Fields["holding"] == true {
			holding++
			// Rows made before the 100 lines came hold only rows.
			if held, _ := row.Fields["lines_held"].(int64); held >= 100 {
				holdingData++
			}
		}
	}
	if holding == 0 || holdingData == 0 {
		t.Errorf("%d rows say the output was holding while CnosDB was down, %d of them holding the 100 lines written meanwhile: %v", holding, holdingData, rows)
	}
	last := rows[len(rows)-1].Fields
	if _, ok := last["write_latency_p99_ms"].(float64); !ok {
		t.Errorf("last row has no write latency: %v", last)
	}
}

func TestSelfMetricsStored(t *testing.T) {
	t.Run("test-server", func(t *testing.T) {
		checkSelfMetrics(t, startServer(t, cnosdbtest.Options{}))
	})
	for _, version := range cnosdbreal.Versions() {
		t.Run("real-"+version, func(t *testing.T) {
			checkSelfMetrics(t, cnosdbreal.Start(t, cnosdbreal.Options{Version: version}))
		})
	}
}

func TestSelfMetricsOptions(t *testing.T) {
	c := New()
	c.URLs = []string{"http://127.0.0.1:1"}
	c.StatsInterval = 1
	if err := c.Init(); err == nil || !strings.Contains(err.Error(), "stats_interval") {
		t.Fatalf("a 1ns stats_interval: error %v, want one naming stats_interval", err)
	}
}

// lagQuery is the README's query for the lag per partition.
const lagQuery = `SELECT p.topic, p.partition, p.lag_committed AS lag, p.lag_consumed AS unread
FROM kafka_json_partition p JOIN (
  SELECT topic, partition, max(time) AS t FROM kafka_json_partition
  WHERE time > now() - interval '5 minutes' GROUP BY topic, partition) m
ON p.topic = m.topic AND p.partition = m.partition AND p.time = m.t
ORDER BY p.topic, p.partition`

// The README's lag query answers on every real CnosDB: the latest lag of
// each partition.
func TestLagQueryOnRealCnosDB(t *testing.T) {
	cnosdbreal.Require(t)
	for _, version := range cnosdbreal.Versions() {
		t.Run(version, func(t *testing.T) {
			s := cnosdbreal.Start(t, cnosdbreal.Options{Version: version})
			now := time.Now().UnixNano()
			c, _ := newPlugin(t, []string{s.URL()}, "")
			runAll(t, c, fmt.Sprintf(`kafka_json_partition,consumer_group=g,partition=0,topic=oceanic lag_committed=5i,lag_consumed=1i %d
kafka_json_partition,consumer_group=g,partition=0,topic=oceanic lag_committed=0i,lag_consumed=0i %d
kafka_json_partition,consumer_group=g,partition=1,topic=oceanic lag_committed=7i,lag_consumed=2i %d
`, now-2e9, now-1e9, now-1e9))
			rows, err := s.Query("", "public", lagQuery)
			if err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprint(rows)
			want := "[map[lag:0 partition:0 topic:oceanic unread:0] map[lag:7 partition:1 topic:oceanic unread:2]]"
			if got != want {
				t.Fatalf("rows %s, want %s", got, want)
			}
		})
	}
}
