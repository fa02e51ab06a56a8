package main

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// inFlight bounds the messages the producer holds; acknowledged ones are
// recycled, so preloading allocates no more than these.
const inFlight = 16384

func kafkaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	// Kafka 4 refuses protocol versions before 2.1; 2.1 also serves 2.5.1.
	cfg.Version = sarama.V2_1_0_0
	cfg.ClientID = binary
	cfg.Producer.RequiredAcks = sarama.WaitForLocal
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewRoundRobinPartitioner
	cfg.Producer.Flush.Frequency = 10 * time.Millisecond
	cfg.Producer.Flush.Bytes = 512 << 10
	// A new topic's partitions can be listed with a leader before that
	// broker acts as one (seen at 64 partitions): retry for a few seconds.
	cfg.Producer.Retry.Max = 20
	cfg.Producer.Retry.Backoff = 250 * time.Millisecond
	cfg.ChannelBufferSize = 4096
	return cfg
}

func splitBrokers(s string) []string {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

func preloadCmd(args []string) error {
	fs := flag.NewFlagSet("preload", flag.ContinueOnError)
	brokers := fs.String("brokers", "127.0.0.1:9092", "Kafka brokers, comma-separated")
	topic := fs.String("topic", "", "topic to create and fill (must not exist yet)")
	count := fs.Int("count", 300000, "messages to send")
	shapeName := fs.String("shape", "guide", "message shape: guide or nested")
	partitions := fs.Int("partitions", 1, "partitions of the new topic (the guide: 1)")
	seed := fs.Uint64("seed", 1, "random seed, for the same messages in every run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	make1, err := shapeByName(*shapeName)
	if err != nil {
		return err
	}
	if *topic == "" || *count <= 0 || *partitions <= 0 {
		return errors.New("-topic, a positive -count and -partitions are required")
	}
	client, err := sarama.NewClient(splitBrokers(*brokers), kafkaConfig())
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", *brokers, err)
	}
	defer client.Close()
	if err := createTopic(client, *topic, int32(*partitions)); err != nil {
		return err
	}
	producer, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		return err
	}
	started := time.Now()
	bytes, err := produce(producer, *topic, *count, make1, *seed)
	if cerr := producer.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	secs := time.Since(started).Seconds()
	fmt.Printf("preloaded %d %s messages (%.1f MB, %d B each on average) into %s in %.1fs (%.0f msg/s)\n",
		*count, *shapeName, float64(bytes)/1e6, bytes/int64(*count), *topic, secs, float64(*count)/secs)
	return nil
}

func createTopic(client sarama.Client, topic string, partitions int32) error {
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return err
	}
	// Not admin.Close: it would close the shared client too.
	err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false)
	if err != nil {
		return fmt.Errorf("creating topic %s: %w", topic, err)
	}
	// The new partitions need a leader before the producer can use them.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := client.RefreshMetadata(topic); err == nil {
			if ps, err := client.WritablePartitions(topic); err == nil && len(ps) == int(partitions) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s has no leaders after 30s", topic)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// byteValue lets a recycled message keep its buffer.
type byteValue struct{ buf []byte }

func (v *byteValue) Encode() ([]byte, error) { return v.buf, nil }
func (v *byteValue) Length() int             { return len(v.buf) }

func produce(producer sarama.AsyncProducer, topic string, count int, make1 shape, seed uint64) (int64, error) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	free := make(chan *sarama.ProducerMessage, inFlight)
	for range min(inFlight, count) {
		free <- &sarama.ProducerMessage{Value: &byteValue{}}
	}
	fed := make(chan int64, 1) // bytes handed to the producer, once all are
	go func() {
		var total int64
		defer func() { fed <- total }()
		for range count {
			msg := <-free
			v := msg.Value.(*byteValue)
			v.buf = make1(v.buf[:0], rng)
			total += int64(len(v.buf))
			*msg = sarama.ProducerMessage{Topic: topic, Value: v}
			producer.Input() <- msg
		}
	}()
	progress := time.NewTicker(2 * time.Second)
	defer progress.Stop()
	for done := 0; done < count; {
		select {
		case msg := <-producer.Successes():
			done++
			free <- msg
		case perr := <-producer.Errors():
			return 0, fmt.Errorf("producing to %s: %w", topic, perr.Err)
		case <-progress.C:
			fmt.Printf("  sent %d/%d\n", done, count)
		}
	}
	return <-fed, nil
}

func deleteTopicCmd(args []string) error {
	fs := flag.NewFlagSet("delete-topic", flag.ContinueOnError)
	brokers := fs.String("brokers", "127.0.0.1:9092", "Kafka brokers, comma-separated")
	topic := fs.String("topic", "", "topic to delete")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *topic == "" {
		return errors.New("-topic is required")
	}
	admin, err := sarama.NewClusterAdmin(splitBrokers(*brokers), kafkaConfig())
	if err != nil {
		return err
	}
	defer admin.Close()
	if err := admin.DeleteTopic(*topic); err != nil && !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		return fmt.Errorf("deleting topic %s: %w", *topic, err)
	}
	return nil
}
