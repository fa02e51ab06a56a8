// Package e2e runs the whole pipeline the way a user does: stock Telegraf
// binaries (built by scripts/telegraf.sh) with our two execd children,
// the real Kafka broker (scripts/kafka.sh) and the CnosDB test server.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbtest"
	"github.com/kafka-cnosdb/telegraf-execd/internal/kafkatest"
	"github.com/kafka-cnosdb/telegraf-execd/internal/syncbuf"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds our two commands once per test run.
func binaries(t *testing.T) (input, output string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "e2e-bin")
		if buildErr != nil {
			return
		}
		for _, cmd := range []string{"telegraf-kafka-json", "telegraf-cnosdb"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, cmd), "../../cmd/"+cmd).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("building %s: %v\n%s", cmd, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "telegraf-kafka-json"), filepath.Join(binDir, "telegraf-cnosdb")
}

// telegrafs lists the stock Telegraf builds to test against, from the
// environment scripts/test.sh sets; without them the test skips.
func telegrafs(t *testing.T) map[string]string {
	t.Helper()
	found := map[string]string{}
	for _, env := range []string{"TELEGRAF_OLD", "TELEGRAF_NEW"} {
		if path := os.Getenv(env); path != "" {
			found[env] = path
		}
	}
	if len(found) == 0 {
		t.Skip("TELEGRAF_OLD/TELEGRAF_NEW not set: build stock Telegraf with scripts/telegraf.sh (scripts/test.sh does)")
	}
	return found
}

// telegraf is a running stock Telegraf.
type telegraf struct {
	cmd  *exec.Cmd
	log  *syncbuf.Buffer
	done chan error
}

func startTelegraf(t *testing.T, binary, config string) *telegraf {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "telegraf.conf")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	tg := &telegraf{log: &syncbuf.Buffer{}, done: make(chan error, 1)}
	tg.cmd = exec.Command(binary, "--config", path)
	tg.cmd.Stdout = tg.log
	tg.cmd.Stderr = tg.log
	if err := tg.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { tg.done <- tg.cmd.Wait() }()
	t.Cleanup(func() {
		tg.stop(t)
		if t.Failed() {
			t.Logf("telegraf log:\n%s", tg.log.String())
		}
	})
	return tg
}

// stop sends SIGTERM, as systemd does, and waits for a clean exit.
func (tg *telegraf) stop(t *testing.T) {
	t.Helper()
	if tg.cmd.ProcessState != nil || tg.done == nil {
		return
	}
	tg.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // it may have exited already
	select {
	case <-tg.done:
	case <-time.After(30 * time.Second):
		tg.cmd.Process.Kill() //nolint:errcheck // last resort
		t.Error("telegraf did not stop within 30 s of SIGTERM")
	}
	tg.done = nil
}

// sampleExecdOutput is what sample.conf adds to telegraf-cnosdb's
// [[outputs.execd]]: batches of 5,000, whose size the input reads from
// Telegraf's config, and room for them.
const sampleExecdOutput = "  metric_batch_size = 5000\n  metric_buffer_limit = 50000\n"

// execdBlocks runs our two children as the README tells users to:
// sample.conf's batches, and use_batch_format where Telegraf has it (1.28
// and later).
func execdBlocks(t *testing.T, telegrafBinary, input, inputConf, output, outputConf string) string {
	t.Helper()
	return execdBlocksWith(t, telegrafBinary, input, inputConf, output, outputConf, sampleExecdOutput)
}

// execdBlocksWith is execdBlocks with outputSettings instead of
// sample.conf's for the output's block.
func execdBlocksWith(t *testing.T, telegrafBinary, input, inputConf, output, outputConf, outputSettings string) string {
	t.Helper()
	batchFormat := ""
	if minor := telegrafMinor(t, telegrafBinary); minor >= 28 {
		batchFormat = "  use_batch_format = true\n"
	}
	return fmt.Sprintf(`
[[inputs.execd]]
  command = [%q, "-config", %q]
  signal = "none"
  data_format = "influx"
[[outputs.execd]]
  command = [%q, "-config", %q]
  data_format = "influx"
%s%s`, input, inputConf, output, outputConf, outputSettings, batchFormat)
}

var telegrafVersionRE = regexp.MustCompile(`Telegraf 1\.(\d+)\.`)

// telegrafMinor is the minor version of a Telegraf 1.x binary.
func telegrafMinor(t *testing.T, binary string) int {
	t.Helper()
	out, err := exec.Command(binary, "--version").Output()
	m := telegrafVersionRE.FindSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("%s --version: %q, %v", binary, out, err)
	}
	minor, _ := strconv.Atoi(string(m[1]))
	return minor
}

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitRows polls the server until it holds n rows of measurement.
func waitRows(t *testing.T, srv cnosdbtest.Target, db, measurement string, n int, tg *telegraf) []cnosdbtest.Row {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		if srv.RowCount("cnosdb", db, measurement) >= n {
			if rows := srv.Rows("cnosdb", db, measurement); len(rows) >= n {
				return rows
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("CnosDB holds %d rows of %s, want %d\ntelegraf log:\n%s", srv.RowCount("cnosdb", db, measurement), measurement, n, tg.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func startServer(t *testing.T, opts cnosdbtest.Options) *cnosdbtest.Server {
	t.Helper()
	srv, err := cnosdbtest.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// childConfigs writes the two children's config files: the guide's
// kafka_consumer block for topic, plus inputExtra, and an output to srv.
func childConfigs(t *testing.T, broker, topic string, srv cnosdbtest.Target, inputExtra string) (inputConf, outputConf string) {
	t.Helper()
	dir := t.TempDir()
	inputConf = writeFile(t, dir, "kafka-json.conf", fmt.Sprintf(`
[[inputs.kafka_consumer]]
  brokers = [%q]
  topics = [%q]
  data_format = "json"
%s`, broker, topic, inputExtra))
	outputConf = writeFile(t, dir, "cnosdb.conf", fmt.Sprintf("[[outputs.cnosdb]]\n  urls = [%q]\n", srv.URL()))
	return inputConf, outputConf
}

func TestGuidePipelineThroughStockTelegraf(t *testing.T) {
	forEachTelegrafAndBackend(t, func(t *testing.T, _, binary string, be backend) { checkGuidePipeline(t, binary, be) })
}

// forEachTelegrafAndBackend runs check as a subtest for every stock
// Telegraf and every CnosDB found.
func forEachTelegrafAndBackend(t *testing.T, check func(t *testing.T, name, binary string, be backend)) {
	t.Helper()
	for name, binary := range telegrafs(t) {
		for _, be := range backends(t) {
			t.Run(name+"/"+be.name, func(t *testing.T) { check(t, name, binary, be) })
		}
	}
}

func checkGuidePipeline(t *testing.T, binary string, be backend) {
	brokers := kafkatest.Brokers(t)
	input, output := binaries(t)
	topic := kafkatest.NewTopic(t, 1)
	srv := be.start(t, cnosdbtest.Options{Dialect: cnosdbtest.V230})
	inputConf, outputConf := childConfigs(t, brokers[0], topic, srv, "")
	tg := startTelegraf(t, binary, "[agent]\n  flush_interval = \"1s\"\n  hostname = \"e2e-host\"\n"+
		execdBlocks(t, binary, input, inputConf, output, outputConf))

	const n = 500
	kafkatest.ProduceN(t, brokers, topic, n, func(i int) []byte {
		return []byte(fmt.Sprintf(`{"pressure":%d.5,"temperature":23.4,"visibility":%d}`, i%10, i))
	})
	rows := waitRows(t, srv, "public", "kafka_consumer", n, tg)
	tg.stop(t)

	seen := map[float64]bool{}
	for _, row := range rows {
		if row.Tags["host"] != "e2e-host" || len(row.Tags) != 1 {
			t.Fatalf("row tags %v, want only host", row.Tags)
		}
		keys := make([]string, 0, len(row.Fields))
		for k := range row.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if strings.Join(keys, ",") != "pressure,temperature,visibility" {
			t.Fatalf("row fields %v", row.Fields)
		}
		seen[row.Fields["visibility"].(float64)] = true
	}
	if len(seen) != n || len(rows) != n {
		t.Fatalf("%d rows, %d distinct messages, want %d", len(rows), len(seen), n)
	}
	log := tg.log.String()
	if strings.Contains(log, "E! [inputs.execd]") && strings.Contains(log, "skipping message") {
		t.Fatalf("unexpected errors in telegraf log:\n%s", log)
	}
	// The input took sample.conf's batches of 5000 from Telegraf's
	// config: two inside Telegraf, a window of five.
	if want := "at most 25000 messages and 50000 metrics unacknowledged, 10000 inside Telegraf"; !strings.Contains(log, want) {
		t.Errorf("the input's log does not say %q:\n%s", want, grepLines(log, "inside Telegraf"))
	}
}
