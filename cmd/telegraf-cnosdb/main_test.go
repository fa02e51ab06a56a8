package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbtest"
	"github.com/kafka-cnosdb/telegraf-execd/internal/proctest"
)

// The test binary doubles as telegraf-cnosdb, so the tests run the real
// process the way Telegraf's outputs.execd does.
func TestMain(m *testing.M) {
	if os.Getenv("TELEGRAF_CNOSDB_TEST_MAIN") == "1" {
		os.Exit(run())
	}
	os.Exit(m.Run())
}

type child struct {
	cmd    *exec.Cmd
	stdin  *os.File
	stderr bytes.Buffer
}

func startChild(t *testing.T, config string) *child {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cnosdb.conf")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: exec.Command(os.Args[0], "-config", path)}
	c.cmd.Env = append(os.Environ(), "TELEGRAF_CNOSDB_TEST_MAIN=1")
	c.cmd.Stderr = &c.stderr
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stdin, c.stdin = r, w
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	t.Cleanup(func() {
		c.stdin.Close()
		c.cmd.Process.Kill()
		c.cmd.Wait()
	})
	return c
}

// wait waits for the exit, as Telegraf would (10 s before SIGKILL).
func (c *child) wait(t *testing.T) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10s after stdin closed; stderr:\n%s", c.stderr.String())
	}
	return c.cmd.ProcessState.ExitCode()
}

func lines(from, n int, ts int64) string {
	var sb strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&sb, "kafka_consumer,host=h pressure=%d,temperature=23.4,visibility=80.2 %d\n", i, ts+int64(i))
	}
	return sb.String()
}

func TestLikeOutputsExecd(t *testing.T) {
	s, err := cnosdbtest.Start(cnosdbtest.Options{Databases: []string{"telegraf"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := startChild(t, fmt.Sprintf("[[outputs.cnosdb]]\nurl = %q\nflush_interval = \"10ms\"\n", s.URL()+"/api/v1/write?db=telegraf"))
	ts := time.Now().Add(-time.Minute).UnixNano()
	// Flushes: one write per metric, a pause between flushes.
	for f := range 4 {
		for _, line := range strings.SplitAfter(lines(f*500, 500, ts), "\n") {
			if line != "" {
				if _, err := c.stdin.WriteString(line); err != nil {
					t.Fatal(err)
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.stdin.Close() // Telegraf's first stop step
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, c.stderr.String())
	}
	if n := len(s.Rows("", "telegraf", "kafka_consumer")); n != 2000 {
		t.Fatalf("%d rows stored, want 2000", n)
	}
	// Telegraf logs every stderr line as an error: a healthy run says nothing.
	if c.stderr.Len() != 0 {
		t.Fatalf("stderr not quiet:\n%s", c.stderr.String())
	}
}

func TestSIGTERMThenStdinClosed(t *testing.T) {
	s, err := cnosdbtest.Start(cnosdbtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := startChild(t, fmt.Sprintf("[[outputs.cnosdb]]\nurls = [%q]\nflush_interval = \"10ms\"\n", s.URL()))
	ts := time.Now().Add(-time.Minute).UnixNano()
	c.stdin.WriteString(lines(0, 100, ts))
	// Rows stored: the child is running and handles signals.
	deadline := time.Now().Add(10 * time.Second)
	for len(s.Rows("", "", "kafka_consumer")) < 100 {
		if time.Now().After(deadline) {
			t.Fatalf("nothing stored; stderr:\n%s", c.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// systemd stopping the whole group: SIGTERM reaches the child while
	// Telegraf still flushes into its stdin.
	c.cmd.Process.Signal(syscall.SIGTERM)
	c.stdin.WriteString(lines(100, 100, ts))
	c.stdin.Close()
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, c.stderr.String())
	}
	if n := len(s.Rows("", "", "kafka_consumer")); n != 200 {
		t.Fatalf("%d rows stored, want 200; stderr:\n%s", n, c.stderr.String())
	}
}

func TestUndeliveredIsReported(t *testing.T) {
	s, err := cnosdbtest.Start(cnosdbtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Down()
	c := startChild(t, fmt.Sprintf("[[outputs.cnosdb]]\nurls = [%q]\nshutdown_timeout = \"200ms\"\n", s.URL()))
	c.stdin.WriteString(lines(0, 30, time.Now().UnixNano()))
	c.stdin.Close()
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(c.stderr.String(), "E! [outputs.cnosdb] shutdown_timeout (200ms) ran out: 30 lines") {
		t.Fatalf("stderr:\n%s", c.stderr.String())
	}
}

func TestBadConfigExits1(t *testing.T) {
	c := startChild(t, "[[outputs.cnosdb]]\nurls = [\"http://127.0.0.1:8902\"]\nprecision = \"s\"\n")
	if code := c.wait(t); code != 1 || !strings.Contains(c.stderr.String(), "precision") {
		t.Fatalf("exit %d, stderr:\n%s", code, c.stderr.String())
	}
}

// -test prints one verdict line per URL on stdout and exits 0 only when
// every URL passes; it reads no stdin and writes nothing to CnosDB.
func TestTestFlag(t *testing.T) {
	s, err := cnosdbtest.Start(cnosdbtest.Options{Databases: []string{"telegraf"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		name, database string
		code           int
		want           string
	}{
		{"good", "telegraf", 0, "ok   " + s.URL() + `: CnosDB 2.3.0, user "root" accepted in tenant "cnosdb", database "telegraf" exists`},
		{"missing database", "nodb", 1, "FAIL " + s.URL() + `: CnosDB 2.3.0, user "root" accepted in tenant "cnosdb"; database "nodb" does not exist`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cnosdb.conf")
			if err := os.WriteFile(path, []byte(fmt.Sprintf("[[outputs.cnosdb]]\nurls = [%q]\ndatabase = %q\n", s.URL(), tc.database)), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-config", path, "-test")
			cmd.Env = append(os.Environ(), "TELEGRAF_CNOSDB_TEST_MAIN=1")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.Run() //nolint:errcheck // the exit code is the point
			if code := cmd.ProcessState.ExitCode(); code != tc.code || !strings.HasPrefix(stdout.String(), tc.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d and %q", code, stdout.String(), stderr.String(), tc.code, tc.want)
			}
		})
	}
	if got := s.Measurements("", "telegraf"); len(got) != 0 {
		t.Fatalf("-test wrote %v", got)
	}
}

// A Telegraf killed with SIGKILL closes the child's stdin, but sends no
// signal, and a child waiting for a free batch (CnosDB down,
// max_buffered_bytes in use) is not reading stdin: it must see its parent
// go, give up on what it holds after shutdown_timeout and exit, rather
// than run on with no one to read its logs.
func TestExitsWhenTelegrafKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs stock Telegraf")
	}
	for _, env := range []string{"TELEGRAF_OLD", "TELEGRAF_NEW"} {
		t.Run(env, func(t *testing.T) {
			telegraf := os.Getenv(env)
			if telegraf == "" {
				t.Skipf("%s not set (scripts/test.sh sets it)", env)
			}
			s, err := cnosdbtest.Start(cnosdbtest.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			s.Down()
			dir := t.TempDir()
			output := filepath.Join(dir, "cnosdb.conf")
			if err := os.WriteFile(output, []byte(fmt.Sprintf("[[outputs.cnosdb]]\nurls = [%q]\nbatch_size_bytes = \"4KiB\"\nmax_buffered_bytes = \"8KiB\"\nshutdown_timeout = \"200ms\"\n", s.URL())), 0o600); err != nil {
				t.Fatal(err)
			}
			config := filepath.Join(dir, "telegraf.conf")
			if err := os.WriteFile(config, []byte(fmt.Sprintf(`[agent]
  interval = "1s"
  flush_interval = "100ms"
  omit_hostname = true
[[inputs.execd]]
  command = ["sh", "-c", "while :; do for i in 1 2 3 4 5 6 7 8 9 10; do echo m,host=h v=1i; done; sleep 0.001; done"]
  data_format = "influx"
  signal = "none"
[[outputs.execd]]
  command = [%q, "-config", %q]
  data_format = "influx"
`, os.Args[0], output)), 0o600); err != nil {
				t.Fatal(err)
			}
			tg := exec.Command(telegraf, "--config", config)
			tg.Env = append(os.Environ(), "TELEGRAF_CNOSDB_TEST_MAIN=1")
			var log bytes.Buffer
			tg.Stdout, tg.Stderr = &log, &log
			if err := tg.Start(); err != nil {
				t.Fatal(err)
			}
			defer tg.Process.Kill()
			pid := childRunning(t, tg.Process.Pid, os.Args[0])
			t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
			// CnosDB refuses, the 8 KiB fill up and the child stops
			// reading stdin.
			time.Sleep(2 * time.Second)
			tg.Process.Kill()
			tg.Wait() //nolint:errcheck // killed
			deadline := time.Now().Add(10 * time.Second)
			for proctest.Alive(pid) {
				if time.Now().After(deadline) {
					t.Fatalf("the output still runs 10 s after Telegraf was killed; Telegraf's log:\n%s", log.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// childRunning waits up to 30 s for a child of ppid started as argv0.
func childRunning(t *testing.T, ppid int, argv0 string) int {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if pid, ok := proctest.Children(ppid)[filepath.Base(argv0)]; ok {
			return pid
		}
	}
	t.Fatalf("no child %s of pid %d", argv0, ppid)
	return 0
}
