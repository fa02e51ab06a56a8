package execd

import (
	"strings"
	"testing"
	"time"

	"github.com/influxdata/telegraf/config"
)

type testPlugin struct {
	Brokers []string          `toml:"brokers"`
	Timeout config.Duration   `toml:"timeout"`
	Secret  config.Secret     `toml:"password"`
	Tags    map[string]string `toml:"tags"`
}

func TestDecodeConfig(t *testing.T) {
	t.Setenv("KC_BROKER", "10.0.0.1:9092")
	t.Setenv("KC_EMPTY", "")
	tests := []struct {
		name    string
		text    string
		want    testPlugin
		wantErr string
	}{
		{
			name: "plain",
			text: "[[inputs.kafka_consumer]]\nbrokers = [\"a:1\"]\ntimeout = \"3s\"\n[inputs.kafka_consumer.tags]\nsite = \"x\"\n",
			want: testPlugin{Brokers: []string{"a:1"}, Timeout: config.Duration(3 * time.Second), Tags: map[string]string{"site": "x"}},
		},
		{
			name: "env expansion",
			text: "[[inputs.kafka_consumer]]\nbrokers = [\"${KC_BROKER}\", \"$KC_BROKER\", \"${KC_UNSET:-d:1}\", \"${KC_EMPTY:-e:1}\", \"${KC_EMPTY-f:1}\", \"$KC_UNSET\"]\n",
			want: testPlugin{Brokers: []string{"10.0.0.1:9092", "10.0.0.1:9092", "d:1", "e:1", "", "$KC_UNSET"}},
		},
		{
			name:    "unknown option is named",
			text:    "[[inputs.kafka_consumer]]\nbrokers = [\"a:1\"]\nbrokerz = [\"b\"]\n",
			wantErr: `unknown option(s) ["brokerz"]`,
		},
		{
			name:    "unknown nested option",
			text:    "[[inputs.kafka_consumer]]\n[inputs.kafka_consumer.nope]\nx = 1\n",
			wantErr: `unknown option(s) ["nope" "nope.x"]`,
		},
		{
			name:    "wrong plugin",
			text:    "[[inputs.kafka]]\nbrokers = []\n",
			wantErr: "unexpected table [[inputs.kafka]]",
		},
		{
			name:    "no table",
			text:    "",
			wantErr: "found 0 [[inputs.kafka_consumer]] tables",
		},
		{
			name:    "two tables",
			text:    "[[inputs.kafka_consumer]]\n[[inputs.kafka_consumer]]\n",
			wantErr: "found 2",
		},
		{
			name:    "syntax error has a line",
			text:    "[[inputs.kafka_consumer]]\nbrokers = [\n",
			wantErr: "line ",
		},
		{
			name:    "type error",
			text:    "[[inputs.kafka_consumer]]\ntimeout = \"forever\"\n",
			wantErr: "[[inputs.kafka_consumer]]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got testPlugin
			err := DecodeConfig(tt.text, "inputs", "kafka_consumer", &got)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got.Brokers, ",") != strings.Join(tt.want.Brokers, ",") || got.Timeout != tt.want.Timeout || len(got.Tags) != len(tt.want.Tags) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSecretDecodes(t *testing.T) {
	var got testPlugin
	if err := DecodeConfig("[[outputs.cnosdb]]\npassword = \"s3cret\"\n", "outputs", "cnosdb", &got); err != nil {
		t.Fatal(err)
	}
	buf, err := got.Secret.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Destroy()
	if buf.String() != "s3cret" {
		t.Fatalf("secret %q", buf.String())
	}
}
