package cnosdb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// fieldKind is a line-protocol field's type, as CnosDB stores columns.
type fieldKind uint8

const (
	kindUnknown fieldKind = iota
	kindFloat
	kindInt
	kindUint
	kindBool
	kindString
)

func (k fieldKind) String() string {
	return [...]string{"unknown", "a float", "an integer", "an unsigned integer", "a boolean", "a string"}[k]
}

// kindOfSQL reads DESCRIBE TABLE's data_type.
func kindOfSQL(dataType string) fieldKind {
	switch strings.ToUpper(dataType) {
	case "DOUBLE":
		return kindFloat
	case "BIGINT":
		return kindInt
	case "BIGINT UNSIGNED":
		return kindUint
	case "BOOLEAN":
		return kindBool
	case "STRING":
		return kindString
	}
	return kindUnknown
}

// kindOfValue reads a field value as line protocol writes it.
func kindOfValue(v []byte) fieldKind {
	switch {
	case len(v) == 0:
		return kindUnknown
	case v[0] == '"':
		return kindString
	case v[0] == 't' || v[0] == 'T' || v[0] == 'f' || v[0] == 'F':
		return kindBool
	case v[len(v)-1] == 'i':
		return kindInt
	case v[len(v)-1] == 'u':
		return kindUint
	}
	return kindFloat
}

// typeGuard knows the field types of the tables written to, for a CnosDB
// (2.3.x, 2.4.0) that checks a request's field types against the stored
// ones only on each table's first line: a later line with another type is
// not refused but stored as garbage (a real 2.3.0 stored p="high" in a
// float column as 9.27e194). On such a server the output refuses those
// lines itself, before sending, and says why: the rest of the batch lands
// as it would on a later CnosDB, which refuses them.
type typeGuard struct {
	// tables maps a measurement, as written, to its fields' kinds.
	tables map[string]map[string]fieldKind
}

// maxGuardedTables bounds the memory the guard keeps; forgetting the
// tables only costs a DESCRIBE TABLE each when they come again.
const maxGuardedTables = 10_000

// checkTypes drops from b the lines whose fields have another type than
// the table's: as stored (asked of CnosDB once per table) or as an earlier
// line in the stream gave it. One light pass over the batch (its lines are
// valid: only positions are looked for); the batch is rewritten only when
// a line is refused.
func (s *sender) checkTypes(b *batch) {
	g := &s.guard
	if g.tables == nil || len(g.tables) > maxGuardedTables {
		g.tables = map[string]map[string]fieldKind{}
	}
	var (
		name, lastName []byte
		fields         map[string]fieldKind
		reasons        []string // by line, from the first refused one on
		// The last line's field keys in order, and their kinds in the
		// table: lines of one table mostly repeat them, and comparing
		// a key with the one in its place is cheaper than the lookup.
		shapeKeys  []string
		shapeKinds []fieldKind
	)
	// A line shaped as the last one that passed passes too: same table,
	// same keys, same kinds (a table's kinds, once known, never change).
	// The reader keeps the shapes as runs of lines with their end, so
	// the rest of a run after a line that passed is stepped over at once.
	runs := b.shapes
	if !b.shapesCover() {
		runs = nil
	}
	run, inRun := 0, 0 // the run of the line at pos, and its lines before it
	passed := uint64(0)
	body := b.body
	for pos, line := 0, 0; pos < len(body); {
		if runs != nil && runs[run].shape != 0 && runs[run].shape == passed {
			rest := runs[run].lines - inRun
			if reasons != nil {
				for range rest {
					reasons = append(reasons, "")
				}
			}
			pos, line = runs[run].end, line+rest
			run, inRun = run+1, 0
			continue
		}
		nameEnd, i := lineHead(body, pos)
		if name = body[pos:nameEnd]; !bytes.Equal(name, lastName) {
			lastName = name
			shapeKeys, shapeKinds = shapeKeys[:0], shapeKinds[:0]
			var ok bool
			if fields, ok = g.tables[string(name)]; !ok {
				fields = s.describe(string(name))
				g.tables[string(name)] = fields
			}
		}
		reason := ""
		for j, more := 0, true; more; j++ {
			var key, value []byte
			key, value, i, more = fieldAt(body, i)
			kind := kindOfValue(value)
			var have fieldKind
			if j < len(shapeKeys) && shapeKeys[j] == string(key) {
				have = shapeKinds[j]
			} else {
				var known bool
				if have, known = fields[string(key)]; !known {
					fields[string(key)] = kind
					have = kind
				}
				shapeKeys, shapeKinds = append(shapeKeys[:j], string(key)), append(shapeKinds[:j], have)
			}
			if have != kind && have != kindUnknown && reason == "" {
				reason = fmt.Sprintf("field %q is %s in CnosDB's table %q and %s in this line: CnosDB before 2.4.1 checks only a table's first line in a request, and would store this one wrongly without an error",
					key, have, name, kind)
			}
		}
		// The timestamp and "\n" follow the fields.
		pos = i + bytes.IndexByte(body[i:], '\n') + 1
		passed = 0
		if runs != nil {
			if reason == "" {
				passed = runs[run].shape
			}
			if inRun++; inRun == runs[run].lines {
				run, inRun = run+1, 0
			}
		}
		if reason != "" && reasons == nil {
			reasons = make([]string, line, b.lines)
		}
		if reasons != nil {
			reasons = append(reasons, reason)
		}
		line++
	}
	if reasons != nil {
		b.index()
		n := 0
		s.dropLines(b, 0, func([]byte, *entry) string {
			n++
			return reasons[n-1]
		})
	}
}

// lineHead finds, in a valid line starting at pos, where its measurement
// ends and its fields begin: commas and spaces are escaped before them.
func lineHead(b []byte, pos int) (nameEnd, fieldsStart int) {
	nameEnd = -1
	for i := pos; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case ',':
			if nameEnd < 0 {
				nameEnd = i
			}
		case ' ':
			if nameEnd < 0 {
				nameEnd = i
			}
			return nameEnd, i + 1
		}
	}
	return len(b), len(b)
}

// fieldAt reads the field of a valid field set at b[i:]: its key and raw
// value, where the value ends, and whether a comma and another field
// follow.
func fieldAt(b []byte, i int) (key, value []byte, end int, more bool) {
	k := i
	for i < len(b) && b[i] != '=' {
		if b[i] == '\\' {
			i++
		}
		i++
	}
	key = b[k:min(i, len(b))]
	i++ // '='
	v := i
	if i < len(b) && b[i] == '"' {
		for i++; i < len(b) && b[i] != '"'; i++ {
			if b[i] == '\\' {
				i++
			}
		}
		i++ // the closing quote
	} else {
		for i < len(b) && b[i] != ',' && b[i] != ' ' && b[i] != '\n' {
			i++
		}
	}
	i = min(i, len(b))
	if i < len(b) && b[i] == ',' {
		return key, b[v:i], i + 1, true
	}
	return key, b[v:i], i, false
}

// describe asks CnosDB for a table's field types; a table that does not
// exist yet has none. When CnosDB cannot say, the guard knows only what
// the lines it sends give it.
func (s *sender) describe(measurement string) map[string]fieldKind {
	fields := map[string]fieldKind{}
	status, body, err := s.sql(s.c.Database, "DESCRIBE TABLE \""+strings.ReplaceAll(measurement, `"`, `""`)+`"`)
	if err != nil || status != http.StatusOK {
		return fields
	}
	var columns []map[string]string
	if json.Unmarshal(body, &columns) != nil {
		return fields
	}
	for _, c := range columns {
		// 2.3.0 heads them COLUMN_NAME, DATA_TYPE, COLUMN_TYPE.
		get := func(key string) string {
			for k, v := range c {
				if strings.EqualFold(k, key) {
					return v
				}
			}
			return ""
		}
		if strings.EqualFold(get("column_type"), "FIELD") {
			fields[get("column_name")] = kindOfSQL(get("data_type"))
		}
	}
	return fields
}
