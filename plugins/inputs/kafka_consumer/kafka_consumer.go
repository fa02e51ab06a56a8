// Package kafka_consumer is the Kafka JSON input: a drop-in for Telegraf's
// [[inputs.kafka_consumer]] with data_format = "json", run as an execd
// child. It writes line protocol to stdout, where stock Telegraf's
// [[inputs.execd]] reads it.
//
// Per message the path is bytes in, bytes out: the JSON is scanned and
// appended as line protocol (package jsonlp) to a per-partition buffer,
// which is written to stdout in one call whenever the partition has no
// more fetched messages waiting. A message's offset is marked only after
// the lines it produced were written, so a crash replays rather than
// loses.
package kafka_consumer //nolint:revive,stylecheck // named after the Telegraf plugin it replaces

import (
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/config"
	"github.com/influxdata/telegraf/plugins/common/kafka"

	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/execd"
	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/selfstat"
	"github.com/kafka-cnosdb/telegraf-execd/plugins/parsers/jsonlp"
)

//go:embed sample.conf
var sampleConfig string

const (
	defaultConsumerGroup = "telegraf_metrics_consumers"
	// Stock's 1000 is Telegraf's default metric_batch_size: a window no
	// larger than a batch makes every batch wait for flush_interval. Of
	// 10000, two to four batches of 1000 sit in Telegraf (insideFor) and
	// the rest is the output's: room for CnosDB writes of thousands of
	// lines while the input goes on; larger batches grow the defaults
	// (sizeWindows). The window is not in Telegraf's buffer, so it may
	// exceed metric_buffer_limit. Metrics: twice that, so that only
	// messages of several metrics each meet that bound first.
	defaultMaxUndeliveredMessages = 10000
	defaultMaxUndeliveredMetrics  = 20000
	defaultDeliveryTimeout        = config.Duration(30 * time.Second)
	defaultMetricBatchSize        = 1000 // Telegraf's agent default
	defaultMaxProcessingTime      = config.Duration(100 * time.Millisecond)
	defaultTopicRefreshInterval   = config.Duration(time.Minute)
	// Telegraf's default measurement for a parser is the plugin's name;
	// keeping it means `select * from kafka_consumer` still works.
	defaultMeasurement = "kafka_consumer"
	// Stock Telegraf defaults to 0.10.2.0, which Kafka 4 no longer
	// speaks (its issue 17570). 2.1.0 is the oldest protocol level
	// Kafka 4 accepts and is still understood by brokers back to 2.1.
	defaultKafkaVersion = "2.1.0"
	// reconnectDelay is how long stock kafka_consumer waits after a
	// failed consume before trying again.
	reconnectDelay = 5 * time.Second
)

// KafkaConsumer holds every option of stock [[inputs.kafka_consumer]]
// (Telegraf 1.27.1 to 1.37) with the same names, defaults and meaning.
type KafkaConsumer struct {
	Brokers                              []string        `toml:"brokers"`
	KafkaVersion                         string          `toml:"kafka_version"`
	ConsumerGroup                        string          `toml:"consumer_group"`
	MaxMessageLen                        int             `toml:"max_message_len"`
	MaxUndeliveredMessages               int             `toml:"max_undelivered_messages"`
	MaxProcessingTime                    config.Duration `toml:"max_processing_time"`
	Offset                               string          `toml:"offset"`
	BalanceStrategy                      string          `toml:"balance_strategy"`
	Topics                               []string        `toml:"topics"`
	TopicRegexps                         []string        `toml:"topic_regexps"`
	TopicRefreshInterval                 config.Duration `toml:"topic_refresh_interval"`
	TopicTag                             string          `toml:"topic_tag"`
	MsgHeadersAsTags                     []string        `toml:"msg_headers_as_tags"`
	MsgHeaderAsMetricName                string          `toml:"msg_header_as_metric_name"`
	TimestampSource                      string          `toml:"timestamp_source"`
	ConsumerFetchDefault                 config.Size     `toml:"consumer_fetch_default"`
	ConnectionStrategy                   string          `toml:"connection_strategy"`
	StartupErrorBehavior                 string          `toml:"startup_error_behavior"`
	ResolveCanonicalBootstrapServersOnly bool            `toml:"resolve_canonical_bootstrap_servers_only"`

	// The delivery loop with the CnosDB output (package delivery).
	DeliveryTracking      string          `toml:"delivery_tracking"`
	DeliveryTimeout       config.Duration `toml:"delivery_timeout"`
	DeliverySocketDir     string          `toml:"delivery_socket_dir"`
	MaxUndeliveredMetrics int             `toml:"max_undelivered_metrics"`
	MetricBatchSize       int             `toml:"metric_batch_size"`

	// Messages that cannot be converted go there (deadletter.go).
	DeadLetterTopic string `toml:"dead_letter_topic"`

	// Self-metrics (selfstats.go): off while stats_interval is 0.
	StatsInterval             config.Duration `toml:"stats_interval"`
	StatsMeasurement          string          `toml:"stats_measurement"`
	StatsPartitionMeasurement string          `toml:"stats_partition_measurement"`

	// Version, client id, TLS, SASL and metadata options come from
	// Telegraf's own Kafka config, so they parse and apply exactly as
	// in stock Telegraf.
	kafka.ReadConfig

	// data_format and the JSON parser's options.
	DataFormat       string   `toml:"data_format"`
	TagKeys          []string `toml:"tag_keys"`
	JSONStringFields []string `toml:"json_string_fields"`
	JSONNameKey      string   `toml:"json_name_key"`
	JSONQuery        string   `toml:"json_query"`
	JSONTimeKey      string   `toml:"json_time_key"`
	JSONTimeFormat   string   `toml:"json_time_format"`
	JSONTimezone     string   `toml:"json_timezone"`
	JSONStrict       *bool    `toml:"json_strict"`

	// Options Telegraf gives every input. They keep a meaning only where
	// one exists outside Telegraf; the README says what each does here.
	Alias string `toml:"alias"`
	// NameOverride renames the data here rather than in Telegraf, where
	// it would rename checkpoint markers too.
	NameOverride     string          `toml:"name_override"`
	LogLevel         string          `toml:"log_level"`
	Interval         config.Duration `toml:"interval"`
	CollectionJitter config.Duration `toml:"collection_jitter"`
	CollectionOffset config.Duration `toml:"collection_offset"`
	Precision        config.Duration `toml:"precision"`

	Log *execd.Logger `toml:"-"`

	saramaConfig *sarama.Config
	converter    *jsonlp.Converter
	stamps       stamps
	regexps      []*regexp.Regexp
	headerTags   map[string]bool
	badMessages  execd.RateLimit
	chunks       chunkPool
	// windowDefaults: the options left to their defaults, which grow
	// with a Telegraf batch read from its config (adoptTelegrafBatch).
	windowDefaults struct{ messages, metrics, batch bool }
	// telegrafBuffer is the metric_buffer_limit Telegraf's config gives
	// telegraf-cnosdb's output, 0 when unknown.
	telegrafBuffer int
	// missingTopics are the topics the brokers did not have at the last
	// look (refreshTopics, one goroutine at a time).
	missingTopics map[string]bool
}

// New returns the plugin with stock defaults, ready for a config file to
// be decoded into it.
func New() *KafkaConsumer {
	return &KafkaConsumer{
		Log: execd.NewLogger("inputs.kafka_consumer", telegraf.Info),
	}
}

func (*KafkaConsumer) SampleConfig() string { return sampleConfig }

// Init validates the options and builds the sarama config; every error
// names the option at fault.
func (k *KafkaConsumer) Init() error {
	if k.Log == nil {
		k.Log = execd.NewLogger("inputs.kafka_consumer", telegraf.Info)
	}
	level, err := execd.ParseLevel(k.LogLevel, telegraf.Info)
	if err != nil {
		return err
	}
	k.Log.SetLevel(level)
	k.badMessages = execd.RateLimit{Interval: 10 * time.Second, Burst: 10}

	if len(k.Brokers) == 0 {
		return errors.New("brokers: at least one broker address is required")
	}
	if len(k.Topics) == 0 && len(k.TopicRegexps) == 0 {
		return errors.New("topics: at least one topic (or topic_regexps) is required")
	}
	if k.MaxMessageLen < 0 {
		return fmt.Errorf("max_message_len: must not be negative, got %d", k.MaxMessageLen)
	}
	if k.MaxUndeliveredMessages < 0 {
		return fmt.Errorf("max_undelivered_messages: must not be negative, got %d", k.MaxUndeliveredMessages)
	}
	k.windowDefaults.messages = k.MaxUndeliveredMessages == 0
	k.windowDefaults.metrics = k.MaxUndeliveredMetrics == 0
	k.windowDefaults.batch = k.MetricBatchSize == 0
	if k.MaxUndeliveredMessages == 0 {
		k.MaxUndeliveredMessages = defaultMaxUndeliveredMessages
	}
	if k.MaxUndeliveredMetrics < 0 {
		return fmt.Errorf("max_undelivered_metrics: must not be negative, got %d", k.MaxUndeliveredMetrics)
	}
	if k.MaxUndeliveredMetrics == 0 {
		k.MaxUndeliveredMetrics = defaultMaxUndeliveredMetrics
	}
	if k.MetricBatchSize < 0 {
		return fmt.Errorf("metric_batch_size: must not be negative, got %d", k.MetricBatchSize)
	}
	if k.MetricBatchSize == 0 {
		k.MetricBatchSize = defaultMetricBatchSize
	}
	switch k.DeliveryTracking {
	case "":
		k.DeliveryTracking = trackingAuto
	case trackingAuto, trackingRequired, trackingOff:
	default:
		return fmt.Errorf("delivery_tracking: %q is not one of auto, required, off", k.DeliveryTracking)
	}
	if k.DeliveryTimeout < 0 {
		return fmt.Errorf("delivery_timeout: must not be negative, got %s", time.Duration(k.DeliveryTimeout))
	}
	if k.DeliveryTimeout == 0 {
		k.DeliveryTimeout = defaultDeliveryTimeout
	}
	if k.MaxProcessingTime <= 0 {
		k.MaxProcessingTime = defaultMaxProcessingTime
	}
	if k.TopicRefreshInterval <= 0 {
		k.TopicRefreshInterval = defaultTopicRefreshInterval
	}
	if k.ConsumerGroup == "" {
		k.ConsumerGroup = defaultConsumerGroup
	}
	if k.StatsMeasurement == "" {
		k.StatsMeasurement = defaultStatsMeasurement
	}
	if k.StatsPartitionMeasurement == "" {
		k.StatsPartitionMeasurement = defaultStatsPartitionMeasurement
	}
	if err := selfstat.CheckOptions(time.Duration(k.StatsInterval), map[string]string{
		"stats_measurement":           k.StatsMeasurement,
		"stats_partition_measurement": k.StatsPartitionMeasurement,
	}); err != nil {
		return err
	}
	switch k.TimestampSource {
	case "":
		k.TimestampSource = "metric"
	case "metric", "inner", "outer":
	default:
		return fmt.Errorf("timestamp_source: %q is not one of metric, inner, outer", k.TimestampSource)
	}
	switch k.ConnectionStrategy {
	case "", "startup", "defer":
	default:
		return fmt.Errorf("connection_strategy: %q is not one of startup, defer", k.ConnectionStrategy)
	}
	switch k.StartupErrorBehavior {
	case "":
		k.StartupErrorBehavior = "error"
	case "error", "retry", "ignore", "probe":
	default:
		return fmt.Errorf("startup_error_behavior: %q is not one of error, retry, ignore, probe", k.StartupErrorBehavior)
	}
	for _, expr := range k.TopicRegexps {
		re, err := regexp.Compile(expr)
		if err != nil {
			return fmt.Errorf("topic_regexps: %q does not compile: %w", expr, err)
		}
		k.regexps = append(k.regexps, re)
	}
	if dl := k.DeadLetterTopic; dl != "" {
		if slices.Contains(k.Topics, dl) {
			return fmt.Errorf("dead_letter_topic: %q is also in topics: its messages would come back as bad messages for ever", dl)
		}
		for _, re := range k.regexps {
			if re.MatchString(dl) {
				return fmt.Errorf("dead_letter_topic: %q matches topic_regexps %q: its messages would come back as bad messages for ever", dl, re.String())
			}
		}
	}
	k.headerTags = make(map[string]bool, len(k.MsgHeadersAsTags))
	for _, h := range k.MsgHeadersAsTags {
		// Stock never turns the header that names the metric into a tag.
		if h != k.MsgHeaderAsMetricName {
			k.headerTags[h] = true
		}
	}

	if err := k.initConverter(); err != nil {
		return err
	}
	return k.initSarama()
}

func (k *KafkaConsumer) initConverter() error {
	switch k.DataFormat {
	case "json":
	case "":
		// Stock's default is influx; this binary exists for JSON.
		return errors.New(`data_format: must be set to "json" (this plugin converts JSON messages; stock's default "influx" is not supported)`)
	default:
		return fmt.Errorf(`data_format: %q is not supported, only "json"`, k.DataFormat)
	}
	strict := true
	if k.JSONStrict != nil {
		strict = *k.JSONStrict
	}
	conv, err := jsonlp.New(jsonlp.Config{
		MetricName:   defaultMeasurement,
		TagKeys:      k.TagKeys,
		StringFields: k.JSONStringFields,
		NameKey:      k.JSONNameKey,
		Query:        k.JSONQuery,
		TimeKey:      k.JSONTimeKey,
		TimeFormat:   k.JSONTimeFormat,
		Timezone:     k.JSONTimezone,
		Strict:       strict,
	})
	if err != nil {
		return fmt.Errorf("json parser options: %w", err)
	}
	k.converter = conv
	return nil
}

func (k *KafkaConsumer) initSarama() error {
	cfg := sarama.NewConfig()
	version := k.KafkaVersion
	if version == "" {
		version = defaultKafkaVersion
	}
	v, err := sarama.ParseKafkaVersion(version)
	if err != nil {
		return fmt.Errorf("kafka_version: %w", err)
	}
	cfg.Version = v
	// The `version` option of Telegraf's common Kafka config wins over
	// kafka_version, as in stock.
	if err := k.SetConfig(cfg, k.Log); err != nil {
		return fmt.Errorf("kafka client options (version, tls_*, sasl_*, metadata_*): %w", err)
	}
	switch strings.ToLower(k.Offset) {
	case "oldest", "":
		cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	case "newest":
		cfg.Consumer.Offsets.Initial = sarama.OffsetNewest
	default:
		return fmt.Errorf("offset: %q is not one of oldest, newest", k.Offset)
	}
	switch strings.ToLower(k.BalanceStrategy) {
	case "range", "":
		cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	case "roundrobin":
		cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRoundRobin()}
	case "sticky":
		cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	default:
		return fmt.Errorf("balance_strategy: %q is not one of range, roundrobin, sticky", k.BalanceStrategy)
	}
	cfg.Net.ResolveCanonicalBootstrapServers = k.ResolveCanonicalBootstrapServersOnly
	cfg.Consumer.MaxProcessingTime = time.Duration(k.MaxProcessingTime)
	if k.ConsumerFetchDefault != 0 {
		cfg.Consumer.Fetch.Default = int32(k.ConsumerFetchDefault)
	}
	cfg.Consumer.Return.Errors = true
	if k.DeadLetterTopic != "" {
		// A dead letter counts as written once every in-sync replica
		// has it: its offset is committed after.
		cfg.Producer.Return.Successes = true
		cfg.Producer.RequiredAcks = sarama.WaitForAll
		cfg.Producer.MaxMessageBytes = max(cfg.Producer.MaxMessageBytes, k.MaxMessageLen+64<<10)
		// A topic that is gone must not hold a partition up for long.
		cfg.Producer.Retry.Max = 1
		cfg.Producer.Timeout = 5 * time.Second
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("kafka client options: %w", err)
	}
	k.saramaConfig = cfg
	return nil
}
