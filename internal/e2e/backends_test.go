package e2e

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbreal"
	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbtest"
)

// backend is a CnosDB the end-to-end tests write to: the test server, and
// a real CnosDB when this machine has one (internal/cnosdbreal).
type backend struct {
	name string
	// version is a real CnosDB's ("2.4.3"), "" for the test server. A real
	// one is what it is, whatever dialect a test asks for; its rows are
	// read back over SQL.
	version string
	start   func(t *testing.T, opts cnosdbtest.Options) cnosdbtest.Target
}

// old230 tells a CnosDB that reads bodies as 2.3.0 does: the test server's
// V230 dialect, or a real 2.3.x.
func (b backend) old230(dialect cnosdbtest.Dialect) bool {
	if b.version == "" {
		return dialect == cnosdbtest.V230
	}
	return strings.HasPrefix(b.version, "2.3.")
}

var realSkipOnce sync.Once

// backends lists the CnosDBs to run a test against: the test server, and
// each real CnosDB version found. Without a real binary the real tier is
// left out, and that is said once per run.
func backends(t *testing.T) []backend {
	t.Helper()
	list := []backend{{name: "test-server", start: func(t *testing.T, opts cnosdbtest.Options) cnosdbtest.Target {
		return startServer(t, opts)
	}}}
	if _, why := cnosdbreal.Binary(); why != "" {
		realSkipOnce.Do(func() { fmt.Fprintf(os.Stderr, "e2e: real CnosDB tier skipped: %s\n", why) })
		return list
	}
	for _, v := range cnosdbreal.Versions() {
		list = append(list, backend{name: "real-cnosdb-" + v, version: v, start: startReal(v)})
	}
	return list
}

// startReal starts a real CnosDB of version with opts' databases; the
// dialect, TTL and users of opts are the test server's and mean nothing to
// it.
func startReal(version string) func(t *testing.T, opts cnosdbtest.Options) cnosdbtest.Target {
	return func(t *testing.T, opts cnosdbtest.Options) cnosdbtest.Target {
		t.Helper()
		return startRealVersion(t, version, opts)
	}
}

func startRealVersion(t *testing.T, version string, opts cnosdbtest.Options) cnosdbtest.Target {
	t.Helper()
	srv := cnosdbreal.Start(t, cnosdbreal.Options{Version: version})
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
