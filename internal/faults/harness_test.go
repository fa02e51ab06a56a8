package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbreal"
	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbtest"
	"github.com/kafka-cnosdb/telegraf-execd/internal/kafkatest"
	"github.com/kafka-cnosdb/telegraf-execd/internal/proctest"
	"github.com/kafka-cnosdb/telegraf-execd/internal/syncbuf"
)

// slow reports whether the full set with full durations runs (FAULTS_SLOW=1).
func slow() bool { return os.Getenv("FAULTS_SLOW") == "1" }

// pick returns fast in the CI subset and full with FAULTS_SLOW=1.
func pick[T any](fast, full T) T {
	if slow() {
		return full
	}
	return fast
}

// requireSuite skips in -short mode, where nothing outside the process runs.
func requireSuite(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("fault suite: needs the Kafka broker and stock Telegraf")
	}
}

// requireSlow skips scenarios that only run in the full set.
func requireSlow(t *testing.T) {
	t.Helper()
	requireSuite(t)
	if !slow() {
		t.Skip("slow fault scenario: set FAULTS_SLOW=1 (scripts/faults.sh does)")
	}
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
	// buildLabel says which code the binaries are, for the report.
	buildLabel = "working tree"
)

// binaries builds our two commands once per test run: from the working
// tree, or from git revision $FAULTS_REV (e.g. HEAD, to measure the last
// commit while the tree holds work in progress), or takes them from
// $FAULTS_BIN_DIR as they are.
func binaries(t *testing.T) (input, output string) {
	t.Helper()
	buildOnce.Do(func() {
		if dir := os.Getenv("FAULTS_BIN_DIR"); dir != "" {
			binDir, buildLabel = dir, "binaries in "+dir
			return
		}
		binDir, buildErr = os.MkdirTemp("", "faults-bin")
		if buildErr != nil {
			return
		}
		src := "../.."
		if rev := os.Getenv("FAULTS_REV"); rev != "" {
			if src, buildErr = exportRevision(rev); buildErr != nil {
				return
			}
			defer os.RemoveAll(src)
			buildLabel = "revision " + rev
			if out, err := exec.Command("git", "-C", "../..", "rev-parse", "--short", rev).Output(); err == nil {
				buildLabel += " (" + strings.TrimSpace(string(out)) + ")"
			}
		}
		for _, cmd := range []string{"telegraf-kafka-json", "telegraf-cnosdb"} {
			build := exec.Command("go", "build", "-o", filepath.Join(binDir, cmd), "./cmd/"+cmd)
			build.Dir = src
			if out, err := build.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("building %s: %v\n%s", cmd, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	for _, cmd := range []string{"telegraf-kafka-json", "telegraf-cnosdb"} {
		if _, err := os.Stat(filepath.Join(binDir, cmd)); err != nil {
			t.Fatalf("FAULTS_BIN_DIR: %v", err)
		}
	}
	return filepath.Join(binDir, "telegraf-kafka-json"), filepath.Join(binDir, "telegraf-cnosdb")
}

// exportRevision writes the tree of git revision rev to a new directory.
func exportRevision(rev string) (string, error) {
	dir, err := os.MkdirTemp("", "faults-src")
	if err != nil {
		return "", err
	}
	cmd := exec.Command("bash", "-c", `git -C ../.. archive --format=tar "$1" | tar -x -C "$2"`, "export", rev, dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("exporting revision %s: %v\n%s", rev, err, out)
	}
	return dir, nil
}

// stockTelegraf is one stock build to run a scenario with.
type stockTelegraf struct {
	env, path, version string
}

// telegrafs lists the builds a scenario runs with: TELEGRAF_NEW always
// (TELEGRAF_OLD when NEW is not set), and TELEGRAF_OLD too when withOld and
// the full set runs. Without either the test skips.
func telegrafs(t *testing.T, withOld bool) []stockTelegraf {
	t.Helper()
	requireSuite(t)
	var envs []string
	switch {
	case os.Getenv("TELEGRAF_NEW") == "":
		envs = []string{"TELEGRAF_OLD"}
	case withOld && slow():
		envs = []string{"TELEGRAF_NEW", "TELEGRAF_OLD"}
	default:
		envs = []string{"TELEGRAF_NEW"}
	}
	var found []stockTelegraf
	for _, env := range envs {
		if path := os.Getenv(env); path != "" {
			found = append(found, stockTelegraf{env: env, path: path, version: telegrafVersion(t, path)})
		}
	}
	if len(found) == 0 {
		t.Skip("TELEGRAF_NEW/TELEGRAF_OLD not set: export them from scripts/telegraf.sh path (scripts/faults.sh does)")
	}
	return found
}

var versions sync.Map // path -> version

// telegrafVersion is "1.37.2" for `Telegraf 1.37.2 (git: ...)`.
func telegrafVersion(t *testing.T, path string) string {
	if v, ok := versions.Load(path); ok {
		return v.(string)
	}
	out, err := exec.Command(path, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", path, err)
	}
	fields := strings.Fields(string(out))
	v := "unknown"
	if len(fields) >= 2 {
		v = strings.TrimPrefix(fields[1], "v")
	}
	versions.Store(path, v)
	return v
}

// forEachTelegraf runs body as a subtest per stock build, named by version.
func forEachTelegraf(t *testing.T, withOld bool, body func(t *testing.T, tg stockTelegraf)) {
	for _, tg := range telegrafs(t, withOld) {
		t.Run(tg.version, func(t *testing.T) { body(t, tg) })
	}
}

var realSkipOnce sync.Once

// forEachCnosDB runs body against the test server (real "") and, when this
// machine has real CnosDB binaries, against each version found (subtests
// "test", "real-2.4.3", ...); without one that is said once per run.
func forEachCnosDB(t *testing.T, withOld bool, body func(t *testing.T, tg stockTelegraf, real string)) {
	kinds := []string{""}
	if _, why := cnosdbreal.Binary(); why == "" {
		kinds = append(kinds, cnosdbreal.Versions()...)
	} else {
		realSkipOnce.Do(func() { fmt.Fprintf(os.Stderr, "faults: real CnosDB tier skipped: %s\n", why) })
	}
	forEachTelegraf(t, withOld, func(t *testing.T, tg stockTelegraf) {
		for _, real := range kinds {
			name := "test"
			if real != "" {
				name = "real-" + real
			}
			t.Run(name, func(t *testing.T) { body(t, tg, real) })
		}
	})
}

// backendName is "real CnosDB <version>" or "test server", for names and reports.
func (p *pipeline) backendName() string {
	if r, ok := p.srv.(*cnosdbreal.Server); ok {
		v, _, _ := strings.Cut(r.Version(), ",")
		return "real CnosDB " + v
	}
	return "test server " + string(p.fake.Dialect())
}

// telegraf is one running stock Telegraf process.
type telegraf struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the exit, once done is closed
}

func startTelegraf(t *testing.T, binary, configPath string, log *syncbuf.Buffer) *telegraf {
	t.Helper()
	tg := &telegraf{done: make(chan struct{})}
	tg.cmd = exec.Command(binary, "--config", configPath)
	tg.cmd.Stdout, tg.cmd.Stderr = log, log
	if err := tg.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		tg.err = tg.cmd.Wait()
		close(tg.done)
	}()
	t.Cleanup(func() {
		if !tg.exited() {
			tg.stop(t)
		}
	})
	return tg
}

func (tg *telegraf) exited() bool {
	select {
	case <-tg.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, as systemd does, and waits for the exit; it returns
// the children that outlived Telegraf (none, if they stopped cleanly).
func (tg *telegraf) stop(t *testing.T) (orphans []int) {
	t.Helper()
	if tg.exited() {
		return nil
	}
	children := tg.children()
	_ = tg.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-tg.done:
	case <-time.After(40 * time.Second):
		_ = tg.cmd.Process.Kill()
		<-tg.done
		t.Errorf("telegraf did not stop within 40 s of SIGTERM")
	}
	// Telegraf waits for its children; give stragglers a moment, then
	// name and kill them so that nothing outlives the test.
	deadline := time.Now().Add(2 * time.Second)
	for _, pid := range children {
		for proctest.Alive(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if proctest.Alive(pid) {
			orphans = append(orphans, pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return orphans
}

// kill sends SIGKILL, as the OOM killer does, and waits for the exit.
// The children are left to notice on their own.
func (tg *telegraf) kill(t *testing.T) {
	t.Helper()
	if tg.exited() {
		t.Fatal("telegraf exited before it could be killed")
	}
	if err := tg.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-tg.done
}

// children maps our binaries' names to their PIDs among Telegraf's children.
func (tg *telegraf) children() map[string]int {
	return proctest.Children(tg.cmd.Process.Pid)
}

// child waits up to 30 s for the named child to run and returns its PID.
func (tg *telegraf) child(t *testing.T, name string) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if pid, ok := tg.children()[name]; ok {
			return pid
		}
		if time.Now().After(deadline) || tg.exited() {
			t.Fatalf("no child %s of telegraf (pid %d)", name, tg.cmd.Process.Pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// memoryKiB reads VmHWM (peak) and VmRSS (now) and the thread count of pid.
func memoryKiB(pid int) (hwm, rss, threads int) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var n int
		fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &n) //nolint:errcheck // 0 when absent
		switch k {
		case "VmHWM":
			hwm = n
		case "VmRSS":
			rss = n
		case "Threads":
			threads = n
		}
	}
	return hwm, rss, threads
}

// setup describes one scenario's pipeline; the zero value is the guide's
// pipeline on CnosDB 2.3.0 with one partition.
type setup struct {
	partitions int
	dialect    cnosdbtest.Dialect
	users      map[string]string // CnosDB users (password checks on); default root, checks off
	// real names a real CnosDB version (internal/cnosdbreal) to run the
	// scenario against instead of the test server; with users, root gets
	// users["root"] as its password and password checks are on.
	real string
	// brokers and createTopic replace the shared broker (scenario 1).
	brokers     []string
	createTopic func(t *testing.T) string
	// More TOML: for [agent], the [[inputs.kafka_consumer]] and
	// [[outputs.cnosdb]] plugin configs and the two execd blocks.
	agent, input, output, inputExecd, outputExecd string
	// extra is appended to telegraf.conf (more plugin blocks).
	extra string
	// db is the output's database option, when it is not public.
	db string
	// inputConfig replaces the input's plugin config and outputURLs the
	// output's urls line when set (the secrets test).
	inputConfig func(topic, group string) string
	outputURLs  func(srv cnosdbtest.Target) string
}

// pipeline is one scenario: a topic, a CnosDB test server and the
// Telegraf config that joins them.
type pipeline struct {
	t       *testing.T
	name    string
	tg      stockTelegraf
	brokers []string
	topic   string
	group   string
	srv     cnosdbtest.Target
	// fake is srv when it is the test server (faults can be injected into
	// it and it counts what it answered), nil on a real CnosDB.
	fake   *cnosdbtest.Server
	config string // path of telegraf.conf
	// outputConf is the path of the output's plugin config.
	outputConf string
	// db is the database the output writes to ("" for public).
	db   string
	log  *syncbuf.Buffer
	main *telegraf
	sent []int // the numbers that must be stored
	// optional numbers may be stored or not (the 10,000-level nesting).
	optional []int
	started  time.Time
}

func newPipeline(t *testing.T, name string, tg stockTelegraf, s setup) *pipeline {
	t.Helper()
	input, output := binaries(t)
	if s.partitions == 0 {
		s.partitions = 1
	}
	if s.dialect == "" {
		s.dialect = cnosdbtest.V230
	}
	if s.real != "" {
		name += "-real-cnosdb-" + s.real
	}
	p := &pipeline{t: t, name: name, tg: tg, log: &syncbuf.Buffer{}, brokers: s.brokers}
	if p.brokers == nil {
		p.brokers = kafkatest.Brokers(t)
	}
	if s.createTopic != nil {
		p.topic = s.createTopic(t)
	} else {
		p.topic = kafkatest.NewTopic(t, s.partitions)
	}
	p.group = "faults-" + p.topic
	if s.real != "" {
		real := cnosdbreal.Start(t, cnosdbreal.Options{Version: s.real, Password: s.users["root"]})
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("real CnosDB log (tail):\n%s", real.Log())
			}
		})
		p.srv = real
	} else {
		srv, err := cnosdbtest.Start(cnosdbtest.Options{Dialect: s.dialect, Users: s.users})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		p.srv, p.fake = srv, srv
	}
	srv := p.srv

	dir := t.TempDir()
	inputConf := fmt.Sprintf(`[[inputs.kafka_consumer]]
  brokers = [%q]
  topics = [%q]
  consumer_group = %q
  data_format = "json"
  tag_keys = ["n"]
%s`, p.brokers[0], p.topic, p.group, s.input)
	if s.inputConfig != nil {
		inputConf = s.inputConfig(p.topic, p.group)
	}
	urls := fmt.Sprintf("urls = [%q]", srv.URL())
	if s.outputURLs != nil {
		urls = s.outputURLs(srv)
	}
	if s.db != "" {
		urls += fmt.Sprintf("\n  database = %q", s.db)
		p.db = s.db
	}
	outputConf := fmt.Sprintf("[[outputs.cnosdb]]\n  %s\n%s", urls, s.output)
	inputPath := writeFile(t, dir, "kafka-json.conf", inputConf)
	outputPath := writeFile(t, dir, "cnosdb.conf", outputConf)
	p.outputConf = outputPath
	p.config = writeFile(t, dir, "telegraf.conf", fmt.Sprintf(`[agent]
  interval = "1s"
  flush_interval = "1s"
  hostname = "faults"
%s
[[inputs.execd]]
  command = [%q, "-config", %q]
  signal = "none"
  restart_delay = "1s"
  data_format = "influx"
%s
[[outputs.execd]]
  command = [%q, "-config", %q]
  restart_delay = "1s"
  data_format = "influx"
%s
%s
`, s.agent, input, inputPath, s.inputExecd, output, outputPath, s.outputExecd, s.extra))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("telegraf log:\n%s", tail(p.log.String(), 200))
		}
	})
	return p
}

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// tail keeps the last n lines of text.
func tail(text string, n int) string {
	lines := strings.Split(text, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// start runs Telegraf and waits until the input has joined its group.
func (p *pipeline) start() *telegraf {
	p.t.Helper()
	if p.started.IsZero() {
		p.started = time.Now()
	}
	p.main = startTelegraf(p.t, p.tg.path, p.config, p.log)
	p.waitLog("joined group", 60*time.Second)
	return p.main
}

// waitLog waits until the log holds want once more than it did at the call.
func (p *pipeline) waitLog(want string, timeout time.Duration) {
	p.t.Helper()
	p.waitLogCount(want, strings.Count(p.log.String(), want)+1, timeout)
}

// waitLogCount waits until the log holds want n times.
func (p *pipeline) waitLogCount(want string, n int, timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for strings.Count(p.log.String(), want) < n {
		if time.Now().After(deadline) {
			p.t.Fatalf("%q not logged %d times within %v\nlog:\n%s", want, n, timeout, tail(p.log.String(), 80))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// message is the guide's sensor reading, numbered.
func message(n int) []byte {
	return fmt.Appendf(nil, `{"n":%d,"pressure":%d.5,"temperature":23.4,"visibility":%d.2}`, n, n%10, n%100)
}

// send produces the numbered messages [from, to) at rate messages per
// second (0: at once) and records them as ones that must be stored.
func (p *pipeline) send(from, to, rate int) {
	p.t.Helper()
	produce(p.t, p.brokers, p.topic, from, to, rate, message)
	for n := from; n < to; n++ {
		p.sent = append(p.sent, n)
	}
}

// sendAsync is send in the background; wait for the returned channel
// before reading the result.
func (p *pipeline) sendAsync(from, to, rate int) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		produce(p.t, p.brokers, p.topic, from, to, rate, message)
	}()
	for n := from; n < to; n++ {
		p.sent = append(p.sent, n)
	}
	return done
}

// storedCounts maps each n to the number of rows that carry it; rows
// without an n tag are counted under -1.
func (p *pipeline) storedCounts() map[int]int {
	counts := map[int]int{}
	rows := p.srv.Rows("", p.db, "kafka_consumer")
	if r, ok := p.srv.(*cnosdbreal.Server); ok && rows == nil {
		var err error
		rows, err = r.ReadRows("", p.db, "kafka_consumer")
		// A message here is a series (its n tag), and CnosDB 2.3 asks its
		// query memory pool for about 0.5 MB a series scanned, whatever
		// the filter: scripts/cnosdb.sh makes that pool 1 TiB.
		if err != nil {
			p.t.Logf("reading the rows back: %v", err)
		}
	}
	for _, row := range rows {
		n := -1
		if v, ok := row.Tags["n"]; ok {
			fmt.Sscan(v, &n) //nolint:errcheck // -1 when not a number
		}
		counts[n]++
	}
	return counts
}

// waitStored polls until every sent number is stored, or until nothing new
// arrived for stall, or timeout passed. It reports whether all arrived.
func (p *pipeline) waitStored(stall, timeout time.Duration) bool {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	last, lastChange := -1, time.Now()
	for {
		counts := p.storedCounts()
		have := 0
		for _, n := range p.sent {
			if counts[n] > 0 {
				have++
			}
		}
		if have == len(p.sent) {
			return true
		}
		if have != last {
			last, lastChange = have, time.Now()
		}
		if time.Since(lastChange) > stall || time.Now().After(deadline) {
			p.t.Logf("waiting for rows: %d of %d stored, giving up", have, len(p.sent))
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// outage takes CnosDB down for d while the pipeline runs, brings it back,
// and returns how long after its return the first new row was stored: the
// output's delay in noticing (polled every 50 ms; -1 if none came within a
// minute).
func (p *pipeline) outage(d time.Duration) time.Duration {
	p.t.Helper()
	before := p.srv.RowCount("", p.db, "kafka_consumer")
	p.srv.Down()
	time.Sleep(d)
	if err := p.srv.Up(); err != nil {
		p.t.Fatal(err)
	}
	up := time.Now()
	for time.Since(up) < time.Minute {
		if p.srv.RowCount("", p.db, "kafka_consumer") > before {
			return time.Since(up)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return -1
}

// recoveryNote says what outage measured, for the report.
func recoveryNote(d time.Duration) string {
	if d < 0 {
		return "no row stored within a minute of CnosDB's return"
	}
	return fmt.Sprintf("first row stored %s after CnosDB answered again", d.Round(10*time.Millisecond))
}
