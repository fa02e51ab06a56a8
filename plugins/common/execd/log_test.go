package execd

import (
	"bytes"
	"testing"
	"time"

	"github.com/influxdata/telegraf"
)

func TestLoggerPrefixesAndLevels(t *testing.T) {
	var out bytes.Buffer
	l := NewLogger("inputs.kafka_consumer", telegraf.Info)
	l.SetOutput(&out)
	l.Errorf("bad %d", 1)
	l.Warn("careful")
	l.Info("hello\nworld")
	l.Debug("hidden")
	want := "E! [inputs.kafka_consumer] bad 1\nW! [inputs.kafka_consumer] careful\nI! [inputs.kafka_consumer] hello\\nworld\n"
	if out.String() != want {
		t.Fatalf("got\n%q\nwant\n%q", out.String(), want)
	}
}

func TestParseLevel(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want telegraf.LogLevel
		err  bool
	}{{"", telegraf.Warn, false}, {"DEBUG", telegraf.Debug, false}, {"error", telegraf.Error, false}, {"loud", telegraf.Warn, true}} {
		got, err := ParseLevel(tt.in, telegraf.Warn)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("ParseLevel(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestRateLimit(t *testing.T) {
	r := RateLimit{Interval: time.Second, Burst: 2}
	t0 := time.Unix(0, 0)
	var allowed int
	for i := 0; i < 10; i++ {
		if ok, _ := r.Allow(t0); ok {
			allowed++
		}
	}
	if allowed != 2 {
		t.Fatalf("allowed %d in one interval, want 2", allowed)
	}
	ok, suppressed := r.Allow(t0.Add(time.Second))
	if !ok || suppressed != 8 {
		t.Fatalf("after the interval: ok=%v suppressed=%d, want true 8", ok, suppressed)
	}
}
