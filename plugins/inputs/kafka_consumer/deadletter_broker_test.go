package kafka_consumer //nolint:revive,stylecheck // named after the Telegraf plugin it replaces

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/internal/kafkatest"
)

// badMessage is every third message of the flood: broken in one of three
// ways, with a header of its own that the dead letter must keep.
func floodMessage(i int) kafkatest.Message {
	m := kafkatest.Message{Partition: int32(i % 2), Key: []byte(strconv.Itoa(i)), Headers: []kafkatest.Header{{Key: "origin", Value: "sensor-" + strconv.Itoa(i)}}}
	switch {
	case i%3 != 0:
		m.Value = guideMessage(i)
	case i%9 == 0:
		m.Value = []byte(fmt.Sprintf(`{"visibility":%d,`, i)) // cut off
	case i%9 == 3:
		m.Value = []byte(fmt.Sprintf(`[%d]`, i)) // not an object
	default:
		m.Value = []byte(fmt.Sprintf(`{"visibility":%d,"pad":"%s"}`, i, strings.Repeat("x", 200))) // over max_message_len
	}
	return m
}

// A flood of malformed messages lands in dead_letter_topic, unchanged and
// with headers saying why and where from; every good message is written,
// and every offset committed.
func TestBrokerDeadLetterTopic(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.NewTopic(t, 2)
	dlq := kafkatest.CreateTopic(t, topic+"-dlq", 1)
	group := uniqueGroup(t)
	const n = 3000
	msgs := make([]kafkatest.Message, n)
	bad := map[string]kafkatest.Message{}
	for i := range msgs {
		msgs[i] = floodMessage(i)
		if i%3 == 0 {
			bad[string(msgs[i].Key)] = msgs[i]
		}
	}
	kafkatest.Produce(t, brokers, topic, msgs...)

	r := start(t, brokerConfig(brokers, topic, group)+fmt.Sprintf("max_message_len = 150\ndead_letter_topic = %q\n", dlq))
	seen := r.out.waitDistinct(t, n-len(bad))
	for vis := range seen {
		i, _ := strconv.Atoi(vis)
		if i%3 == 0 {
			t.Fatalf("bad message %d was written", i)
		}
	}
	waitForCount(t, "dead letters", func() int64 { return r.stats.DeadLettered.Load() }, int64(len(bad)))
	r.stop(t)

	letters := kafkatest.ReadAll(t, brokers, dlq)
	if len(letters) != len(bad) {
		t.Fatalf("%d dead letters, want %d", len(letters), len(bad))
	}
	for _, l := range letters {
		orig, ok := bad[string(l.Key)]
		if !ok {
			t.Fatalf("dead letter with key %q was not a bad message", l.Key)
		}
		i, _ := strconv.Atoi(string(l.Key))
		headers := map[string]string{}
		for _, h := range l.Headers {
			headers[string(h.Key)] = string(h.Value)
		}
		if string(l.Value) != string(orig.Value) || headers["origin"] != "sensor-"+string(l.Key) {
			t.Fatalf("dead letter %d changed: %q, headers %v", i, l.Value, headers)
		}
		if headers[headerTopic] != topic || headers[headerPartition] != strconv.Itoa(i%2) {
			t.Fatalf("dead letter %d: headers %v", i, headers)
		}
		// Partition i%2 holds messages i%2, i%2+2, ...: offset i/2.
		if headers[headerOffset] != strconv.Itoa(i/2) {
			t.Fatalf("dead letter %d: offset header %q, want %d", i, headers[headerOffset], i/2)
		}
		if headers[headerReason] == "" {
			t.Fatalf("dead letter %d has no reason", i)
		}
		if i%9 != 0 && i%9 != 3 && !strings.Contains(headers[headerReason], "max_message_len") {
			t.Fatalf("dead letter %d: reason %q", i, headers[headerReason])
		}
	}
	if got := kafkatest.CommittedOffsets(t, brokers, group, topic); got[0]+got[1] != n {
		t.Fatalf("committed %v, want %d in all", got, n)
	}
	if f := r.stats.DeadLetterFailures.Load(); f != 0 || strings.Contains(r.log.String(), "dead_letter_topic "+strconv.Quote(dlq)+" cannot") {
		t.Fatalf("%d dead-letter failures\n%s", f, r.log.String())
	}
}

// A dead-letter topic that does not exist (the test broker creates none
// on first write): the input says so, skips and counts the bad messages
// as without the option, and goes on.
func TestBrokerDeadLetterTopicMissing(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.NewTopic(t, 1)
	const n = 60
	msgs := make([]kafkatest.Message, n)
	for i := range msgs {
		msgs[i] = floodMessage(i)
		msgs[i].Partition = 0
	}
	kafkatest.Produce(t, brokers, topic, msgs...)
	r := start(t, brokerConfig(brokers, topic, uniqueGroup(t))+"max_message_len = 150\ndead_letter_topic = \"no-such-dlq\"\n")
	r.out.waitDistinct(t, n-n/3)
	waitForCount(t, "dead-letter failures", func() int64 { return r.stats.DeadLetterFailures.Load() }, n/3)
	if !strings.Contains(r.log.String(), `E! [inputs.kafka_consumer] dead_letter_topic "no-such-dlq" cannot be written (no-such-dlq: kafka server: Request was for a topic or partition that does not exist on this broker)`) ||
		strings.Contains(r.log.String(), "(to dead_letter_topic") {
		t.Errorf("no warning at start:\n%s", r.log.String())
	}
	if r.stats.BadMessages.Load() != n/3 {
		t.Errorf("%d bad messages, want %d", r.stats.BadMessages.Load(), n/3)
	}
}

func waitForCount(t *testing.T, what string, get func() int64, want int64) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for get() < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d, want %d", what, get(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
