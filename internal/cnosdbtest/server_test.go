package cnosdbtest

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

var dialects = []Dialect{V230, V24}

func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

type request struct {
	method  string
	path    string
	body    []byte
	headers map[string]string
	noAuth  bool
	chunked bool
}

type response struct {
	status int
	body   string
	header http.Header
}

const rootAuth = "Basic cm9vdDo=" // root with an empty password

// testClient opens a connection per request, so a check right after Down
// sees the refused connection rather than a dropped idle one.
var testClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func (s *Server) testDo(t *testing.T, req request) response {
	t.Helper()
	resp, err := s.testTry(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func (s *Server) testTry(req request) (response, error) {
	var body io.Reader = bytes.NewReader(req.body)
	if req.chunked {
		body = io.NopCloser(bytes.NewReader(req.body)) // unknown length: sent chunked
	}
	if req.method == "" {
		req.method = http.MethodPost
	}
	r, err := http.NewRequest(req.method, s.URL()+req.path, body)
	if err != nil {
		return response{}, err
	}
	if !req.noAuth {
		r.Header.Set("Authorization", rootAuth)
	}
	for k, v := range req.headers {
		r.Header.Set(k, v)
	}
	resp, err := testClient.Do(r)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, body: string(b), header: resp.Header}, err
}

func write(t *testing.T, s *Server, query, body string) response {
	t.Helper()
	return s.testDo(t, request{path: "/api/v1/write" + query, body: []byte(body)})
}

func query(t *testing.T, s *Server, sql string, headers map[string]string) response {
	t.Helper()
	return s.testDo(t, request{path: "/api/v1/sql", body: []byte(sql), headers: headers})
}

func errBody(code, msg string) string {
	return string((&apiError{code: code, message: msg}).body())
}

func gzipped(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.Bytes()
}

func deflated(s string) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.DefaultCompression)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.Bytes()
}

func zstded(s string) []byte {
	w, _ := zstd.NewWriter(nil)
	defer w.Close()
	return w.EncodeAll([]byte(s), nil)
}

// recent is a timestamp well inside every default TTL.
var recent = time.Now().Add(-time.Hour).UnixNano()

func lp(format string) string { return strings.ReplaceAll(format, "TS", strconv.FormatInt(recent, 10)) }

// TestWriteAnswers walks the facts file's error table and the checks
// around it, in both dialects.
func TestWriteAnswers(t *testing.T) {
	old := time.Now().Add(-400 * 24 * time.Hour).UnixNano()
	type want struct {
		status int
		body   string // exact; "" means an empty body
	}
	tests := []struct {
		name  string
		setup func(*Server)
		opts  Options
		req   request
		want  map[Dialect]want // by dialect; key "" applies to both
	}{
		{
			name: "ok",
			req:  request{path: "/api/v1/write", body: []byte(lp("m,t=a f=1 TS"))},
			want: map[Dialect]want{"": {200, ""}},
		},
		{
			name: "chunked body",
			req:  request{path: "/api/v1/write", body: []byte(lp("m,t=a f=1 TS")), chunked: true},
			want: map[Dialect]want{"": {500, ""}},
		},
		{
			name: "body too large",
			opts: Options{MaxBody: 10},
			req:  request{path: "/api/v1/write", body: []byte(lp("m,t=a f=1 TS"))},
			want: map[Dialect]want{"": {413, ""}},
		},
		{
			name: "no authorization",
			req:  request{path: "/api/v1/write", body: []byte(lp("m,t=a f=1 TS")), noAuth: true},
			want: map[Dialect]want{"": {400, errBody("000000", `Missing request header "authorization"`)}},
		},
		{
			name: "bearer token",
			req:  request{path: "/api/v1/write", body: []byte(lp("m,t=a f=1 TS")), headers: map[string]string{"Authorization": "Bearer abc"}},
			want: map[Dialect]want{"": {400, errBody("040006", "Parse auth, malformed basic auth encoding: Bearer abc")}},
		},
		{
			name: "basic without colon",
			req:  request{path: "/api/v1/write", body: []byte(lp("m,t=a f=1 TS")), headers: map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("root"))}},
			want: map[Dialect]want{"": {400, errBody("040006", "Parse auth, malformed basic auth encoding: Basic cm9vdA==")}},
		},
		{
			name: "unknown user, password checks off",
			req:  request{path: "/api/v1/write", body: []byte(lp("m,t=a f=1 TS")), headers: map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("bob:x"))}},
			want: map[Dialect]want{"": {422, errBody("010016", "Auth error: The user bob not found")}},
		},
		{
			name: "wrong password, password checks off",
			req:  request{path: "/api/v1/write", body: []byte(lp("m,t=a f=1 TS")), headers: map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("root:x"))}},
			want: map[Dialect]want{"": {200, ""}},
		},
		{
			name: "unknown user",
			opts: Options{Users: map[string]string{"root": ""}},
			req:  request{path: "/api/v1/write", body: []byte(lp("m,t=a f=1 TS")), headers: map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("bob:x"))}},
			want: map[Dialect]want{
				V230: {422, errBody("010016", "Auth error: The user bob not found")},
				V24:  {422, errBody("010016", "Auth error: Access denied for user 'bob' (using xxx) username or password invalid")},
			},
		},
		{
			name: "wrong password",
			opts: Options{Users: map[string]string{"root": ""}},
			req:  request{path: "/api/v1/write", body: []byte(lp("m,t=a f=1 TS")), headers: map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("root:x"))}},
			want: map[Dialect]want{
				V230: {422, errBody("010016", "Auth error: Access denied for user 'root' (using password) ")},
				V24:  {422, errBody("010016", "Auth error: Access denied for user 'root' (using xxx) username or password invalid")},
			},
		},
		{
			name: "unknown tenant",
			req:  request{path: "/api/v1/write?tenant=nobody", body: []byte(lp("m,t=a f=1 TS"))},
			want: map[Dialect]want{
				V230: {500, ""},
				V24:  {422, errBody("010016", "Auth error: The tenant nobody not found")},
			},
		},
		{
			name: "malformed line",
			req:  request{path: "/api/v1/write", body: []byte(lp("m,t=a f=1 TS\nm,t=a f=oops TS"))},
			want: map[Dialect]want{
				V230: {500, ""},
				V24:  {422, ""}, // message text comes from the Go decoder; checked below
			},
		},
		{
			name: "tagless line",
			req:  request{path: "/api/v1/write", body: []byte(lp("m f=1 TS"))},
			want: map[Dialect]want{V230: {500, ""}, V24: {200, ""}},
		},
		{
			name: "database not found",
			req:  request{path: "/api/v1/write?db=nope", body: []byte(lp("m,t=a f=1 TS"))},
			want: map[Dialect]want{
				V230: {422, errBody("050001", `Meta request error: Database not found: "nope"`)},
				V24:  {422, errBody("030017", `Database not found: "nope"`)},
			},
		},
		{
			name: "empty body to a missing database",
			req:  request{path: "/api/v1/write?db=nope"},
			want: map[Dialect]want{
				V230: {200, ""},
				V24:  {422, errBody("030017", `Database not found: "nope"`)},
			},
		},
		{
			name: "field type conflict with the stored schema",
			setup: func(s *Server) {
				_ = s.store.write(&writeRequest{tenant: "cnosdb", db: "public", points: mustParse(s.opts.Dialect, "m,t=a f=1 1"), now: time.Now(), dialect: s.opts.Dialect})
			},
			opts: Options{DefaultTTL: -1},
			req:  request{path: "/api/v1/write", body: []byte(lp("m,t=a f=2i TS"))},
			want: map[Dialect]want{
				V230: {422, errBody("020004", "DataSchemaError: unrecognized field type f")},
				V24:  {422, errBody("050014", "Apply engine failed: DataSchemaError: Column 'f' type error, found I64 expected F64")},
			},
		},
		{
			name: "tag and field with one name",
			req:  request{path: "/api/v1/write", body: []byte(lp("m,f=a g=1 TS\nm,t=a f=1 TS"))},
			want: map[Dialect]want{
				V230: {422, errBody("020004", "DataSchemaError: unrecognized field type f")},
				V24:  {422, errBody("050014", "line to batch error: Expected f64 column")},
			},
		},
		{
			name: "field type conflict inside one body",
			req:  request{path: "/api/v1/write", body: []byte(lp("m,t=a f=1 TS\nm,t=b f=1i TS"))},
			want: map[Dialect]want{
				// 2.3.0 stores the 1i's bits as a float: see TestTypeMixIn230.
				V230: {200, ""},
				V24:  {422, errBody("050014", "line to batch error: Expected i64 column")},
			},
		},
		{
			name: "older than the default TTL",
			req:  request{path: "/api/v1/write", body: []byte("m,t=a f=1 " + strconv.FormatInt(old, 10))},
			want: map[Dialect]want{
				V230: {422, errBody("050014", "write expired time data not permit")},
				V24:  {200, ""}, // 2.4 databases never expire by default
			},
		},
		{
			name: "older than an explicit TTL",
			opts: Options{DefaultTTL: 24 * time.Hour},
			req:  request{path: "/api/v1/write", body: []byte("m,t=a f=1 " + strconv.FormatInt(old, 10))},
			want: map[Dialect]want{
				V230: {422, errBody("050014", "write expired time data not permit")},
				V24:  {422, errBody("030034", "Operation not support: create expired bucket")},
			},
		},
		{
			name: "timestamp overflows in conversion",
			opts: Options{DefaultTTL: -1},
			req:  request{path: "/api/v1/write?precision=ms", body: []byte("m,t=a f=1 9300000000000000")},
			want: map[Dialect]want{"": {422, errBody("050014", "timestamp overflow")}},
		},
		{
			name: "missing timestamp with precision ms",
			req:  request{path: "/api/v1/write?precision=ms", body: []byte("m,t=a f=1")},
			want: map[Dialect]want{"": {422, errBody("050014", "timestamp overflow")}},
		},
		{
			name:  "overloaded",
			setup: func(s *Server) { s.Overload(1) },
			req:   request{path: "/api/v1/write", body: []byte(lp("m,t=a f=1 TS"))},
			want:  map[Dialect]want{"": {422, errBody("020005", "Memory Exhausted Retry Later")}},
		},
		{
			name: "unknown content encoding",
			req:  request{path: "/api/v1/write", body: []byte(lp("m,t=a f=1 TS")), headers: map[string]string{"Content-Encoding": "xz"}},
			want: map[Dialect]want{
				V230: {200, ""}, // ignored
				V24:  {400, errBody("040005", "Invalid header: content encoding not support: xz")},
			},
		},
		{
			name: "gzip body",
			req:  request{path: "/api/v1/write", body: gzipped(lp("m,t=a f=1 TS")), headers: map[string]string{"Content-Encoding": "gzip"}},
			want: map[Dialect]want{V230: {500, ""}, V24: {200, ""}},
		},
		{
			name: "raw deflate body",
			req:  request{path: "/api/v1/write", body: deflated(lp("m,t=a f=1 TS")), headers: map[string]string{"Content-Encoding": "deflate"}},
			want: map[Dialect]want{V230: {500, ""}, V24: {200, ""}},
		},
		{
			name: "zstd body",
			req:  request{path: "/api/v1/write", body: zstded(lp("m,t=a f=1 TS")), headers: map[string]string{"Content-Encoding": "zstd"}},
			// 2.3.0 reads the compressed bytes as text: whether its
			// tokenizer finds a line in them depends on the bytes (a real
			// 2.3.0 stored a table named after some of them).
			want: map[Dialect]want{V24: {200, ""}},
		},
		{
			name: "gzip header on a plain body",
			req:  request{path: "/api/v1/write", body: []byte(lp("m,t=a f=1 TS")), headers: map[string]string{"Content-Encoding": "gzip"}},
			want: map[Dialect]want{V230: {200, ""}, V24: {400, errBody("040013", "Error decode request: gzip: invalid header")}},
		},
		{
			name: "invalid utf-8",
			req:  request{path: "/api/v1/write", body: []byte(lp("m,t=a s=\"\xff\" TS"))},
			want: map[Dialect]want{V230: {200, ""}, V24: {422, errBody("040015", "Invalid utf-8 sequence: invalid utf-8 sequence")}},
		},
		{
			name: "GET write",
			req:  request{method: http.MethodGet, path: "/api/v1/write"},
			want: map[Dialect]want{"": {405, ""}},
		},
		{
			name: "unknown path",
			req:  request{path: "/api/v2/write"},
			want: map[Dialect]want{"": {404, ""}},
		},
	}
	for _, d := range dialects {
		for _, tc := range tests {
			t.Run(string(d)+"/"+tc.name, func(t *testing.T) {
				w, ok := tc.want[d]
				if !ok {
					if w, ok = tc.want[""]; !ok {
						t.Skip("no answer to check for this dialect")
					}
				}
				opts := tc.opts
				opts.Dialect = d
				s := startServer(t, opts)
				if tc.setup != nil {
					tc.setup(s)
				}
				resp := s.testDo(t, tc.req)
				if resp.status != w.status {
					t.Fatalf("status %d, want %d (body %q)", resp.status, w.status, resp.body)
				}
				if w.body != "" || w.status != 422 {
					if resp.body != w.body {
						t.Fatalf("body %q, want %q", resp.body, w.body)
					}
				}
				if w.status == 200 {
					if n := len(s.Measurements("", "")); n == 0 && len(tc.req.body) > 0 {
						t.Fatalf("nothing stored")
					}
				} else if ms := s.Measurements("", ""); len(ms) > 0 && tc.setup == nil {
					t.Fatalf("a rejected write stored %v", ms)
				}
				if strings.HasPrefix(resp.body, "{") && resp.header.Get("Content-Type") != "application/json" {
					t.Fatalf("Content-Type %q for a JSON error", resp.header.Get("Content-Type"))
				}
			})
		}
	}
}

func mustParse(d Dialect, body string) []point {
	p, err := parseLines(d, []byte(body), 0)
	if err != nil {
		panic(err)
	}
	return p
}

func TestV24ParseErrorBody(t *testing.T) {
	s := startServer(t, Options{Dialect: V24})
	resp := write(t, s, "", "m,t=a f=oops 1")
	var e struct {
		Code    string `json:"error_code"`
		Message string `json:"error_message"`
	}
	if err := json.Unmarshal([]byte(resp.body), &e); err != nil {
		t.Fatal(err)
	}
	if resp.status != 422 || e.Code != "040004" || !strings.HasPrefix(e.Message, "Error parsing message: ") {
		t.Fatalf("got %d %+v", resp.status, e)
	}
}

func TestPing(t *testing.T) {
	for _, d := range dialects {
		s := startServer(t, Options{Dialect: d})
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			resp := s.testDo(t, request{method: m, path: "/api/v1/ping", noAuth: true})
			want := `{"status":"healthy","version":"` + d.version() + `"}`
			if m == http.MethodHead {
				want = ""
			}
			if resp.status != 200 || resp.body != want || resp.header.Get("Content-Type") != "application/json" {
				t.Errorf("%s %s: %d %q %v", d, m, resp.status, resp.body, resp.header)
			}
		}
		if resp := s.testDo(t, request{path: "/api/v1/ping"}); resp.status != 405 {
			t.Errorf("%s POST ping: %d", d, resp.status)
		}
	}
}

func TestAuthUsers(t *testing.T) {
	s := startServer(t, Options{Users: map[string]string{"writer": "s3cret"}})
	auth := func(user, pass string) map[string]string {
		return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}
	}
	if resp := s.testDo(t, request{path: "/api/v1/write", body: []byte(lp("m,t=a f=1 TS")), headers: auth("writer", "s3cret")}); resp.status != 200 {
		t.Fatalf("good credentials: %d %s", resp.status, resp.body)
	}
	if resp := s.testDo(t, request{path: "/api/v1/write", body: []byte(lp("m,t=a f=1 TS"))}); resp.status != 422 {
		t.Fatalf("root is not configured, got %d", resp.status)
	}
	if resp := s.testDo(t, request{path: "/api/v1/sql", body: []byte("SHOW DATABASES"), noAuth: true}); resp.status != 400 {
		t.Fatalf("sql without auth: %d", resp.status)
	}
}

func TestPrecision(t *testing.T) {
	const sec = 1_700_000_000
	tests := []struct {
		precision string
		ts        int64
		want      int64
	}{
		{"", sec * 1e9, sec * 1e9},
		{"ns", sec*1e9 + 7, sec*1e9 + 7},
		{"us", sec * 1e6, sec * 1e9},
		{"ms", sec * 1e3, sec * 1e9},
		{"MS", sec * 1e3, sec * 1e9},
		{"s", sec, sec}, // anything else is silently ns
	}
	for _, d := range dialects {
		for _, tc := range tests {
			s := startServer(t, Options{Dialect: d, DefaultTTL: -1})
			q := ""
			if tc.precision != "" {
				q = "?precision=" + tc.precision
			}
			if resp := write(t, s, q, "m,t=a f=1 "+strconv.FormatInt(tc.ts, 10)); resp.status != 200 {
				t.Fatalf("%s %q: %d %s", d, tc.precision, resp.status, resp.body)
			}
			rows := s.Rows("", "", "m")
			if len(rows) != 1 || rows[0].Time != tc.want {
				t.Errorf("%s precision %q: rows %+v, want time %d", d, tc.precision, rows, tc.want)
			}
		}
	}
}

func TestDatabasePrecisionTruncates(t *testing.T) {
	s := startServer(t, Options{DefaultTTL: -1})
	if resp := query(t, s, "CREATE DATABASE coarse WITH PRECISION 'ms'", nil); resp.status != 200 {
		t.Fatal(resp.status, resp.body)
	}
	write(t, s, "?db=coarse", "m,t=a f=1 1700000000123456789")
	if rows := s.Rows("", "coarse", "m"); len(rows) != 1 || rows[0].Time != 1700000000123000000 {
		t.Fatalf("rows %+v", rows)
	}
}

func TestMissingTimestampGetsServerTime(t *testing.T) {
	for _, d := range dialects {
		s := startServer(t, Options{Dialect: d})
		body, want := "m,t=a f=1\nm,t=b f=2", 2
		if d == V230 {
			// 2.3.0 takes the next line's first digits (the 2 of f=2) for
			// the first line's time, and refuses it as expired.
			if resp := write(t, s, "", body); resp.status != 422 || !strings.Contains(resp.body, "050014") {
				t.Errorf("2.3.0: %d %s, want 422 050014", resp.status, resp.body)
			}
			body, want = "m,t=a f=1\n", 1
		}
		before := time.Now().UnixNano()
		write(t, s, "", body)
		after := time.Now().UnixNano()
		rows := s.Rows("", "", "m")
		if len(rows) != want || rows[0].Time != rows[len(rows)-1].Time || rows[0].Time < before || rows[0].Time > after {
			t.Errorf("%s: rows %+v, want %d at one time within [%d, %d]", d, rows, want, before, after)
		}
	}
}

func TestAtomicWrites(t *testing.T) {
	for _, d := range dialects {
		for name, body := range map[string]string{
			"parse error last":   lp("m,t=a f=1 TS\nm,t=b f=2 TS\nm,t=c f=oops TS"),
			"kind conflict last": lp("m,t=a f=1 TS\nn,t=b g=2 TS\nm,t=c,f=x g=2 TS"),
			"expired last":       lp("m,t=a f=1 TS\nm,t=b f=2 1"),
		} {
			s := startServer(t, Options{Dialect: d, DefaultTTL: 24 * time.Hour})
			if resp := write(t, s, "", body); resp.status == 200 {
				t.Errorf("%s %s: accepted", d, name)
			}
			if ms := s.Measurements("", ""); len(ms) != 0 {
				t.Errorf("%s %s: stored part of the body: %v", d, name, ms)
			}
			st := s.Stats()
			if st.LinesStored != 0 || st.LinesRejected != strings.Count(body, "\n")+1 {
				t.Errorf("%s %s: stats %+v", d, name, st)
			}
		}
	}
}

func TestSameSeriesAndTime(t *testing.T) {
	for _, d := range dialects {
		// Within one body and across bodies the later field value wins and
		// fields it does not carry are kept.
		s := startServer(t, Options{Dialect: d})
		write(t, s, "", lp("m,t=a f=1,g=1 TS\nm,t=a f=2 TS"))
		write(t, s, "", lp("m,t=a h=3 TS"))
		want := []Row{{Time: recent, Tags: map[string]string{"t": "a"}, Fields: map[string]any{"f": 2.0, "g": 1.0, "h": 3.0}}}
		if got := s.Rows("", "", "m"); !reflect.DeepEqual(got, want) {
			t.Errorf("%s merge: %+v", d, got)
		}

		s = startServer(t, Options{Dialect: d, FirstWinsInBatch: true})
		write(t, s, "", lp("m,t=a f=1,g=1 TS\nm,t=a f=2 TS\nm,t=b f=5 TS"))
		write(t, s, "", lp("m,t=a f=3 TS"))
		want = []Row{
			{Time: recent, Tags: map[string]string{"t": "a"}, Fields: map[string]any{"f": 3.0, "g": 1.0}},
			{Time: recent, Tags: map[string]string{"t": "b"}, Fields: map[string]any{"f": 5.0}},
		}
		if got := s.Rows("", "", "m"); !reflect.DeepEqual(got, want) {
			t.Errorf("%s first wins: %+v", d, got)
		}
	}
}

func TestDuplicateKeysInALine(t *testing.T) {
	for _, d := range dialects {
		s := startServer(t, Options{Dialect: d})
		write(t, s, "", lp("m,t=a,t=b f=1,f=2 TS"))
		rows := s.Rows("", "", "m")
		if len(rows) != 1 || rows[0].Tags["t"] != "a" || rows[0].Fields["f"] != 1.0 {
			t.Errorf("%s: %+v", d, rows)
		}
	}
}

func TestDialectNamesAndValues(t *testing.T) {
	body := lp(`__m\ x,t\ k=a\ b\,c f\=g=1,s="q \"x\" \\ y",i=-3i,u=4u,b1=t,b2=FALSE,b3=True,fl=-1.5e3 TS`)
	tests := map[Dialect]struct {
		measurement string
		tags        map[string]string
		fields      map[string]any
	}{
		V230: {
			measurement: `m\ x`,
			tags:        map[string]string{`t\ k`: `a\ b\,c`},
			// the field key split happens at the last '=' before the value
			fields: map[string]any{`f\=g`: 1.0, "s": `q \"x\" \\ y`, "i": int64(-3), "u": uint64(4), "b1": true, "b2": false, "b3": true, "fl": -1500.0},
		},
		V24: {
			measurement: `__m x`,
			tags:        map[string]string{"t k": "a b,c"},
			fields:      map[string]any{"f=g": 1.0, "s": `q "x" \ y`, "i": int64(-3), "u": uint64(4), "b1": true, "b2": false, "b3": true, "fl": -1500.0},
		},
	}
	for d, want := range tests {
		s := startServer(t, Options{Dialect: d})
		if resp := write(t, s, "", body); resp.status != 200 {
			t.Fatalf("%s: %d %s", d, resp.status, resp.body)
		}
		if ms := s.Measurements("", ""); !reflect.DeepEqual(ms, []string{want.measurement}) {
			t.Fatalf("%s measurements %q", d, ms)
		}
		rows := s.Rows("", "", want.measurement)
		if len(rows) != 1 || !reflect.DeepEqual(rows[0].Tags, want.tags) || !reflect.DeepEqual(rows[0].Fields, want.fields) {
			t.Errorf("%s: %#v", d, rows)
		}
	}
}

func TestStats(t *testing.T) {
	s := startServer(t, Options{})
	write(t, s, "", lp("m,t=a f=1 TS\nm,t=b f=1 TS"))
	write(t, s, "?db=nope", lp("m,t=a f=1 TS"))
	s.Overload(1)
	write(t, s, "", lp("m,t=a f=1 TS"))
	write(t, s, "", "garbage")
	st := s.Stats()
	if st.WriteRequests != 4 || st.LinesStored != 2 || st.LinesRejected != 3 ||
		st.Count(200, "") != 1 || st.Count(422, "050001") != 1 || st.Count(422, "020005") != 1 || st.Count(500, "") != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// BodyBytes counts bodies as sent, compressed or not, so that a benchmark
// can tell what gzip saves on the wire.
func TestStatsBodyBytes(t *testing.T) {
	s := startServer(t, Options{Dialect: V24})
	plain := lp("m,t=a f=1 TS\nm,t=b f=1 TS")
	packed := gzipped(plain)
	write(t, s, "", plain)
	resp := s.testDo(t, request{path: "/api/v1/write", body: packed, headers: map[string]string{"Content-Encoding": "gzip"}})
	if resp.status != 200 {
		t.Fatalf("gzip write: %d %s", resp.status, resp.body)
	}
	if st := s.Stats(); st.BodyBytes != int64(len(plain)+len(packed)) || st.LinesStored != 4 {
		t.Fatalf("stats %+v, want %d body bytes", st, len(plain)+len(packed))
	}
}

func TestFaultInjection(t *testing.T) {
	s := startServer(t, Options{})

	s.Overload(2)
	for i := 0; i < 2; i++ {
		if resp := write(t, s, "", lp("m,t=a f=1 TS")); resp.status != 422 || !strings.Contains(resp.body, "020005") {
			t.Fatalf("overload %d: %d %s", i, resp.status, resp.body)
		}
	}
	if resp := write(t, s, "", lp("m,t=a f=1 TS")); resp.status != 200 {
		t.Fatalf("after overload: %d", resp.status)
	}

	s.FailWrites(503, "busy", 1)
	if resp := write(t, s, "", lp("m,t=b f=1 TS")); resp.status != 503 || resp.body != "busy" {
		t.Fatalf("FailWrites: %d %q", resp.status, resp.body)
	}
	if resp := write(t, s, "", lp("m,t=b f=1 TS")); resp.status != 200 {
		t.Fatalf("after FailWrites: %d", resp.status)
	}

	// The write is applied before the delay: a client that gives up still
	// finds its data stored, as with a slow real server.
	s.SetLatency(3 * time.Second)
	client := &http.Client{Timeout: 300 * time.Millisecond}
	r, _ := http.NewRequest(http.MethodPost, s.URL()+"/api/v1/write", strings.NewReader(lp("m,t=c f=1 TS")))
	r.Header.Set("Authorization", rootAuth)
	if resp, err := client.Do(r); err == nil {
		resp.Body.Close()
		t.Fatalf("answer despite latency: %d", resp.StatusCode)
	}
	eventually(t, func() bool { return len(s.Rows("", "", "m")) == 3 })
	s.SetLatency(0)
	if resp := s.testDo(t, request{method: http.MethodGet, path: "/api/v1/ping"}); resp.status != 200 {
		t.Fatal(resp.status)
	}
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDownUp(t *testing.T) {
	s := startServer(t, Options{})
	write(t, s, "", lp("m,t=a f=1 TS"))
	addr := s.Addr()

	s.Down()
	_, err := s.testTry(request{method: http.MethodGet, path: "/api/v1/ping"})
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("while down: %v, want connection refused", err)
	}
	s.Down() // idempotent

	if err := s.Up(); err != nil {
		t.Fatal(err)
	}
	if s.Addr() != addr {
		t.Fatalf("address changed: %s -> %s", addr, s.Addr())
	}
	if resp := write(t, s, "", lp("m,t=b f=1 TS")); resp.status != 200 {
		t.Fatalf("after Up: %d", resp.status)
	}
	if n := len(s.Rows("", "", "m")); n != 2 {
		t.Fatalf("rows after restart: %d", n)
	}
}

func TestDownDropsOpenConnections(t *testing.T) {
	s := startServer(t, Options{})
	s.SetLatency(5 * time.Second)
	errc := make(chan error, 1)
	go func() {
		_, err := s.testTry(request{method: http.MethodGet, path: "/api/v1/ping"})
		errc <- err
	}()
	eventually(t, func() bool { return s.serverHasConns() })
	s.Down()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("request in flight got an answer from a downed server")
		}
	case <-time.After(4 * time.Second):
		t.Fatal("request in flight was not cut off")
	}
}

// serverHasConns reports whether any request is being served.
func (s *Server) serverHasConns() bool {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	return s.inflight > 0
}

func TestStartOptions(t *testing.T) {
	if _, err := Start(Options{Dialect: "9.9"}); err == nil {
		t.Fatal("unknown dialect accepted")
	}
	s := startServer(t, Options{Databases: []string{"telegraf"}})
	if resp := write(t, s, "?db=telegraf", lp("m,t=a f=1 TS")); resp.status != 200 {
		t.Fatal(resp.status)
	}
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Fatal(s.URL())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}

// A real 2.3.0 takes another number type for a column new in the body and
// stores its bits: 2i in a float column reads back as 1e-323, 2.5 in an
// integer column as 4612811918334230528; a number in a boolean column is
// true unless zero. Against a stored column it refuses (020004).
func TestTypeMixIn230(t *testing.T) {
	s := startServer(t, Options{Dialect: V230, DefaultTTL: -1})
	write(t, s, "", "a,t=x f=1 1\na,t=x f=2i 2\nb,t=x f=1i 1\nb,t=x f=2.5 2\nc,t=x f=true 1\nc,t=x f=0 2\n")
	for m, want := range map[string][]any{"a": {1.0, math.Float64frombits(2)}, "b": {int64(1), int64(math.Float64bits(2.5))}, "c": {true, false}} {
		rows := s.Rows("", "", m)
		if len(rows) != 2 || rows[0].Fields["f"] != want[0] || rows[1].Fields["f"] != want[1] {
			t.Errorf("%s: rows %v, want f = %v", m, rows, want)
		}
	}
	if resp := write(t, s, "", "a,t=x f=3i 3\n"); resp.status != 422 || !strings.Contains(resp.body, "020004") {
		t.Errorf("against the stored column: %d %s", resp.status, resp.body)
	}
}

// KeepEvery checks and counts every line but holds only a sample of the
// rows; a line the schema refuses is still refused.
func TestKeepEvery(t *testing.T) {
	s := startServer(t, Options{Dialect: V24, KeepEvery: 10})
	var body strings.Builder
	for i := range 100 {
		fmt.Fprintf(&body, "m,h=a v=%di %d\n", i, recent+int64(i))
	}
	if r := write(t, s, "", body.String()); r.status != 200 {
		t.Fatalf("write: %d %s", r.status, r.body)
	}
	if st := s.Stats(); st.LinesStored != 100 {
		t.Fatalf("%d lines counted, want 100", st.LinesStored)
	}
	rows := s.Rows("", "", "m")
	if len(rows) != 10 || rows[1].Fields["v"] != int64(10) {
		t.Fatalf("%d rows kept (second %v), want every 10th", len(rows), rows)
	}
	if r := write(t, s, "", lp("m,h=a v=\"text\" TS\n")); r.status == 200 {
		t.Fatalf("a type conflict with the schema was taken: %s", r.body)
	}
}
