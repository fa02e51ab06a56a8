// Command telegraf-kafka-json is the Kafka JSON input for Telegraf's
// [[inputs.execd]]: it consumes Kafka topics and writes line protocol to
// stdout. See plugins/inputs/kafka_consumer/README.md.
package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rcrowley/go-metrics"

	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/execd"
	"github.com/kafka-cnosdb/telegraf-execd/plugins/inputs/kafka_consumer"
)

const binary = "telegraf-kafka-json"

// memoryFloor is the input's soft memory limit while its live heap is
// small (execd.SoftMemoryLimit). At one partition the runtime stays below
// it. At 64, with the fetcher's copy of shared answers (ownAt), it took
// the peak RSS from 43-44 to 39-40 MB for a few percent of CPU; 20 MiB
// took 3 MB more off, for two thirds more CPU.
const memoryFloor = 26 << 20

func main() {
	os.Exit(run())
}

func run() int {
	// sarama keeps go-metrics meters and histograms of every broker
	// connection and request, which nothing here reads: off, they cost
	// neither memory nor a lock per request.
	metrics.UseNilMetrics = true
	plugin := kafka_consumer.New()
	var test bool
	var count int
	testFlags := func(fs *flag.FlagSet) {
		fs.BoolVar(&test, "test", false, "join no consumer group, commit nothing: print the line protocol of up to -count messages of each partition (bad messages on stderr) and exit: 0, or 1 when the brokers or a topic cannot be reached")
		fs.IntVar(&count, "count", 10, "with -test, messages to read from each partition")
	}
	if code, stop := execd.Configure(binary, "inputs", "kafka_consumer", plugin, plugin.Log, os.Args[1:], os.Stdout, testFlags); stop {
		return code
	}
	if test {
		if count < 1 {
			plugin.Log.Errorf("-count: must be at least 1, got %d", count)
			return 2
		}
		ctx, stop := execd.StopContext(context.Background())
		defer stop()
		if err := plugin.DryRun(ctx, os.Stdout, os.Stderr, count); err != nil {
			plugin.Log.Errorf("%v", err)
			return 1
		}
		return 0
	}

	// A write to a closed stdout (Telegraf gone) must return an error we
	// can handle, not kill the process before offsets are committed.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := execd.StopContext(context.Background())
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if n := execd.GrowPipe(os.Stdout); n > 0 {
		plugin.Log.Debugf("stdout is a pipe of %d bytes", n)
	}
	// One thread converts more messages a second than Telegraf takes, and
	// faster than two: the fetcher and the claims hand blocks to each
	// other, and a second thread mostly spins at each hand-off, on cores
	// Kafka and Telegraf share.
	plugin.Log.Debugf("GOMAXPROCS %d", execd.LimitProcs(1))
	if stopLimit, ok := execd.SoftMemoryLimit(memoryFloor); ok {
		defer stopLimit()
		plugin.Log.Debugf("soft memory limit %d MiB, raised as the live heap needs (GOMEMLIMIT unset)", memoryFloor>>20)
	}
	// Waiting for Telegraf to take lines, or for stdin's end, parks a
	// goroutine rather than a thread.
	stdout := execd.Pollable(os.Stdout)
	// Telegraf stops an execd input by closing its stdin first.
	execd.CancelOnEOF(execd.Pollable(os.Stdin), cancel)

	var stats kafka_consumer.Stats
	err := plugin.Run(ctx, stdout, &stats)
	plugin.Log.Infof("stopped: %d messages consumed, %d lines written, %d bad messages skipped (%d to the dead-letter topic, %d failed to go there), %d messages acknowledged by the output, %d unacknowledged (consumed again next time), %d replays; paused %d times for acknowledgements and %d times for Telegraf to pass lines on, %.1f s in all; asked Telegraf to flush %d times",
		stats.Messages.Load(), stats.Lines.Load(), stats.BadMessages.Load(), stats.DeadLettered.Load(), stats.DeadLetterFailures.Load(),
		stats.Acknowledged.Load(), stats.Unacknowledged.Load(), stats.Rewinds.Load(),
		stats.PausesForAcks.Load(), stats.PausesForTelegraf.Load(), time.Duration(stats.PausedNanos.Load()).Seconds(), stats.Nudges.Load())
	if err != nil {
		plugin.Log.Errorf("%v", err)
		return 1
	}
	return 0
}
