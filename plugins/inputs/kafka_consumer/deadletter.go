package kafka_consumer //nolint:revive,stylecheck // named after the Telegraf plugin it replaces

import (
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/execd"
)

// Headers a dead letter carries besides the message's own, in the manner
// of Kafka Connect's errors.deadletterqueue.context.headers.
const (
	headerReason    = "kafka_json.error.reason"
	headerTopic     = "kafka_json.error.topic"
	headerPartition = "kafka_json.error.partition"
	headerOffset    = "kafka_json.error.offset"
)

// deadLetters writes the messages that could not be converted, unchanged,
// to dead_letter_topic. A claim collects its chunk's bad messages and
// sends them in one call before the chunk is written, so the chunk's
// offsets (committed once it is written, or acknowledged) never pass a
// message that is neither in CnosDB nor in the dead-letter topic.
type deadLetters struct {
	topic    string
	client   sarama.Client
	producer sarama.SyncProducer
	log      *execd.Logger
	stats    *Stats
	failLog  execd.RateLimit

	// usable is false while the topic cannot be written: dead letters
	// are then skipped at once. A missing topic costs sarama seconds of
	// metadata retries per message, which no partition should wait
	// for: the watch finds out in the background, at start and every
	// deadLetterRecheck after a failure.
	usable  atomic.Bool
	recheck chan struct{}
	stopped chan struct{}
}

// deadLetterRecheck is how long dead letters are skipped after the topic
// could not be written, before it is looked up again.
const deadLetterRecheck = 30 * time.Second

// newDeadLetters starts the producer on the consumer's client; nil when
// dead_letter_topic is not set.
func (k *KafkaConsumer) newDeadLetters(client sarama.Client, stats *Stats) (*deadLetters, error) {
	if k.DeadLetterTopic == "" {
		return nil, nil
	}
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		return nil, fmt.Errorf("dead_letter_topic %q: starting the producer: %w", k.DeadLetterTopic, err)
	}
	d := &deadLetters{
		topic:    k.DeadLetterTopic,
		client:   client,
		producer: producer,
		log:      k.Log,
		stats:    stats,
		failLog:  execd.RateLimit{Interval: 10 * time.Second, Burst: 3},
		recheck:  make(chan struct{}, 1),
		stopped:  make(chan struct{}),
	}
	if _, err := client.Partitions(k.DeadLetterTopic); err != nil {
		k.Log.Errorf("dead_letter_topic %q cannot be written (%v): bad messages are skipped and counted as if the option were off, until it can (looked up every %s)", k.DeadLetterTopic, err, deadLetterRecheck)
		d.recheck <- struct{}{}
	} else {
		d.usable.Store(true)
	}
	go d.watch()
	return d, nil
}

// watch looks the topic up when a write failed, at most once per
// deadLetterRecheck, until it can be written again.
func (d *deadLetters) watch() {
	for {
		select {
		case <-d.stopped:
			return
		case <-d.recheck:
		}
		for {
			select {
			case <-d.stopped:
				return
			case <-time.After(deadLetterRecheck):
			}
			if err := d.client.RefreshMetadata(d.topic); err == nil {
				if _, err := d.client.Partitions(d.topic); err == nil {
					d.log.Infof("dead_letter_topic %q can be written again", d.topic)
					d.usable.Store(true)
					break
				}
			}
		}
	}
}

// enabled reports whether bad messages go to the topic now; false for a
// nil d (no dead_letter_topic).
func (d *deadLetters) enabled() bool {
	return d != nil && d.usable.Load()
}

// letter makes the dead letter of msg: its key, value, timestamp and
// headers, and four headers saying where it came from and why.
func (d *deadLetters) letter(msg *sarama.ConsumerMessage, reason error) *sarama.ProducerMessage {
	headers := make([]sarama.RecordHeader, 0, len(msg.Headers)+4)
	for _, h := range msg.Headers {
		if h != nil {
			headers = append(headers, *h)
		}
	}
	headers = append(headers,
		sarama.RecordHeader{Key: []byte(headerReason), Value: []byte(reason.Error())},
		sarama.RecordHeader{Key: []byte(headerTopic), Value: []byte(msg.Topic)},
		sarama.RecordHeader{Key: []byte(headerPartition), Value: strconv.AppendInt(nil, int64(msg.Partition), 10)},
		sarama.RecordHeader{Key: []byte(headerOffset), Value: strconv.AppendInt(nil, msg.Offset, 10)},
	)
	pm := &sarama.ProducerMessage{
		Topic:     d.topic,
		Value:     sarama.ByteEncoder(msg.Value),
		Headers:   headers,
		Timestamp: msg.Timestamp,
	}
	if msg.Key != nil {
		pm.Key = sarama.ByteEncoder(msg.Key)
	}
	return pm
}

// send writes a chunk's dead letters and waits for Kafka to have them.
// What Kafka did not take is said (rate-limited) and counted, and then
// skipped, as without the option: a dead-letter topic that is gone or
// full must not stop consumption.
func (d *deadLetters) send(letters []*sarama.ProducerMessage) {
	if len(letters) == 0 {
		return
	}
	if !d.usable.Load() {
		d.stats.DeadLetterFailures.Add(int64(len(letters)))
		return
	}
	err := d.producer.SendMessages(letters)
	failed := 0
	if err != nil {
		var perrs sarama.ProducerErrors
		if errors.As(err, &perrs) {
			failed = len(perrs)
			if failed > 0 {
				err = perrs[0].Err
			}
		} else {
			failed = len(letters)
		}
	}
	d.stats.DeadLettered.Add(int64(len(letters) - failed))
	if failed == 0 {
		return
	}
	d.stats.DeadLetterFailures.Add(int64(failed))
	if d.usable.CompareAndSwap(true, false) {
		d.recheck <- struct{}{}
	}
	if ok, suppressed := d.failLog.Allow(time.Now()); ok {
		more := ""
		if suppressed > 0 {
			more = fmt.Sprintf(" (%d similar errors not logged)", suppressed)
		}
		d.log.Errorf("dead_letter_topic %q: %d of %d bad messages could not be written (%v): skipped and counted, as without the option, and so are the next ones until it can be written (looked up in %s)%s",
			d.topic, failed, len(letters), err, deadLetterRecheck, more)
	}
}

func (d *deadLetters) close() {
	close(d.stopped)
	if err := d.producer.Close(); err != nil {
		d.log.Debugf("dead_letter_topic: closing the producer: %v", err)
	}
}
