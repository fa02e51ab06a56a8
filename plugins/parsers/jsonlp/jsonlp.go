// Package jsonlp converts one JSON document into InfluxDB line protocol the way
// stock Telegraf would have turned it into bytes: Telegraf's legacy JSON parser
// (data_format = "json", v1.37.2) followed by its influx serializer.
//
// The lines it writes are meant to be read back by Telegraf's own influx parser
// (inputs.execd) and serialized again; the guarantee is that this round trip
// yields the bytes stock Telegraf would have produced (fields compared as a
// set, since stock Telegraf writes them in map order). See README.md for the
// few metrics that line protocol cannot carry through that round trip.
package jsonlp

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math/big"
	"time"
)

// Config mirrors Telegraf's legacy JSON parser options.
type Config struct {
	MetricName   string   // default measurement; the caller passes "kafka_consumer" (Telegraf uses the plugin name)
	TagKeys      []string // tag_keys, glob patterns as in Telegraf (filter.Compile semantics)
	StringFields []string // json_string_fields, globs
	NameKey      string   // json_name_key
	Query        string   // json_query (gjson path)
	TimeKey      string   // json_time_key
	TimeFormat   string   // json_time_format: unix, unix_ms, unix_us, unix_ns or a Go layout
	Timezone     string   // json_timezone
	Strict       bool     // json_strict (Telegraf's default is true; the caller sets it)
}

// Meta carries what the Kafka side adds after parsing, as stock kafka_consumer does.
type Meta struct {
	Name string    // non-empty: replaces the measurement (msg_header_as_metric_name)
	Tags []Tag     // added to every metric, replacing a JSON tag with the same key (topic_tag, msg_headers_as_tags)
	Now  time.Time // the time a metric gets when the JSON gives none (Telegraf: time.Now(), taken once per message)
	Time time.Time // non-zero: overrides every metric's time, JSON time included (timestamp_source inner/outer)
}

// Tag is one key/value pair of Meta.Tags.
type Tag struct{ Key, Value string }

// Dropped counts what the last Append left out because Telegraf's influx
// parser cannot read it back into the metric stock Telegraf would have sent
// (see README.md, "Metrics line protocol cannot carry"). Stock Telegraf would
// have written bytes for them that its own parser rejects or misreads.
type Dropped struct {
	Metrics int // whole metrics: measurement or a tag not representable
	Fields  int // single fields whose key is not representable
}

// ErrWrongType is returned for a document that is neither an object nor an
// array of objects, as Telegraf's parser does.
var ErrWrongType = errors.New("must be an object or an array of objects")

// settings is the compiled, read-only part of a Converter, shared by clones.
type settings struct {
	cfg          Config
	tagFilter    matcher
	stringFilter matcher
	location     *time.Location
	timeKind     timeKind
	timeFactor   int64
	timeLayout   string
	layoutHasMST bool
}

// Converter turns JSON documents into line protocol. It keeps scratch buffers
// between calls, so it is not safe for concurrent use: give each goroutine its
// own, made with Clone.
type Converter struct {
	s *settings

	dropped Dropped
	seed    maphash.Seed

	// per document
	frames []frame
	path   []byte

	// per metric (reset for every object that becomes a metric)
	leaves      []leaf
	keys        []byte // flattened keys of leaves
	members     []member
	doc         []byte // the document being parsed
	nextObjID   int32
	mayCollide  bool // some key segment holds '_' or is empty: flattened keys may collide
	ctlKey      bool // some key holds \t, \n, \f or \r (only JSON escapes make them)
	memberTable idxTable
	leafTable   idxTable

	// output scratch
	tags        []tagRec
	fields      []int32
	tbuf        []byte // decoded tag keys/values and names
	sbuf        []byte // decoded strings
	pbuf        []byte // what Telegraf's parser reads back for the last slow token
	curBuf      []byte
	curKey      []byte
	prevKey     []byte
	spans       []span
	stock       []byte
	badFields   []int32
	lastPlain   bool
	headEnd     int  // length of the measurement and tags of the line writeOurs wrote
	oursWritten bool // writeLine kept writeOurs' line: no field or tag needed the serializer's bytes
	shape       docShape
	shapeHits   int // documents the shape converted, for tests
	nanos       nanoDigits
	ratNum      big.Rat
	bigInt      big.Int
	bigFac      big.Int

	onDrop  func(metric int, fieldKey []byte) // test hooks; nil in production
	onStock func(metric int)
	metric  int // index of the metric being built, for onDrop
}

// New validates cfg like Telegraf's parser Init does and returns a Converter.
// It also rejects two settings that only fail later in Telegraf: json_time_key
// without json_time_format (every object would fail) and the timestamp_tz
// formats without json_timezone (Telegraf panics).
func New(cfg Config) (*Converter, error) {
	s := &settings{cfg: cfg}
	var err error
	if s.stringFilter, err = compileFilter(cfg.StringFields); err != nil {
		return nil, fmt.Errorf("compiling string-fields filter failed: %w", err)
	}
	if s.tagFilter, err = compileFilter(cfg.TagKeys); err != nil {
		return nil, fmt.Errorf("compiling tag-key filter failed: %w", err)
	}
	if cfg.Timezone != "" {
		loc, err := time.LoadLocation(cfg.Timezone)
		if err != nil {
			return nil, fmt.Errorf("invalid timezone: %w", err)
		}
		s.location = loc
	}
	if cfg.TimeKey != "" {
		if cfg.TimeFormat == "" {
			return nil, errors.New("use of 'json_time_key' requires 'json_time_format'")
		}
		if err := s.compileTimeFormat(); err != nil {
			return nil, err
		}
	}
	return newConverter(s), nil
}

func newConverter(s *settings) *Converter {
	return &Converter{s: s, seed: maphash.MakeSeed()}
}

// Clone returns a Converter with the same configuration and its own scratch
// buffers, for use on another goroutine. It is cheap: the compiled filters and
// time settings are shared (they are read-only).
func (c *Converter) Clone() *Converter { return newConverter(c.s) }

// Dropped reports what the last call to Append left out (see Dropped).
func (c *Converter) Dropped() Dropped { return c.dropped }

var utf8BOM = []byte("\xef\xbb\xbf")
