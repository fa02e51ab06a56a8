package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbtest"
)

// TestMain lets the test binary stand in for the command: the process
// tests start it again with this variable set.
func TestMain(m *testing.M) {
	if os.Getenv("CNOSDB_TEST_SERVER_RUN") == "1" {
		os.Exit(run(os.Args[1:], os.Stderr))
	}
	os.Exit(m.Run())
}

func TestFlags(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"-help"}, &out); code != 0 || !strings.Contains(out.String(), "/_test/down?for=60s") || !strings.Contains(out.String(), "-dialect") {
		t.Fatalf("-help: %d\n%s", code, out.String())
	}
	out.Reset()
	if code := run([]string{"-nope"}, &out); code != 2 {
		t.Fatalf("bad flag: %d", code)
	}
	if code := run([]string{"extra"}, &out); code != 2 {
		t.Fatalf("stray argument: %d", code)
	}
	if code := run([]string{"-dialect", "1.0", "-listen", "127.0.0.1:0"}, &out); code != 1 {
		t.Fatalf("bad dialect: %d", code)
	}
}

func TestVersion(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-version")
	cmd.Env = append(os.Environ(), "CNOSDB_TEST_SERVER_RUN=1")
	out, err := cmd.Output()
	if err != nil || !strings.HasPrefix(string(out), "cnosdb-test-server ") {
		t.Fatalf("%q %v", out, err)
	}
}

// TestServeAndShutdown runs the command, drives it over HTTP as a shell
// script would, and stops it with SIGTERM.
func TestServeAndShutdown(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-listen", "127.0.0.1:0", "-dialect", "2.4", "-db", "telegraf", "-db", "other",
		"-user", "writer", "-password", "pw", "-v")
	cmd.Env = append(os.Environ(), "CNOSDB_TEST_SERVER_RUN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	lines := bufio.NewScanner(stderr)
	var base string
	urlRE := regexp.MustCompile(`serving CnosDB 2\.4 on (http://\S+)`)
	for base == "" && lines.Scan() {
		if m := urlRE.FindStringSubmatch(lines.Text()); m != nil {
			base = m[1]
		}
	}
	if base == "" {
		t.Fatal("no address logged")
	}
	logs := make(chan string, 1)
	go func() {
		var b strings.Builder
		for lines.Scan() {
			b.WriteString(lines.Text() + "\n")
		}
		logs <- b.String()
	}()

	post := func(path, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
		req.SetBasicAuth("writer", "pw")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post("/api/v1/write?db=telegraf", "m f=1"); code != 200 {
		t.Fatalf("write: %d %s", code, body)
	}
	if code, body := post("/api/v1/write?db=other", "m f=1"); code != 200 {
		t.Fatalf("write to the second -db: %d %s", code, body)
	}
	resp, err := http.Get(base + "/_test/rows?db=telegraf&measurement=m")
	if err != nil {
		t.Fatal(err)
	}
	var rows []cnosdbtest.Row
	err = json.NewDecoder(resp.Body).Decode(&rows)
	resp.Body.Close()
	if err != nil || len(rows) != 1 || rows[0].Fields["f"] != 1.0 {
		t.Fatalf("rows %+v %v", rows, err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The log first, to its end: Wait closes the pipe, and a Wait racing
	// the reader lost the last lines.
	var got string
	select {
	case got = <-logs:
	case <-time.After(10 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if !strings.Contains(got, "POST /api/v1/write?db=telegraf -> 200") || !strings.Contains(got, "shutting down") {
		t.Fatalf("logs:\n%s", got)
	}
}
