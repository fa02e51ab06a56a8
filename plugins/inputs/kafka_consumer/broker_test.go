package kafka_consumer //nolint:revive,stylecheck // named after the Telegraf plugin it replaces

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
	"github.com/influxdata/telegraf"

	"github.com/kafka-cnosdb/telegraf-execd/internal/kafkatest"
	"github.com/kafka-cnosdb/telegraf-execd/internal/syncbuf"
	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/delivery"
	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/execd"
)

// These tests run against the real broker that scripts/kafka.sh starts;
// they skip when KAFKA_BROKERS is not set.

const waitLimit = 60 * time.Second

// lineSink is the stdout of a running plugin: it keeps every data line
// and plays the CnosDB output's part in the delivery loop, acknowledging
// each checkpoint as soon as it is read, unless told to hold them, to
// stay silent, or to lose lines.
type lineSink struct {
	mu      sync.Mutex
	lines   []string
	more    chan struct{}
	acks    *delivery.Acker
	tally   delivery.Tally
	read    uint64 // data lines, for the tally
	silent  bool   // never acknowledge, as an output that is not ours
	hold    bool   // keep checkpoints in held instead of acknowledging
	held    []delivery.Marker
	drop    int // lose this many data lines, as Telegraf's buffer would
	markers int // checkpoints seen
}

func newLineSink(t *testing.T) *lineSink {
	s := &lineSink{more: make(chan struct{}, 1)}
	s.acks = delivery.NewAcker(execd.NewLogger("outputs.test", telegraf.Warn), func() bool { return false })
	ctx, cancel := context.WithCancel(context.Background())
	go s.acks.Run(ctx)
	t.Cleanup(func() {
		cancel()
		s.acks.Wait()
	})
	return s
}

func (s *lineSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	for _, l := range strings.SplitAfter(string(p), "\n") {
		switch {
		case l == "":
		case strings.HasPrefix(l, delivery.Measurement+" "):
			s.checkpoint(l)
		case s.drop > 0:
			s.drop-- // lost on the way: the output never reads it
		default:
			s.lines = append(s.lines, l)
			s.read++
		}
	}
	s.mu.Unlock()
	select {
	case s.more <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (s *lineSink) checkpoint(line string) {
	s.markers++
	m, err := delivery.ParseMarker([]byte(line))
	if err != nil {
		panic(err)
	}
	got, short := s.tally.Marker(m, s.read)
	if s.silent {
		return
	}
	s.acks.Received(m, short, got)
	switch {
	case s.hold:
		s.held = append(s.held, m)
	default:
		s.acks.Settled(m)
	}
}

// setHold holds checkpoints from now on, or acknowledges the held ones
// and stops holding.
func (s *lineSink) setHold(hold bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = hold
	if !hold {
		for _, m := range s.held {
			s.acks.Settled(m)
		}
		s.held = nil
	}
}

func (s *lineSink) dropLines(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop = n
}

func (s *lineSink) Lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

// waitFor blocks until the sink holds n lines, failing after waitLimit.
func (s *lineSink) waitFor(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		if lines := s.Lines(); len(lines) >= n {
			return lines
		}
		select {
		case <-s.more:
		case <-deadline:
			t.Fatalf("got %d lines, want %d", len(s.Lines()), n)
		}
	}
}

// running is a plugin consuming in the background.
type running struct {
	k      *KafkaConsumer
	out    *lineSink
	log    *syncbuf.Buffer
	stats  *Stats
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, config string) *running {
	t.Helper()
	return startWith(t, config, newLineSink(t))
}

// startWith runs the plugin with out as its stdout.
func startWith(t *testing.T, config string, out *lineSink) *running {
	t.Helper()
	k := New()
	log := &syncbuf.Buffer{}
	k.Log.SetOutput(log)
	if err := execd.DecodeConfig("[[inputs.kafka_consumer]]\ndata_format = \"json\"\n"+config, "inputs", "kafka_consumer", k); err != nil {
		t.Fatal(err)
	}
	if err := k.Init(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{k: k, out: out, log: log, stats: &Stats{}, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- k.Run(ctx, r.out, r.stats) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the plugin as SIGTERM would and waits for a clean exit.
func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Error("Run did not return within 15 s of being stopped")
	}
	if t.Failed() {
		t.Logf("plugin log:\n%s", r.log.String())
	}
}

func brokerConfig(brokers []string, topic, group string) string {
	return fmt.Sprintf("brokers = [%q]\ntopics = [%q]\nconsumer_group = %q\n", brokers[0], topic, group)
}

func guideMessage(i int) []byte {
	return []byte(fmt.Sprintf(`{"pressure":%d.1,"temperature":23.4,"visibility":%d}`, i%10, i))
}

// decodeLine parses one line the way Telegraf's influx parser would.
func decodeLine(t *testing.T, line string) (name string, tags, fields map[string]string, ts time.Time) {
	t.Helper()
	dec := lineprotocol.NewDecoderWithBytes([]byte(line))
	if !dec.Next() {
		t.Fatalf("no line in %q", line)
	}
	m, err := dec.Measurement()
	if err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	tags, fields = map[string]string{}, map[string]string{}
	for {
		k, v, err := dec.NextTag()
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if k == nil {
			break
		}
		tags[string(k)] = string(v)
	}
	for {
		k, v, err := dec.NextField()
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if k == nil {
			break
		}
		fields[string(k)] = v.String()
	}
	ts, err = dec.Time(lineprotocol.Nanosecond, time.Time{})
	if err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	return string(m), tags, fields, ts
}

func uniqueGroup(t *testing.T) string {
	return fmt.Sprintf("g-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
}

func TestBrokerGuideMessages(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.NewTopic(t, 1)
	group := uniqueGroup(t)
	const n = 200
	kafkatest.ProduceN(t, brokers, topic, n, guideMessage)

	r := start(t, brokerConfig(brokers, topic, group))
	lines := r.out.waitFor(t, n)
	seen := map[string]bool{}
	for _, line := range lines {
		name, tags, fields, ts := decodeLine(t, line)
		if name != "kafka_consumer" || len(tags) != 0 || len(fields) != 3 || ts.IsZero() {
			t.Fatalf("unexpected metric %q", line)
		}
		seen[fields["visibility"]] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct messages, want %d", len(seen), n)
	}
	// What is unacknowledged at the stop is consumed again next time:
	// wait for the acknowledgements that commit it all.
	waitForCount(t, "acknowledged", r.stats.Acknowledged.Load, n)
	r.stop(t)
	if got := kafkatest.CommittedOffsets(t, brokers, group, topic); got[0] != n {
		t.Fatalf("committed offsets %v, want partition 0 at %d", got, n)
	}
}

func TestBrokerSeveralPartitionsAndResume(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.NewTopic(t, 3)
	group := uniqueGroup(t)
	kafkatest.ProduceN(t, brokers, topic, 300, guideMessage)

	r := start(t, brokerConfig(brokers, topic, group))
	r.out.waitFor(t, 300)
	r.stop(t)
	var committed int64
	for _, off := range kafkatest.CommittedOffsets(t, brokers, group, topic) {
		committed += off
	}
	if committed != 300 {
		t.Fatalf("committed %d messages over the partitions, want 300", committed)
	}

	// A restarted consumer resumes at the committed offsets: it sees
	// only what was produced since.
	kafkatest.ProduceN(t, brokers, topic, 50, func(i int) []byte { return guideMessage(1000 + i) })
	r2 := start(t, brokerConfig(brokers, topic, group))
	lines := r2.out.waitFor(t, 50)
	time.Sleep(time.Second)
	if got := len(r2.out.Lines()); got != 50 {
		t.Fatalf("restarted consumer got %d lines, want exactly the 50 new ones", got)
	}
	for _, line := range lines {
		_, _, fields, _ := decodeLine(t, line)
		if v, err := strconv.ParseFloat(fields["visibility"], 64); err != nil || v < 1000 {
			t.Fatalf("replayed an old message: %q", line)
		}
	}
}

func TestBrokerOffsetNewest(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.NewTopic(t, 1)
	kafkatest.ProduceN(t, brokers, topic, 20, guideMessage)

	r := start(t, brokerConfig(brokers, topic, uniqueGroup(t))+"offset = \"newest\"\n")
	// Wait until the group has joined and so fixed its starting point.
	waitForLog(t, r, "joined group")
	kafkatest.ProduceN(t, brokers, topic, 5, func(i int) []byte { return guideMessage(500 + i) })
	r.out.waitFor(t, 5)
	time.Sleep(time.Second)
	if got := len(r.out.Lines()); got != 5 {
		t.Fatalf("offset=newest consumed %d lines, want only the 5 new ones", got)
	}
}

func waitForLog(t *testing.T, r *running, text string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !strings.Contains(r.log.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q:\n%s", text, r.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestBrokerHeadersTopicTagAndTimestamp(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.NewTopic(t, 1)
	stamp := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	kafkatest.Produce(t, brokers, topic, kafkatest.Message{
		Partition: -1,
		Value:     []byte(`{"temperature":23.4,"site":"north"}`),
		Headers:   []kafkatest.Header{{Key: "device", Value: "d1"}, {Key: "kind", Value: "ocean"}, {Key: "ignored", Value: "x"}},
		Timestamp: stamp,
	})
	r := start(t, brokerConfig(brokers, topic, uniqueGroup(t))+`
topic_tag = "topic"
msg_headers_as_tags = ["device", "kind"]
msg_header_as_metric_name = "kind"
timestamp_source = "inner"
tag_keys = ["site"]
`)
	lines := r.out.waitFor(t, 1)
	name, tags, fields, ts := decodeLine(t, lines[0])
	if name != "ocean" {
		t.Errorf("name %q, want the header's value", name)
	}
	want := map[string]string{"topic": topic, "device": "d1", "site": "north"}
	if fmt.Sprint(tags) != fmt.Sprint(want) {
		t.Errorf("tags %v, want %v", tags, want)
	}
	if fields["temperature"] != "23.4" || len(fields) != 1 {
		t.Errorf("fields %v", fields)
	}
	if !ts.Equal(stamp) {
		t.Errorf("time %v, want the message timestamp %v", ts, stamp)
	}
}

func TestBrokerBadMessagesAreSkippedAndLogged(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.NewTopic(t, 1)
	long := `{"a":3,"pad":"` + strings.Repeat("x", 100) + `"}`
	kafkatest.Produce(t, brokers, topic,
		kafkatest.Message{Partition: -1, Value: []byte(`{"a":1}`)},
		kafkatest.Message{Partition: -1, Value: []byte(`{"a":`)},
		kafkatest.Message{Partition: -1, Value: []byte(long)},
		kafkatest.Message{Partition: -1, Value: []byte(`"scalar"`)},
		kafkatest.Message{Partition: -1, Value: []byte(`{"a":5}`)},
	)
	r := start(t, brokerConfig(brokers, topic, uniqueGroup(t))+"max_message_len = 50\n")
	r.out.waitFor(t, 2)
	waitForLog(t, r, "offset 3")
	log := r.log.String()
	for _, want := range []string{
		fmt.Sprintf("E! [inputs.kafka_consumer] skipping message at topic %q partition 0 offset 1", topic),
		fmt.Sprintf("offset 2: message exceeds max_message_len (actual %d, max 50)", len(long)),
		"offset 3",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if got := r.stats.BadMessages.Load(); got != 3 {
		t.Errorf("%d bad messages counted, want 3", got)
	}
}

func TestBrokerTopicRegexpFindsNewTopic(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	prefix := fmt.Sprintf("rx%d", time.Now().UnixNano())
	r := start(t, fmt.Sprintf("brokers = [%q]\ntopic_regexps = [%q]\ntopic_refresh_interval = \"500ms\"\nconsumer_group = %q\ntopic_tag = \"topic\"\n",
		brokers[0], "^"+prefix, uniqueGroup(t)))
	topic := kafkatest.CreateTopic(t, prefix+"-later", 1)
	kafkatest.ProduceN(t, brokers, topic, 3, guideMessage)
	lines := r.out.waitFor(t, 3)
	if _, tags, _, _ := decodeLine(t, lines[0]); tags["topic"] != topic {
		t.Fatalf("line %q, want topic tag %q", lines[0], topic)
	}
}

func TestBrokerGroupRebalance(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.NewTopic(t, 4)
	group := uniqueGroup(t)
	cfg := brokerConfig(brokers, topic, group)
	kafkatest.ProduceN(t, brokers, topic, 200, guideMessage)

	a := start(t, cfg)
	a.out.waitFor(t, 200)
	b := start(t, cfg)
	waitForBoth := func(total int) {
		deadline := time.Now().Add(waitLimit)
		for len(a.out.Lines())+len(b.out.Lines()) < total {
			if time.Now().After(deadline) {
				t.Fatalf("a has %d, b has %d lines, want %d in all", len(a.out.Lines()), len(b.out.Lines()), total)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Produce while the group rebalances; every message must arrive.
	kafkatest.ProduceN(t, brokers, topic, 200, func(i int) []byte { return guideMessage(1000 + i) })
	waitForBoth(400)
	a.stop(t)
	kafkatest.ProduceN(t, brokers, topic, 100, func(i int) []byte { return guideMessage(2000 + i) })
	waitForBoth(500)

	seen := map[string]int{}
	for _, line := range append(a.out.Lines(), b.out.Lines()...) {
		_, _, fields, _ := decodeLine(t, line)
		seen[fields["visibility"]]++
	}
	if len(seen) != 500 {
		t.Fatalf("%d distinct messages seen, want 500", len(seen))
	}
	b.stop(t)
	var committed int64
	for _, off := range kafkatest.CommittedOffsets(t, brokers, group, topic) {
		committed += off
	}
	if committed != 500 {
		t.Fatalf("committed %d, want 500", committed)
	}
}

func TestBrokerSASLSCRAM(t *testing.T) {
	brokers := kafkatest.SASLBrokers(t)
	topic := kafkatest.NewTopic(t, 1)
	kafkatest.ProduceN(t, kafkatest.Brokers(t), topic, 3, guideMessage)
	user, password := kafkatest.SASLCredentials(t)
	for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"} {
		t.Run(mech, func(t *testing.T) {
			r := start(t, brokerConfig(brokers, topic, uniqueGroup(t))+fmt.Sprintf(
				"sasl_username = %q\nsasl_password = %q\nsasl_mechanism = %q\n", user, password, mech))
			r.out.waitFor(t, 3)
			r.stop(t)
			if strings.Contains(r.log.String(), password) {
				t.Fatal("the SASL password reached the log")
			}
		})
	}
}

func TestBrokerTLS(t *testing.T) {
	brokers := kafkatest.TLSBrokers(t)
	topic := kafkatest.NewTopic(t, 1)
	kafkatest.ProduceN(t, kafkatest.Brokers(t), topic, 3, guideMessage)
	ca, cert, key := kafkatest.TLSFiles(t)
	r := start(t, brokerConfig(brokers, topic, uniqueGroup(t))+fmt.Sprintf(
		"tls_ca = %q\ntls_cert = %q\ntls_key = %q\n", ca, cert, key))
	r.out.waitFor(t, 3)
}

func TestBrokerUnreachableAtStartup(t *testing.T) {
	kafkatest.Brokers(t) // only with the real-broker suite: it dials a closed port
	k := New()
	k.Log.SetOutput(&bytes.Buffer{})
	if err := execd.DecodeConfig("[[inputs.kafka_consumer]]\nbrokers = [\"127.0.0.1:1\"]\ntopics = [\"t\"]\ndata_format = \"json\"\nmetadata_retry_max = 0\n", "inputs", "kafka_consumer", k); err != nil {
		t.Fatal(err)
	}
	if err := k.Init(); err != nil {
		t.Fatal(err)
	}
	err := k.Run(context.Background(), newLineSink(t), &Stats{})
	if err == nil || !strings.Contains(err.Error(), "cannot connect to brokers") || !strings.Contains(err.Error(), "startup_error_behavior") {
		t.Fatalf("error %v, want a clear connection error naming startup_error_behavior", err)
	}
}
