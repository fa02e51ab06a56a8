package cnosdbtest

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
)

// Dialect selects which CnosDB release the server imitates.
type Dialect string

const (
	// V230 is CnosDB 2.3.0, the version of the seed guide.
	V230 Dialect = "2.3.0"
	// V24 is the later behaviour, as a real CnosDB 2.4.3 answers it (the
	// conformance test in internal/cnosdbreal compares the two): tagless
	// lines, escapes removed, 422 040004 for bad lines, decoded request
	// bodies, and the 2.4 error codes.
	V24 Dialect = "2.4"
)

// version is what /api/v1/ping reports for the dialect: CnosDB's version
// string, with the git revision of its build (these are the release tags').
func (d Dialect) version() string {
	if d == V230 {
		return "2.3.0, revision f0cf70160e9eed8f49b00cc6e0c62b764796a78b"
	}
	return "2.4.3, revision 72db6de41599784f4caf9f1c47c3d7cfc1ca0a1c"
}

const (
	defaultTenant   = "cnosdb"
	defaultDatabase = "public"
	// DefaultMaxBody is CnosDB's default write body limit.
	DefaultMaxBody = 160 << 20
)

// Options configures a Server. The zero value serves 2.3.0 on a free
// loopback port with user root and an empty password.
type Options struct {
	Dialect Dialect // default V230
	Addr    string  // default "127.0.0.1:0"
	// Users, when set, turns on password checks (CnosDB's auth_enabled)
	// for these users and passwords. Without it the server is CnosDB's
	// default: only root exists, and any password is taken.
	Users     map[string]string
	Databases []string // created at start in tenant "cnosdb"; "public" and "usage_schema" always exist
	MaxBody   int64    // default DefaultMaxBody; a larger body gets 413 with an empty body

	// DefaultTTL is the TTL of databases created without one, including
	// public. Zero means the dialect's default: 365 days for 2.3.0 (writes
	// older than a year are refused there), none for 2.4. Negative: none.
	DefaultTTL time.Duration

	// FirstWinsInBatch keeps the first of several lines with the same series
	// and time in one request instead of merging them in order (see the
	// package documentation for why merging is the default).
	FirstWinsInBatch bool

	// Control serves the /_test/ endpoints (see the package documentation).
	Control bool

	// KeepEvery, above 1, keeps only every KeepEvery-th point a write
	// stores: each line is still parsed, checked against the schema
	// and counted (stats' LinesStored), and tables and columns are
	// made as usual, but the rows of a benchmark's million lines are
	// not all held, whose garbage collection made this server cost the
	// pipeline it measured a fifth of the machine. Rows and RowCount
	// then see the sample.
	KeepEvery int

	// Logf, if set, gets one line per request.
	Logf func(format string, args ...any)

	noPasswordChecks bool // Users was not set: auth_enabled = false
}

// Server is a running CnosDB test server.
type Server struct {
	opts       Options
	addr       string
	defaultTTL time.Duration
	store      *store

	mu      sync.Mutex // guards the fields below
	hs      *http.Server
	down    bool
	closed  bool
	upTimer *time.Timer
	serving sync.WaitGroup

	latency  atomic.Int64 // time.Duration
	overload atomic.Int64
	failMu   sync.Mutex
	fail     failure

	statsMu  sync.Mutex
	stats    Stats
	inflight int // API requests being answered
}

type failure struct {
	status int
	body   string
	n      int
}

// Stats counts what the server answered.
type Stats struct {
	// Writes counts answers to POST /api/v1/write by status and error
	// code: "200", "422 020005", "500", ...
	Writes        map[string]int `json:"writes"`
	WriteRequests int            `json:"write_requests"`
	LinesStored   int            `json:"lines_stored"`
	LinesRejected int            `json:"lines_rejected"`
	Queries       int            `json:"queries"`
	// BodyBytes adds up write bodies as they came over the wire, before
	// any Content-Encoding is undone: what a compressed write saves.
	BodyBytes int64 `json:"body_bytes"`
}

// Count returns how many writes were answered with status and code ("" for
// answers without an error code).
func (st Stats) Count(status int, code string) int {
	return st.Writes[statsKey(status, code)]
}

func statsKey(status int, code string) string {
	if code == "" {
		return strconv.Itoa(status)
	}
	return strconv.Itoa(status) + " " + code
}

// Start listens on opts.Addr and serves until Close.
func Start(opts Options) (*Server, error) {
	if opts.Dialect == "" {
		opts.Dialect = V230
	}
	if opts.Dialect != V230 && opts.Dialect != V24 {
		return nil, fmt.Errorf("cnosdbtest: unknown dialect %q (want %q or %q)", opts.Dialect, V230, V24)
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Users == nil {
		opts.Users, opts.noPasswordChecks = map[string]string{"root": ""}, true
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	s := &Server{opts: opts, store: newStore(), defaultTTL: opts.DefaultTTL}
	s.store.keepEvery = opts.KeepEvery
	if s.defaultTTL == 0 && opts.Dialect == V230 {
		s.defaultTTL = 365 * 24 * time.Hour
	}
	s.stats.Writes = map[string]int{}
	s.store.ensureTenant(defaultTenant)
	system := []string{defaultDatabase, "usage_schema"}
	if opts.Dialect != V230 {
		system = append(system, "cluster_schema")
	}
	for _, db := range append(system, opts.Databases...) {
		s.store.createDatabase(defaultTenant, db, s.defaultTTL, precNS)
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, err
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	return s, nil
}

// URL is the base address, e.g. "http://127.0.0.1:8902".
func (s *Server) URL() string { return "http://" + s.addr }

// Addr is the listening address.
func (s *Server) Addr() string { return s.addr }

// Dialect is the dialect being served.
func (s *Server) Dialect() Dialect { return s.opts.Dialect }

// serve starts a fresh http.Server on ln; a closed http.Server cannot be
// reused, and Down closes it. The caller holds s.mu or has exclusive access.
func (s *Server) serve(ln net.Listener) {
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.hs = hs
	s.serving.Add(1)
	go func() {
		defer s.serving.Done()
		_ = hs.Serve(ln)
	}()
}

// Close stops the server for good.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if s.upTimer != nil {
		s.upTimer.Stop()
	}
	var err error
	if !s.down {
		err = s.hs.Close()
	}
	s.mu.Unlock()
	s.serving.Wait()
	return err
}

// Down stops listening and drops every open connection, as a crashed
// server would: new connections are refused until Up.
func (s *Server) Down() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.upTimer != nil {
		s.upTimer.Stop()
		s.upTimer = nil
	}
	if s.down || s.closed {
		return
	}
	s.down = true
	_ = s.hs.Close()
}

// Up listens again on the same address after Down.
func (s *Server) Up() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.upTimer != nil {
		s.upTimer.Stop()
		s.upTimer = nil
	}
	if !s.down || s.closed {
		return nil
	}
	var (
		ln  net.Listener
		err error
	)
	// The old socket may take a moment to let go of the port.
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("cnosdbtest: listen again on %s: %w", s.addr, err)
	}
	s.down = false
	s.serve(ln)
	return nil
}

// downFor goes down now and comes back after d.
func (s *Server) downFor(d time.Duration) {
	s.Down()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.upTimer = time.AfterFunc(d, func() {
		if err := s.Up(); err != nil {
			s.logf("%v", err)
		}
	})
}

// Overload makes the next n writes that pass every check answer
// 422 020005 "Memory Exhausted Retry Later" and store nothing.
func (s *Server) Overload(n int) { s.overload.Store(int64(n)) }

// SetLatency delays every answer (not the /_test/ endpoints) by d. The
// request is handled first, so a write the client gives up on is stored
// anyway, as with a slow server.
func (s *Server) SetLatency(d time.Duration) { s.latency.Store(int64(d)) }

// FailWrites answers the next n write requests with status and body as
// given, before any other check; nothing is stored.
func (s *Server) FailWrites(status int, body string, n int) {
	s.failMu.Lock()
	s.fail = failure{status: status, body: body, n: n}
	s.failMu.Unlock()
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	st := s.stats
	st.Writes = make(map[string]int, len(s.stats.Writes))
	for k, v := range s.stats.Writes {
		st.Writes[k] = v
	}
	return st
}

// Rows returns a table's rows sorted by time, then series. Empty tenant
// and db mean "cnosdb" and "public".
func (s *Server) Rows(tenant, db, measurement string) []Row {
	tenant, db = orDefault(tenant, defaultTenant), orDefault(db, defaultDatabase)
	return s.store.rows(tenant, db, measurement)
}

// RowCount is len(Rows(...)) without building the rows: for polling
// large tables.
func (s *Server) RowCount(tenant, db, measurement string) int {
	return s.store.rowCount(orDefault(tenant, defaultTenant), orDefault(db, defaultDatabase), measurement)
}

// Measurements lists the tables of a database, sorted.
func (s *Server) Measurements(tenant, db string) []string {
	names, _ := s.store.tableNames(orDefault(tenant, defaultTenant), orDefault(db, defaultDatabase))
	return names
}

// CreateDatabase creates a database with the default TTL; it reports
// false if it already existed.
func (s *Server) CreateDatabase(tenant, db string) bool {
	return s.store.createDatabase(orDefault(tenant, defaultTenant), db, s.defaultTTL, precNS)
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func (s *Server) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

// reply is a complete answer, built before any latency is applied.
type reply struct {
	status      int
	contentType string
	body        []byte
	code        string // CnosDB error code, for logs and stats
}

func errorReply(e *apiError) *reply {
	r := &reply{status: e.status, code: e.code, body: e.body()}
	if e.code != "" {
		r.contentType = "application/json"
	}
	return r
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.opts.Control && strings.HasPrefix(r.URL.Path, "/_test/") {
		s.serveControl(w, r)
		return
	}
	start := time.Now()
	s.statsMu.Lock()
	s.inflight++
	s.statsMu.Unlock()
	defer func() {
		s.statsMu.Lock()
		s.inflight--
		s.statsMu.Unlock()
	}()
	var rep *reply
	switch r.URL.Path {
	case "/api/v1/ping":
		rep = s.handlePing(r)
	case "/api/v1/write":
		rep = s.handleWrite(r)
	case "/api/v1/sql":
		rep = s.handleSQL(r)
	default:
		rep = &reply{status: http.StatusNotFound}
	}
	if d := time.Duration(s.latency.Load()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			s.logf("%s %s -> client gone after %v", r.Method, r.URL.RequestURI(), time.Since(start).Round(time.Millisecond))
			return
		}
	}
	if rep.status == http.StatusRequestEntityTooLarge && r.ContentLength > 0 && !strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		s.refuseUnread(w)
		return
	}
	if rep.contentType != "" {
		w.Header().Set("Content-Type", rep.contentType)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(rep.body)))
	w.WriteHeader(rep.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(rep.body)
	}
	if s.opts.Logf != nil {
		status := strconv.Itoa(rep.status)
		if rep.code != "" {
			status += " " + rep.code
		}
		s.logf("%s %s -> %s (%v)", r.Method, r.URL.RequestURI(), status, time.Since(start).Round(time.Microsecond))
	}
}

// refuseUnread answers 413 the way warp's content_length_limit does: at
// once, without reading the body, and then the connection is closed: a
// client still sending gets a broken pipe or a reset. One that asked
// "Expect: 100-continue" is answered as usual instead: it reads the 413 and
// sends nothing (net/http closes the connection after it, as hyper does).
func (s *Server) refuseUnread(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	buf.WriteString("HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\ndate: " + time.Now().UTC().Format(http.TimeFormat) + "\r\n\r\n") //nolint:errcheck // the client may be gone
	buf.Flush()                                                                                                                              //nolint:errcheck // same
}

func (s *Server) handlePing(r *http.Request) *reply {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return &reply{status: http.StatusMethodNotAllowed}
	}
	// CnosDB's ping needs no Authorization.
	body := `{"status":"healthy","version":"` + s.opts.Dialect.version() + `"}`
	return &reply{status: http.StatusOK, contentType: "application/json", body: []byte(body)}
}

// readBody applies warp's content_length_limit: no Content-Length is an
// unhandled rejection (bare 500), too long is a bare 413.
func (s *Server) readBody(r *http.Request) ([]byte, *apiError) {
	if r.ContentLength < 0 {
		return nil, bare(http.StatusInternalServerError)
	}
	if r.ContentLength > s.opts.MaxBody {
		return nil, bare(http.StatusRequestEntityTooLarge)
	}
	// Read into a buffer of the announced size: no regrowing for a
	// benchmark's bodies of hundreds of kilobytes.
	body := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, body); err != nil {
		return nil, bare(http.StatusBadRequest)
	}
	return body, nil
}

// authenticate checks the Basic credentials; all users are admins. With
// password checks off (CnosDB's default) the user must exist, and any
// password goes.
func (s *Server) authenticate(r *http.Request) *apiError {
	auth, ok := r.Header["Authorization"]
	if !ok || len(auth) == 0 {
		return errMissingAuthorization()
	}
	user, pass, ok := parseBasic(auth[0])
	if !ok {
		return errParseAuth(auth[0])
	}
	want, known := s.opts.Users[user]
	if !known {
		return errUserNotFound(s.opts.Dialect, user, !s.opts.noPasswordChecks)
	}
	if want != pass && !s.opts.noPasswordChecks {
		return errAccessDenied(s.opts.Dialect, user)
	}
	// 2.4 looks the user up in the request's tenant; with password checks
	// on, a missing tenant is refused in the same words as a password.
	if tenant := queryParam(r, "tenant", defaultTenant); s.opts.Dialect != V230 && !s.store.tenantExists(tenant) {
		if !s.opts.noPasswordChecks {
			return errAccessDenied(s.opts.Dialect, user)
		}
		return errTenantNotFound(s.opts.Dialect, tenant)
	}
	return nil
}

func parseBasic(h string) (user, pass string, ok bool) {
	const prefix = "Basic "
	if !strings.HasPrefix(h, prefix) {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(h[len(prefix):])
	if err != nil || !utf8.Valid(raw) {
		return "", "", false
	}
	user, pass, ok = strings.Cut(string(raw), ":")
	return user, pass, ok
}

// queryParam returns the parameter, or def when it is absent (an empty
// value is kept, as serde does).
func queryParam(r *http.Request, name, def string) string {
	if v, ok := r.URL.Query()[name]; ok && len(v) > 0 {
		return v[0]
	}
	return def
}

// decodeBody applies Content-Encoding the way 2.4 does; 2.3.0 ignores it.
func (s *Server) decodeBody(r *http.Request, body []byte) ([]byte, *apiError) {
	enc := r.Header.Get("Content-Encoding")
	if s.opts.Dialect == V230 || enc == "" {
		return body, nil
	}
	var (
		rd  io.Reader
		err error
	)
	switch strings.ToLower(enc) {
	case "identity":
		return body, nil
	case "gzip":
		rd, err = gzip.NewReader(bytes.NewReader(body))
	case "deflate":
		// CnosDB uses flate2's raw DeflateDecoder, not zlib.
		rd = flate.NewReader(bytes.NewReader(body))
	case "zstd":
		var zr *zstd.Decoder
		zr, err = zstd.NewReader(bytes.NewReader(body), zstd.WithDecoderConcurrency(1))
		if err == nil {
			defer zr.Close()
			rd = zr
		}
	case "br":
		// Brotli is not among this module's dependencies.
		return nil, errDecodeRequest("cnosdbtest cannot decode br bodies")
	default:
		return nil, errInvalidHeader("content encoding not support: " + enc)
	}
	if err != nil {
		return nil, errDecodeRequest(err.Error())
	}
	out, err := io.ReadAll(rd)
	if err != nil {
		return nil, errDecodeRequest(err.Error())
	}
	return out, nil
}

func (s *Server) handleWrite(r *http.Request) *reply {
	if r.Method != http.MethodPost {
		return &reply{status: http.StatusMethodNotAllowed}
	}
	rep, lines, stored := s.write(r)
	s.statsMu.Lock()
	s.stats.WriteRequests++
	s.stats.Writes[statsKey(rep.status, rep.code)]++
	if stored {
		s.stats.LinesStored += lines
	} else {
		s.stats.LinesRejected += lines
	}
	s.statsMu.Unlock()
	return rep
}

// takeFailure consumes one injected raw answer, if any is left.
func (s *Server) takeFailure() (failure, bool) {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	if s.fail.n <= 0 {
		return failure{}, false
	}
	s.fail.n--
	return s.fail, true
}

// write runs the checks in CnosDB's order and reports the answer, the
// number of lines in the body and whether they were stored.
func (s *Server) write(r *http.Request) (*reply, int, bool) {
	d := s.opts.Dialect
	if f, ok := s.takeFailure(); ok {
		body, _ := io.ReadAll(io.LimitReader(r.Body, s.opts.MaxBody))
		rep := &reply{status: f.status, body: []byte(f.body), code: codeIn(f.body)}
		if strings.HasPrefix(strings.TrimSpace(f.body), "{") {
			rep.contentType = "application/json"
		}
		return rep, countLines(body), false
	}
	body, apiErr := s.readBody(r)
	if apiErr != nil {
		return errorReply(apiErr), 0, false
	}
	s.statsMu.Lock()
	s.stats.BodyBytes += int64(len(body))
	s.statsMu.Unlock()
	if _, ok := r.Header["Authorization"]; !ok {
		return errorReply(errMissingAuthorization()), countLines(body), false
	}
	tenant := queryParam(r, "tenant", defaultTenant)
	db := queryParam(r, "db", defaultDatabase)
	prec, _ := parsePrecision(queryParam(r, "precision", "ns"))

	// 2.4 decodes the body before it looks at the credentials.
	body, apiErr = s.decodeBody(r, body)
	if apiErr != nil {
		return errorReply(apiErr), 0, false
	}
	nLines := countLines(body)
	if apiErr := s.authenticate(r); apiErr != nil {
		return errorReply(apiErr), nLines, false
	}
	if !s.store.tenantExists(tenant) {
		return errorReply(errTenantNotFound(d, tenant)), nLines, false
	}
	if d != V230 {
		if !utf8.Valid(body) {
			return errorReply(errInvalidUTF8("invalid utf-8 sequence")), nLines, false
		}
	} else if !utf8.Valid(body) {
		body = []byte(strings.ToValidUTF8(string(body), "\uFFFD"))
	}
	now := time.Now()
	points, err := parseLines(d, body, now.UnixNano())
	if err != nil {
		return errorReply(errParseLines(d, err.Error())), nLines, false
	}
	if s.opts.FirstWinsInBatch {
		points = keepFirstPerSeriesTime(points)
	}
	apiErr = s.store.write(&writeRequest{
		tenant: tenant, db: db, precision: prec, points: points, now: now, dialect: d,
		beforeApply: func() *apiError {
			for {
				n := s.overload.Load()
				if n <= 0 {
					return nil
				}
				if s.overload.CompareAndSwap(n, n-1) {
					return errMemoryExhausted()
				}
			}
		},
	})
	if apiErr != nil {
		return errorReply(apiErr), len(points), false
	}
	return &reply{status: http.StatusOK}, len(points), true
}

// keepFirstPerSeriesTime drops later lines that repeat an earlier line's
// series and timestamp.
func keepFirstPerSeriesTime(points []point) []point {
	type key struct {
		m, s string
		ts   int64
	}
	seen := make(map[key]struct{}, len(points))
	out := points[:0]
	for _, p := range points {
		k := key{p.measurement, seriesKey(p.tags), p.ts}
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		out = append(out, p)
	}
	return out
}

func countLines(body []byte) int {
	n := 0
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		if len(bytes.TrimSpace(line)) > 0 {
			n++
		}
	}
	return n
}

// codeIn extracts error_code from an injected JSON body, for stats.
func codeIn(body string) string {
	const key = `"error_code":"`
	i := strings.Index(body, key)
	if i < 0 {
		return ""
	}
	rest := body[i+len(key):]
	if j := strings.IndexByte(rest, '"'); j >= 0 {
		return rest[:j]
	}
	return ""
}

func (s *Server) handleSQL(r *http.Request) *reply {
	if r.Method != http.MethodPost {
		return &reply{status: http.StatusMethodNotAllowed}
	}
	s.statsMu.Lock()
	s.stats.Queries++
	s.statsMu.Unlock()

	body, apiErr := s.readBody(r)
	if apiErr != nil {
		return errorReply(apiErr)
	}
	if _, ok := r.Header["Authorization"]; !ok {
		return errorReply(errMissingAuthorization())
	}
	body, apiErr = s.decodeBody(r, body)
	if apiErr != nil {
		return errorReply(apiErr)
	}
	if apiErr := s.authenticate(r); apiErr != nil {
		return errorReply(apiErr)
	}
	if tenant := queryParam(r, "tenant", defaultTenant); s.opts.Dialect == V230 && !s.store.tenantExists(tenant) {
		// 2.3.0 looks the tenant up for a query as it authenticates, and
		// does not name it.
		return errorReply(unprocessable("010016", "Auth error: The tenant not found"))
	}
	format, apiErr := resultFormatFor(r.Header.Get("Accept"), s.opts.Dialect)
	if apiErr != nil {
		return errorReply(apiErr)
	}
	ctx := &sqlContext{s: s, tenant: queryParam(r, "tenant", defaultTenant), db: queryParam(r, "db", defaultDatabase)}
	res, apiErr := ctx.runSQL(strings.ToValidUTF8(string(body), "\uFFFD"))
	if apiErr != nil {
		return errorReply(apiErr)
	}
	return &reply{status: http.StatusOK, contentType: format.contentType(), body: res.render(format, s.opts.Dialect)}
}
