package cnosdb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/klauspost/compress/gzip"
)

// answerKind is what one write attempt tells about the lines sent.
type answerKind uint8

const (
	// kindAccepted: CnosDB stored the lines.
	kindAccepted answerKind = iota
	// kindContent: CnosDB refused the lines for what they hold; splitting
	// the batch isolates the lines at fault.
	kindContent
	// kindTooLarge: 413, the body is over the server's limit: split.
	kindTooLarge
	// kindTransient: overload, timeout, connection trouble: retry (next
	// URL, back-off) for as long as the process runs.
	kindTransient
	// kindServer: CnosDB failed for reasons of its own (an error_code not
	// about the data): retry max_retries times, then treat as content.
	kindServer
	// kindDatabase: the database does not exist.
	kindDatabase
	// kindEncoding: the server refused Content-Encoding: gzip.
	kindEncoding
	// kindConfig: authentication, tenant, URL: nothing the data can fix;
	// retried forever, loudly, so nothing is dropped meanwhile.
	kindConfig
)

type answer struct {
	kind   answerKind
	reason string
	// parseError: CnosDB could not parse the lines (500 with an empty
	// body up to 2.3.5, 422 040004 later), the way 2.3.0 refuses a line
	// without tags.
	parseError bool
	// bare500: the answer was a 500 with an empty body, which CnosDB up to
	// 2.3.3 also gives for an unknown tenant.
	bare500 bool
	// unreachable: no HTTP answer because nothing answered at the
	// address (refused, reset, no route, no such host). Unlike a timeout
	// or an overload it says nothing about the server's load, so the
	// sender may ask cheaply whether the server is back.
	unreachable bool
	// cutOff: the connection broke while the request was being sent
	// (broken pipe, reset). CnosDB answers a body over its
	// write_sql_limit with 413 before reading it and closes at once, so
	// a client still sending sees only this.
	cutOff bool
	// unanswered: the server closed the connection without an answer,
	// before or after taking the body (EOF, broken pipe, reset).
	unanswered bool
}

// CnosDB error codes, by what they mean for a retry. The first two digits
// are the module (01 query, 02 storage, 03 meta, 04 http, 05 coordinator).
var (
	overloadCodes = map[string]bool{
		"020005": true, // storage: Memory Exhausted Retry Later
		"050033": true, // coordinator: Memory Exhausted Retry Later (2.4)
		"030024": true, // meta: request limit reached
		"030025": true, // meta: "please try again"
		"010012": true, // query: concurrent request limit
	}
	databaseMissingCodes = map[string]bool{
		"050001": true, // coordinator: database not found
		"030013": true, // meta: not found db
		"030017": true, // meta: database not found
		"010062": true, // query: database not found
	}
	contentCodes = map[string]bool{
		"040004": true, // malformed line protocol (2.3.6 and later)
		"040003": true, // body not UTF-8
		"040015": true, // invalid UTF-8 sequence
		"020004": true, // field type conflicts with the stored schema
		"020002": true, // a point without fields
		"050014": true, // timestamp out of range or outside the TTL
		"050032": true, // empty table name
		"050034": true, // a point without fields (2.4)
		"030034": true, // a point older than the TTL: no bucket for it (2.4.3)
	}
	configCodes = map[string]bool{
		"040006": true, // malformed Basic authentication
		"040008": true, // tenant not found
		"030010": true, // tenant not found
		"030008": true, // user not found
		"010016": true, // authentication failed
		"010004": true, // insufficient privileges
	}
)

const reasonTagless = "CnosDB before 2.4.1 cannot store a line without tags (it refuses it, or reads the next line into its name)"

// classify reads an HTTP answer by CnosDB's error_code first, its status
// second: CnosDB answers 422 for bad data and for its own trouble alike.
func classify(status int, body []byte, gzipped bool) answer {
	if status >= 200 && status < 300 {
		return answer{kind: kindAccepted}
	}
	code, msg := errorCode(body)
	reason := describe(status, code, msg)
	switch {
	case status == http.StatusRequestEntityTooLarge:
		return answer{kind: kindTooLarge, reason: "the request is larger than CnosDB accepts (413)"}
	case overloadCodes[code] || strings.Contains(msg, "Memory Exhausted"):
		return answer{kind: kindTransient, reason: "CnosDB is overloaded: " + reason}
	case databaseMissingCodes[code] && strings.Contains(strings.ToLower(msg), "not found"):
		// 050001 is every meta failure seen by the coordinator; only the
		// "not found" one is about the database (2.4 also answers 050001
		// for a point older than the TTL).
		return answer{kind: kindDatabase, reason: reason}
	case code == "040005" && gzipped:
		return answer{kind: kindEncoding, reason: reason}
	case code == "040005" || code == "000000" || configCodes[code]:
		// 000000 with 400 is a request CnosDB could not even read (e.g. no
		// Authorization header): not the data's fault.
		return answer{kind: kindConfig, reason: reason}
	case contentCodes[code]:
		return answer{kind: kindContent, reason: reason, parseError: code == "040004"}
	case status == http.StatusInternalServerError && len(bytes.TrimSpace(body)) == 0:
		return answer{kind: kindContent, parseError: true, bare500: true,
			reason: "CnosDB could not parse it (500 with an empty body: CnosDB 2.3.0 to 2.3.5 answer so for a malformed line, and up to 2.3.3 for an unknown tenant too)"}
	case status == http.StatusBadRequest:
		return answer{kind: kindContent, reason: reason}
	case status == http.StatusUnauthorized, status == http.StatusForbidden,
		status == http.StatusNotFound, status == http.StatusMethodNotAllowed:
		return answer{kind: kindConfig, reason: reason}
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests,
		status == http.StatusBadGateway, status == http.StatusServiceUnavailable,
		status == http.StatusGatewayTimeout:
		return answer{kind: kindTransient, reason: reason}
	}
	return answer{kind: kindServer, reason: reason}
}

// errorCode reads CnosDB's {"error_code": "...", "error_message": "..."}.
func errorCode(body []byte) (code, msg string) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return "", string(body)
	}
	var e struct {
		Code    any    `json:"error_code"`
		Message string `json:"error_message"`
	}
	if json.Unmarshal(body, &e) != nil {
		return "", string(body)
	}
	switch v := e.Code.(type) {
	case string:
		code = v
	case float64:
		code = fmt.Sprintf("%06.0f", v)
	}
	return code, e.Message
}

func describe(status int, code, msg string) string {
	const maxLen = 300
	if len(msg) > maxLen {
		msg = msg[:maxLen] + "..."
	}
	switch {
	case code != "":
		return fmt.Sprintf("%d %s: %s", status, code, msg)
	case msg != "":
		return fmt.Sprintf("%d: %s", status, msg)
	}
	return fmt.Sprintf("%d with an empty body", status)
}

// sender writes the sealed batches in order, one request at a time.
type sender struct {
	c     *CnosDB
	p     *pipeline
	stats *Stats
	// ctx is cancelled when shutdown_timeout runs out.
	ctx context.Context

	urlIndex     int
	currentURL   atomic.Int32 // urlIndex, for the self-metrics
	gzip         bool         // may be turned off when the server cannot decode it
	gzipVerified bool         // a gzip body has been accepted
	// tenantVerified: the tenant is known to exist (a write was accepted,
	// or SHOW DATABASES answered), so a bare 500 is about the lines.
	tenantVerified bool
	// versionKnown: /api/v1/ping has said which CnosDB this is; legacy:
	// it is one before 2.4.1, whose parser cannot store tagless lines and
	// which checks field types only on a table's first line (typeguard.go).
	versionKnown, legacy bool
	guard                typeGuard
	gz                   *gzip.Writer
	gzBuf                bytes.Buffer
	respBuf              []byte
	stack                []span
	timer                *time.Timer

	failures     int // consecutive failed attempts
	firstFailure time.Time
	lastWarn     time.Time
	warned       bool
	lastError    string
	// streak counts the consecutive failures of one cause (streakCause):
	// the back-off grows with it, and starts small again when the cause
	// changes, so that five overload answers do not make the sender sleep
	// 15 s once the server was merely restarted.
	streak      int
	streakCause failureCause
	// probed: a ping said the server was back during this streak, yet
	// the write still failed; the sender stops probing until the cause
	// changes, so a server that answers pings but not writes is not
	// written to every probeInterval.
	probed bool

	// hurry is closed once stdin closed or a stop signal came: waits end,
	// and attempts follow each other at retry_initial_interval until
	// shutdown_timeout runs out.
	hurry    <-chan struct{}
	hurrying bool

	// delivering is true while a batch is in hand: the output is busy,
	// which its heartbeats tell the inputs.
	delivering atomic.Bool

	// undelivered counts the lines of the batch in hand when the sender
	// gave up.
	undelivered, undeliveredBytes int64
}

// span is a range of lines [from, to) of a batch.
type span struct{ from, to int }

func newSender(ctx context.Context, hurry <-chan struct{}, c *CnosDB, p *pipeline, stats *Stats) *sender {
	s := &sender{c: c, p: p, stats: stats, ctx: ctx, hurry: hurry, gzip: c.gzip, respBuf: make([]byte, 64<<10)}
	if c.gzip {
		s.gz, _ = gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	}
	s.timer = time.NewTimer(time.Hour)
	s.timer.Stop()
	return s
}

func (s *sender) run() {
	if s.c.CreateDatabase {
		if err := s.createDatabase(); err != nil {
			s.c.Log.Warnf("create_database: could not create database %q at start (will try again if a write says it is missing): %v", s.c.Database, err)
		}
	}
	for {
		b, ok := s.p.next()
		if !ok {
			return
		}
		if !s.versionKnown {
			s.learnVersion()
		}
		if b.lines > 0 {
			s.delivering.Store(true)
			ok := s.deliver(b)
			s.delivering.Store(false)
			if !ok {
				return
			}
			s.stats.Batches.Add(1)
		}
		for _, m := range b.markers {
			s.p.acks.Settled(m)
		}
		s.p.release(b)
	}
}

// busy reports whether lines are held that are not settled yet.
func (s *sender) busy() bool {
	return s.delivering.Load() || len(s.p.ready) > 0 || s.stats.Waiting.Load() || s.p.holding.Load()
}

// deliver writes every line of b or rejects it with a logged reason. It
// returns false only when shutdown_timeout ran out first.
func (s *sender) deliver(b *batch) bool {
	if b.tagless > 0 && s.p.taglessRefused.Load() {
		b.index()
		s.dropTagless(b, 0)
	}
	if s.legacy {
		s.checkTypes(b)
	}
	stack := append(s.stack[:0], span{0, b.lines})
	defer func() { s.stack = stack[:0] }()
	for len(stack) > 0 {
		sp := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if sp.to <= sp.from {
			continue
		}
		lines := sp.to - sp.from
		body := b.body
		if lines != b.lines {
			body = b.body[b.lineStart(sp.from):b.ends[sp.to-1]]
		}
		ans, ok := s.post(body)
		if !ok {
			s.undelivered = int64(lines)
			s.undeliveredBytes = int64(len(body))
			for _, rest := range stack {
				s.undelivered += int64(rest.to - rest.from)
				s.undeliveredBytes += int64(b.ends[rest.to-1] - b.lineStart(rest.from))
			}
			return false
		}
		if ans.kind == kindAccepted {
			s.stats.LinesWritten.Add(int64(lines))
			s.stats.BytesWritten.Add(int64(len(body)))
			continue
		}
		// Refused for its content, or too large: isolate.
		b.index()
		if lines > 1 {
			mid := sp.from + lines/2
			stack = append(stack, span{mid, sp.to}, span{sp.from, mid})
			continue
		}
		line := body[:len(body)-1]
		if ans.kind == kindContent && ans.parseError && !b.tagged[sp.from] && !s.p.taglessRefused.Load() && s.refusesTagless(ans) {
			// One tagless line the server could not parse, and a server
			// that wants tags. Put the rest aside without a request.
			s.p.taglessRefused.Store(true)
			s.c.Log.Warnf("CnosDB at %s refuses lines without tags (CnosDB before 2.4.1): from now on such lines are logged and counted as rejected without being sent; give them a tag (e.g. Telegraf's global_tags) to store them",
				s.c.endpoints[s.urlIndex].name)
			s.c.logRejected(line, reasonTagless)
			s.stats.LinesRejected.Add(1)
			if len(stack) > 0 {
				// The spans left cover the rest of the batch, in order.
				s.dropTagless(b, sp.to)
				stack = append(stack[:0], span{sp.to, b.lines})
			}
			continue
		}
		s.c.logRejected(line, ans.reason)
		s.stats.LinesRejected.Add(1)
	}
	return true
}

// refusesTagless tells whether the server is one that cannot store lines
// without tags, so that a tagless line it could not parse says something
// about every tagless line. It asks /api/v1/ping for the version; without
// an answer, a bare 500 (2.3.x) is taken as the sign.
func (s *sender) refusesTagless(ans answer) bool {
	version, _ := s.version()
	if version == "" {
		return ans.bare500
	}
	return taglessUnsafe(version)
}

// learnVersion asks the server its version before the first batch goes,
// so that on a CnosDB before 2.4.1 no line is sent that it would store
// wrongly without an error: 2.3.x and 2.4.0 read the line after a tagless
// one into its name, and take a field of another type than its column's
// on any but a table's first line of a request (typeguard.go). Without an
// answer (CnosDB down) it asks again before the next batch.
func (s *sender) learnVersion() {
	version, answered := s.version()
	if !answered {
		return
	}
	// An answer without a version (a proxy, another server) is not asked
	// again: the isolation of a refused line still finds out.
	s.versionKnown = true
	if version != "" && taglessUnsafe(version) {
		s.legacy = true
		s.p.taglessRefused.Store(true)
		s.p.guardTypes.Store(true)
		s.c.Log.Infof("CnosDB %s at %s: lines without tags, and lines whose field types differ from their table's, are logged and counted as rejected, never sent (CnosDB before 2.4.1 would store them wrongly); give every line a tag (e.g. Telegraf's global_tags) to store it",
			version, s.c.endpoints[s.urlIndex].name)
	}
}

// version is what /api/v1/ping says of the current URL: "2.3.0" of
// CnosDB's "2.3.0, revision <git hash>", or "" if the answer holds none;
// answered is false when nothing answered.
func (s *sender) version() (version string, answered bool) {
	status, body, err := s.askPing(s.urlIndex, time.Duration(s.c.Timeout))
	if err != nil {
		return "", false
	}
	if status != http.StatusOK {
		return "", true
	}
	return pingVersion(body), true
}

// taglessUnsafe tells the CnosDB versions whose line-protocol parser
// cannot store a line without tags: 2.3.x and 2.4.0 (the parser that
// takes them arrived in 2.4.1). A version it cannot read is taken as safe.
func taglessUnsafe(version string) bool {
	var major, minor, patch int
	if n, _ := fmt.Sscanf(version, "%d.%d.%d", &major, &minor, &patch); n < 2 {
		return false
	}
	return major < 2 || major == 2 && (minor < 4 || minor == 4 && patch < 1)
}

// index finds where each line of the batch ends (and whether it has tags),
// for splitting. Only batches CnosDB refused pay for it.
func (b *batch) index() {
	if len(b.ends) == b.lines {
		return
	}
	b.ends, b.tagged = b.ends[:0], b.tagged[:0]
	var e entry
	for pos := 0; pos < len(b.body); pos = e.end {
		if scanEntry(b.body, pos, true, &e) != scanEntryOK {
			break // cannot happen: the batch holds only valid entries
		}
		b.ends = append(b.ends, e.end)
		b.tagged = append(b.tagged, e.tagged)
	}
}

func (b *batch) lineStart(i int) int {
	if i == 0 {
		return 0
	}
	return b.ends[i-1]
}

// dropTagless rejects the tagless lines from line from on.
func (s *sender) dropTagless(b *batch, from int) {
	s.dropLines(b, from, func(_ []byte, e *entry) string {
		if !e.tagged {
			return reasonTagless
		}
		return ""
	})
}

// dropLines rejects the lines of an indexed batch, from line from on, for
// which refuse gives a reason (logged and counted), moving the others down
// in place. refuse sees each line where it lies in body.
func (s *sender) dropLines(b *batch, from int, refuse func(body []byte, e *entry) string) {
	w := b.lineStart(from)
	start := w
	out := from
	b.tagless = 0
	var e entry
	for i := from; i < b.lines; i++ {
		end := b.ends[i]
		scanEntry(b.body[:end], start, true, &e) // valid: the batch holds only valid entries
		if reason := refuse(b.body, &e); reason != "" {
			s.c.logRejected(b.body[start:end-1], reason)
			s.stats.LinesRejected.Add(1)
		} else {
			w += copy(b.body[w:], b.body[start:end])
			b.ends[out], b.tagged[out] = w, e.tagged
			if !e.tagged {
				b.tagless++
			}
			out++
		}
		start = end
	}
	b.body = b.body[:w]
	b.ends, b.tagged = b.ends[:out], b.tagged[:out]
	b.shapes = b.shapes[:0] // no longer line for line
	b.lines = out
}

// post writes body until CnosDB says something about its content:
// accepted, refused, or too large. Everything else is retried here. It
// returns false when shutdown_timeout runs out first.
func (s *sender) post(body []byte) (answer, bool) {
	serverTries := 0
	identity := false // this body goes uncompressed: probing the server
	created := false
	cutOffs := 0
	unansweredGzip := 0
	for {
		if s.ctx.Err() != nil {
			return answer{}, false
		}
		gzipped := s.gzip && !identity
		ans := s.attempt(body, gzipped)
		if s.ctx.Err() != nil {
			return answer{}, false
		}
		switch ans.kind {
		case kindAccepted:
			s.stats.Writes.Add(1)
			s.tenantVerified = true
			if gzipped {
				s.gzipVerified = true
			}
			if identity && s.gzip {
				s.gzip = false
				s.c.Log.Warnf("content_encoding: CnosDB at %s does not decode gzip bodies (versions before 2.3.4 ignore Content-Encoding): sending uncompressed from now on",
					s.c.endpoints[s.urlIndex].name)
			}
			s.recovered()
			return ans, true
		case kindContent:
			if gzipped && !s.gzipVerified {
				// CnosDB 2.3.0 reads a gzip body as text and fails to
				// parse it: try once without, before blaming the lines.
				identity = true
				continue
			}
			if ans.bare500 && !s.tenantVerified {
				if missing := s.tenantMissing(); missing != "" {
					ans = answer{kind: kindConfig, reason: missing}
					s.failed(ans)
					s.nextURL()
					break
				}
				s.tenantVerified = true
			}
			s.recovered()
			return ans, true
		case kindTooLarge:
			s.recovered()
			return ans, true
		case kindEncoding:
			s.gzip = false
			s.c.Log.Warnf("content_encoding: CnosDB at %s refused gzip (%s): it is older than 2.3.4; sending uncompressed from now on",
				s.c.endpoints[s.urlIndex].name, ans.reason)
			continue
		case kindServer:
			serverTries++
			if serverTries > s.c.MaxRetries {
				s.recovered()
				ans.kind = kindContent
				ans.reason += fmt.Sprintf(" (still failing after max_retries = %d)", s.c.MaxRetries)
				return ans, true
			}
			s.failed(ans)
			s.nextURL()
		case kindDatabase:
			if s.c.CreateDatabase {
				err := s.createDatabase()
				if err == nil && !created {
					created = true
					continue
				}
				if err != nil {
					ans.reason += "; creating it failed: " + err.Error()
				}
			} else {
				ans.reason = fmt.Sprintf("database %q does not exist in tenant %q (%s): create it, or set create_database = true; holding the data and retrying",
					s.c.Database, s.c.Tenant, ans.reason)
				ans.kind = kindConfig
			}
			s.failed(ans)
		default: // transient, config
			if ans.kind == kindConfig {
				ans.reason = s.c.explainRefusal(ans.reason)
			}
			if gzipped && !s.gzipVerified && ans.unanswered && s.ping(s.urlIndex) {
				// CnosDB 2.3.0 reads a gzip body as text, and on some
				// its line-protocol parser panics: the connection closes
				// without an answer, every time for the same body. Twice
				// in a row from a server that answers pings (once may be
				// a stale connection), probe without gzip as for its 500.
				if unansweredGzip++; unansweredGzip >= 2 {
					identity = true
				}
				continue
			}
			if ans.cutOff && s.ping(s.urlIndex) {
				// Cut off while sending, by a server that answers: once
				// may be a restart or a stale connection, twice in a row
				// is CnosDB's 413 that no client sending at once can read.
				if cutOffs++; cutOffs >= 2 {
					s.recovered()
					return answer{kind: kindTooLarge, reason: "CnosDB closed the connection twice before taking the whole body, while answering pings: " +
						"taken for its 413 (a body over its write_sql_limit); " + ans.reason}, true
				}
				continue
			}
			s.failed(ans)
			s.nextURL()
		}
		if !s.backoff(ans) {
			return answer{}, false
		}
	}
}

// explainRefusal adds to CnosDB's words which options may be at fault:
// CnosDB with password checks on refuses an unknown user, a wrong password
// and an unknown tenant alike ("Access denied ... username or password
// invalid"), and names no option either way.
func (c *CnosDB) explainRefusal(reason string) string {
	var hint string
	switch {
	case strings.Contains(reason, "Access denied"):
		hint = fmt.Sprintf("check username (%q) and password", c.user)
		if c.Tenant != defaultTenant {
			hint += fmt.Sprintf(", and tenant (%q): CnosDB with password checks refuses an unknown tenant in the same words", c.Tenant)
		}
	case strings.Contains(reason, "The tenant") && strings.Contains(reason, "not found"):
		hint = fmt.Sprintf("check tenant (%q)", c.Tenant)
	case strings.Contains(reason, "The user") && strings.Contains(reason, "not found"):
		hint = fmt.Sprintf("check username (%q)", c.user)
	default:
		return reason
	}
	return reason + " (" + hint + ")"
}

// attempt sends body once to the current URL.
func (s *sender) attempt(body []byte, gzipped bool) answer {
	ep := &s.c.endpoints[s.urlIndex]
	payload := body
	if gzipped {
		s.gzBuf.Reset()
		s.gz.Reset(&s.gzBuf)
		s.gz.Write(body) //nolint:errcheck // writes to a bytes.Buffer do not fail
		s.gz.Close()     //nolint:errcheck // same
		payload = s.gzBuf.Bytes()
	}
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, ep.write, bytes.NewReader(payload))
	if err != nil {
		return answer{kind: kindConfig, reason: err.Error()}
	}
	s.c.setHeaders(req)
	if gzipped {
		req.Header.Set("Content-Encoding", "gzip")
	}
	s.stats.Requests.Add(1)
	start := time.Now()
	defer func() { s.stats.WriteLatency.Observe(time.Since(start)) }()
	resp, err := s.c.client.Do(req)
	if err != nil {
		cutOff := errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
		return answer{kind: kindTransient, reason: err.Error(), unreachable: isUnreachable(err), cutOff: cutOff,
			unanswered: cutOff || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)}
	}
	n, _ := io.ReadFull(resp.Body, s.respBuf)
	// Drain what is left so the connection can be reused.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) //nolint:errcheck // best effort
	resp.Body.Close()
	return classify(resp.StatusCode, s.respBuf[:n], gzipped)
}

func (c *CnosDB) setHeaders(req *http.Request) {
	for k, v := range c.header {
		req.Header[k] = v
	}
	if c.authHeader != "" {
		req.Header.Set("Authorization", c.authHeader)
	}
	if c.hostHeader != "" {
		req.Host = c.hostHeader
	}
}

var plainIdentifier = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// createDatabase sends CREATE DATABASE IF NOT EXISTS to the current URL.
func (s *sender) createDatabase() error {
	name := s.c.Database
	if !plainIdentifier.MatchString(name) {
		// Quoted, the name keeps its case and any other character.
		name = `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
	}
	status, body, err := s.sql("", "CREATE DATABASE IF NOT EXISTS "+name)
	if err != nil {
		return err
	}
	if status/100 == 2 {
		s.c.Log.Infof("create_database: database %q is ready (%s)", s.c.Database, s.c.endpoints[s.urlIndex].name)
		return nil
	}
	code, msg := errorCode(body)
	return errors.New(describe(status, code, msg))
}

// sql runs one statement at the current URL.
func (s *sender) sql(db, stmt string) (int, []byte, error) {
	return s.c.sqlAt(s.ctx, &s.c.endpoints[s.urlIndex], db, stmt)
}

// sqlAt runs one statement at ep's /api/v1/sql, in database db when it is
// not empty, and returns the status and the answer (JSON; at most 4 MiB of
// it).
func (c *CnosDB) sqlAt(ctx context.Context, ep *endpoint, db, stmt string) (int, []byte, error) {
	u := ep.sql
	if db != "" {
		u += "&db=" + url.QueryEscape(db)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(stmt))
	if err != nil {
		return 0, nil, err
	}
	c.setHeaders(req)
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, body, err
}

// tenantMissing tells an unknown tenant from malformed lines, which
// CnosDB 2.3.0 to 2.3.3 answer alike (500, empty body), by asking for the
// tenant's databases. It returns why the tenant is missing, or "" when it
// exists or that cannot be told.
func (s *sender) tenantMissing() string {
	status, body, err := s.sql("", "SHOW DATABASES")
	if err != nil {
		return ""
	}
	code, msg := errorCode(body)
	// 2.3.0 answers SHOW DATABASES for an unknown tenant with 010016 "Auth
	// error: The tenant not found"; 2.3.4 and later with 030010 or 040008.
	if (status == http.StatusInternalServerError && len(body) == 0) || code == "030010" || code == "040008" ||
		code == "010016" && strings.Contains(msg, "tenant") && strings.Contains(msg, "not found") {
		return fmt.Sprintf("tenant %q does not exist (CnosDB before 2.3.4 answers a write to an unknown tenant as if its lines were malformed): create it or fix tenant; holding the data and retrying", s.c.Tenant)
	}
	return ""
}

func (s *sender) nextURL() {
	s.urlIndex = (s.urlIndex + 1) % len(s.c.endpoints)
	s.currentURL.Store(int32(s.urlIndex))
}

// isUnreachable tells a server that is not there (nothing listens, the
// connection was dropped before an answer, no route, no such host) from
// one that is slow: only the former is worth probing with pings.
func isUnreachable(err error) bool {
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return false
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &dnsErr):
		return true
	}
	return false
}

// failureCause groups failed attempts for the back-off.
type failureCause uint8

const (
	causeNone failureCause = iota
	causeUnreachable
	causeOverload // and timeouts, server errors: the server is there but struggling
	causeConfig   // authentication, tenant, database: waits for a person
)

func causeOf(ans answer) failureCause {
	switch {
	case ans.unreachable:
		return causeUnreachable
	case ans.kind == kindConfig, ans.kind == kindDatabase:
		return causeConfig
	}
	return causeOverload
}

// Repeats of a failure streak's warning: every warnRepeat, and for a
// refused configuration, which only a person can fix, every configRepeat.
const (
	warnRepeat   = 30 * time.Second
	configRepeat = 5 * time.Minute
)

// failed notes a failed attempt and says so, without flooding the log:
// the first failure of a streak (unless the start-up check said it), then
// every warnRepeat (configRepeat when refused for its configuration).
func (s *sender) failed(ans answer) {
	s.stats.Retries.Add(1)
	s.stats.Failing.Store(true)
	switch causeOf(ans) {
	case causeUnreachable:
		s.stats.RetriesUnreachable.Add(1)
	case causeConfig:
		s.stats.RetriesConfig.Add(1)
	default:
		s.stats.RetriesServer.Add(1)
	}
	now := time.Now()
	if s.failures == 0 {
		s.firstFailure = now
	}
	s.failures++
	if cause := causeOf(ans); cause != s.streakCause {
		s.streakCause, s.streak, s.probed = cause, 0, false
	}
	s.streak++
	s.lastError = ans.reason
	ep := s.c.endpoints[s.urlIndex].name
	repeat := warnRepeat
	if ans.kind == kindConfig {
		repeat = configRepeat
	}
	if s.failures == 1 && ans.kind == kindConfig && s.c.configReported.Load() {
		s.lastWarn = now // said at start
		s.warned = true
		s.c.Log.Debugf("writing to %s: %s (attempt %d, as the start-up check said)", ep, ans.reason, s.failures)
		return
	}
	switch {
	case s.failures == 1 || now.Sub(s.lastWarn) >= repeat:
		s.lastWarn = now
		s.warned = true
		if ans.kind == kindConfig {
			s.c.Log.Errorf("writing to %s: %s (attempt %d, retrying with back-off until it is fixed)", ep, ans.reason, s.failures)
		} else {
			s.c.Log.Warnf("writing to %s: %s (attempt %d, retrying with back-off)", ep, ans.reason, s.failures)
		}
	default:
		s.c.Log.Debugf("writing to %s: %s (attempt %d)", ep, ans.reason, s.failures)
	}
}

// recovered ends a streak of failures, saying how long delivery was held
// up and how much was held meanwhile: at the warning's level when the
// streak was warned of, so whoever saw the outage sees its end.
func (s *sender) recovered() {
	if s.failures == 0 {
		return
	}
	s.stats.Failing.Store(false)
	held := s.stats.held()
	logf := s.c.Log.Infof
	if s.warned {
		logf = s.c.Log.Warnf
	}
	logf("writing to %s again, after %d failed attempts over %s; delivering the %d lines held meanwhile",
		s.c.endpoints[s.urlIndex].name, s.failures, time.Since(s.firstFailure).Round(time.Millisecond), max(held, 0))
	s.failures, s.warned = 0, false
	s.streak, s.streakCause, s.probed = 0, causeNone, false
}

// probeInterval is how often a sender that cannot reach CnosDB asks
// /api/v1/ping whether it is back, between its write attempts: delivery
// resumes within about this long of the server's return, whatever the
// back-off has grown to, and a ping costs the server next to nothing.
const probeInterval = 500 * time.Millisecond

// hurryInterval bounds the wait between attempts once the process is
// stopping: the shutdown budget is for attempts, not for sleeping.
const hurryInterval = 250 * time.Millisecond

// backoff waits before the next attempt after ans: every URL is tried once
// first, then the wait doubles per round of failures of the same cause up
// to retry_max_interval, with jitter so that several writers do not retry
// in step. While the server cannot be reached, the wait ends early as soon
// as a ping answers; once the process is stopping, waits are
// hurryInterval at most. It returns false when shutdown_timeout
// runs out meanwhile.
func (s *sender) backoff(ans answer) bool {
	if !s.hurrying {
		select {
		case <-s.hurry:
			s.hurrying = true
		default:
		}
	}
	if s.hurrying {
		return s.sleep(min(time.Duration(s.c.RetryInitialInterval), hurryInterval), false)
	}
	n := len(s.c.endpoints)
	if s.streak%n != 0 {
		return true
	}
	round := s.streak / n
	d := time.Duration(s.c.RetryInitialInterval)
	for i := 1; i < round && d < time.Duration(s.c.RetryMaxInterval); i++ {
		d *= 2
	}
	d = min(d, time.Duration(s.c.RetryMaxInterval))
	d = d/2 + rand.N(d/2+1)
	return s.sleep(d, ans.unreachable && !s.probed)
}

// sleep waits d, or less: until the process starts stopping, or, with
// probe, until a ping answers. It returns false when shutdown_timeout ran
// out.
func (s *sender) sleep(d time.Duration, probe bool) bool {
	until := time.Now().Add(d)
	for {
		wait := time.Until(until)
		if wait <= 0 {
			return true
		}
		if probe {
			wait = min(wait, probeInterval)
		}
		hurry := s.hurry
		if s.hurrying {
			hurry = nil // closed for good: only the timer ends this wait
		}
		s.timer.Reset(wait)
		select {
		case <-s.timer.C:
		case <-hurry:
			s.timer.Stop()
			s.hurrying = true
			return s.ctx.Err() == nil
		case <-s.ctx.Done():
			s.timer.Stop()
			return false
		}
		if probe && time.Now().Before(until) && s.pingAny() {
			s.probed = true
			return true
		}
	}
}

// pingAny asks each URL's /api/v1/ping, the current one first, and makes
// the first that answers 200 current.
func (s *sender) pingAny() bool {
	for i := range s.c.endpoints {
		idx := (s.urlIndex + i) % len(s.c.endpoints)
		if s.ping(idx) {
			s.urlIndex = idx
			return true
		}
	}
	return false
}

// ping reports whether endpoint idx answers /api/v1/ping with 200, within
// probeInterval.
func (s *sender) ping(idx int) bool {
	status, _, err := s.askPing(idx, probeInterval)
	return err == nil && status == http.StatusOK
}

// askPing GETs endpoint idx's /api/v1/ping within timeout.
func (s *sender) askPing(idx int, timeout time.Duration) (int, []byte, error) {
	return s.c.pingAt(s.ctx, &s.c.endpoints[idx], timeout, s.respBuf)
}

// pingAt GETs ep's /api/v1/ping within timeout, and returns the status and
// the start of the answer (read into buf).
func (c *CnosDB) pingAt(ctx context.Context, ep *endpoint, timeout time.Duration, buf []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep.ping, nil)
	if err != nil {
		return 0, nil, err
	}
	c.setHeaders(req)
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	n, _ := io.ReadFull(resp.Body, buf)
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) //nolint:errcheck // best effort
	resp.Body.Close()
	return resp.StatusCode, buf[:n], nil
}

// pingVersion reads "2.3.0" of a ping answer's "2.3.0, revision <git
// hash>"; "" when it holds none.
func pingVersion(body []byte) string {
	var ping struct {
		Version string `json:"version"`
	}
	if json.Unmarshal(body, &ping) != nil {
		return ""
	}
	v, _, _ := strings.Cut(ping.Version, ",")
	return strings.TrimSpace(v)
}
