package cnosdb

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbtest"
	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/delivery"
)

// poisonLines are three lines CnosDB 2.3.0 refuses for what they hold,
// each for another reason: no tags, a time older than the database's TTL,
// and a field whose type differs from the stored one.
func poisonLines(m string, i int) []string {
	ts := base + int64(i)*int64(time.Second)
	return []string{
		fmt.Sprintf("%s pressure=%d.5 %d\n", m, i, ts),
		fmt.Sprintf("%s,host=h0 pressure=%d.5 %d\n", m, i+1, time.Now().Add(-2*365*24*time.Hour).UnixNano()),
		fmt.Sprintf("%s,host=h0 pressure=\"high\" %d\n", m, ts+2),
	}
}

// withPoison is seedLines with the three poison lines put in at a sixth,
// a half and five sixths of the run.
func withPoison(m string, n, from int) string {
	lines := strings.SplitAfter(seedLines(m, n, from), "\n")
	poison := poisonLines(m, 1_000_000)
	at := map[int]string{n / 6: poison[0], n / 2: poison[1], 5 * n / 6: poison[2]}
	var sb strings.Builder
	for i, l := range lines {
		sb.WriteString(at[i])
		sb.WriteString(l)
	}
	return sb.String()
}

// The output alone, as a new user runs it (no checkpoints, nothing to
// replay what it drops), through what issue 16 measured losing every
// line: 10,000 lines while CnosDB answers the first 5 writes with
// 020005, then CnosDB down for 3 s, then 10,000 more lines, then stdin
// closed. Every good line must be stored exactly once, the poison lines
// refused, and delivery must resume soon after CnosDB is back instead of
// after the back-off the overload made grow. With markers, the same run
// acknowledges every checkpoint.
func TestOverloadThenOutage(t *testing.T) {
	for _, tc := range []struct {
		name        string
		withMarkers bool
		// closeAtOnce: the second half and stdin's end follow CnosDB's
		// return at once, as in the issue, after an outage long enough
		// (8 s) for the back-off to grow past shutdown_timeout, as it had
		// there; otherwise the test waits for the first half to be stored.
		closeAtOnce bool
	}{{"alone", false, false}, {"at-once", false, true}, {"acked", true, false}} {
		withMarkers := tc.withMarkers
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, cnosdbtest.Options{Dialect: cnosdbtest.V230})
			var in *fakeInput
			if withMarkers {
				in = listen(t)
			}
			// The defaults, spelled out so the test helper keeps them.
			c, log := newPlugin(t, []string{s.URL()}, `database = "sensors"
create_database = true
flush_interval = "1s"
retry_initial_interval = "250ms"
retry_max_interval = "15s"`)
			r := start(t, c)
			s.Overload(5)
			firstHalf := withPoison("m", 10_000, 0)
			if withMarkers {
				firstHalf += in.marker(1, 10_003)
			}
			r.write(firstHalf)
			waitFor(t, "five overload answers", func() bool { return s.Stats().Count(422, "020005") >= 5 })
			s.Down()
			if tc.closeAtOnce {
				time.Sleep(8 * time.Second)
			} else {
				time.Sleep(3 * time.Second)
			}
			if err := s.Up(); err != nil {
				t.Fatal(err)
			}
			if !tc.closeAtOnce {
				up := time.Now()
				waitFor(t, "the first half stored", func() bool { return s.RowCount("", "sensors", "m") >= 10_000 })
				t.Logf("first half stored %s after CnosDB came back", time.Since(up).Round(time.Millisecond))
			}
			second := seedLines("m", 10_000, 10_000)
			if withMarkers {
				second += in.marker(2, 10_000)
			}
			r.write(second)
			stats := r.finish()

			wantStored(t, s, "sensors", "m", seq(0, 20_000))
			if got := s.Stats().LinesStored; got != 20_000 {
				t.Errorf("CnosDB stored %d lines, want each of the 20000 once", got)
			}
			if stats.LinesRejected.Load() != 3 || stats.LinesUndelivered.Load() != 0 || stats.LinesWritten.Load() != 20_000 {
				t.Errorf("written %d, rejected %d (want 3), undelivered %d", stats.LinesWritten.Load(),
					stats.LinesRejected.Load(), stats.LinesUndelivered.Load())
			}
			if !strings.Contains(log.String(), "again, after") || !strings.Contains(log.String(), "lines held meanwhile") {
				t.Errorf("the resumption was not logged with what was held")
			}
			if withMarkers {
				waitFor(t, "both acknowledgements", func() bool { return len(in.of(delivery.Ack)) == 2 })
				if lost := in.of(delivery.Lost); len(lost) > 0 {
					t.Errorf("lost %v", lost)
				}
			}
		})
	}
}

// A back-off grown long does not hide CnosDB's return: pings between the
// attempts find it back, and the held lines go at once.
func TestUnreachableServerProbedBetweenAttempts(t *testing.T) {
	s := startServer(t, cnosdbtest.Options{})
	s.Down()
	// Waits of half an hour and more: only a probe can end them in time.
	c, _ := newPlugin(t, []string{s.URL()}, "retry_initial_interval = \"1h\"\nretry_max_interval = \"2h\"")
	r := start(t, c)
	r.write(seedLines("m", 100, 0))
	waitFor(t, "a failed attempt", func() bool { return r.stats.Retries.Load() >= 1 })
	if err := s.Up(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the lines stored after CnosDB came back", func() bool { return s.RowCount("", "", "m") == 100 })
	r.finish()
	if got := r.stats.Requests.Load(); got != 2 {
		t.Errorf("%d write requests, want 2: the failed one and the one after the probe", got)
	}
}

// An overloaded server answers pings as readily as ever: it is not probed,
// it is backed off from, and the next write finds it well again.
func TestOverloadIsNotProbed(t *testing.T) {
	s := startServer(t, cnosdbtest.Options{})
	s.Overload(3)
	c, _ := newPlugin(t, []string{s.URL()}, "retry_initial_interval = \"50ms\"\nretry_max_interval = \"200ms\"")
	stats := runAll(t, c, seedLines("m", 10, 0))
	wantStored(t, s, "", "m", seq(0, 10))
	if got := stats.Requests.Load(); got != 4 {
		t.Errorf("%d write requests, want 4: three overloaded, one stored", got)
	}
}

// Once stdin closes (or SIGTERM comes), the shutdown budget is spent on
// attempts: a back-off wait of an hour ends at once, and a CnosDB that
// recovers inside shutdown_timeout receives everything held.
func TestShutdownEndsBackoffAndDelivers(t *testing.T) {
	for _, how := range []string{"stdin closed", "SIGTERM"} {
		t.Run(how, func(t *testing.T) {
			s := startServer(t, cnosdbtest.Options{})
			s.Overload(1 << 30)
			c, _ := newPlugin(t, []string{s.URL()}, "retry_initial_interval = \"1h\"\nretry_max_interval = \"1h\"")
			r := start(t, c)
			r.write(seedLines("m", 50, 0))
			waitFor(t, "an overload answer", func() bool { return s.Stats().Count(422, "020005") >= 1 })
			if how == "SIGTERM" {
				r.stop()
			} else {
				r.stdin.Close()
			}
			waitFor(t, "attempts after the stop began", func() bool { return s.Stats().Count(422, "020005") >= 3 })
			s.Overload(0)
			stats := r.finish()
			wantStored(t, s, "", "m", seq(0, 50))
			if stats.LinesUndelivered.Load() != 0 {
				t.Errorf("%d lines undelivered", stats.LinesUndelivered.Load())
			}
		})
	}
}

// A CnosDB that never comes back gets attempts until shutdown_timeout,
// not one attempt and a long sleep, and the loss is logged with its count.
func TestShutdownAttemptsUntilDeadline(t *testing.T) {
	s := startServer(t, cnosdbtest.Options{})
	s.Overload(1 << 30)
	c, log := newPlugin(t, []string{s.URL()}, "shutdown_timeout = \"1s\"\nretry_initial_interval = \"1h\"\nretry_max_interval = \"1h\"")
	r := start(t, c)
	r.write(seedLines("m", 40, 0))
	waitFor(t, "an overload answer", func() bool { return s.Stats().Count(422, "020005") >= 1 })
	stats := r.finish()
	// 1 s of attempts hurryInterval apart: about four; two prove the
	// wait of an hour did not hold.
	if got := s.Stats().Count(422, "020005"); got < 3 {
		t.Errorf("%d overloaded attempts in all, want attempts through the shutdown window", got)
	}
	if stats.LinesUndelivered.Load() != 40 || !strings.Contains(log.String(), "40 lines") {
		t.Errorf("undelivered %d, log:\n%s", stats.LinesUndelivered.Load(), log)
	}
}
