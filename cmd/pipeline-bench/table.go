package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
)

func tableCmd(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("table", flag.ContinueOnError)
	markdown := fs.Bool("markdown", false, "print Markdown tables")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("want one results file")
	}
	results, err := readResults(fs.Arg(0))
	if err != nil {
		return err
	}
	if len(results) == 0 {
		return errors.New("no results")
	}
	summaries := summarize(results)
	render(w, mainTable(summaries), *markdown)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Footnotes: * the median of runs that lost, stalled or timed out: NOT a throughput figure.")
	fmt.Fprintln(w, "CPU/M: CPU-seconds per million messages up to the last delivery, of Telegraf (tgf), the input child (in),")
	fmt.Fprintln(w, "the output child (out), their sum, and the CnosDB test server (srv). RSS: peak resident MB (VmHWM).")
	fmt.Fprintln(w)
	for _, line := range targetLines(summaries) {
		fmt.Fprintln(w, line)
	}
	return nil
}

func readResults(path string) ([]result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []result
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var r result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// summary is the median of one scenario's repeats.
type summary struct {
	scenario, label string
	runs, ok        int
	failures        []string // statuses of the runs that were not ok
	valid           bool     // every repeat delivered everything and dropped nothing
	rate, wall      float64
	steady          float64            // median steady rate (progress.steadyRate)
	cpuPerM         map[string]float64 // by role, plus "total" (all but the server)
	rssMB           map[string]float64 // by role, plus "total"
	delivered       int64
	dropped         int64
	linesPerWrite   float64 // lines stored per write request; 0 when not observed
	bytesPerLine    float64 // write body bytes on the wire per line stored; 0 when not observed
}

var tableRoles = []string{"telegraf", "input", "output"}

func summarize(results []result) []summary {
	var order []string
	by := map[string][]result{}
	for _, r := range results {
		if _, ok := by[r.Scenario]; !ok {
			order = append(order, r.Scenario)
		}
		by[r.Scenario] = append(by[r.Scenario], r)
	}
	var out []summary
	for _, sc := range order {
		rs := by[sc]
		s := summary{scenario: sc, label: rs[0].Label, runs: len(rs), cpuPerM: map[string]float64{}, rssMB: map[string]float64{}}
		var good []result
		for _, r := range rs {
			if r.Status == "ok" {
				good = append(good, r)
			} else {
				s.failures = append(s.failures, r.Status)
			}
		}
		s.ok = len(good)
		s.valid = s.ok == s.runs
		// A figure comes from the runs that count; when none do, from all
		// of them, marked as not a throughput figure.
		use := good
		if len(use) == 0 {
			use = rs
		}
		s.rate = median(use, func(r result) float64 { return r.Rate })
		s.steady = median(use, func(r result) float64 { return r.SteadyRate })
		s.wall = median(use, func(r result) float64 { return r.WallSeconds })
		s.delivered = int64(median(rs, func(r result) float64 { return float64(r.Delivered) }))
		s.dropped = int64(median(rs, func(r result) float64 { return float64(r.Dropped) }))
		s.linesPerWrite = median(use, func(r result) float64 {
			if r.Writes == 0 {
				return 0
			}
			return float64(r.Delivered) / float64(r.Writes)
		})
		s.bytesPerLine = median(use, func(r result) float64 {
			if r.BodyBytes == 0 || r.Delivered == 0 {
				return 0
			}
			return float64(r.BodyBytes) / float64(r.Delivered)
		})
		for _, role := range append(slices.Clone(tableRoles), "server") {
			if !hasRole(use, role) {
				continue
			}
			s.cpuPerM[role] = median(use, func(r result) float64 { return r.Roles[role].CPUSeconds / float64(r.Expect) * 1e6 })
			if role != "server" {
				s.rssMB[role] = median(use, func(r result) float64 { return r.Roles[role].PeakRSSMB })
			}
		}
		s.cpuPerM["total"] = median(use, func(r result) float64 {
			var t float64
			for _, role := range tableRoles {
				t += r.Roles[role].CPUSeconds
			}
			return t / float64(r.Expect) * 1e6
		})
		s.rssMB["total"] = median(use, func(r result) float64 {
			var t float64
			for _, role := range tableRoles {
				t += r.Roles[role].PeakRSSMB
			}
			return t
		})
		out = append(out, s)
	}
	return out
}

func hasRole(rs []result, role string) bool {
	for _, r := range rs {
		if _, ok := r.Roles[role]; ok {
			return true
		}
	}
	return false
}

func median(rs []result, f func(result) float64) float64 {
	if len(rs) == 0 {
		return math.NaN()
	}
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func find(ss []summary, scenario string) *summary {
	for i := range ss {
		if ss[i].scenario == scenario {
			return &ss[i]
		}
	}
	return nil
}

var tableHeader = []string{"run", "ok/runs", "msgs/s", "steady", "wall s",
	"CPU/M tgf", "CPU/M in", "CPU/M out", "CPU/M sum", "CPU/M srv",
	"RSS tgf", "RSS in", "RSS out", "RSS sum", "stored", "dropped", "lines/write", "B/line"}

func mainTable(ss []summary) [][]string {
	rows := [][]string{tableHeader}
	for _, s := range ss {
		rate := fmt.Sprintf("%.0f", s.rate)
		okRuns := fmt.Sprintf("%d/%d", s.ok, s.runs)
		if !s.valid {
			if s.ok == 0 {
				rate = fmt.Sprintf("(%.0f)* %s", s.rate, strings.Join(unique(s.failures), ","))
			}
			okRuns += " " + strings.Join(unique(s.failures), ",")
		}
		row := []string{s.label, okRuns, rate, fmt.Sprintf("%.0f", s.steady), fmt.Sprintf("%.1f", s.wall)}
		for _, role := range []string{"telegraf", "input", "output", "total", "server"} {
			row = append(row, num(s.cpuPerM, role, "%.2f"))
		}
		for _, role := range []string{"telegraf", "input", "output", "total"} {
			row = append(row, num(s.rssMB, role, "%.1f"))
		}
		row = append(row, fmt.Sprint(s.delivered), fmt.Sprint(s.dropped), "-", "-")
		if s.linesPerWrite > 0 {
			row[len(row)-2] = fmt.Sprintf("%.0f", s.linesPerWrite)
		}
		if s.bytesPerLine > 0 {
			row[len(row)-1] = fmt.Sprintf("%.1f", s.bytesPerLine)
		}
		rows = append(rows, row)
	}
	stock := find(ss, "stock")
	ratio := func(label string, a, b *summary) {
		if a == nil || b == nil {
			return
		}
		row := []string{label, "", ratioText(a.rate, b.rate, a.valid && b.valid),
			ratioText(a.steady, b.steady, a.valid && b.valid && a.steady > 0 && b.steady > 0), ratioText(a.wall, b.wall, true)}
		for _, role := range []string{"telegraf", "input", "output", "total", "server"} {
			row = append(row, ratioOf(a.cpuPerM, b.cpuPerM, role))
		}
		for _, role := range []string{"telegraf", "input", "output", "total"} {
			row = append(row, ratioOf(a.rssMB, b.rssMB, role))
		}
		bytes := ""
		if a.bytesPerLine > 0 && b.bytesPerLine > 0 {
			bytes = ratioText(a.bytesPerLine, b.bytesPerLine, true)
		}
		rows = append(rows, append(row, "", "", "", bytes))
	}
	ratio("ratio ours/stock", find(ss, "ours"), stock)
	ratio("ratio ours (no loop)/stock", find(ss, "ours-noloop"), stock)
	ratio("loop cost ours/ours (no loop)", find(ss, "ours"), find(ss, "ours-noloop"))
	ratio("self-metrics cost ours (stats on)/ours", find(ss, "ours-stats"), find(ss, "ours"))
	ratio("change ours/ours (baseline)", find(ss, "ours"), find(ss, "ours-base"))
	ratio("ratio ceiling/stock", find(ss, "ceiling"), stock)
	ratio("gzip cost ours (gzip)/ours", find(ss, "ours-gzip"), find(ss, "ours"))
	return rows
}

func unique(v []string) []string {
	out := slices.Clone(v)
	slices.Sort(out)
	return slices.Compact(out)
}

func num(m map[string]float64, key, format string) string {
	v, ok := m[key]
	if !ok || math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

func ratioOf(a, b map[string]float64, key string) string {
	x, ok1 := a[key]
	y, ok2 := b[key]
	if !ok1 || !ok2 {
		return "-"
	}
	return ratioText(x, y, true)
}

func ratioText(a, b float64, valid bool) string {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "-"
	}
	s := fmt.Sprintf("%.2fx", a/b)
	if !valid {
		s = "(" + s + ")*"
	}
	return s
}

// targetLines reports issue 15's targets beside the figures they are
// about; they are reported, not asserted. A target whose scenario did not
// run is left out.
func targetLines(ss []summary) []string {
	out := []string{"Targets (issue 15; reported, not asserted):"}
	check := func(target string, ok bool, figure string) {
		verdict := "NOT met"
		if ok {
			verdict = "met"
		}
		out = append(out, fmt.Sprintf("  %s: %s, %s", target, figure, verdict))
	}
	stock, ours, ceiling := find(ss, "stock"), find(ss, "ours"), find(ss, "ceiling")
	if ours != nil {
		note := ""
		if !ours.valid {
			note = " (ours lost messages: not a throughput figure)"
		}
		if stock != nil {
			r := ours.rate / stock.rate
			check("end to end, ours >= 1.6x stock", r >= 1.6, fmt.Sprintf("%.2fx%s", r, note))
		}
		if ceiling != nil {
			r := ours.rate / ceiling.rate
			check("end to end, ours >= 0.65 of the ceiling", r >= 0.65, fmt.Sprintf("%.2f%s", r, note))
		}
		if v := ours.cpuPerM["input"]; v > 0 {
			check("input child in the pipeline <= 1.0 CPU-s per million", v <= 1.0, fmt.Sprintf("%.2f CPU-s/M", v))
		}
		if v := ours.cpuPerM["output"]; v > 0 {
			check("output child in the pipeline <= 0.5 CPU-s per million", v <= 0.5, fmt.Sprintf("%.2f CPU-s/M", v))
		}
	}
	if s := find(ss, "input-alone"); s != nil && s.rate > 0 {
		check("input child alone >= 1.5M msgs/s", s.rate >= 1.5e6, fmt.Sprintf("%.2fM msgs/s", s.rate/1e6))
	}
	if s := find(ss, "output-alone"); s != nil && s.cpuPerM["output"] > 0 {
		perCore := 1e6 / s.cpuPerM["output"]
		check("output child alone >= 3M lines per CPU-second", perCore >= 3e6, fmt.Sprintf("%.2fM lines/CPU-s", perCore/1e6))
	}
	for _, role := range []string{"input", "output"} {
		peak, from := 0.0, ""
		for _, s := range ss {
			if v, ok := s.rssMB[role]; ok && v > peak {
				peak, from = v, s.label
			}
		}
		if from != "" {
			check(role+" child peak RSS <= 40 MB", peak <= 40, fmt.Sprintf("%.1f MB (largest, in %s)", peak, from))
		}
	}
	if noloop := find(ss, "ours-noloop"); ours != nil && noloop != nil {
		out = append(out, fmt.Sprintf("  loop cost (ours/ours without delivery loop, msgs/s): %.2fx, steady (10-90 %% delivered): %.2fx",
			ours.rate/noloop.rate, ours.steady/noloop.steady))
	}
	return out
}

// render prints rows as an aligned text table or as Markdown.
func render(w io.Writer, rows [][]string, markdown bool) {
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len(c))
		}
	}
	for n, r := range rows {
		var b strings.Builder
		for i, c := range r {
			if markdown {
				b.WriteString("| " + c + " ")
				continue
			}
			if i > 0 {
				b.WriteString("  ")
			}
			if i == 0 {
				b.WriteString(c + strings.Repeat(" ", widths[i]-len(c)))
			} else {
				b.WriteString(strings.Repeat(" ", widths[i]-len(c)) + c)
			}
		}
		if markdown {
			b.WriteString("|")
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
		if n == 0 {
			if markdown {
				fmt.Fprintln(w, "|"+strings.Repeat(" --- |", len(r)))
			} else {
				total := 0
				for _, wd := range widths {
					total += wd + 2
				}
				fmt.Fprintln(w, strings.Repeat("-", total-2))
			}
		}
	}
}
