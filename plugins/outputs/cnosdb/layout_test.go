package cnosdb

import (
	"math/rand"
	"strings"
	"testing"
)

// scanned is what a scan loop saw at one position.
type scanned struct {
	r scanResult
	e entry
}

// scanAll scans input from the start as the reader does when layout is
// set: a line that fits the layout of the last data line scanned in full
// is matched, any other is scanned in full and teaches the layout.
func scanAll(input []byte, atEOF, wantShape, layout bool) (out []scanned, matched int) {
	var l lineLayout
	pos := 0
	for pos <= len(input) {
		e := entry{wantShape: wantShape}
		r := scanEntryOK
		laidOut := layout && l.match(input, pos, &e)
		if laidOut {
			matched++
		} else {
			r = scanEntry(input, pos, atEOF, &e)
		}
		if r == scanEntryOK && !laidOut && layout {
			l.learn(input, &e)
		}
		if r != scanEntryOK && r != scanInvalid {
			e.reason = "" // where the scan stopped is compared, not why
		}
		out = append(out, scanned{r, e})
		if r == scanEnd || r == scanNeedMore || r == scanInvalidOpen || e.end <= pos {
			break
		}
		pos = e.end
	}
	return out, matched
}

func checkLayout(t testing.TB, input []byte) (matched int) {
	t.Helper()
	for _, atEOF := range []bool{true, false} {
		for _, wantShape := range []bool{false, true} {
			want, _ := scanAll(input, atEOF, wantShape, false)
			got, m := scanAll(input, atEOF, wantShape, true)
			matched += m
			if len(got) != len(want) {
				t.Fatalf("input %q (atEOF %v): %d results with the layout, %d without", input, atEOF, len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("input %q (atEOF %v, shape %v), record %d:\n with layout %+v\n scanEntry   %+v", input, atEOF, wantShape, i, got[i], want[i])
				}
			}
		}
	}
	return matched
}

// layoutStream writes lines that mostly repeat one layout, with one part
// of a line changed now and then (a value's kind, a key, the spacing, the
// timestamp, the line's end).
func layoutStream(r *rand.Rand) []byte {
	pick := func(list ...string) string { return list[r.Intn(len(list))] }
	names := []string{"kafka_consumer", "m", `m\ x`, "m,", "#m", "é"}
	tags := []string{"", ",t=1", ",host=h,t=2", `,t=a\ b`, ",t=", ",t=\xff"}
	seps := []string{" ", " ", "  ", "\t"}
	keys := []string{"a", "b", "pressure", `a\=b`, "a b", "é", ""}
	values := []string{"5.1", "23.4", "-0.5", ".5", "5.", "17", "-3i", "3i", "9223372036854775808i", "1e5", "t",
		"false", `"s"`, "-", "1.2.3", "0x1", "1u", "12345678901234567890", "5.1x"}
	stamps := []string{" 1700000000000000000", " 1700000000000000001", " 1", "", "  17", " 99999999999999999999",
		" -5", " 1700000000000000000 ", " 17x", " 0009223372036854775807", " 9223372036854775807", " 9223372036854775808"}
	ends := []string{"\n", "\n", "\n", "\n", "\r\n", "\r", "\n\n", "\n# c\n"}
	name, tag, sep, stamp := names[r.Intn(2)], pick(tags[:3]...), " ", stamps[0]
	nf := 1 + r.Intn(3)
	fk := make([]string, nf)
	fv := make([]string, nf)
	for i := range fk {
		fk[i], fv[i] = keys[i], values[r.Intn(7)]
	}
	var b strings.Builder
	for line := 0; line < 8; line++ {
		switch r.Intn(12) {
		case 0:
			name = pick(names...)
		case 1:
			tag = pick(tags...)
		case 2:
			sep = pick(seps...)
		case 3:
			fk[r.Intn(nf)] = pick(keys...)
		case 4, 5:
			fv[r.Intn(nf)] = pick(values...)
		case 6:
			stamp = pick(stamps...)
		}
		fv[r.Intn(nf)] = values[r.Intn(7)] // values change on every line
		b.WriteString(name + tag + sep)
		for i := range fk {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(fk[i] + "=" + fv[i])
		}
		b.WriteString(stamp)
		if line < 7 || r.Intn(2) == 0 {
			b.WriteString(ends[r.Intn(len(ends))])
		}
	}
	return []byte(b.String())
}

// TestLayoutMatchesScanner: checked against the layout of the line before,
// every record is found where scanEntry finds it, with the same entry.
func TestLayoutMatchesScanner(t *testing.T) {
	for _, s := range scanSeeds {
		checkLayout(t, []byte(s+s+s))
	}
	r := rand.New(rand.NewSource(15))
	streams := 20000
	if testing.Short() {
		streams = 2000
	}
	matched := 0
	for i := 0; i < streams; i++ {
		matched += checkLayout(t, layoutStream(r))
	}
	if matched == 0 {
		t.Fatal("no line matched a layout: the test no longer tests it")
	}
	guide := []byte(strings.Repeat("kafka_consumer,host=h pressure=5.1,temperature=23.4,visibility=80.2 1700000000000000000\n", 4))
	if m := checkLayout(t, guide); m != 4*3 {
		t.Fatalf("guide lines matched %d times, want 12 (3 of 4 lines, 4 ways)", m)
	}
}

func FuzzLayoutMatchesScanner(f *testing.F) {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 20; i++ {
		f.Add(layoutStream(r))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		checkLayout(t, input)
	})
}
