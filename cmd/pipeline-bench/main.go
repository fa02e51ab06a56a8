// Command pipeline-bench is the measuring half of scripts/bench.sh: the
// script starts Kafka and the CnosDB test server and writes the configs;
// this program loads the topic, runs one measured process tree at a time
// and prints the table.
//
//	pipeline-bench preload -brokers B -topic T -count N [-shape guide|nested] [-partitions 1]
//	pipeline-bench delete-topic -brokers B -topic T
//	pipeline-bench lines -count N [-shape guide|nested] -out FILE
//	pipeline-bench discard -expect N -done FILE
//	pipeline-bench run -name NAME -expect N ... -- COMMAND [ARG...]
//	pipeline-bench table [-markdown] RESULTS.jsonl
//
// See each subcommand's -help. Everything is loopback and local files.
package main

import (
	"fmt"
	"os"
)

const binary = "pipeline-bench"

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	args := os.Args[2:]
	var err error
	switch os.Args[1] {
	case "preload":
		err = preloadCmd(args)
	case "delete-topic":
		err = deleteTopicCmd(args)
	case "lines":
		err = linesCmd(args)
	case "discard":
		err = discardCmd(args)
	case "run":
		err = runCmd(args)
	case "table":
		err = tableCmd(args, os.Stdout)
	case "-h", "-help", "--help", "help":
		usage()
		return
	default:
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s %s: %v\n", binary, os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `Usage: pipeline-bench SUBCOMMAND [flags]

  preload       create a topic and fill it with N guide-shaped or nested JSON messages
  delete-topic  delete a topic preload created
  lines         write N lines of the line protocol the pipeline carries
  discard       read stdin to its end, noting when the N-th line arrived
  run           run one command (Telegraf or a child alone), measure it until N are delivered
  table         print the medians of the runs in a results file, and the ratios

Used by scripts/bench.sh; see docs/performance.md.
`)
}
