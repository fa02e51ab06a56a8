package kafkatest

import (
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// Header is one Kafka record header.
type Header struct {
	Key, Value string
}

// Message is one record to produce.
type Message struct {
	// Partition is the partition to write to; -1 lets the producer choose
	// (by Key when set, else at random). Note that 0 means partition 0.
	Partition int32
	Key       []byte // nil: no key
	Value     []byte
	Headers   []Header
	// Timestamp is the record's time; zero means now.
	Timestamp time.Time
}

// explicitOrHash writes to the partition a message names and hashes the
// others, so one producer serves both kinds of Message.
type explicitOrHash struct{ hash sarama.Partitioner }

func (p explicitOrHash) Partition(msg *sarama.ProducerMessage, numPartitions int32) (int32, error) {
	if msg.Partition >= 0 {
		if msg.Partition >= numPartitions {
			return -1, fmt.Errorf("partition %d does not exist: the topic has %d", msg.Partition, numPartitions)
		}
		return msg.Partition, nil
	}
	return p.hash.Partition(msg, numPartitions)
}

func (explicitOrHash) RequiresConsistency() bool { return true }

func toProducerMessage(topic string, m Message) *sarama.ProducerMessage {
	pm := &sarama.ProducerMessage{
		Topic:     topic,
		Partition: m.Partition,
		Value:     sarama.ByteEncoder(m.Value),
		Timestamp: m.Timestamp,
	}
	if m.Key != nil {
		pm.Key = sarama.ByteEncoder(m.Key)
	}
	if len(m.Headers) > 0 {
		pm.Headers = make([]sarama.RecordHeader, len(m.Headers))
		for i, h := range m.Headers {
			pm.Headers[i] = sarama.RecordHeader{Key: []byte(h.Key), Value: []byte(h.Value)}
		}
	}
	return pm
}

// Produce writes msgs to topic in order with a synchronous producer: when it
// returns, every message is stored (acks=all).
func Produce(t testing.TB, brokers []string, topic string, msgs ...Message) {
	t.Helper()
	cfg := NewConfig()
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = func(topic string) sarama.Partitioner {
		return explicitOrHash{hash: sarama.NewHashPartitioner(topic)}
	}
	producer, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatalf("kafkatest: producer for %v: %v", brokers, err)
	}
	defer producer.Close()
	for i, m := range msgs {
		if _, _, err := producer.SendMessage(toProducerMessage(topic, m)); err != nil {
			t.Fatalf("kafkatest: producing message %d to %q: %v", i, topic, err)
		}
	}
}

// ProduceN writes n messages with values value(0) .. value(n-1), spread
// round-robin over the partitions, through an asynchronous batching producer.
// Within a partition the order is that of i. It returns when all are stored.
func ProduceN(t testing.TB, brokers []string, topic string, n int, value func(i int) []byte) {
	t.Helper()
	if !ProduceRange(t, brokers, topic, 0, n, 0, value, nil) {
		t.FailNow()
	}
}

// ProduceRange writes value(i) for i in [from, to) like ProduceN, at most
// rate messages per second (0: as fast as the broker takes them), with cfg
// (nil: NewConfig) for what a test needs beyond the defaults, such as a
// larger Producer.MaxMessageBytes. It reports a failure with t.Errorf and
// returns false, so it may run in a goroutine of its own.
func ProduceRange(t testing.TB, brokers []string, topic string, from, to, rate int, value func(i int) []byte, cfg *sarama.Config) bool {
	if cfg == nil {
		cfg = NewConfig()
	}
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = sarama.NewRoundRobinPartitioner
	cfg.Producer.Flush.Messages = 1000
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	// One request in flight per broker: a retried batch cannot overtake the next.
	cfg.Net.MaxOpenRequests = 1
	producer, err := sarama.NewAsyncProducer(brokers, cfg)
	if err != nil {
		t.Errorf("kafkatest: producer for %v: %v", brokers, err)
		return false
	}
	go func() {
		start := time.Now()
		for i := from; i < to; i++ {
			if rate > 0 {
				// Pace against the start, not per message, so sleeping
				// late never lowers the rate.
				due := start.Add(time.Duration(i-from) * time.Second / time.Duration(rate))
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
			}
			producer.Input() <- &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(value(i))}
		}
	}()
	var firstErr error
	failed := 0
	for done := from; done < to; done++ {
		select {
		case <-producer.Successes():
		case perr := <-producer.Errors():
			failed++
			if firstErr == nil {
				firstErr = perr.Err
			}
		}
	}
	if err := producer.Close(); err != nil && firstErr == nil {
		firstErr = err
	}
	if firstErr != nil {
		t.Errorf("kafkatest: %d of %d messages to %q failed, first: %v", failed, to-from, topic, firstErr)
		return false
	}
	return true
}
