package cnosdbtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"time"
)

// MarshalJSON writes a row for the /_test/rows endpoint. Besides the
// nanosecond time it gives RFC 3339 text, since shell tools such as jq
// read numbers as doubles; non-finite floats become strings.
func (r Row) MarshalJSON() ([]byte, error) {
	b := []byte(`{"time":`)
	b = strconv.AppendInt(b, r.Time, 10)
	b = append(b, `,"time_rfc3339":"`...)
	b = time.Unix(0, r.Time).UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","tags":{`...)
	for i, k := range sortedKeys(r.Tags) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, r.Tags[k])
	}
	b = append(b, `},"fields":{`...)
	for i, k := range sortedKeys(r.Fields) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		switch v := r.Fields[k].(type) {
		case float64:
			if math.IsNaN(v) || math.IsInf(v, 0) {
				b = appendJSONString(b, strconv.FormatFloat(v, 'g', -1, 64))
			} else {
				b = appendRyuFloat(b, v) // always has '.' or 'e', so it reads back as a float
			}
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case uint64:
			b = strconv.AppendUint(b, v, 10)
		case bool:
			b = strconv.AppendBool(b, v)
		case string:
			b = appendJSONString(b, v)
		default:
			return nil, fmt.Errorf("cnosdbtest: field %s has type %T", k, v)
		}
	}
	return append(b, "}}"...), nil
}

// UnmarshalJSON reads what MarshalJSON wrote. Floats keep their type;
// integers come back as int64, or uint64 when too large for int64.
func (r *Row) UnmarshalJSON(data []byte) error {
	var raw struct {
		Time   int64                      `json:"time"`
		Tags   map[string]string          `json:"tags"`
		Fields map[string]json.RawMessage `json:"fields"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	r.Time, r.Tags = raw.Time, raw.Tags
	if len(r.Tags) == 0 {
		r.Tags = nil
	}
	r.Fields = make(map[string]any, len(raw.Fields))
	for k, msg := range raw.Fields {
		var v any
		dec := json.NewDecoder(bytes.NewReader(msg))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return err
		}
		if n, ok := v.(json.Number); ok {
			if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
				v = i
			} else if u, err := strconv.ParseUint(string(n), 10, 64); err == nil {
				v = u
			} else {
				f, _ := n.Float64()
				v = f
			}
		}
		r.Fields[k] = v
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// serveControl answers the /_test/ endpoints documented in the package doc.
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	reply := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		b, err := json.Marshal(v)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(append(b, '\n'))
	}
	fail := func(format string, args ...any) {
		http.Error(w, fmt.Sprintf(format, args...), http.StatusBadRequest)
	}
	needPost := func() bool {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "use POST", http.StatusMethodNotAllowed)
			return false
		}
		return true
	}
	switch r.URL.Path {
	case "/_test/rows":
		rows := s.Rows(q.Get("tenant"), q.Get("db"), q.Get("measurement"))
		if rows == nil {
			rows = []Row{}
		}
		reply(rows)
	case "/_test/measurements":
		names := s.Measurements(q.Get("tenant"), q.Get("db"))
		if names == nil {
			names = []string{}
		}
		reply(names)
	case "/_test/stats":
		reply(s.Stats())
	case "/_test/overload":
		if !needPost() {
			return
		}
		n, err := strconv.Atoi(q.Get("n"))
		if err != nil || n < 0 {
			fail("overload needs n=<count>")
			return
		}
		s.Overload(n)
		reply(map[string]int{"overload": n})
	case "/_test/latency":
		if !needPost() {
			return
		}
		d, err := time.ParseDuration(q.Get("d"))
		if err != nil || d < 0 {
			fail("latency needs d=<duration>, e.g. d=2s")
			return
		}
		s.SetLatency(d)
		reply(map[string]string{"latency": d.String()})
	case "/_test/fail":
		if !needPost() {
			return
		}
		status, err1 := strconv.Atoi(q.Get("status"))
		n, err2 := strconv.Atoi(q.Get("n"))
		body, err3 := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err1 != nil || err2 != nil || err3 != nil || status < 100 || status > 999 || n < 0 {
			fail("fail needs status=<code>&n=<count>, the answer body as request body")
			return
		}
		s.FailWrites(status, string(body), n)
		reply(map[string]int{"status": status, "n": n})
	case "/_test/reset":
		if !needPost() {
			return
		}
		s.Overload(0)
		s.SetLatency(0)
		s.FailWrites(0, "", 0)
		reply(map[string]bool{"reset": true})
	case "/_test/down":
		if !needPost() {
			return
		}
		d, err := time.ParseDuration(q.Get("for"))
		if err != nil || d <= 0 {
			fail("down needs for=<duration>, e.g. for=60s: nothing can bring the server up over HTTP")
			return
		}
		s.serveDown(w, d)
	default:
		http.NotFound(w, r)
	}
}

// serveDown answers on a hijacked connection after going down, so the
// caller knows the server is down once it has the answer.
func (s *Server) serveDown(w http.ResponseWriter, d time.Duration) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "cannot hijack the connection", http.StatusInternalServerError)
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer conn.Close()
	s.downFor(d)
	body := fmt.Sprintf(`{"down_for":%q}`+"\n", d.String())
	fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	_ = buf.Flush()
	s.logf("POST /_test/down -> down for %v", d)
}
