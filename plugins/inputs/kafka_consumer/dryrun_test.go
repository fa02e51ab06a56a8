package kafka_consumer //nolint:revive,stylecheck // named after the Telegraf plugin it replaces

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/kafka-cnosdb/telegraf-execd/internal/kafkatest"
	"github.com/kafka-cnosdb/telegraf-execd/internal/syncbuf"
	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/execd"
)

func dryRunPlugin(t *testing.T, config string) *KafkaConsumer {
	t.Helper()
	k := New()
	k.Log.SetOutput(&syncbuf.Buffer{})
	if err := execd.DecodeConfig("[[inputs.kafka_consumer]]\ndata_format = \"json\"\n"+config, "inputs", "kafka_consumer", k); err != nil {
		t.Fatal(err)
	}
	if err := k.Init(); err != nil {
		t.Fatal(err)
	}
	return k
}

// -test reads up to -count messages of each partition from `offset`,
// prints their line protocol and the bad ones' reasons, and commits
// nothing: the group starts from the beginning afterwards.
func TestDryRun(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.NewTopic(t, 2)
	// Message i goes to partition i%2; the tenth is not JSON.
	kafkatest.ProduceN(t, brokers, topic, 20, func(i int) []byte {
		if i == 9 {
			return []byte(`{"pressure":`)
		}
		return fmt.Appendf(nil, `{"pressure":%d.5,"n":%d}`, i, i)
	})
	group := "dry-run-" + topic
	for _, tc := range []struct {
		offset      string
		count       int
		lines, bads int
		first       string // a line the output holds
	}{
		{"oldest", 3, 6, 0, "kafka_consumer pressure=0.5,n=0"},
		{"oldest", 100, 19, 1, "kafka_consumer pressure=18.5,n=18"},
		{"newest", 2, 4, 0, "kafka_consumer pressure=19.5,n=19"},
	} {
		t.Run(fmt.Sprintf("%s %d", tc.offset, tc.count), func(t *testing.T) {
			k := dryRunPlugin(t, fmt.Sprintf("brokers = %q\ntopics = [%q]\nconsumer_group = %q\noffset = %q\n", brokers, topic, group, tc.offset))
			var stdout, stderr bytes.Buffer
			if err := k.DryRun(context.Background(), &stdout, &stderr, tc.count); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
			if len(lines) != tc.lines || !strings.Contains(stdout.String(), tc.first+" ") {
				t.Fatalf("%d lines, want %d with %q:\n%s", len(lines), tc.lines, tc.first, stdout.String())
			}
			if got := strings.Count(stderr.String(), "bad message at topic"); got != tc.bads ||
				tc.bads > 0 && !strings.Contains(stderr.String(), fmt.Sprintf("bad message at topic %q partition 1 offset 4: ", topic)) {
				t.Fatalf("%d bad messages reported, want %d:\n%s", got, tc.bads, stderr.String())
			}
			if strings.Count(stderr.String(), "lines, ") != 2 {
				t.Fatalf("want a summary per partition:\n%s", stderr.String())
			}
		})
	}
	if got := kafkatest.CommittedOffsets(t, brokers, group, topic); len(got) != 0 {
		t.Fatalf("the dry run committed %v", got)
	}
}

// A dry run fails, naming the option, when the brokers or a topic of
// topics cannot be reached.
func TestDryRunFails(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	for _, tc := range []struct {
		name, config, want string
	}{
		{"no broker", "brokers = [\"127.0.0.1:1\"]\ntopics = [\"t\"]\nmetadata_retry_max = 0\n", "cannot connect to brokers [127.0.0.1:1]"},
		{"no topic", fmt.Sprintf("brokers = %q\ntopics = [\"no-such-topic-dry-run\"]\n", brokers), `topics: topic "no-such-topic-dry-run" does not exist`},
		{"no topic matches", fmt.Sprintf("brokers = %q\ntopic_regexps = [\"^no-such-topic-dry-run-.*\"]\n", brokers), "topic_regexps: no topic"},
		{"SASL refused", fmt.Sprintf("brokers = %q\ntopics = [\"t\"]\nsasl_username = \"nobody\"\nsasl_password = \"nothing\"\nsasl_mechanism = \"SCRAM-SHA-512\"\nmetadata_retry_max = 0\n", kafkatest.SASLBrokers(t)),
			`refused SASL authentication with sasl_mechanism = "SCRAM-SHA-512", sasl_username = "nobody"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := dryRunPlugin(t, tc.config)
			var stdout, stderr bytes.Buffer
			err := k.DryRun(context.Background(), &stdout, &stderr, 5)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}
