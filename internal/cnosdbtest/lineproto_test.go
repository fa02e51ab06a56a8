package cnosdbtest

import (
	"math"
	"reflect"
	"testing"
)

func TestParseV230(t *testing.T) {
	const now = 42
	tests := []struct {
		name string
		in   string
		want []point // nil: parse error
	}{
		{"basic", "m,t=a f=1 5", []point{{"m", []tagPair{{"t", "a"}}, []fieldPair{{"f", 1.0}}, 5}}},
		{"no timestamp", "m,t=a f=1", []point{{"m", []tagPair{{"t", "a"}}, []fieldPair{{"f", 1.0}}, now}}},
		{"crlf", "m,t=a f=1 5\r\n", []point{{"m", []tagPair{{"t", "a"}}, []fieldPair{{"f", 1.0}}, 5}}},
		{"crlf without timestamp", "m,t=a f=1\r\n", nil},
		{"blank lines", "\n  \nm,t=a f=1 5\n\n", []point{{"m", []tagPair{{"t", "a"}}, []fieldPair{{"f", 1.0}}, 5}}},
		{"leading junk stripped", "  #_m,t=a f=1 5", []point{{"m", []tagPair{{"t", "a"}}, []fieldPair{{"f", 1.0}}, 5}}},
		{"measurement with a space", "my m,t=a f=1 5", []point{{"my m", []tagPair{{"t", "a"}}, []fieldPair{{"f", 1.0}}, 5}}},
		{"no tags", "m f=1 5", nil},
		{"no fields", "m,t=a", nil},
		{"tag without value sign", "m,t f=1", nil},
		{"sorted and deduplicated", "m,b=2,a=1,b=3 z=1i,y=2u,z=3i -7", []point{{"m", []tagPair{{"a", "1"}, {"b", "2"}}, []fieldPair{{"y", uint64(2)}, {"z", int64(1)}}, -7}}},
		{"empty value is 1", "m,t=a f=,g=2 5", []point{{"m", []tagPair{{"t", "a"}}, []fieldPair{{"f", 1.0}, {"g", 2.0}}, 5}}},
		{"booleans", "m,t=a a=t,b=F,c=true,d=FALSE,e=truex 5", []point{{"m", []tagPair{{"t", "a"}}, []fieldPair{{"a", true}, {"b", false}, {"c", true}, {"d", false}, {"e", true}}, 5}}},
		{"bad boolean", "m,t=a a=tru 5", nil},
		{"negative uint", "m,t=a a=-1u 5", nil},
		{"plus numbers", "m,t=a a=+1,b=+2i,c=+3u 5", []point{{"m", []tagPair{{"t", "a"}}, []fieldPair{{"a", 1.0}, {"b", int64(2)}, {"c", uint64(3)}}, 5}}},
		{"hex float", "m,t=a a=0x10 5", nil},
		{"string with comma and space", `m,t=a s="x, y z" 5`, []point{{"m", []tagPair{{"t", "a"}}, []fieldPair{{"s", "x, y z"}}, 5}}},
		{"string keeps escapes", `m,t=a s="a\"b" 5`, []point{{"m", []tagPair{{"t", "a"}}, []fieldPair{{"s", `a\"b`}}, 5}}},
		{"escaped backslash before the closing quote", `m,t=a s="C:\\" 5`, nil},
		{"unterminated string", `m,t=a s="x 5`, nil},
		{"timestamp after junk", "m,t=a f=1 ts=5", []point{{"m", []tagPair{{"t", "a"}}, []fieldPair{{"f", 1.0}}, 5}}},
		{"text after the timestamp", "m,t=a f=1 5 6", nil},
		{"timestamp overflow", "m,t=a f=1 99999999999999999999", nil},
		{"lone minus", "m,t=a f=1 -", nil},
		{"two lines", "a,t=1 f=1 1\nb,t=2 g=\"x\" 2", []point{
			{"a", []tagPair{{"t", "1"}}, []fieldPair{{"f", 1.0}}, 1},
			{"b", []tagPair{{"t", "2"}}, []fieldPair{{"g", "x"}}, 2},
		}},
	}
	for _, tc := range tests {
		got, err := parseV230(tc.in, now)
		if tc.want == nil {
			if err == nil {
				t.Errorf("%s: parsed %+v, want an error", tc.name, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, %v\nwant %+v", tc.name, got, err, tc.want)
		}
	}
}

func TestParseV230Specials(t *testing.T) {
	got, err := parseV230("m,t=a a=+inf,b=-nan 1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsInf(got[0].fields[0].value.(float64), 1) || !math.IsNaN(got[0].fields[1].value.(float64)) {
		t.Fatalf("%+v", got)
	}
}

func TestParseV24(t *testing.T) {
	const now = 42
	tests := []struct {
		name string
		in   string
		want []point
	}{
		{"tagless", "m f=1", []point{{"m", nil, []fieldPair{{"f", 1.0}}, now}}},
		{"escapes removed", `a\ b\,c,k\=1=v\ 2 f\ x="s\"q" 3`, []point{{"a b,c", []tagPair{{"k=1", "v 2"}}, []fieldPair{{"f x", `s"q`}}, 3}}},
		{"leading characters kept", "_m,t=a f=1i 3", []point{{"_m", []tagPair{{"t", "a"}}, []fieldPair{{"f", int64(1)}}, 3}}},
		{"types", "m a=1u,b=T,c=False,d=-2.5e1 3", []point{{"m", nil, []fieldPair{{"a", uint64(1)}, {"b", true}, {"c", false}, {"d", -25.0}}, 3}}},
	}
	for _, tc := range tests {
		got, err := parseV24([]byte(tc.in), now)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, %v\nwant %+v", tc.name, got, err, tc.want)
		}
	}
	for _, bad := range []string{"m", "m,t=a", "m f=", "m f=1 x", "m f=tru", `m f="x`, "m f=1 99999999999999999999"} {
		if got, err := parseV24([]byte(bad), now); err == nil {
			t.Errorf("%q parsed as %+v", bad, got)
		}
	}
}
