package execd

import (
	"bytes"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/gobwas/glob"
)

// Child is another process the parent Telegraf started: one of its execd
// plugins.
type Child struct {
	PID int
	// Package is the Go main package of its executable
	// (".../cmd/telegraf-cnosdb"), "" when that cannot be read.
	Package string
}

// Children lists the parent's child processes, from /proc (Linux only):
// what execd plugins run beside this one. The parent starts its outputs
// before its inputs, so an input sees every output child that is up.
func (p Parent) Children() ([]Child, error) {
	if runtime.GOOS != "linux" {
		return nil, errors.New("listing processes needs /proc")
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var children []Child
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || parentOf(stat) != p.PID {
			continue
		}
		c := Child{PID: pid}
		if info, err := buildinfo.ReadFile(fmt.Sprintf("/proc/%d/exe", pid)); err == nil {
			c.Package = info.Path
		}
		children = append(children, c)
	}
	return children, nil
}

// parentOf reads the parent pid from /proc/PID/stat: the second field
// after the command name, which is in parentheses and may hold anything.
func parentOf(stat []byte) int {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return -1
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 2 {
		return -1
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		return -1
	}
	return ppid
}

// ConfigFiles lists the config files the parent Telegraf was started
// with, in the order Telegraf loads them: from its command line
// (--config, then each --config-directory walked for *.conf as Telegraf
// does), or Telegraf's defaults when it names none. URLs are left out.
func (p Parent) ConfigFiles() ([]string, error) {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.PID))
	if err != nil {
		return nil, err
	}
	return configFiles(strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")), nil
}

// configFiles is ConfigFiles for Telegraf's arguments.
func configFiles(args []string) []string {
	configs, dirs := telegrafConfigArgs(args)
	if len(configs) == 0 && len(dirs) == 0 {
		configs, dirs = defaultConfigPaths()
	}
	var files []string
	for _, c := range configs {
		if !strings.Contains(c, "://") {
			files = append(files, c)
		}
	}
	for _, dir := range dirs {
		files = append(files, walkConfigDir(dir)...)
	}
	return files
}

// defaultConfigPaths is where Telegraf looks when its command line names
// no config: $TELEGRAF_CONFIG_PATH, else ~/.telegraf/telegraf.conf when
// it exists, else /etc/telegraf/telegraf.conf and /etc/telegraf/telegraf.d.
func defaultConfigPaths() (configs, dirs []string) {
	if env := os.Getenv("TELEGRAF_CONFIG_PATH"); env != "" {
		return []string{env}, nil
	}
	if home := os.ExpandEnv("${HOME}/.telegraf/telegraf.conf"); fileExists(home) {
		return []string{home}, nil
	}
	return []string{"/etc/telegraf/telegraf.conf"}, []string{"/etc/telegraf/telegraf.d"}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// walkConfigDir lists dir's *.conf files as Telegraf's WalkDirectory
// does: in walk order, skipping directories named "..*" (Kubernetes
// mounts, which hold every file twice).
func walkConfigDir(dir string) []string {
	var found []string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error { //nolint:errcheck // a directory that cannot be read adds nothing
		switch {
		case err != nil:
		case d.IsDir() && strings.HasPrefix(d.Name(), "..") && path != dir:
			return filepath.SkipDir
		case !d.IsDir() && len(d.Name()) > 5 && strings.HasSuffix(d.Name(), ".conf"):
			found = append(found, path)
		}
		return nil
	})
	return found
}

// telegrafConfigArgs picks --config and --config-directory (one dash or
// two, "=value" or the next argument) out of Telegraf's arguments.
func telegrafConfigArgs(args []string) (configs, dirs []string) {
	for i := 1; i < len(args); i++ {
		name, value, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if !strings.HasPrefix(args[i], "-") || (name != "config" && name != "config-directory") {
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				break
			}
			i++
			value = args[i]
		}
		if name == "config" {
			configs = append(configs, value)
		} else {
			dirs = append(dirs, value)
		}
	}
	return configs, dirs
}

// Output is one [[outputs.*]] table of a Telegraf config.
type Output struct {
	Kind  string // "file", "execd", ...
	Alias string
	File  string
	// Command is an execd output's command, nil for other kinds.
	Command []string
	// NameDrop and NamePass are its measurement filters.
	NameDrop, NamePass []string
	// BatchSize and BufferLimit are the metric_batch_size and
	// metric_buffer_limit Telegraf applies to it: its own, else the
	// agent's, else Telegraf's defaults.
	BatchSize, BufferLimit int
}

// Telegraf's defaults for metric_batch_size and metric_buffer_limit.
const (
	DefaultBatchSize   = 1000
	DefaultBufferLimit = 10000
)

// Name says which output this is in a log line.
func (o Output) Name() string {
	if o.Alias != "" {
		return fmt.Sprintf("outputs.%s (alias %q, in %s)", o.Kind, o.Alias, o.File)
	}
	return fmt.Sprintf("outputs.%s (in %s)", o.Kind, o.File)
}

// Passes reports whether the output's namepass/namedrop let measurement
// through, as Telegraf's filters do (globs).
func (o Output) Passes(measurement string) bool {
	matches := func(patterns []string) bool {
		for _, p := range patterns {
			if g, err := glob.Compile(p); err == nil && g.Match(measurement) {
				return true
			}
		}
		return false
	}
	if len(o.NamePass) > 0 && !matches(o.NamePass) {
		return false
	}
	return !matches(o.NameDrop)
}

// Outputs reads the [[outputs.*]] tables of config files; a file that
// cannot be read or parsed (environment references outside strings, say)
// is left out and named in the error, the others still count.
func Outputs(files []string) ([]Output, error) {
	var outputs []Output
	var errs []error
	// Telegraf reads each file's [agent] table before its plugins, and
	// gives an output the agent's settings of that moment: a later
	// file's [agent] does not reach the outputs of earlier ones. Zero is
	// Telegraf's default.
	var agentBatch, agentBuffer int64
	for _, file := range files {
		text, err := os.ReadFile(file)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var doc struct {
			Agent   map[string]any `toml:"agent"`
			Outputs map[string]any `toml:"outputs"`
		}
		if _, err := toml.Decode(ExpandEnv(string(text)), &doc); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", file, err))
			continue
		}
		if v, ok := doc.Agent["metric_batch_size"].(int64); ok {
			agentBatch = v
		}
		if v, ok := doc.Agent["metric_buffer_limit"].(int64); ok {
			agentBuffer = v
		}
		kinds := make([]string, 0, len(doc.Outputs))
		for kind := range doc.Outputs {
			kinds = append(kinds, kind)
		}
		slices.Sort(kinds)
		for _, kind := range kinds {
			for _, table := range tables(doc.Outputs[kind]) {
				o := Output{Kind: kind, File: file, NameDrop: stringList(table["namedrop"]), NamePass: stringList(table["namepass"])}
				o.Alias, _ = table["alias"].(string)
				o.BatchSize = setting(table["metric_batch_size"], agentBatch, DefaultBatchSize)
				o.BufferLimit = setting(table["metric_buffer_limit"], agentBuffer, DefaultBufferLimit)
				if kind == "execd" {
					o.Command = stringList(table["command"])
				}
				outputs = append(outputs, o)
			}
		}
	}
	return outputs, errors.Join(errs...)
}

// tables is an [[outputs.kind]] array of tables, or the single
// [outputs.kind] table of older configs, which Telegraf also takes.
func tables(v any) []map[string]any {
	switch v := v.(type) {
	case []map[string]any:
		return v
	case map[string]any:
		return []map[string]any{v}
	}
	return nil
}

// setting is what Telegraf applies to an output: its own value above
// zero, else the agent's above zero, else the default.
func setting(own any, agent int64, def int) int {
	if n, ok := own.(int64); ok && n > 0 {
		return int(n)
	}
	if agent > 0 {
		return int(agent)
	}
	return def
}

func stringList(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
