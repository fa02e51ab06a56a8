package kafka_consumer

import (
	"bytes"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func TestStamps(t *testing.T) {
	const t0 = int64(1_700_000_000_000_000_000)
	tests := []struct {
		name     string
		readings []int64
		want     []int64
	}{
		{"the clock moves on", []int64{t0, t0 + 500, t0 + 501}, []int64{t0, t0 + 500, t0 + 501}},
		{"one reading for several messages", []int64{t0, t0, t0, t0 + 2}, []int64{t0, t0 + 1, t0 + 2, t0 + 3}},
		{"a reading behind the last stamp", []int64{t0 + 10, t0 + 3}, []int64{t0 + 10, t0 + 11}},
		{"the clock stepped back", []int64{t0 + 10*int64(time.Second), t0}, []int64{t0 + 10*int64(time.Second), t0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s stamps
			for i, r := range tt.readings {
				if got := s.next(r); got != tt.want[i] {
					t.Fatalf("stamp %d: got %d, want %d", i, got, tt.want[i])
				}
			}
		})
	}
}

// Messages without a time of their own get strictly increasing times,
// taken from the clock while they are converted, across claims.
func TestMessagesStampedInOrder(t *testing.T) {
	k, err := newFromText(t, "[[inputs.kafka_consumer]]\nbrokers = [\"127.0.0.1:9092\"]\ntopics = [\"oceanic\"]\ndata_format = \"json\"\n")
	if err != nil {
		t.Fatal(err)
	}
	claims := []*claimConverter{newClaimConverter(k), newClaimConverter(k)}
	before := time.Now().UnixNano()
	for i := 0; i < 5*clockEvery; i++ {
		c := claims[i%2]
		reading := c.reading
		if i == 3*clockEvery {
			c.reset() // a chunk written: the clock is read again
		}
		msg := &sarama.ConsumerMessage{Topic: "oceanic", Offset: int64(i), Value: fmt.Appendf(nil, `{"pressure":%d}`, i)}
		if err := c.append(msg); err != nil {
			t.Fatal(err)
		}
		if i == 3*clockEvery && c.reading <= reading {
			t.Errorf("the first message after a reset was stamped from the old reading %d", reading)
		}
	}
	after := time.Now().UnixNano()
	var stamps []int64
	for _, c := range claims {
		prev := int64(0)
		for _, line := range bytes.Split(bytes.TrimSuffix(c.buf, []byte("\n")), []byte("\n")) {
			ns, err := strconv.ParseInt(string(line[bytes.LastIndexByte(line, ' ')+1:]), 10, 64)
			if err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			if ns <= prev {
				t.Errorf("stamp %d after %d in one claim", ns, prev)
			}
			prev = ns
			stamps = append(stamps, ns)
		}
	}
	seen := map[int64]bool{}
	for _, ns := range stamps {
		if ns < before || ns > after {
			t.Errorf("stamp %d outside the conversion's [%d, %d]", ns, before, after)
		}
		if seen[ns] {
			t.Errorf("two messages stamped %d", ns)
		}
		seen[ns] = true
	}
}
