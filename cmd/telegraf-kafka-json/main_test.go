package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// build compiles the binary once per test run.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), binary)
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestCommandLine(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	badConf := filepath.Join(dir, "bad.conf")
	os.WriteFile(badConf, []byte("[[inputs.kafka_consumer]]\nbrokers = [\"127.0.0.1:1\"]\ntopics = [\"t\"]\ndata_format = \"json\"\nmax_undelivered = 5\n"), 0o600) //nolint:errcheck // checked by the run below
	noBroker := filepath.Join(dir, "no-broker.conf")
	os.WriteFile(noBroker, []byte("[[inputs.kafka_consumer]]\nbrokers = [\"127.0.0.1:1\"]\ntopics = [\"t\"]\ndata_format = \"json\"\nmetadata_retry_max = 0\n"), 0o600) //nolint:errcheck // checked by the run below
	tests := []struct {
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{args: []string{"-version"}, wantStdout: binary + " "},
		{args: []string{"-sample-config"}, wantStdout: "[[inputs.kafka_consumer]]"},
		{args: nil, wantCode: 2, wantStderr: "E! [inputs.kafka_consumer] -config is required"},
		{args: []string{"-config", filepath.Join(dir, "missing.conf")}, wantCode: 1, wantStderr: "missing.conf"},
		{args: []string{"-config", badConf}, wantCode: 1, wantStderr: `unknown option(s) ["max_undelivered"]`},
		{args: []string{"-config", noBroker, "-test"}, wantCode: 1, wantStderr: "cannot connect to brokers [127.0.0.1:1]"},
		{args: []string{"-config", noBroker, "-test", "-count", "0"}, wantCode: 2, wantStderr: "-count: must be at least 1"},
	}
	for _, tt := range tests {
		cmd := exec.Command(bin, tt.args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if exitErr, ok := err.(*exec.ExitError); ok {
			code = exitErr.ExitCode()
		}
		if code != tt.wantCode || !strings.Contains(stdout.String(), tt.wantStdout) || !strings.Contains(stderr.String(), tt.wantStderr) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", tt.args, code, stdout.String(), stderr.String())
		}
	}
}

// Telegraf stops an execd child by closing its stdin, and SIGTERM 5 s
// later: either must end the process promptly with exit 0, even while it
// is still waiting for brokers.
func TestStopsOnStdinCloseAndSIGTERM(t *testing.T) {
	bin := build(t)
	conf := filepath.Join(t.TempDir(), "kafka.conf")
	if err := os.WriteFile(conf, []byte("[[inputs.kafka_consumer]]\nbrokers = [\"127.0.0.1:1\"]\ntopics = [\"t\"]\ndata_format = \"json\"\nstartup_error_behavior = \"retry\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, how := range []string{"stdin", "sigterm"} {
		t.Run(how, func(t *testing.T) {
			cmd := exec.Command(bin, "-config", conf)
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(500 * time.Millisecond)
			if how == "stdin" {
				stdin.Close()
			} else {
				cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // checked by Wait
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("exit: %v\n%s", err, stderr.String())
				}
			case <-time.After(5 * time.Second):
				cmd.Process.Kill() //nolint:errcheck // test cleanup
				t.Fatalf("still running 5 s after %s\n%s", how, stderr.String())
			}
			if !strings.Contains(stderr.String(), "I! [inputs.kafka_consumer] stopped:") {
				t.Fatalf("no shutdown summary:\n%s", stderr.String())
			}
		})
	}
}
