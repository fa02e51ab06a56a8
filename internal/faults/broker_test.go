package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/internal/kafkatest"
)

// ownBroker is a second broker of scripts/kafka.sh, with its own state
// dir and ports, that a scenario may stop and start without disturbing
// the shared one other tests use.
type ownBroker struct {
	env     []string
	brokers []string
}

// startOwnBroker starts (or reuses) the suite's own broker: state in
// $FAULTS_KAFKA_STATE (default /tmp/kafka-cnosdb-faults), ports from
// $FAULTS_KAFKA_PORT_BASE (default 19192: 19192-19196). It is stopped when
// the test ends.
func startOwnBroker(t *testing.T) *ownBroker {
	t.Helper()
	state := os.Getenv("FAULTS_KAFKA_STATE")
	if state == "" {
		state = filepath.Join(os.TempDir(), "kafka-cnosdb-faults")
	}
	base := 19192
	if v := os.Getenv("FAULTS_KAFKA_PORT_BASE"); v != "" {
		var err error
		if base, err = strconv.Atoi(v); err != nil {
			t.Fatalf("FAULTS_KAFKA_PORT_BASE: %v", err)
		}
	}
	b := &ownBroker{
		env: append(os.Environ(),
			"KAFKA_CNOSDB_STATE="+state,
			fmt.Sprintf("KAFKA_CNOSDB_PLAINTEXT_PORT=%d", base),
			fmt.Sprintf("KAFKA_CNOSDB_SASL_PORT=%d", base+1),
			fmt.Sprintf("KAFKA_CNOSDB_SSL_PORT=%d", base+2),
			fmt.Sprintf("KAFKA_CNOSDB_CONTROLLER_PORT=%d", base+3),
			fmt.Sprintf("KAFKA_CNOSDB_ZOOKEEPER_PORT=%d", base+4),
			"KAFKA_CNOSDB_HEAP=384m",
			"KAFKA_CNOSDB_VERSION="+os.Getenv("KAFKA_VERSION"),
		),
		brokers: []string{fmt.Sprintf("127.0.0.1:%d", base)},
	}
	b.run(t, "start")
	t.Cleanup(func() { b.run(t, "stop") })
	return b
}

// run runs scripts/kafka.sh with the broker's environment.
func (b *ownBroker) run(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{"../../scripts/kafka.sh"}, args...)...)
	cmd.Env = b.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kafka.sh %v: %v\n%s", args, err, out)
	}
	t.Logf("kafka.sh %v: %s", args, tail(string(out), 2))
}

// TestFaultBrokerRestart: the Kafka broker stops (SIGTERM, as kafka.sh
// stop sends) right after a burst, while the input is still consuming and
// committing, stays down for 30 s and starts again. The input must ride it
// out and go on from its committed offsets.
func TestFaultBrokerRestart(t *testing.T) {
	requireSlow(t)
	downFor := 30 * time.Second
	forEachTelegraf(t, false, func(t *testing.T, tg stockTelegraf) {
		b := startOwnBroker(t)
		p := newPipeline(t, "kafka-broker-down-30s", tg, setup{
			brokers: b.brokers,
			createTopic: func(t *testing.T) string {
				return createTopicOn(t, b.brokers, kafkatest.TopicName(t.Name()), 2, nil)
			},
		})
		p.start()
		p.send(0, rate*10, rate)
		b.run(t, "stop")
		time.Sleep(downFor)
		b.run(t, "start")
		p.send(rate*10, rate*20, rate)
		p.waitStored(60*time.Second, 4*time.Minute)
		p.finish(expectation{notes: []string{"broker stopped right after the first 3000 messages were acknowledged, down 30 s"}})
	})
}

// TestFaultRebalance: a second Telegraf with the same consumer group joins
// while messages flow and leaves again (SIGTERM). Partitions move twice;
// every message must be stored by one instance or the other.
func TestFaultRebalance(t *testing.T) {
	t.Parallel()
	forEachTelegraf(t, false, func(t *testing.T, tg stockTelegraf) {
		p := newPipeline(t, "consumer-group-rebalance", tg, setup{partitions: 4})
		p.start()
		sending := p.sendAsync(0, rate*pick(16, 60), rate)
		time.Sleep(4 * time.Second)
		joined := strings.Count(p.log.String(), "joined group")
		second := startTelegraf(t, p.tg.path, p.config, p.log)
		// Both instances log a join for the new generation.
		p.waitLogCount("joined group", joined+2, 60*time.Second)
		time.Sleep(pick(6*time.Second, 25*time.Second))
		if orphans := second.stop(t); len(orphans) > 0 {
			t.Errorf("children %v outlived the second telegraf", orphans)
		}
		<-sending
		p.waitStored(30*time.Second, 3*time.Minute)
		p.finish(expectation{notes: []string{"4 partitions; a second Telegraf in the same group joined 4 s in and left (SIGTERM) after a while"}})
	})
}
