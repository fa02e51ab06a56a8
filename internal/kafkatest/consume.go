package kafkatest

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// ReadAll returns every message a topic holds now, partition by
// partition, in offset order; it joins no group and commits nothing.
func ReadAll(t testing.TB, brokers []string, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	client, err := sarama.NewClient(brokers, NewConfig())
	if err != nil {
		t.Fatalf("kafkatest: client: %v", err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatalf("kafkatest: consumer: %v", err)
	}
	defer consumer.Close()
	partitions, err := client.Partitions(topic)
	if err != nil {
		t.Fatalf("kafkatest: partitions of %s: %v", topic, err)
	}
	var all []*sarama.ConsumerMessage
	for _, p := range partitions {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatalf("kafkatest: high watermark of %s/%d: %v", topic, p, err)
		}
		start, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("kafkatest: log start of %s/%d: %v", topic, p, err)
		}
		if start >= end {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, start)
		if err != nil {
			t.Fatalf("kafkatest: consuming %s/%d: %v", topic, p, err)
		}
		timeout := time.After(30 * time.Second)
		for next := start; next < end; {
			select {
			case msg := <-pc.Messages():
				all = append(all, msg)
				next = msg.Offset + 1
			case <-timeout:
				pc.Close()
				t.Fatalf("kafkatest: %s/%d: read up to %d of %d in 30 s", topic, p, next, end)
			}
		}
		pc.Close()
	}
	return all
}
