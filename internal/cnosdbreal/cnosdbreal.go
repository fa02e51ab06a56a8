// Package cnosdbreal runs a real CnosDB server for tests, through
// scripts/cnosdb.sh (which finds the binary: $CNOSDB_BIN, the project's
// cache, or ../shared/cnosdb/), and reads back what it stored with its SQL
// API. Its Server is a cnosdbtest.Target, so a test written for the test
// server runs against the real one too; where the two disagree, the real
// one is right.
//
// Without a binary on the machine, Require skips the test and says why;
// nothing else of the suite depends on a real server.
package cnosdbreal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbtest"
)

// Options choose how the server starts.
type Options struct {
	// Version picks a binary of the cache by its version ("2.3.0"); the
	// default is the newest found.
	Version string
	// Password, when set, turns on CnosDB's password checks (auth_enabled)
	// with this password for root. Without it CnosDB takes any password.
	Password string
	// MaxBody is the largest write body, as CnosDB's write_sql_limit
	// ("64K"); default 160M.
	MaxBody string
}

// ErrNoPasswordChecks: a 2.3 singleton forgets its users' passwords when it
// restarts (root comes back with none, "Auth error: Password not set"), and
// password checks (auth_enabled) need a restart: it cannot check one.
var ErrNoPasswordChecks = errors.New("cnosdbreal: CnosDB 2.3 cannot be started with password checks (a singleton forgets passwords across the restart that auth_enabled needs)")

// Server is one real CnosDB, singleton mode, on loopback, with its data in
// a directory of its own.
type Server struct {
	script string
	dir    string
	port   int
	// startArgs are scripts/cnosdb.sh's options for every start.
	startArgs []string
	user      string
	pass      string
	client    *http.Client

	mu   sync.Mutex
	down bool
}

var _ cnosdbtest.Target = (*Server)(nil)

var (
	findOnce   sync.Once
	binary     string
	missingWhy string
	versions   []string
)

// scriptPath is scripts/cnosdb.sh of this repository.
func scriptPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "scripts", "cnosdb.sh")
}

// Binary returns the CnosDB binary scripts/cnosdb.sh finds, or "" and why
// there is none.
func Binary() (path, why string) {
	findOnce.Do(func() {
		var stderr bytes.Buffer
		cmd := exec.Command("bash", scriptPath(), "path")
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			missingWhy = strings.TrimSpace(stderr.String())
			if missingWhy == "" {
				missingWhy = err.Error()
			}
			return
		}
		binary = strings.TrimSpace(string(out))
		list, err := exec.Command("bash", scriptPath(), "versions").Output()
		if err != nil {
			missingWhy = "scripts/cnosdb.sh versions: " + err.Error()
			binary = ""
			return
		}
		for _, line := range strings.Split(strings.TrimSpace(string(list)), "\n") {
			if v, _, ok := strings.Cut(line, " "); ok {
				versions = append(versions, v)
			}
		}
	})
	return binary, missingWhy
}

// Versions lists the versions of the real CnosDB binaries found, newest
// first: each can be started with Options.Version.
func Versions() []string {
	Binary()
	return versions
}

// Require skips t when there is no real CnosDB binary, saying why.
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("real CnosDB tier: not in -short mode")
	}
	if path, why := Binary(); path == "" {
		t.Skipf("real CnosDB tier skipped: %s", why)
	}
}

// Start starts a server for t (skipping t without a binary) and stops it
// when t ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	Require(t)
	s, err := launch(t.TempDir(), opts)
	if errors.Is(err, ErrNoPasswordChecks) {
		t.Skip(err) // what the test needs, this version cannot do
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// launch starts a server with its data in dir. Close stops it; dir stays.
func launch(dir string, opts Options) (*Server, error) {
	if path, why := Binary(); path == "" {
		return nil, errors.New(why)
	}
	port, err := freePorts(5)
	if err != nil {
		return nil, err
	}
	s := &Server{
		script: scriptPath(),
		dir:    dir,
		port:   port,
		user:   "root",
		client: &http.Client{Timeout: 30 * time.Second},
	}
	if opts.MaxBody != "" {
		s.startArgs = append(s.startArgs, "--max-body", opts.MaxBody)
	}
	if opts.Version != "" {
		s.startArgs = append(s.startArgs, "--version", opts.Version)
	}
	if opts.Password != "" {
		version := opts.Version
		if version == "" && len(Versions()) > 0 {
			version = Versions()[0]
		}
		if strings.HasPrefix(version, "2.3.") {
			return nil, ErrNoPasswordChecks
		}
		// CnosDB sets a password only through SQL, and checks it only with
		// auth_enabled: set it on a first run, then start again with checks.
		if err := s.start("--fresh"); err != nil {
			return nil, err
		}
		quoted := strings.ReplaceAll(opts.Password, "'", "''")
		for _, stmt := range []string{
			"ALTER USER root SET PASSWORD = '" + quoted + "'",
			"ALTER USER root SET must_change_password = false",
		} {
			if _, err := s.SQL("public", stmt); err != nil {
				s.run("stop", "--kill") //nolint:errcheck // reporting the first error
				return nil, fmt.Errorf("cnosdbreal: %s: %w", stmt, err)
			}
		}
		if err := s.run("stop"); err != nil {
			return nil, err
		}
		s.startArgs = append(s.startArgs, "--auth")
		s.pass = opts.Password
		return s, s.start()
	}
	return s, s.start("--fresh")
}

func (s *Server) start(extra ...string) error {
	return s.run(append(append([]string{"start"}, s.startArgs...), extra...)...)
}

// freePorts finds n consecutive free ports on loopback and returns the
// first: the HTTP port, then the meta service's, gRPC's, and in 2.3 the
// flight and TCP services'.
func freePorts(n int) (int, error) {
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		first := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if first+n >= 65535 {
			continue
		}
		ok := true
		for p := first; p < first+n && ok; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return first, nil
		}
	}
	return 0, errors.New("cnosdbreal: no run of free ports on 127.0.0.1")
}

func (s *Server) run(args ...string) error {
	args = append([]string{s.script}, append(args, "--dir", s.dir, "--port", strconv.Itoa(s.port))...)
	cmd := exec.Command("bash", args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("cnosdbreal: scripts/cnosdb.sh %s: %v\n%s", strings.Join(args[1:], " "), err, out)
	}
	return nil
}

// URL is the base address.
func (s *Server) URL() string { return "http://127.0.0.1:" + strconv.Itoa(s.port) }

// Version is what /api/v1/ping says.
func (s *Server) Version() string {
	resp, err := s.client.Get(s.URL() + "/api/v1/ping")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var ping struct {
		Version string `json:"version"`
	}
	if json.NewDecoder(resp.Body).Decode(&ping) != nil {
		return ""
	}
	return ping.Version
}

// Down kills the server (SIGKILL, as a crash): connections drop and new
// ones are refused until Up.
func (s *Server) Down() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return
	}
	if err := s.run("stop", "--kill"); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	s.down = true
}

// Up starts the server again on its data and address, and waits until it
// answers.
func (s *Server) Up() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.down {
		return nil
	}
	if err := s.start(); err != nil {
		return err
	}
	s.down = false
	return nil
}

// Close stops the server (SIGKILL: its data is thrown away with the test).
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = true
	return s.run("stop", "--kill")
}

// Log is the tail of the server's own log, for a failing test's report.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "cnosdb.out"))
	if len(b) > 8<<10 {
		b = b[len(b)-8<<10:]
	}
	return string(b)
}

// SQLError is a refused statement: CnosDB's status and error body.
type SQLError struct {
	Status int
	Body   string
}

func (e *SQLError) Error() string { return fmt.Sprintf("%d %s", e.Status, e.Body) }

// Request sends one request with root's credentials and returns the
// status and body.
func (s *Server) Request(method, path string, query url.Values, body []byte, header http.Header) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u := s.URL() + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if req.Header.Get("Authorization") == "" {
		req.SetBasicAuth(s.user, s.pass)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// SQL runs one statement in database db (tenant cnosdb) and returns the
// answer as CSV, CnosDB's default.
func (s *Server) SQL(db, stmt string) (string, error) {
	return s.sqlIn("", db, stmt, "")
}

func (s *Server) sqlIn(tenant, db, stmt, accept string) (string, error) {
	q := url.Values{"db": {orDefault(db, "public")}}
	if tenant != "" {
		q.Set("tenant", tenant)
	}
	h := http.Header{}
	if accept != "" {
		h.Set("Accept", accept)
	}
	status, body, err := s.Request(http.MethodPost, "/api/v1/sql", q, []byte(stmt), h)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", &SQLError{Status: status, Body: string(body)}
	}
	return string(body), nil
}

// Query runs a statement and decodes CnosDB's JSON answer (an array of
// objects, null members left out), numbers as json.Number.
func (s *Server) Query(tenant, db, stmt string) ([]map[string]any, error) {
	body, err := s.sqlIn(tenant, db, stmt, "application/json")
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(body) == "" {
		return nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	var rows []map[string]any
	if err := dec.Decode(&rows); err != nil {
		return nil, fmt.Errorf("cnosdbreal: decoding %q: %w", truncate(body, 200), err)
	}
	return rows, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// quoteIdent quotes a table name for SQL, keeping its case.
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// column is one line of DESCRIBE TABLE.
type column struct {
	name, dataType, kind string // kind: TIME, TAG or FIELD
}

func (s *Server) describe(tenant, db, measurement string) ([]column, error) {
	rows, err := s.Query(tenant, db, "DESCRIBE TABLE "+quoteIdent(measurement))
	if err != nil {
		return nil, err
	}
	cols := make([]column, 0, len(rows))
	for _, r := range rows {
		// 2.3.0 heads them COLUMN_NAME, DATA_TYPE, COLUMN_TYPE.
		get := func(key string) string {
			for k, v := range r {
				if strings.EqualFold(k, key) {
					s, _ := v.(string)
					return s
				}
			}
			return ""
		}
		name, typ, kind := get("column_name"), get("data_type"), get("column_type")
		cols = append(cols, column{name: name, dataType: strings.ToUpper(typ), kind: strings.ToUpper(kind)})
	}
	return cols, nil
}

// ReadRows returns the stored rows of a table, typed by its schema: times
// in nanoseconds, DOUBLE as float64, BIGINT as int64, BIGINT UNSIGNED as
// uint64, BOOLEAN as bool, STRING as string. Sorted as cnosdbtest sorts.
func (s *Server) ReadRows(tenant, db, measurement string) ([]cnosdbtest.Row, error) {
	cols, err := s.describe(tenant, db, measurement)
	var sqlErr *SQLError
	if errors.As(err, &sqlErr) && (strings.Contains(sqlErr.Body, `"030019"`) || strings.Contains(sqlErr.Body, "Table not found")) {
		return nil, nil // no such table: no rows
	}
	if err != nil {
		return nil, err
	}
	raw, err := s.Query(tenant, db, "SELECT * FROM "+quoteIdent(measurement))
	if err != nil {
		return nil, err
	}
	// CnosDB adds a new column to the schema DESCRIBE reads a moment after
	// the write that brought it: a value of a column it does not list yet
	// means the rows cannot be typed now.
	known := make(map[string]bool, len(cols))
	for _, c := range cols {
		known[c.name] = true
	}
	for _, r := range raw {
		for k := range r {
			if !known[k] {
				return nil, fmt.Errorf("cnosdbreal: %s: column %q is not in DESCRIBE TABLE yet", measurement, k)
			}
		}
	}
	rows := make([]cnosdbtest.Row, 0, len(raw))
	for _, r := range raw {
		row := cnosdbtest.Row{Fields: map[string]any{}}
		for _, c := range cols {
			v, ok := r[c.name]
			if !ok {
				continue // null
			}
			switch c.kind {
			case "TIME":
				ts, err := parseTime(v)
				if err != nil {
					return nil, fmt.Errorf("cnosdbreal: %s.%s: %w", measurement, c.name, err)
				}
				row.Time = ts
			case "TAG":
				if row.Tags == nil {
					row.Tags = map[string]string{}
				}
				row.Tags[c.name] = fmt.Sprint(v)
			default:
				fv, err := fieldValue(c.dataType, v)
				if err != nil {
					return nil, fmt.Errorf("cnosdbreal: %s.%s: %w", measurement, c.name, err)
				}
				row.Fields[c.name] = fv
			}
		}
		rows = append(rows, row)
	}
	sortRows(rows)
	return rows, nil
}

// parseTime reads CnosDB's JSON time, "2023-07-28T02:12:11.050" (UTC, no
// zone, as many fraction digits as the precision has), or a number.
func parseTime(v any) (int64, error) {
	switch t := v.(type) {
	case json.Number:
		return t.Int64()
	case string:
		for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999", time.RFC3339Nano} {
			if ts, err := time.ParseInLocation(layout, t, time.UTC); err == nil {
				return ts.UnixNano(), nil
			}
		}
		return 0, fmt.Errorf("time %q", t)
	}
	return 0, fmt.Errorf("time %v (%T)", v, v)
}

func fieldValue(dataType string, v any) (any, error) {
	switch {
	case strings.HasPrefix(dataType, "BIGINT UNSIGNED"), strings.HasPrefix(dataType, "UNSIGNED"):
		n, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("unsigned %v", v)
		}
		return strconv.ParseUint(n.String(), 10, 64)
	case strings.HasPrefix(dataType, "BIGINT"):
		n, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("integer %v", v)
		}
		return n.Int64()
	case strings.HasPrefix(dataType, "DOUBLE"):
		switch n := v.(type) {
		case json.Number:
			return n.Float64()
		case string: // NaN, inf
			f, err := strconv.ParseFloat(n, 64)
			if err != nil {
				return math.NaN(), nil
			}
			return f, nil
		}
		return nil, fmt.Errorf("float %v", v)
	case strings.HasPrefix(dataType, "BOOLEAN"):
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("boolean %v", v)
		}
		return b, nil
	}
	return fmt.Sprint(v), nil
}

// sortRows orders rows by time, then by series (tags), as cnosdbtest does.
func sortRows(rows []cnosdbtest.Row) {
	key := func(r cnosdbtest.Row) string {
		keys := make([]string, 0, len(r.Tags))
		for k := range r.Tags {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for _, k := range keys {
			b.WriteString(k + "=" + r.Tags[k] + ",")
		}
		return b.String()
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].Time != rows[j].Time {
			return rows[i].Time < rows[j].Time
		}
		return key(rows[i]) < key(rows[j])
	})
}

// Rows is ReadRows for polling: nil when the table cannot be read (it
// does not exist yet, or the server is down).
func (s *Server) Rows(tenant, db, measurement string) []cnosdbtest.Row {
	rows, err := s.ReadRows(tenant, db, measurement)
	if err != nil {
		return nil
	}
	return rows
}

// RowCount counts a table's rows; 0 when it cannot be read.
func (s *Server) RowCount(tenant, db, measurement string) int {
	rows, err := s.Query(tenant, db, "SELECT COUNT(*) AS n FROM "+quoteIdent(measurement))
	if err != nil || len(rows) != 1 {
		return 0
	}
	n, _ := rows[0]["n"].(json.Number)
	count, _ := n.Int64()
	return int(count)
}

// Measurements lists the tables of a database, sorted.
func (s *Server) Measurements(tenant, db string) []string {
	rows, err := s.Query(tenant, db, "SHOW TABLES")
	if err != nil {
		return nil
	}
	var names []string
	for _, r := range rows {
		for _, v := range r {
			if name, ok := v.(string); ok {
				names = append(names, name)
			}
		}
	}
	sort.Strings(names)
	return names
}

// CreateDatabase creates db in tenant; it reports false if it existed.
func (s *Server) CreateDatabase(tenant, db string) bool {
	_, err := s.sqlIn(tenant, "public", "CREATE DATABASE "+quoteIdent(db), "")
	return err == nil
}
