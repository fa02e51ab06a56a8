package cnosdbtest

import (
	"math"
	"testing"
)

func TestLexicalFloat(t *testing.T) {
	for f, want := range map[float64]string{
		0:                           "0.0",
		1:                           "1.0",
		-2.5:                        "-2.5",
		0.1:                         "0.1",
		429351833:                   "429351833.0",
		1e9:                         "1000000000.0",
		1e10:                        "1.0e10",
		1.6185542082e10:             "1.6185542082e10",
		1.692022416413119e18:        "1.692022416413119e18",
		-1.7976931348623157e308:     "-1.7976931348623157e308",
		0.6287658423307444:          "0.6287658423307444",
		1e-5:                        "0.00001",
		1.5e-6:                      "1.5e-6",
		math.Inf(1):                 "inf",
		math.Inf(-1):                "-inf",
		123456.789:                  "123456.789",
		1.0000000000000002:          "1.0000000000000002",
		9007199254740993:            "9.007199254740992e15",
		0.000123:                    "0.000123",
		-0.5:                        "-0.5",
		18:                          "18.0",
		25:                          "25.0",
		0.14928332458710802:         "0.14928332458710802",
		math.SmallestNonzeroFloat64: "5.0e-324",
	} {
		if got := string(appendLexicalFloat(nil, f)); got != want {
			t.Errorf("lexical(%v) = %q, want %q", f, got, want)
		}
	}
	if got := string(appendLexicalFloat(nil, math.NaN())); got != "NaN" {
		t.Errorf("NaN: %q", got)
	}
}

func TestRyuFloat(t *testing.T) {
	for f, want := range map[float64]string{
		0:      "0.0",
		1:      "1.0",
		-2.5:   "-2.5",
		1e15:   "1000000000000000.0",
		1e16:   "1e16",
		1.5e16: "1.5e16",
		1e-5:   "0.00001",
		1e-6:   "1e-6",
		1.5e-7: "1.5e-7",
		123.25: "123.25",
		1e10:   "10000000000.0",
	} {
		if got := string(appendRyuFloat(nil, f)); got != want {
			t.Errorf("ryu(%v) = %q, want %q", f, got, want)
		}
	}
}

func TestTimeStyles(t *testing.T) {
	const base = 1700000000000000000
	tests := []struct {
		ns    int64
		style timeStyle
		want  string
	}{
		{base, csvTime, "2023-11-14T22:13:20.000000000"},
		{base + 1, csvTime, "2023-11-14T22:13:20.000000001"},
		{base, debugTime, "2023-11-14T22:13:20"},
		{base + 5e7, debugTime, "2023-11-14T22:13:20.050"},
		{base + 5e4, debugTime, "2023-11-14T22:13:20.000050"},
		{base + 5, debugTime, "2023-11-14T22:13:20.000000005"},
		{-1, csvTime, "1969-12-31T23:59:59.999999999"},
	}
	for _, tc := range tests {
		if got := string(appendTime(nil, tc.ns, tc.style)); got != tc.want {
			t.Errorf("time %d style %d = %q, want %q", tc.ns, tc.style, got, tc.want)
		}
	}
}

func TestTextEscaping(t *testing.T) {
	for in, want := range map[string]string{
		"plain":       "plain",
		"a,b":         `"a,b"`,
		`say "hi"`:    `"say ""hi"""`,
		"two\nlines":  "\"two\nlines\"",
		` lead space`: ` lead space`,
		`back\slash`:  `back\slash`,
	} {
		if got := string(appendCSVField(nil, in, ',')); got != want {
			t.Errorf("csv(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"a\"b\\c":  `"a\"b\\c"`,
		"\n\t\x01": `"\n\t\u0001"`,
		"中<&>":     `"中<&>"`,
		"\xff":     `"` + "\uFFFD" + `"`,
	} {
		if got := string(appendJSONString(nil, in)); got != want {
			t.Errorf("json(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestResultFormatFor(t *testing.T) {
	for accept, want := range map[string]resultFormat{
		"": formatCSV, "*/*": formatCSV, "application/*": formatCSV, "application/csv": formatCSV,
		"application/JSON": formatJSON, "application/nd-json": formatNDJSON, "application/tsv": formatTSV,
		"application/table": formatTable,
	} {
		if got, err := resultFormatFor(accept, V230); err != nil || got != want {
			t.Errorf("%q: %v %v", accept, got, err)
		}
	}
	for _, bad := range []string{"*", "xx", "application/json, text/plain", "application/ndjson"} {
		if _, err := resultFormatFor(bad, V230); err == nil || err.code != "040005" {
			t.Errorf("%q accepted", bad)
		}
	}
}
