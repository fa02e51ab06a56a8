package e2e

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbtest"
	"github.com/kafka-cnosdb/telegraf-execd/internal/kafkatest"
)

// Both children's self-metrics through stock Telegraf into CnosDB: with
// CnosDB down from the start, a pre-loaded backlog shows as committed
// lag, which rises as more arrives while the output holds everything;
// once CnosDB is back the lag falls to 0, and the output's own rows say
// it was holding meanwhile. The rows made during the outage are stored
// with the data once it ends.
func TestSelfMetricsThroughStockTelegraf(t *testing.T) {
	for name, binary := range telegrafs(t) {
		t.Run(name, func(t *testing.T) { checkSelfMetrics(t, binary) })
	}
}

const (
	partitionStats = "kafka_json_partition"
	outputStats    = "cnosdb_output_stats"
)

// lagByTick sums lag_committed over the partitions, per tick (the rows of
// one tick share its time).
func lagByTick(rows []cnosdbtest.Row) (ticks []int64, lag map[int64]float64, partitions map[int64]int) {
	lag, partitions = map[int64]float64{}, map[int64]int{}
	for _, row := range rows {
		v, ok := number(row.Fields["lag_committed"])
		if !ok {
			continue
		}
		if _, seen := lag[row.Time]; !seen {
			ticks = append(ticks, row.Time)
		}
		lag[row.Time] += v
		partitions[row.Time]++
	}
	return ticks, lag, partitions
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case float64:
		return n, true
	case uint64:
		return float64(n), true
	}
	return 0, false
}

func checkSelfMetrics(t *testing.T, binary string) {
	brokers := kafkatest.Brokers(t)
	input, output := binaries(t)
	topic := kafkatest.NewTopic(t, 2)
	const backlog, more = 3000, 2000
	message := func(i int) []byte {
		return []byte(fmt.Sprintf(`{"pressure":%d.5,"temperature":23.4,"visibility":%d}`, i%10, i))
	}
	kafkatest.ProduceN(t, brokers, topic, backlog, message)
	srv := startServer(t, cnosdbtest.Options{})
	srv.Down()
	inputConf, outputConf := childConfigs(t, brokers[0], topic, srv, fmt.Sprintf("  consumer_group = %q\n  stats_interval = \"500ms\"\n", "stats-"+topic))
	appendFile(t, outputConf, "  stats_interval = \"500ms\"\n  retry_max_interval = \"1s\"\n")
	tg := startTelegraf(t, binary, "[agent]\n  flush_interval = \"1s\"\n  hostname = \"e2e-host\"\n"+
		execdBlocks(t, binary, input, inputConf, output, outputConf))

	time.Sleep(3 * time.Second) // the backlog is consumed, held by the output
	kafkatest.ProduceN(t, brokers, topic, more, func(i int) []byte { return message(backlog + i) })
	time.Sleep(3 * time.Second)
	if err := srv.Up(); err != nil {
		t.Fatal(err)
	}
	waitRows(t, srv, "public", "kafka_consumer", backlog+more, tg)

	deadline := time.Now().Add(60 * time.Second)
	var (
		ticks      []int64
		lag        map[int64]float64
		partitions map[int64]int
	)
	for {
		ticks, lag, partitions = lagByTick(srv.Rows("", "public", partitionStats))
		if n := len(ticks); n > 0 && lag[ticks[n-1]] == 0 && partitions[ticks[n-1]] == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lag never fell to 0: by tick %v\n%s", lag, tg.log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	tg.stop(t)

	// While CnosDB was down: the backlog, then the backlog and more.
	sawBacklog, sawMore := false, false
	for _, tick := range ticks {
		switch lag[tick] {
		case backlog:
			sawBacklog = true
		case backlog + more:
			sawMore = true
		}
	}
	if !sawBacklog || !sawMore {
		t.Errorf("lag by tick %v: want ticks at %d (the backlog held) and %d (more arrived while held)", lag, backlog, backlog+more)
	}

	rows := srv.Rows("", "public", outputStats)
	holding := 0
	for _, row := range rows {
		if row.Tags["url"] == "" || row.Tags["database"] != "public" {
			t.Fatalf("output row tags %v", row.Tags)
		}
		if row.Fields["holding"] == true {
			holding++
		}
	}
	if len(rows) == 0 || holding == 0 {
		t.Errorf("%d output rows, %d of them holding: want rows made while CnosDB was down", len(rows), holding)
	}
	if n := srv.RowCount("", "public", "kafka_json_stats"); n == 0 {
		t.Errorf("no process rows of the input")
	}
	if n := srv.RowCount("", "public", "kafka_json_checkpoint"); n != 0 {
		t.Errorf("%d checkpoint rows stored", n)
	}
}

// appendFile adds options to the table a config file ends with.
func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}
