package cnosdbtest

import (
	"math"
	"sort"
	"strings"
	"sync"
	"time"
)

// Row is one stored row of a table: a series (its tags) at one time.
type Row struct {
	Time   int64             // nanoseconds since the epoch
	Tags   map[string]string // nil when the series has no tags
	Fields map[string]any    // float64, int64, uint64, bool or string
}

type precision uint8

const (
	precNS precision = iota
	precUS
	precMS
)

// parsePrecision mirrors CnosDB's Precision::new: case-insensitive ns/us/ms,
// and the caller falls back to ns for anything else.
func parsePrecision(s string) (precision, bool) {
	switch strings.ToUpper(s) {
	case "NS":
		return precNS, true
	case "US":
		return precUS, true
	case "MS":
		return precMS, true
	}
	return precNS, false
}

func (p precision) String() string {
	switch p {
	case precUS:
		return "US"
	case precMS:
		return "MS"
	}
	return "NS"
}

// nanosPer is the length of one unit of p in nanoseconds.
func (p precision) nanosPer() int64 {
	switch p {
	case precUS:
		return 1_000
	case precMS:
		return 1_000_000
	}
	return 1
}

// convertTime follows CnosDB's timestamp_convert: division truncates, and
// multiplication that overflows is an error ("timestamp overflow").
func convertTime(ts int64, from, to precision) (int64, bool) {
	f, t := from.nanosPer(), to.nanosPer()
	switch {
	case f == t:
		return ts, true
	case f < t:
		return ts / (t / f), true
	}
	m := f / t
	r := ts * m
	if r/m != ts {
		return 0, false
	}
	return r, true
}

func toNanos(ts int64, p precision) int64 {
	m := p.nanosPer()
	r := ts * m
	if r/m != ts { // saturate rather than wrap for far-future ms values
		if ts < 0 {
			return math.MinInt64
		}
		return math.MaxInt64
	}
	return r
}

type fieldType uint8

const (
	typeFloat fieldType = iota + 1
	typeInt
	typeUint
	typeBool
	typeString
)

// v24Name is how CnosDB 2.4 names a value type in schema errors.
func (t fieldType) v24Name() string {
	switch t {
	case typeFloat:
		return "F64"
	case typeInt:
		return "I64"
	case typeUint:
		return "U64"
	case typeBool:
		return "BOOL"
	}
	return "STRING"
}

// sqlName is the type's name in CnosDB's DESCRIBE TABLE.
func (t fieldType) sqlName() string {
	switch t {
	case typeFloat:
		return "DOUBLE"
	case typeInt:
		return "BIGINT"
	case typeUint:
		return "BIGINT UNSIGNED"
	case typeBool:
		return "BOOLEAN"
	}
	return "STRING"
}

func typeOf(v any) fieldType {
	switch v.(type) {
	case float64:
		return typeFloat
	case int64:
		return typeInt
	case uint64:
		return typeUint
	case bool:
		return typeBool
	}
	return typeString
}

type colKind uint8

const (
	kindTime colKind = iota
	kindTag
	kindField
)

type column struct {
	name string
	kind colKind
	typ  fieldType // fields only
}

func (c column) v24Name(p precision) string {
	switch c.kind {
	case kindTime:
		switch p {
		case precMS:
			return "TimestampMillisecond"
		case precUS:
			return "TimestampMicrosecond"
		}
		return "TimestampNanosecond"
	case kindTag:
		return "TAG"
	}
	return c.typ.v24Name()
}

const timeColumn = "time"

type series struct {
	key    string
	tags   map[string]string
	points map[int64]map[string]any // time (db precision) -> fields
}

type table struct {
	name    string
	columns []column // creation order; columns[0] is time
	index   map[string]int
	series  map[string]*series
}

func newTable(name string) *table {
	return &table{
		name:    name,
		columns: []column{{name: timeColumn, kind: kindTime}},
		index:   map[string]int{timeColumn: 0},
		series:  map[string]*series{},
	}
}

type database struct {
	name      string
	ttl       time.Duration // <= 0: never expires
	precision precision
	tables    map[string]*table
}

// store holds every tenant's data; one mutex makes each write atomic.
type store struct {
	mu      sync.RWMutex
	tenants map[string]map[string]*database
	// keepEvery and written: Options.KeepEvery, and the points written
	// so far, under mu.
	keepEvery int
	written   int64
}

func newStore() *store {
	return &store{tenants: map[string]map[string]*database{}}
}

func (st *store) ensureTenant(name string) {
	st.mu.Lock()
	if st.tenants[name] == nil {
		st.tenants[name] = map[string]*database{}
	}
	st.mu.Unlock()
}

func (st *store) tenantExists(name string) bool {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.tenants[name] != nil
}

// createDatabase reports false when the database already exists.
func (st *store) createDatabase(tenant, name string, ttl time.Duration, p precision) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	dbs := st.tenants[tenant]
	if dbs == nil {
		dbs = map[string]*database{}
		st.tenants[tenant] = dbs
	}
	if dbs[name] != nil {
		return false
	}
	dbs[name] = &database{name: name, ttl: ttl, precision: p, tables: map[string]*table{}}
	return true
}

func (st *store) dropDatabase(tenant, name string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	dbs := st.tenants[tenant]
	if dbs == nil || dbs[name] == nil {
		return false
	}
	delete(dbs, name)
	return true
}

func (st *store) databaseNames(tenant string) []string {
	st.mu.RLock()
	defer st.mu.RUnlock()
	names := make([]string, 0, len(st.tenants[tenant]))
	for n := range st.tenants[tenant] {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (st *store) tableNames(tenant, db string) ([]string, bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	d := st.tenants[tenant][db]
	if d == nil {
		return nil, false
	}
	names := make([]string, 0, len(d.tables))
	for n := range d.tables {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, true
}

// point is one parsed line, ready for the store.
type point struct {
	measurement string
	tags        []tagPair   // sorted by key, keys unique
	fields      []fieldPair // sorted by key, keys unique
	ts          int64       // in the request's precision
}

type tagPair struct{ key, value string }

type fieldPair struct {
	key   string
	value any
}

// seriesKey identifies a series within its table; tags are already sorted.
func seriesKey(tags []tagPair) string {
	if len(tags) == 0 {
		return ""
	}
	var b strings.Builder
	for _, t := range tags {
		b.WriteString(t.key)
		b.WriteByte(0)
		b.WriteString(t.value)
		b.WriteByte(0)
	}
	return b.String()
}

// writeRequest carries what the store needs to judge one write body.
type writeRequest struct {
	tenant, db string
	precision  precision
	points     []point
	now        time.Time
	dialect    Dialect
	// beforeApply runs under the store lock once every check passed; an error
	// from it (the injected overload) rejects the whole body.
	beforeApply func() *apiError
}

// write validates the whole body first and only then applies it, so a
// request is stored completely or not at all.
func (st *store) write(req *writeRequest) *apiError {
	st.mu.Lock()
	defer st.mu.Unlock()

	dbs := st.tenants[req.tenant]
	db := dbs[req.db]
	if db == nil {
		if len(req.points) == 0 && req.dialect == V230 {
			// 2.3.0 only looks the database up per point.
			return nil
		}
		return errDatabaseNotFound(req.dialect, req.db)
	}

	times := make([]int64, len(req.points))
	var minTS int64 = math.MinInt64
	if db.ttl > 0 {
		now, _ := convertTime(req.now.UnixNano(), precNS, db.precision)
		ttl, _ := convertTime(int64(db.ttl), precNS, db.precision)
		minTS = now - ttl
	}
	for i := range req.points {
		ts, ok := convertTime(req.points[i].ts, req.precision, db.precision)
		if !ok {
			return errTimestampOverflow()
		}
		if ts < minTS {
			return errExpired(req.dialect)
		}
		times[i] = ts
	}

	if err := checkSchema(db, req.points, req.dialect); err != nil {
		return err
	}
	if req.beforeApply != nil {
		if err := req.beforeApply(); err != nil {
			return err
		}
	}
	for i := range req.points {
		keep := st.keepEvery <= 1 || st.written%int64(st.keepEvery) == 0
		st.written++
		db.apply(&req.points[i], times[i], keep)
	}
	return nil
}

// checkSchema rejects a body whose tags or fields disagree with the stored
// table schema or with each other. 2.4 first builds one column batch per
// table (conflicts inside the body fail there) and only then asks the
// schema. 2.3.0 checks only the first line of each table in a body against
// the stored schema (a real 2.3.0 took `k p=2.5` then `k p="high"` in one
// request and stored 9.27e194), and takes the others into the column's
// type without a word (see reinterpret230).
func checkSchema(db *database, points []point, d Dialect) *apiError {
	if d == V230 {
		return checkSchema230(db, points)
	}
	staged := map[string]map[string]column{} // table -> columns seen in this body
	storedCol := func(tbl, name string) (column, bool) {
		if t := db.tables[tbl]; t != nil {
			i, ok := t.index[name]
			if ok {
				return t.columns[i], true
			}
			return column{}, false
		}
		if name == timeColumn {
			return column{name: timeColumn, kind: kindTime}, true
		}
		return column{}, false
	}
	check := func(tbl string, want column, againstBody, againstStore bool) *apiError {
		if againstStore {
			if have, ok := storedCol(tbl, want.name); ok {
				if have.kind != want.kind || have.typ != want.typ {
					return schemaConflict(d, db, have, want, true)
				}
				return nil
			}
		}
		if againstBody {
			cols := staged[tbl]
			if cols == nil {
				cols = map[string]column{}
				staged[tbl] = cols
			}
			if have, ok := cols[want.name]; ok {
				if have.kind != want.kind || have.typ != want.typ {
					return schemaConflict(d, db, have, want, false)
				}
				return nil
			}
			cols[want.name] = want
		}
		return nil
	}
	pass := func(againstBody, againstStore bool) *apiError {
		for i := range points {
			p := &points[i]
			for _, tg := range p.tags {
				if err := check(p.measurement, column{name: tg.key, kind: kindTag}, againstBody, againstStore); err != nil {
					return err
				}
			}
			for _, f := range p.fields {
				want := column{name: f.key, kind: kindField, typ: typeOf(f.value)}
				if err := check(p.measurement, want, againstBody, againstStore); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := pass(true, false); err != nil {
		return err
	}
	return pass(false, true)
}

func schemaConflict(d Dialect, db *database, have, want column, againstStore bool) *apiError {
	if d == V230 {
		return errFieldType230(want.name)
	}
	if !againstStore {
		// 2.4 builds one column batch per table before asking the schema.
		return errLineToBatch(want)
	}
	return errColumnType24(want.name, want.v24Name(db.precision), have.v24Name(db.precision))
}

// apply stores one checked point. New columns are added in the order CnosDB
// adds them: tags before fields, each in the line's sorted order.
// apply stores a point; without keep it only makes its table and columns.
func (db *database) apply(p *point, ts int64, keep bool) {
	t := db.tables[p.measurement]
	if t == nil {
		t = newTable(p.measurement)
		db.tables[p.measurement] = t
	}
	for _, tg := range p.tags {
		if _, ok := t.index[tg.key]; !ok {
			t.index[tg.key] = len(t.columns)
			t.columns = append(t.columns, column{name: tg.key, kind: kindTag})
		}
	}
	for _, f := range p.fields {
		if _, ok := t.index[f.key]; !ok {
			t.index[f.key] = len(t.columns)
			t.columns = append(t.columns, column{name: f.key, kind: kindField, typ: typeOf(f.value)})
		}
	}
	if !keep {
		return
	}
	key := seriesKey(p.tags)
	s := t.series[key]
	if s == nil {
		s = &series{key: key, points: map[int64]map[string]any{}}
		if len(p.tags) > 0 {
			s.tags = make(map[string]string, len(p.tags))
			for _, tg := range p.tags {
				s.tags[tg.key] = tg.value
			}
		}
		t.series[key] = s
	}
	fields := s.points[ts]
	if fields == nil {
		fields = make(map[string]any, len(p.fields))
		s.points[ts] = fields
	}
	// A later write of the same series and time replaces the fields it
	// carries and keeps the others (CnosDB merges rows field by field).
	for _, f := range p.fields {
		fields[f.key] = f.value
	}
}

// storedRow is a row in db precision, with a reference to its series.
type storedRow struct {
	ts     int64
	series *series
	fields map[string]any
}

// sortedRows lists a table's rows by time, then series; the caller holds
// the read lock.
func (t *table) sortedRows() []storedRow {
	n := 0
	for _, s := range t.series {
		n += len(s.points)
	}
	rows := make([]storedRow, 0, n)
	for _, s := range t.series {
		for ts, f := range s.points {
			rows = append(rows, storedRow{ts: ts, series: s, fields: f})
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].ts != rows[j].ts {
			return rows[i].ts < rows[j].ts
		}
		return rows[i].series.key < rows[j].series.key
	})
	return rows
}

// rowCount counts a table's rows without copying them.
func (st *store) rowCount(tenant, db, measurement string) int {
	st.mu.RLock()
	defer st.mu.RUnlock()
	d := st.tenants[tenant][db]
	if d == nil || d.tables[measurement] == nil {
		return 0
	}
	n := 0
	for _, s := range d.tables[measurement].series {
		n += len(s.points)
	}
	return n
}

func (st *store) rows(tenant, db, measurement string) []Row {
	st.mu.RLock()
	defer st.mu.RUnlock()
	d := st.tenants[tenant][db]
	if d == nil {
		return nil
	}
	t := d.tables[measurement]
	if t == nil {
		return nil
	}
	stored := t.sortedRows()
	out := make([]Row, len(stored))
	for i, r := range stored {
		row := Row{Time: toNanos(r.ts, d.precision), Fields: make(map[string]any, len(r.fields))}
		if r.series.tags != nil {
			row.Tags = make(map[string]string, len(r.series.tags))
			for k, v := range r.series.tags {
				row.Tags[k] = v
			}
		}
		for k, v := range r.fields {
			row.Fields[k] = v
		}
		out[i] = row
	}
	return out
}

// snapshot copies what a query needs while holding the read lock.
type tableSnapshot struct {
	columns   []column
	rows      []storedRow
	precision precision
}

func (st *store) snapshot(tenant, db, measurement string) (*tableSnapshot, *apiError) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	d := st.tenants[tenant][db]
	if d == nil {
		return nil, errQueryDatabaseNotFound(db)
	}
	t := d.tables[measurement]
	if t == nil {
		return nil, nil
	}
	snap := &tableSnapshot{columns: append([]column(nil), t.columns...), precision: d.precision}
	for _, r := range t.sortedRows() {
		f := make(map[string]any, len(r.fields))
		for k, v := range r.fields {
			f[k] = v
		}
		snap.rows = append(snap.rows, storedRow{ts: r.ts, series: r.series, fields: f})
	}
	return snap, nil
}

// checkSchema230 checks the first line of each table in the body against
// the stored field types, as 2.3.0 does, and gives every later line's
// fields the type the column has (stored, or given by an earlier line of
// the body), reinterpreting the value where it has another; a name used as
// a tag and as a field is refused wherever it comes (a real 2.3.0 seen).
func checkSchema230(db *database, points []point) *apiError {
	types := map[string]map[string]column{} // table -> the columns it has, as far as this body goes
	for i := range points {
		p := &points[i]
		cols, seen := types[p.measurement]
		if !seen {
			cols = map[string]column{}
			if t := db.tables[p.measurement]; t != nil {
				for _, c := range t.columns {
					cols[c.name] = c
				}
			}
			types[p.measurement] = cols
			// Only the first line of a table meets the stored field types.
			for _, f := range p.fields {
				if have, ok := cols[f.key]; ok && have.kind == kindField && have.typ != typeOf(f.value) {
					return errFieldType230(f.key)
				}
			}
		}
		// A name used as tag and field is refused on any line.
		for _, tg := range p.tags {
			if have, ok := cols[tg.key]; !ok {
				cols[tg.key] = column{name: tg.key, kind: kindTag}
			} else if have.kind != kindTag {
				return errFieldType230(tg.key)
			}
		}
		for k, f := range p.fields {
			have, ok := cols[f.key]
			switch {
			case !ok:
				cols[f.key] = column{name: f.key, kind: kindField, typ: typeOf(f.value)}
			case have.kind != kindField:
				return errFieldType230(f.key)
			case have.typ != typeOf(f.value):
				p.fields[k].value = reinterpret230(f.value, have.typ)
			}
		}
	}
	return nil
}

// reinterpret230 gives v the column's type as 2.3.0 does: a number's 64
// bits read as the other number type (2i in a float column reads back as
// 1e-323), a number in a boolean column as whether it is not zero. 2.3.0
// stores undefined bytes for a string or boolean in a number column, or a
// number in a string column; this server stores the type's zero value
// there (NaN for a float).
func reinterpret230(v any, to fieldType) any {
	var bits uint64
	switch x := v.(type) {
	case float64:
		bits = math.Float64bits(x)
	case int64:
		bits = uint64(x)
	case uint64:
		bits = x
	default:
		return zeroOf(to)
	}
	switch to {
	case typeFloat:
		return math.Float64frombits(bits)
	case typeInt:
		return int64(bits)
	case typeUint:
		return bits
	case typeBool:
		return bits != 0
	}
	return zeroOf(to)
}

func zeroOf(t fieldType) any {
	switch t {
	case typeFloat:
		return math.NaN()
	case typeInt:
		return int64(0)
	case typeUint:
		return uint64(0)
	case typeBool:
		return false
	}
	return ""
}
