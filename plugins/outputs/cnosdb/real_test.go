package cnosdb

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbreal"
)

// The output alone against a real CnosDB (skipped without a binary, see
// internal/cnosdbreal): what the tests above show against the test server,
// with the real server stopped (SIGKILL) and started again for the outages.

// realPoison are lines a CnosDB of version refuses, each for another
// reason: a type conflict with the stored schema (before 2.4.1 the output
// refuses it itself), and on 2.4 the \t escape that Telegraf writes for a
// tab in a tag value (2.3.0 stores it).
func realPoison(version, m string, i int) []string {
	ts := base + int64(i)*int64(time.Second)
	poison := []string{fmt.Sprintf("%s,host=h0 pressure=\"high\" %d\n", m, ts)}
	if !taglessUnsafe(version) {
		poison = append(poison, fmt.Sprintf("%s,host=tab\\there pressure=%d.5 %d\n", m, i, ts+1))
	}
	return poison
}

// 10,000 lines (one or two CnosDB refuses among them), CnosDB killed for 3 s, 10,000
// more, stdin closed: every good line stored, the refused ones counted.
func TestRealOutageStoresEverything(t *testing.T) {
	s := cnosdbreal.Start(t, cnosdbreal.Options{})
	c, log := newPlugin(t, []string{s.URL()}, `database = "sensors"
create_database = true
flush_interval = "1s"
retry_initial_interval = "250ms"
retry_max_interval = "15s"`)
	r := start(t, c)
	lines := strings.SplitAfter(seedLines("m", 10_000, 0), "\n")
	poison := realPoison(s.Version(), "m", 1_000_000)
	r.write(strings.Join(lines[:5000], "") + strings.Join(poison, "") + strings.Join(lines[5000:], ""))
	waitFor(t, "the first lines stored", func() bool { return s.RowCount("", "sensors", "m") > 0 })
	s.Down()
	time.Sleep(3 * time.Second)
	if err := s.Up(); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	waitFor(t, "the first half stored", func() bool { return s.RowCount("", "sensors", "m") >= 10_000 })
	t.Logf("the first half complete %s after CnosDB came back", time.Since(up).Round(time.Millisecond))
	r.write(seedLines("m", 10_000, 10_000))
	stats := r.finish()
	wantStored(t, s, "sensors", "m", seq(0, 20_000))
	if stats.LinesRejected.Load() != int64(len(poison)) || stats.LinesUndelivered.Load() != 0 {
		t.Errorf("rejected %d (want %d), undelivered %d\n%s", stats.LinesRejected.Load(), len(poison), stats.LinesUndelivered.Load(), log)
	}
}

// A real CnosDB that comes back during the shutdown window receives what
// was held; one that does not gets attempts until the deadline, and the
// loss is counted.
func TestRealShutdownWindow(t *testing.T) {
	for _, comesBack := range []bool{true, false} {
		t.Run(fmt.Sprintf("comes back=%v", comesBack), func(t *testing.T) {
			s := cnosdbreal.Start(t, cnosdbreal.Options{})
			c, log := newPlugin(t, []string{s.URL()}, "shutdown_timeout = \"5s\"\nretry_initial_interval = \"1h\"\nretry_max_interval = \"1h\"")
			r := start(t, c)
			r.write(seedLines("m", 10, 0))
			waitFor(t, "the first lines stored", func() bool { return s.RowCount("", "", "m") == 10 })
			s.Down()
			r.write(seedLines("m", 100, 10))
			waitFor(t, "a failed attempt", func() bool { return r.stats.Retries.Load() >= 1 })
			r.stdin.Close()
			if comesBack {
				time.Sleep(time.Second)
				if err := s.Up(); err != nil {
					t.Fatal(err)
				}
			}
			stats := r.finish()
			if !comesBack {
				if stats.LinesUndelivered.Load() != 100 || !strings.Contains(log.String(), "100 lines") || r.stats.Retries.Load() < 3 {
					t.Fatalf("undelivered %d after %d attempts, log:\n%s", stats.LinesUndelivered.Load(), r.stats.Retries.Load(), log)
				}
				return
			}
			wantStored(t, s, "", "m", seq(0, 110))
		})
	}
}

// A body over the real server's write_sql_limit is answered 413 before it
// is read, and the connection closed: the output, which sees only a broken
// pipe, still splits the batch until it fits.
func TestRealBodyOverLimit(t *testing.T) {
	s := cnosdbreal.Start(t, cnosdbreal.Options{MaxBody: "64K"})
	c, _ := newPlugin(t, []string{s.URL()}, "batch_size_bytes = \"4MiB\"\nbatch_size = 40000")
	stats := runAll(t, c, seedLines("m", 30_000, 0))
	if s.RowCount("", "", "m") != 30_000 || stats.LinesRejected.Load() != 0 {
		t.Fatalf("stored %d of 30000, rejected %d", s.RowCount("", "", "m"), stats.LinesRejected.Load())
	}
}

// Wrong password, unknown tenant, missing database: held and retried, the
// reason logged in CnosDB's words; with create_database the database is
// made and everything lands.
func TestRealConfigurationErrors(t *testing.T) {
	s := cnosdbreal.Start(t, cnosdbreal.Options{Password: "right-pw"})
	for _, tc := range []struct {
		name, options, want string
	}{
		{"wrong password", "password = \"wrong-pw\"", "010016"},
		{"unknown tenant", "password = \"right-pw\"\ntenant = \"nobody\"", `and tenant ("nobody")`},
		{"missing database", "password = \"right-pw\"\ndatabase = \"nodb\"", `database "nodb" does not exist`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, log := newPlugin(t, []string{s.URL()}, tc.options+"\nshutdown_timeout = \"2s\"") // room for a loaded 2.4.3 to answer once
			stats := runAll(t, c, seedLines("m", 10, 0))
			if stats.LinesUndelivered.Load() != 10 || stats.LinesRejected.Load() != 0 || !strings.Contains(log.String(), tc.want) {
				t.Fatalf("undelivered %d rejected %d, want 10 and 0 and %q in the log:\n%s",
					stats.LinesUndelivered.Load(), stats.LinesRejected.Load(), tc.want, log)
			}
			if strings.Contains(log.String(), "right-pw") || strings.Contains(log.String(), "wrong-pw") {
				t.Fatal("a password is in the log")
			}
		})
	}
	t.Run("create_database", func(t *testing.T) {
		c, _ := newPlugin(t, []string{s.URL()}, "password = \"right-pw\"\ndatabase = \"made\"\ncreate_database = true")
		runAll(t, c, seedLines("m", 10, 0))
		wantStored(t, s, "made", "m", seq(0, 10))
	})
}

// Lines without tags on every real CnosDB found: 2.3.x would read the
// line after one into its name (stored under a garbage table, both lines
// lost), so the output asks the version first and never sends them there;
// 2.4.1 and later store them.
func TestRealTaglessLines(t *testing.T) {
	cnosdbreal.Require(t)
	for _, version := range cnosdbreal.Versions() {
		t.Run(version, func(t *testing.T) {
			s := cnosdbreal.Start(t, cnosdbreal.Options{Version: version})
			c, _ := newPlugin(t, []string{s.URL()}, "batch_size = 10")
			var input strings.Builder
			for i := range 20 {
				if i%5 == 2 {
					fmt.Fprintf(&input, "m pressure=%d.5 %d\n", i, base+int64(i)*int64(time.Second))
					continue
				}
				input.WriteString(seedLines("m", 1, i))
			}
			stats := runAll(t, c, input.String())
			if tables := s.Measurements("", ""); len(tables) != 1 || tables[0] != "m" {
				t.Fatalf("tables %q: a tagless line ran into the next one", tables)
			}
			if taglessUnsafe(version) {
				wantStored(t, s, "", "m", seq(0, 20, 2, 7, 12, 17))
				if stats.LinesRejected.Load() != 4 {
					t.Fatalf("rejected %d, want the 4 tagless lines", stats.LinesRejected.Load())
				}
				return
			}
			wantStored(t, s, "", "m", seq(0, 20))
		})
	}
}
