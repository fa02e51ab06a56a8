package kafkatest

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// Tests that need the broker skip without `eval "$(scripts/kafka.sh env)"`.

const readTimeout = 30 * time.Second

func TestHelpersSkipWithoutEnvironment(t *testing.T) {
	for _, name := range []string{EnvBrokers, EnvSASLBrokers, EnvTLSBrokers, EnvSASLUser, EnvTLSCA} {
		t.Setenv(name, "")
	}
	helpers := map[string]func(t *testing.T){
		"Brokers":         func(t *testing.T) { Brokers(t) },
		"SASLBrokers":     func(t *testing.T) { SASLBrokers(t) },
		"TLSBrokers":      func(t *testing.T) { TLSBrokers(t) },
		"SASLCredentials": func(t *testing.T) { SASLCredentials(t) },
		"TLSFiles":        func(t *testing.T) { TLSFiles(t) },
		"NewTopic":        func(t *testing.T) { NewTopic(t, 1) },
	}
	for name, call := range helpers {
		var sub *testing.T
		t.Run(name, func(t *testing.T) {
			sub = t
			call(t)
			t.Error("did not skip")
		})
		if !sub.Skipped() {
			t.Errorf("%s did not skip without environment", name)
		}
	}
}

func TestBrokersSplitsList(t *testing.T) {
	t.Setenv(EnvBrokers, " 127.0.0.1:1, 127.0.0.1:2 ,,")
	if got := fmt.Sprint(Brokers(t)); got != "[127.0.0.1:1 127.0.0.1:2]" {
		t.Fatalf("Brokers = %s", got)
	}
}

func TestTopicName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-zA-Z0-9_-]{1,249}$`)
	for _, name := range []string{"TestX", "TestX/sub case #1", "Test.dots_and_ünïcode", strings.Repeat("long", 100)} {
		a, b := TopicName(name), TopicName(name)
		if !valid.MatchString(a) {
			t.Errorf("TopicName(%q) = %q: not a valid topic name", name, a)
		}
		if a == b {
			t.Errorf("TopicName(%q) gave %q twice", name, a)
		}
	}
	if got := TopicName("TestA/b"); !strings.HasPrefix(got, "TestA-b-") {
		t.Errorf("TopicName(TestA/b) = %q, want it to start with the test name", got)
	}
}

// readPartition consumes n messages of one partition from the start.
func readPartition(t *testing.T, brokers []string, cfg *sarama.Config, topic string, partition int32, n int) []*sarama.ConsumerMessage {
	t.Helper()
	consumer, err := sarama.NewConsumer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, partition, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	out := make([]*sarama.ConsumerMessage, 0, n)
	deadline := time.After(readTimeout)
	for len(out) < n {
		select {
		case m := <-pc.Messages():
			out = append(out, m)
		case err := <-pc.Errors():
			t.Fatalf("consuming %s/%d: %v", topic, partition, err)
		case <-deadline:
			t.Fatalf("read %d of %d messages from %s/%d", len(out), n, topic, partition)
		}
	}
	return out
}

func newestOffsets(t *testing.T, brokers []string, topic string) map[int32]int64 {
	t.Helper()
	client, err := sarama.NewClient(brokers, NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	partitions, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	for _, p := range partitions {
		if out[p], err = client.GetOffset(topic, p, sarama.OffsetNewest); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestProduceKeepsEveryField(t *testing.T) {
	brokers := Brokers(t)
	topic := NewTopic(t, 3)
	stamp := time.Date(2024, 5, 6, 7, 8, 9, 123e6, time.UTC)
	Produce(t, brokers, topic,
		Message{Partition: 2, Key: []byte("k1"), Value: []byte(`{"a":1}`), Timestamp: stamp,
			Headers: []Header{{Key: "device", Value: "d1"}, {Key: "kind", Value: "ocean"}}},
		Message{Partition: 2, Value: []byte(`{"a":2}`)},
		Message{Partition: 0, Value: []byte(`{"a":3}`)},
		Message{Partition: -1, Key: []byte("any"), Value: []byte(`{"a":4}`)},
	)

	got := readPartition(t, brokers, NewConfig(), topic, 2, 2)
	first := got[0]
	if string(first.Key) != "k1" || string(first.Value) != `{"a":1}` || !first.Timestamp.Equal(stamp) {
		t.Errorf("first message key %q value %q time %v", first.Key, first.Value, first.Timestamp)
	}
	var headers []string
	for _, h := range first.Headers {
		headers = append(headers, string(h.Key)+"="+string(h.Value))
	}
	if fmt.Sprint(headers) != "[device=d1 kind=ocean]" {
		t.Errorf("headers %v", headers)
	}
	if second := got[1]; second.Key != nil || string(second.Value) != `{"a":2}` || time.Since(second.Timestamp) > time.Hour {
		t.Errorf("second message key %q value %q time %v: want no key and about now", second.Key, second.Value, second.Timestamp)
	}
	if got := readPartition(t, brokers, NewConfig(), topic, 0, 1); string(got[0].Value) != `{"a":3}` {
		t.Errorf("partition 0 holds %q", got[0].Value)
	}
	var total int64
	for _, off := range newestOffsets(t, brokers, topic) {
		total += off
	}
	if total != 4 {
		t.Errorf("%d messages in the topic, want 4", total)
	}
}

func TestProduceToMissingPartitionFails(t *testing.T) {
	brokers := Brokers(t)
	topic := NewTopic(t, 1)
	ft := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() { // Fatalf ends the goroutine it runs in, as in a real test.
		defer close(done)
		Produce(ft, brokers, topic, Message{Partition: 5, Value: []byte("x")})
	}()
	<-done
	if !strings.Contains(ft.fatal, "partition 5 does not exist") {
		t.Fatalf("got %q, want a failure naming the missing partition", ft.fatal)
	}
}

// fakeTB records a fatal failure instead of failing the real test.
type fakeTB struct {
	testing.TB
	fatal string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestProduceNSpreadsInOrder(t *testing.T) {
	brokers := Brokers(t)
	topic := NewTopic(t, 3)
	const n = 3000
	ProduceN(t, brokers, topic, n, func(i int) []byte { return strconv.AppendInt(nil, int64(i), 10) })

	for p, off := range newestOffsets(t, brokers, topic) {
		if off != n/3 {
			t.Errorf("partition %d holds %d messages, want %d", p, off, n/3)
		}
	}
	prev := -1
	for _, m := range readPartition(t, brokers, NewConfig(), topic, 1, n/3) {
		i, err := strconv.Atoi(string(m.Value))
		if err != nil || i <= prev {
			t.Fatalf("partition 1: %q after %d, want increasing numbers", m.Value, prev)
		}
		prev = i
	}
}

func TestCommittedOffsets(t *testing.T) {
	brokers := Brokers(t)
	topic := NewTopic(t, 2)
	group := TopicName("group-" + t.Name())
	ProduceN(t, brokers, topic, 10, func(i int) []byte { return []byte{byte('0' + i)} })

	if got := CommittedOffsets(t, brokers, group, topic); len(got) != 0 {
		t.Fatalf("offsets of a group that never committed: %v", got)
	}

	client, err := sarama.NewClient(brokers, NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	om, err := sarama.NewOffsetManagerFromClient(group, client)
	if err != nil {
		t.Fatal(err)
	}
	pom, err := om.ManagePartition(topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	pom.MarkOffset(4, "")
	om.Commit()
	if err := pom.Close(); err != nil {
		t.Fatal(err)
	}
	if err := om.Close(); err != nil {
		t.Fatal(err)
	}

	if got := CommittedOffsets(t, brokers, group, topic); fmt.Sprint(got) != "map[0:4]" {
		t.Fatalf("committed offsets %v, want map[0:4]", got)
	}
}

func TestNewTopicIsDeletedAfterTheTest(t *testing.T) {
	brokers := Brokers(t)
	var topic string
	t.Run("uses a topic", func(t *testing.T) {
		topic = NewTopic(t, 1)
		if !strings.HasPrefix(topic, "TestNewTopicIsDeletedAfterTheTest-uses_a_topic-") {
			t.Errorf("topic %q not named after the test", topic)
		}
	})
	admin := newAdmin(t, brokers)
	defer admin.Close()
	deadline := time.Now().Add(settleTimeout)
	for {
		topics, err := admin.ListTopics()
		if err != nil {
			t.Fatal(err)
		}
		if _, exists := topics[topic]; !exists {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %q still exists after the test ended", topic)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestCreateTopicRefusesExisting(t *testing.T) {
	Brokers(t)
	topic := NewTopic(t, 1)
	ft := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		CreateTopic(ft, topic, 1)
	}()
	<-done
	if !strings.Contains(ft.fatal, "already exists") {
		t.Fatalf("got %q, want a failure saying the topic exists", ft.fatal)
	}
}

// roundTrip produces one message with cfg and reads it back with cfg.
func roundTrip(t *testing.T, brokers []string, cfg *sarama.Config, topic string) {
	t.Helper()
	value := []byte("via " + t.Name())
	cfg.Producer.Return.Successes = true
	producer, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatalf("connecting to %v: %v", brokers, err)
	}
	partition, offset, err := producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(value)})
	producer.Close()
	if err != nil {
		t.Fatal(err)
	}
	msgs := readPartition(t, brokers, cfg, topic, partition, int(offset)+1)
	if got := msgs[offset].Value; !bytes.Equal(got, value) {
		t.Fatalf("read %q, want %q", got, value)
	}
}

// refused asserts that cfg cannot even fetch metadata from brokers.
func refused(t *testing.T, brokers []string, cfg *sarama.Config, why string) {
	t.Helper()
	cfg.Metadata.Retry.Max = 0
	client, err := sarama.NewClient(brokers, cfg)
	if err == nil {
		client.Close()
		t.Fatalf("connected although %s", why)
	}
}

func TestSASL(t *testing.T) {
	brokers := SASLBrokers(t)
	user, password := SASLCredentials(t)
	topic := NewTopic(t, 1)
	for _, mech := range []string{sarama.SASLTypePlaintext, sarama.SASLTypeSCRAMSHA256, sarama.SASLTypeSCRAMSHA512} {
		t.Run(mech, func(t *testing.T) {
			roundTrip(t, brokers, SASLConfig(mech, user, password), topic)
			refused(t, brokers, SASLConfig(mech, user, password+"-wrong"), "the password is wrong")
		})
	}
	t.Run("no SASL", func(t *testing.T) {
		cfg := NewConfig()
		cfg.Net.DialTimeout = 2 * time.Second
		cfg.Net.ReadTimeout = 2 * time.Second
		refused(t, brokers, cfg, "the client did not authenticate")
	})
}

func TestTLS(t *testing.T) {
	brokers := TLSBrokers(t)
	topic := NewTopic(t, 1)
	cfg := NewConfig()
	cfg.Net.TLS.Enable = true
	cfg.Net.TLS.Config = TLSConfig(t)
	roundTrip(t, brokers, cfg, topic)

	t.Run("server name", func(t *testing.T) {
		// The certificate is for 127.0.0.1 and localhost alike.
		cfg := NewConfig()
		cfg.Net.TLS.Enable = true
		cfg.Net.TLS.Config = TLSConfig(t)
		cfg.Net.TLS.Config.ServerName = "localhost"
		roundTrip(t, brokers, cfg, topic)
	})
	t.Run("untrusted CA", func(t *testing.T) {
		cfg := NewConfig()
		cfg.Net.TLS.Enable = true
		cfg.Net.TLS.Config = &tls.Config{MinVersion: tls.VersionTLS12}
		refused(t, brokers, cfg, "the broker's CA is not trusted")
	})
}
