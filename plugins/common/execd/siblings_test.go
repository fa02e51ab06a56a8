package execd

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParentOf(t *testing.T) {
	tests := []struct {
		stat string
		want int
	}{
		{"123 (telegraf-cnosdb) S 45 123 45 0", 45},
		{"123 (a) b) c) R 7 1", 7},
		{"123 (x", -1},
		{"123 (x) S", -1},
	}
	for _, tt := range tests {
		if got := parentOf([]byte(tt.stat)); got != tt.want {
			t.Errorf("parentOf(%q) = %d, want %d", tt.stat, got, tt.want)
		}
	}
}

func TestTelegrafConfigArgs(t *testing.T) {
	configs, dirs := telegrafConfigArgs([]string{"telegraf", "--config", "/a.conf", "-config=/b.conf", "--config-directory", "/d", "--test", "--config"})
	if !slices.Equal(configs, []string{"/a.conf", "/b.conf"}) || !slices.Equal(dirs, []string{"/d"}) {
		t.Fatalf("configs %v dirs %v", configs, dirs)
	}
}

func TestChildrenFindsAChild(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() //nolint:errcheck // cleanup
	children, err := Parent{PID: os.Getpid()}.Children()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range children {
		found = found || c.PID == cmd.Process.Pid
	}
	if !found {
		t.Fatalf("children %v lack the sleep (pid %d)", children, cmd.Process.Pid)
	}
}

func TestOutputsAndFilters(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "telegraf.conf")
	os.WriteFile(main, []byte(`
[[outputs.file]]
  files = ["stdout"]
[[outputs.file]]
  alias = "filtered"
  namedrop = ["kafka_json_*"]
[[outputs.execd]]
  command = ["/usr/bin/telegraf-cnosdb", "-config", "/etc/telegraf/cnosdb.conf"]
[[outputs.discard]]
  namepass = ["cpu"]
`), 0o600)
	broken := filepath.Join(dir, "broken.conf")
	os.WriteFile(broken, []byte("[[outputs.file]]\n  port = ${NOT_SET}\n"), 0o600)
	outputs, err := Outputs([]string{main, broken, filepath.Join(dir, "missing.conf")})
	if err == nil || !strings.Contains(err.Error(), "broken.conf") || !strings.Contains(err.Error(), "missing.conf") {
		t.Fatalf("error %v, want the broken and the missing file named", err)
	}
	var got []string
	for _, o := range outputs {
		got = append(got, o.Kind+":"+o.Alias+":"+strings.Join(o.Command, " "))
		if o.Passes("kafka_json_checkpoint") != (o.Kind == "execd" || (o.Kind == "file" && o.Alias == "")) {
			t.Errorf("%s passes the checkpoint: %v", o.Name(), o.Passes("kafka_json_checkpoint"))
		}
	}
	want := []string{"discard::", "execd::/usr/bin/telegraf-cnosdb -config /etc/telegraf/cnosdb.conf", "file::", "file:filtered:"}
	if !slices.Equal(got, want) {
		t.Fatalf("outputs %v, want %v", got, want)
	}
}

func TestOutputsBatchAndBuffer(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(text), 0o600)
		return path
	}
	defaults := write("defaults.conf", "[[outputs.discard]]\n")
	tests := []struct {
		name       string
		files      []string
		batch, buf int
	}{
		{"Telegraf's defaults", []string{defaults}, 1000, 10000},
		{"the agent's", []string{write("agent.conf", `
[agent]
  metric_batch_size = 2000
  metric_buffer_limit = 30000
[[outputs.execd]]
  command = ["telegraf-cnosdb"]
`)}, 2000, 30000},
		{"the output's own win", []string{write("own.conf", `
[agent]
  metric_batch_size = 2000
[[outputs.execd]]
  command = ["telegraf-cnosdb"]
  metric_batch_size = 5000
  metric_buffer_limit = 50000
`)}, 5000, 50000},
		{"zero is unset", []string{write("zero.conf", `
[agent]
  metric_batch_size = 0
[[outputs.execd]]
  metric_buffer_limit = 0
`)}, 1000, 10000},
		// Telegraf gives an output the [agent] settings of the moment
		// its file is read: a later file's do not reach it.
		{"a later file's agent", []string{write("first.conf", "[agent]\n  metric_batch_size = 3000\n[[outputs.execd]]\n"),
			write("second.conf", "[agent]\n  metric_batch_size = 4000\n")}, 3000, 10000},
		{"an earlier file's agent", []string{write("agent-first.conf", "[agent]\n  metric_batch_size = 3000\n  metric_buffer_limit = 30000\n"),
			write("output-second.conf", "[[outputs.execd]]\n")}, 3000, 30000},
		{"an agent's zero is the default again", []string{write("agent-set.conf", "[agent]\n  metric_batch_size = 3000\n"),
			write("agent-zero.conf", "[agent]\n  metric_batch_size = 0\n[[outputs.execd]]\n")}, 1000, 10000},
		{"a single [outputs.kind] table", []string{write("legacy.conf", "[outputs.execd]\n  metric_batch_size = 2500\n")}, 2500, 10000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outputs, err := Outputs(tt.files)
			if err != nil {
				t.Fatal(err)
			}
			if len(outputs) != 1 {
				t.Fatalf("outputs %v, want one", outputs)
			}
			if o := outputs[0]; o.BatchSize != tt.batch || o.BufferLimit != tt.buf {
				t.Fatalf("batch %d, buffer %d; want %d, %d", o.BatchSize, o.BufferLimit, tt.batch, tt.buf)
			}
		})
	}
}

// The files Telegraf loads, in its order: --config ones, then each
// --config-directory walked (a directory before a file named like it plus
// ".conf", as a walk goes), without Kubernetes' "..data" copies; only with
// neither flag its default files.
func TestConfigFilesLikeTelegraf(t *testing.T) {
	dir := t.TempDir()
	d := filepath.Join(dir, "telegraf.d")
	for _, f := range []string{"a.conf", "more/x.conf", "more.conf", "..2026_12_07/a.conf", "b.conf.available", ".conf"} {
		os.MkdirAll(filepath.Dir(filepath.Join(d, f)), 0o700)
		os.WriteFile(filepath.Join(d, f), nil, 0o600)
	}
	t.Setenv("TELEGRAF_CONFIG_PATH", "/env/telegraf.conf")
	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"a directory alone", []string{"telegraf", "--config-directory", d},
			[]string{filepath.Join(d, "a.conf"), filepath.Join(d, "more", "x.conf"), filepath.Join(d, "more.conf")}},
		{"a file and a URL", []string{"telegraf", "-config=/etc/t.conf", "--config", "https://h/t.conf"}, []string{"/etc/t.conf"}},
		{"neither", []string{"telegraf", "--test"}, []string{"/env/telegraf.conf"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := configFiles(tt.args); !slices.Equal(got, tt.want) {
				t.Fatalf("files %v, want %v", got, tt.want)
			}
		})
	}
}

func TestConfigFilesFromCommandLine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	dir := t.TempDir()
	sub := filepath.Join(dir, "telegraf.d", "more")
	os.MkdirAll(sub, 0o700)
	os.WriteFile(filepath.Join(sub, "x.conf"), nil, 0o600)
	os.WriteFile(filepath.Join(sub, "x.conf.available"), nil, 0o600)
	// A shell that stays itself (no exec of its last command), with
	// Telegraf's arguments after its own.
	cmd := exec.Command("sh", "-c", "sleep 30; true", "telegraf", "--config", "/etc/t.conf", "--config", "http://remote/t.conf", "--config-directory", filepath.Join(dir, "telegraf.d"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() //nolint:errcheck // cleanup
	// Until the child has exec'd, /proc shows this test's command line.
	cmdline := fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if b, _ := os.ReadFile(cmdline); strings.Contains(string(b), "--config-directory") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the child never showed its command line")
		}
	}
	files, err := Parent{PID: cmd.Process.Pid}.ConfigFiles()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/etc/t.conf", filepath.Join(sub, "x.conf")}; !slices.Equal(files, want) {
		t.Fatalf("files %v, want %v", files, want)
	}
}
