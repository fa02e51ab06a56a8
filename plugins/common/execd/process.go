package execd

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/influxdata/telegraf"
)

// Version is set at build time with
// -ldflags "-X github.com/kafka-cnosdb/telegraf-execd/plugins/common/execd.Version=v1.2.3";
// without it the module version from the build info is used.
var Version = ""

// VersionString names the binary, its version and the Go that built it.
func VersionString(binary string) string {
	v := Version
	if v == "" {
		v = "(devel)"
		if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
			v = info.Main.Version
		}
	}
	goVersion := "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		goVersion = info.GoVersion
	}
	return fmt.Sprintf("%s %s (%s)", binary, v, goVersion)
}

// Flags are the command-line conventions of a Telegraf external plugin.
type Flags struct {
	Config       string
	SampleConfig bool
	Version      bool
}

// ParseFlags reads -config, -sample-config and -version, and the flags a
// binary adds of its own (more registers them). It prints the sample
// config or the version itself and reports done, so main only has to
// return.
func ParseFlags(binary, sampleConfig string, args []string, stdout io.Writer, more ...func(*flag.FlagSet)) (f Flags, done bool, err error) {
	fs := flag.NewFlagSet(binary, flag.ContinueOnError)
	fs.StringVar(&f.Config, "config", "", "path to the plugin's config file (one plugin table, see -sample-config)")
	fs.BoolVar(&f.SampleConfig, "sample-config", false, "print a documented sample config and exit")
	fs.BoolVar(&f.Version, "version", false, "print the version and exit")
	for _, register := range more {
		register(fs)
	}
	if err := fs.Parse(args); err != nil {
		return f, true, err
	}
	switch {
	case fs.NArg() > 0:
		return f, true, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case f.Version:
		fmt.Fprintln(stdout, VersionString(binary))
		return f, true, nil
	case f.SampleConfig:
		fmt.Fprint(stdout, sampleConfig)
		return f, true, nil
	case f.Config == "":
		return f, true, fmt.Errorf("-config is required: run with -sample-config for a documented example")
	}
	return f, false, nil
}

// StopContext is cancelled on SIGTERM or SIGINT, the way Telegraf (and a
// user at a terminal) asks a child to stop.
func StopContext(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, syscall.SIGTERM, syscall.SIGINT)
}

// CancelOnEOF cancels when r reaches end of file: Telegraf's first step in
// stopping a child is closing its stdin, 5 s before it sends SIGTERM. It is
// for children that read nothing else from stdin.
func CancelOnEOF(r io.Reader, cancel context.CancelFunc) {
	go func() {
		io.Copy(io.Discard, r) //nolint:errcheck // any end of stdin means stop
		cancel()
	}()
}

// Plugin is what a binary's main needs of its plugin.
type Plugin interface {
	SampleConfig() string
	Init() error
}

// Configure is the start of every main: it handles the flags (more adds a
// binary's own), loads the [[kind.name]] table of -config into plugin and
// runs its Init. When stop is true, main exits with code at once (flags
// handled, or bad config, which is logged through log).
func Configure(binary, kind, name string, plugin Plugin, log telegraf.Logger, args []string, stdout io.Writer, more ...func(*flag.FlagSet)) (code int, stop bool) {
	flags, done, err := ParseFlags(binary, plugin.SampleConfig(), args, stdout, more...)
	switch {
	case err != nil:
		log.Errorf("%v", err)
		return 2, true
	case done:
		return 0, true
	}
	if err := LoadConfig(flags.Config, kind, name, plugin); err != nil {
		log.Errorf("%v", err)
		return 1, true
	}
	if err := plugin.Init(); err != nil {
		log.Errorf("config file %s: %v", flags.Config, err)
		return 1, true
	}
	return 0, false
}
