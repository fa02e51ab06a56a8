package cnosdb

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/execd"
)

// load decodes a config the way the binary does and runs Init.
func load(t *testing.T, text string) (*CnosDB, error) {
	t.Helper()
	c := New()
	c.Log.SetOutput(&testLog{t: t})
	if err := execd.DecodeConfig(text, "outputs", "cnosdb", c); err != nil {
		return c, err
	}
	return c, c.Init()
}

type testLog struct{ t *testing.T }

func (l *testLog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

func TestSampleConfigLoads(t *testing.T) {
	c, err := load(t, sampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.endpoints) != 1 || c.endpoints[0].write != "http://127.0.0.1:8902/api/v1/write?db=public&precision=ns&tenant=cnosdb" {
		t.Fatalf("endpoints %+v", c.endpoints)
	}
	if c.authHeader != "Basic cm9vdDo=" { // root with an empty password
		t.Fatalf("auth %q", c.authHeader)
	}
}

// guideHTTPBlock is the seed guide's [[outputs.http]] block, renamed, for a
// CnosDB at base.
func guideHTTPBlock(base string) string {
	return `[[outputs.cnosdb]]
  url = "` + base + `/api/v1/write?db=telegraf"
  timeout = "5s"
  method = "POST"
  username = "root"
  password = ""
  data_format = "influx"
  use_batch_format = true
  content_encoding = "identity"
  idle_conn_timeout = 10
`
}

// The seed guide's [[outputs.http]] block, renamed, must work as it is.
func TestGuideHTTPBlock(t *testing.T) {
	c, err := load(t, guideHTTPBlock("http://127.0.0.1:8902"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Database != "telegraf" || c.Tenant != "cnosdb" || c.Precision != "ns" {
		t.Fatalf("database %q tenant %q precision %q", c.Database, c.Tenant, c.Precision)
	}
	if c.endpoints[0].write != "http://127.0.0.1:8902/api/v1/write?db=telegraf&precision=ns&tenant=cnosdb" {
		t.Fatalf("write URL %q", c.endpoints[0].write)
	}
	if time.Duration(c.IdleConnTimeout) != 10*time.Second || time.Duration(c.Timeout) != 5*time.Second {
		t.Fatalf("idle_conn_timeout %s timeout %s", time.Duration(c.IdleConnTimeout), time.Duration(c.Timeout))
	}
}

func TestOptions(t *testing.T) {
	for _, tt := range []struct {
		name  string
		extra string
		check func(*CnosDB) string
	}{
		{"defaults", ``, func(c *CnosDB) string {
			if c.BatchSize != 5000 || c.BatchSizeBytes != 1<<20 || time.Duration(c.FlushInterval) != time.Second ||
				c.MaxBufferedBytes != 16<<20 || c.MaxRetries != 3 || c.gzip || c.CreateDatabase ||
				time.Duration(c.ShutdownTimeout) != 7*time.Second || time.Duration(c.Timeout) != 5*time.Second ||
				c.tsDivisor != 1 || c.Database != "public" || c.Tenant != "cnosdb" {
				return "unexpected defaults"
			}
			return ""
		}},
		{"database tenant precision", "database = \"db1\"\ntenant = \"t1\"\nprecision = \"ms\"", func(c *CnosDB) string {
			if c.endpoints[0].write != "http://127.0.0.1:8902/api/v1/write?db=db1&precision=ms&tenant=t1" || c.tsDivisor != 1e6 {
				return c.endpoints[0].write
			}
			if c.endpoints[0].sql != "http://127.0.0.1:8902/api/v1/sql?tenant=t1" {
				return c.endpoints[0].sql
			}
			return ""
		}},
		{"precision in capitals", `precision = "MS"`, func(c *CnosDB) string {
			if c.tsDivisor != 1e6 || !strings.Contains(c.endpoints[0].write, "precision=ms") {
				return "precision MS"
			}
			return ""
		}},
		{"precision us", `precision = "us"`, func(c *CnosDB) string {
			if c.tsDivisor != 1000 {
				return "divisor"
			}
			return ""
		}},
		{"credentials", "username = \"writer\"\npassword = \"s3cret\"", func(c *CnosDB) string {
			if c.authHeader != "Basic d3JpdGVyOnMzY3JldA==" {
				return c.authHeader
			}
			return ""
		}},
		{"gzip", `content_encoding = "gzip"`, func(c *CnosDB) string {
			if !c.gzip {
				return "gzip off"
			}
			return ""
		}},
		{"batches", "batch_size = 10\nbatch_size_bytes = \"64KiB\"\nflush_interval = \"250ms\"\nmax_buffered_bytes = \"1MiB\"", func(c *CnosDB) string {
			if c.BatchSize != 10 || c.BatchSizeBytes != 64<<10 || time.Duration(c.FlushInterval) != 250*time.Millisecond || c.MaxBufferedBytes != 1<<20 {
				return "batch options"
			}
			return ""
		}},
		{"retries", "max_retries = 0\nretry_initial_interval = \"10ms\"\nretry_max_interval = \"1s\"\nshutdown_timeout = \"2s\"", func(c *CnosDB) string {
			if c.MaxRetries != 0 || time.Duration(c.RetryInitialInterval) != 10*time.Millisecond ||
				time.Duration(c.RetryMaxInterval) != time.Second || time.Duration(c.ShutdownTimeout) != 2*time.Second {
				return "retry options"
			}
			return ""
		}},
		{"headers", "[outputs.cnosdb.headers]\nX-Source = \"telegraf\"\nHost = \"cnosdb.example\"", func(c *CnosDB) string {
			if c.header.Get("X-Source") != "telegraf" || c.hostHeader != "cnosdb.example" {
				return "headers"
			}
			return ""
		}},
		{"authorization header wins", "[outputs.cnosdb.headers]\nAuthorization = \"Basic eDp5\"", func(c *CnosDB) string {
			if c.authHeader != "" || c.header.Get("Authorization") != "Basic eDp5" {
				return "authorization"
			}
			return ""
		}},
		{"transport", "idle_conn_timeout = \"30s\"\nmax_idle_conn = 4\nmax_idle_conn_per_host = 2\nresponse_timeout = \"3s\"\ninsecure_skip_verify = true", func(c *CnosDB) string {
			tr := c.client.Transport.(*http.Transport)
			if tr.IdleConnTimeout != 30*time.Second || tr.MaxIdleConns != 4 || tr.MaxIdleConnsPerHost != 2 ||
				tr.ResponseHeaderTimeout != 3*time.Second || !tr.TLSClientConfig.InsecureSkipVerify {
				return "transport options"
			}
			return ""
		}},
		{"log level", `log_level = "debug"`, func(c *CnosDB) string {
			if c.Log.Level().String() != "DEBUG" {
				return c.Log.Level().String()
			}
			return ""
		}},
		{"url with tenant and precision", "urls = []\nurl = \"https://h:8904/prefix/api/v1/write?db=d&tenant=t&precision=us&extra=1\"", func(c *CnosDB) string {
			if c.endpoints[0].write != "https://h:8904/prefix/api/v1/write?db=d&extra=1&precision=us&tenant=t" ||
				c.endpoints[0].sql != "https://h:8904/prefix/api/v1/sql?tenant=t" || c.tsDivisor != 1000 {
				return c.endpoints[0].write + " " + c.endpoints[0].sql
			}
			return ""
		}},
		{"several urls", `urls = ["http://a:8902", "http://b:8902/api/v1/write?db=x"]` + "\ndatabase = \"x\"", func(c *CnosDB) string {
			if len(c.endpoints) != 2 || c.endpoints[0].write != "http://a:8902/api/v1/write?db=x&precision=ns&tenant=cnosdb" {
				return "urls"
			}
			return ""
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			text := "[[outputs.cnosdb]]\nurls = [\"http://127.0.0.1:8902\"]\n" + tt.extra + "\n"
			if strings.Contains(tt.extra, "urls = ") {
				text = "[[outputs.cnosdb]]\n" + tt.extra + "\n"
			}
			c, err := load(t, text)
			if err != nil {
				t.Fatal(err)
			}
			if msg := tt.check(c); msg != "" {
				t.Fatal(msg)
			}
		})
	}
}

func TestBadOptionsNameTheOption(t *testing.T) {
	for _, tt := range []struct{ config, want string }{
		{`urls = []`, "urls"},
		{`urls = ["ftp://x"]`, "urls"},
		{`urls = ["http://"]`, "urls"},
		{`urls = ["http://u:p@h:8902"]`, "urls"},
		{"urls = [\"http://h\"]\nurl = \"http://h\"", "url, urls"},
		{"urls = []\nurl = \"http://h/api/v1/write?db=a\"\ndatabase = \"b\"", "database"},
		{`urls = ["http://h/api/v1/write?db=a", "http://h2/api/v1/write?db=b"]`, "database"},
		{`urls = ["http://h/api/v1/sql"]`, "urls"},
		{`precision = "s"`, "precision"},
		{`urls = ["http://h/api/v1/write?precision=s"]`, "precision"},
		{`content_encoding = "br"`, "content_encoding"},
		{`method = "PUT"`, "method"},
		{`data_format = "json"`, "data_format"},
		{`batch_size = 0`, "batch_size"},
		{`batch_size_bytes = 100`, "batch_size_bytes"},
		{`batch_size_bytes = "200MiB"`, "batch_size_bytes"},
		{`flush_interval = "0s"`, "flush_interval"},
		{`max_buffered_bytes = "1MiB"`, "max_buffered_bytes"},
		{`max_retries = -1`, "max_retries"},
		{`retry_initial_interval = "0s"`, "retry_initial_interval"},
		{`retry_max_interval = "1ms"`, "retry_max_interval"},
		{`shutdown_timeout = "0s"`, "shutdown_timeout"},
		{`timeout = "-1s"`, "timeout"},
		{`idle_conn_timeout = "-1s"`, "idle_conn_timeout"},
		{`log_level = "loud"`, "log_level"},
		{`username = "a:b"`, "username"},
		{"[outputs.cnosdb.headers]\nContent-Encoding = \"gzip\"", "headers"},
		{"[outputs.cnosdb.headers]\nContent-Length = \"1\"", "headers"},
		{`tls_ca = "/nonexistent/ca.pem"`, "tls"},
		{`http_proxy_url = "::"`, "http_proxy_url"},
		{`client_id = "x"`, "client_id: not supported: CnosDB accepts only HTTP Basic"},
		{`cookie_auth_url = "http://x"`, "cookie_auth_url"},
		{`google_application_credentials = "/x.json"`, "google_application_credentials"},
		{`aws_service = "execute-api"`, "aws_service"},
		{`non_retryable_statuscodes = [409]`, "non_retryable_statuscodes: not supported: this output decides"},
		{`influx_sort_fields = true`, "influx_sort_fields: not supported: Telegraf applies it"},
		{`metric_batch_size = 1000`, "metric_batch_size"},
		{`namepass = ["cpu"]`, "namepass"},
		{`no_such_option = 1`, "no_such_option"},
	} {
		text := "[[outputs.cnosdb]]\n"
		if !strings.Contains(tt.config, "urls = ") {
			text += "urls = [\"http://127.0.0.1:8902\"]\n"
		}
		_, err := load(t, text+tt.config+"\n")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want it to mention %q", tt.config, err, tt.want)
		}
	}
}

func TestPasswordNeverLogged(t *testing.T) {
	var out strings.Builder
	c := New()
	c.Log.SetOutput(&out)
	if err := execd.DecodeConfig("[[outputs.cnosdb]]\nurls = [\"http://127.0.0.1:8902\"]\npassword = \"hunter2-secret\"\nlog_level = \"trace\"\n", "outputs", "cnosdb", c); err != nil {
		t.Fatal(err)
	}
	if err := c.Init(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "hunter2") || strings.Contains(c.endpoints[0].write, "hunter2") {
		t.Fatalf("password leaked: %s", out.String())
	}
}
