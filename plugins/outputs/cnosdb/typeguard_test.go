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
