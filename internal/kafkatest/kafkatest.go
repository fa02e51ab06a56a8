// Package kafkatest gives tests a real Kafka broker: the one that
// scripts/kafka.sh starts and describes in environment variables
// (`eval "$(scripts/kafka.sh env)"`). Without them the tests skip.
//
// Topics made here are unique per test and deleted when it ends, so tests
// may run in parallel against one broker.
package kafkatest

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// Environment variables printed by `scripts/kafka.sh env`.
const (
	EnvBrokers      = "KAFKA_BROKERS"
	EnvSASLBrokers  = "KAFKA_SASL_BROKERS"
	EnvTLSBrokers   = "KAFKA_TLS_BROKERS"
	EnvTLSCA        = "KAFKA_TLS_CA"
	EnvTLSCert      = "KAFKA_TLS_CERT"
	EnvTLSKey       = "KAFKA_TLS_KEY"
	EnvSASLUser     = "KAFKA_SASL_USER"
	EnvSASLPassword = "KAFKA_SASL_PASSWORD"
)

// Version is the protocol version the helpers speak: it works with every
// broker from Kafka 2.1 to 4.x (4.x dropped the protocol versions before 2.1).
var Version = sarama.V2_1_0_0

// How long the helpers wait for the broker to settle (topic leaders,
// deletions) before they fail the test.
const settleTimeout = 30 * time.Second

// requireEnv returns the variable's value or skips the test.
func requireEnv(t testing.TB, name string) string {
	t.Helper()
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		t.Skipf("%s not set: start a broker with scripts/kafka.sh start and eval \"$(scripts/kafka.sh env)\"", name)
	}
	return v
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// Brokers returns the PLAINTEXT listener addresses, or skips the test.
func Brokers(t testing.TB) []string {
	t.Helper()
	return splitList(requireEnv(t, EnvBrokers))
}

// SASLBrokers returns the SASL_PLAINTEXT listener addresses (PLAIN,
// SCRAM-SHA-256 and SCRAM-SHA-512), or skips the test.
func SASLBrokers(t testing.TB) []string {
	t.Helper()
	return splitList(requireEnv(t, EnvSASLBrokers))
}

// TLSBrokers returns the SSL listener addresses, or skips the test.
func TLSBrokers(t testing.TB) []string {
	t.Helper()
	return splitList(requireEnv(t, EnvTLSBrokers))
}

// SASLCredentials returns the user and password the SASL listener accepts.
func SASLCredentials(t testing.TB) (user, password string) {
	t.Helper()
	return requireEnv(t, EnvSASLUser), requireEnv(t, EnvSASLPassword)
}

// TLSFiles returns the PEM files for the SSL listener: the CA that signed the
// broker's certificate, and a client certificate with its key.
func TLSFiles(t testing.TB) (ca, cert, key string) {
	t.Helper()
	return requireEnv(t, EnvTLSCA), requireEnv(t, EnvTLSCert), requireEnv(t, EnvTLSKey)
}

// TLSConfig is a client TLS configuration that trusts the test CA and
// presents the client certificate.
func TLSConfig(t testing.TB) *tls.Config {
	t.Helper()
	caFile, certFile, keyFile := TLSFiles(t)
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatalf("kafkatest: reading CA: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("kafkatest: no certificate in %s", caFile)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatalf("kafkatest: loading client certificate: %v", err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
}

// NewConfig is the client configuration every helper starts from.
func NewConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = Version
	cfg.ClientID = "kafkatest"
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	return cfg
}

// SASLConfig is NewConfig authenticating with mechanism (sarama.SASLTypePlaintext,
// SASLTypeSCRAMSHA256 or SASLTypeSCRAMSHA512) as user/password.
func SASLConfig(mechanism, user, password string) *sarama.Config {
	cfg := NewConfig()
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.Handshake = true
	cfg.Net.SASL.Mechanism = sarama.SASLMechanism(mechanism)
	cfg.Net.SASL.User = user
	cfg.Net.SASL.Password = password
	switch mechanism {
	case sarama.SASLTypeSCRAMSHA256:
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return newSCRAMClient(sha256.New) }
	case sarama.SASLTypeSCRAMSHA512:
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return newSCRAMClient(sha512.New) }
	}
	return cfg
}

func newAdmin(t testing.TB, brokers []string) sarama.ClusterAdmin {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(brokers, NewConfig())
	if err != nil {
		t.Fatalf("kafkatest: connecting to %v: %v", brokers, err)
	}
	return admin
}

// TopicName derives a unique, valid topic name from a test name.
func TopicName(testName string) string {
	var b strings.Builder
	for _, r := range testName {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			// Not '.': Kafka refuses names that differ from an existing one
			// only by '.' versus '_'.
			b.WriteByte('-')
		}
	}
	base := b.String()
	// Kafka allows 249 characters; keep room for the suffix.
	if len(base) > 200 {
		base = base[:200]
	}
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	return base + "-" + hex.EncodeToString(suffix[:])
}

// NewTopic creates a topic with a unique name and the given number of
// partitions on the PLAINTEXT brokers and deletes it when the test ends.
func NewTopic(t testing.TB, partitions int) string {
	t.Helper()
	return CreateTopic(t, TopicName(t.Name()), partitions)
}

// CreateTopic creates the named topic, waits until every partition has a
// leader, and deletes it when the test ends. An existing topic fails the test.
func CreateTopic(t testing.TB, name string, partitions int) string {
	t.Helper()
	brokers := Brokers(t)
	admin := newAdmin(t, brokers)
	defer admin.Close()
	detail := &sarama.TopicDetail{NumPartitions: int32(partitions), ReplicationFactor: 1}
	if err := admin.CreateTopic(name, detail, false); err != nil {
		t.Fatalf("kafkatest: creating topic %q: %v", name, err)
	}
	t.Cleanup(func() { deleteTopic(t, brokers, name) })
	waitForLeaders(t, admin, name, partitions)
	return name
}

// Producers and consumers started right after CreateTopic would otherwise
// meet LEADER_NOT_AVAILABLE until the metadata settles.
func waitForLeaders(t testing.TB, admin sarama.ClusterAdmin, topic string, partitions int) {
	t.Helper()
	deadline := time.Now().Add(settleTimeout)
	for {
		metas, err := admin.DescribeTopics([]string{topic})
		if err == nil && len(metas) == 1 && errors.Is(metas[0].Err, sarama.ErrNoError) && len(metas[0].Partitions) == partitions {
			ready := true
			for _, p := range metas[0].Partitions {
				ready = ready && errors.Is(p.Err, sarama.ErrNoError) && p.Leader >= 0
			}
			if ready {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kafkatest: topic %q has no leader for all %d partitions after %v (last error %v)", topic, partitions, settleTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func deleteTopic(t testing.TB, brokers []string, name string) {
	admin, err := sarama.NewClusterAdmin(brokers, NewConfig())
	if err != nil {
		t.Errorf("kafkatest: connecting to delete topic %q: %v", name, err)
		return
	}
	defer admin.Close()
	if err := admin.DeleteTopic(name); err != nil && !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		t.Errorf("kafkatest: deleting topic %q: %v", name, err)
	}
}

// CommittedOffsets returns the offsets group has committed for topic, by
// partition; partitions without a committed offset are left out.
func CommittedOffsets(t testing.TB, brokers []string, group, topic string) map[int32]int64 {
	t.Helper()
	admin := newAdmin(t, brokers)
	defer admin.Close()
	metas, err := admin.DescribeTopics([]string{topic})
	if err != nil {
		t.Fatalf("kafkatest: describing topic %q: %v", topic, err)
	}
	if len(metas) != 1 || !errors.Is(metas[0].Err, sarama.ErrNoError) {
		t.Fatalf("kafkatest: describing topic %q: %v", topic, topicErr(metas))
	}
	partitions := make([]int32, 0, len(metas[0].Partitions))
	for _, p := range metas[0].Partitions {
		partitions = append(partitions, p.ID)
	}
	var resp *sarama.OffsetFetchResponse
	// A broker that has just started answers "still loading offsets" for a while.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp, err = admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: partitions})
		if !errors.Is(err, sarama.ErrOffsetsLoadInProgress) && !errors.Is(err, sarama.ErrConsumerCoordinatorNotAvailable) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("kafkatest: offsets of group %q: %v", group, err)
	}
	offsets := make(map[int32]int64, len(partitions))
	for _, p := range partitions {
		block := resp.GetBlock(topic, p)
		if block == nil {
			continue
		}
		if !errors.Is(block.Err, sarama.ErrNoError) {
			t.Fatalf("kafkatest: offset of group %q on %s/%d: %v", group, topic, p, block.Err)
		}
		if block.Offset >= 0 {
			offsets[p] = block.Offset
		}
	}
	return offsets
}

func topicErr(metas []*sarama.TopicMetadata) error {
	if len(metas) != 1 {
		return fmt.Errorf("%d topics in the answer, want 1", len(metas))
	}
	return metas[0].Err
}
