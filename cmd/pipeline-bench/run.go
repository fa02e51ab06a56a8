package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// result is one measured run, one JSON line of the results file.
type result struct {
	Scenario string `json:"scenario"`
	Label    string `json:"label"`
	Repeat   int    `json:"repeat"`
	Expect   int64  `json:"expect"`
	// Delivered: lines the server stored, or the sink counted.
	Delivered int64 `json:"delivered"`
	// Rows: SELECT COUNT(*) in the run's database afterwards (-1: not asked).
	Rows     int64 `json:"rows"`
	Rejected int64 `json:"rejected"`
	// Writes: write requests the server answered during the run (0: not
	// observed), to see how a change moves the size of each request.
	Writes int64 `json:"writes"`
	// BodyBytes: write bodies as they came over the wire (compressed when
	// the output compresses), 0 when not observed.
	BodyBytes int64 `json:"body_bytes,omitempty"`
	// Dropped: what Telegraf logged as "Metric buffer overflow".
	Dropped int64 `json:"dropped"`
	// Status: ok (all delivered, nothing dropped), lost, stalled, timeout or exited.
	Status string `json:"status"`
	// Seconds from the start of the command to the last delivery.
	WallSeconds float64 `json:"wall_seconds"`
	// Rate: messages/s from the first delivery seen to the last; see docs/performance.md.
	Rate float64 `json:"rate"`
	// SteadyRate: messages/s from a tenth to nine tenths delivered (0: not seen).
	SteadyRate float64 `json:"steady_rate"`
	// HeadSeconds: from the first delivery seen to a tenth delivered;
	// TailSeconds: from nine tenths to the last (0: not seen). Where a
	// run's rate and its steady rate part, these say which end it was.
	HeadSeconds float64              `json:"head_seconds"`
	TailSeconds float64              `json:"tail_seconds"`
	Roles       map[string]roleStats `json:"roles"`
	Errors      []string             `json:"errors,omitempty"`
	Log         string               `json:"log"`
}

type runOptions struct {
	scenario, label string
	repeat          int
	expect          int64
	mode            string // telegraf, input-alone, output-alone
	observe         string // server, sink, stdout
	serverURL, db   string
	serverPID       int
	sinkFile        string
	stdinFile       string
	logFile         string
	resultFile      string
	matches         []roleMatch
	stall, timeout  time.Duration
	command         []string
}

func runCmd(args []string) error {
	var o runOptions
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.StringVar(&o.scenario, "scenario", "", "scenario key: stock, ours, ours-noloop, ceiling, input-alone, output-alone")
	fs.StringVar(&o.label, "label", "", "what the table calls it")
	fs.IntVar(&o.repeat, "repeat", 1, "repeat number")
	fs.Int64Var(&o.expect, "expect", 0, "messages (lines) the run must deliver")
	fs.StringVar(&o.mode, "mode", "telegraf", "telegraf: the command is Telegraf, its children are classified; input-alone; output-alone")
	fs.StringVar(&o.observe, "observe", "server", "how delivery is seen: server (test server stats), rows (SELECT COUNT(*) of any CnosDB, a real one), sink (discard's -done file), stdout (lines the command prints)")
	fs.StringVar(&o.serverURL, "server", "", "CnosDB (test server, or real with -observe rows) URL")
	fs.StringVar(&o.db, "db", "", "database to create for the run and drop after it")
	fs.IntVar(&o.serverPID, "server-pid", 0, "test server pid, to measure its CPU")
	fs.StringVar(&o.sinkFile, "sink", "", "status file of a discard child")
	fs.StringVar(&o.stdinFile, "stdin", "", "file to give the command as stdin (output-alone)")
	fs.StringVar(&o.logFile, "log", "", "file for the command's output")
	fs.StringVar(&o.resultFile, "result", "", "append the result as a JSON line here")
	inputMatch := fs.String("input-match", "", "command-line substring that marks Telegraf's input child")
	outputMatch := fs.String("output-match", "", "command-line substring that marks Telegraf's output child")
	fs.DurationVar(&o.stall, "stall", 25*time.Second, "give up when nothing new is delivered for this long")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.command = fs.Args()
	o.matches = []roleMatch{{"input", *inputMatch}, {"output", *outputMatch}}
	switch {
	case len(o.command) == 0:
		return errors.New("no command after the flags")
	case o.scenario == "" || o.expect <= 0 || o.logFile == "" || o.resultFile == "":
		return errors.New("-scenario, -expect, -log and -result are required")
	case (o.observe == "server" || o.observe == "rows") && o.serverURL == "":
		return errors.New("-observe server and rows need -server")
	case o.observe == "rows" && o.db == "":
		return errors.New("-observe rows needs -db")
	case o.observe == "sink" && o.sinkFile == "":
		return errors.New("-observe sink needs -sink")
	}
	if o.label == "" {
		o.label = o.scenario
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := measure(ctx, o)
	if res != nil {
		if werr := appendResult(o.resultFile, res); werr != nil && err == nil {
			err = werr
		}
		printResult(res)
	}
	return err
}

func appendResult(path string, r *result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func printResult(r *result) {
	var roles []string
	for _, role := range []string{"telegraf", "input", "output", "server"} {
		if s, ok := r.Roles[role]; ok {
			roles = append(roles, fmt.Sprintf("%s %.2f CPU-s %.0f MB", role, s.CPUSeconds, s.PeakRSSMB))
		}
	}
	fmt.Printf("    %s #%d: %s, %d/%d delivered, %d dropped, %d writes, %.0f msg/s (steady %.0f), wall %.1fs; %s\n",
		r.Label, r.Repeat, r.Status, r.Delivered, r.Expect, r.Dropped, r.Writes, r.Rate, r.SteadyRate, r.WallSeconds, strings.Join(roles, ", "))
	for _, e := range r.Errors {
		fmt.Printf("      log: %s\n", e)
	}
}

// progress is the delivery count over time.
type progress struct {
	start      time.Time
	firstAt    time.Time // first time anything was seen delivered
	firstCount int64
	lastAt     time.Time // last time the count grew
	count      int64
	doneAt     time.Time // when count reached expect
	// When the count first reached a tenth and nine tenths of expect,
	// and what it was then: the steady rate between them.
	at10, at90       time.Time
	count10, count90 int64
}

func (p *progress) observe(now time.Time, count int64, expect int64) {
	if count > p.count {
		if p.firstAt.IsZero() {
			p.firstAt, p.firstCount = now, count
		}
		p.count, p.lastAt = count, now
	}
	if p.doneAt.IsZero() && count >= expect {
		p.doneAt = now
	}
	if p.at10.IsZero() && 10*count >= expect {
		p.at10, p.count10 = now, count
	}
	if p.at90.IsZero() && 10*count >= 9*expect {
		p.at90, p.count90 = now, count
	}
}

// steadyRate: messages per second between a tenth and nine tenths
// delivered. It leaves out the tail as well as the start: the last lines
// can wait for a flush_interval in Telegraf or in the output (a batch
// that is not full), by up to a second, and whether they do depends on
// how the count divides into batches, not on the pipeline's speed (a
// million lines fill the output's 5000-line batches exactly without the
// delivery loop, never with it). 0 when it cannot be told.
func (p *progress) steadyRate() float64 {
	if p.at10.IsZero() || p.at90.IsZero() || p.count90 <= p.count10 {
		return 0
	}
	if secs := p.at90.Sub(p.at10).Seconds(); secs > 0 {
		return float64(p.count90-p.count10) / secs
	}
	return 0
}

// rate: messages per second in the window from the first delivery to the
// last, so that start-up (process start, joining the consumer group) is
// left out alike for every run. The first observation's count is not in
// the window. When everything came in one observation it falls back to
// the whole run.
// ends: seconds from the first delivery to a tenth delivered, and from
// nine tenths to the last.
func (p *progress) ends() (head, tail float64) {
	end := p.lastAt
	if !p.doneAt.IsZero() {
		end = p.doneAt
	}
	if !p.firstAt.IsZero() && !p.at10.IsZero() {
		head = p.at10.Sub(p.firstAt).Seconds()
	}
	if !p.at90.IsZero() {
		tail = end.Sub(p.at90).Seconds()
	}
	return head, tail
}

func (p *progress) rate() float64 {
	end := p.lastAt
	if !p.doneAt.IsZero() {
		end = p.doneAt
	}
	if secs := end.Sub(p.firstAt).Seconds(); !p.firstAt.IsZero() && secs > 0 && p.count > p.firstCount {
		return float64(p.count-p.firstCount) / secs
	}
	if secs := end.Sub(p.start).Seconds(); secs > 0 {
		return float64(p.count) / secs
	}
	return 0
}

func measure(ctx context.Context, o runOptions) (*result, error) {
	logf, err := os.Create(o.logFile)
	if err != nil {
		return nil, err
	}
	defer logf.Close()

	var server *testServer
	var base serverStats
	if o.serverURL != "" {
		server = &testServer{url: strings.TrimRight(o.serverURL, "/"), client: &http.Client{Timeout: 10 * time.Second}}
		if o.db != "" {
			if err := server.sql("", "CREATE DATABASE IF NOT EXISTS "+o.db); err != nil {
				return nil, fmt.Errorf("creating database %s: %w", o.db, err)
			}
			defer func() {
				if err := server.sql("", "DROP DATABASE IF EXISTS "+o.db); err != nil {
					fmt.Fprintf(os.Stderr, "%s: dropping database %s: %v\n", binary, o.db, err)
				}
			}()
		}
		if o.observe != "rows" {
			if base, err = server.stats(); err != nil {
				return nil, fmt.Errorf("test server stats: %w", err)
			}
		}
	}
	if o.sinkFile != "" {
		os.Remove(o.sinkFile)
	}
	var serverCPUBefore uint64
	if o.serverPID > 0 {
		if st, err := readStat(o.serverPID); err == nil {
			serverCPUBefore = st.cpuTicks
		}
	}

	cmd := exec.Command(o.command[0], o.command[1:]...)
	// Its own process group: Ctrl-C reaches us, we stop it in order, and
	// whatever it leaves behind can be killed as a group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = logf
	if o.observe != "stdout" {
		cmd.Stdout = logf
	}
	var stdinPipe io.WriteCloser
	var stdoutPipe io.ReadCloser
	switch {
	case o.stdinFile != "":
		f, err := os.Open(o.stdinFile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		cmd.Stdin = f
	case o.mode != "telegraf":
		// An execd input stops when its stdin closes: keep it open.
		if stdinPipe, err = cmd.StdinPipe(); err != nil {
			return nil, err
		}
	}
	if o.observe == "stdout" {
		if stdoutPipe, err = cmd.StdoutPipe(); err != nil {
			return nil, err
		}
	}
	rootRole := map[string]string{"telegraf": "telegraf", "input-alone": "input", "output-alone": "output"}[o.mode]
	if rootRole == "" {
		return nil, fmt.Errorf("unknown -mode %q", o.mode)
	}

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait() //nolint:errcheck // the exit is judged by what it delivered
		close(exited)
	}()
	var stdoutLines atomic.Int64
	var stdoutFirst, stdoutFirstLines, stdoutDone atomic.Int64
	if stdoutPipe != nil {
		go countLines(stdoutPipe, o.expect, &stdoutLines, &stdoutFirst, &stdoutFirstLines, &stdoutDone)
	}

	t := newTree(cmd.Process.Pid, rootRole, o.matches)
	prog := progress{start: start}
	res := &result{Scenario: o.scenario, Label: o.label, Repeat: o.repeat, Expect: o.expect, Rows: -1, Log: o.logFile}
	var cpuAtDone map[string]roleStats
	var serverCPUAtDone uint64
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	lastDiscover := time.Time{}
	lastDropCheck := time.Time{}
	lastCount := time.Time{}
	var dropped int64

loop:
	for {
		now := time.Now()
		if now.Sub(lastDiscover) >= 250*time.Millisecond && o.mode == "telegraf" {
			t.discover()
			lastDiscover = now
		}
		t.sample()

		switch o.observe {
		case "server":
			if st, err := server.stats(); err == nil {
				res.Rejected = int64(st.LinesRejected - base.LinesRejected)
				res.Writes = int64(st.WriteRequests - base.WriteRequests)
				res.BodyBytes = st.BodyBytes - base.BodyBytes
				prog.observe(now, int64(st.LinesStored-base.LinesStored), o.expect)
			}
		case "rows":
			// A real CnosDB counts no requests: its rows tell delivery.
			// Counting costs it a scan, so four times a second at most.
			if now.Sub(lastCount) >= 250*time.Millisecond {
				lastCount = now
				if n, err := server.countRows(o.db); err == nil {
					prog.observe(now, n, o.expect)
				}
			}
		case "sink":
			if st, ok := readSink(o.sinkFile); ok {
				prog.observe(now, st.Lines, o.expect)
				if st.FirstNanos > 0 {
					prog.firstAt, prog.firstCount = time.Unix(0, st.FirstNanos), st.FirstLines
				}
				if st.DoneNanos > 0 {
					prog.doneAt = time.Unix(0, st.DoneNanos)
				}
			}
		case "stdout":
			prog.observe(now, stdoutLines.Load(), o.expect)
			if n := stdoutFirst.Load(); n > 0 {
				prog.firstAt, prog.firstCount = time.Unix(0, n), stdoutFirstLines.Load()
			}
			if n := stdoutDone.Load(); n > 0 {
				prog.doneAt = time.Unix(0, n)
			}
		}
		if now.Sub(lastDropCheck) >= time.Second {
			dropped = droppedMetrics(o.logFile)
			lastDropCheck = now
		}

		switch {
		case !prog.doneAt.IsZero():
			res.Status = "ok"
			break loop
		case ctx.Err() != nil:
			res.Status = "interrupted"
			break loop
		case isClosed(exited):
			res.Status = "exited"
			break loop
		case dropped > 0 && prog.count+dropped >= o.expect && now.Sub(prog.lastAt) > 3*time.Second:
			res.Status = "lost"
			break loop
		case now.Sub(start) > o.timeout:
			res.Status = "timeout"
			break loop
		case now.Sub(later(prog.lastAt, start)) > o.stall:
			res.Status = "stalled"
			break loop
		}
		select {
		case <-tick.C:
		case <-exited:
		case <-ctx.Done():
		}
	}
	// CPU is counted up to the last delivery: shutdown work is not the
	// pipeline's per-message cost.
	t.sample()
	cpuAtDone = t.byRole()
	if o.serverPID > 0 {
		if st, err := readStat(o.serverPID); err == nil {
			serverCPUAtDone = st.cpuTicks
		}
	}

	stopTree(cmd, stdinPipe, exited, t)
	// Peak RSS is followed to the exit.
	final := t.byRole()
	res.Roles = map[string]roleStats{}
	for role, s := range cpuAtDone {
		s.PeakRSSMB = final[role].PeakRSSMB
		res.Roles[role] = s
	}
	if serverCPUAtDone > serverCPUBefore {
		res.Roles["server"] = roleStats{CPUSeconds: float64(serverCPUAtDone-serverCPUBefore) / clockTicks, Processes: 1}
	}
	res.Delivered = prog.count
	res.Rate = prog.rate()
	res.SteadyRate = prog.steadyRate()
	res.HeadSeconds, res.TailSeconds = prog.ends()
	end := prog.lastAt
	if !prog.doneAt.IsZero() {
		end = prog.doneAt
	}
	if !end.IsZero() {
		res.WallSeconds = end.Sub(start).Seconds()
	}
	res.Dropped = droppedMetrics(o.logFile)
	if res.Status == "ok" && res.Dropped > 0 {
		// Everything arrived, yet Telegraf dropped some: more than N
		// were in flight (redelivery), which is still a loss to report.
		res.Status = "lost"
	}
	res.Errors = errorLines(o.logFile, 3)
	if server != nil && o.db != "" {
		if n, err := server.countRows(o.db); err == nil {
			res.Rows = n
		}
	}
	if ctx.Err() != nil {
		return res, errors.New("interrupted")
	}
	return res, nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// stopTree ends the run the way Telegraf's users do: SIGTERM to Telegraf
// (which closes its children's stdin), stdin EOF to a lone input. After
// 30 s the whole process group is killed.
func stopTree(cmd *exec.Cmd, stdin io.WriteCloser, exited chan struct{}, t *tree) {
	if !isClosed(exited) {
		if stdin != nil {
			stdin.Close()
		} else {
			cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // may have exited
		}
	}
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !isClosed(exited) {
		select {
		case <-exited:
		case <-tick.C:
			t.sample()
			continue
		case <-deadline:
			fmt.Fprintf(os.Stderr, "%s: pid %d did not stop within 30s of being asked: SIGKILL\n", binary, cmd.Process.Pid)
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) //nolint:errcheck // best effort
			<-exited
		}
	}
	// Children that outlived Telegraf (they should not) go with the group.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) //nolint:errcheck // usually nothing is left
}

// countLines reads r to its end, counting newlines and noting when the
// first bytes and the expect-th line arrived (unix nanoseconds).
func countLines(r io.Reader, expect int64, lines, first, firstLines, done *atomic.Int64) {
	buf := make([]byte, 256<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			now := time.Now().UnixNano()
			c := int64(bytes.Count(buf[:n], []byte{'\n'}))
			if first.Load() == 0 {
				firstLines.Store(c)
				first.Store(now)
			}
			total := lines.Add(c)
			if total >= expect && done.Load() == 0 {
				done.Store(now)
			}
		}
		if err != nil {
			return
		}
	}
}

func readSink(path string) (sinkStatus, bool) {
	var st sinkStatus
	b, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(b, &st) != nil {
		return st, false
	}
	return st, true
}

var overflowRE = regexp.MustCompile(`Metric buffer overflow; (\d+) metrics have been dropped`)

// droppedMetrics adds up Telegraf's buffer overflow reports in its log.
func droppedMetrics(logFile string) int64 {
	b, err := os.ReadFile(logFile)
	if err != nil {
		return 0
	}
	var n int64
	for _, m := range overflowRE.FindAllSubmatch(b, -1) {
		v, _ := strconv.ParseInt(string(m[1]), 10, 64)
		n += v
	}
	return n
}

// errorLines returns the first error lines of a Telegraf (or child) log.
// Telegraf 1.27 relays every stderr line of an execd child as E!, so the
// child's own I!/D!/W! lines are not errors; neither is "file already
// closed", which stock execd logs at every shutdown.
func errorLines(logFile string, limit int) []string {
	f, err := os.Open(logFile)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() && len(out) < limit {
		line := sc.Text()
		if !strings.Contains(line, " E! ") && !strings.HasPrefix(line, "E! ") {
			continue
		}
		if strings.Contains(line, `stderr: "I! `) || strings.Contains(line, `stderr: "D! `) ||
			strings.Contains(line, `stderr: "W! `) || strings.Contains(line, "file already closed") {
			continue
		}
		out = append(out, line)
	}
	return out
}

// testServer talks to cmd/cnosdb-test-server.
type testServer struct {
	url    string
	client *http.Client
}

type serverStats struct {
	LinesStored   int   `json:"lines_stored"`
	LinesRejected int   `json:"lines_rejected"`
	WriteRequests int   `json:"write_requests"`
	BodyBytes     int64 `json:"body_bytes"`
}

func (s *testServer) stats() (serverStats, error) {
	var st serverStats
	resp, err := s.client.Get(s.url + "/_test/stats")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("/_test/stats: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func (s *testServer) query(db, statement string) (string, error) {
	u := s.url + "/api/v1/sql"
	if db != "" {
		u += "?db=" + url.QueryEscape(db)
	}
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(statement))
	if err != nil {
		return "", err
	}
	req.SetBasicAuth("root", "")
	req.Header.Set("Accept", "application/csv")
	resp, err := s.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s %s", statement, resp.Status, bytes.TrimSpace(body))
	}
	return string(body), nil
}

func (s *testServer) sql(db, statement string) error {
	_, err := s.query(db, statement)
	return err
}

func (s *testServer) countRows(db string) (int64, error) {
	body, err := s.query(db, "SELECT COUNT(*) FROM kafka_consumer")
	if err != nil {
		return 0, err
	}
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if len(lines) < 2 {
		return 0, fmt.Errorf("count answer %q", body)
	}
	return strconv.ParseInt(strings.Trim(strings.TrimSpace(lines[1]), `"`), 10, 64)
}
