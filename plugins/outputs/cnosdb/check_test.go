package cnosdb

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbreal"
	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbtest"
)

// checkCase is one config for Check and what its verdict must say.
type checkCase struct {
	name    string
	options string
	write   string // -test-write
	ok      bool
	want    []string // in the verdict line
}

// checkCases are the good case and every failure Check must name; server
// is the password root needs there (checks on).
func checkCases(password string) []checkCase {
	pw := "password = \"" + password + "\"\n"
	return []checkCase{
		{"good", pw, "", true, []string{"ok   ", `user "root" accepted in tenant "cnosdb"`, `database "public" exists`}},
		{"good, writing", pw, "telegraf_cnosdb_check", true, []string{"ok   ", `wrote one line to "telegraf_cnosdb_check"`}},
		{"wrong password", "password = \"wrong\"\n", "", false, []string{"FAIL ", "010016", `check username ("root") and password`}},
		{"unknown tenant", pw + "tenant = \"nobody\"\n", "", false, []string{"FAIL ", `tenant ("nobody")`}},
		{"missing database", pw + "database = \"nodb\"\n", "", false, []string{"FAIL ", `database "nodb" does not exist in tenant "cnosdb": create it, or set create_database = true`}},
		{"missing database, create_database", pw + "database = \"nodb\"\ncreate_database = true\n", "", true, []string{"ok   ", "create_database = true creates it at start"}},
	}
}

func runCheck(t *testing.T, urls []string, tc checkCase) (string, bool) {
	t.Helper()
	c, _ := newPlugin(t, urls, tc.options)
	var out bytes.Buffer
	ok := c.Check(context.Background(), &out, tc.write)
	return out.String(), ok
}

// -test against the test server, with password checks on: a verdict line
// per URL, naming what is wrong in CnosDB's words and the options at fault.
func TestCheck(t *testing.T) {
	s := startServer(t, cnosdbtest.Options{Dialect: cnosdbtest.V24, Users: map[string]string{"root": "pw"}})
	for _, tc := range checkCases("pw") {
		t.Run(tc.name, func(t *testing.T) {
			out, ok := runCheck(t, []string{s.URL()}, tc)
			if ok != tc.ok || strings.Count(out, "\n") != 1 {
				t.Fatalf("ok %v, want %v:\n%s", ok, tc.ok, out)
			}
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("verdict %q lacks %q", out, want)
				}
			}
			if strings.Contains(out, "pw") && tc.name != "good, writing" {
				t.Errorf("a password in the verdict: %q", out)
			}
		})
	}
	t.Run("written only when asked", func(t *testing.T) {
		if got := s.Measurements("", ""); len(got) != 1 || got[0] != "telegraf_cnosdb_check" {
			t.Fatalf("tables %v: want only the -test-write line", got)
		}
	})
	t.Run("one line per URL, any failing fails", func(t *testing.T) {
		down := startServer(t, cnosdbtest.Options{})
		down.Down()
		out, ok := runCheck(t, []string{s.URL(), down.URL()}, checkCases("pw")[0])
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if ok || len(lines) != 2 || !strings.HasPrefix(lines[0], "ok ") || !strings.HasPrefix(lines[1], "FAIL ") || !strings.Contains(lines[1], "cannot reach it") {
			t.Fatalf("ok %v:\n%s", ok, out)
		}
	})
	t.Run("2.3.0 says what it refuses itself", func(t *testing.T) {
		old := startServer(t, cnosdbtest.Options{Dialect: cnosdbtest.V230})
		out, ok := runCheck(t, []string{old.URL()}, checkCase{options: ""})
		if !ok || !strings.Contains(out, "CnosDB 2.3.0") || !strings.Contains(out, "before 2.4.1") {
			t.Fatalf("ok %v: %s", ok, out)
		}
	})
}

// The same against each real CnosDB found; the password cases where it
// can check passwords (not 2.3, see cnosdbreal.ErrNoPasswordChecks).
func TestCheckRealCnosDB(t *testing.T) {
	cnosdbreal.Require(t)
	for _, version := range cnosdbreal.Versions() {
		t.Run(version, func(t *testing.T) {
			opts := cnosdbreal.Options{Version: version, Password: "right-pw"}
			if strings.HasPrefix(version, "2.3.") {
				opts.Password = ""
			}
			s := cnosdbreal.Start(t, opts)
			for _, tc := range checkCases(opts.Password) {
				if opts.Password == "" && tc.name == "wrong password" {
					continue // without password checks CnosDB takes any password
				}
				t.Run(tc.name, func(t *testing.T) {
					out, ok := runCheck(t, []string{s.URL()}, tc)
					if ok != tc.ok {
						t.Fatalf("ok %v, want %v:\n%s", ok, tc.ok, out)
					}
					for _, want := range tc.want {
						if !strings.Contains(out, want) {
							t.Errorf("verdict %q lacks %q", out, want)
						}
					}
				})
			}
		})
	}
}
