package selfstat

import (
	"strings"
	"testing"
	"time"
)

func TestCheckOptions(t *testing.T) {
	names := map[string]string{"stats_measurement": "a", "stats_partition_measurement": "b"}
	tests := []struct {
		name     string
		interval time.Duration
		names    map[string]string
		wantErr  string
	}{
		{name: "off", interval: 0, names: map[string]string{"stats_measurement": ""}},
		{name: "on", interval: 10 * time.Second, names: names},
		{name: "negative", interval: -time.Second, names: names, wantErr: "stats_interval: must not be negative"},
		{name: "too short", interval: time.Millisecond, names: names, wantErr: "stats_interval: 1ms is shorter"},
		{name: "empty name", interval: time.Second, names: map[string]string{"stats_measurement": " "}, wantErr: "stats_measurement: must not be empty"},
		{name: "same name", interval: time.Second, names: map[string]string{"stats_measurement": "x", "stats_partition_measurement": "x"}, wantErr: `stats_partition_measurement: "x" is also stats_measurement`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckOptions(tt.interval, tt.names)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	if s := h.Take(); s != (Summary{}) {
		t.Fatalf("empty histogram: %+v", s)
	}
	for i := 1; i <= 100; i++ {
		h.Observe(time.Duration(i) * time.Millisecond)
	}
	s := h.Take()
	if s.Count != 100 || s.Max != 100*time.Millisecond {
		t.Fatalf("count %d max %s", s.Count, s.Max)
	}
	within := func(got, want time.Duration) bool {
		return got >= want && float64(got) <= float64(want)*bucketGrowth
	}
	if !within(s.P50, 50*time.Millisecond) {
		t.Errorf("p50 = %s, want 50ms within 25%%", s.P50)
	}
	if !within(s.P99, 99*time.Millisecond) {
		t.Errorf("p99 = %s, want 99ms within 25%% (and at most max)", s.P99)
	}
	if again := h.Take(); again.Count != 0 {
		t.Fatalf("Take did not start a new interval: %+v", again)
	}
	h.Observe(0)
	h.Observe(100 * time.Hour)
	if s := h.Take(); s.Count != 2 || s.P99 != 100*time.Hour {
		t.Fatalf("extremes: %+v", s)
	}
}

func TestEncoderRows(t *testing.T) {
	var e Encoder
	at := time.Unix(0, 1700000000000000000)
	if err := e.Row("stats", []Tag{{"z", "1"}, {"a", "x y"}, {"empty", ""}},
		[]Field{{"n", int64(3)}, {"u", uint64(4)}, {"f", 1.5}, {"ok", true}, {"skip", nil}}, at); err != nil {
		t.Fatal(err)
	}
	if err := e.Row("bad", nil, []Field{{"v", struct{}{}}}, at); err == nil {
		t.Fatal("a struct field encoded")
	}
	if err := e.Row("none", nil, []Field{{"v", nil}}, at); err == nil {
		t.Fatal("a row without fields encoded")
	}
	if err := e.Row("bad name\n", nil, []Field{{"v", int64(1)}}, at); err == nil {
		t.Fatal("an invalid measurement encoded")
	}
	if err := e.Row("second", nil, []Field{{"v", int64(1)}}, at); err != nil {
		t.Fatal(err)
	}
	want := "stats,a=x\\ y,z=1 n=3i,u=4u,f=1.5,ok=true 1700000000000000000\n" +
		"second v=1i 1700000000000000000\n"
	if got := string(e.Bytes()); got != want || e.Rows() != 2 {
		t.Fatalf("got %d rows\n%q\nwant\n%q", e.Rows(), got, want)
	}
	e.Reset()
	if len(e.Bytes()) != 0 || e.Rows() != 0 {
		t.Fatal("Reset kept rows")
	}
}

func BenchmarkHistogramObserve(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Observe(time.Duration(i%5000) * time.Microsecond)
	}
}
