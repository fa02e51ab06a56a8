package cnosdb

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Check is `telegraf-cnosdb -config F -test`, what `telegraf --test` is to
// Telegraf: before any data flows, it asks every URL whether this config
// would work there, and prints one verdict line per URL to w:
//
//	ok   http://127.0.0.1:8902: CnosDB 2.4.3, user "root" accepted in tenant "cnosdb", database "public" exists
//	FAIL http://127.0.0.1:8912: database "telegraf" does not exist: create it, or set create_database = true
//
// It pings the server, lists the tenant's databases (which checks the
// credentials and the tenant), and looks for the database. It writes
// nothing, unless testWrite names a measurement: then it writes one line to
// it ("<testWrite>,check=telegraf-cnosdb ok=1i <now>") and says whether
// CnosDB took it. It reports whether every URL passed. CnosDB with its
// default settings takes any password, so "accepted" says only that this
// server would take these credentials.
func (c *CnosDB) Check(ctx context.Context, w io.Writer, testWrite string) bool {
	all := true
	for i := range c.endpoints {
		ep := &c.endpoints[i]
		verdict, result := c.checkEndpoint(ctx, ep, testWrite)
		mark := "ok  "
		if result != checkPassed {
			mark, all = "FAIL", false
		}
		fmt.Fprintf(w, "%s %s: %s\n", mark, ep.name, verdict)
	}
	return all
}

// checkResult is how a URL's check ended.
type checkResult int

const (
	checkPassed checkResult = iota
	checkUnreachable
	// checkRefused: CnosDB refused the credentials or the tenant, or the
	// database is missing: every write would fail until a person acts.
	checkRefused
	// checkFailed: anything else (an answer that cannot be read, a test
	// line refused).
	checkFailed
)

func (c *CnosDB) checkEndpoint(ctx context.Context, ep *endpoint, testWrite string) (string, checkResult) {
	buf := make([]byte, 4<<10)
	status, body, err := c.pingAt(ctx, ep, time.Duration(c.Timeout), buf)
	switch {
	case err != nil:
		return "cannot reach it: " + err.Error(), checkUnreachable
	case status != http.StatusOK:
		return fmt.Sprintf("/api/v1/ping answered %d: not a CnosDB, or behind a proxy that refuses it", status), checkFailed
	}
	version := pingVersion(body)
	server := "CnosDB " + version
	if version == "" {
		server = "a server that answers /api/v1/ping without a version"
	}

	status, body, err = c.sqlAt(ctx, ep, "", "SHOW DATABASES")
	switch {
	case err != nil:
		return server + ", but SHOW DATABASES failed: " + err.Error(), checkFailed
	case status != http.StatusOK:
		code, msg := errorCode(body)
		return server + ", but it refused the credentials or the tenant: " + c.explainRefusal(describe(status, code, msg)), checkRefused
	}
	found, ok := hasDatabase(body, c.Database)
	if !ok {
		return server + ", but its SHOW DATABASES answer could not be read: " + strconv.Quote(string(body)), checkFailed
	}
	verdict := fmt.Sprintf("%s, user %q accepted in tenant %q", server, c.user, c.Tenant)
	switch {
	case found:
		verdict += fmt.Sprintf(", database %q exists", c.Database)
	case c.CreateDatabase:
		verdict += fmt.Sprintf(", database %q does not exist yet: create_database = true creates it at start", c.Database)
	default:
		return fmt.Sprintf("%s; database %q does not exist in tenant %q: create it, or set create_database = true", verdict, c.Database, c.Tenant), checkRefused
	}
	if version != "" && taglessUnsafe(version) {
		verdict += " (before 2.4.1: lines without tags and type conflicts are refused before they are sent)"
	}
	if testWrite == "" {
		return verdict, checkPassed
	}
	if !found {
		return verdict + "; -test-write skipped: the database does not exist yet", checkPassed
	}
	line := fmt.Sprintf("%s,check=telegraf-cnosdb ok=1i %d\n", escapeMeasurement(testWrite), time.Now().UnixNano()/c.tsDivisor)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.write, strings.NewReader(line))
	if err != nil {
		return verdict + "; the test line: " + err.Error(), checkFailed
	}
	c.setHeaders(req)
	resp, err := c.client.Do(req)
	if err != nil {
		return verdict + "; writing the test line failed: " + err.Error(), checkFailed
	}
	n, _ := io.ReadFull(resp.Body, buf)
	resp.Body.Close()
	if ans := classify(resp.StatusCode, buf[:n], false); ans.kind != kindAccepted {
		return verdict + "; CnosDB refused the test line " + strconv.Quote(strings.TrimSpace(line)) + ": " + ans.reason, checkFailed
	}
	return verdict + fmt.Sprintf("; wrote one line to %q", testWrite), checkPassed
}

// startupCheck is Check at start, in the log: what would make every write
// fail (credentials, tenant, database) is said once, at error level, in
// CnosDB's words and naming the options, before the first line arrives;
// the sender then holds the data and retries until it is fixed, without
// saying it again at every attempt (configReported). A URL that cannot be
// reached yet is left to the sender. A healthy start logs at info.
func (c *CnosDB) startupCheck(ctx context.Context) {
	for i := range c.endpoints {
		ep := &c.endpoints[i]
		verdict, result := c.checkEndpoint(ctx, ep, "")
		switch {
		case ctx.Err() != nil:
			return
		case result == checkPassed:
			c.Log.Infof("start-up check: %s: %s", ep.name, verdict)
		case result == checkUnreachable:
			c.Log.Infof("start-up check: %s: %s (data is held until it answers)", ep.name, verdict)
		case result == checkFailed:
			// A user may write without the right to list databases.
			c.Log.Infof("start-up check: %s: %s (writes will tell)", ep.name, verdict)
		default:
			c.configReported.Store(true)
			c.Log.Errorf("start-up check: %s: %s; holding the data and retrying until this is fixed (said again every %s while it lasts)", ep.name, verdict, configRepeat)
		}
	}
}

// hasDatabase looks for db in SHOW DATABASES's JSON answer, whose one
// column is named Database (2.3) or database_name (2.4).
func hasDatabase(body []byte, db string) (found, ok bool) {
	var rows []map[string]any
	if json.Unmarshal(body, &rows) != nil {
		return false, false
	}
	for _, r := range rows {
		for _, v := range r {
			if name, _ := v.(string); name == db {
				return true, true
			}
		}
	}
	return false, true
}

// escapeMeasurement escapes what line protocol needs escaped in a name.
func escapeMeasurement(name string) string {
	return strings.NewReplacer(`,`, `\,`, ` `, `\ `).Replace(name)
}
