// Package cnosdb is the CnosDB output: run as a child of Telegraf's
// [[outputs.execd]], it reads the line protocol Telegraf writes to its
// stdin and writes it to CnosDB's HTTP API (/api/v1/write) in batches.
//
// The path of a line is reader -> batch -> sender, each stage bounded:
//   - the reader reads stdin into one large reused buffer and validates
//     every entry in place (scan.go); valid entries are appended to the
//     current batch in runs, as bytes, rewritten only when the precision
//     asks for coarser timestamps;
//   - a batch is sealed when it has batch_size lines or batch_size_bytes,
//     or flush_interval after its first line or checkpoint, and queued;
//   - one sender writes the batches in order, retrying what CnosDB did not
//     take for reasons of its own and splitting a batch it refused for its
//     content until the refused lines are isolated.
//
// Batches come from a pool of max_buffered_bytes / batch_size_bytes; when
// all are in use the reader stops reading, the pipe fills, and Telegraf's
// own buffer takes the back-pressure.
package cnosdb

import (
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/config"
	"github.com/influxdata/telegraf/plugins/common/proxy"
	"github.com/influxdata/telegraf/plugins/common/tls"

	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/execd"
	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/selfstat"
)

//go:embed sample.conf
var sampleConfig string

const (
	defaultDatabase         = "public"
	defaultTenant           = "cnosdb"
	defaultUsername         = "root"
	defaultPrecision        = "ns"
	defaultTimeout          = 5 * time.Second
	defaultBatchSize        = 5000
	defaultBatchSizeBytes   = 1 << 20
	defaultFlushInterval    = time.Second
	defaultMaxRetries       = 3
	defaultRetryInitial     = 250 * time.Millisecond
	defaultRetryMax         = 15 * time.Second
	defaultMaxBufferedBytes = 16 << 20
	// Telegraf closes stdin, sends SIGTERM 5 s later and SIGKILL 5 s after
	// that: finishing 7 s after stdin closed leaves room to spare.
	defaultShutdownTimeout = 7 * time.Second

	// CnosDB answers a body over 160 MiB with 413.
	maxBodyBytes = 160 << 20

	writePath = "/api/v1/write"
	sqlPath   = "/api/v1/sql"
	pingPath  = "/api/v1/ping"
)

// CnosDB holds the options of [[outputs.cnosdb]]. Options that stock
// [[outputs.http]] also has keep their names and meaning, so a block
// written for the seed guide's outputs.http moves over unchanged.
type CnosDB struct {
	URLs            []string                  `toml:"urls"`
	URL             string                    `toml:"url"`
	Database        string                    `toml:"database"`
	Tenant          string                    `toml:"tenant"`
	Username        config.Secret             `toml:"username"`
	Password        config.Secret             `toml:"password"`
	Precision       string                    `toml:"precision"`
	Timeout         config.Duration           `toml:"timeout"`
	Headers         map[string]*config.Secret `toml:"headers"`
	ContentEncoding string                    `toml:"content_encoding"`
	CreateDatabase  bool                      `toml:"create_database"`
	// StartupCheck asks CnosDB at start whether writes would be taken
	// (check.go's startupCheck).
	StartupCheck bool `toml:"startup_check"`

	BatchSize        int             `toml:"batch_size"`
	BatchSizeBytes   config.Size     `toml:"batch_size_bytes"`
	FlushInterval    config.Duration `toml:"flush_interval"`
	MaxBufferedBytes config.Size     `toml:"max_buffered_bytes"`

	MaxRetries           int             `toml:"max_retries"`
	RetryInitialInterval config.Duration `toml:"retry_initial_interval"`
	RetryMaxInterval     config.Duration `toml:"retry_max_interval"`
	ShutdownTimeout      config.Duration `toml:"shutdown_timeout"`
	LogLevel             string          `toml:"log_level"`

	// Self-metrics (selfstats.go): off while stats_interval is 0.
	StatsInterval    config.Duration `toml:"stats_interval"`
	StatsMeasurement string          `toml:"stats_measurement"`

	// Connection options of stock outputs.http.
	IdleConnTimeout     config.Duration `toml:"idle_conn_timeout"`
	MaxIdleConns        int             `toml:"max_idle_conn"`
	MaxIdleConnsPerHost int             `toml:"max_idle_conn_per_host"`
	ResponseTimeout     config.Duration `toml:"response_timeout"`
	proxy.HTTPProxy
	tls.ClientConfig

	// Accepted from outputs.http for what they mean there, with the only
	// values that mean something for CnosDB.
	Method         string `toml:"method"`
	DataFormat     string `toml:"data_format"`
	UseBatchFormat *bool  `toml:"use_batch_format"`

	unsupportedOptions

	Log *execd.Logger `toml:"-"`

	// Set by Init.
	endpoints  []endpoint
	authHeader string
	user       string // for messages; the password is never kept apart
	header     http.Header
	hostHeader string
	gzip       bool
	tsDivisor  int64 // 1 for ns; timestamps are divided by it
	client     *http.Client

	invalidLog  execd.RateLimit
	rejectedLog execd.RateLimit
	// configReported: the start-up check has said why CnosDB refuses
	// this config; the first refused write need not say it again.
	configReported atomic.Bool
}

// endpoint is one CnosDB node.
type endpoint struct {
	write string // full write URL, query included
	sql   string // full SQL URL, for CREATE DATABASE
	ping  string
	name  string // for logs: scheme://host/path, no query
}

// unsupportedOptions are options of stock outputs.http (and of every
// Telegraf output) that have no meaning here. They are decoded only to
// say why each is refused, rather than "unknown option".
type unsupportedOptions struct {
	// Authentication CnosDB does not speak: it takes HTTP Basic only.
	GoogleCredentials any `toml:"google_application_credentials" why:"auth"`
	ClientID          any `toml:"client_id" why:"auth"`
	ClientSecret      any `toml:"client_secret" why:"auth"`
	TokenURL          any `toml:"token_url" why:"auth"`
	Audience          any `toml:"audience" why:"auth"`
	Scopes            any `toml:"scopes" why:"auth"`
	CookieAuthURL     any `toml:"cookie_auth_url" why:"auth"`
	CookieAuthMethod  any `toml:"cookie_auth_method" why:"auth"`
	CookieAuthHeaders any `toml:"cookie_auth_headers" why:"auth"`
	CookieAuthUser    any `toml:"cookie_auth_username" why:"auth"`
	CookieAuthPass    any `toml:"cookie_auth_password" why:"auth"`
	CookieAuthBody    any `toml:"cookie_auth_body" why:"auth"`
	CookieAuthRenewal any `toml:"cookie_auth_renewal" why:"auth"`
	AwsService        any `toml:"aws_service" why:"auth"`
	Region            any `toml:"region" why:"auth"`
	AccessKey         any `toml:"access_key" why:"auth"`
	SecretKey         any `toml:"secret_key" why:"auth"`
	Token             any `toml:"token" why:"auth"`
	RoleARN           any `toml:"role_arn" why:"auth"`
	WebIdentityToken  any `toml:"web_identity_token_file" why:"auth"`
	RoleSessionName   any `toml:"role_session_name" why:"auth"`
	Profile           any `toml:"profile" why:"auth"`
	SharedCredentials any `toml:"shared_credential_file" why:"auth"`
	EndpointURL       any `toml:"endpoint_url" why:"auth"`
	// Retries are decided by CnosDB's error_code, not by HTTP status.
	NonRetryable any `toml:"non_retryable_statuscodes" why:"status"`
	// Serializer and Telegraf-wide output options: Telegraf applies them
	// before the line reaches this process, on [[outputs.execd]].
	InfluxMaxLineBytes  any `toml:"influx_max_line_bytes" why:"execd"`
	InfluxSortFields    any `toml:"influx_sort_fields" why:"execd"`
	InfluxUintSupport   any `toml:"influx_uint_support" why:"execd"`
	InfluxOmitTimestamp any `toml:"influx_omit_timestamp" why:"execd"`
	Alias               any `toml:"alias" why:"execd"`
	NameOverride        any `toml:"name_override" why:"execd"`
	NamePrefix          any `toml:"name_prefix" why:"execd"`
	NameSuffix          any `toml:"name_suffix" why:"execd"`
	MetricBatchSize     any `toml:"metric_batch_size" why:"execd"`
	MetricBufferLimit   any `toml:"metric_buffer_limit" why:"execd"`
	FlushJitter         any `toml:"flush_jitter" why:"execd"`
	NamePass            any `toml:"namepass" why:"execd"`
	NameDrop            any `toml:"namedrop" why:"execd"`
	FieldPass           any `toml:"fieldpass" why:"execd"`
	FieldDrop           any `toml:"fielddrop" why:"execd"`
	FieldInclude        any `toml:"fieldinclude" why:"execd"`
	FieldExclude        any `toml:"fieldexclude" why:"execd"`
	TagPass             any `toml:"tagpass" why:"execd"`
	TagDrop             any `toml:"tagdrop" why:"execd"`
	TagInclude          any `toml:"taginclude" why:"execd"`
	TagExclude          any `toml:"tagexclude" why:"execd"`
	MetricPass          any `toml:"metricpass" why:"execd"`
}

var unsupportedWhy = map[string]string{
	"auth":   "CnosDB accepts only HTTP Basic authentication: use username and password",
	"status": "this output decides whether to retry by CnosDB's error_code (see the README)",
	"execd":  "Telegraf applies it before the data reaches this process: set it on [[outputs.execd]]",
}

// New returns the plugin with its defaults, ready for a config file to be
// decoded into it.
func New() *CnosDB {
	return &CnosDB{
		BatchSize:            defaultBatchSize,
		BatchSizeBytes:       defaultBatchSizeBytes,
		FlushInterval:        config.Duration(defaultFlushInterval),
		MaxBufferedBytes:     defaultMaxBufferedBytes,
		MaxRetries:           defaultMaxRetries,
		RetryInitialInterval: config.Duration(defaultRetryInitial),
		RetryMaxInterval:     config.Duration(defaultRetryMax),
		ShutdownTimeout:      config.Duration(defaultShutdownTimeout),
		StatsMeasurement:     defaultStatsMeasurement,
		StartupCheck:         true,
		Log:                  execd.NewLogger("outputs.cnosdb", telegraf.Warn),
	}
}

func (*CnosDB) SampleConfig() string { return sampleConfig }

// Init checks every option and prepares the HTTP client; each error names
// the option at fault.
func (c *CnosDB) Init() error {
	if c.Log == nil {
		c.Log = execd.NewLogger("outputs.cnosdb", telegraf.Warn)
	}
	// Telegraf logs every line a child writes to stderr as an error, so
	// the default says only what needs attention.
	level, err := execd.ParseLevel(c.LogLevel, telegraf.Warn)
	if err != nil {
		return err
	}
	c.Log.SetLevel(level)
	c.invalidLog = execd.RateLimit{Interval: 10 * time.Second, Burst: 10}
	c.rejectedLog = execd.RateLimit{Interval: 10 * time.Second, Burst: 10}

	if err := c.checkUnsupported(); err != nil {
		return err
	}
	switch strings.ToUpper(c.Method) {
	case "", http.MethodPost:
	default:
		return fmt.Errorf("method: %q is not supported: CnosDB takes writes only as POST", c.Method)
	}
	switch c.DataFormat {
	case "", "influx":
	default:
		return fmt.Errorf("data_format: %q is not supported: this output reads line protocol, set data_format = \"influx\" on [[outputs.execd]]", c.DataFormat)
	}
	switch strings.ToLower(c.ContentEncoding) {
	case "", "identity":
		c.gzip = false
	case "gzip":
		c.gzip = true
	default:
		return fmt.Errorf("content_encoding: %q is not one of identity, gzip", c.ContentEncoding)
	}

	// CnosDB reads precision in any case.
	c.Precision = strings.ToLower(c.Precision)
	if err := c.initEndpoints(); err != nil {
		return err
	}
	switch c.Precision {
	case "ns":
		c.tsDivisor = 1
	case "us":
		c.tsDivisor = 1000
	case "ms":
		c.tsDivisor = 1000_000
	default:
		return fmt.Errorf("precision: %q is not one of ns, us, ms (CnosDB reads any other value as ns)", c.Precision)
	}

	if c.Timeout < 0 {
		return fmt.Errorf("timeout: must not be negative, got %s", time.Duration(c.Timeout))
	}
	if c.Timeout == 0 {
		c.Timeout = config.Duration(defaultTimeout)
	}
	if c.BatchSize < 1 {
		return fmt.Errorf("batch_size: must be at least 1 line, got %d", c.BatchSize)
	}
	if c.BatchSizeBytes < 1024 || c.BatchSizeBytes > maxBodyBytes {
		return fmt.Errorf("batch_size_bytes: must be between 1KiB and 160MiB (CnosDB's body limit), got %d", c.BatchSizeBytes)
	}
	if c.FlushInterval <= 0 {
		return fmt.Errorf("flush_interval: must be positive, got %s", time.Duration(c.FlushInterval))
	}
	if c.MaxBufferedBytes < 2*c.BatchSizeBytes {
		return fmt.Errorf("max_buffered_bytes: must hold at least two batches (2 x batch_size_bytes = %d), got %d",
			2*c.BatchSizeBytes, c.MaxBufferedBytes)
	}
	if c.MaxRetries < 0 {
		return fmt.Errorf("max_retries: must not be negative, got %d", c.MaxRetries)
	}
	if c.RetryInitialInterval <= 0 {
		return fmt.Errorf("retry_initial_interval: must be positive, got %s", time.Duration(c.RetryInitialInterval))
	}
	if c.RetryMaxInterval < c.RetryInitialInterval {
		return fmt.Errorf("retry_max_interval: must not be below retry_initial_interval (%s), got %s",
			time.Duration(c.RetryInitialInterval), time.Duration(c.RetryMaxInterval))
	}
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("shutdown_timeout: must be positive, got %s", time.Duration(c.ShutdownTimeout))
	}
	if time.Duration(c.ShutdownTimeout) >= 10*time.Second {
		c.Log.Warnf("shutdown_timeout: %s is not below 10s: Telegraf kills its child 10s after closing its stdin, so lines may be lost without a count",
			time.Duration(c.ShutdownTimeout))
	}
	for _, d := range []struct {
		name string
		v    config.Duration
	}{{"idle_conn_timeout", c.IdleConnTimeout}, {"response_timeout", c.ResponseTimeout}} {
		if d.v < 0 {
			return fmt.Errorf("%s: must not be negative, got %s", d.name, time.Duration(d.v))
		}
	}
	if err := selfstat.CheckOptions(time.Duration(c.StatsInterval), map[string]string{"stats_measurement": c.StatsMeasurement}); err != nil {
		return err
	}
	if c.MaxIdleConns < 0 || c.MaxIdleConnsPerHost < 0 {
		return errors.New("max_idle_conn, max_idle_conn_per_host: must not be negative")
	}

	if err := c.initAuth(); err != nil {
		return err
	}
	if err := c.initHeaders(); err != nil {
		return err
	}
	return c.initClient()
}

func (c *CnosDB) checkUnsupported() error {
	v := reflect.ValueOf(c.unsupportedOptions)
	t := v.Type()
	var msgs []string
	for i := range t.NumField() {
		if v.Field(i).IsNil() {
			continue
		}
		f := t.Field(i)
		msgs = append(msgs, fmt.Sprintf("%s: not supported: %s", f.Tag.Get("toml"), unsupportedWhy[f.Tag.Get("why")]))
	}
	if len(msgs) > 0 {
		sort.Strings(msgs)
		return errors.New(strings.Join(msgs, "; "))
	}
	return nil
}

// initEndpoints reads urls (or outputs.http's url), taking db, tenant and
// precision from a write URL's query string the way the seed guide writes
// it, and settles database, tenant and precision.
func (c *CnosDB) initEndpoints() error {
	option := "urls"
	raw := c.URLs
	switch {
	case c.URL != "" && len(c.URLs) > 0:
		return errors.New("url, urls: set one of them (url is outputs.http's name for a single URL)")
	case c.URL != "":
		option, raw = "url", []string{c.URL}
	case len(c.URLs) == 0:
		return errors.New("urls: at least one CnosDB URL is required, e.g. [\"http://127.0.0.1:8902\"]")
	}

	// An explicit option and every URL's query must agree.
	settle := func(name string, value *string, fromURL, rawURL string) error {
		if fromURL == "" {
			return nil
		}
		if *value != "" && *value != fromURL {
			return fmt.Errorf("%s: %q, but %s %q asks for %s=%q", name, *value, option, rawURL, map[string]string{
				"database": "db", "tenant": "tenant", "precision": "precision"}[name], fromURL)
		}
		*value = fromURL
		return nil
	}
	type parsed struct {
		u      *url.URL
		prefix string
		extra  url.Values
	}
	var all []parsed
	for _, s := range raw {
		u, err := url.Parse(s)
		if err != nil {
			return fmt.Errorf("%s: %q: %w", option, s, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return fmt.Errorf("%s: %q: scheme must be http or https", option, s)
		}
		if u.Host == "" {
			return fmt.Errorf("%s: %q: no host", option, s)
		}
		if u.User != nil {
			return fmt.Errorf("%s: %q: put credentials in username and password, not in the URL", option, s)
		}
		if u.Fragment != "" {
			return fmt.Errorf("%s: %q: unexpected fragment", option, s)
		}
		prefix := strings.TrimSuffix(u.Path, "/")
		switch {
		case strings.HasSuffix(prefix, writePath):
			prefix = strings.TrimSuffix(prefix, writePath)
		case strings.HasSuffix(prefix, sqlPath), strings.HasSuffix(prefix, pingPath):
			return fmt.Errorf("%s: %q: give the server's address or its %s URL", option, s, writePath)
		}
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			return fmt.Errorf("%s: %q: query: %w", option, s, err)
		}
		for _, p := range []struct {
			key, name string
			value     *string
		}{{"db", "database", &c.Database}, {"tenant", "tenant", &c.Tenant}, {"precision", "precision", &c.Precision}} {
			v := q.Get(p.key)
			if p.key == "precision" {
				v = strings.ToLower(v)
			}
			if err := settle(p.name, p.value, v, s); err != nil {
				return err
			}
			q.Del(p.key)
		}
		all = append(all, parsed{u: u, prefix: prefix, extra: q})
	}
	if c.Database == "" {
		c.Database = defaultDatabase
	}
	if c.Tenant == "" {
		c.Tenant = defaultTenant
	}
	if c.Precision == "" {
		c.Precision = defaultPrecision
	}
	c.endpoints = c.endpoints[:0]
	for _, p := range all {
		base := p.u.Scheme + "://" + p.u.Host + p.prefix
		q := url.Values{}
		for k, v := range p.extra {
			q[k] = v
		}
		q.Set("db", c.Database)
		q.Set("tenant", c.Tenant)
		q.Set("precision", c.Precision)
		c.endpoints = append(c.endpoints, endpoint{
			write: base + writePath + "?" + q.Encode(),
			sql:   base + sqlPath + "?" + url.Values{"tenant": {c.Tenant}}.Encode(),
			ping:  base + pingPath,
			name:  base,
		})
	}
	return nil
}

func (c *CnosDB) initAuth() error {
	user, err := secretString(&c.Username)
	if err != nil {
		return fmt.Errorf("username: %w", err)
	}
	if user == "" {
		user = defaultUsername
	}
	if strings.Contains(user, ":") {
		return errors.New("username: must not contain ':' (HTTP Basic authentication cannot carry it)")
	}
	pass, err := secretString(&c.Password)
	if err != nil {
		return fmt.Errorf("password: %w", err)
	}
	c.user = user
	// CnosDB wants an Authorization header even with an empty password.
	c.authHeader = "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	return nil
}

func secretString(s *config.Secret) (string, error) {
	if s.Empty() {
		return "", nil
	}
	buf, err := s.Get()
	if err != nil {
		return "", err
	}
	defer buf.Destroy()
	return buf.String(), nil
}

func (c *CnosDB) initHeaders() error {
	c.header = http.Header{}
	names := make([]string, 0, len(c.Headers))
	for k := range c.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		canonical := http.CanonicalHeaderKey(k)
		switch canonical {
		case "Content-Length", "Transfer-Encoding":
			return fmt.Errorf("headers: %s is set by this output", k)
		case "Content-Encoding":
			return fmt.Errorf("headers: %s: use content_encoding", k)
		}
		var value string
		if s := c.Headers[k]; s != nil {
			v, err := secretString(s)
			if err != nil {
				return fmt.Errorf("headers: %s: %w", k, err)
			}
			value = v
		}
		if canonical == "Host" {
			c.hostHeader = value
			continue
		}
		c.header.Set(canonical, value)
	}
	if c.header.Get("Authorization") != "" {
		// A header given explicitly wins, as in outputs.http.
		c.authHeader = ""
	}
	if c.header.Get("Content-Type") == "" {
		c.header.Set("Content-Type", "text/plain; charset=utf-8")
	}
	if c.header.Get("User-Agent") == "" {
		version := execd.Version
		if version == "" {
			version = "dev"
		}
		c.header.Set("User-Agent", "telegraf-cnosdb/"+version)
	}
	return nil
}

func (c *CnosDB) initClient() error {
	tlsCfg, err := c.ClientConfig.TLSConfig()
	if err != nil {
		return fmt.Errorf("tls options: %w", err)
	}
	proxyFunc, err := c.HTTPProxy.Proxy()
	if err != nil {
		return fmt.Errorf("http_proxy_url: %w", err)
	}
	transport := &http.Transport{
		Proxy:                 proxyFunc,
		TLSClientConfig:       tlsCfg,
		IdleConnTimeout:       time.Duration(c.IdleConnTimeout),
		MaxIdleConns:          c.MaxIdleConns,
		MaxIdleConnsPerHost:   c.MaxIdleConnsPerHost,
		ResponseHeaderTimeout: time.Duration(c.ResponseTimeout),
		// Responses are tiny; asking for gzip ones only costs.
		DisableCompression: true,
	}
	c.client = &http.Client{
		Transport: transport,
		Timeout:   time.Duration(c.Timeout),
		// A redirect would replay the body elsewhere; CnosDB never sends one.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return nil
}
