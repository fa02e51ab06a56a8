package kafka_consumer //nolint:revive,stylecheck // named after the Telegraf plugin it replaces

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/IBM/sarama"
)

// dryRunIdle is how long DryRun waits on a partition for a message before
// it takes the partition as read.
const dryRunIdle = 2 * time.Second

// DryRun is `telegraf-kafka-json -config F -test [-count N]`, what
// `telegraf --test` is to Telegraf: it joins no consumer group and commits
// nothing; it reads up to count messages of each partition of the topics
// (those of topics, and the ones topic_regexps match) and writes to stdout
// the line protocol Telegraf would receive for them, and to stderr each bad
// message with its topic, partition, offset and reason, and a summary per
// partition. With offset = "oldest" it reads a partition's first messages;
// with "newest" the last ones already there (the input itself would wait
// for new ones). It fails only when the brokers or a topic of topics cannot
// be reached.
func (k *KafkaConsumer) DryRun(ctx context.Context, stdout, stderr io.Writer, count int) error {
	client, err := sarama.NewClient(k.Brokers, k.saramaConfig)
	if err != nil {
		return errors.New(k.connectError(err))
	}
	defer client.Close()
	topics, all, err := k.wantedTopics(client)
	if err != nil {
		return fmt.Errorf("reading the topics of brokers %v: %w", k.Brokers, err)
	}
	for _, t := range k.Topics {
		if !slices.Contains(all, t) {
			return fmt.Errorf("topics: topic %q does not exist on brokers %v", t, k.Brokers)
		}
	}
	if len(topics) == 0 {
		return fmt.Errorf("topic_regexps: no topic on brokers %v matches %v", k.Brokers, k.TopicRegexps)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return err
	}
	defer consumer.Close()
	conv := newClaimConverter(k)
	for _, topic := range topics {
		partitions, err := client.Partitions(topic)
		if err != nil {
			return fmt.Errorf("topic %q: %w", topic, err)
		}
		for _, p := range partitions {
			if err := k.dryRunPartition(ctx, client, consumer, conv, topic, p, count, stdout, stderr); err != nil {
				return err
			}
		}
	}
	return nil
}

func (k *KafkaConsumer) dryRunPartition(ctx context.Context, client sarama.Client, consumer sarama.Consumer, conv *claimConverter,
	topic string, partition int32, count int, stdout, stderr io.Writer) error {
	oldest, err := client.GetOffset(topic, partition, sarama.OffsetOldest)
	if err != nil {
		return fmt.Errorf("topic %q partition %d: %w", topic, partition, err)
	}
	end, err := client.GetOffset(topic, partition, sarama.OffsetNewest)
	if err != nil {
		return fmt.Errorf("topic %q partition %d: %w", topic, partition, err)
	}
	from := oldest
	if k.saramaConfig.Consumer.Offsets.Initial == sarama.OffsetNewest {
		from = max(end-int64(count), oldest)
	}
	if from >= end {
		fmt.Fprintf(stderr, "topic %q partition %d: no message to read (offsets %d to %d)\n", topic, partition, oldest, end)
		return nil
	}
	pc, err := consumer.ConsumePartition(topic, partition, from)
	if err != nil {
		return fmt.Errorf("topic %q partition %d: %w", topic, partition, err)
	}
	defer pc.Close()
	read, lines, bad := 0, 0, 0
	idle := time.NewTimer(dryRunIdle)
	defer idle.Stop()
	for read < count {
		select {
		case msg := <-pc.Messages():
			read++
			conv.reset()
			if err := conv.append(msg); err != nil {
				bad++
				fmt.Fprintf(stderr, "bad message at topic %q partition %d offset %d: %v\n", msg.Topic, msg.Partition, msg.Offset, err)
			} else {
				lines += conv.lines
				if _, err := stdout.Write(conv.buf); err != nil {
					return err
				}
			}
			if msg.Offset+1 >= end {
				count = read // the partition's end, as it was when the run began
			}
			idle.Reset(dryRunIdle)
		case err := <-pc.Errors():
			return fmt.Errorf("topic %q partition %d: %w", topic, partition, err)
		case <-idle.C:
			count = read
		case <-ctx.Done():
			return errors.New("stopped")
		}
	}
	fmt.Fprintf(stderr, "topic %q partition %d: read %d messages from offset %d: %d lines, %d bad messages\n", topic, partition, read, from, lines, bad)
	return nil
}
