package cnosdbtest

import (
	"strings"
	"testing"
)

// 2023-11-14T22:13:20Z and 50 ms later.
const sqlData = "m,host=a,region=eu usage=1.5,count=3i,ok=t,msg=\"hi, there\" 1700000000000000000\n" +
	"m,host=b usage=2 1700000000050000000\n"

func TestSelectFormats(t *testing.T) {
	tests := []struct {
		name   string
		d      Dialect
		sql    string
		accept string
		ctype  string
		want   string
	}{
		{
			name: "csv", d: V230, sql: "SELECT * FROM m", ctype: "application/csv",
			want: "time,host,region,count,msg,ok,usage\n" +
				"2023-11-14T22:13:20.000000000,a,eu,3,\"hi, there\",true,1.5\n" +
				"2023-11-14T22:13:20.050000000,b,,,,,2.0\n",
		},
		{
			name: "csv 2.4", d: V24, sql: "select * from m order by time;", accept: "*/*", ctype: "application/csv",
			want: "time,host,region,count,msg,ok,usage\n" +
				"2023-11-14T22:13:20.000000000,a,eu,3,\"hi, there\",true,1.5\n" +
				"2023-11-14T22:13:20.050000000,b,,,,,2.0\n",
		},
		{
			name: "json 2.3.0 sorts keys", d: V230, sql: "SELECT * FROM m", accept: "application/json", ctype: "application/json",
			want: `[{"count":3,"host":"a","msg":"hi, there","ok":true,"region":"eu","time":"2023-11-14T22:13:20","usage":1.5},` +
				`{"host":"b","time":"2023-11-14T22:13:20.050","usage":2.0}]`,
		},
		{
			name: "json 2.4 sorts keys too", d: V24, sql: "SELECT * FROM m", accept: "application/json", ctype: "application/json",
			want: `[{"count":3,"host":"a","msg":"hi, there","ok":true,"region":"eu","time":"2023-11-14T22:13:20","usage":1.5},` +
				`{"host":"b","time":"2023-11-14T22:13:20.050","usage":2.0}]`,
		},
		{
			name: "nd-json", d: V24, sql: "SELECT * FROM m LIMIT 1", accept: "application/nd-json", ctype: "application/nd-json",
			want: `{"count":3,"host":"a","msg":"hi, there","ok":true,"region":"eu","time":"2023-11-14T22:13:20","usage":1.5}` + "\n",
		},
		{
			name: "tsv", d: V230, sql: "SELECT * FROM m ORDER BY time DESC", accept: "application/tsv", ctype: "application/tsv",
			want: "time\thost\tregion\tcount\tmsg\tok\tusage\n" +
				"2023-11-14T22:13:20.050000000\tb\t\t\t\t\t2.0\n" +
				"2023-11-14T22:13:20.000000000\ta\teu\t3\thi, there\ttrue\t1.5\n",
		},
		{
			name: "table", d: V230, sql: "SELECT COUNT(*) FROM m", accept: "application/table", ctype: "application/table",
			want: "+-----------------+\n| COUNT(UInt8(1)) |\n+-----------------+\n| 2               |\n+-----------------+",
		},
		{
			name: "count", d: V24, sql: "select count(*) from public.m", ctype: "application/csv",
			want: "COUNT(UInt8(1))\n2\n",
		},
		{
			name: "order by time desc, limit", d: V230, sql: "SELECT * FROM m ORDER BY time DESC LIMIT 1", ctype: "application/csv",
			want: "time,host,region,count,msg,ok,usage\n2023-11-14T22:13:20.050000000,b,,,,,2.0\n",
		},
		{
			name: "show databases", d: V230, sql: "SHOW DATABASES", ctype: "application/csv",
			want: "Database\npublic\nusage_schema\n",
		},
		{
			name: "show databases 2.4", d: V24, sql: "show databases;", ctype: "application/csv",
			want: "database_name\ncluster_schema\npublic\nusage_schema\n",
		},
		{
			name: "show tables", d: V230, sql: "SHOW TABLES", ctype: "application/csv",
			want: "Table\nm\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, Options{Dialect: tc.d, DefaultTTL: -1})
			if resp := write(t, s, "", sqlData); resp.status != 200 {
				t.Fatal(resp.status, resp.body)
			}
			var hdr map[string]string
			if tc.accept != "" {
				hdr = map[string]string{"Accept": tc.accept}
			}
			resp := query(t, s, tc.sql, hdr)
			if resp.status != 200 || resp.body != tc.want || resp.header.Get("Content-Type") != tc.ctype {
				t.Fatalf("got %d %q %q\nwant %q", resp.status, resp.header.Get("Content-Type"), resp.body, tc.want)
			}
		})
	}
}

func TestSQLStatements(t *testing.T) {
	for _, d := range dialects {
		s := startServer(t, Options{Dialect: d, DefaultTTL: -1})
		steps := []struct {
			sql    string
			accept string
			status int
			body   string
		}{
			{sql: "CREATE DATABASE IF NOT EXISTS telegraf", status: 200},
			{sql: "create database telegraf", status: 422, body: errBody("030018", `Database "telegraf" already exists`)},
			{sql: "CREATE DATABASE IF NOT EXISTS telegraf WITH TTL '3650d' SHARD 2 VNODE_DURATION '1d' REPLICA 1", status: 200},
			{sql: "CREATE DATABASE short WITH TTL '1h';", status: 200},
			{sql: "SHOW DATABASES", status: 200},
			{sql: "DROP DATABASE nope", status: 422, body: errBody("030017", `Database not found: "nope"`)},
			{sql: "DROP DATABASE IF EXISTS nope", status: 200},
			{sql: "DROP DATABASE short", status: 200},
			{sql: "SELECT * FROM missing", status: 422, body: errTableNotFound(d, "cnosdb", "public", "missing").Error()},
			{sql: "SELECT * FROM gone.m", status: 422, body: errTableNotFound(d, "cnosdb", "gone", "m").Error()},
			{sql: "SELECT 1; SELECT 2", status: 422, body: errBody("010013", "Multi-statement not allow, found num:2, sql:SELECT 1; SELECT 2")},
			{sql: "SELECT * FROM cpu", status: 422},
			{sql: `SELECT * FROM "Cpu"`, status: 200, body: "time,t,f\n2023-11-14T22:13:20.000000000,a,1.0\n"},
			{sql: "SELECT * FROM m", accept: "application/xml", status: 400, body: map[Dialect]string{
				V230: errBody("040005", "Invalid header: invalid variant: xml"),
				V24:  errBody("040005", "Invalid header: Invalid header: invalid variant: xml"),
			}[d]},
			{sql: "SELECT * FROM m", accept: "text/plain", status: 400, body: map[Dialect]string{
				V230: errBody("040005", "Invalid header: accept type not support: text/plain"),
				V24:  errBody("040005", "Invalid header: Invalid header: invalid variant: plain"),
			}[d]},
			{sql: "ALTER DATABASE public SET TTL '1d'", status: 422},
			{sql: "SELECT * FROM m WHERE f > 1", status: 422},
		}
		write(t, s, "", "Cpu,t=a f=1 1700000000000000000")
		for _, st := range steps {
			var hdr map[string]string
			if st.accept != "" {
				hdr = map[string]string{"Accept": st.accept}
			}
			resp := query(t, s, st.sql, hdr)
			want := st.body
			if strings.HasPrefix(want, "422 ") { // an apiError's Error text
				want = ""
			}
			if resp.status != st.status || (want != "" && resp.body != want) || (st.status == 200 && st.body == "" && strings.HasPrefix(st.sql, "C") && resp.body != "") {
				t.Errorf("%s %q: %d %q, want %d %q", d, st.sql, resp.status, resp.body, st.status, want)
			}
		}
		if got := query(t, s, "SHOW DATABASES", nil).body; !strings.Contains(got, "telegraf\n") || strings.Contains(got, "short") {
			t.Errorf("%s databases: %q", d, got)
		}
		if resp := write(t, s, "?db=telegraf", "m,t=a f=1 1700000000000000000"); resp.status != 200 {
			t.Errorf("%s write to a created database: %d %s", d, resp.status, resp.body)
		}
	}
}

func TestSQLUnknownTenant(t *testing.T) {
	for d, want := range map[Dialect]string{
		V230: errBody("010016", "Auth error: The tenant not found"),
		V24:  errBody("010016", "Auth error: The tenant x not found"),
	} {
		s := startServer(t, Options{Dialect: d})
		resp := s.testDo(t, request{path: "/api/v1/sql?tenant=x", body: []byte("SHOW DATABASES")})
		if resp.status != 422 || resp.body != want {
			t.Errorf("%s: %d %s", d, resp.status, resp.body)
		}
	}
}

func TestTableNotFoundText(t *testing.T) {
	s := startServer(t, Options{})
	resp := query(t, s, "select * from nothing", nil)
	want := errBody("010001", "Datafusion: Error during planning: failed to resolve tenant:cnosdb  db: public, table: nothing")
	if resp.status != 422 || resp.body != want {
		t.Fatalf("%d %s", resp.status, resp.body)
	}
}

func TestParseTTL(t *testing.T) {
	for in, ok := range map[string]bool{"30": true, "30d": true, "12H": true, "90m": true, "INF": true, "inf": true, "": false, "3w": false, "d": false} {
		if _, got := parseTTL(in); got != ok {
			t.Errorf("parseTTL(%q) ok=%v", in, got)
		}
	}
	if d, _ := parseTTL("2h"); d.Hours() != 2 {
		t.Errorf("2h = %v", d)
	}
}
