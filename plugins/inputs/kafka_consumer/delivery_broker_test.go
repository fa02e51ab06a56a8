package kafka_consumer //nolint:revive,stylecheck // named after the Telegraf plugin it replaces

import (
	"strings"
	"testing"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/internal/kafkatest"
)

// The delivery loop against the real broker, with lineSink playing the
// output's part.

// visibilities returns the distinct messages seen, by their visibility.
func visibilities(t *testing.T, lines []string) map[string]int {
	seen := map[string]int{}
	for _, line := range lines {
		_, _, fields, _ := decodeLine(t, line)
		seen[fields["visibility"]]++
	}
	return seen
}

func (s *lineSink) waitDistinct(t *testing.T, n int) map[string]int {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		seen := visibilities(t, s.Lines())
		if len(seen) >= n {
			return seen
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d distinct messages, want %d", len(seen), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// At most max_undelivered_messages are unacknowledged at any time; the
// input pauses at the bound and goes on as acknowledgements come.
func TestBrokerWindowBoundsWhatIsInFlight(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.NewTopic(t, 2)
	group := uniqueGroup(t)
	const n, window = 2000, 300
	kafkatest.ProduceN(t, brokers, topic, n, guideMessage)

	sink := newLineSink(t)
	sink.setHold(true)
	r := startWith(t, brokerConfig(brokers, topic, group)+"max_undelivered_messages = 300\n", sink)
	sink.waitFor(t, window)
	time.Sleep(300 * time.Millisecond) // would it write more? it must not
	if got := len(sink.Lines()); got != window {
		t.Fatalf("%d lines written with nothing acknowledged, want the window: %d", got, window)
	}
	sink.setHold(false)
	seen := sink.waitDistinct(t, n)
	if len(seen) != n {
		t.Fatalf("%d distinct", len(seen))
	}
	waitForCount(t, "acknowledged", r.stats.Acknowledged.Load, n)
	r.stop(t)
	got := kafkatest.CommittedOffsets(t, brokers, group, topic)
	if got[0]+got[1] != n {
		t.Fatalf("committed %v, want %d in all", got, n)
	}
}

// Offsets are committed only for acknowledged checkpoints: stopped with
// everything unacknowledged, the input commits nothing, and the next run
// delivers it all.
func TestBrokerCommitsOnlyAcknowledged(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.NewTopic(t, 1)
	group := uniqueGroup(t)
	const n = 500
	kafkatest.ProduceN(t, brokers, topic, n, guideMessage)

	held := newLineSink(t)
	held.setHold(true)
	r := startWith(t, brokerConfig(brokers, topic, group), held)
	held.waitFor(t, n)
	r.stop(t)
	if r.stats.Unacknowledged.Load() != n {
		t.Fatalf("unacknowledged %d, want %d", r.stats.Unacknowledged.Load(), n)
	}
	if got := kafkatest.CommittedOffsets(t, brokers, group, topic); got[0] > 0 {
		t.Fatalf("committed %v with nothing acknowledged", got)
	}

	r = start(t, brokerConfig(brokers, topic, group))
	if seen := r.out.waitDistinct(t, n); len(seen) != n {
		t.Fatalf("%d distinct", len(seen))
	}
	waitForCount(t, "acknowledged", r.stats.Acknowledged.Load, n)
	r.stop(t)
	if got := kafkatest.CommittedOffsets(t, brokers, group, topic); got[0] != n {
		t.Fatalf("committed %v, want %d", got, n)
	}
}

// Lines lost between the input and the output (Telegraf's buffer
// overflowing) are noticed at the next checkpoint and replayed.
func TestBrokerReplaysLostLines(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.NewTopic(t, 1)
	group := uniqueGroup(t)
	const n = 1000
	sink := newLineSink(t)
	r := startWith(t, brokerConfig(brokers, topic, group)+"max_undelivered_messages = 200\n", sink)
	kafkatest.ProduceN(t, brokers, topic, 100, guideMessage)
	sink.waitFor(t, 100)
	sink.dropLines(30)
	kafkatest.ProduceN(t, brokers, topic, n-100, func(i int) []byte { return guideMessage(i + 100) })
	seen := sink.waitDistinct(t, n)
	if len(seen) != n || r.stats.Rewinds.Load() == 0 {
		t.Fatalf("%d distinct, %d rewinds", len(seen), r.stats.Rewinds.Load())
	}
	if !strings.Contains(r.log.String(), "replaying from the last acknowledged offsets") {
		t.Fatalf("no replay logged:\n%s", r.log.String())
	}
	waitForCount(t, "acknowledged", r.stats.Acknowledged.Load, n)
	r.stop(t)
	if got := kafkatest.CommittedOffsets(t, brokers, group, topic); got[0] != n {
		t.Fatalf("committed %v, want %d", got, n)
	}
}

// Paired with an output that never acknowledges, "auto" says so and falls
// back to committing on write rather than stalling.
func TestBrokerFallsBackWithoutAcknowledgements(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.NewTopic(t, 1)
	group := uniqueGroup(t)
	const n = 1000
	kafkatest.ProduceN(t, brokers, topic, n, guideMessage)
	sink := newLineSink(t)
	sink.silent = true
	r := startWith(t, brokerConfig(brokers, topic, group)+"max_undelivered_messages = 200\ndelivery_timeout = \"1s\"\n", sink)
	if seen := sink.waitDistinct(t, n); len(seen) != n {
		t.Fatalf("%d distinct", len(seen))
	}
	if !strings.Contains(r.log.String(), "Falling back to untracked delivery") {
		t.Fatalf("no fallback logged:\n%s", r.log.String())
	}
	markers := sink.markers
	r.stop(t)
	if got := kafkatest.CommittedOffsets(t, brokers, group, topic); got[0] != n {
		t.Fatalf("committed %v, want %d", got, n)
	}
	// Markers stop with the fallback: at most the first window had them.
	if markers > 200 {
		t.Fatalf("%d markers written", markers)
	}
}

// "required" never falls back: it replays what a silent output was given.
func TestBrokerRequiredReplaysWhenSilent(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.NewTopic(t, 1)
	group := uniqueGroup(t)
	kafkatest.ProduceN(t, brokers, topic, 50, guideMessage)
	sink := newLineSink(t)
	sink.silent = true
	r := startWith(t, brokerConfig(brokers, topic, group)+"delivery_tracking = \"required\"\ndelivery_timeout = \"500ms\"\n", sink)
	sink.waitFor(t, 100) // the 50, twice
	if r.stats.Rewinds.Load() == 0 {
		t.Fatal("no rewind")
	}
	r.stop(t)
	if got := kafkatest.CommittedOffsets(t, brokers, group, topic); got[0] > 0 {
		t.Fatalf("committed %v with nothing acknowledged", got)
	}
}

// "off" writes no markers and commits on write, as before the loop.
func TestBrokerTrackingOff(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.NewTopic(t, 1)
	group := uniqueGroup(t)
	const n = 300
	kafkatest.ProduceN(t, brokers, topic, n, guideMessage)
	sink := newLineSink(t)
	sink.silent = true
	r := startWith(t, brokerConfig(brokers, topic, group)+"delivery_tracking = \"off\"\n", sink)
	sink.waitFor(t, n)
	r.stop(t)
	if sink.markers != 0 {
		t.Fatalf("%d markers", sink.markers)
	}
	if got := kafkatest.CommittedOffsets(t, brokers, group, topic); got[0] != n {
		t.Fatalf("committed %v, want %d", got, n)
	}
}
