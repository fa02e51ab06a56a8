// Command oceanic-producer sends the guide's sensor messages to Kafka, like
// scripts/producer.py but fast enough for large runs:
//
//	{"pressure": 4.2, "temperature": 52.2, "visibility": 44.6}
//
// pressure is 0-10, temperature and visibility 0-100, each with one decimal,
// formatted as Python's json.dumps formats them. With -interval > 0 it sends
// one message per interval and prints each, as the guide's producer does;
// with -interval 0 it sends at full speed, prints progress every second and
// its rate at the end.
//
//	oceanic-producer [-brokers 127.0.0.1:9092] [-topic oceanic] [-count 2000] [-interval 5s] [-quiet]
//	oceanic-producer -backlog GROUP [-brokers ...] [-topic oceanic]
//
// -backlog sends nothing: it prints how many messages of the topic the
// consumer group has yet to consume, so that scripts/demo.sh knows how many
// rows to wait for when an earlier run left some behind.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/IBM/sarama"
)

const binary = "oceanic-producer"

// window is how many messages may be in flight at full speed; they are
// recycled once acknowledged, so a run allocates no more than these.
const window = 8192

type options struct {
	brokers  []string
	topic    string
	count    int
	interval time.Duration
	quiet    bool
	seed     uint64
	backlog  string // consumer group whose backlog to print instead of producing
}

func main() {
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", binary, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, opts, os.Stdout))
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var opts options
	fs := flag.NewFlagSet(binary, flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", "127.0.0.1:9092", "Kafka brokers, comma-separated host:port")
	fs.StringVar(&opts.topic, "topic", "oceanic", "topic to write to")
	fs.IntVar(&opts.count, "count", 2000, "messages to send (the guide: 2000)")
	interval := fs.String("interval", "5s", "pause between messages, e.g. 5s, 200ms, 0.2 (seconds); 0 = full speed")
	fs.BoolVar(&opts.quiet, "quiet", false, "print only the summary")
	fs.Uint64Var(&opts.seed, "seed", 0, "random seed for reproducible values; 0 = random")
	fs.StringVar(&opts.backlog, "backlog", "", "print the number of messages this consumer group has not consumed yet, and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s [flags]\nSends the guide's sensor messages to Kafka.\n\n", binary)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return opts, err
	}
	if fs.NArg() > 0 {
		return opts, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, b := range strings.Split(*brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			opts.brokers = append(opts.brokers, b)
		}
	}
	if len(opts.brokers) == 0 {
		return opts, errors.New("-brokers is empty")
	}
	if opts.topic == "" {
		return opts, errors.New("-topic is empty")
	}
	if opts.count < 0 {
		return opts, errors.New("-count must be >= 0")
	}
	d, err := parseInterval(*interval)
	if err != nil {
		return opts, err
	}
	opts.interval = d
	return opts, nil
}

// parseInterval takes Go durations and, as scripts/producer.py does, bare
// numbers of seconds.
func parseInterval(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return 0, fmt.Errorf("-interval %q is negative", s)
		}
		return d, nil
	}
	secs, err := strconv.ParseFloat(s, 64)
	if err != nil || secs < 0 || secs > 1e6 {
		return 0, fmt.Errorf("-interval %q: want a duration such as 5s, 200ms or 0.2", s)
	}
	return time.Duration(secs * float64(time.Second)), nil
}

// sensorValue is a message body that implements sarama.Encoder itself, so a
// recycled message needs no new allocation for its value.
type sensorValue struct{ buf []byte }

func (v *sensorValue) Encode() ([]byte, error) { return v.buf, nil }
func (v *sensorValue) Length() int             { return len(v.buf) }

// sensor draws readings the way the guide's random_* functions do, in
// tenths so that the one decimal is exact.
type sensor struct{ rng *rand.Rand }

func newSensor(seed uint64) sensor {
	if seed == 0 {
		seed = rand.Uint64()
	}
	return sensor{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// appendJSON writes one message as Python's json.dumps writes the guide's dict.
func (s sensor) appendJSON(b []byte) []byte {
	b = append(b, `{"pressure": `...)
	b = appendTenths(b, s.rng.IntN(101))
	b = append(b, `, "temperature": `...)
	b = appendTenths(b, s.rng.IntN(1001))
	b = append(b, `, "visibility": `...)
	b = appendTenths(b, s.rng.IntN(1001))
	return append(b, '}')
}

func appendTenths(b []byte, tenths int) []byte {
	b = strconv.AppendInt(b, int64(tenths/10), 10)
	return append(b, '.', byte('0'+tenths%10))
}

func newConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	// Kafka 4.x refuses the protocol versions before 2.1; 2.1 also works
	// with the guide's Kafka 2.5.1.
	cfg.Version = sarama.V2_1_0_0
	cfg.ClientID = binary
	// acks=1, the default of kafka-python and so of the guide's producer.
	cfg.Producer.RequiredAcks = sarama.WaitForLocal
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.Partitioner = sarama.NewRoundRobinPartitioner
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	cfg.Producer.Flush.Bytes = 256 << 10
	cfg.ChannelBufferSize = 1024
	return cfg
}

func run(ctx context.Context, opts options, out io.Writer) int {
	if opts.backlog != "" {
		n, err := backlog(opts)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: backlog of group %q: %v\n", binary, opts.backlog, err)
			return 1
		}
		fmt.Fprintln(out, n)
		return 0
	}
	producer, err := sarama.NewAsyncProducer(opts.brokers, newConfig())
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: connecting to %s: %v\n", binary, strings.Join(opts.brokers, ","), err)
		return 1
	}
	var sent int
	var firstErr error
	started := time.Now()
	if opts.interval > 0 {
		sent, firstErr = paced(ctx, producer, opts, out)
	} else {
		sent, firstErr = fullSpeed(ctx, producer, opts, out)
	}
	if err := producer.Close(); err != nil && firstErr == nil {
		firstErr = err
	}
	elapsed := time.Since(started)
	fmt.Fprintf(out, "sent %d messages to %s in %.1fs (%.0f msg/s)\n",
		sent, opts.topic, elapsed.Seconds(), float64(sent)/max(elapsed.Seconds(), 1e-9))
	switch {
	case firstErr != nil:
		fmt.Fprintf(os.Stderr, "%s: %d of %d messages not sent, first error: %v\n", binary, opts.count-sent, opts.count, firstErr)
		return 1
	case sent < opts.count:
		fmt.Fprintf(os.Stderr, "%s: interrupted after %d of %d messages\n", binary, sent, opts.count)
		return 130
	}
	return 0
}

// paced sends one message per interval and waits for each acknowledgement,
// as the guide's producer does (one every 5 s).
func paced(ctx context.Context, producer sarama.AsyncProducer, opts options, out io.Writer) (int, error) {
	src := newSensor(opts.seed)
	ticker := time.NewTicker(opts.interval)
	defer ticker.Stop()
	for i := 0; i < opts.count; i++ {
		if ctx.Err() != nil {
			return i, nil
		}
		body := src.appendJSON(make([]byte, 0, 64))
		producer.Input() <- &sarama.ProducerMessage{Topic: opts.topic, Value: &sensorValue{buf: body}}
		select {
		case <-producer.Successes():
		case perr := <-producer.Errors():
			return i, perr.Err
		}
		if !opts.quiet {
			fmt.Fprintf(out, "Sensor data is sent: %s\n", body)
		}
		if i+1 == opts.count {
			break
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return i + 1, nil
		}
	}
	return opts.count, nil
}

// fullSpeed keeps up to window messages in flight and recycles each one when
// the broker has acknowledged it.
func fullSpeed(ctx context.Context, producer sarama.AsyncProducer, opts options, out io.Writer) (int, error) {
	free := make(chan *sarama.ProducerMessage, window)
	for range min(window, max(opts.count, 1)) {
		free <- &sarama.ProducerMessage{Value: &sensorValue{buf: make([]byte, 0, 64)}}
	}
	queued := make(chan int, 1) // how many the feeder handed over, once it stops
	go func() {
		src := newSensor(opts.seed)
		n := 0
		defer func() { queued <- n }()
		for ; n < opts.count; n++ {
			var msg *sarama.ProducerMessage
			select {
			case msg = <-free:
			case <-ctx.Done():
				return
			}
			value := msg.Value.(*sensorValue)
			value.buf = src.appendJSON(value.buf[:0])
			// Zeroing resets what the producer recorded on the message's last trip.
			*msg = sarama.ProducerMessage{Topic: opts.topic, Value: value}
			producer.Input() <- msg
		}
	}()

	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	started := time.Now()
	acked, failed, expected := 0, 0, opts.count
	var firstErr error
	for acked+failed < expected {
		select {
		case msg := <-producer.Successes():
			acked++
			free <- msg
		case perr := <-producer.Errors():
			failed++
			if firstErr == nil {
				firstErr = perr.Err
			}
			free <- perr.Msg
		case n := <-queued:
			expected = n // interrupted: wait only for what was handed over
		case <-ticker.C:
			if !opts.quiet {
				secs := time.Since(started).Seconds()
				fmt.Fprintf(out, "sent %d/%d (%.0f msg/s)\n", acked, opts.count, float64(acked)/secs)
			}
		}
	}
	return acked, firstErr
}

// backlog sums, over the topic's partitions, the messages after the group's
// committed offset; a partition without one counts from its oldest message,
// where a consumer with offset = "oldest" (the default) starts.
func backlog(opts options) (int64, error) {
	client, err := sarama.NewClient(opts.brokers, newConfig())
	if err != nil {
		return 0, err
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		client.Close()
		return 0, err
	}
	defer admin.Close() // closes the client too
	partitions, err := client.Partitions(opts.topic)
	if err != nil {
		return 0, err
	}
	committed, err := listOffsets(admin, opts.backlog, opts.topic, partitions)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, p := range partitions {
		newest, err := client.GetOffset(opts.topic, p, sarama.OffsetNewest)
		if err != nil {
			return 0, err
		}
		start := int64(-1)
		if block := committed.GetBlock(opts.topic, p); block != nil {
			start = block.Offset
		}
		if start < 0 {
			if start, err = client.GetOffset(opts.topic, p, sarama.OffsetOldest); err != nil {
				return 0, err
			}
		}
		total += max(newest-start, 0)
	}
	return total, nil
}

// listOffsets asks for a group's committed offsets, waiting while a broker
// that has just started is still loading them.
func listOffsets(admin sarama.ClusterAdmin, group, topic string, partitions []int32) (*sarama.OffsetFetchResponse, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: partitions})
		if !errors.Is(err, sarama.ErrOffsetsLoadInProgress) && !errors.Is(err, sarama.ErrConsumerCoordinatorNotAvailable) || time.Now().After(deadline) {
			return resp, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}
