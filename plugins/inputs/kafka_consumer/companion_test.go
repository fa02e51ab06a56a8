package kafka_consumer //nolint:revive,stylecheck // named after the Telegraf plugin it replaces

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/execd"
)

// The input paces itself by the batches Telegraf writes telegraf-cnosdb:
// read from Telegraf's config, they win over a metric_batch_size of the
// input's own that disagrees, and windows left to their defaults grow to
// five of them.
func TestAdoptTelegrafBatch(t *testing.T) {
	companion := func(batch, buffer int) execd.Output {
		return execd.Output{Kind: "execd", File: "/etc/telegraf/telegraf.conf", Command: []string{"/usr/bin/telegraf-cnosdb", "-config", "c"},
			BatchSize: batch, BufferLimit: buffer}
	}
	other := execd.Output{Kind: "file", BatchSize: 7, BufferLimit: 70}
	tests := []struct {
		name     string
		extra    string
		outputs  []execd.Output
		batch    int
		messages int
		metrics  int
		buffer   int
		readErr  error
		warn     string
	}{
		{"no config read", "", nil, 1000, 10000, 20000, 0, nil, ""},
		{"another output only", "", []execd.Output{other}, 1000, 10000, 20000, 0, nil, ""},
		{"Telegraf's defaults", "", []execd.Output{other, companion(1000, 10000)}, 1000, 10000, 20000, 10000, nil, ""},
		{"sample.conf's", "", []execd.Output{companion(5000, 50000)}, 5000, 25000, 50000, 50000, nil, ""},
		{"windows set stay", "max_undelivered_messages = 12000\nmax_undelivered_metrics = 13000", []execd.Output{companion(5000, 50000)}, 5000, 12000, 13000, 50000, nil, ""},
		{"the input's own disagrees", "metric_batch_size = 1000", []execd.Output{companion(5000, 50000)}, 5000, 25000, 50000, 50000, nil,
			"metric_batch_size = 1000, but Telegraf writes outputs.execd (in /etc/telegraf/telegraf.conf) in batches of 5000: using 5000"},
		{"two of them", "", []execd.Output{companion(2000, 20000), companion(3000, 30000)}, 2000, 10000, 20000, 20000, nil,
			"2 [[outputs.execd]] tables run telegraf-cnosdb"},
		{"a file that could not be read", "", []execd.Output{other}, 1000, 10000, 20000, 0, errors.New("/etc/telegraf/telegraf.d/x.conf: bad"),
			"not in what could be read of Telegraf's config (/etc/telegraf/telegraf.d/x.conf: bad): assuming it gets batches of metric_batch_size = 1000"},
		{"found despite a file that could not be read", "", []execd.Output{companion(5000, 50000)}, 5000, 25000, 50000, 50000, errors.New("bad"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := newFromText(t, "[[inputs.kafka_consumer]]\nbrokers = [\"127.0.0.1:9092\"]\ntopics = [\"t\"]\ndata_format = \"json\"\n"+tt.extra+"\n")
			if err != nil {
				t.Fatal(err)
			}
			var log bytes.Buffer
			k.Log.SetOutput(&log)
			k.adoptTelegrafBatch(tt.outputs, tt.readErr)
			if k.MetricBatchSize != tt.batch || k.MaxUndeliveredMessages != tt.messages || k.MaxUndeliveredMetrics != tt.metrics || k.telegrafBuffer != tt.buffer {
				t.Errorf("batch %d, windows %d/%d, buffer %d; want %d, %d/%d, %d", k.MetricBatchSize, k.MaxUndeliveredMessages, k.MaxUndeliveredMetrics, k.telegrafBuffer,
					tt.batch, tt.messages, tt.metrics, tt.buffer)
			}
			warned := strings.Contains(log.String(), "W! ")
			if tt.warn == "" && warned {
				t.Errorf("unexpected warning: %s", log.String())
			}
			if tt.warn != "" && !strings.Contains(log.String(), tt.warn) {
				t.Errorf("log %q lacks %q", log.String(), tt.warn)
			}
		})
	}
}
