// Package cnosdbtest is an in-memory stand-in for CnosDB's HTTP API, for
// the output plugin's tests, the end-to-end tests and the demo. It imitates
// two dialects: V230 (CnosDB 2.3.0, the seed guide's version) and V24 (a
// real CnosDB 2.4.3). The project's CnosDB HTTP API facts were the brief,
// the CnosDB source (tags v2.3.0, v2.4.1, v2.4.3) filled it in, and a real
// server is the judge: internal/cnosdbreal's conformance test sends the
// same requests to a real CnosDB and to this server and compares the
// answers and the rows stored (docs/cnosdb.md lists what it checks and
// what it found different). Where the two differ, this server is wrong.
//
// # Endpoints
//
//	GET|HEAD /api/v1/ping   200 {"status":"healthy","version":"2.3.0, revision <git hash>"} (2.4.3 for V24); no Authorization needed
//	POST /api/v1/write?db=&tenant=&precision=   line protocol; 200 with an empty body
//	POST /api/v1/sql?db=&tenant=                the statements below
//
// Another path is 404 and another method 405, both with empty bodies. The
// SQL endpoint runs only:
//
//	CREATE DATABASE [IF NOT EXISTS] name [WITH TTL '30d' PRECISION 'ms' SHARD n VNODE_DURATION '1d' REPLICA n]
//	DROP DATABASE [IF EXISTS] name
//	SHOW DATABASES | SHOW TABLES
//	SELECT * FROM [db.]table [ORDER BY time [ASC|DESC]] [LIMIT n]
//	SELECT COUNT(*) FROM [db.]table
//
// Other statements get 422 010005 (not implemented).
//
// # Checks, in CnosDB's order, and their answers
//
//	Content-Length missing (chunked body)   500, empty (warp's length_required is an unhandled rejection)
//	Content-Length > MaxBody                413, empty, before the body is read; the connection is then closed,
//	                                        so a client still sending gets a broken pipe instead (unless it
//	                                        sent Expect: 100-continue and waits for 100 Continue, as curl does)
//	no Authorization header                 400 {"error_code":"000000","error_message":"Missing request header \"authorization\""}
//	V24: unknown Content-Encoding           400 040005 "Invalid header: content encoding not support: xz"
//	V24: body does not decode               400 040013 "Error decode request: ..."
//	not "Basic base64(user:pass)" (Bearer)  400 040006 "Parse auth, malformed basic auth encoding: <header>"
//	unknown user                            422 010016 "Auth error: The user bob not found"; with password checks
//	                                                   (Options.Users) V24 says as for a wrong password
//	wrong password (only with Users set)    422 010016 V230 "Auth error: Access denied for user 'root' (using password) " (sic),
//	                                                   V24 "Auth error: Access denied for user 'root' (using xxx) username or password invalid"
//	unknown tenant                          V230 500 empty; V24 422 010016 "Auth error: The tenant x not found"
//	V24: body not UTF-8                     422 040015 (V230 replaces bad bytes with U+FFFD)
//	a line does not parse                   V230 500 empty; V24 422 040004 "Error parsing message: ..."
//	database missing                        V230 422 050001 "Meta request error: Database not found: \"db\""
//	                                        (skipped for an empty body, which it answers 200);
//	                                        V24 422 030017 "Database not found: \"db\""
//	time * precision overflows int64        422 050014 "timestamp overflow"
//	time older than now - TTL               V230 422 050014 "write expired time data not permit";
//	                                        V24  422 030034 "Operation not support: create expired bucket"
//	V24: column types differ inside a body  422 050014 "line to batch error: Expected i64 column"
//	type differs from the stored schema     V230 422 020004 "DataSchemaError: unrecognized field type f",
//	                                        V24 422 050014 "Apply engine failed: DataSchemaError: Column 'f' type error, found I64 expected F64"
//	injected overload (Overload)            422 020005 "Memory Exhausted Retry Later"
//
// Every check covers the whole body: one failure stores nothing. Error bodies
// are {"error_code":"NNNNNN","error_message":"..."} with Content-Type
// application/json. There is no 401, 429 or 503.
//
// # Findings from the CnosDB source
//
// Authentication: the header must start with "Basic " exactly; anything else
// (Bearer included) is 400 040006 with the header echoed. CnosDB checks
// passwords only with auth_enabled = true, which is not its default: by
// default the user must exist and any password goes (a real 2.4.3 takes
// root with any password). Options.Users turns the checks on. Every
// configured user is treated as an admin, so the tenant is only checked
// after the password. The ping route sits before the auth filter in both
// versions.
//
// Versions: the V24 parser, decoding and 422 for bad lines arrived in 2.4.1.
// 2.3.4 and 2.3.5 decode bodies and answer 422 030010 for an unknown tenant
// but keep the 2.3.0 parser and its bare 500; 2.4.0 still behaves like 2.3.0
// in all three; 2.4.3 answers the tenant, a missing database, a type
// conflict and an expired point with other codes than 2.4.1's source has
// (above). A client has to cope with every mix of the two dialects.
//
// Unknown tenant: 2.3.0 to 2.3.3 and 2.4.0 map MetaError::TenantNotFound to
// a bare 500; 2.3.4 and 2.4.1 answer 422 030010 (cnosdb issue #1698, PR #1704).
//
// TTL: a database created without TTL gets 365 days in 2.3.0
// (DatabaseOptions::DEFAULT_TTL), public included, so 2.3.0 refuses points
// older than a year with 050014. 2.4 defaults to INF, and refuses expired
// points only when it would have to create a bucket for them (050001 above).
// Options.DefaultTTL changes the default; CREATE DATABASE ... WITH TTL sets
// one per database ('30d', '12h', '90m', a bare number of days, or 'INF').
//
// Timestamps: a line without one gets the server's clock in nanoseconds,
// which CnosDB then reads in the request's precision: with precision=ms or
// us such a line overflows and the body gets 050014. Conversion to the
// database precision truncates (ns to ms divides). precision is
// case-insensitive; any other value is ns.
//
// Line protocol, 2.3.0: its hand-written tokenizer reads the whole body,
// one token after another, each skipping what comes before it, and this
// server does the same (a real 2.3.0 agrees, see the conformance test). It
// keeps backslashes in measurement names, tag keys and values and field
// keys, and keeps the escapes inside string field values too ("a \"b\"" is
// stored as a \"b\"). The measurement starts at the first letter, digit or
// backslash and runs to the next comma, even an escaped one, across
// newlines: a line without tags takes the next line's text into its name,
// and only a tagless last line fails. Fields end at a space outside quotes
// or at any newline, so a string holding a newline fails. An empty field
// value is the float 1, "truex" is true, a backslash before a closing quote
// keeps the string open. A line without a timestamp takes the next line's
// first digits as its timestamp, so clients should always send timestamps
// to 2.3.0. Field types are checked against the stored schema only on a
// table's first line in a body; later lines of another number type are
// stored as their bits (see checkSchema230).
//
// Line protocol, 2.4: standard escapes (\, \= \space in names, \" \\ in
// strings), tagless lines allowed, names taken as written. This server
// parses V24 with github.com/influxdata/line-protocol/v2, which differs from
// CnosDB's parser only in corners: it also unescapes \n \r \t inside strings,
// skips #comment lines, and rejects NaN/Inf.
//
// Both versions sort a line's tags and fields by key and keep the first of
// duplicate keys.
//
// Same series and time: CnosDB merges rows field by field and the later
// write of a field wins, whether the two lines came in one body or in two
// requests (2.3.0: stable sort then "select next" in the memcache reader and
// dedup_front_by_key keeping the last at flush; 2.4: dedup_and_sort_row_data
// fills the newest row from older ones; the 2.4.1 e2e test writes fa then fb
// at the same time and reads one row with both). So a later "m,t=a f=2 1"
// replaces f of an earlier "m,t=a f=1,g=1 1" and keeps g. The brief says the
// first line of a batch wins; nothing in the source does that except the
// per-line dedup of duplicate keys. Options.FirstWinsInBatch gives the
// brief's behaviour if a test needs it.
//
// Schema: a table is created by its first write with columns time, then
// tags, then fields, in first-seen order; later columns are appended. A name
// used as tag and field, or a field with another type, is a conflict (see
// the table above). SELECT * lists columns in this stored order.
//
// SQL output (arrow 36 in 2.3.0, arrow 42 in 2.4): CSV is the default, with
// a header row, times as 2023-07-28T02:12:11.000000000 (always nine
// digits, no zone), floats in lexical-core form (1.0, 429351833.0,
// 1.6185542082e10), empty text for nulls, quotes only where needed. JSON
// (Accept: application/json) is an array of objects without the null
// members, keys sorted and floats as serde_json writes them (16185542082.0)
// in both; 2.3.0 writes times as "2023-07-28 02:12:11", 2.4 as
// "2023-07-28T02:12:11.050". Accept also takes application/tsv,
// application/nd-json, application/table, application/* and */*, and in 2.4
// text/<variant> too, the variant in any case; other values are 400 040005
// (2.4.3 doubles its "Invalid header: " prefix). 2.4.3's table format has
// no newline after its last line. COUNT(*) is headed COUNT(UInt8(1)); SHOW
// DATABASES is headed Database (2.3.0) or database_name (2.4) and lists
// public and usage_schema too, and cluster_schema in 2.4. DDL answers 200
// with an empty body. Unquoted SQL identifiers are lower-cased. A missing
// table is 422 010001 ("Datafusion: Error during planning: ..."), in 2.4 also
// when its database is missing (2.3.0: 422 030017), CREATE of an existing
// database 422 030018.
//
// Request bodies: 2.3.0 ignores Content-Encoding; 2.4 decodes gzip, deflate
// (raw deflate, flate2's DeflateDecoder, not zlib), br and zstd before it
// authenticates. This server decodes all but br (no brotli in this module;
// it answers 400 040013). MaxBody applies to the encoded body.
//
// # Test control endpoints
//
// With Options.Control (always on in cmd/cnosdb-test-server) the same port
// also serves, without authentication:
//
//	GET  /_test/rows?tenant=&db=&measurement=   JSON list of rows: {"time":ns,"time_rfc3339":"...","tags":{},"fields":{}}
//	GET  /_test/measurements?tenant=&db=        JSON list of table names
//	GET  /_test/stats                           JSON Stats
//	POST /_test/overload?n=3                    the next 3 storable writes get 422 020005
//	POST /_test/latency?d=2s                    delay every API answer by 2s (d=0 turns it off)
//	POST /_test/fail?status=503&n=2             the next 2 writes get this status and the request's body
//	POST /_test/reset                           clear overload, latency and fail
//	POST /_test/down?for=60s                    drop all connections and refuse new ones for 60s
//
// Empty tenant and db mean cnosdb and public. /_test/down answers only after
// the server is down; nothing can bring it up early over HTTP.
package cnosdbtest
