package faults

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
)

// result is what a scenario stored, as printed and reported.
type result struct {
	Name     string `json:"name"`
	Telegraf string `json:"telegraf"`
	Build    string `json:"build"` // which code of ours ran
	// Sent counts the messages that must be stored; Stored the distinct
	// ones that were; Duplicates the rows beyond one per message.
	Sent         int   `json:"sent"`
	Stored       int   `json:"stored"`
	Missing      int   `json:"missing"`
	FirstMissing []int `json:"first_missing,omitempty"`
	Duplicates   int   `json:"duplicates"`
	// Unexpected counts rows of messages that must not be stored (or have
	// no n); Redelivered the lines CnosDB stored again onto an existing
	// row (a retry of the same line: invisible in the data).
	Unexpected  int      `json:"unexpected"`
	Redelivered int      `json:"redelivered"`
	Verdict     string   `json:"verdict"`  // complete, duplicated, lost, lost+duplicated
	Expected    string   `json:"expected"` // complete, or why it is not yet
	Outcome     string   `json:"outcome"`  // pass, fail, skip (known loss)
	Logs        []string `json:"logs"`     // the most frequent warnings and errors, with counts
	Notes       []string `json:"notes,omitempty"`
}

// line is the one-line summary the issue asks for.
func (r *result) line() string {
	missing := fmt.Sprint(r.Missing)
	if len(r.FirstMissing) > 0 {
		s := fmt.Sprint(r.FirstMissing)
		if r.Missing > len(r.FirstMissing) {
			s = strings.TrimSuffix(s, "]") + " ...]"
		}
		missing += " " + s
	}
	return fmt.Sprintf("fault: %s@%s: sent %d stored %d missing %s duplicates %d", r.Name, r.Telegraf, r.Sent, r.Stored, missing, r.Duplicates)
}

// expectation is what a scenario must store.
type expectation struct {
	// knownLoss, when set, explains why messages are lost today (a known
	// bug); such a loss skips the test instead of failing it. Without loss
	// the scenario passes either way.
	knownLoss string
	// notes are facts the scenario measured, for the report.
	notes []string
}

// finish stops Telegraf, counts what CnosDB stored, prints and reports the
// result, and applies the expectation.
func (p *pipeline) finish(exp expectation) *result {
	p.t.Helper()
	// What Telegraf says while it stops at the end (pipes closing) is not
	// what the fault made it say.
	duringRun := p.log.String()
	if p.main != nil {
		if orphans := p.main.stop(p.t); len(orphans) > 0 {
			p.t.Errorf("children %v outlived telegraf", orphans)
		}
	}
	r := p.count()
	r.Logs = p.logPatterns(duringRun, 4)
	saveLog(p.t, r, p.log.String())
	r.Notes = exp.notes
	r.Expected = "complete"
	switch {
	case r.Missing == 0:
		r.Outcome = "pass"
	case exp.knownLoss != "":
		r.Outcome = "skip"
		r.Expected = "complete (known loss: " + exp.knownLoss + ")"
	default:
		r.Outcome = "fail"
	}
	report(p.t, r)
	switch r.Outcome {
	case "skip":
		p.t.Skipf("known loss: %s: %s", exp.knownLoss, r.line())
	case "fail":
		p.t.Errorf("messages lost: %s", r.line())
	}
	if r.Unexpected > 0 {
		p.t.Errorf("%d rows of messages that must not be stored", r.Unexpected)
	}
	return r
}

// count compares the rows CnosDB holds with the numbers sent.
func (p *pipeline) count() *result {
	counts := p.storedCounts()
	r := &result{Name: p.name, Telegraf: p.tg.version, Build: buildLabel, Sent: len(p.sent)}
	must := make(map[int]bool, len(p.sent))
	for _, n := range p.optional {
		must[n] = true
	}
	for _, n := range p.sent {
		must[n] = true
		switch c := counts[n]; {
		case c == 0:
			r.Missing++
			if len(r.FirstMissing) < 8 {
				r.FirstMissing = append(r.FirstMissing, n)
			}
		default:
			r.Stored++
			r.Duplicates += c - 1
		}
	}
	rows := 0
	for n, c := range counts {
		rows += c
		if !must[n] {
			r.Unexpected += c
		}
	}
	if p.fake != nil {
		r.Redelivered = p.fake.Stats().LinesStored - rows
	}
	switch {
	case r.Missing > 0 && r.Duplicates > 0:
		r.Verdict = "lost+duplicated"
	case r.Missing > 0:
		r.Verdict = "lost"
	case r.Duplicates > 0:
		r.Verdict = "duplicated"
	default:
		r.Verdict = "complete"
	}
	return r
}

var (
	timestampRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT[\d:.]+Z\s+`)
	// childInfoRE finds a child's info or debug line that Telegraf passed
	// on from its stderr at its own level (1.27.1 logs all of them as E!).
	childInfoRE = regexp.MustCompile(`\] stderr: "?[ID]! `)
	numberRE    = regexp.MustCompile(`\d+`)
	spacesRE    = regexp.MustCompile(`\s+`)
)

// logPatterns lists the most frequent warning and error lines, with
// numbers, the topic and the server address replaced, and their counts.
func (p *pipeline) logPatterns(log string, top int) []string {
	counts := map[string]int{}
	for _, line := range strings.Split(log, "\n") {
		line = timestampRE.ReplaceAllString(line, "")
		if !strings.HasPrefix(line, "E! ") && !strings.HasPrefix(line, "W! ") || isStartupNotice(line) || childInfoRE.MatchString(line) {
			continue
		}
		line = strings.ReplaceAll(line, p.topic, "<topic>")
		line = strings.ReplaceAll(line, p.srv.URL(), "<cnosdb>")
		line = strings.ReplaceAll(line, strings.TrimPrefix(p.srv.URL(), "http://"), "<cnosdb>")
		line = numberRE.ReplaceAllString(line, "N")
		line = spacesRE.ReplaceAllString(line, " ")
		if len(line) > 160 {
			line = line[:160] + "..."
		}
		counts[line]++
	}
	patterns := make([]string, 0, len(counts))
	for k := range counts {
		patterns = append(patterns, k)
	}
	sort.Slice(patterns, func(i, j int) bool {
		if counts[patterns[i]] != counts[patterns[j]] {
			return counts[patterns[i]] > counts[patterns[j]]
		}
		return patterns[i] < patterns[j]
	})
	if len(patterns) > top {
		patterns = patterns[:top]
	}
	for i, k := range patterns {
		patterns[i] = fmt.Sprintf("%dx %s", counts[k], k)
	}
	return patterns
}

var reportMu sync.Mutex

// report prints the summary line and appends it to $FAULTS_REPORT, and the
// details to $FAULTS_REPORT.jsonl.
func report(t *testing.T, r *result) {
	t.Helper()
	line := r.line()
	fmt.Println(line)
	t.Logf("%s (telegraf %s, ours: %s; verdict %s; unexpected %d; redelivered lines %d)", line, r.Telegraf, r.Build, r.Verdict, r.Unexpected, r.Redelivered)
	for _, l := range r.Logs {
		t.Logf("  log: %s", l)
	}
	for _, n := range r.Notes {
		t.Logf("  note: %s", n)
	}
	path := os.Getenv("FAULTS_REPORT")
	if path == "" {
		return
	}
	details, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	reportMu.Lock()
	defer reportMu.Unlock()
	appendLine(t, path, line)
	appendLine(t, path+".jsonl", string(details))
}

// saveLog keeps the scenario's whole log (Telegraf and both children) next
// to $FAULTS_REPORT, in FAULTS_REPORT.logs/<name>@<telegraf>.log.
func saveLog(t *testing.T, r *result, log string) {
	path := os.Getenv("FAULTS_REPORT")
	if path == "" {
		return
	}
	dir := path + ".logs"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("FAULTS_REPORT: %v", err)
		return
	}
	name := filepath.Join(dir, r.Name+"@"+r.Telegraf+".log")
	if err := os.WriteFile(name, []byte(log), 0o644); err != nil {
		t.Errorf("FAULTS_REPORT: %v", err)
	}
}

func appendLine(t *testing.T, path, line string) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Errorf("FAULTS_REPORT: %v", err)
		return
	}
	defer f.Close()
	if _, err := fmt.Fprintln(f, line); err != nil {
		t.Errorf("FAULTS_REPORT: %v", err)
	}
}

// isStartupNotice tells Telegraf's deprecation notices at start-up, which
// every run prints, from what a fault makes it say.
func isStartupNotice(line string) bool {
	return strings.Contains(line, "will be the new default") || strings.Contains(line, "will change to")
}
