package main

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/plugins/parsers/jsonlp"
)

func TestParseStat(t *testing.T) {
	// A command name with a space and a ')' must not shift the fields.
	text := "4242 (tele graf) x) S 4000 4242 4242 0 -1 4194560 100 0 0 0 150 25 7 3 20 0 12 0 900 1000000 2000 18446744073709551615\n"
	st, err := parseStat([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != 4000 || st.state != 'S' || st.cpuTicks != 150+25+7+3 {
		t.Fatalf("got %+v", st)
	}
	if _, err := parseStat([]byte("12 (x) S 1")); err == nil {
		t.Fatal("short stat accepted")
	}
}

func TestParseHWM(t *testing.T) {
	status := "Name:\ttelegraf\nVmPeak:\t 2000000 kB\nVmHWM:\t   34560 kB\nVmRSS:\t   30000 kB\n"
	if got := parseHWM([]byte(status)); got != 34560 {
		t.Fatalf("VmHWM %d, want 34560", got)
	}
	if got := parseHWM([]byte("Name:\tzombie\nState:\tZ (zombie)\n")); got != 0 {
		t.Fatalf("zombie VmHWM %d, want 0", got)
	}
}

// Both shapes must be JSON that Telegraf's parser (through jsonlp, which
// matches it) turns into exactly one line.
func TestShapesAreOneMetric(t *testing.T) {
	conv, err := jsonlp.New(jsonlp.Config{MetricName: "kafka_consumer", Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, name := range []string{"guide", "nested"} {
		make1, err := shapeByName(name)
		if err != nil {
			t.Fatal(err)
		}
		for range 100 {
			doc := make1(nil, rng)
			if !json.Valid(doc) {
				t.Fatalf("%s: invalid JSON %s", name, doc)
			}
			line, n, err := conv.Append(nil, doc, &jsonlp.Meta{Now: time.Unix(1, 0)})
			if err != nil || n != 1 {
				t.Fatalf("%s: %d lines, %v for %s", name, n, err, doc)
			}
			if name == "nested" && strings.Count(string(line), "=") < 25 {
				t.Fatalf("nested message makes only %q", line)
			}
		}
	}
	if _, err := shapeByName("flat"); err == nil {
		t.Fatal("unknown shape accepted")
	}
}

func TestProgressRate(t *testing.T) {
	start := time.Unix(100, 0)
	p := progress{start: start}
	p.observe(start.Add(time.Second), 1000, 10000)   // start-up is left out
	p.observe(start.Add(2*time.Second), 5000, 10000) // still running
	p.observe(start.Add(3*time.Second), 10000, 10000)
	if got := p.rate(); got != 4500 {
		t.Fatalf("rate %v, want 9000 messages in 2s = 4500/s", got)
	}
	// Everything in the first observation: the whole run counts.
	q := progress{start: start}
	q.observe(start.Add(2*time.Second), 10000, 10000)
	if got := q.rate(); got != 5000 {
		t.Fatalf("rate %v, want 5000", got)
	}
}

// The steady rate leaves out a slow start and a tail that waited for a
// flush interval.
func TestProgressSteadyRate(t *testing.T) {
	start := time.Unix(100, 0)
	p := progress{start: start}
	p.observe(start.Add(1*time.Second), 500, 10000)
	if got := p.steadyRate(); got != 0 {
		t.Fatalf("steady rate %v before a tenth was delivered", got)
	}
	p.observe(start.Add(3*time.Second), 1000, 10000) // a tenth, after a slow start
	p.observe(start.Add(4*time.Second), 9500, 10000) // nine tenths passed
	p.observe(start.Add(9*time.Second), 10000, 10000)
	if got := p.steadyRate(); got != 8500 {
		t.Fatalf("steady rate %v, want 8500 messages in 1s", got)
	}
	if got := p.rate(); got != 9500.0/8 {
		t.Fatalf("rate %v, want the whole window with its tail", got)
	}
}

func TestSummaryMarksLostRuns(t *testing.T) {
	roles := func(cpu float64) map[string]roleStats {
		return map[string]roleStats{"telegraf": {CPUSeconds: cpu, PeakRSSMB: 50}}
	}
	results := []result{
		{Scenario: "stock", Label: "stock", Expect: 1e6, Status: "ok", Rate: 100, Roles: roles(3)},
		{Scenario: "stock", Label: "stock", Expect: 1e6, Status: "ok", Rate: 300, Roles: roles(1)},
		{Scenario: "stock", Label: "stock", Expect: 1e6, Status: "ok", Rate: 200, Roles: roles(2)},
		{Scenario: "ours", Label: "ours", Expect: 1e6, Status: "lost", Rate: 900, Dropped: 5, Roles: roles(1)},
	}
	ss := summarize(results)
	stock, ours := find(ss, "stock"), find(ss, "ours")
	if stock.rate != 200 || stock.cpuPerM["telegraf"] != 2 || !stock.valid {
		t.Fatalf("stock summary %+v", stock)
	}
	if ours.valid {
		t.Fatal("a run that lost messages counted as a throughput figure")
	}
	rows := mainTable(ss)
	var oursRow, ratioRow []string
	for _, r := range rows {
		switch r[0] {
		case "ours":
			oursRow = r
		case "ratio ours/stock":
			ratioRow = r
		}
	}
	if !strings.Contains(oursRow[2], "*") || !strings.Contains(oursRow[2], "lost") {
		t.Fatalf("lost run's msgs/s %q is not marked", oursRow[2])
	}
	if !strings.Contains(ratioRow[2], "*") {
		t.Fatalf("ratio from a lost run %q is not marked", ratioRow[2])
	}
}

// A compressed scenario shows its bytes on the wire per line and how they
// compare with the same path uncompressed.
func TestTableBytesPerLine(t *testing.T) {
	run := func(scenario string, bodyBytes int64) result {
		return result{Scenario: scenario, Label: scenario, Expect: 1000, Delivered: 1000, Writes: 2, BodyBytes: bodyBytes,
			Status: "ok", Rate: 100, Roles: map[string]roleStats{"telegraf": {CPUSeconds: 1}}}
	}
	rows := mainTable(summarize([]result{run("ours", 80000), run("ours-gzip", 20000), run("stock", 0)}))
	last := func(label string) string {
		for _, r := range rows {
			if r[0] == label {
				return r[len(r)-1]
			}
		}
		t.Fatalf("no row %q in %v", label, rows)
		return ""
	}
	if got := last("ours"); got != "80.0" {
		t.Errorf("ours B/line %q, want 80.0", got)
	}
	if got := last("stock"); got != "-" {
		t.Errorf("stock, not observed: B/line %q, want -", got)
	}
	if got := last("gzip cost ours (gzip)/ours"); got != "0.25x" {
		t.Errorf("gzip's bytes ratio %q, want 0.25x", got)
	}
	if got := last("ratio ours/stock"); got != "" {
		t.Errorf("a ratio against an unobserved B/line %q, want empty", got)
	}
}

func TestTargetLines(t *testing.T) {
	ss := []summary{
		{scenario: "stock", label: "stock", valid: true, rate: 100000, cpuPerM: map[string]float64{"telegraf": 9}},
		{scenario: "ours", label: "ours", valid: true, rate: 170000, cpuPerM: map[string]float64{"input": 1.4, "output": 0.5}, rssMB: map[string]float64{"input": 36, "output": 41}},
		{scenario: "ceiling", label: "ceiling", valid: true, rate: 300000},
		{scenario: "output-alone", label: "output alone", valid: true, cpuPerM: map[string]float64{"output": 0.25}},
	}
	got := strings.Join(targetLines(ss), "\n")
	for _, want := range []string{
		"ours >= 1.6x stock: 1.70x, met",
		"ours >= 0.65 of the ceiling: 0.57, NOT met",
		"input child in the pipeline <= 1.0 CPU-s per million: 1.40 CPU-s/M, NOT met",
		"output child in the pipeline <= 0.5 CPU-s per million: 0.50 CPU-s/M, met",
		"output child alone >= 3M lines per CPU-second: 4.00M lines/CPU-s, met",
		"input child peak RSS <= 40 MB: 36.0 MB (largest, in ours), met",
		"output child peak RSS <= 40 MB: 41.0 MB (largest, in ours), NOT met",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in\n%s", want, got)
		}
	}
	if strings.Contains(got, "input child alone") || strings.Contains(got, "loop cost") {
		t.Errorf("targets of scenarios that did not run:\n%s", got)
	}
}
