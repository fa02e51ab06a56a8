// Command cnosdb-test-server runs the in-memory CnosDB stand-in from
// internal/cnosdbtest on its own, for shell-driven end-to-end tests and the
// demo. See -help for the flags and the /_test/ control endpoints.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbtest"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usageText = `Usage: cnosdb-test-server [flags]

An in-memory stand-in for CnosDB's HTTP API (ping, line-protocol write and a
little SQL), speaking the 2.3.0 or the 2.4 dialect. It keeps everything in
memory and forgets it on exit.

Flags:
%s
Test control endpoints on the same port (no authentication):
  GET  /_test/rows?tenant=&db=&measurement=  stored rows as JSON
  GET  /_test/measurements?tenant=&db=       table names as JSON
  GET  /_test/stats                          answer counters as JSON
  POST /_test/overload?n=3                   next 3 storable writes get 422 020005
  POST /_test/latency?d=2s                   delay every API answer (d=0: off)
  POST /_test/fail?status=503&n=2            next 2 writes get this status, with the request body as answer
  POST /_test/reset                          clear overload, latency and fail
  POST /_test/down?for=60s                   refuse connections for 60s
Empty tenant and db mean cnosdb and public.

Example:
  cnosdb-test-server -listen 127.0.0.1:8902 -db telegraf -v &
  curl -u root: -XPOST 'http://127.0.0.1:8902/api/v1/write?db=telegraf' --data-binary 'm,t=a f=1'
  curl 'http://127.0.0.1:8902/_test/rows?db=telegraf&measurement=m'
`

// stringList collects a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("cnosdb-test-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		dbs       stringList
		listen    = fs.String("listen", "127.0.0.1:8902", "address to listen on")
		dialect   = fs.String("dialect", string(cnosdbtest.V230), "CnosDB dialect: 2.3.0 or 2.4")
		user      = fs.String("user", "root", "user name accepted in Basic auth")
		password  = fs.String("password", "", "password of -user")
		ttl       = fs.Duration("ttl", 0, "TTL of databases created without one (0: 8760h for 2.3.0, none for 2.4; negative: none)")
		maxBody   = fs.Int64("max-body", cnosdbtest.DefaultMaxBody, "largest write body in bytes; larger ones get 413")
		verbose   = fs.Bool("v", false, "log every request")
		showVer   = fs.Bool("version", false, "print the version and exit")
		firstWins = fs.Bool("first-wins", false, "keep the first line of a body with a repeated series and time instead of merging")
		keepEvery = fs.Int("keep-every", 1, "keep only every Nth point written (all are still checked and counted): for benchmarks, so that the rows held do not cost the machine")
	)
	fs.Var(&dbs, "db", "database to create at start in tenant cnosdb (repeatable)")
	fs.Usage = func() {
		var b strings.Builder
		fs.SetOutput(&b)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
		fmt.Fprintf(stderr, usageText, b.String())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "cnosdb-test-server: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *showVer {
		fmt.Fprintf(os.Stdout, "cnosdb-test-server %s (CnosDB dialects %s, %s)\n", version, cnosdbtest.V230, cnosdbtest.V24)
		return 0
	}

	logger := log.New(stderr, "cnosdb-test-server: ", log.LstdFlags|log.Lmicroseconds)
	opts := cnosdbtest.Options{
		Dialect:          cnosdbtest.Dialect(*dialect),
		Addr:             *listen,
		Users:            map[string]string{*user: *password},
		Databases:        dbs,
		MaxBody:          *maxBody,
		DefaultTTL:       *ttl,
		FirstWinsInBatch: *firstWins,
		KeepEvery:        *keepEvery,
		Control:          true,
	}
	if *verbose {
		opts.Logf = logger.Printf
	}
	// Before the address is logged: whoever reads it may stop the server
	// at once.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	srv, err := cnosdbtest.Start(opts)
	if err != nil {
		logger.Print(err)
		return 1
	}
	logger.Printf("serving CnosDB %s on %s", srv.Dialect(), srv.URL())
	<-ctx.Done()
	logger.Print("shutting down")
	done := make(chan error, 1)
	go func() { done <- srv.Close() }()
	select {
	case err := <-done:
		if err != nil {
			logger.Print(err)
			return 1
		}
	case <-time.After(5 * time.Second):
		logger.Print("shutdown timed out")
		return 1
	}
	return 0
}
