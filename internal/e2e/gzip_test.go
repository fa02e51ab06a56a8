package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbtest"
	"github.com/kafka-cnosdb/telegraf-execd/internal/kafkatest"
)

// TestGzipReachesCnosDB: with content_encoding = "gzip" the guide's
// messages land through telegraf-cnosdb, while stock outputs.http, which
// streams its gzip body chunked (no Content-Length), gets CnosDB's 500
// for every write and stores nothing. The test server answers a chunked
// body as 2.3.0 and 2.4.3 do (docs/cnosdb.md); a real CnosDB, when one
// is here, judges both.
func TestGzipReachesCnosDB(t *testing.T) {
	forEachTelegrafAndBackend(t, func(t *testing.T, _, binary string, be backend) { checkGzip(t, binary, be) })
}

func checkGzip(t *testing.T, binary string, be backend) {
	brokers := kafkatest.Brokers(t)
	input, output := binaries(t)
	topic := kafkatest.NewTopic(t, 1)
	srv := be.start(t, cnosdbtest.Options{Dialect: cnosdbtest.V24, Databases: []string{"stock", "ours"}})
	const n = 50
	kafkatest.ProduceN(t, brokers, topic, n, func(i int) []byte {
		return []byte(fmt.Sprintf(`{"pressure":%d.5,"temperature":23.4,"visibility":%d}`, i%10, i))
	})
	agent := "[agent]\n  flush_interval = \"1s\"\n  hostname = \"gzip-host\"\n"
	stock := startTelegraf(t, binary, agent+fmt.Sprintf(`
[[inputs.kafka_consumer]]
  brokers = [%q]
  topics = [%q]
  data_format = "json"
  version = "2.1.0"
  consumer_group = "stock"
  offset = "oldest"
[[outputs.http]]
  url = "%s/api/v1/write?db=stock"
  method = "POST"
  username = "root"
  password = ""
  data_format = "influx"
  use_batch_format = true
  content_encoding = "gzip"
`, brokers[0], topic, srv.URL()))

	inputConf, _ := childConfigs(t, brokers[0], topic, srv, "  consumer_group = \"ours\"\n  offset = \"oldest\"\n")
	outputConf := writeFile(t, t.TempDir(), "cnosdb.conf", fmt.Sprintf(
		"[[outputs.cnosdb]]\n  url = \"%s/api/v1/write?db=ours\"\n  content_encoding = \"gzip\"\n", srv.URL()))
	ours := startTelegraf(t, binary, agent+execdBlocks(t, binary, input, inputConf, output, outputConf))
	waitRows(t, srv, "ours", "kafka_consumer", n, ours)
	ours.stop(t)

	// Stock has read the same messages by now, or does within the wait;
	// every flush is refused, so its error is logged each second.
	const refused = "received status code: 500"
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(stock.log.String(), refused) {
		if time.Now().After(deadline) {
			t.Fatalf("stock outputs.http logged no %q in 60 s:\n%s", refused, stock.log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	stock.stop(t)
	if got := srv.RowCount("cnosdb", "stock", "kafka_consumer"); got != 0 {
		t.Errorf("stock's gzip writes stored %d rows; CnosDB refuses chunked bodies", got)
	}
	log := ours.log.String()
	if be.old230(cnosdbtest.V24) {
		// 2.3.x cannot decode gzip: the output says so once and goes on
		// uncompressed.
		if !strings.Contains(log, "content_encoding: CnosDB at") {
			t.Errorf("no warning that %s cannot take gzip:\n%s", be.name, log)
		}
	} else if strings.Contains(log, "content_encoding:") {
		t.Errorf("the output turned gzip off against %s:\n%s", be.name, log)
	}
	if st, ok := srv.(*cnosdbtest.Server); ok && !be.old230(cnosdbtest.V24) {
		// What came over the wire is gzip: a fraction of the lines' size.
		if st.Stats().BodyBytes*3 > int64(n*len("kafka_consumer,host=gzip-host pressure=0.5,temperature=23.4,visibility=0 1700000000000000000\n")) {
			t.Errorf("write bodies of %d bytes for %d lines: not compressed", st.Stats().BodyBytes, n)
		}
	}
}
