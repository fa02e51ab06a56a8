package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/telegraf/plugins/parsers/json"
	"github.com/influxdata/telegraf/plugins/serializers/influx"

	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbtest"
	"github.com/kafka-cnosdb/telegraf-execd/internal/kafkatest"
)

// parityVariant is one set of JSON parser options, written the same way
// into the stock [[inputs.kafka_consumer]] block and into ours.
type parityVariant struct {
	name    string
	options string
	// timeFromJSON: the stored time comes from the message, so it must
	// match too; otherwise it is the time of consumption and is ignored.
	timeFromJSON bool
	parser       json.Parser
	// guideOnly sends just the guide's sensor messages (the first three
	// of the corpus) to a 2.3.0 server: some awkward messages serialize
	// to lines CnosDB 2.3.0 refuses, and stock outputs.http then retries
	// that whole batch forever, so it stores nothing to compare with.
	guideOnly bool
}

var parityVariants = []parityVariant{
	{name: "guide-2.3.0", guideOnly: true},
	{name: "awkward-2.4"},
	{
		name:    "tags-and-strings",
		options: "tag_keys = [\"site\", \"meta_u*\"]\njson_string_fields = [\"name\", \"flag*\", \"meta_unit\"]\n",
		parser:  json.Parser{TagKeys: []string{"site", "meta_u*"}, StringFields: []string{"name", "flag*", "meta_unit"}},
	},
	{
		name:         "name-and-time",
		options:      "json_name_key = \"type\"\njson_time_key = \"ts\"\njson_time_format = \"unix_ms\"\ntag_keys = [\"site\"]\n",
		timeFromJSON: true,
		parser:       json.Parser{NameKey: "type", TimeKey: "ts", TimeFormat: "unix_ms", TagKeys: []string{"site"}},
	},
}

// TestParityWithStockTelegraf sends the same messages through (a) stock
// Telegraf's kafka_consumer + outputs.http, configured as in the guide,
// and (b) the same Telegraf binary with our execd input and output, into
// two CnosDB test servers, and requires the same rows in both.
func TestParityWithStockTelegraf(t *testing.T) {
	corpus, err := os.ReadFile("testdata/parity-messages.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	messages := bytes.Split(bytes.TrimSpace(corpus), []byte("\n"))
	for name, binary := range telegrafs(t) {
		for _, be := range backends(t) {
			for _, variant := range parityVariants {
				t.Run(name+"/"+be.name+"/"+variant.name, func(t *testing.T) {
					checkParity(t, binary, be, variant, messages)
				})
			}
		}
	}
}

func checkParity(t *testing.T, binary string, be backend, variant parityVariant, messages [][]byte) {
	dialect := cnosdbtest.V24
	if variant.guideOnly {
		messages, dialect = messages[:3], cnosdbtest.V230
	}
	if be.old230(dialect) && !variant.guideOnly {
		// 2.3.0 takes some awkward lines without a word and stores them
		// wrongly (a tagless line runs into the next one), where ours puts
		// them aside: there is no parity to have, only the guide's case.
		t.Skipf("CnosDB %s reads awkward lines into garbage: only the guide's messages are compared", be.version)
	}
	servers := map[string]cnosdbtest.Target{}
	for _, path := range []string{"stock", "ours"} {
		servers[path] = be.start(t, cnosdbtest.Options{Dialect: dialect, Databases: []string{"telegraf"}, DefaultTTL: -1})
	}
	// Stock outputs.http retries a batch CnosDB refuses forever, so a
	// message whose line CnosDB refuses would leave nothing to compare.
	messages = withoutRefused(t, servers["stock"], variant, messages)

	brokers := kafkatest.Brokers(t)
	input, output := binaries(t)
	topic := kafkatest.NewTopic(t, 1)
	sentinel := []byte(`{"sentinel":1,"ts":1700000009999,"type":"sentinel","site":"end"}`)
	all := append(append([][]byte{}, messages...), sentinel)
	kafkatest.ProduceN(t, brokers, topic, len(all), func(i int) []byte { return all[i] })
	agent := "[agent]\n  flush_interval = \"1s\"\n  hostname = \"parity-host\"\n"
	// The guide's block; only `version` is added, since stock's default
	// protocol (0.10.2.0) cannot talk to the Kafka 4 broker.
	consumer := fmt.Sprintf("  brokers = [%q]\n  topics = [%q]\n  data_format = \"json\"\n%s", brokers[0], topic, indent(variant.options))
	stock := startTelegraf(t, binary, agent+fmt.Sprintf(`
[[inputs.kafka_consumer]]
  version = "2.1.0"
  consumer_group = "stock"
%s
[[outputs.http]]
  url = "%s/api/v1/write?db=telegraf"
  timeout = "5s"
  method = "POST"
  username = "root"
  password = ""
  data_format = "influx"
  use_batch_format = true
  content_encoding = "identity"
  idle_conn_timeout = 10
`, consumer, servers["stock"].URL()))

	dir := t.TempDir()
	inputConf := writeFile(t, dir, "kafka-json.conf", "[[inputs.kafka_consumer]]\n  consumer_group = \"ours\"\n"+consumer)
	outputConf := writeFile(t, dir, "cnosdb.conf", fmt.Sprintf(`
[[outputs.cnosdb]]
  url = "%s/api/v1/write?db=telegraf"
  timeout = "5s"
  username = "root"
  password = ""
`, servers["ours"].URL()))
	ours := startTelegraf(t, binary, agent+execdBlocks(t, binary, input, inputConf, output, outputConf))

	// One partition keeps order: once the sentinel is stored, so is
	// everything before it.
	sentinelName := "kafka_consumer"
	if variant.parser.NameKey != "" {
		sentinelName = "sentinel"
	}
	for path, srv := range servers {
		tg := map[string]*telegraf{"stock": stock, "ours": ours}[path]
		waitRows(t, srv, "telegraf", sentinelName, 1, tg)
	}
	stock.stop(t)
	ours.stop(t)

	got := map[string][]string{}
	for path, srv := range servers {
		for _, m := range srv.Measurements("cnosdb", "telegraf") {
			for _, row := range srv.Rows("cnosdb", "telegraf", m) {
				got[path] = append(got[path], canonicalRow(m, row, variant.timeFromJSON))
			}
		}
		sort.Strings(got[path])
	}
	if len(got["stock"]) < len(messages)/2 {
		t.Fatalf("stock stored only %d rows:\n%s", len(got["stock"]), strings.Join(got["stock"], "\n"))
	}
	if strings.Join(got["stock"], "\n") != strings.Join(got["ours"], "\n") {
		t.Fatalf("rows differ\nstock (%d):\n%s\nours (%d):\n%s", len(got["stock"]), strings.Join(got["stock"], "\n"),
			len(got["ours"]), strings.Join(got["ours"], "\n"))
	}

	// Every message Telegraf's parser rejects is reported once by ours.
	parser := variant.parser
	parser.MetricName = "kafka_consumer"
	if err := parser.Init(); err != nil {
		t.Fatal(err)
	}
	invalid := 0
	for _, m := range messages {
		if _, err := parser.Parse(m); err != nil {
			invalid++
		}
	}
	if reported := strings.Count(ours.log.String(), "skipping message at topic"); reported != invalid {
		t.Fatalf("our input reported %d bad messages, Telegraf's parser rejects %d\n%s", reported, invalid, ours.log.String())
	}
	t.Logf("%d rows identical; %d invalid messages reported", len(got["ours"]), invalid)
}

func indent(options string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(options), "\n") {
		if line != "" {
			b.WriteString("  " + line + "\n")
		}
	}
	return b.String()
}

// canonicalRow prints a row with sorted tags and fields, and its time
// only when it came from the message.
func canonicalRow(measurement string, row cnosdbtest.Row, withTime bool) string {
	var parts []string
	for k, v := range row.Tags {
		parts = append(parts, fmt.Sprintf("tag %q=%q", k, v))
	}
	for k, v := range row.Fields {
		parts = append(parts, fmt.Sprintf("field %q=%#v", k, v))
	}
	sort.Strings(parts)
	ts := ""
	if withTime {
		ts = " @" + time.Unix(0, row.Time).UTC().Format(time.RFC3339Nano)
	}
	return measurement + " " + strings.Join(parts, " ") + ts
}

// withoutRefused leaves out the messages whose lines, as stock Telegraf
// would write them (its JSON parser, the host tag, its influx serializer),
// srv refuses when each is sent alone: CnosDB 2.4.3 refuses the \t, \n,
// \r and \f escapes Telegraf writes for those characters in tags, and
// 2.3.0 more. Such a message stops stock outputs.http for good; ours logs
// the line and goes on (TestErrorTable and the fault suite show it).
func withoutRefused(t *testing.T, srv cnosdbtest.Target, variant parityVariant, messages [][]byte) [][]byte {
	t.Helper()
	parser := variant.parser
	parser.MetricName = "kafka_consumer"
	if err := parser.Init(); err != nil {
		t.Fatal(err)
	}
	serializer := &influx.Serializer{}
	if err := serializer.Init(); err != nil {
		t.Fatal(err)
	}
	srv.CreateDatabase("", "probe")
	var kept [][]byte
	for _, m := range messages {
		metrics, err := parser.Parse(m)
		if err != nil {
			kept = append(kept, m) // invalid JSON: dropped by both inputs alike
			continue
		}
		for _, metric := range metrics {
			metric.AddTag("host", "parity-host")
		}
		body, err := serializer.SerializeBatch(metrics)
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest(http.MethodPost, srv.URL()+"/api/v1/write?db=probe", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("root", "")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && len(body) > 0 {
			t.Logf("left out: CnosDB refuses %q (%d %s)", body, resp.StatusCode, answer)
			continue
		}
		kept = append(kept, m)
	}
	return kept
}
