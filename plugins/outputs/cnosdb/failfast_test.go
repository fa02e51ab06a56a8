package cnosdb

import (
	"strings"
	"testing"

	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbreal"
	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbtest"
)

// A config CnosDB refuses is said once, at start, before any line
// arrives, naming the option and value in CnosDB's words; the output then
// holds the data and retries without saying it at every attempt.
func checkStartupRefusals(t *testing.T, s cnosdbtest.Target, password string) {
	for _, tc := range checkCases(password) {
		if tc.write != "" || (password == "" && tc.name == "wrong password") {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			// A healthy start delivers before it stops, however long
			// a loaded real server takes to create a database (within
			// the 10 s Telegraf allows); a refused one holds its
			// lines, and 1 s ends the test sooner.
			timeout := "1s"
			if tc.ok {
				timeout = "9s"
			}
			c, log := newPlugin(t, []string{s.URL()}, tc.options+"startup_check = true\nshutdown_timeout = \""+timeout+"\"\n")
			r := start(t, c)
			if tc.ok {
				r.write(seedLines("m", 10, 0))
				r.finish()
				if text := log.String(); strings.Contains(text, "E! ") || strings.Contains(text, "W! ") {
					t.Fatalf("a healthy start logged:\n%s", text)
				}
				return
			}
			waitFor(t, "the start-up check's line", func() bool { return strings.Contains(log.String(), "start-up check") })
			r.write(seedLines("m", 10, 0))
			waitFor(t, "retries", func() bool { return r.stats.RetriesConfig.Load() >= 3 })
			text := log.String()
			if n := strings.Count(text, "E! "); n != 1 {
				t.Fatalf("%d error lines, want 1:\n%s", n, text)
			}
			for _, want := range append(tc.want[1:], "E! [outputs.cnosdb] start-up check: "+c.endpoints[0].name, "holding the data and retrying until this is fixed") {
				if !strings.Contains(text, want) {
					t.Errorf("log lacks %q:\n%s", want, text)
				}
			}
			if password != "" && strings.Contains(text, password) {
				t.Errorf("the password reached the log")
			}
		})
	}
}

func TestStartupCheckRefusals(t *testing.T) {
	t.Run("test-server", func(t *testing.T) {
		s := startServer(t, cnosdbtest.Options{Dialect: cnosdbtest.V24, Users: map[string]string{"root": "pw"}})
		checkStartupRefusals(t, s, "pw")
	})
	for _, version := range cnosdbreal.Versions() {
		t.Run("real-"+version, func(t *testing.T) {
			opts := cnosdbreal.Options{Version: version, Password: "right-pw"}
			if strings.HasPrefix(version, "2.3.") {
				opts.Password = "" // no password checks there
			}
			checkStartupRefusals(t, cnosdbreal.Start(t, opts), opts.Password)
		})
	}
}
