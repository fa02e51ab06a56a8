package cnosdbreal

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbtest"
)

// The conformance test sends the same requests to a real CnosDB and to the
// test server (dialect V24) and compares what they answer and store: the
// status, CnosDB's error_code and message, the body where it is data (SQL
// answers, ping), and the rows stored. Every difference is a bug in the test
// server (or in the output, where it relied on it). docs/cnosdb.md lists the
// checks; CONFORMANCE_REPORT=FILE writes the table of answers it shows.

// request is one HTTP request of a check. In query and body, {db} is the
// check's own database.
type request struct {
	method string // default POST
	path   string // default /api/v1/write
	query  string // default db={db}
	body   string
	// encode compresses the body: gzip, deflate (raw, as CnosDB reads it).
	encode string
	header map[string]string
	// auth: "" for root with the server's password, "none" for no
	// Authorization header, "user:password" for Basic, anything else as
	// the header itself.
	auth string
	// data: the body is an answer worth comparing byte for byte (SQL).
	data bool
	// expectContinue sends the headers with "Expect: 100-continue" and
	// the body only after "100 Continue", over a plain connection, as curl
	// does: the way to read an answer given before the body.
	expectContinue bool
	// early: the server answers before reading the body and then closes
	// the connection, so a client still sending may get a reset instead
	// of the answer: either counts as the same.
	early bool
	// loose compares only the status and the error code: the message
	// quotes parser internals (a position, a token) that the test server
	// does not imitate.
	loose bool
}

type check struct {
	name string
	// what the check shows, for docs/cnosdb.md.
	about string
	// authOn runs the check on the pair of servers with password checks.
	authOn bool
	// noDatabase: {db} is not created first.
	noDatabase bool
	requests   []request
	// rows lists measurements of {db} whose stored rows must be equal.
	rows []string
}

const password = "s3cret-pw"

// recent is a time inside any TTL: an hour ago, whole seconds.
var recent = time.Now().Add(-time.Hour).Truncate(time.Second).UnixNano()

func ts(offset int64) string { return fmt.Sprint(recent + offset) }

var checks = []check{
	{name: "ping", about: "GET and HEAD /api/v1/ping need no Authorization; the version reads `2.4.3, revision <hash>`",
		noDatabase: true, requests: []request{
			{method: "GET", path: "/api/v1/ping", auth: "none", data: true},
			{method: "HEAD", path: "/api/v1/ping", auth: "none"},
		}},
	{name: "write and read back", about: "every field type, tags, a tagless line; SELECT * as CSV and JSON",
		requests: []request{
			{body: "m,host=a f=1.5,i=2i,u=3u,b=true,s=\"x y\" " + ts(0) + "\nm f=2 " + ts(1) + "\nm,host=b f=1.6185542082e10,i=-7i " + ts(2) + "\n"},
			{path: "/api/v1/sql", body: "SELECT * FROM m ORDER BY time", data: true},
			{path: "/api/v1/sql", body: "SELECT * FROM m ORDER BY time", header: map[string]string{"Accept": "application/json"}, data: true},
			{path: "/api/v1/sql", body: "SELECT * FROM m ORDER BY time", header: map[string]string{"Accept": "application/nd-json"}, data: true},
			{path: "/api/v1/sql", body: "SELECT * FROM m ORDER BY time", header: map[string]string{"Accept": "application/tsv"}, data: true},
			{path: "/api/v1/sql", body: "SELECT * FROM m ORDER BY time", header: map[string]string{"Accept": "application/table"}, data: true},
			{path: "/api/v1/sql", body: "SELECT * FROM m ORDER BY time", header: map[string]string{"Accept": "text/plain"}},
			{path: "/api/v1/sql", body: "SELECT COUNT(*) FROM m", data: true},
			{path: "/api/v1/sql", body: "SHOW TABLES", data: true},
			{path: "/api/v1/sql", body: "DESCRIBE TABLE m", data: true},
			{path: "/api/v1/sql", body: "DESCRIBE TABLE m", header: map[string]string{"Accept": "application/json"}, data: true},
			{path: "/api/v1/sql", body: "DESCRIBE TABLE nosuch"},
		}, rows: []string{"m"}},
	{name: "bad line", about: "one malformed line refuses the whole body (422 040004), nothing stored",
		requests: []request{
			{body: "m,host=a f=1 " + ts(0) + "\nnot line protocol\nm,host=a f=2 " + ts(1) + "\n", loose: true},
			{path: "/api/v1/sql", body: "SHOW TABLES", data: true},
		}},
	{name: "type conflict", about: "a field of another type than stored refuses the body",
		requests: []request{
			{body: "m,host=a f=1 " + ts(0) + "\n"},
			{body: "m,host=a f=\"text\" " + ts(1) + "\nm,host=a f=2 " + ts(2) + "\n"},
			{body: "m,host=a f=3i " + ts(3) + "\n"},
		}, rows: []string{"m"}},
	{name: "type conflict after a table's first line", about: "a stored float column, then a body whose second line writes an integer to it (2.3.0 stores the integer's bits as a float); a tag name used as a field",
		requests: []request{
			{body: "m,host=a f=1 " + ts(0) + "\n"},
			{body: "m,host=a f=2 " + ts(1) + "\nm,host=a f=3i " + ts(2) + "\n"},
			{body: "m,host=a g=2 " + ts(3) + "\nm,host=a,g=x f=4 " + ts(4) + "\n"},
		}, rows: []string{"m"}},
	{name: "type conflict in one body", about: "two types for one field in one body",
		requests: []request{
			{body: "m,host=a f=1 " + ts(0) + "\nm,host=a f=2i " + ts(1) + "\n"},
		}, rows: []string{"m"}},
	{name: "precision", about: "precision ms, us, ns, upper case, and an unknown value (read as ns)",
		requests: []request{
			{query: "db={db}&precision=ms", body: "p,host=ms f=1 " + fmt.Sprint(recent/1e6) + "\n"},
			{query: "db={db}&precision=us", body: "p,host=us f=1 " + fmt.Sprint(recent/1e3+1) + "\n"},
			{query: "db={db}&precision=ns", body: "p,host=ns f=1 " + ts(2) + "\n"},
			{query: "db={db}&precision=MS", body: "p,host=MS f=1 " + fmt.Sprint(recent/1e6+3) + "\n"},
			{query: "db={db}&precision=s", body: "p,host=s f=1 " + fmt.Sprint(recent/1e9) + "\n"},
		}, rows: []string{"p"}},
	{name: "no timestamp", about: "a line without a time gets the server's clock",
		requests: []request{
			{body: "now,host=a f=1\n"},
			{path: "/api/v1/sql", body: "SELECT COUNT(*) FROM now", data: true},
		}},
	{name: "same series and time", about: "in one body and across two: fields merge, the later value wins",
		requests: []request{
			{body: "dup,t=a f=1,g=1 " + ts(0) + "\ndup,t=a f=2 " + ts(0) + "\n"},
			{body: "dup,t=a f=3 " + ts(0) + "\n"},
		}, rows: []string{"dup"}},
	{name: "escapes and names", about: "escaped spaces, commas and equals in names, quotes in strings, a leading underscore, upper case",
		requests: []request{
			{body: "_x\\ y,t\\ k=v\\,1 f\\=x=\"a\\\"b\" " + ts(0) + "\nCaps,Tag=V F=1 " + ts(1) + "\n"},
			{path: "/api/v1/sql", body: "SHOW TABLES", data: true},
		}, rows: []string{"_x y", "Caps"}},
	{name: "escapes Telegraf writes", about: "Telegraf's serializer escapes a tab, newline, carriage return or form feed in a name, tag or field key as `\\t`, `\\n`, `\\r`, `\\f`: CnosDB 2.4.3 refuses them (422 040004); a raw newline inside a string field is fine",
		requests: []request{
			{body: "esc,site=tab\\there f=1 " + ts(0) + "\n", loose: true},
			{body: "esc,site=a f\\nkey=1 " + ts(1) + "\n", loose: true},
			{body: "esc\\rm,site=a f=1 " + ts(2) + "\n", loose: true},
			{body: "esc,site=a s=\"new\nline\" " + ts(3) + "\n"},
			{body: "esc,site=a s=\"back\\\\slash \\\"q\\\"\" " + ts(4) + "\n"},
			{body: "esc,site=a s=\"bad \\n escape\" " + ts(5) + "\n", loose: true},
		}, rows: []string{"esc"}},
	{name: "escapes kept", about: "escapes CnosDB 2.4.3 takes but does not remove: `\\\\`, `\\\"` and `\\'` in names and tags; `\\=` in a measurement",
		requests: []request{
			{body: "kept,t=back\\\\slash f=1 " + ts(0) + "\n"},
			{body: "kept,t=q\\\"uote,u=a\\'p f=1 " + ts(1) + "\n"},
			{body: "kept\\=eq,t=a f=1 " + ts(2) + "\n", loose: true},
			{body: "kept,t\\\\k=a f=1 " + ts(3) + "\n"},
		}, rows: []string{"kept"}},
	{name: "duplicate keys", about: "a tag or field key twice in one line",
		requests: []request{
			{body: "k,t=a,t=b f=1,f=2 " + ts(0) + "\n", loose: true},
		}, rows: []string{"k"}},
	{name: "empty body", about: "an empty write",
		requests: []request{{body: ""}}},
	{name: "gzip and deflate", about: "Content-Encoding gzip and deflate are decoded; an unknown one is refused",
		requests: []request{
			{body: "z,host=g f=1 " + ts(0) + "\n", encode: "gzip"},
			{body: "z,host=d f=1 " + ts(1) + "\n", encode: "deflate"},
			{body: "z,host=x f=1 " + ts(2) + "\n", header: map[string]string{"Content-Encoding": "xz"}},
			{body: "z,host=i f=1 " + ts(3) + "\n", header: map[string]string{"Content-Encoding": "identity"}},
		}, rows: []string{"z"}},
	{name: "body not UTF-8", about: "bytes that are not UTF-8",
		requests: []request{{body: "u,host=a s=\"\xff\xfe\" " + ts(0) + "\n", loose: true}}},
	{name: "chunked body", about: "a body without Content-Length",
		requests: []request{{body: "c,host=a f=1 " + ts(0) + "\n", header: map[string]string{"Transfer-Encoding": "chunked"}, early: true}}},
	{name: "too large", about: "a body over write_sql_limit (64K here) is 413 with an empty body, answered before the body is read; the connection is then closed, so a client that sends the body at once (Go's net/http, even with `Expect: 100-continue`) gets a broken pipe or a reset instead; one that waits for `100 Continue` reads the 413",
		requests: []request{
			{body: strings.Repeat("big,host=a f=1 "+ts(0)+"\n", 3000), expectContinue: true},
			{body: strings.Repeat("big,host=a f=1 "+ts(0)+"\n", 3000), early: true},
		}},
	{name: "missing database", about: "writing to a database that does not exist; SQL in it",
		noDatabase: true, requests: []request{
			{body: "m,host=a f=1 " + ts(0) + "\n"},
			{path: "/api/v1/sql", body: "SELECT * FROM m"},
			{path: "/api/v1/sql", query: "db=public", body: "DROP DATABASE {db}"},
		}},
	{name: "create database", about: "CREATE DATABASE, again, IF NOT EXISTS, with options; then write",
		noDatabase: true, requests: []request{
			{path: "/api/v1/sql", query: "db=public", body: "CREATE DATABASE {db}"},
			{path: "/api/v1/sql", query: "db=public", body: "CREATE DATABASE {db}"},
			{path: "/api/v1/sql", query: "db=public", body: "CREATE DATABASE IF NOT EXISTS {db}"},
			{path: "/api/v1/sql", query: "db=public", body: "CREATE DATABASE IF NOT EXISTS {db}_ttl WITH TTL '30d'"},
			{body: "m,host=a f=1 " + ts(0) + "\n"},
			{query: "db={db}_ttl", body: "m,host=a f=1 " + fmt.Sprint(recent-40*24*int64(time.Hour)) + "\n"},
			{path: "/api/v1/sql", body: "SHOW DATABASES", data: true},
		}, rows: []string{"m"}},
	{name: "missing table", about: "SQL on a table that does not exist",
		requests: []request{{path: "/api/v1/sql", body: "SELECT * FROM nosuch"}}},
	{name: "tenant", about: "an unknown tenant, for writes and SQL",
		noDatabase: true, requests: []request{
			{query: "db=public&tenant=nosuch", body: "m,host=a f=1 " + ts(0) + "\n"},
			{path: "/api/v1/sql", query: "db=public&tenant=nosuch", body: "SHOW DATABASES"},
		}},
	{name: "authentication, checks off", about: "CnosDB's default (auth_enabled = false): no header, Bearer, an unknown user, a wrong password",
		requests: []request{
			{body: "a,host=a f=1 " + ts(0) + "\n", auth: "none"},
			{body: "a,host=a f=1 " + ts(0) + "\n", auth: "Bearer abc"},
			{body: "a,host=a f=1 " + ts(0) + "\n", auth: "bob:"},
			{body: "a,host=a f=1 " + ts(0) + "\n", auth: "root:wrong"},
			{body: "a,host=a f=2 " + ts(1) + "\n"},
		}, rows: []string{"a"}},
	{name: "authentication, checks on", about: "auth_enabled = true and a password for root: the same requests; an unknown tenant is then refused as a wrong password is",
		authOn: true, requests: []request{
			{body: "a,host=a f=1 " + ts(0) + "\n", auth: "none"},
			{body: "a,host=a f=1 " + ts(0) + "\n", auth: "Bearer abc"},
			{body: "a,host=a f=1 " + ts(0) + "\n", auth: "bob:"},
			{body: "a,host=a f=1 " + ts(0) + "\n", auth: "root:wrong"},
			{body: "a,host=a f=1 " + ts(0) + "\n", auth: "root:"},
			{body: "a,host=a f=2 " + ts(1) + "\n"},
			{path: "/api/v1/sql", body: "SELECT * FROM a", auth: "root:wrong"},
			{query: "db=public&tenant=nosuch", body: "a,host=a f=1 " + ts(0) + "\n"},
			{path: "/api/v1/sql", query: "db=public&tenant=nosuch", body: "SHOW DATABASES"},
		}, rows: []string{"a"}},
	{name: "methods and paths", about: "GET on write, an unknown path",
		noDatabase: true, requests: []request{
			{method: "GET", path: "/api/v1/write"},
			{method: "GET", path: "/api/v1/nothing"},
		}},
}

// answer is what a server said to one request.
type answer struct {
	status      int
	code, msg   string
	body        string
	contentType string
}

func (a answer) String() string {
	switch {
	case a.code != "":
		return fmt.Sprintf("%d %s %q", a.status, a.code, a.msg)
	case a.body != "":
		return fmt.Sprintf("%d %q", a.status, truncate(a.body, 120))
	}
	return fmt.Sprintf("%d (empty)", a.status)
}

func send(t *testing.T, base, pass, db string, r request) answer {
	t.Helper()
	method := r.method
	if method == "" {
		method = http.MethodPost
	}
	path := r.path
	if path == "" {
		path = "/api/v1/write"
	}
	query := r.query
	if query == "" {
		query = "db={db}"
	}
	query = strings.ReplaceAll(query, "{db}", db)
	body := []byte(strings.ReplaceAll(r.body, "{db}", db))
	var buf bytes.Buffer
	switch r.encode {
	case "gzip":
		zw := gzip.NewWriter(&buf)
		zw.Write(body) //nolint:errcheck // to a buffer
		zw.Close()     //nolint:errcheck // to a buffer
		body = buf.Bytes()
	case "deflate":
		zw, _ := flate.NewWriter(&buf, flate.DefaultCompression)
		zw.Write(body) //nolint:errcheck // to a buffer
		zw.Close()     //nolint:errcheck // to a buffer
		body = buf.Bytes()
	}
	var rd io.Reader = bytes.NewReader(body)
	if r.header["Transfer-Encoding"] == "chunked" {
		rd = io.MultiReader(bytes.NewReader(body)) // unknown length: sent chunked
	}
	req, err := http.NewRequest(method, base+path+"?"+query, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range r.header {
		if k != "Transfer-Encoding" {
			req.Header.Set(k, v)
		}
	}
	if r.encode != "" {
		req.Header.Set("Content-Encoding", r.encode)
	}
	switch {
	case r.auth == "":
		req.SetBasicAuth("root", pass)
	case r.auth == "none":
	case strings.Contains(r.auth, ":") && !strings.Contains(r.auth, " "):
		user, p, _ := strings.Cut(r.auth, ":")
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+p)))
	default:
		req.Header.Set("Authorization", r.auth)
	}
	var resp *http.Response
	if r.expectContinue {
		resp, err = sendExpectingContinue(req, body)
	} else {
		resp, err = oneShot.Do(req)
	}
	if err != nil {
		// What a client sees when the server closed while the body went.
		return answer{status: 0, body: "connection closed before an answer"}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, body: string(b), contentType: resp.Header.Get("Content-Type")}
	var e struct {
		Code    string `json:"error_code"`
		Message string `json:"error_message"`
	}
	if resp.StatusCode != http.StatusOK && json.Unmarshal(b, &e) == nil {
		a.code, a.msg, a.body = e.Code, e.Message, ""
	}
	return a
}

// oneShot uses a connection per request: a server that closed one after an
// early answer (413) must not fail the next check on it.
var oneShot = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// sendExpectingContinue writes req's headers with "Expect: 100-continue",
// and its body only if the server says "100 Continue".
func sendExpectingContinue(req *http.Request, body []byte) (*http.Response, error) {
	conn, err := net.DialTimeout("tcp", req.URL.Host, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck // a fresh connection
	req.Header.Set("Expect", "100-continue")
	req.Header.Set("Content-Length", strconv.Itoa(len(body)))
	var head bytes.Buffer
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\n", req.Method, req.URL.RequestURI(), req.URL.Host)
	req.Header.Write(&head) //nolint:errcheck // to a buffer
	head.WriteString("\r\n")
	if _, err := conn.Write(head.Bytes()); err != nil {
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusContinue {
		b, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		return resp, nil
	}
	if _, err := conn.Write(body); err != nil {
		return nil, err
	}
	resp, err = http.ReadResponse(br, req)
	if err != nil {
		return nil, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

var revision = regexp.MustCompile(`, revision [0-9a-zA-Z]+`)

// same compares two answers as far as r asks.
func same(r request, real, test answer) bool {
	if r.early && (real.status == 0 || test.status == 0) {
		return real.status == 0 || test.status == 0
	}
	if r.path == "/api/v1/ping" && r.data {
		return real.status == test.status && samePing(real.body, test.body)
	}
	if real.status != test.status || real.code != test.code {
		return false
	}
	if !r.loose && real.msg != test.msg {
		return false
	}
	if !r.data {
		return true
	}
	if strings.HasPrefix(strings.ToUpper(r.body), "SHOW ") {
		// 2.3.0 lists databases and tables in hash order.
		return sameLines(real.body, test.body)
	}
	return real.body == test.body
}

// sameLines compares two SHOW answers: the header, then the names in any order.
func sameLines(a, b string) bool {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	if len(la) != len(lb) || la[0] != lb[0] {
		return false
	}
	sort.Strings(la[1:])
	sort.Strings(lb[1:])
	return reflect.DeepEqual(la, lb)
}

// samePing compares two ping answers: the same members (CnosDB writes them
// in any order: a hash map), a version of the same form (the revision is
// the build's).
func samePing(a, b string) bool {
	var pa, pb map[string]string
	if json.Unmarshal([]byte(a), &pa) != nil || json.Unmarshal([]byte(b), &pb) != nil {
		return false
	}
	for _, p := range []map[string]string{pa, pb} {
		p["version"] = revision.ReplaceAllString(p["version"], ", revision R")
	}
	return reflect.DeepEqual(pa, pb)
}

// normalize makes rows from either server comparable: empty tag and field
// sets become nil, and so does an empty result.
func normalize(rows []cnosdbtest.Row) []cnosdbtest.Row {
	for i := range rows {
		if len(rows[i].Tags) == 0 {
			rows[i].Tags = nil
		}
		if len(rows[i].Fields) == 0 {
			rows[i].Fields = nil
		}
	}
	if len(rows) == 0 {
		return nil
	}
	return rows
}

// TestConformanceWithRealCnosDB runs the checks against every real CnosDB
// binary found, each beside the test server's dialect for it: V230 for
// 2.3.x, V24 for the rest.
func TestConformanceWithRealCnosDB(t *testing.T) {
	Require(t)
	for _, version := range Versions() {
		dialect := cnosdbtest.V24
		if strings.HasPrefix(version, "2.3.") {
			dialect = cnosdbtest.V230
		}
		t.Run(version, func(t *testing.T) { checkConformance(t, version, dialect) })
	}
}

func checkConformance(t *testing.T, version string, dialect cnosdbtest.Dialect) {
	real := Start(t, Options{Version: version, MaxBody: "64K"})
	var realAuth *Server
	if !strings.HasPrefix(version, "2.3.") {
		realAuth = Start(t, Options{Version: version, Password: password, MaxBody: "64K"})
	}
	test, err := cnosdbtest.Start(cnosdbtest.Options{Dialect: dialect, MaxBody: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer test.Close()
	testAuth, err := cnosdbtest.Start(cnosdbtest.Options{Dialect: dialect, MaxBody: 64 << 10, Users: map[string]string{"root": password}})
	if err != nil {
		t.Fatal(err)
	}
	defer testAuth.Close()
	t.Logf("real CnosDB %s beside the test server's %s dialect", real.Version(), dialect)

	var report strings.Builder
	report.WriteString("| check | request | real CnosDB | test server | same |\n| --- | --- | --- | --- | --- |\n")
	for i, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			db := fmt.Sprintf("conf%02d", i)
			r, s, pass := real, cnosdbtest.Target(test), ""
			if c.authOn {
				if realAuth == nil {
					t.Skip(ErrNoPasswordChecks)
				}
				r, s, pass = realAuth, testAuth, password
			}
			if !c.noDatabase {
				if !r.CreateDatabase("", db) || !s.CreateDatabase("", db) {
					t.Fatalf("creating database %s", db)
				}
			}
			for k, req := range c.requests {
				ra := send(t, r.URL(), pass, db, req)
				ta := send(t, s.URL(), pass, db, req)
				ok := same(req, ra, ta)
				if !ok {
					t.Errorf("request %d (%s %s %q):\n  real CnosDB: %s\n  test server: %s%s", k, req.method, req.path, truncate(req.body, 80), ra, ta, firstDifference(ra.body, ta.body))
				}
				mark := "yes"
				if !ok {
					mark = "**no**"
				}
				fmt.Fprintf(&report, "| %s | %s | %s | %s | %s |\n", c.name, describeRequest(req), cell(ra), cell(ta), mark)
			}
			for _, m := range c.rows {
				testRows := normalize(s.Rows("", db, m))
				// 2.4.3 adds a new column to its schema a moment after the
				// write that brought it: read until the rows agree, or 3 s.
				var realRows []cnosdbtest.Row
				var err error
				for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(100 * time.Millisecond) {
					realRows, err = r.ReadRows("", db, m)
					realRows = normalize(realRows)
					if err == nil && reflect.DeepEqual(realRows, testRows) || time.Now().After(deadline) {
						break
					}
				}
				if err != nil {
					t.Errorf("reading %s from the real server: %v", m, err)
					continue
				}
				if !reflect.DeepEqual(realRows, testRows) {
					t.Errorf("rows of %s differ:\n  real CnosDB: %v\n  test server: %v", m, realRows, testRows)
				}
			}
		})
	}
	if path := os.Getenv("CONFORMANCE_REPORT"); path != "" {
		if err := os.WriteFile(strings.ReplaceAll(path, "VERSION", version), []byte(report.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

func describeRequest(r request) string {
	method, path := r.method, r.path
	if method == "" {
		method = "POST"
	}
	if path == "" {
		path = "/api/v1/write"
	}
	s := method + " " + strings.TrimPrefix(path, "/api/v1/")
	if r.query != "" {
		s += "?" + r.query
	}
	var extra []string
	if r.encode != "" {
		extra = append(extra, r.encode)
	}
	for k, v := range r.header {
		extra = append(extra, k+": "+v)
	}
	if r.auth != "" {
		extra = append(extra, "auth "+r.auth)
	}
	if len(extra) > 0 {
		s += " (" + strings.Join(extra, ", ") + ")"
	}
	if r.path == "/api/v1/sql" {
		s += ": " + r.body
	}
	return strings.ReplaceAll(s, "|", `\|`)
}

func cell(a answer) string {
	s := a.String()
	s = revision.ReplaceAllString(s, ", revision …")
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

// firstDifference shows where two bodies part, for a failing check.
func firstDifference(a, b string) string {
	if a == b {
		return ""
	}
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	from := max(i-40, 0)
	return fmt.Sprintf("\n  bodies part at byte %d:\n    real: %q\n    test: %q", i, a[from:min(len(a), i+60)], b[from:min(len(b), i+60)])
}
