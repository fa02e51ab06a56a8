package cnosdb

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// decodeOne renders the entry the Decoder is on, or its error.
func decodeOne(d *lineprotocol.Decoder) (string, error) {
	var sb strings.Builder
	m, err := d.Measurement()
	if err != nil {
		return "", err
	}
	sb.WriteString(strconv.Quote(string(m)))
	for {
		k, v, err := d.NextTag()
		if err != nil {
			return "", err
		}
		if k == nil {
			break
		}
		sb.WriteString(" tag:" + strconv.Quote(string(k)) + "=" + strconv.Quote(string(v)))
	}
	for {
		k, v, err := d.NextField()
		if err != nil {
			return "", err
		}
		if k == nil {
			break
		}
		sb.WriteString(" field:" + strconv.Quote(string(k)) + "=" + v.Kind().String() + ":" + strconv.Quote(v.String()))
	}
	ts, err := d.Time(lineprotocol.Nanosecond, time.Unix(0, 42))
	if err != nil {
		return "", err
	}
	sb.WriteString(" time:" + strconv.FormatInt(ts.UnixNano(), 10))
	return sb.String(), nil
}

// decoderView is what line-protocol/v2's Decoder makes of input: the valid
// entries, rendered, and whether anything was invalid.
func decoderView(input []byte) (entries []string, invalid bool) {
	d := lineprotocol.NewDecoderWithBytes(input)
	for d.Next() {
		s, err := decodeOne(d)
		if err != nil {
			invalid = true
			continue
		}
		entries = append(entries, s)
	}
	return entries, invalid
}

// scannerView is the same through scanEntry: every valid entry it finds
// is rendered by a Decoder of its own, which must see exactly one valid
// entry in those bytes.
func scannerView(t testing.TB, input []byte) (entries []string, invalid bool, all []entry) {
	pos := 0
	for {
		var e entry
		switch scanEntry(input, pos, true, &e) {
		case scanEnd:
			return entries, invalid, all
		case scanNeedMore, scanInvalidOpen:
			t.Fatalf("need more at EOF in %q", input)
		case scanInvalid:
			invalid = true
		case scanEntryOK:
			one, bad := decoderView(input[e.start:e.end])
			if bad || len(one) != 1 {
				t.Fatalf("entry %q of %q: the Decoder sees %q (invalid %v)", input[e.start:e.end], input, one, bad)
			}
			entries = append(entries, one[0])
		}
		all = append(all, e)
		if e.end <= pos {
			t.Fatalf("no progress at %d in %q", pos, input)
		}
		pos = e.end
	}
}

func checkLikeDecoder(t testing.TB, input []byte, steps ...int) {
	want, wantBad := decoderView(input)
	got, gotBad, _ := scannerView(t, input)
	if strings.Join(got, "\n") != strings.Join(want, "\n") || gotBad != wantBad {
		t.Fatalf("input %q:\nscanner %q (invalid %v)\ndecoder %q (invalid %v)", input, got, gotBad, want, wantBad)
	}
	// Fed in pieces, as from a pipe, the scanner must find the same.
	if len(steps) == 0 {
		steps = []int{1, 2, 7}
	}
	for _, step := range steps {
		chunked := scanChunked(t, input, step)
		if strings.Join(chunked, "\n") != strings.Join(got, "\n") {
			t.Fatalf("input %q in steps of %d: %q, at once: %q", input, step, chunked, got)
		}
	}
}

// scanChunked scans input revealed step bytes at a time.
func scanChunked(t testing.TB, input []byte, step int) []string {
	var out []string
	pos, avail := 0, 0
	skipping := false
	for {
		atEOF := avail >= len(input)
		if skipping {
			k := strings.IndexByte(string(input[pos:avail]), '\n')
			if k < 0 {
				if atEOF {
					return out
				}
				pos = avail
				avail = min(avail+step, len(input))
				continue
			}
			pos += k + 1
			skipping = false
		}
		var e entry
		r := scanEntry(input[:avail], pos, atEOF, &e)
		switch r {
		case scanInvalidOpen:
			skipping = true
			pos = e.end
			avail = min(avail+step, len(input))
			continue
		case scanEnd:
			return out
		case scanNeedMore:
			if atEOF {
				t.Fatalf("need more at EOF")
			}
			pos = e.start
			avail = min(avail+step, len(input))
			continue
		case scanEntryOK:
			one, _ := decoderView(input[e.start:e.end])
			out = append(out, one...)
		}
		pos = e.end
	}
}

var scanSeeds = []string{
	"kafka_consumer,host=h pressure=5.1,temperature=23.4,visibility=80.2 1700000000000000000\n",
	"m f=1\n",
	"m f=1",
	"m,t=1 f=1 1\nm2 f=2i 2\n",
	"m f=\"a\nb\" 1\nm f=2\n",
	"m f=\"a\\\"b\\\\\" 1\n",
	"m f=\"unterminated\n",
	"  # comment\n\n  m f=1\r\n",
	"#bad\x01comment\nm f=1\n",
	"m\\ x,t\\=k=v\\,w f\\ x=1u 5\n",
	"m,t=1 f=1,\n",
	"m,t=1 f=1 x\n",
	"m,t= f=1\n",
	"m, f=1\n",
	"m f=1 123 \n",
	"m f=1 123 x\n",
	"m f=1 99999999999999999999\n",
	"m f=-\n",
	"m f=1e400\n",
	"m f=-inf\n",
	"m f=0x1p-2\n",
	"m f=tru\n",
	"m f=true,g=F,h=\"\" -5\n",
	"m f=1 \r\n",
	"m f=1\r",
	"m f=1 \rx\n",
	"\xff f=1\n",
	"m f=\"\xff\"\n",
	"m f=1x,g=\"a\nb\" 1\n",
	"m\tf=1\n",
	",t=1 f=1\n",
	"m,t=1\n",
	"m,t=1",
	"m\\",
	"m f=\"a\\",
	"\r\n\r\nm f=1\n",
	"m f=18446744073709551615u\nm f=18446744073709551616u\n",
	"m f=9223372036854775807i\nm f=9223372036854775808i\n",
	"m f=.5,g=5.,h=-.5,i=.\n",
}

func TestScanMatchesDecoder(t *testing.T) {
	for _, s := range scanSeeds {
		checkLikeDecoder(t, []byte(s))
	}
}

func FuzzScanMatchesDecoder(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		checkLikeDecoder(t, input)
	})
}

// TestScanMatchesDecoderCorpus runs the line-protocol corpus that
// line-protocol/v2 tests itself with, when its module is in the cache.
func TestScanMatchesDecoderCorpus(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/influxdata/line-protocol/v2").Output()
	if err != nil {
		t.Skipf("line-protocol/v2 module not found: %v", err)
	}
	text, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "lineprotocol", "testdata", "corpus.json"))
	if err != nil {
		t.Skipf("no corpus: %v", err)
	}
	var corpus struct {
		Decode map[string]struct {
			Input struct {
				Text json.RawMessage `json:"text"`
			} `json:"input"`
		} `json:"decode"`
	}
	if err := json.Unmarshal(text, &corpus); err != nil {
		t.Fatal(err)
	}
	if len(corpus.Decode) == 0 {
		t.Skip("empty corpus")
	}
	for _, c := range corpus.Decode {
		// Inputs are a JSON string, or {"binary": base64} when not UTF-8.
		var text string
		var binary struct {
			Binary []byte `json:"binary"`
		}
		if err := json.Unmarshal(c.Input.Text, &text); err == nil {
			checkLikeDecoder(t, []byte(text), 5)
		} else if err := json.Unmarshal(c.Input.Text, &binary); err == nil {
			checkLikeDecoder(t, binary.Binary, 5)
		} else {
			t.Fatalf("corpus input %s: %v", c.Input.Text, err)
		}
	}
	t.Logf("%d corpus inputs agree", len(corpus.Decode))
}

func TestScanReportsTagsAndTimestamp(t *testing.T) {
	for _, tt := range []struct {
		in             string
		tagged         bool
		name, ts, body string
	}{
		{"kafka_consumer,host=h p=5.1 1700000000000000000\n", true, "kafka_consumer", "1700000000000000000", "kafka_consumer,host=h p=5.1 1700000000000000000"},
		{"m f=1\n", false, "m", "", "m f=1"},
		{"m f=1", false, "m", "", "m f=1"},
		{"  m\\ x,a=b f=\"x y\"  -12  \r\n", true, "m\\ x", "-12", "m\\ x,a=b f=\"x y\"  -12"},
		{"m f=1  \n", false, "m", "", "m f=1"},
	} {
		var e entry
		if r := scanEntry([]byte(tt.in), 0, true, &e); r != scanEntryOK {
			t.Fatalf("%q: %v %s", tt.in, r, e.reason)
		}
		b := []byte(tt.in)
		if e.tagged != tt.tagged || string(b[e.start:e.nameEnd]) != tt.name ||
			string(b[e.tsStart:e.tsEnd]) != tt.ts || string(b[e.start:e.bodyEnd]) != tt.body || e.end != len(b) {
			t.Errorf("%q: got tagged %v name %q ts %q body %q end %d", tt.in, e.tagged,
				b[e.start:e.nameEnd], b[e.tsStart:e.tsEnd], b[e.start:e.bodyEnd], e.end)
		}
	}
}

func TestValidIntMatchesStrconv(t *testing.T) {
	for _, s := range []string{
		"0", "-0", "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
		"1764806400000000000", "0764806400000000000", "99999999999999999999", "", "-", "12a", "+1", "0000000000000000000001",
	} {
		_, err := strconv.ParseInt(s, 10, 64)
		if got := validInt([]byte(s)); got != (err == nil) {
			t.Errorf("validInt(%q) = %v, strconv says %v", s, got, err)
		}
	}
}
