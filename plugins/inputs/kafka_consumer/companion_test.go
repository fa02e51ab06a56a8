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
// hold what sits inside Telegraf and room for the output to hold markers
// beside it (newTracker's holdMarkers).
func TestAdoptTelegrafBatch(t *testing.T) {
	companion := func(batch, buffer int) execd.Output {
		return execd.Output{Kind: "execd", File: "/etc/telegraf/telegraf.conf", Command: []string{"/usr/bin/telegraf-cnosdb", "-config", "c"},
			BatchSize: batch, BufferLimit: buffer}
	}
	other := execd.Output{Kind: "file", BatchSize: 7, BufferLimit: 70}
	const notFound = "telegraf-cnosdb's [[outputs.execd]] table is not in Telegraf's config as read"
	tests := []struct {
		name       string
		extra      string
		outputs    []execd.Output
		readErr    error
		retriggers bool
		batch      int
		messages   int
		metrics    int
		buffer     int
		warn       string
	}{
		{"no config read", "", nil, nil, false, 1000, 10000, 20000, 0, notFound + ", a URL or a wrapper script maybe: assuming it gets Telegraf's default batches (metric_batch_size = 1000)"},
		{"another output only", "", []execd.Output{other}, nil, false, 1000, 10000, 20000, 0, notFound},
		{"a file that could not be read", "", []execd.Output{other}, errors.New("/etc/telegraf/telegraf.d/x.conf: bad"), false, 1000, 10000, 20000, 0,
			notFound + " (some of it could not be read: /etc/telegraf/telegraf.d/x.conf: bad)"},
		{"not found, the size set here", "metric_batch_size = 5000", nil, nil, false, 5000, 25000, 50000, 0, ""},
		{"Telegraf's defaults", "", []execd.Output{other, companion(1000, 10000)}, nil, false, 1000, 10000, 20000, 10000, ""},
		{"Telegraf's defaults, retriggering", "", []execd.Output{companion(1000, 10000)}, nil, true, 1000, 10000, 20000, 10000, ""},
		{"sample.conf's", "", []execd.Output{companion(5000, 50000)}, nil, false, 5000, 25000, 50000, 50000, ""},
		{"sample.conf's, retriggering", "", []execd.Output{companion(5000, 50000)}, nil, true, 5000, 25000, 50000, 50000, ""},
		{"batches of 2000, retriggering: four inside", "", []execd.Output{companion(2000, 50000)}, nil, true, 2000, 14000, 28000, 50000, ""},
		{"found despite a file that could not be read", "", []execd.Output{companion(5000, 50000)}, errors.New("bad"), false, 5000, 25000, 50000, 50000, ""},
		{"windows set stay", "max_undelivered_messages = 12000\nmax_undelivered_metrics = 13000", []execd.Output{companion(5000, 50000)}, nil, false, 5000, 12000, 13000, 50000, ""},
		{"the input's own disagrees", "metric_batch_size = 1000", []execd.Output{companion(5000, 50000)}, nil, false, 5000, 25000, 50000, 50000,
			"metric_batch_size = 1000, but Telegraf writes outputs.execd (in /etc/telegraf/telegraf.conf) in batches of 5000: using 5000"},
		{"two of them", "", []execd.Output{companion(2000, 20000), companion(3000, 30000)}, nil, false, 2000, 10000, 20000, 20000,
			"2 [[outputs.execd]] tables run telegraf-cnosdb"},
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
			k.sizeWindows(tt.retriggers)
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
			if tr := newTracker(k, &bytes.Buffer{}, &Stats{}, tt.retriggers); !tr.holdMarkers && !strings.Contains(tt.extra, "max_undelivered") {
				t.Errorf("the default windows leave the output no room to hold markers: %s", log.String())
			}
		})
	}
}
