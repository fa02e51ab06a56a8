package cnosdb

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbtest"
)

func TestDeliversEverythingOnStdinClose(t *testing.T) {
	for _, d := range []cnosdbtest.Dialect{cnosdbtest.V230, cnosdbtest.V24} {
		t.Run(string(d), func(t *testing.T) {
			s := startServer(t, cnosdbtest.Options{Dialect: d})
			c, _ := newPlugin(t, []string{s.URL()}, "batch_size = 100\nflush_interval = \"1h\"")
			stats := runAll(t, c, seedLines("kafka_consumer", 1050, 0))
			wantStored(t, s, "", "kafka_consumer", seq(0, 1050))
			if stats.LinesWritten.Load() != 1050 || stats.Batches.Load() != 11 || stats.LinesUndelivered.Load() != 0 {
				t.Fatalf("written %d in %d batches, undelivered %d", stats.LinesWritten.Load(), stats.Batches.Load(), stats.LinesUndelivered.Load())
			}
		})
	}
}

// One line CnosDB cannot take, in the middle of a batch: every other line
// is stored, the bad one is logged once and counted.
func TestBadLineInMiddleStoresOthers(t *testing.T) {
	for _, tt := range []struct {
		name    string
		dialect cnosdbtest.Dialect
		bad     string // a valid line-protocol line the server refuses
		reason  string
	}{
		// 2.3.0 keeps a string open after \\" (500, empty body).
		{"V230 unparsable", cnosdbtest.V230, `kafka_consumer,host=h0 pressure=1000.5,note="x\\" ` + fmt.Sprint(base) + "\n", "500 with an empty body"},
		// A string where the table has a float (2.4.3: 050014, 2.3.0: 020004).
		{"V24 type conflict", cnosdbtest.V24, `kafka_consumer,host=h0 pressure="high" ` + fmt.Sprint(base) + "\n", "050014"},
		// 2.3.0 would store it as garbage (it checks types on a table's
		// first line only): refused before it is sent.
		{"V230 type conflict", cnosdbtest.V230, `kafka_consumer,host=h0 pressure="high" ` + fmt.Sprint(base) + "\n", "checks only a table's first line"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, cnosdbtest.Options{Dialect: tt.dialect})
			c, log := newPlugin(t, []string{s.URL()}, "")
			// The table exists with pressure as a float.
			runAll(t, c, seedLines("kafka_consumer", 1, 0))
			c, log = newPlugin(t, []string{s.URL()}, "")
			input := seedLines("kafka_consumer", 50, 1) + tt.bad + seedLines("kafka_consumer", 49, 51)
			stats := runAll(t, c, input)
			wantStored(t, s, "", "kafka_consumer", seq(0, 100))
			if stats.LinesRejected.Load() != 1 || stats.LinesWritten.Load() != 99 {
				t.Fatalf("rejected %d written %d", stats.LinesRejected.Load(), stats.LinesWritten.Load())
			}
			if n := strings.Count(log.String(), "CnosDB rejected a line"); n != 1 || !strings.Contains(log.String(), tt.reason) {
				t.Fatalf("want the line logged once with %q, log:\n%s", tt.reason, log)
			}
		})
	}
}

// Each row of the error table of the CnosDB facts, against the test
// server; each asserts what was stored.
func TestErrorTable(t *testing.T) {
	jsonErr := func(code, msg string) string {
		return fmt.Sprintf(`{"error_code":%q,"error_message":%q}`, code, msg)
	}
	for _, tt := range []struct {
		name     string
		opts     cnosdbtest.Options
		options  string
		setup    func(*cnosdbtest.Server)
		input    string
		db       string
		stored   []int
		rejected int64
		check    func(*testing.T, *cnosdbtest.Server, *Stats, string)
	}{{
		name:    "422 050001 database not found, create_database",
		options: "database = \"telegraf\"\ncreate_database = true",
		input:   seedLines("m", 10, 0), db: "telegraf", stored: seq(0, 10),
	}, {
		name:    "422 050001 database not found, created when a write says so",
		options: "database = \"telegraf\"\ncreate_database = true",
		setup: func(s *cnosdbtest.Server) {
			// The database vanishes after the start-up CREATE: the
			// first write is refused with 050001.
			s.FailWrites(422, jsonErr("050001", `Meta request error: Database not found: "telegraf"`), 1)
		},
		input: seedLines("m", 10, 0), db: "telegraf", stored: seq(0, 10),
		check: func(t *testing.T, s *cnosdbtest.Server, st *Stats, _ string) {
			if s.Stats().Queries < 2 {
				t.Fatalf("want CREATE DATABASE at start and after the 050001, got %d queries", s.Stats().Queries)
			}
		},
	}, {
		name: "422 020004 field type conflict",
		setup: func(s *cnosdbtest.Server) {
			// The column is stored as a float before the batch comes (2.3.0
			// stores another number type in a column new in the same body).
			postLines(t, s.URL(), "m,host=h0 pressure=0.5 "+fmt.Sprint(base)+"\n")
		},
		input:  seedLines("m", 5, 0) + fmt.Sprintf("m,host=h0 pressure=10i %d\n", base+int64(time.Hour)) + seedLines("m", 5, 5),
		stored: seq(0, 10), rejected: 1,
	}, {
		name:   "422 050014 timestamp outside the TTL (2.3.0)",
		input:  seedLines("m", 5, 0) + "m,host=h0 pressure=99.5 1000000000\n" + seedLines("m", 5, 5),
		stored: seq(0, 10), rejected: 1,
		check: func(t *testing.T, s *cnosdbtest.Server, _ *Stats, log string) {
			if !strings.Contains(log, "050014") {
				t.Fatal("the rejection should give CnosDB's code")
			}
		},
	}, {
		name:   "422 020005 overload: backs off, then everything lands",
		setup:  func(s *cnosdbtest.Server) { s.Overload(6) },
		input:  seedLines("m", 20, 0),
		stored: seq(0, 20),
		check: func(t *testing.T, s *cnosdbtest.Server, st *Stats, _ string) {
			if s.Stats().Count(422, "020005") != 6 || st.Retries.Load() != 6 {
				t.Fatalf("overloads answered %d, retries %d", s.Stats().Count(422, "020005"), st.Retries.Load())
			}
		},
	}, {
		name:    "400 040005 with gzip: falls back to identity",
		opts:    cnosdbtest.Options{Dialect: cnosdbtest.V24},
		options: `content_encoding = "gzip"`,
		setup: func(s *cnosdbtest.Server) {
			s.FailWrites(400, jsonErr("040005", "Invalid header: content encoding not support: gzip"), 1)
		},
		input: seedLines("m", 10, 0), stored: seq(0, 10),
		check: func(t *testing.T, _ *cnosdbtest.Server, _ *Stats, log string) {
			if !strings.Contains(log, "older than 2.3.4; sending uncompressed") {
				t.Fatal("want the fallback logged")
			}
		},
	}, {
		name:    "400 040005 without gzip: a request problem, held and retried",
		setup:   func(s *cnosdbtest.Server) { s.FailWrites(400, jsonErr("040005", "Invalid header: x"), 3) },
		input:   seedLines("m", 10, 0),
		stored:  seq(0, 10),
		options: "",
	}, {
		name:   "500 empty body: a malformed line (2.3.0) is isolated",
		input:  seedLines("m", 3, 0) + `m,host=h0 pressure=1.5,s="a\\" ` + fmt.Sprint(base) + "\n" + seedLines("m", 3, 3),
		stored: seq(0, 6), rejected: 1,
	}, {
		name:  "422 040004 malformed (later versions): split until it passes",
		opts:  cnosdbtest.Options{Dialect: cnosdbtest.V24},
		setup: func(s *cnosdbtest.Server) { s.FailWrites(422, jsonErr("040004", "Error parsing message: x"), 1) },
		input: seedLines("m", 10, 0), stored: seq(0, 10),
		check: func(t *testing.T, s *cnosdbtest.Server, _ *Stats, _ string) {
			if s.Stats().WriteRequests != 3 {
				t.Fatalf("want 1 refused request and its 2 halves, got %d requests", s.Stats().WriteRequests)
			}
		},
	}, {
		name:    "413: the batch is split until it fits",
		opts:    cnosdbtest.Options{MaxBody: 1000},
		options: "batch_size_bytes = \"64KiB\"",
		input:   seedLines("m", 100, 0), stored: seq(0, 100),
	}, {
		name:     "413 for one line: rejected alone",
		opts:     cnosdbtest.Options{MaxBody: 1000},
		input:    seedLines("m", 5, 0) + fmt.Sprintf("m,host=h0 pressure=77.5,s=%q %d\n", strings.Repeat("x", 2000), base) + seedLines("m", 5, 5),
		stored:   seq(0, 10),
		rejected: 1,
	}, {
		name:     "422 other error_code: retried max_retries times, then isolated",
		options:  "max_retries = 1\nbatch_size = 2",
		setup:    func(s *cnosdbtest.Server) { s.FailWrites(422, jsonErr("050009", "coordinator: vnode busy"), 4) },
		input:    seedLines("m", 2, 0),
		stored:   []int{1},
		rejected: 1,
	}, {
		name:    "422 other error_code: a passing fault is retried, nothing lost",
		options: "max_retries = 3",
		setup:   func(s *cnosdbtest.Server) { s.FailWrites(422, jsonErr("030021", "Module raft error"), 3) },
		input:   seedLines("m", 10, 0), stored: seq(0, 10),
	}, {
		name: "400 000000 (no Authorization, unreadable request): held and retried",
		setup: func(s *cnosdbtest.Server) {
			s.FailWrites(400, jsonErr("000000", `Missing request header "authorization"`), 2)
		},
		input: seedLines("m", 10, 0), stored: seq(0, 10),
	}, {
		name:  "statuses CnosDB never sends (proxies): 404 held, 503 retried",
		setup: func(s *cnosdbtest.Server) { s.FailWrites(503, "", 2) },
		input: seedLines("m", 10, 0), stored: seq(0, 10),
	}} {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, tt.opts)
			c, log := newPlugin(t, []string{s.URL()}, tt.options)
			if tt.setup != nil {
				tt.setup(s)
			}
			stats := runAll(t, c, tt.input)
			wantStored(t, s, tt.db, "m", tt.stored)
			if stats.LinesRejected.Load() != tt.rejected || stats.LinesUndelivered.Load() != 0 {
				t.Fatalf("rejected %d (want %d), undelivered %d", stats.LinesRejected.Load(), tt.rejected, stats.LinesUndelivered.Load())
			}
			if tt.check != nil {
				tt.check(t, s, stats, log.String())
			}
		})
	}
}

// Without create_database a missing database holds the data (logged as an
// error) until it exists; nothing is dropped.
func TestMissingDatabaseHoldsData(t *testing.T) {
	s := startServer(t, cnosdbtest.Options{})
	c, log := newPlugin(t, []string{s.URL()}, `database = "later"`)
	r := start(t, c)
	r.write(seedLines("m", 10, 0))
	waitFor(t, "refused writes", func() bool { return s.Stats().Count(422, "050001") >= 3 })
	if !strings.Contains(log.String(), `E! [outputs.cnosdb]`) || !strings.Contains(log.String(), "create_database") {
		t.Fatalf("want an error naming create_database, log:\n%s", log)
	}
	s.CreateDatabase("", "later")
	stats := r.finish()
	wantStored(t, s, "later", "m", seq(0, 10))
	if stats.LinesRejected.Load() != 0 {
		t.Fatal("nothing may be rejected")
	}
}

// Wrong credentials and an unknown tenant are configuration errors: the
// data is held, never rejected, and what is left at shutdown is counted.
func TestConfigErrorsHoldData(t *testing.T) {
	for _, tt := range []struct {
		name, options string
		opts          cnosdbtest.Options
		want          string
	}{
		{"wrong password 010016", `password = "wrong"`, cnosdbtest.Options{Users: map[string]string{"root": "right"}}, "010016"},
		{"unknown tenant, 2.3.0 (500 empty body)", `tenant = "nobody"`, cnosdbtest.Options{Dialect: cnosdbtest.V230}, `tenant "nobody" does not exist`},
		{"unknown tenant, 2.4 (010016)", `tenant = "nobody"`, cnosdbtest.Options{Dialect: cnosdbtest.V24}, "The tenant nobody not found"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, tt.opts)
			c, log := newPlugin(t, []string{s.URL()}, tt.options+"\nshutdown_timeout = \"300ms\"")
			stats := runAll(t, c, seedLines("m", 10, 0))
			if stats.LinesRejected.Load() != 0 || stats.LinesUndelivered.Load() != 10 {
				t.Fatalf("rejected %d undelivered %d, want 0 and 10", stats.LinesRejected.Load(), stats.LinesUndelivered.Load())
			}
			if !strings.Contains(log.String(), tt.want) || !strings.Contains(log.String(), "10 lines") {
				t.Fatalf("want %q and the undelivered count in the log:\n%s", tt.want, log)
			}
		})
	}
}

func TestRightCredentials(t *testing.T) {
	s := startServer(t, cnosdbtest.Options{Users: map[string]string{"writer": "s3cret"}})
	t.Setenv("CNOSDB_TEST_PASSWORD", "s3cret")
	c, _ := newPlugin(t, []string{s.URL()}, "username = \"writer\"\npassword = \"${CNOSDB_TEST_PASSWORD}\"")
	runAll(t, c, seedLines("m", 5, 0))
	wantStored(t, s, "", "m", seq(0, 5))
}

func TestDownThenUpStoresEverything(t *testing.T) {
	s := startServer(t, cnosdbtest.Options{})
	s.Down()
	c, log := newPlugin(t, []string{s.URL()}, "")
	r := start(t, c)
	r.write(seedLines("m", 500, 0))
	waitFor(t, "retries while down", func() bool { return r.stats.Retries.Load() >= 5 })
	if err := s.Up(); err != nil {
		t.Fatal(err)
	}
	r.write(seedLines("m", 500, 500))
	stats := r.finish()
	wantStored(t, s, "", "m", seq(0, 1000))
	if stats.LinesWritten.Load() != 1000 || !strings.Contains(log.String(), "again, after") {
		t.Fatalf("written %d; want the recovery logged", stats.LinesWritten.Load())
	}
}

func TestTimeoutsRetried(t *testing.T) {
	s := startServer(t, cnosdbtest.Options{})
	s.SetLatency(200 * time.Millisecond)
	c, _ := newPlugin(t, []string{s.URL()}, `timeout = "20ms"`)
	r := start(t, c)
	r.write(seedLines("m", 10, 0))
	waitFor(t, "timeouts", func() bool { return r.stats.Retries.Load() >= 3 })
	s.SetLatency(0)
	r.finish()
	wantStored(t, s, "", "m", seq(0, 10))
}

func TestFailoverBetweenURLs(t *testing.T) {
	down := startServer(t, cnosdbtest.Options{})
	down.Down()
	busy := startServer(t, cnosdbtest.Options{})
	busy.Overload(1000)
	up := startServer(t, cnosdbtest.Options{})
	c, _ := newPlugin(t, []string{down.URL(), busy.URL(), up.URL()}, "batch_size = 10")
	stats := runAll(t, c, seedLines("m", 100, 0))
	wantStored(t, up, "", "m", seq(0, 100))
	// Once a URL works the next batches stay on it.
	if stats.Retries.Load() != 2 {
		t.Fatalf("%d retries, want 2 (one per failed URL)", stats.Retries.Load())
	}
}

// On CnosDB 2.3.0 a tagless line is never sent: the version is asked
// before the first batch, and tagless lines are put aside (a real 2.3.0
// would read the next line into such a line's name). On 2.4 they are sent.
func TestTaglessLines(t *testing.T) {
	tagless := func(i int) string { return fmt.Sprintf("m pressure=%d.5 %d\n", i, base+int64(i)*int64(time.Second)) }
	input := func(from int) string {
		var sb strings.Builder
		for i := from; i < from+10; i++ {
			if i%5 == 2 {
				sb.WriteString(tagless(i))
			} else {
				sb.WriteString(seedLines("m", 1, i))
			}
		}
		return sb.String()
	}
	t.Run("V230", func(t *testing.T) {
		s := startServer(t, cnosdbtest.Options{Dialect: cnosdbtest.V230})
		c, log := newPlugin(t, []string{s.URL()}, "batch_size = 10\nflush_interval = \"1h\"")
		r := start(t, c)
		r.write(input(0))
		waitFor(t, "first batch", func() bool { return r.stats.Batches.Load() == 1 })
		before := s.Stats().WriteRequests
		r.write(input(10))
		stats := r.finish()
		wantStored(t, s, "", "m", seq(0, 20, 2, 7, 12, 17))
		if stats.LinesRejected.Load() != 4 {
			t.Fatalf("rejected %d, want the 4 tagless lines", stats.LinesRejected.Load())
		}
		// The version was asked before the first batch: no tagless line
		// was ever sent, no batch split.
		if n := s.Stats().WriteRequests; n != 2 || before != 1 {
			t.Fatalf("%d requests (%d for the first batch), want one per batch: tagless lines are put aside", n, before)
		}
		if !strings.Contains(log.String(), "cannot store a line without tags") {
			t.Fatal("want the tagless lines logged with the reason")
		}
	})
	t.Run("V24", func(t *testing.T) {
		s := startServer(t, cnosdbtest.Options{Dialect: cnosdbtest.V24})
		c, _ := newPlugin(t, []string{s.URL()}, "batch_size = 10")
		stats := runAll(t, c, input(0)+input(10))
		wantStored(t, s, "", "m", seq(0, 20))
		if stats.LinesRejected.Load() != 0 || s.Stats().WriteRequests != 2 {
			t.Fatalf("rejected %d, %d requests", stats.LinesRejected.Load(), s.Stats().WriteRequests)
		}
	})
}

func TestGzip(t *testing.T) {
	t.Run("V24 decodes it", func(t *testing.T) {
		s := startServer(t, cnosdbtest.Options{Dialect: cnosdbtest.V24})
		c, log := newPlugin(t, []string{s.URL()}, `content_encoding = "gzip"`)
		runAll(t, c, seedLines("m", 100, 0))
		wantStored(t, s, "", "m", seq(0, 100))
		if s.Stats().WriteRequests != 1 || strings.Contains(log.String(), "uncompressed") {
			t.Fatalf("%d requests; gzip should just work", s.Stats().WriteRequests)
		}
	})
	t.Run("V230 ignores Content-Encoding", func(t *testing.T) {
		s := startServer(t, cnosdbtest.Options{Dialect: cnosdbtest.V230})
		c, log := newPlugin(t, []string{s.URL()}, "content_encoding = \"gzip\"\nbatch_size = 10")
		stats := runAll(t, c, seedLines("m", 100, 0))
		wantStored(t, s, "", "m", seq(0, 100))
		if stats.LinesRejected.Load() != 0 || !strings.Contains(log.String(), "does not decode gzip") {
			t.Fatalf("rejected %d; want the fallback logged", stats.LinesRejected.Load())
		}
		// One refused gzip request, then plain ones.
		if s.Stats().Count(500, "") != 1 {
			t.Fatalf("%d refused requests, want 1", s.Stats().Count(500, ""))
		}
	})
	t.Run("V230 hangs up on it", func(t *testing.T) {
		// Real 2.3.0's parser panics on some gzip bodies read as text:
		// the connection closes without an answer, for every retry.
		var mu sync.Mutex
		var gzipTries, lines int
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == pingPath {
				io.WriteString(w, `{"status":"healthy","version":"2.3.0, revision x"}`) //nolint:errcheck // to a test client
				return
			}
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			defer mu.Unlock()
			if r.Header.Get("Content-Encoding") == "gzip" {
				gzipTries++
				if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
					conn.Close()
				}
				return
			}
			lines += strings.Count(string(body), "\n")
		}))
		defer srv.Close()
		c, log := newPlugin(t, []string{srv.URL}, "content_encoding = \"gzip\"\nbatch_size = 10")
		stats := runAll(t, c, seedLines("m", 100, 0))
		mu.Lock()
		defer mu.Unlock()
		if lines != 100 || stats.LinesRejected.Load() != 0 || !strings.Contains(log.String(), "does not decode gzip") {
			t.Fatalf("stored %d of 100, rejected %d; want all, and the fallback logged:\n%s", lines, stats.LinesRejected.Load(), log.String())
		}
		// Twice (once may be a stale connection), then plain ones.
		if gzipTries != 2 {
			t.Fatalf("%d gzip requests, want 2", gzipTries)
		}
	})
}

func TestPrecision(t *testing.T) {
	const ts = 1_700_000_000_123_456_789
	for _, tt := range []struct {
		precision string
		want      int64
	}{
		{"ns", ts},
		{"us", 1_700_000_000_123_456_000},
		{"ms", 1_700_000_000_123_000_000},
	} {
		t.Run(tt.precision, func(t *testing.T) {
			s := startServer(t, cnosdbtest.Options{Dialect: cnosdbtest.V24})
			c, _ := newPlugin(t, []string{s.URL()}, fmt.Sprintf("precision = %q", tt.precision))
			before := time.Now().UnixNano()
			runAll(t, c, fmt.Sprintf("m,host=a f=1 %d\nm,host=b f=2\n", ts))
			rows := s.Rows("", "", "m")
			if len(rows) != 2 || rows[0].Time != tt.want {
				t.Fatalf("rows %+v, want time %d first", rows, tt.want)
			}
			// A line without a timestamp gets the time it was read.
			if rows[1].Time < before-int64(time.Second) || rows[1].Time > time.Now().UnixNano() {
				t.Fatalf("untimed line stored at %d", rows[1].Time)
			}
		})
	}
}

func TestCreateDatabaseNames(t *testing.T) {
	for _, name := range []string{"telegraf", "Mixed-Case"} {
		s := startServer(t, cnosdbtest.Options{})
		c, _ := newPlugin(t, []string{s.URL()}, fmt.Sprintf("database = %q\ncreate_database = true", name))
		runAll(t, c, seedLines("m", 3, 0))
		wantStored(t, s, name, "m", seq(0, 3))
	}
}

// The seed guide's outputs.http settings, moved to this plugin.
func TestGuideURL(t *testing.T) {
	s := startServer(t, cnosdbtest.Options{Databases: []string{"telegraf"}})
	c, err := load(t, guideHTTPBlock(s.URL()))
	if err != nil {
		t.Fatal(err)
	}
	runAll(t, c, seedLines("kafka_consumer", 10, 0))
	wantStored(t, s, "telegraf", "kafka_consumer", seq(0, 10))
}

// max_buffered_bytes bounds what is held: with CnosDB down the reader
// stops reading, the pipe blocks the writer (Telegraf), and nothing is lost
// once CnosDB is back.
func TestMemoryBoundStopsReading(t *testing.T) {
	s := startServer(t, cnosdbtest.Options{})
	s.Down()
	c, _ := newPlugin(t, []string{s.URL()}, "batch_size_bytes = \"4KiB\"\nmax_buffered_bytes = \"8KiB\"")
	r := start(t, c)
	const n = 20000 // about 1.8 MB, far over the bound and the read buffer
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		r.write(seedLines("m", n, 0))
	}()
	waitFor(t, "the reader to stop", func() bool { return r.stats.Waiting.Load() })
	lineLen := len(seedLines("m", 1, n-1))
	held := r.stats.LinesRead.Load()
	if held*int64(lineLen) > 8<<10+int64(lineLen) {
		t.Fatalf("%d lines (%d bytes) read with 8KiB allowed", held, held*int64(lineLen))
	}
	select {
	case <-writerDone:
		t.Fatal("the writer finished: nothing pushed back")
	default:
	}
	if err := s.Up(); err != nil {
		t.Fatal(err)
	}
	<-writerDone
	stats := r.finish()
	wantStored(t, s, "", "m", seq(0, n))
	if stats.Stalls.Load() == 0 {
		t.Fatal("no stall counted")
	}
}

// flush_interval sends a partial batch without waiting for more input or
// for stdin to close.
func TestFlushInterval(t *testing.T) {
	s := startServer(t, cnosdbtest.Options{})
	c, _ := newPlugin(t, []string{s.URL()}, "flush_interval = \"10ms\"\nbatch_size = 1000")
	r := start(t, c)
	r.write(seedLines("m", 3, 0))
	waitFor(t, "the partial batch", func() bool { return len(s.Rows("", "", "m")) == 3 })
	r.finish()
}

func TestBatchLimits(t *testing.T) {
	for _, tt := range []struct {
		options  string
		requests int
	}{
		{"batch_size = 10", 10},
		{"batch_size_bytes = \"2KiB\"", 100 * 87 / 2048},
	} {
		s := startServer(t, cnosdbtest.Options{})
		c, _ := newPlugin(t, []string{s.URL()}, tt.options+"\nflush_interval = \"1h\"")
		runAll(t, c, seedLines("m", 100, 0))
		wantStored(t, s, "", "m", seq(0, 100))
		if got := s.Stats().WriteRequests; got < tt.requests || got > tt.requests+1 {
			t.Fatalf("%s: %d requests, want about %d", tt.options, got, tt.requests)
		}
	}
}

// SIGTERM before stdin closes: reading goes on until stdin ends, and every
// line read is delivered.
func TestStopSignalKeepsReadingUntilEOF(t *testing.T) {
	s := startServer(t, cnosdbtest.Options{})
	c, _ := newPlugin(t, []string{s.URL()}, "flush_interval = \"1h\"")
	r := start(t, c)
	r.write(seedLines("m", 10, 0))
	r.stop()
	waitFor(t, "the held batch to be sent at once", func() bool { return len(s.Rows("", "", "m")) == 10 })
	r.write(seedLines("m", 10, 10))
	r.finish()
	wantStored(t, s, "", "m", seq(0, 20))
}

// shutdown_timeout bounds delivery at shutdown; what is left is counted and
// reported, and Run still returns normally (exit 0).
func TestShutdownTimeoutCountsUndelivered(t *testing.T) {
	s := startServer(t, cnosdbtest.Options{})
	s.Down()
	c, log := newPlugin(t, []string{s.URL()}, "shutdown_timeout = \"100ms\"\nbatch_size = 10")
	stats := runAll(t, c, seedLines("m", 25, 0))
	if stats.LinesUndelivered.Load() != 25 || !strings.Contains(log.String(), "25 lines") {
		t.Fatalf("undelivered %d, log:\n%s", stats.LinesUndelivered.Load(), log)
	}
}

func TestInvalidLinesLoggedAndCounted(t *testing.T) {
	s := startServer(t, cnosdbtest.Options{})
	c, log := newPlugin(t, []string{s.URL()}, "")
	var input strings.Builder
	for i := range 30 {
		input.WriteString(seedLines("m", 1, i))
		input.WriteString("not line protocol\n")
	}
	stats := runAll(t, c, input.String())
	wantStored(t, s, "", "m", seq(0, 30))
	if stats.LinesInvalid.Load() != 30 {
		t.Fatalf("invalid %d", stats.LinesInvalid.Load())
	}
	// Rate-limited: 10 per 10 s.
	if n := strings.Count(log.String(), "not line protocol, skipped"); n != 10 {
		t.Fatalf("%d invalid lines logged, want 10", n)
	}
}

func TestLongLine(t *testing.T) {
	s := startServer(t, cnosdbtest.Options{Dialect: cnosdbtest.V24})
	c, _ := newPlugin(t, []string{s.URL()}, "")
	long := strings.Repeat("y", 3*readBufferSize)
	stats := runAll(t, c, seedLines("m", 2, 0)+fmt.Sprintf("m,host=h0 pressure=2.5,s=%q %d\n", long, base+2*int64(time.Second))+seedLines("m", 2, 3))
	wantStored(t, s, "", "m", seq(0, 5))
	if stats.LinesWritten.Load() != 5 {
		t.Fatal(stats.LinesWritten.Load())
	}
}

// A stop signal while the reader is held back by max_buffered_bytes (so it
// cannot see stdin close) still ends within the deadline, with a count.
func TestStopSignalWhileStalled(t *testing.T) {
	s := startServer(t, cnosdbtest.Options{})
	s.Down()
	c, log := newPlugin(t, []string{s.URL()}, "batch_size_bytes = \"4KiB\"\nmax_buffered_bytes = \"8KiB\"\nshutdown_timeout = \"200ms\"")
	r := start(t, c)
	go func() {
		io.WriteString(r.stdin, seedLines("m", 20000, 0)) //nolint:errcheck // the pipe closes under it
	}()
	waitFor(t, "the reader to stop", func() bool { return r.stats.Waiting.Load() })
	r.stop()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the stop signal")
	}
	if r.stats.LinesUndelivered.Load() == 0 || !strings.Contains(log.String(), "were not delivered") {
		t.Fatalf("undelivered %d", r.stats.LinesUndelivered.Load())
	}
}

// postLines writes body to CnosDB at url as the test's own client.
func postLines(t *testing.T, url, body string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/api/v1/write?db=public", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("root", "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("writing %q: %d", body, resp.StatusCode)
	}
}
