package execd

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args     []string
		wantOut  string
		wantDone bool
		wantErr  string
	}{
		{args: []string{"-sample-config"}, wantOut: "# sample\n", wantDone: true},
		{args: []string{"-version"}, wantOut: "bin ", wantDone: true},
		{args: []string{}, wantDone: true, wantErr: "-config is required"},
		{args: []string{"-config", "x.conf", "extra"}, wantDone: true, wantErr: "unexpected argument"},
		{args: []string{"-config", "x.conf"}},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		f, done, err := ParseFlags("bin", "# sample\n", tt.args, &out)
		if done != tt.wantDone || !strings.HasPrefix(out.String(), tt.wantOut) {
			t.Errorf("%v: done=%v out=%q", tt.args, done, out.String())
		}
		if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%v: err=%v, want %q", tt.args, err, tt.wantErr)
		}
		if !done && f.Config != "x.conf" {
			t.Errorf("%v: config %q", tt.args, f.Config)
		}
	}
}
