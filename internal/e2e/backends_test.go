package e2e

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbreal"
	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbtest"
)

// backend is a CnosDB the end-to-end tests write to: the test server, and
// a real CnosDB when this machine has one (internal/cnosdbreal).
type backend struct {
	name string
	// real: a real CnosDB (2.4.3 or whatever the binary is), whatever the
	// dialect asked for; its rows are read back over SQL.
	real  bool
	start func(t *testing.T, opts cnosdbtest.Options) cnosdbtest.Target
}

var realSkipOnce sync.Once

// backends lists the CnosDBs to run a test against. Without a real binary
// the real tier is left out, and that is said once per run.
func backends(t *testing.T) []backend {
	t.Helper()
	list := []backend{{name: "test-server", start: func(t *testing.T, opts cnosdbtest.Options) cnosdbtest.Target {
		return startServer(t, opts)
	}}}
	if _, why := cnosdbreal.Binary(); why != "" {
		realSkipOnce.Do(func() { fmt.Fprintf(os.Stderr, "e2e: real CnosDB tier skipped: %s\n", why) })
		return list
	}
	return append(list, backend{name: "real-cnosdb", real: true, start: startReal})
}

// startReal starts a real CnosDB with opts' databases; the dialect, TTL and
// users of opts are the test server's and mean nothing to it.
func startReal(t *testing.T, opts cnosdbtest.Options) cnosdbtest.Target {
	t.Helper()
	srv := cnosdbreal.Start(t, cnosdbreal.Options{})
	for _, db := range opts.Databases {
		if !srv.CreateDatabase("", db) {
			t.Fatalf("creating database %s on the real CnosDB", db)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("real CnosDB log (tail):\n%s", srv.Log())
		}
	})
	return srv
}
