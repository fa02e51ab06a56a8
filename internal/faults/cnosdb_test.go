package faults

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbreal"
)

// TestFaultCnosDBWrongPassword: the output's password is wrong (CnosDB
// checks passwords). Nothing may be stored or lost: the output holds the
// lines, says why in one error line with CnosDB's own words (never the
// password), the input commits nothing, and once the user fixes the
// password and restarts Telegraf, every message lands.
func TestFaultCnosDBWrongPassword(t *testing.T) {
	t.Parallel()
	forEachCnosDB(t, false, func(t *testing.T, tg stockTelegraf, real string) {
		if strings.HasPrefix(real, "2.3.") {
			t.Skip(cnosdbreal.ErrNoPasswordChecks)
		}
		const right, wrong = "right-Pw-7", "wrong-Pw-3"
		p := newPipeline(t, "cnosdb-wrong-password", tg, setup{
			real:   real,
			users:  map[string]string{"root": right},
			output: fmt.Sprintf("  password = %q\n", wrong),
		})
		p.start()
		p.send(0, 600, 0)
		// Said once, by the start-up check, maybe before the first message.
		p.waitLogCount("010016", 1, 30*time.Second)
		time.Sleep(3 * time.Second)
		if n := p.srv.RowCount("", "", "kafka_consumer"); n != 0 {
			t.Fatalf("%d rows stored with a wrong password", n)
		}
		log := p.log.String()
		if strings.Contains(log, wrong) || strings.Contains(log, right) {
			t.Errorf("a password appears in the log")
		}
		errorLine := firstLine(log, "010016")
		p.main.stop(t)

		// The user's fix: the right password, and a restart.
		conf, err := os.ReadFile(p.outputConf)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p.outputConf, []byte(strings.Replace(string(conf), wrong, right, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		p.start()
		p.waitStored(30*time.Second, 2*time.Minute)
		p.finish(expectation{notes: []string{p.backendName() + ", password checks on", "while wrong: " + errorLine}})
	})
}

// TestFaultCnosDBMissingDatabase: the output writes to a database that does
// not exist. With create_database it creates it and stores everything;
// without, it holds the lines and says in an error line which database is
// missing and how to fix it, and once someone creates the database every
// message lands, without a restart.
func TestFaultCnosDBMissingDatabase(t *testing.T) {
	t.Parallel()
	forEachCnosDB(t, false, func(t *testing.T, tg stockTelegraf, real string) {
		for _, create := range []bool{true, false} {
			name := "cnosdb-missing-database"
			if create {
				name += "-create_database"
			}
			t.Run(fmt.Sprintf("create_database=%v", create), func(t *testing.T) {
				p := newPipeline(t, name, tg, setup{
					real:   real,
					db:     "sensors",
					output: fmt.Sprintf("  create_database = %v\n", create),
				})
				p.start()
				p.send(0, 600, 0)
				notes := []string{p.backendName()}
				if !create {
					p.waitLogCount(`database "sensors" does not exist`, 1, 30*time.Second)
					notes = append(notes, "while missing: "+firstLine(p.log.String(), `database "sensors" does not exist`))
					if n := p.srv.RowCount("", "sensors", "kafka_consumer"); n != 0 {
						t.Fatalf("%d rows in a database that does not exist", n)
					}
					created := time.Now()
					if !p.srv.CreateDatabase("", "sensors") {
						t.Fatal("creating the database failed")
					}
					for p.srv.RowCount("", "sensors", "kafka_consumer") == 0 && time.Since(created) < time.Minute {
						time.Sleep(50 * time.Millisecond)
					}
					notes = append(notes, fmt.Sprintf("first row stored %s after the database was created (the output's back-off for a configuration error)", time.Since(created).Round(10*time.Millisecond)))
				}
				p.waitStored(30*time.Second, 2*time.Minute)
				p.finish(expectation{notes: notes})
			})
		}
	})
}

// firstLine is the first log line holding substr, without its timestamp.
func firstLine(log, substr string) string {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, substr) {
			return strings.TrimSpace(timestampRE.ReplaceAllString(line, ""))
		}
	}
	return ""
}
