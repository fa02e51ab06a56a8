// Package selfstat is what both children need to report on themselves as
// metrics: the stats_interval and stats_measurement options, a latency
// histogram cheap enough for every acknowledgement or request, and rows
// encoded as line protocol with line-protocol/v2's encoder.
//
// It knows nothing of Kafka or CnosDB: each plugin decides what it counts
// and where its rows go (the input through Telegraf, the output straight
// into its own batches).
package selfstat

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// MinInterval is the shortest stats_interval: rows more often than this
// would be noise in the data they sit beside.
const MinInterval = 100 * time.Millisecond

// CheckOptions validates stats_interval and the measurement names that go
// with it (option name -> value), every error naming the option. A zero
// interval turns self-metrics off, and then the names are not checked.
func CheckOptions(interval time.Duration, measurements map[string]string) error {
	if interval < 0 {
		return fmt.Errorf("stats_interval: must not be negative, got %s", interval)
	}
	if interval == 0 {
		return nil
	}
	if interval < MinInterval {
		return fmt.Errorf("stats_interval: %s is shorter than the shortest allowed, %s (0 turns self-metrics off)", interval, MinInterval)
	}
	names := make([]string, 0, len(measurements))
	for option := range measurements {
		names = append(names, option)
	}
	slices.Sort(names)
	seen := map[string]string{}
	for _, option := range names {
		name := measurements[option]
		if strings.TrimSpace(name) == "" {
			return fmt.Errorf("%s: must not be empty while stats_interval is set", option)
		}
		if other, dup := seen[name]; dup {
			return fmt.Errorf("%s: %q is also %s; the rows of each need a measurement of their own", option, name, other)
		}
		seen[name] = option
	}
	return nil
}

// Every calls report at each tick of interval until ctx ends or report
// returns false: the loop of both children's reporters.
func Every(ctx context.Context, interval time.Duration, report func(now time.Time) bool) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if !report(now) {
				return
			}
		}
	}
}

// Histogram counts durations in buckets that grow by a quarter from
// 10 µs, so a quantile is known within 25 % from 10 µs to four hours
// (beyond, it is the maximum), in a fixed array: Observe neither
// allocates nor sorts.
type Histogram struct {
	mu     sync.Mutex
	counts [buckets]uint64
	n      uint64
	max    time.Duration
}

const (
	buckets      = 96
	bucketGrowth = 1.25
	firstBound   = 10 * time.Microsecond
)

var logGrowth = math.Log(bucketGrowth)

func bucketOf(d time.Duration) int {
	if d <= firstBound {
		return 0
	}
	i := int(math.Ceil(math.Log(float64(d)/float64(firstBound)) / logGrowth))
	return min(i, buckets-1)
}

func upperBound(i int) time.Duration {
	return time.Duration(float64(firstBound) * math.Pow(bucketGrowth, float64(i)))
}

// Observe counts one duration.
func (h *Histogram) Observe(d time.Duration) {
	i := bucketOf(d)
	h.mu.Lock()
	h.counts[i]++
	h.n++
	h.max = max(h.max, d)
	h.mu.Unlock()
}

// Summary is what a Histogram held over one interval.
type Summary struct {
	Count         uint64
	P50, P99, Max time.Duration
}

// Take returns the interval's summary and starts a new interval.
func (h *Histogram) Take() Summary {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := Summary{Count: h.n, Max: h.max}
	if h.n > 0 {
		s.P50 = min(h.quantileLocked(0.50), h.max)
		s.P99 = min(h.quantileLocked(0.99), h.max)
	}
	h.counts, h.n, h.max = [buckets]uint64{}, 0, 0
	return s
}

func (h *Histogram) quantileLocked(q float64) time.Duration {
	rank := uint64(math.Ceil(q * float64(h.n)))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank && i < buckets-1 {
			return upperBound(i)
		}
	}
	return h.max
}

// Milliseconds is d as a float field, the unit the README promises.
func Milliseconds(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}

// Tag is a tag of a row; Append sorts them, as line protocol wants.
type Tag struct{ Key, Value string }

// Field is a field of a row: Value is an int64, uint64, float64, bool or
// string.
type Field struct {
	Key   string
	Value any
}

// Encoder appends rows to a buffer it keeps, reused from row to row.
type Encoder struct {
	enc  lineprotocol.Encoder
	tags []Tag
	rows int
}

// SetPrecision sets the unit of the rows' timestamps: time.Nanosecond
// (the default), Microsecond, Millisecond or Second.
func (e *Encoder) SetPrecision(unit time.Duration) {
	switch unit {
	case time.Microsecond:
		e.enc.SetPrecision(lineprotocol.Microsecond)
	case time.Millisecond:
		e.enc.SetPrecision(lineprotocol.Millisecond)
	case time.Second:
		e.enc.SetPrecision(lineprotocol.Second)
	default:
		e.enc.SetPrecision(lineprotocol.Nanosecond)
	}
}

// Reset empties the buffer for the next interval's rows.
func (e *Encoder) Reset() {
	e.enc.Reset()
	e.rows = 0
}

// Bytes is the rows so far, each ending in a newline.
func (e *Encoder) Bytes() []byte { return e.enc.Bytes() }

// Rows is how many rows Bytes holds.
func (e *Encoder) Rows() int { return e.rows }

// Row appends one row. Tags with an empty value are left out (line
// protocol has no empty tag), and so are fields whose value is nil.
func (e *Encoder) Row(measurement string, tags []Tag, fields []Field, at time.Time) error {
	e.tags = append(e.tags[:0], tags...)
	slices.SortFunc(e.tags, func(a, b Tag) int { return strings.Compare(a.Key, b.Key) })
	mark := len(e.enc.Bytes())
	e.enc.StartLine(measurement)
	for _, t := range e.tags {
		if t.Value != "" {
			e.enc.AddTag(t.Key, t.Value)
		}
	}
	added := 0
	for _, f := range fields {
		if f.Value == nil {
			continue
		}
		v, ok := lineprotocol.NewValue(f.Value)
		if !ok {
			e.truncate(mark)
			return fmt.Errorf("selfstat: field %q: %T is not a line protocol value", f.Key, f.Value)
		}
		e.enc.AddField(f.Key, v)
		added++
	}
	if added == 0 {
		e.truncate(mark)
		return errors.New("selfstat: a row needs at least one field")
	}
	e.enc.EndLine(at)
	if err := e.enc.Err(); err != nil {
		e.truncate(mark)
		return fmt.Errorf("selfstat: %w", err)
	}
	e.rows++
	return nil
}

// truncate drops a row that failed half way, and the encoder's error with
// it, keeping the rows before it.
func (e *Encoder) truncate(mark int) {
	e.enc.SetBuffer(e.enc.Bytes()[:mark])
}
