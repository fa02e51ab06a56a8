package faults

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/internal/cnosdbtest"
	"github.com/kafka-cnosdb/telegraf-execd/internal/kafkatest"
)

func randomSecret(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// TestNoSecretInLogs runs the pipeline with a CnosDB password and a Kafka
// SASL secret, both children at debug level (sarama's own log included),
// through error paths on purpose: a dead first CnosDB URL, CnosDB down, an
// authentication error answer, and a second input with a wrong SASL
// password that fails and is restarted over and over. No log line may hold
// a secret, in clear or as the Basic header's base64.
func TestNoSecretInLogs(t *testing.T) {
	t.Parallel()
	forEachTelegraf(t, true, func(t *testing.T, tg stockTelegraf) {
		saslBrokers := kafkatest.SASLBrokers(t)
		user, kafkaPassword := kafkatest.SASLCredentials(t)
		cnosdbPassword := randomSecret("cnosdb-pw-")
		wrongKafkaPassword := randomSecret("wrong-kafka-pw-")
		secrets := map[string]string{
			"Kafka SASL password":         kafkaPassword,
			"wrong Kafka SASL password":   wrongKafkaPassword,
			"CnosDB password":             cnosdbPassword,
			"CnosDB Basic header":         base64.StdEncoding.EncodeToString([]byte("root:" + cnosdbPassword)),
			"CnosDB Basic header (url)":   base64.URLEncoding.EncodeToString([]byte("root:" + cnosdbPassword)),
			"CnosDB password base64":      base64.StdEncoding.EncodeToString([]byte(cnosdbPassword)),
			"Kafka SASL PLAIN token":      base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + wrongKafkaPassword)),
			"wrong Kafka password base64": base64.StdEncoding.EncodeToString([]byte(wrongKafkaPassword)),
		}

		dir := t.TempDir()
		p := newPipeline(t, "secrets-in-logs", tg, setup{
			users: map[string]string{"root": cnosdbPassword},
			// Telegraf drops the children's D! lines unless it logs at debug too.
			agent: "  debug = true",
			inputConfig: func(topic, group string) string {
				return fmt.Sprintf(`[[inputs.kafka_consumer]]
  brokers = [%q]
  topics = [%q]
  consumer_group = %q
  data_format = "json"
  tag_keys = ["n"]
  sasl_mechanism = "SCRAM-SHA-512"
  sasl_username = %q
  sasl_password = %q
  log_level = "debug"
`, saslBrokers[0], topic, group, user, kafkaPassword)
			},
			outputURLs: func(srv cnosdbtest.Target) string {
				// The first address refuses connections: every write starts
				// with an error there.
				return fmt.Sprintf("urls = [\"http://127.0.0.1:9\", %q]", srv.URL())
			},
			output: fmt.Sprintf("  username = \"root\"\n  password = %q\n  log_level = \"debug\"\n  create_database = true\n  retry_max_interval = \"1s\"\n", cnosdbPassword),
		})
		// A second input with a wrong password, in PLAIN, which sends the
		// password itself: it fails at start and is restarted every second.
		wrongConf := writeFile(t, dir, "kafka-json-wrong.conf", fmt.Sprintf(`[[inputs.kafka_consumer]]
  brokers = [%q]
  topics = [%q]
  consumer_group = "faults-wrong-password"
  data_format = "json"
  sasl_mechanism = "PLAIN"
  sasl_username = %q
  sasl_password = %q
  log_level = "debug"
`, saslBrokers[0], p.topic, user, wrongKafkaPassword))
		input, _ := binaries(t)
		p.config = rewriteConfig(t, p.config, fmt.Sprintf(`
[[inputs.execd]]
  command = [%q, "-config", %q]
  signal = "none"
  restart_delay = "1s"
  data_format = "influx"
`, input, wrongConf))
		p.start()
		p.send(0, 500, 0)
		p.waitStored(30*time.Second, 2*time.Minute)
		// Error paths of the output with the password in use.
		p.fake.FailWrites(422, `{"error_code":"010016","error_message":"Auth error: Access denied for user 'root' (using password) "}`, 3)
		p.send(500, 1000, 200)
		p.srv.Down()
		time.Sleep(3 * time.Second)
		if err := p.srv.Up(); err != nil {
			t.Fatal(err)
		}
		p.send(1000, 1500, 0)
		p.waitStored(30*time.Second, 2*time.Minute)
		// Enough failed attempts of the wrong input.
		p.waitLogCount("exited", 2, 30*time.Second)
		p.finish(expectation{notes: []string{"CnosDB password and Kafka SASL secrets (right and wrong) set; children at debug level"}})

		log := p.log.String()
		for what, secret := range secrets {
			if i := strings.Index(log, secret); i >= 0 {
				start := strings.LastIndex(log[:i], "\n") + 1
				end := strings.Index(log[i:], "\n")
				if end < 0 {
					end = len(log) - i
				}
				t.Errorf("the %s appears in the log: %s", what, log[start:i+end])
			}
		}
		for _, want := range []string{"127.0.0.1:9", "010016", "SASL"} {
			if !strings.Contains(log, want) {
				t.Errorf("the error path %q was not taken: nothing in the log", want)
			}
		}
		t.Logf("%d log lines checked for %d secrets", strings.Count(log, "\n"), len(secrets))
	})
}

// rewriteConfig appends text to the config file at path and returns path.
func rewriteConfig(t *testing.T, path, text string) string {
	t.Helper()
	appendLine(t, path, text)
	return path
}
