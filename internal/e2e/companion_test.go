package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbtest"
	"github.com/kafka-cnosdb/telegraf-execd/internal/kafkatest"
)

// With delivery_tracking at its default ("auto"), the input pasted beside
// an output that is not ours writes no checkpoints: outputs.file alone
// gets the data and no kafka_json_checkpoint row.
func TestNoCheckpointsWithoutOurOutput(t *testing.T) {
	for name, binary := range telegrafs(t) {
		t.Run(name, func(t *testing.T) {
			brokers := kafkatest.Brokers(t)
			input, _ := binaries(t)
			topic := kafkatest.NewTopic(t, 1)
			const n = 300
			kafkatest.ProduceN(t, brokers, topic, n, func(i int) []byte {
				return []byte(fmt.Sprintf(`{"pressure":%d.5,"visibility":%d}`, i%10, i))
			})
			dir := t.TempDir()
			inputConf := writeFile(t, dir, "kafka-json.conf", fmt.Sprintf("[[inputs.kafka_consumer]]\n  brokers = [%q]\n  topics = [%q]\n  data_format = \"json\"\n", brokers[0], topic))
			out := filepath.Join(dir, "metrics.out")
			tg := startTelegraf(t, binary, fmt.Sprintf(`[agent]
  flush_interval = "500ms"
[[inputs.execd]]
  command = [%q, "-config", %q]
  signal = "none"
  data_format = "influx"
[[outputs.file]]
  files = [%q]
  data_format = "influx"
`, input, inputConf, out))
			deadline := time.Now().Add(60 * time.Second)
			for strings.Count(readFile(t, out), "\nkafka_consumer,") < n-1 {
				if time.Now().After(deadline) {
					t.Fatalf("outputs.file holds %d lines, want %d\n%s", strings.Count(readFile(t, out), "\n"), n, tg.log.String())
				}
				time.Sleep(100 * time.Millisecond)
			}
			tg.stop(t)
			if text := readFile(t, out); strings.Contains(text, "kafka_json_checkpoint") {
				t.Fatalf("outputs.file got checkpoints:\n%s", grepLines(text, "kafka_json_checkpoint"))
			}
			if log := tg.log.String(); !strings.Contains(log, "telegraf-cnosdb does not run under this Telegraf") {
				t.Fatalf("the input did not say why it writes no checkpoints:\n%s", log)
			}
		})
	}
}

// With our output there, and another output without namedrop, the input
// keeps tracking and names the output that would store checkpoints.
func TestNamesOutputsThatNeedNamedrop(t *testing.T) {
	for name, binary := range telegrafs(t) {
		t.Run(name, func(t *testing.T) {
			brokers := kafkatest.Brokers(t)
			input, output := binaries(t)
			topic := kafkatest.NewTopic(t, 1)
			srv := startServer(t, cnosdbtest.Options{})
			inputConf, outputConf := childConfigs(t, brokers[0], topic, srv, "")
			dir := t.TempDir()
			tg := startTelegraf(t, binary, fmt.Sprintf(`[agent]
  flush_interval = "500ms"
%s
[[outputs.discard]]
[[outputs.file]]
  alias = "audit"
  files = [%q]
  namedrop = ["kafka_json_*"]
`, execdBlocks(t, binary, input, inputConf, output, outputConf), filepath.Join(dir, "audit.out")))
			kafkatest.ProduceN(t, brokers, topic, 100, func(i int) []byte { return []byte(fmt.Sprintf(`{"visibility":%d}`, i)) })
			waitRows(t, srv, "public", "kafka_consumer", 100, tg)
			tg.stop(t)
			log := tg.log.String()
			if !strings.Contains(log, `outputs.discard (in `) || !strings.Contains(log, `would store this input's checkpoints: add namedrop = [`) {
				t.Fatalf("no warning naming outputs.discard:\n%s", log)
			}
			if strings.Contains(log, `audit`) || strings.Contains(log, "does not run under this Telegraf") {
				t.Fatalf("a filtered output or our own was named:\n%s", log)
			}
			if !strings.Contains(log, "the output acknowledges checkpoints") {
				t.Fatalf("not tracking:\n%s", log)
			}
		})
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return "\n" + string(b)
}
