package cnosdb

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbreal"
	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbtest"
)

func TestEachField(t *testing.T) {
	for _, tc := range []struct {
		fields string
		want   []string // key=kind
	}{
		{`a=1`, []string{"a=a float"}},
		{`a=1i,b=2u,c=t,d=FALSE,e=-1.5e3`, []string{"a=an integer", "b=an unsigned integer", "c=a boolean", "d=a boolean", "e=a float"}},
		{`s="a,b=c \"d\" \\",n=1`, []string{"s=a string", "n=a float"}},
		{`k\=ey=1,k\,2=2i,k\ 3="x"`, []string{`k\=ey=a float`, `k\,2=an integer`, `k\ 3=a string`}},
		{"s=\"new\nline\",t=true", []string{"s=a string", "t=a boolean"}},
	} {
		var got []string
		eachField([]byte(tc.fields), func(key, value []byte) {
			got = append(got, string(key)+"="+kindOfValue(value).String())
		})
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%q: %q, want %q", tc.fields, got, tc.want)
		}
	}
}

// typeMixInput is 30 good lines of m, with a string, an integer and a
// boolean where m's pressure is a float, none of them first in its batch.
func typeMixInput() (string, int) {
	var sb strings.Builder
	for i := 1; i <= 30; i++ {
		ts := base + int64(i)*int64(time.Second)
		switch i {
		case 5:
			fmt.Fprintf(&sb, "m,host=h0 pressure=\"high\" %d\n", ts)
		case 12:
			fmt.Fprintf(&sb, "m,host=h0 pressure=12i %d\n", ts)
		case 25:
			fmt.Fprintf(&sb, "m,host=h0 pressure=true %d\n", ts)
		default:
			sb.WriteString(seedLines("m", 1, i))
		}
	}
	return sb.String(), 3
}

// On CnosDB 2.3.0 a line whose field type differs from its table's is
// refused by the output before it is sent, with the reason: 2.3.0 itself
// would store it as garbage when it is not its table's first line in the
// request. Nothing else of the batch is lost, and nothing is stored wrong.
func TestTypeConflictsOn230(t *testing.T) {
	check := func(t *testing.T, s cnosdbtest.Target, wantGuard bool) {
		t.Helper()
		c, log := newPlugin(t, []string{s.URL()}, "batch_size = 10")
		runAll(t, c, seedLines("m", 1, 0)) // the table, pressure a float
		c, log = newPlugin(t, []string{s.URL()}, "batch_size = 10")
		input, bad := typeMixInput()
		stats := runAll(t, c, input)
		wantStored(t, s, "", "m", seq(0, 31, 5, 12, 25))
		for _, row := range s.Rows("", "", "m") {
			if f, ok := row.Fields["pressure"].(float64); !ok || math.IsNaN(f) || f < 0 || f > 100 {
				t.Fatalf("a garbage value was stored: %v", row)
			}
		}
		if stats.LinesRejected.Load() != int64(bad) {
			t.Fatalf("rejected %d, want %d", stats.LinesRejected.Load(), bad)
		}
		if got := strings.Contains(log.String(), "checks only a table's first line"); got != wantGuard {
			t.Fatalf("refused by the output itself: %v, want %v\n%s", got, wantGuard, log)
		}
	}
	t.Run("test server 2.3.0", func(t *testing.T) {
		check(t, startServer(t, cnosdbtest.Options{Dialect: cnosdbtest.V230}), true)
	})
	t.Run("test server 2.4", func(t *testing.T) {
		check(t, startServer(t, cnosdbtest.Options{Dialect: cnosdbtest.V24}), false)
	})
	for _, version := range cnosdbreal.Versions() {
		t.Run("real "+version, func(t *testing.T) {
			check(t, cnosdbreal.Start(t, cnosdbreal.Options{Version: version}), taglessUnsafe(version))
		})
	}
}

// eachField calls f with each key and raw value of a valid field set.
func eachField(fs []byte, f func(key, value []byte)) {
	for i, more := 0, len(fs) > 0; more; {
		var key, value []byte
		key, value, i, more = fieldAt(fs, i)
		f(key, value)
	}
}

// The guard skips a line shaped as the last one that passed; it must
// refuse exactly the lines it refuses in full: here a conflict after a
// long run of one shape, a new key, a string field holding a raw newline
// (its line does not end at the first newline), and a second table.
func TestTypeGuardShapesRefuseTheSame(t *testing.T) {
	var sb strings.Builder
	for i := range 300 {
		ts := base + int64(i)
		switch {
		case i == 150:
			fmt.Fprintf(&sb, "m,host=h0 pressure=7i %d\n", ts) // conflict
		case i == 160:
			fmt.Fprintf(&sb, "m,host=h0 pressure=1.5,extra=2 %d\n", ts) // a new key: learned
		case i == 170:
			fmt.Fprintf(&sb, "m,host=h0 pressure=1.5,extra=\"x\" %d\n", ts) // conflicts with what line 160 taught
		case i >= 200 && i < 210:
			fmt.Fprintf(&sb, "m,host=h0 note=\"two\nlines\",pressure=2.5 %d\n", ts)
		case i == 210:
			fmt.Fprintf(&sb, "m,host=h0 note=3,pressure=2.5 %d\n", ts) // note is a string since line 200
		case i >= 250 && i < 260:
			fmt.Fprintf(&sb, "n,host=h0 pressure=true %d\n", ts) // another table
		default:
			fmt.Fprintf(&sb, "m,host=h0 pressure=%d.5 %d\n", i%10, ts)
		}
	}
	input := []byte(sb.String())
	refused := func(withShapes bool) (lines int, log string) {
		c, logBuf := newPlugin(t, []string{"http://127.0.0.1:1"}, "")
		stats := &Stats{}
		s := &sender{c: c, stats: stats}
		s.guard.tables = map[string]map[string]fieldKind{"m": {"pressure": kindFloat}, "n": {}}
		b := &batch{}
		e := entry{wantShape: withShapes}
		for pos := 0; pos < len(input); pos = e.end {
			if scanEntry(input, pos, true, &e) != scanEntryOK {
				t.Fatalf("line at %d: %s", pos, e.reason)
			}
			b.body = append(b.body, input[e.start:e.end]...)
			b.lines++
			if withShapes {
				b.addShape(e.shape, len(b.body))
			}
		}
		s.checkTypes(b)
		return int(stats.LinesRejected.Load()), logBuf.String()
	}
	full, fullLog := refused(false)
	shaped, shapedLog := refused(true)
	if full != 3 || shaped != full || shapedLog != fullLog {
		t.Errorf("refused %d lines in full, %d with shapes (want 3 both)\nfull:\n%s\nwith shapes:\n%s", full, shaped, fullLog, shapedLog)
	}
}
