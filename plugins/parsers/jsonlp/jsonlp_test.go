package jsonlp

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

var testNow = time.Unix(1700000000, 0)

const ts = " 1700000000000000000\n"

func TestAppend(t *testing.T) {
	base := baseConfig()
	with := func(edit func(*Config)) Config {
		c := base
		edit(&c)
		return c
	}
	timeUnix := func(format string) Config {
		return with(func(c *Config) { c.TimeKey, c.TimeFormat = "time", format })
	}
	tests := []struct {
		name    string
		cfg     Config
		meta    Meta
		doc     string
		want    string
		wantErr bool
		dropped Dropped
	}{
		{name: "guide message", cfg: base, doc: `{"pressure":5.1,"temperature":23.4,"visibility":80.2}`,
			want: "kafka_consumer pressure=5.1,temperature=23.4,visibility=80.2" + ts},
		{name: "nested objects and arrays flatten with _ and indexes", cfg: base,
			doc:  `{"a":{"b":{"c":1}},"l":[10,[20,30],{"x":40}]}`,
			want: "kafka_consumer a_b_c=1,l_0=10,l_1_0=20,l_1_1=30,l_2_x=40" + ts},
		{name: "strings and booleans dropped, nulls skipped", cfg: base,
			doc:  `{"s":"x","b":true,"n":null,"v":1}`,
			want: "kafka_consumer v=1" + ts},
		{name: "string fields by glob keep strings and booleans", cfg: with(func(c *Config) { c.StringFields = []string{"s*", "b"} }),
			doc:  `{"s1":"x","s2":"q\"b\\s\nnl","b":false,"other":"dropped","v":1}`,
			want: "kafka_consumer s1=\"x\",s2=\"q\\\"b\\\\s\nnl\",b=false,v=1" + ts},
		{name: "tags from strings numbers and booleans, sorted", cfg: with(func(c *Config) { c.TagKeys = []string{"host", "num", "flag", "big"} }),
			doc:  `{"num":1.50,"host":"h 1,x=y","flag":true,"big":1e21,"v":2}`,
			want: "kafka_consumer,big=1000000000000000000000,flag=true,host=h\\ 1\\,x\\=y,num=1.5 v=2" + ts},
		{name: "tag key matching a string field becomes a tag", cfg: with(func(c *Config) { c.TagKeys = []string{"s"}; c.StringFields = []string{"*"} }),
			doc:  `{"s":"x","v":1}`,
			want: "kafka_consumer,s=x v=1" + ts},
		{name: "numbers as the serializer writes them", cfg: base,
			doc:  `{"a":1e308,"b":-0,"c":123456789012345678901234567890,"d":1.0,"e":1E-7,"f":0.1,"g":100}`,
			want: "kafka_consumer a=1" + strings.Repeat("0", 308) + ",b=-0,c=123456789012345680000000000000,d=1,e=0.0000001,f=0.1,g=100" + ts},
		{name: "number out of range is an error", cfg: base, doc: `{"a":1,"b":[1e400]}`, wantErr: true},
		{name: "top-level array gives one metric per object", cfg: base, doc: `[{"a":1},{"b":2},{}]`,
			want: "kafka_consumer a=1" + ts + "kafka_consumer b=2" + ts},
		{name: "non-object element is an error", cfg: base, doc: `[{"a":1},2]`, wantErr: true},
		{name: "null element is an error", cfg: with(func(c *Config) { c.Strict = false }), doc: `[{"a":1},null]`, wantErr: true},
		{name: "top-level scalar is an error", cfg: base, doc: `"x"`, wantErr: true},
		{name: "top-level null gives nothing", cfg: base, doc: ` null `},
		{name: "empty input gives nothing", cfg: base, doc: ""},
		{name: "whitespace gives nothing", cfg: base, doc: " \n\t\u00a0"},
		{name: "BOM is stripped", cfg: base, doc: "\xef\xbb\xbf{\"a\":1}", want: "kafka_consumer a=1" + ts},
		{name: "invalid JSON is an error", cfg: base, doc: `{"a":1,}`, wantErr: true},
		{name: "truncated JSON is an error", cfg: base, doc: `{"a":{"b":1`, wantErr: true},
		{name: "trailing data is an error", cfg: base, doc: `{"a":1} {"b":2}`, wantErr: true},
		{name: "metric without fields gives no line", cfg: base, doc: `{"s":"x"}`},
		{name: "duplicate key keeps the last value and its whole subtree", cfg: base,
			doc:  `{"a":{"b":1},"a":{"c":2},"d":1,"d":null,"e":3}`,
			want: "kafka_consumer a_c=2,e=3" + ts},
		{name: "escaped duplicate key", cfg: base, doc: `{"a":1,"\u0061":2}`, want: "kafka_consumer a=2" + ts},
		{name: "colliding flattened keys: last in document order wins", cfg: base,
			doc:  `{"a":{"b":1},"a_b":2}`,
			want: "kafka_consumer a_b=2" + ts},
		{name: "name key", cfg: with(func(c *Config) { c.NameKey = "name" }), doc: `{"name":"cpu","v":1}`, want: "cpu v=1" + ts},
		{name: "non-string name key is ignored", cfg: with(func(c *Config) { c.NameKey = "name" }), doc: `{"name":5,"v":1}`, want: "kafka_consumer name=5,v=1" + ts},
		{name: "empty name gives no line", cfg: with(func(c *Config) { c.NameKey = "name" }), doc: `{"name":"","v":1}`},
		{name: "time unix", cfg: timeUnix("unix"), doc: `{"time":1600000000,"v":1}`, want: "kafka_consumer v=1 1600000000000000000\n"},
		{name: "time unix_ms", cfg: timeUnix("unix_ms"), doc: `{"time":1600000000123,"v":1}`, want: "kafka_consumer v=1 1600000000123000000\n"},
		{name: "time unix_ns above 2^53", cfg: timeUnix("unix_ns"), doc: `{"time":1600000000123456789,"v":1}`, want: "kafka_consumer v=1 1600000000123456768\n"},
		{name: "time fractional unix string with comma", cfg: timeUnix("unix"), doc: `{"time":"1600000000,25","v":1}`, want: "kafka_consumer v=1 1600000000250000000\n"},
		{name: "time negative fraction floors", cfg: timeUnix("unix"), doc: `{"time":-1.5,"v":1}`, want: "kafka_consumer v=1 -1500000000\n"},
		{name: "time layout with timezone", cfg: with(func(c *Config) {
			c.TimeKey, c.TimeFormat, c.Timezone = "t", "2006-01-02 15:04:05", "Asia/Shanghai"
		}), doc: `{"t":"2020-09-13 20:26:40","v":1}`, want: "kafka_consumer v=1 1600000000000000000\n"},
		{name: "time key missing is an error", cfg: timeUnix("unix"), doc: `{"v":1}`, wantErr: true},
		{name: "time key null counts as missing", cfg: timeUnix("unix"), doc: `{"time":null,"v":1}`, wantErr: true},
		{name: "unparsable time is an error", cfg: timeUnix("unix"), doc: `{"time":"soon","v":1}`, wantErr: true},
		{name: "non-strict skips elements whose time fails", cfg: with(func(c *Config) { c.TimeKey, c.TimeFormat, c.Strict = "time", "unix", false }),
			doc:  `[{"time":1,"v":1},{"v":2},{"time":3,"v":3}]`,
			want: "kafka_consumer v=1 1000000000\nkafka_consumer v=3 3000000000\n"},
		{name: "strict fails the whole array", cfg: timeUnix("unix"), doc: `[{"time":1,"v":1},{"v":2}]`, wantErr: true},
		{name: "query to an array", cfg: with(func(c *Config) { c.Query = "data.items" }),
			doc:  `{"data":{"items":[{"a":1},{"b":2}]}}`,
			want: "kafka_consumer a=1" + ts + "kafka_consumer b=2" + ts},
		{name: "query to a scalar is an error", cfg: with(func(c *Config) { c.Query = "data" }), doc: `{"data":5}`, wantErr: true},
		{name: "query to nothing gives nothing", cfg: with(func(c *Config) { c.Query = "data" }), doc: `{"other":5}`},
		{name: "meta name, tags and time", cfg: with(func(c *Config) { c.TagKeys = []string{"topic"} }),
			meta: Meta{Name: "hdr", Tags: []Tag{{"topic", "t1"}, {"a", "b"}}, Time: time.Unix(5, 0)},
			doc:  `{"topic":"json","v":1}`,
			want: "hdr,a=b,topic=t1 v=1 5000000000\n"},
		{name: "field keys and measurement escaped", cfg: base, meta: Meta{Name: "m e,a=s"},
			doc:  `{"a b":1,"c,d":2,"e=f":3}`,
			want: "m\\ e\\,a=s a\\ b=1,c\\,d=2,e\\=f=3" + ts},
		{name: "control characters travel as the serializer's escapes", cfg: with(func(c *Config) { c.TagKeys = []string{"t"} }),
			doc:  `{"t":"a\tb\nc","k\r":1}`,
			want: "kafka_consumer,t=a\\tb\\nc k\\r=1" + ts},
		{name: "tag ending in a backslash is trimmed like the serializer does", cfg: with(func(c *Config) { c.TagKeys = []string{"t", "e"} }),
			doc:  `{"t":"C:\\dir\\","e":"\\\\","v":1}`,
			want: "kafka_consumer,t=C:\\dir v=1" + ts},
		{name: "backslash before a quote in a key that Telegraf unescapes", cfg: with(func(c *Config) { c.TagKeys = []string{"t"} }),
			doc:  `{"t":"a\\\" b","v":1}`,
			want: "kafka_consumer,t=a\\\\\"\\ b v=1" + ts},
		{name: "measurement starting with # cannot be sent", cfg: base, meta: Meta{Name: "#m"},
			doc: `{"v":1}`, dropped: Dropped{Metrics: 1}},
		{name: "field key ending in a backslash cannot be sent", cfg: base,
			doc:  `{"k\\":1,"v":2}`,
			want: "kafka_consumer v=2" + ts, dropped: Dropped{Fields: 1}},
		{name: "serializer bytes used when they survive Telegraf's parser", cfg: with(func(c *Config) { c.TagKeys = []string{"t"} }),
			meta: Meta{Name: "back\\"}, doc: `{"t":"x","v":1}`,
			want: "back\\,t=x v=1" + ts},
		{name: "invalid UTF-8 becomes U+FFFD", cfg: with(func(c *Config) { c.StringFields = []string{"*"} }),
			doc:  "{\"s\":\"a\xffb\",\"k\xfe\":1}",
			want: "kafka_consumer s=\"a\uFFFDb\",k\uFFFD=1" + ts},
		{name: "unpaired surrogates become U+FFFD", cfg: with(func(c *Config) { c.StringFields = []string{"*"} }),
			doc:  `{"s":"\ud83d\ude00\ud800x\udc00"}`,
			want: "kafka_consumer s=\"\U0001F600\uFFFDx\uFFFD\"" + ts},
		{name: "nesting deeper than encoding/json allows is an error", cfg: base,
			doc: `{"a":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustNew(t, tt.cfg)
			meta := tt.meta
			meta.Now = testNow
			prefix := []byte("keep\n")
			out, lines, err := c.Append(append([]byte(nil), prefix...), []byte(tt.doc), &meta)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !bytes.HasPrefix(out, prefix) {
				t.Fatalf("dst prefix lost: %q", out)
			}
			if got := string(out[len(prefix):]); got != tt.want {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
			if lines != strings.Count(tt.want, "\n") && !strings.Contains(tt.want, "\"") {
				t.Fatalf("lines = %d for %q", lines, tt.want)
			}
			if c.Dropped() != tt.dropped {
				t.Fatalf("Dropped() = %+v, want %+v", c.Dropped(), tt.dropped)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"time key without format", Config{TimeKey: "t"}},
		{"bad tag glob", Config{TagKeys: []string{"a[", "b*"}}},
		{"bad string glob", Config{StringFields: []string{"[x"}}},
		{"bad timezone", Config{Timezone: "Mars/Olympus"}},
		{"timestamp_tz without timezone", Config{TimeKey: "t", TimeFormat: "timestamp_tz"}},
	} {
		if _, err := New(tt.cfg); err == nil {
			t.Errorf("%s: New accepted %+v", tt.name, tt.cfg)
		}
	}
	if _, err := New(Config{TimeKey: "t", TimeFormat: "unix", TagKeys: []string{"a", "b"}, StringFields: []string{"x*"}}); err != nil {
		t.Fatal(err)
	}
}

func TestErrorKeepsDst(t *testing.T) {
	c := mustNew(t, baseConfig())
	dst := make([]byte, 3, 64)
	copy(dst, "abc")
	out, lines, err := c.Append(dst, []byte(`[{"a":1},{"b":2},3]`), nil)
	if err == nil || !errors.Is(err, ErrWrongType) {
		t.Fatalf("err = %v", err)
	}
	if string(out) != "abc" || lines != 0 {
		t.Fatalf("out = %q, lines %d", out, lines)
	}
}

func TestNilMetaUsesClock(t *testing.T) {
	c := mustNew(t, baseConfig())
	before := time.Now().UnixNano()
	out, _, err := c.Append(nil, []byte(`{"a":1}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := readLines(out)
	if err != nil || len(ms) != 1 {
		t.Fatalf("%q: %v", out, err)
	}
	if got := ms[0].Time().UnixNano(); got < before || got > time.Now().UnixNano() {
		t.Fatalf("time %d not within the call", got)
	}
}

func TestCloneConcurrent(t *testing.T) {
	c := mustNew(t, Config{MetricName: "m", TagKeys: []string{"h*"}, Strict: true})
	doc := []byte(`{"host":"x","a":{"b":[1,2,3]},"c":"s"}`)
	want := "m,host=x a_b_0=1,a_b_1=2,a_b_2=3" + ts
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(c *Converter) {
			defer wg.Done()
			var dst []byte
			for i := 0; i < 200; i++ {
				var err error
				dst, _, err = c.Append(dst[:0], doc, &Meta{Now: testNow})
				if err != nil || string(dst) != want {
					t.Errorf("got %q, %v", dst, err)
					return
				}
			}
		}(c.Clone())
	}
	wg.Wait()
}

// TestAllocs reports (does not assert) allocations per message with a reused dst.
func TestAllocs(t *testing.T) {
	c := mustNew(t, baseConfig())
	meta := &Meta{Now: testNow}
	for _, name := range []string{"guide", "nested-2k"} {
		doc := benchDoc(t, name)
		dst, _, _ := c.Append(nil, doc, meta)
		allocs := testing.AllocsPerRun(200, func() { dst, _, _ = c.Append(dst[:0], doc, meta) })
		t.Logf("%s: %.1f allocs per message", name, allocs)
	}
}
