package cnosdbtest

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func control(t *testing.T, s *Server, method, path, body string) response {
	t.Helper()
	return s.testDo(t, request{method: method, path: path, body: []byte(body), noAuth: true})
}

func TestControlEndpoints(t *testing.T) {
	s := startServer(t, Options{Control: true, Databases: []string{"telegraf"}})
	write(t, s, "?db=telegraf", lp(`cpu,host=a usage=1.5,n=2i,u=3u,ok=t,s="x" TS`))

	resp := control(t, s, http.MethodGet, "/_test/rows?db=telegraf&measurement=cpu", "")
	var rows []Row
	if err := json.Unmarshal([]byte(resp.body), &rows); err != nil {
		t.Fatal(err, resp.body)
	}
	want := []Row{{Time: recent, Tags: map[string]string{"host": "a"}, Fields: map[string]any{"usage": 1.5, "n": int64(2), "u": int64(3), "ok": true, "s": "x"}}}
	if !reflect.DeepEqual(rows, want) || !strings.Contains(resp.body, `"time_rfc3339":"`) {
		t.Fatalf("rows %+v\n%s", rows, resp.body)
	}
	if resp := control(t, s, http.MethodGet, "/_test/rows?measurement=none", ""); resp.body != "[]\n" {
		t.Fatalf("no rows: %q", resp.body)
	}
	if resp := control(t, s, http.MethodGet, "/_test/measurements?db=telegraf", ""); resp.body != "[\"cpu\"]\n" {
		t.Fatalf("measurements: %q", resp.body)
	}

	if resp := control(t, s, http.MethodPost, "/_test/overload?n=1", ""); resp.status != 200 {
		t.Fatal(resp.status, resp.body)
	}
	if resp := write(t, s, "?db=telegraf", lp("cpu,host=b usage=1 TS")); resp.status != 422 {
		t.Fatalf("overload: %d", resp.status)
	}
	if resp := control(t, s, http.MethodPost, "/_test/fail?status=502&n=1", `{"error_code":"999999"}`); resp.status != 200 {
		t.Fatal(resp.status, resp.body)
	}
	if resp := write(t, s, "?db=telegraf", lp("cpu,host=b usage=1 TS")); resp.status != 502 || resp.header.Get("Content-Type") != "application/json" {
		t.Fatalf("fail: %d %v", resp.status, resp.header)
	}

	var st Stats
	resp = control(t, s, http.MethodGet, "/_test/stats", "")
	if err := json.Unmarshal([]byte(resp.body), &st); err != nil {
		t.Fatal(err)
	}
	if st.WriteRequests != 3 || st.Count(422, "020005") != 1 || st.Count(502, "999999") != 1 || st.LinesStored != 1 {
		t.Fatalf("stats %+v", st)
	}

	if resp := control(t, s, http.MethodPost, "/_test/latency?d=10s", ""); resp.status != 200 {
		t.Fatal(resp.status)
	}
	if got := time.Duration(s.latency.Load()); got != 10*time.Second {
		t.Fatalf("latency %v", got)
	}
	s.Overload(5)
	s.FailWrites(500, "", 5)
	if resp := control(t, s, http.MethodPost, "/_test/reset", ""); resp.status != 200 {
		t.Fatal(resp.status)
	}
	if resp := write(t, s, "?db=telegraf", lp("cpu,host=c usage=1 TS")); resp.status != 200 {
		t.Fatalf("after reset: %d %s", resp.status, resp.body)
	}

	for _, bad := range []struct{ method, path string }{
		{http.MethodPost, "/_test/overload?n=x"},
		{http.MethodPost, "/_test/latency?d=soon"},
		{http.MethodPost, "/_test/down"},
		{http.MethodPost, "/_test/fail?status=1"},
		{http.MethodGet, "/_test/overload?n=1"},
		{http.MethodGet, "/_test/nothing"},
	} {
		if resp := control(t, s, bad.method, bad.path, ""); resp.status < 400 {
			t.Errorf("%s %s: %d", bad.method, bad.path, resp.status)
		}
	}
}

func TestControlOffByDefault(t *testing.T) {
	s := startServer(t, Options{})
	if resp := control(t, s, http.MethodGet, "/_test/stats", ""); resp.status != 404 {
		t.Fatalf("control endpoints served without Options.Control: %d", resp.status)
	}
}

func TestControlDownFor(t *testing.T) {
	s := startServer(t, Options{Control: true})
	resp := control(t, s, http.MethodPost, "/_test/down?for=2s", "")
	if resp.status != 200 || !strings.Contains(resp.body, "2s") {
		t.Fatalf("down: %d %q", resp.status, resp.body)
	}
	// The answer arrives only once the server is down.
	if _, err := s.testTry(request{method: http.MethodGet, path: "/api/v1/ping"}); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("right after down: %v", err)
	}
	eventually(t, func() bool {
		_, err := s.testTry(request{method: http.MethodGet, path: "/api/v1/ping"})
		return err == nil
	})
}

func TestRowJSONSpecials(t *testing.T) {
	b, err := json.Marshal(Row{Time: 1, Fields: map[string]any{"n": math.NaN(), "big": uint64(math.MaxUint64)}})
	if err != nil {
		t.Fatal(err)
	}
	var r Row
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Fields["n"] != "NaN" || r.Fields["big"] != uint64(math.MaxUint64) || r.Tags != nil {
		t.Fatalf("%s -> %+v", b, r)
	}
}
