// Command telegraf-cnosdb is the CnosDB output for Telegraf's
// [[outputs.execd]]: it reads line protocol on stdin and writes it to
// CnosDB's HTTP API. See plugins/outputs/cnosdb/README.md.
package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"

	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/execd"
	"github.com/kafka-cnosdb/telegraf-execd/plugins/outputs/cnosdb"
)

const binary = "telegraf-cnosdb"

func main() {
	os.Exit(run())
}

func run() int {
	plugin := cnosdb.New()
	var test bool
	var testWrite string
	testFlags := func(fs *flag.FlagSet) {
		fs.BoolVar(&test, "test", false, "check every URL (reachable, credentials, tenant, database), print a verdict line per URL and exit: 0 when all pass, 1 otherwise; writes nothing")
		fs.StringVar(&testWrite, "test-write", "", "with -test, also write one line to this measurement")
	}
	if code, stop := execd.Configure(binary, "outputs", "cnosdb", plugin, plugin.Log, os.Args[1:], os.Stdout, testFlags); stop {
		return code
	}
	if test || testWrite != "" {
		ctx, stop := execd.StopContext(context.Background())
		defer stop()
		if !plugin.Check(ctx, os.Stdout, testWrite) {
			return 1
		}
		return 0
	}

	// With Telegraf gone, a failed write to stderr must not kill the
	// process before it has delivered what it holds.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := execd.StopContext(context.Background())
	defer stop()
	if _, ok := execd.ParentTelegraf(); ok {
		// A Telegraf killed with SIGKILL sends no signal. Only Telegraf
		// is watched: a shell that started this process in the
		// background may exit while it imports a file.
		var forget context.CancelFunc
		ctx, forget = execd.WhileParentLives(ctx)
		defer forget()
	}
	if n := execd.GrowPipe(os.Stdin); n > 0 {
		plugin.Log.Debugf("stdin is a pipe of %d bytes", n)
	}
	// One thread does a few million lines a second, far more than one
	// Telegraf hands over: more would spin at every hand-off between the
	// reader, the sender and the acknowledgements.
	plugin.Log.Debugf("GOMAXPROCS %d", execd.LimitProcs(1))
	// Waiting for Telegraf parks the reader rather than a thread, and
	// sleeps rather than being woken by each metric when Telegraf writes
	// them one at a time.
	stdin := execd.NewPacedReader(os.Stdin)
	if err := plugin.Run(ctx, stdin, nil); err != nil {
		plugin.Log.Errorf("%v", err)
		return 1
	}
	return 0
}
