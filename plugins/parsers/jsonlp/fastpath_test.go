package jsonlp

import (
	"math"
	"math/big"
	"math/rand"
	"strconv"
	"strings"
	"testing"
	"time"
)

// randomNumber produces JSON numbers around the fast path's limits.
func randomNumber(r *rand.Rand) string {
	var b strings.Builder
	if r.Intn(3) == 0 {
		b.WriteByte('-')
	}
	if r.Intn(3) == 0 {
		b.WriteByte('0')
	} else {
		b.WriteByte(byte('1' + r.Intn(9)))
		for n := r.Intn(20); n > 0; n-- {
			b.WriteByte(byte('0' + r.Intn(10)))
		}
	}
	if r.Intn(2) == 0 {
		b.WriteByte('.')
		for n := 1 + r.Intn(24); n > 0; n-- {
			if r.Intn(3) == 0 {
				b.WriteByte('0')
			} else {
				b.WriteByte(byte('0' + r.Intn(10)))
			}
		}
	}
	if r.Intn(8) == 0 {
		b.WriteString("e" + strconv.Itoa(r.Intn(700)-350))
	}
	return b.String()
}

// TestCanonicalNumbers: text marked canonical is exactly what the influx
// serializer writes for the parsed float64.
func TestCanonicalNumbers(t *testing.T) {
	r := rand.New(rand.NewSource(42))
	n := 300000
	if testing.Short() {
		n = 20000
	}
	canon := 0
	for i := 0; i < n; i++ {
		s := randomNumber(r)
		end, canonical, err := scanNumber([]byte(s), 0)
		if err != nil || end != len(s) {
			t.Fatalf("%q: end %d err %v", s, end, err)
		}
		if !canonical {
			continue
		}
		canon++
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("canonical %q does not parse: %v", s, err)
		}
		if got := strconv.FormatFloat(v, 'f', -1, 64); got != s {
			t.Fatalf("canonical %q formats as %q", s, got)
		}
	}
	t.Logf("%d of %d numbers took the fast path", canon, n)
}

// TestUnixFastPath: integral seconds give what the exact fraction gives.
func TestUnixFastPath(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	for _, format := range []string{"unix", "unix_ms", "unix_us", "unix_ns"} {
		c := mustNew(t, Config{TimeKey: "t", TimeFormat: format})
		factor := c.s.timeFactor
		for i := 0; i < 20000; i++ {
			v := math.Trunc((r.Float64()*2 - 1) * math.Pow(10, float64(r.Intn(17))))
			doc := []byte(strconv.FormatFloat(v, 'f', -1, 64))
			l := &leaf{kind: kindNumber, off: 0, end: int32(len(doc))}
			got, err := c.parseUnix(doc, l)
			if err != nil {
				t.Fatal(err)
			}
			var rat big.Rat
			rat.SetFloat64(v)
			num := new(big.Int).Mul(rat.Num(), big.NewInt(factor))
			want := time.Unix(0, new(big.Int).Div(num, rat.Denom()).Int64())
			if got.UnixNano() != want.UnixNano() {
				t.Fatalf("%s %v: got %d want %d", format, v, got.UnixNano(), want.UnixNano())
			}
		}
	}
}
