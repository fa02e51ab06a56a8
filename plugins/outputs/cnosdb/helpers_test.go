package cnosdb

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbtest"
	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/execd"
)

// base is a recent time, so that CnosDB 2.3.0's default TTL of 365 days
// keeps the rows tests write.
var base = time.Now().Add(-time.Hour).Truncate(time.Second).UnixNano()

func startServer(t *testing.T, opts cnosdbtest.Options) *cnosdbtest.Server {
	t.Helper()
	s, err := cnosdbtest.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// logBuffer keeps the plugin's log for assertions and echoes it to t.Log.
type logBuffer struct {
	t  *testing.T
	mu sync.Mutex
	sb strings.Builder
}

func (l *logBuffer) Write(b []byte) (int, error) {
	l.mu.Lock()
	l.sb.Write(b)
	l.mu.Unlock()
	l.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sb.String()
}

// newPlugin configures the plugin for urls with fast retries (unless
// extra sets retry options) and a short flush_interval; extra is more TOML.
func newPlugin(t *testing.T, urls []string, extra string) (*CnosDB, *logBuffer) {
	t.Helper()
	quoted := make([]string, len(urls))
	for i, u := range urls {
		quoted[i] = fmt.Sprintf("%q", u)
	}
	if !strings.Contains(extra, "flush_interval") {
		extra += "\nflush_interval = \"20ms\""
	}
	if !strings.Contains(extra, "startup_check") {
		// Most tests count requests, and fake servers answer only writes.
		extra += "\nstartup_check = false"
	}
	if !strings.Contains(extra, "retry_") {
		extra += "\nretry_initial_interval = \"1ms\"\nretry_max_interval = \"10ms\""
	}
	text := fmt.Sprintf("[[outputs.cnosdb]]\nurls = [%s]\n%s\n", strings.Join(quoted, ", "), extra)
	c := New()
	log := &logBuffer{t: t}
	c.Log.SetOutput(log)
	if err := execd.DecodeConfig(text, "outputs", "cnosdb", c); err != nil {
		t.Fatal(err)
	}
	if err := c.Init(); err != nil {
		t.Fatal(err)
	}
	return c, log
}

// running is Run in the background with stdin as a pipe, as Telegraf
// drives it.
type running struct {
	t     *testing.T
	stdin *io.PipeWriter
	stats Stats
	done  chan struct{}
	stop  context.CancelFunc
}

func start(t *testing.T, c *CnosDB) *running {
	t.Helper()
	r, w := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	run := &running{t: t, stdin: w, done: make(chan struct{}), stop: cancel}
	go func() {
		defer close(run.done)
		if err := c.Run(ctx, r, &run.stats); err != nil {
			t.Error(err)
		}
		r.Close()
	}()
	t.Cleanup(func() {
		cancel()
		w.Close()
		<-run.done
	})
	return run
}

func (r *running) write(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.stdin, s); err != nil {
		r.t.Fatal(err)
	}
}

// finish closes stdin, Telegraf's first stop step, and waits for Run.
func (r *running) finish() *Stats {
	r.t.Helper()
	r.stdin.Close()
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		r.t.Fatal("Run did not return after stdin closed")
	}
	return &r.stats
}

// runAll runs the plugin over input and waits for it to finish.
func runAll(t *testing.T, c *CnosDB, input string) *Stats {
	t.Helper()
	r := start(t, c)
	r.write(input)
	return r.finish()
}

// waitFor polls cond; tests must not depend on timing, only wait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// seedLines returns n seed-shaped lines of measurement m, one second apart
// from base, host tag h<i%hosts>.
func seedLines(m string, n, from int) string {
	var sb strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&sb, "%s,host=h%d pressure=%d.5,temperature=23.4,visibility=80.2 %d\n", m, i%3, i, base+int64(i)*int64(time.Second))
	}
	return sb.String()
}

// pressures lists the pressure fields stored for m, sorted, as the index
// i of the line that wrote them: which lines arrived.
func pressures(s cnosdbtest.Target, db, m string) []int {
	var out []int
	for _, row := range s.Rows("", db, m) {
		if f, ok := row.Fields["pressure"].(float64); ok {
			out = append(out, int(f))
		}
	}
	sort.Ints(out)
	return out
}

func seq(from, to int, except ...int) []int {
	skip := map[int]bool{}
	for _, e := range except {
		skip[e] = true
	}
	var out []int
	for i := from; i < to; i++ {
		if !skip[i] {
			out = append(out, i)
		}
	}
	return out
}

func sameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func wantStored(t *testing.T, s cnosdbtest.Target, db, m string, want []int) {
	t.Helper()
	got := pressures(s, db, m)
	if !sameInts(got, want) {
		t.Fatalf("stored %v (%d rows), want %v (%d)", got, len(got), want, len(want))
	}
}
