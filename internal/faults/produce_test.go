package faults

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/kafka-cnosdb/telegraf-execd/internal/kafkatest"
)

// maxMessageBytes lets the producer send the flood's 10 MB messages; the
// topic must allow them too (see newLargeTopic).
const maxMessageBytes = 16 << 20

// produce writes value(n) for n in [from, to) to topic, rate messages per
// second (0: as fast as the broker takes them), spread round-robin over the
// partitions, and returns once every message is acknowledged. It fails the
// test (from any goroutine) when a message cannot be stored.
func produce(t testing.TB, brokers []string, topic string, from, to, rate int, value func(n int) []byte) {
	cfg := kafkatest.NewConfig()
	cfg.ClientID = "faults-producer"
	cfg.Producer.MaxMessageBytes = maxMessageBytes
	cfg.Producer.Retry.Max = 10
	cfg.Producer.Retry.Backoff = 200 * time.Millisecond
	kafkatest.ProduceRange(t, brokers, topic, from, to, rate, value, cfg)
}

// newLargeTopic creates a topic on brokers that takes messages up to
// maxMessageBytes, and deletes it when the test ends.
func newLargeTopic(t *testing.T, brokers []string, partitions int) string {
	t.Helper()
	limit := fmt.Sprint(maxMessageBytes + 1024)
	return createTopicOn(t, brokers, kafkatest.TopicName(t.Name()), partitions, map[string]*string{"max.message.bytes": &limit})
}

// createTopicOn is kafkatest.CreateTopic for any broker, with topic configs.
func createTopicOn(t *testing.T, brokers []string, name string, partitions int, configs map[string]*string) string {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(brokers, kafkatest.NewConfig())
	if err != nil {
		t.Fatalf("connecting to %v: %v", brokers, err)
	}
	defer admin.Close()
	detail := &sarama.TopicDetail{NumPartitions: int32(partitions), ReplicationFactor: 1, ConfigEntries: configs}
	if err := admin.CreateTopic(name, detail, false); err != nil {
		t.Fatalf("creating topic %q: %v", name, err)
	}
	t.Cleanup(func() {
		admin, err := sarama.NewClusterAdmin(brokers, kafkatest.NewConfig())
		if err != nil {
			t.Logf("deleting topic %q: %v", name, err)
			return
		}
		defer admin.Close()
		if err := admin.DeleteTopic(name); err != nil && !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			t.Logf("deleting topic %q: %v", name, err)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		metas, err := admin.DescribeTopics([]string{name})
		if err == nil && len(metas) == 1 && errors.Is(metas[0].Err, sarama.ErrNoError) && len(metas[0].Partitions) == partitions {
			ready := true
			for _, p := range metas[0].Partitions {
				ready = ready && errors.Is(p.Err, sarama.ErrNoError) && p.Leader >= 0
			}
			if ready {
				return name
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %q has no leaders after 30 s (last error %v)", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
