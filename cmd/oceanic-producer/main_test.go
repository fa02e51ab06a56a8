package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/internal/kafkatest"
)

// The guide's producer prints json.dumps of its dict: keys in this order,
// ", " and ": " as separators, one decimal.
var pythonJSON = regexp.MustCompile(`^\{"pressure": \d+\.\d, "temperature": \d+\.\d, "visibility": \d+\.\d\}$`)

func TestMessagesLookLikeThePythonProducers(t *testing.T) {
	src := newSensor(42)
	var buf []byte
	for range 10000 {
		buf = src.appendJSON(buf[:0])
		if !pythonJSON.Match(buf) {
			t.Fatalf("message %s is not formatted as json.dumps formats the guide's dict", buf)
		}
		var m struct{ Pressure, Temperature, Visibility float64 }
		if err := json.Unmarshal(buf, &m); err != nil {
			t.Fatalf("%s: %v", buf, err)
		}
		if m.Pressure < 0 || m.Pressure > 10 || m.Temperature < 0 || m.Temperature > 100 || m.Visibility < 0 || m.Visibility > 100 {
			t.Fatalf("%s: a reading is out of the guide's range", buf)
		}
	}
}

func TestSameSeedSameMessages(t *testing.T) {
	a, b := newSensor(7), newSensor(7)
	for range 100 {
		if x, y := string(a.appendJSON(nil)), string(b.appendJSON(nil)); x != y {
			t.Fatalf("seed 7 gave %s and %s", x, y)
		}
	}
}

func TestAppendJSONDoesNotAllocateWithRoom(t *testing.T) {
	src := newSensor(1)
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(1000, func() { buf = src.appendJSON(buf[:0]) }); n != 0 {
		t.Fatalf("appendJSON allocates %.1f times per message", n)
	}
}

func TestParseInterval(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"5s": 5 * time.Second, "0.2s": 200 * time.Millisecond, "200ms": 200 * time.Millisecond,
		"0": 0, "5": 5 * time.Second, "0.25": 250 * time.Millisecond, "1m": time.Minute,
	} {
		got, err := parseInterval(in)
		if err != nil || got != want {
			t.Errorf("parseInterval(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1s", "-2", "fast", "5 s"} {
		if _, err := parseInterval(in); err == nil {
			t.Errorf("parseInterval(%q) accepted", in)
		}
	}
}

func TestFlags(t *testing.T) {
	opts, err := parseFlags([]string{"-brokers", "a:1, b:2", "-count", "3", "-interval", "0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(opts.brokers) != 2 || opts.brokers[1] != "b:2" || opts.count != 3 || opts.interval != 0 || opts.topic != "oceanic" {
		t.Fatalf("parsed %+v", opts)
	}
	for _, args := range [][]string{{"-count", "-1"}, {"-brokers", " , "}, {"-topic", ""}, {"extra"}} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
}

// Against the real broker (scripts/kafka.sh start; eval "$(scripts/kafka.sh env)").
func TestProducesToKafkaAndReportsBacklog(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.NewTopic(t, 2)
	base := options{brokers: brokers, topic: topic, quiet: true, seed: 3}

	fast := base
	fast.count = 5000
	if code := run(context.Background(), fast, io.Discard); code != 0 {
		t.Fatalf("full speed: exit %d", code)
	}
	paced := base
	paced.count = 3
	paced.interval = time.Millisecond
	var out bytes.Buffer
	if code := run(context.Background(), paced, &out); code != 0 {
		t.Fatalf("paced: exit %d", code)
	}
	if !strings.Contains(out.String(), "sent 3 messages to "+topic) {
		t.Fatalf("paced output:\n%s", out.String())
	}

	// A group that never committed starts at the oldest message: all are backlog.
	query := base
	query.backlog = "never-consumed-" + topic
	out.Reset()
	if code := run(context.Background(), query, &out); code != 0 {
		t.Fatalf("backlog: exit %d", code)
	}
	if got := strings.TrimSpace(out.String()); got != "5003" {
		t.Fatalf("backlog = %s, want 5003", got)
	}
}

func TestInterruptedRunStopsAndSaysSo(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.NewTopic(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	opts := options{brokers: brokers, topic: topic, count: 100, interval: time.Hour, quiet: true}
	if code := run(ctx, opts, io.Discard); code != 130 {
		t.Fatalf("exit %d, want 130 for an interrupted run", code)
	}
}
