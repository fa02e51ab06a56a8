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

// runToError runs the plugin with config until it gives up at start, as
// startup_error_behavior = "error" (the default) has it do.
func runToError(t *testing.T, config string) (error, string) {
	t.Helper()
	k := New()
	log := &syncbuf.Buffer{}
	k.Log.SetOutput(log)
	if err := execd.DecodeConfig("[[inputs.kafka_consumer]]\ndata_format = \"json\"\nmetadata_retry_max = 0\n"+config, "inputs", "kafka_consumer", k); err != nil {
		t.Fatal(err)
	}
	if err := k.Init(); err != nil {
		t.Fatal(err)
	}
	err := k.Run(context.Background(), &bytes.Buffer{}, &Stats{})
	if err == nil {
		t.Fatalf("Run started; log:\n%s", log.String())
	}
	return err, log.String()
}

// What stops the input at start: each cause in one error naming the
// options at fault and the value (never the password), with the brokers'
// words.
func TestBrokerFailFastAtStart(t *testing.T) {
	kafkatest.Brokers(t)
	user, password := kafkatest.SASLCredentials(t)
	tests := []struct {
		name, config string
		want         []string
	}{
		{
			name:   "unreachable",
			config: "brokers = [\"127.0.0.1:1\"]\ntopics = [\"t\"]\n",
			want:   []string{"cannot connect to brokers [127.0.0.1:1]", "connection refused", "startup_error_behavior"},
		},
		{
			name: "wrong SASL password",
			config: fmt.Sprintf("brokers = [%q]\ntopics = [\"t\"]\nsasl_username = %q\nsasl_password = \"not-the-password\"\nsasl_mechanism = \"SCRAM-SHA-256\"\n",
				kafkatest.SASLBrokers(t)[0], user),
			want: []string{`refused SASL authentication with sasl_mechanism = "SCRAM-SHA-256", sasl_username = "` + user + `"`, "sasl_password", "Authentication failed"},
		},
		{
			name:   "TLS to a plaintext port",
			config: fmt.Sprintf("brokers = [%q]\ntopics = [\"t\"]\nenable_tls = true\ninsecure_skip_verify = true\n", kafkatest.Brokers(t)[0]),
			want:   []string{"TLS", "cannot connect to brokers"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err, log := runToError(t, tt.config)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error()+log, password) || strings.Contains(err.Error()+log, "not-the-password") {
				t.Errorf("a password reached the error or the log")
			}
		})
	}
}

// A topic that does not exist does not stop the input: one error line
// names it, the other topics are consumed, and it is consumed once it
// exists.
func TestBrokerMissingTopic(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.NewTopic(t, 1)
	later := topic + "-later"
	kafkatest.ProduceN(t, brokers, topic, 5, guideMessage)
	r := start(t, fmt.Sprintf("brokers = [%q]\ntopics = [%q, %q]\nconsumer_group = %q\ntopic_refresh_interval = \"500ms\"\n", brokers[0], topic, later, uniqueGroup(t)))
	r.out.waitFor(t, 5)
	waitForLog(t, r, fmt.Sprintf("E! [inputs.kafka_consumer] topics: %q does not exist on brokers %v", later, brokers))
	kafkatest.CreateTopic(t, later, 1)
	kafkatest.ProduceN(t, brokers, later, 5, func(i int) []byte { return guideMessage(100 + i) })
	r.out.waitFor(t, 10)
	waitForLog(t, r, fmt.Sprintf("topics: %q exists now", later))
	if n := strings.Count(r.log.String(), "does not exist"); n != 1 {
		t.Errorf("%d lines say the topic is missing, want 1:\n%s", n, r.log.String())
	}
	if strings.Contains(r.log.String(), "consume: ") {
		t.Errorf("the group failed meanwhile:\n%s", r.log.String())
	}
}
