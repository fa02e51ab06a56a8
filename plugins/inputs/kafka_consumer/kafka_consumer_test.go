package kafka_consumer //nolint:revive,stylecheck // named after the Telegraf plugin it replaces

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/execd"
)

// newFromText decodes a config the way the binary does and runs Init.
func newFromText(t *testing.T, text string) (*KafkaConsumer, error) {
	t.Helper()
	k := New()
	k.Log.SetOutput(&bytes.Buffer{})
	if err := execd.DecodeConfig(text, "inputs", "kafka_consumer", k); err != nil {
		return nil, err
	}
	return k, k.Init()
}

func TestGuideBlockWorksUnchanged(t *testing.T) {
	k, err := newFromText(t, `
[[inputs.kafka_consumer]]
brokers = ["127.0.0.1:9092"]
topics = ["oceanic"]
data_format = "json"
`)
	if err != nil {
		t.Fatal(err)
	}
	if k.ConsumerGroup != "telegraf_metrics_consumers" || k.MaxUndeliveredMessages != defaultMaxUndeliveredMessages || k.TimestampSource != "metric" {
		t.Fatalf("stock defaults not applied: %+v", k)
	}
	if got := k.saramaConfig.Version.String(); got != defaultKafkaVersion {
		t.Fatalf("kafka version %s, want %s", got, defaultKafkaVersion)
	}
	if k.saramaConfig.ClientID != "Telegraf" {
		t.Fatalf("client id %q", k.saramaConfig.ClientID)
	}
}

func TestSampleConfigIsValid(t *testing.T) {
	text, err := os.ReadFile("sample.conf")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newFromText(t, string(text)); err != nil {
		t.Fatalf("sample.conf: %v", err)
	}
	if New().SampleConfig() != string(text) {
		t.Fatal("embedded sample config differs from sample.conf")
	}
}

func TestInitNamesTheOption(t *testing.T) {
	const base = "[[inputs.kafka_consumer]]\nbrokers = [\"127.0.0.1:9092\"]\ntopics = [\"t\"]\ndata_format = \"json\"\n"
	tests := []struct {
		name, extra, want string
	}{
		{"unknown option", "brokerz = 1\n", "brokerz"},
		{"no brokers", "brokers = []\n", "brokers"},
		{"no topics", "topics = []\n", "topics"},
		{"bad regexp", "topic_regexps = [\"(\"]\n", "topic_regexps"},
		{"bad offset", "offset = \"middle\"\n", "offset"},
		{"bad strategy", "balance_strategy = \"random\"\n", "balance_strategy"},
		{"bad timestamp source", "timestamp_source = \"wall\"\n", "timestamp_source"},
		{"bad connection strategy", "connection_strategy = \"later\"\n", "connection_strategy"},
		{"bad startup behavior", "startup_error_behavior = \"panic\"\n", "startup_error_behavior"},
		{"bad kafka version", "kafka_version = \"banana\"\n", "kafka_version"},
		{"bad version", "version = \"banana\"\n", "version"},
		{"negative length", "max_message_len = -1\n", "max_message_len"},
		{"bad log level", "log_level = \"loud\"\n", "log_level"},
		{"bad metadata retry", "metadata_retry_type = \"sometimes\"\n", "metadata_"},
		{"bad time format", "json_time_key = \"t\"\n", "json"},
		{"bad tls", "tls_ca = \"/nonexistent/ca.pem\"\n", "tls"},
		{"dead letters consumed", "dead_letter_topic = \"t\"\n", "dead_letter_topic: \"t\" is also in topics"},
		{"dead letters matched", "dead_letter_topic = \"t-dlq\"\ntopic_regexps = [\"^t-\"]\n", "dead_letter_topic: \"t-dlq\" matches topic_regexps"},
		{"stats too often", "stats_interval = \"1ms\"\n", "stats_interval"},
		{"stats same names", "stats_interval = \"1s\"\nstats_measurement = \"x\"\nstats_partition_measurement = \"x\"\n", "stats_partition_measurement"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A later key of the same name would be a TOML error, so
			// the extra line replaces the base line it repeats.
			text := base
			if key, _, ok := strings.Cut(tt.extra, " ="); ok && strings.Contains(base, "\n"+key+" =") {
				lines := strings.Split(base, "\n")
				for i, l := range lines {
					if strings.HasPrefix(l, key+" =") {
						lines[i] = strings.TrimSuffix(tt.extra, "\n")
					}
				}
				text = strings.Join(lines, "\n")
			} else {
				text += tt.extra
			}
			_, err := newFromText(t, text)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to name %q", err, tt.want)
			}
		})
	}
}

func TestDataFormatMustBeJSON(t *testing.T) {
	for _, format := range []string{"", "influx", "csv"} {
		text := "[[inputs.kafka_consumer]]\nbrokers = [\"b:1\"]\ntopics = [\"t\"]\n"
		if format != "" {
			text += "data_format = \"" + format + "\"\n"
		}
		if _, err := newFromText(t, text); err == nil || !strings.Contains(err.Error(), "data_format") {
			t.Errorf("data_format %q: error %v", format, err)
		}
	}
}
