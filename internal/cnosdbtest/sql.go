package cnosdbtest

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// The statements understood are listed in the package documentation.
// Unquoted identifiers are lower-cased, as CnosDB's SQL front end does; use
// "Quoted" names for tables whose line-protocol name has capitals.

type token struct {
	kind tokenKind
	text string // identifiers: normalised; strings: unquoted
	raw  string
}

type tokenKind uint8

const (
	tokIdent tokenKind = iota
	tokString
	tokNumber
	tokSymbol
)

func tokenize(sql string) ([]token, *apiError) {
	var toks []token
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'':
			var b strings.Builder
			j := i + 1
			closed := false
			for j < len(sql) {
				if sql[j] == c {
					if j+1 < len(sql) && sql[j+1] == c {
						b.WriteByte(c)
						j += 2
						continue
					}
					closed = true
					j++
					break
				}
				b.WriteByte(sql[j])
				j++
			}
			if !closed {
				return nil, errSQLParser(fmt.Sprintf("Unterminated quoted text at position %d", i))
			}
			kind := tokString
			if c == '"' {
				kind = tokIdent
			}
			toks = append(toks, token{kind: kind, text: b.String(), raw: sql[i:j]})
			i = j
		case c == '_' || unicode.IsLetter(rune(c)) || c >= 0x80:
			j := i
			for j < len(sql) && (sql[j] == '_' || sql[j] >= 0x80 || unicode.IsLetter(rune(sql[j])) || unicode.IsDigit(rune(sql[j]))) {
				j++
			}
			toks = append(toks, token{kind: tokIdent, text: strings.ToLower(sql[i:j]), raw: sql[i:j]})
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < len(sql) && sql[j] >= '0' && sql[j] <= '9' {
				j++
			}
			toks = append(toks, token{kind: tokNumber, text: sql[i:j], raw: sql[i:j]})
			i = j
		default:
			toks = append(toks, token{kind: tokSymbol, text: string(c), raw: string(c)})
			i++
		}
	}
	return toks, nil
}

// splitStatements cuts at semicolons outside quotes and drops empty parts.
func splitStatements(sql string) []string {
	var out []string
	var quote byte
	start := 0
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == ';':
			if s := strings.TrimSpace(sql[start:i]); s != "" {
				out = append(out, s)
			}
			start = i + 1
		}
	}
	if s := strings.TrimSpace(sql[start:]); s != "" {
		out = append(out, s)
	}
	return out
}

type sqlParser struct {
	toks []token
	pos  int
}

func (p *sqlParser) peek() (token, bool) {
	if p.pos >= len(p.toks) {
		return token{}, false
	}
	return p.toks[p.pos], true
}

// keyword consumes the next token when it is the unquoted keyword kw.
func (p *sqlParser) keyword(kw string) bool {
	t, ok := p.peek()
	if ok && t.kind == tokIdent && t.raw[0] != '"' && t.text == kw {
		p.pos++
		return true
	}
	return false
}

func (p *sqlParser) symbol(s string) bool {
	t, ok := p.peek()
	if ok && t.kind == tokSymbol && t.text == s {
		p.pos++
		return true
	}
	return false
}

func (p *sqlParser) ident() (string, *apiError) {
	t, ok := p.peek()
	if !ok || t.kind != tokIdent {
		return "", p.expected("identifier")
	}
	p.pos++
	return t.text, nil
}

func (p *sqlParser) str() (string, *apiError) {
	t, ok := p.peek()
	if !ok || t.kind != tokString {
		return "", p.expected("literal string")
	}
	p.pos++
	return t.text, nil
}

func (p *sqlParser) number() (int64, *apiError) {
	t, ok := p.peek()
	if !ok || t.kind != tokNumber {
		return 0, p.expected("literal int")
	}
	p.pos++
	n, err := strconv.ParseInt(t.text, 10, 64)
	if err != nil {
		return 0, errSQLParser("invalid number " + t.text)
	}
	return n, nil
}

func (p *sqlParser) done() bool { return p.pos >= len(p.toks) }

func (p *sqlParser) expected(what string) *apiError {
	found := "EOF"
	if t, ok := p.peek(); ok {
		found = t.raw
	}
	return errSQLParser(fmt.Sprintf("Expected %s, found: %s", what, found))
}

// sqlContext is what a statement runs against.
type sqlContext struct {
	s      *Server
	tenant string
	db     string
}

// runSQL executes one request body; a nil result means an empty answer.
func (c *sqlContext) runSQL(body string) (*result, *apiError) {
	stmts := splitStatements(body)
	switch len(stmts) {
	case 0:
		return nil, errSQLParser("Expected an SQL statement, found: EOF")
	case 1:
	default:
		return nil, errMultiStatement(len(stmts), body)
	}
	toks, err := tokenize(stmts[0])
	if err != nil {
		return nil, err
	}
	p := &sqlParser{toks: toks}
	switch {
	case p.keyword("create"):
		if !p.keyword("database") {
			return nil, errNotImplemented("cnosdbtest runs only CREATE DATABASE")
		}
		return c.createDatabase(p)
	case p.keyword("drop"):
		if !p.keyword("database") {
			return nil, errNotImplemented("cnosdbtest runs only DROP DATABASE")
		}
		return c.dropDatabase(p)
	case p.keyword("show"):
		return c.show(p)
	case p.keyword("select"):
		return c.selectFrom(p)
	case p.keyword("describe"):
		if !p.keyword("table") {
			return nil, errNotImplemented("cnosdbtest describes only tables")
		}
		return c.describeTable(p)
	}
	return nil, errNotImplemented("cnosdbtest runs only CREATE/DROP DATABASE, SHOW DATABASES/TABLES and SELECT * / COUNT(*) FROM a table")
}

func (c *sqlContext) createDatabase(p *sqlParser) (*result, *apiError) {
	ifNotExists := false
	if p.keyword("if") {
		if !p.keyword("not") || !p.keyword("exists") {
			return nil, p.expected("NOT EXISTS")
		}
		ifNotExists = true
	}
	name, err := p.ident()
	if err != nil {
		return nil, err
	}
	ttl := c.s.defaultTTL
	prec := precNS
	if p.keyword("with") {
		for !p.done() {
			switch {
			case p.keyword("ttl"):
				v, err := p.str()
				if err != nil {
					return nil, err
				}
				d, ok := parseTTL(v)
				if !ok {
					return nil, errSQLParser("invalid TTL " + strconv.Quote(v))
				}
				ttl = d
			case p.keyword("precision"):
				v, err := p.str()
				if err != nil {
					return nil, err
				}
				pp, ok := parsePrecision(v)
				if !ok {
					return nil, errSQLParser("invalid precision " + strconv.Quote(v))
				}
				prec = pp
			case p.keyword("shard"), p.keyword("replica"):
				if _, err := p.number(); err != nil {
					return nil, err
				}
			case p.keyword("vnode_duration"):
				if _, err := p.str(); err != nil {
					return nil, err
				}
			default:
				return nil, p.expected("database option")
			}
		}
	}
	if !p.done() {
		return nil, p.expected("end of statement")
	}
	if !c.s.store.tenantExists(c.tenant) {
		return nil, errTenantNotFound(c.s.opts.Dialect, c.tenant)
	}
	if !c.s.store.createDatabase(c.tenant, name, ttl, prec) && !ifNotExists {
		return nil, errDatabaseExists(name)
	}
	return nil, nil
}

// parseTTL reads CnosDB's duration text: a number of days, a number with
// d/h/m, or INF.
func parseTTL(s string) (time.Duration, bool) {
	if strings.EqualFold(s, "inf") {
		return -1, true
	}
	if s == "" {
		return 0, false
	}
	if n, err := strconv.ParseUint(s, 10, 63); err == nil {
		return saturatingDuration(n, 24*time.Hour), true
	}
	n, err := strconv.ParseUint(s[:len(s)-1], 10, 63)
	if err != nil {
		return 0, false
	}
	switch strings.ToLower(s[len(s)-1:]) {
	case "d":
		return saturatingDuration(n, 24*time.Hour), true
	case "h":
		return saturatingDuration(n, time.Hour), true
	case "m":
		return saturatingDuration(n, time.Minute), true
	}
	return 0, false
}

func saturatingDuration(n uint64, unit time.Duration) time.Duration {
	if n > uint64(math.MaxInt64/int64(unit)) {
		return -1 // longer than any timestamp: never expires
	}
	return time.Duration(n) * unit
}

func (c *sqlContext) dropDatabase(p *sqlParser) (*result, *apiError) {
	ifExists := false
	if p.keyword("if") {
		if !p.keyword("exists") {
			return nil, p.expected("EXISTS")
		}
		ifExists = true
	}
	name, err := p.ident()
	if err != nil {
		return nil, err
	}
	if !p.done() {
		return nil, p.expected("end of statement")
	}
	if !c.s.store.tenantExists(c.tenant) {
		return nil, errTenantNotFound(c.s.opts.Dialect, c.tenant)
	}
	if !c.s.store.dropDatabase(c.tenant, name) && !ifExists {
		return nil, errQueryDatabaseNotFound(name)
	}
	return nil, nil
}

func (c *sqlContext) show(p *sqlParser) (*result, *apiError) {
	d := c.s.opts.Dialect
	var (
		column string
		names  []string
	)
	switch {
	case p.keyword("databases"):
		column = "Database"
		if d != V230 {
			column = "database_name"
		}
		if !c.s.store.tenantExists(c.tenant) {
			return nil, errTenantNotFound(d, c.tenant)
		}
		names = c.s.store.databaseNames(c.tenant)
	case p.keyword("tables"):
		column = "Table"
		if d != V230 {
			column = "table_name"
		}
		if !c.s.store.tenantExists(c.tenant) {
			return nil, errTenantNotFound(d, c.tenant)
		}
		var ok bool
		if names, ok = c.s.store.tableNames(c.tenant, c.db); !ok {
			return nil, errQueryDatabaseNotFound(c.db)
		}
	default:
		return nil, errNotImplemented("cnosdbtest runs only SHOW DATABASES and SHOW TABLES")
	}
	if !p.done() {
		return nil, p.expected("end of statement")
	}
	r := &result{columns: []string{column}}
	for _, n := range names {
		r.rows = append(r.rows, []cell{{kind: cellString, v: n}})
	}
	return r, nil
}

func (c *sqlContext) selectFrom(p *sqlParser) (*result, *apiError) {
	count := false
	switch {
	case p.symbol("*"):
	case p.keyword("count"):
		if !p.symbol("(") || !p.symbol("*") || !p.symbol(")") {
			return nil, errNotImplemented("cnosdbtest counts only COUNT(*)")
		}
		count = true
	default:
		return nil, errNotImplemented("cnosdbtest selects only * or COUNT(*)")
	}
	if !p.keyword("from") {
		return nil, p.expected("FROM")
	}
	db := c.db
	table, err := p.ident()
	if err != nil {
		return nil, err
	}
	if p.symbol(".") {
		db = table
		if table, err = p.ident(); err != nil {
			return nil, err
		}
	}
	desc, limit := false, int64(-1)
	if !count && p.keyword("order") {
		if !p.keyword("by") || !p.keyword("time") {
			return nil, errNotImplemented("cnosdbtest orders only BY time")
		}
		if p.keyword("desc") {
			desc = true
		} else {
			p.keyword("asc")
		}
	}
	if !count && p.keyword("limit") {
		if limit, err = p.number(); err != nil {
			return nil, err
		}
	}
	if !p.done() {
		return nil, errNotImplemented("cnosdbtest does not run this SELECT clause: " + p.toks[p.pos].raw)
	}
	if !c.s.store.tenantExists(c.tenant) {
		return nil, errTenantNotFound(c.s.opts.Dialect, c.tenant)
	}
	snap, _ := c.s.store.snapshot(c.tenant, db, table)
	if snap == nil {
		// CnosDB plans the query first, and finds no table in a missing
		// database either.
		return nil, errTableNotFound(c.s.opts.Dialect, c.tenant, db, table)
	}
	if count {
		return &result{
			columns: []string{"COUNT(UInt8(1))"},
			rows:    [][]cell{{{kind: cellInt, v: int64(len(snap.rows))}}},
		}, nil
	}
	if desc {
		for i, j := 0, len(snap.rows)-1; i < j; i, j = i+1, j-1 {
			snap.rows[i], snap.rows[j] = snap.rows[j], snap.rows[i]
		}
	}
	if limit >= 0 && int64(len(snap.rows)) > limit {
		snap.rows = snap.rows[:limit]
	}
	r := &result{columns: make([]string, len(snap.columns)), rows: make([][]cell, len(snap.rows))}
	for i, col := range snap.columns {
		r.columns[i] = col.name
	}
	for n, row := range snap.rows {
		cells := make([]cell, len(snap.columns))
		for i, col := range snap.columns {
			switch col.kind {
			case kindTime:
				cells[i] = cell{kind: cellTime, v: toNanos(row.ts, snap.precision)}
			case kindTag:
				if v, ok := row.series.tags[col.name]; ok {
					cells[i] = cell{kind: cellString, v: v}
				}
			default:
				if v, ok := row.fields[col.name]; ok {
					cells[i] = valueCell(v)
				}
			}
		}
		r.rows[n] = cells
	}
	return r, nil
}

func valueCell(v any) cell {
	switch v.(type) {
	case float64:
		return cell{kind: cellFloat, v: v}
	case int64:
		return cell{kind: cellInt, v: v}
	case uint64:
		return cell{kind: cellUint, v: v}
	case bool:
		return cell{kind: cellBool, v: v}
	case string:
		return cell{kind: cellString, v: v}
	}
	return cell{}
}

// describeTable answers DESCRIBE TABLE as CnosDB does: one row per column,
// time first, with its SQL type and whether it is the time, a tag or a
// field; 2.3.0 heads the answer in capitals.
func (c *sqlContext) describeTable(p *sqlParser) (*result, *apiError) {
	table, err := p.ident()
	if err != nil {
		return nil, err
	}
	if !p.done() {
		return nil, p.expected("end of statement")
	}
	snap, _ := c.s.store.snapshot(c.tenant, c.db, table)
	if snap == nil {
		return nil, unprocessable("030019", fmt.Sprintf("Table not found: %q", c.tenant+"."+c.db+"."+table))
	}
	heads := []string{"column_name", "data_type", "column_type", "compression_codec"}
	if c.s.opts.Dialect == V230 {
		for i, h := range heads {
			heads[i] = strings.ToUpper(h)
		}
	}
	res := &result{columns: heads}
	for _, col := range snap.columns {
		typ, kind := col.typ.sqlName(), "FIELD"
		switch col.kind {
		case kindTime:
			typ, kind = "TIMESTAMP(NANOSECOND)", "TIME"
			switch snap.precision {
			case precMS:
				typ = "TIMESTAMP(MILLISECOND)"
			case precUS:
				typ = "TIMESTAMP(MICROSECOND)"
			}
		case kindTag:
			typ, kind = "STRING", "TAG"
		}
		res.rows = append(res.rows, []cell{
			{kind: cellString, v: col.name}, {kind: cellString, v: typ}, {kind: cellString, v: kind}, {kind: cellString, v: "DEFAULT"},
		})
	}
	return res, nil
}
