package execd

import (
	"os"
	"testing"
)

func TestParseTelegrafVersion(t *testing.T) {
	tests := []struct {
		name, text string
		re         string // "ldflags" or "module"
		want       TelegrafVersion
		ok         bool
	}{
		{"release ldflags", "-w -s -X github.com/influxdata/telegraf/internal.Commit=abc -X github.com/influxdata/telegraf/internal.Version=1.35.2", "ldflags", TelegrafVersion{1, 35, 2}, true},
		{"ldflags with v", "-X github.com/influxdata/telegraf/internal.Version=v1.27.1 -X x.y=z", "ldflags", TelegrafVersion{1, 27, 1}, true},
		{"ldflags without version", "-w -s", "ldflags", TelegrafVersion{}, false},
		{"module version", "v1.37.2", "module", TelegrafVersion{1, 37, 2}, true},
		// A commit after v1.37.x: it may lack what 1.38.0 has.
		{"pseudo-version", "v1.38.0-0.20260101000000-abcdefabcdef", "module", TelegrafVersion{}, false},
		{"devel", "(devel)", "module", TelegrafVersion{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			re := moduleVersionRE
			if tt.re == "ldflags" {
				re = ldflagsVersionRE
			}
			got, ok := parseTelegrafVersion(re, tt.text)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("%q: %v %v, want %v %v", tt.text, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestTelegrafVersionAtLeast(t *testing.T) {
	v := TelegrafVersion{1, 35, 2}
	for _, tt := range []struct {
		major, minor, patch int
		want                bool
	}{
		{1, 35, 2, true}, {1, 35, 1, true}, {1, 27, 9, true}, {0, 99, 99, true},
		{1, 35, 3, false}, {1, 36, 0, false}, {2, 0, 0, false},
	} {
		if got := v.AtLeast(tt.major, tt.minor, tt.patch); got != tt.want {
			t.Errorf("%v.AtLeast(%d.%d.%d) = %v", v, tt.major, tt.minor, tt.patch, got)
		}
	}
}

// The Telegraf builds the end-to-end tests use (scripts/telegraf.sh)
// are read as what they are; anything else is not Telegraf.
func TestTelegrafVersionOf(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if v, _, ok := telegrafVersionOf(self); ok {
		t.Fatalf("the test binary read as Telegraf %v", v)
	}
	if v, _, ok := telegrafVersionOf("/nonexistent"); ok {
		t.Fatalf("a missing file read as Telegraf %v", v)
	}
	for env, want := range map[string]TelegrafVersion{"TELEGRAF_OLD": {1, 27, 1}} {
		path := os.Getenv(env)
		if path == "" {
			t.Logf("%s not set: skipping the real Telegraf", env)
			continue
		}
		if v, known, ok := telegrafVersionOf(path); !ok || !known || v != want {
			t.Fatalf("%s (%s): %v %v %v, want %v", env, path, v, known, ok, want)
		}
	}
	if path := os.Getenv("TELEGRAF_NEW"); path != "" {
		if v, known, ok := telegrafVersionOf(path); !ok || !known || !v.AtLeast(1, 35, 2) {
			t.Fatalf("TELEGRAF_NEW (%s): %v %v %v, want 1.35.2 or later", path, v, known, ok)
		}
	}
}

// A flush request goes to the parent only while it is still the parent:
// after Telegraf died, the process that adopted the child gets nothing.
func TestRequestFlushOnlyToTheParent(t *testing.T) {
	if err := (Parent{PID: os.Getppid() + 1}).RequestFlush(); err == nil {
		t.Fatal("a flush request went to a process that is not the parent")
	}
}
