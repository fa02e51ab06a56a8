package kafka_consumer //nolint:revive,stylecheck // named after the Telegraf plugin it replaces

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/execd"
	"github.com/kafka-cnosdb/telegraf-execd/plugins/parsers/jsonlp"
)

// flushBytes bounds a partition's buffer: reaching it writes to stdout
// even while more messages are waiting, so latency stays low under load.
const flushBytes = 64 << 10

// Stats counts what the input did; it is logged at shutdown.
type Stats struct {
	Messages    atomic.Int64 // consumed from Kafka
	Bytes       atomic.Int64 // their values' bytes, added per chunk
	Lines       atomic.Int64 // written to stdout
	BadMessages atomic.Int64 // not valid, too long, or unconvertible
	// Acknowledged counts messages whose checkpoint the output
	// acknowledged; Rewinds the replays after a lost checkpoint.
	Acknowledged atomic.Int64
	Rewinds      atomic.Int64
	// Unacknowledged is set at the end: messages written but never
	// acknowledged, which the next run consumes again.
	Unacknowledged atomic.Int64
	// The pauses at the window's bounds: for acknowledgements (the
	// window is full), or for the output to read what sits in Telegraf;
	// PausedNanos is their total length. They tell a slow CnosDB or a
	// window too small for the load from a slow input.
	PausesForAcks, PausesForTelegraf, PausedNanos atomic.Int64
	// Nudges counts the times Telegraf was asked to flush because it
	// held the input's lines too long (Telegraf before 1.35.2).
	Nudges atomic.Int64
	// DeadLettered counts bad messages written to dead_letter_topic;
	// DeadLetterFailures those Kafka did not take, skipped instead.
	DeadLettered, DeadLetterFailures atomic.Int64
	// StatsSkipped counts the self-metrics intervals left out because
	// Telegraf had no room for them (the output was not reading).
	StatsSkipped atomic.Int64
}

// Run consumes until ctx is cancelled or stdout fails, then leaves the
// group after committing what was written. It returns an error only for
// a failure the process should exit non-zero for.
func (k *KafkaConsumer) Run(ctx context.Context, stdout io.Writer, stats *Stats) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	client, err := k.connect(ctx)
	if err != nil || client == nil {
		return err
	}
	defer client.Close()
	dead, err := k.newDeadLetters(client, stats)
	if err != nil {
		return err
	}
	if dead != nil {
		defer dead.close() // after the group closed: claims send until then
	}

	group, err := sarama.NewConsumerGroupFromClient(k.ConsumerGroup, client)
	if err != nil {
		return fmt.Errorf("creating consumer group %q: %w", k.ConsumerGroup, err)
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for err := range group.Errors() {
			k.Log.Errorf("consumer group %q: %v", k.ConsumerGroup, err)
		}
	}()

	telegraf, isTelegraf := execd.ParentTelegraf()
	retriggers := retriggersWrites(telegraf.Version, telegraf.VersionKnown)
	switch {
	case telegraf.VersionKnown:
		k.Log.Debugf("started by Telegraf %s, which writes again while a batch is ready: %v", telegraf.Version, retriggers)
	case isTelegraf:
		k.Log.Infof("started by a Telegraf whose version its build does not record: assuming one before 1.35.2 (two batches inside it)")
	}
	if isTelegraf {
		k.chooseTracking(telegraf)
		if k.DeliveryTracking != trackingOff {
			outputs, err := parentOutputs(telegraf)
			k.warnUnfilteredOutputs(outputs)
			k.adoptTelegrafBatch(outputs, err)
		}
	}
	k.sizeWindows(retriggers)
	t := newTracker(k, stdout, stats, retriggers)
	if isTelegraf {
		t.nudge = telegraf.RequestFlush
	}
	stopTracking, err := t.listen(ctx)
	if err != nil {
		return err
	}
	defer stopTracking()
	if k.StatsInterval > 0 {
		r := &statsReporter{k: k, t: t, stats: stats, client: client}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.run(ctx)
		}()
	}
	h := &handler{
		k:     k,
		t:     t,
		stats: stats,
		fail:  cancel,
		dead:  dead,
		group: group,
	}
	if conf, ok := newFetchConfig(k.saramaConfig); ok {
		h.fetch = newFetcher(ctx, k.Log, client, conf)
		defer func() {
			cancel(nil)
			h.fetch.wait()
		}()
	}
	// Only topics the brokers have are subscribed: sarama fails the whole
	// group for one that is missing. The watch adds a topic as it
	// appears, and topic_regexps' new matches.
	topics := newTopicSet(nil)
	if err := k.refreshTopics(client, topics); err != nil {
		k.Log.Warnf("listing the brokers' topics: %v (subscribing to topics as given)", err)
		topics.set(k.Topics)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		k.watchTopics(ctx, client, topics)
	}()

	k.Log.Infof("consuming %v as group %q from %v", topics.list(), k.ConsumerGroup, k.Brokers)
	for ctx.Err() == nil {
		list := topics.list()
		if len(list) == 0 {
			k.Log.Warnf("none of topics/topic_regexps is on the brokers yet; looking again every %s", time.Duration(k.TopicRefreshInterval))
			waitOrDone(ctx, topics.changedChan())
			continue
		}
		sessionCtx, endSession := context.WithCancel(ctx)
		// A rewind ends the session too: the next starts from the
		// committed offsets.
		t.setEndSession(endSession)
		go func() {
			// A new topic means a new subscription: end the session so
			// Consume rejoins the group with the new list.
			select {
			case <-topics.changedChan():
				endSession()
			case <-sessionCtx.Done():
			}
		}()
		err := group.Consume(sessionCtx, list, h)
		endSession()
		if err != nil && ctx.Err() == nil {
			k.Log.Errorf("consume: %v (retrying in %s)", err, reconnectDelay)
			sleepCtx(ctx, reconnectDelay)
		}
	}

	// Close commits the offsets marked so far and leaves the group, so
	// the partitions move to another member at once.
	stats.Unacknowledged.Store(int64(t.stop()))
	if err := group.Close(); err != nil {
		k.Log.Errorf("leaving consumer group: %v", err)
	}
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return nil
}

// connect creates the Kafka client, applying connection_strategy and
// startup_error_behavior when the brokers cannot be reached. A nil client
// with a nil error means: stay idle until stopped.
func (k *KafkaConsumer) connect(ctx context.Context) (sarama.Client, error) {
	retry := k.ConnectionStrategy == "defer" || k.StartupErrorBehavior == "retry"
	for {
		client, err := sarama.NewClient(k.Brokers, k.clientConfig())
		if err == nil {
			return client, nil
		}
		why := k.connectError(err)
		switch {
		case retry:
			k.Log.Warnf("%s; retrying in %s", why, reconnectDelay)
			if !sleepCtx(ctx, reconnectDelay) {
				return nil, nil
			}
		case k.StartupErrorBehavior == "ignore":
			k.Log.Errorf("%s; startup_error_behavior = \"ignore\": consuming nothing until restarted", why)
			<-ctx.Done()
			return nil, nil
		default:
			return nil, fmt.Errorf("%s (set startup_error_behavior = \"retry\" to keep trying; Telegraf restarts this process after its restart_delay)", why)
		}
	}
}

// clientConfig is the sarama config of the consuming client. When the
// fetcher reads the partitions, sarama's partition consumers only make
// their first fetch before they are paused: it asks for one byte a
// partition (one record batch at most, or none), not
// consumer_fetch_default, as that answer is never read and would be held
// until the session ends (64 MB at 64 partitions).
func (k *KafkaConsumer) clientConfig() *sarama.Config {
	if _, fetches := fetchVersion(k.saramaConfig.Version); !fetches {
		return k.saramaConfig
	}
	cfg := *k.saramaConfig
	cfg.Consumer.Fetch.Default = 1
	return &cfg
}

// connectError says why the brokers could not be used, naming the
// options at fault (the password never) beside sarama's and the
// brokers' own words.
func (k *KafkaConsumer) connectError(err error) string {
	net := k.saramaConfig.Net
	switch {
	case errors.Is(err, sarama.ErrSASLAuthenticationFailed), errors.Is(err, sarama.ErrUnsupportedSASLMechanism), errors.Is(err, sarama.ErrIllegalSASLState):
		return fmt.Sprintf("cannot connect to brokers %v: they refused SASL authentication with sasl_mechanism = %q, sasl_username = %q (check those and sasl_password): %v",
			k.Brokers, string(net.SASL.Mechanism), net.SASL.User, err)
	case isTLSError(err):
		return fmt.Sprintf("cannot connect to brokers %v: TLS failed (check tls_ca, tls_cert, tls_key, tls_server_name, insecure_skip_verify, and that the brokers' port speaks TLS): %v", k.Brokers, err)
	case net.TLS.Enable && errors.Is(err, io.EOF):
		return fmt.Sprintf("cannot connect to brokers %v: the connection closed during the TLS handshake (does that port speak TLS?): %v", k.Brokers, err)
	}
	return fmt.Sprintf("cannot connect to brokers %v: %v", k.Brokers, err)
}

func isTLSError(err error) bool {
	var recordErr tls.RecordHeaderError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	return errors.As(err, &recordErr) || errors.As(err, &certErr) || errors.As(err, &unknownAuth) || errors.As(err, &hostErr)
}

func (k *KafkaConsumer) watchTopics(ctx context.Context, client sarama.Client, topics *topicSet) {
	ticker := time.NewTicker(time.Duration(k.TopicRefreshInterval))
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if err := k.refreshTopics(client, topics); err != nil {
				k.Log.Warnf("refreshing the brokers' topics: %v", err)
			}
		}
	}
}

func (k *KafkaConsumer) refreshTopics(client sarama.Client, topics *topicSet) error {
	wanted, all, err := k.wantedTopics(client)
	if err != nil {
		return err
	}
	k.reportMissingTopics(all)
	present := slices.DeleteFunc(wanted, func(t string) bool { return !slices.Contains(all, t) })
	if old, changed := topics.set(present); changed && len(old) > 0 {
		k.Log.Infof("topics changed from %v to %v", old, topics.list())
	}
	return nil
}

// reportMissingTopics says once which topics the brokers do not have, and
// again when one appears: consumption goes on with the others meanwhile.
func (k *KafkaConsumer) reportMissingTopics(all []string) {
	for _, t := range k.Topics {
		switch missing := !slices.Contains(all, t); {
		case missing && !k.missingTopics[t]:
			if k.missingTopics == nil {
				k.missingTopics = map[string]bool{}
			}
			k.missingTopics[t] = true
			k.Log.Errorf("topics: %q does not exist on brokers %v: consuming the other topics, and this one once it exists (looked for every topic_refresh_interval, %s)",
				t, k.Brokers, time.Duration(k.TopicRefreshInterval))
		case !missing && k.missingTopics[t]:
			delete(k.missingTopics, t)
			k.Log.Infof("topics: %q exists now: consuming it", t)
		}
	}
}

// wantedTopics is topics, and the broker's topics that topic_regexps
// match, from fresh metadata; all lists every topic the broker has.
func (k *KafkaConsumer) wantedTopics(client sarama.Client) (wanted, all []string, err error) {
	if err := client.RefreshMetadata(); err != nil {
		return nil, nil, err
	}
	if all, err = client.Topics(); err != nil {
		return nil, nil, err
	}
	wanted = slices.Clone(k.Topics)
	for _, t := range all {
		for _, re := range k.regexps {
			if re.MatchString(t) {
				wanted = append(wanted, t)
				break
			}
		}
	}
	return wanted, all, nil
}

// topicSet is the subscription, shared with the topic watcher; changed is
// closed (and replaced) whenever the list changes.
type topicSet struct {
	mu      sync.Mutex
	topics  []string
	changed chan struct{}
}

func newTopicSet(topics []string) *topicSet {
	s := &topicSet{changed: make(chan struct{})}
	s.set(topics)
	return s
}

func (s *topicSet) set(topics []string) (old []string, changed bool) {
	topics = slices.Clone(topics)
	sort.Strings(topics)
	topics = slices.Compact(topics)
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Equal(topics, s.topics) {
		return s.topics, false
	}
	old, s.topics = s.topics, topics
	close(s.changed)
	s.changed = make(chan struct{})
	return old, true
}

func (s *topicSet) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.topics
}

func (s *topicSet) changedChan() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// handler is the sarama.ConsumerGroupHandler: one ConsumeClaim goroutine
// per owned partition.
type handler struct {
	k     *KafkaConsumer
	t     *tracker
	stats *Stats
	fail  context.CancelCauseFunc
	dead  *deadLetters // nil without dead_letter_topic
	// fetch reads the claims' partitions, nil before Kafka 0.11 (sarama's
	// partition consumers do); group pauses those.
	fetch *fetcher
	group sarama.ConsumerGroup
}

func (h *handler) Setup(session sarama.ConsumerGroupSession) error {
	h.k.Log.Infof("joined group %q (generation %d) with partitions %v", h.k.ConsumerGroup, session.GenerationID(), session.Claims())
	h.t.setSession(session)
	if h.fetch != nil {
		n := 0
		for _, partitions := range session.Claims() {
			n += len(partitions)
		}
		h.fetch.expect(n)
	}
	return nil
}

func (h *handler) Cleanup(sarama.ConsumerGroupSession) error {
	h.t.setSession(nil)
	return nil
}

// ConsumeClaim converts a partition's messages into a buffer (a chunk)
// and writes it whenever no further message is waiting, the buffer is
// full, or the chunk is a fair share of the window; the tracker adds the
// chunk's marker and commits its offsets once acknowledged (untracked: at
// once). When the window is full it waits, and fetching stops.
func (h *handler) ConsumeClaim(session sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	r := &claimRun{h: h, session: session, c: newClaimConverter(h.k), topic: claim.Topic(), partition: claim.Partition()}
	r.ps = h.t.parts.claim(claim.Topic(), claim.Partition(), claim.InitialOffset())
	defer r.ps.owned.Store(false)
	if h.fetch == nil {
		return r.consumeMessages(claim.Messages())
	}
	// sarama's partition consumer stays paused; the fetcher reads the
	// partition (fetch.go).
	h.group.Pause(map[string][]int32{claim.Topic(): {claim.Partition()}})
	fd := h.fetch.add(claim.Topic(), claim.Partition(), claim.InitialOffset())
	defer h.fetch.remove(fd)
	return r.consumeFetched(fd, claim.Messages())
}

// claimRun is one claim's chunk: what it converted since its last write.
type claimRun struct {
	h         *handler
	session   sarama.ConsumerGroupSession
	c         *claimConverter
	ps        *partitionStats
	topic     string
	partition int32
	// lastOffset is the chunk's last message's, valid while c.messages > 0.
	lastOffset int64
}

// consumeMessages reads sarama's partition consumer, one message at a
// time (Kafka before 0.11).
func (r *claimRun) consumeMessages(messages <-chan *sarama.ConsumerMessage) error {
	ctx := r.session.Context()
	for {
		select {
		case <-ctx.Done():
			return r.finish()
		case msg, ok := <-messages:
			if !ok {
				return r.finish()
			}
			if more, err := r.take(ctx, msg, len(messages) == 0); !more {
				return err
			}
		}
	}
}

// consumeFetched reads the fetcher's blocks; the chunk is written at a
// block's end when no further block is waiting. What sarama's paused
// partition consumer fetched before the pause comes on paused and is
// dropped, so that its answer is not held: the fetcher reads those
// offsets again. (Dropped here rather than by a goroutine of its own: a
// goroutine a partition is more stacks for every collection to scan.)
func (r *claimRun) consumeFetched(fd *feed, paused <-chan *sarama.ConsumerMessage) error {
	ctx := r.session.Context()
	msg := &sarama.ConsumerMessage{Topic: fd.topic, Partition: fd.partition}
	times := r.h.k.TimestampSource != "metric" || r.h.dead != nil
	var (
		more = true
		err  error
	)
	for {
		select {
		case <-ctx.Done():
			return r.finish()
		case _, ok := <-paused:
			if !ok {
				paused = nil
			}
		case b := <-fd.blocks:
			r.h.fetch.taken(fd)
			eachMessage(b, msg, times, func(msg *sarama.ConsumerMessage) bool {
				more, err = r.take(ctx, msg, false)
				return more
			})
			// The last record's bytes would keep the whole answer
			// they came in from being freed.
			msg.Key, msg.Value, msg.Headers = nil, nil, nil
			if !more {
				return err
			}
			if len(fd.blocks) == 0 {
				if err := r.flush(); err != nil {
					return err
				}
			}
		}
	}
}

// take converts one message into the chunk, after reserving its room in
// the window; idle: no further message is waiting, so the chunk is
// written. false: the claim ends, with err.
func (r *claimRun) take(ctx context.Context, msg *sarama.ConsumerMessage, idle bool) (bool, error) {
	h, c := r.h, r.c
	if ok, err := h.t.acquire(ctx, c.lines, r.flush); !ok {
		if err != nil {
			return false, err
		}
		return false, r.finish() // msg is consumed again by the next session
	}
	h.stats.Messages.Add(1)
	if err := c.append(msg); err != nil {
		c.bad++
		h.stats.BadMessages.Add(1)
		h.k.logBadMessage(msg, err, h.dead.enabled())
		if h.dead != nil {
			c.dead = append(c.dead, h.dead.letter(msg, err))
		}
	}
	r.lastOffset = msg.Offset
	if idle || len(c.buf) >= flushBytes || h.t.chunkDone(c.messages, c.lines) {
		if err := r.flush(); err != nil {
			return false, err
		}
	}
	return true, nil
}

// counted adds the chunk's messages to the counters, once per chunk.
func (r *claimRun) counted() {
	c, ps := r.c, r.ps
	ps.messages.Add(int64(c.messages))
	ps.bytes.Add(c.bytes)
	ps.badMessages.Add(int64(c.bad))
	r.h.stats.Bytes.Add(c.bytes)
}

func (r *claimRun) flush() error {
	h, c := r.h, r.c
	if c.messages == 0 {
		return nil
	}
	cp := checkpoint{topic: r.topic, partition: r.partition, first: c.first, next: r.lastOffset + 1, messages: c.messages, lines: c.lines, ps: r.ps}
	if h.dead != nil {
		// Before the chunk's offsets can be committed.
		h.dead.send(c.dead)
	}
	if err := h.t.write(c.buf, cp, r.session); err != nil {
		err = fmt.Errorf("writing to stdout: %w", err)
		h.fail(err)
		return err
	}
	r.counted()
	r.ps.consumed.Store(cp.next)
	c.reset()
	return nil
}

// finish ends the claim when its session is over: untracked, it writes
// what is converted while the partition is still ours; tracked, it
// leaves it to be consumed again, since no session would be there to
// commit it.
func (r *claimRun) finish() error {
	if r.h.t.markers() {
		r.counted()
		r.h.t.release(r.c.messages)
		r.c.reset() // the next session consumes them, dead letters too
		return nil
	}
	return r.flush()
}

// logBadMessage says why msg is skipped; dead: it goes to dead_letter_topic.
func (k *KafkaConsumer) logBadMessage(msg *sarama.ConsumerMessage, err error, dead bool) {
	ok, suppressed := k.badMessages.Allow(time.Now())
	if !ok {
		return
	}
	more := ""
	if suppressed > 0 {
		more = fmt.Sprintf(" (%d similar errors not logged)", suppressed)
	}
	where := ""
	if dead {
		where = fmt.Sprintf(" (to dead_letter_topic %q)", k.DeadLetterTopic)
	}
	k.Log.Errorf("skipping message at topic %q partition %d offset %d%s: %v%s", msg.Topic, msg.Partition, msg.Offset, where, err, more)
}

// claimConverter is one partition's converter and output buffer, reused
// for every message so the per-message path does not allocate.
type claimConverter struct {
	k        *KafkaConsumer
	conv     *jsonlp.Converter
	meta     jsonlp.Meta
	buf      []byte
	lines    int
	messages int
	first    int64 // offset of the first message in buf
	// For the self-metrics: the chunk's bytes consumed and bad messages.
	bytes int64
	bad   int
	// dead holds the chunk's dead letters (dead_letter_topic).
	dead []*sarama.ProducerMessage
	// reading is the clock as last read, for stamps; sinceReading counts
	// the messages stamped from it. reset starts it again, so a reading
	// never spans a pause or a write.
	reading      int64
	sinceReading int
}

func newClaimConverter(k *KafkaConsumer) *claimConverter {
	return &claimConverter{k: k, conv: k.converter.Clone()}
}

// reset empties the chunk after its write (or when it is dropped); its
// buffer goes back to the pool.
func (c *claimConverter) reset() {
	c.k.chunks.put(c.buf)
	c.buf = nil
	c.lines = 0
	c.messages = 0
	c.bytes = 0
	c.bad = 0
	c.sinceReading = 0
	clear(c.dead)
	c.dead = c.dead[:0]
}

// append converts one message the way stock kafka_consumer does: parse,
// then header tags, metric name from a header, the topic tag, and the
// timestamp source.
func (c *claimConverter) append(msg *sarama.ConsumerMessage) error {
	k := c.k
	if c.messages == 0 {
		c.first = msg.Offset
	}
	c.messages++
	c.bytes += int64(len(msg.Value))
	if k.MaxMessageLen != 0 && len(msg.Value) > k.MaxMessageLen {
		return fmt.Errorf("message exceeds max_message_len (actual %d, max %d)", len(msg.Value), k.MaxMessageLen)
	}
	m := &c.meta
	m.Name = ""
	m.Tags = m.Tags[:0]
	if c.sinceReading == 0 {
		c.reading = time.Now().UnixNano()
	}
	c.sinceReading = (c.sinceReading + 1) % clockEvery
	m.Now = time.Unix(0, k.stamps.next(c.reading))
	m.Time = time.Time{}
	emptyName := false
	if len(k.headerTags) > 0 || k.MsgHeaderAsMetricName != "" {
		for _, h := range msg.Headers {
			key := string(h.Key)
			switch {
			case k.headerTags[key]:
				m.Tags = setTag(m.Tags, key, string(h.Value))
			case key == k.MsgHeaderAsMetricName:
				m.Name = string(h.Value)
				emptyName = m.Name == ""
			}
		}
	}
	if k.NameOverride != "" && !emptyName {
		m.Name = k.NameOverride
	}
	if k.TopicTag != "" {
		m.Tags = setTag(m.Tags, k.TopicTag, msg.Topic)
	}
	switch k.TimestampSource {
	case "inner":
		m.Time = msg.Timestamp
	case "outer":
		m.Time = msg.BlockTimestamp
	}
	var (
		lines int
		err   error
	)
	if c.buf == nil {
		c.buf = c.k.chunks.get()
	}
	start := len(c.buf)
	c.buf, lines, err = c.conv.Append(c.buf, msg.Value, m)
	if err != nil {
		return err
	}
	if emptyName {
		// Stock names the metrics "" and Telegraf drops nameless
		// metrics; the message still had to parse to say so.
		c.buf = c.buf[:start]
		lines = 0
	}
	if d := c.conv.Dropped(); d != (jsonlp.Dropped{}) {
		k.Log.Debugf("topic %q partition %d offset %d: left out %d metric(s) and %d field(s) that line protocol cannot carry through Telegraf (see jsonlp's README)",
			msg.Topic, msg.Partition, msg.Offset, d.Metrics, d.Fields)
	}
	c.lines += lines
	return nil
}

// setTag adds or replaces a tag: a later AddTag wins in Telegraf too.
func setTag(tags []jsonlp.Tag, key, value string) []jsonlp.Tag {
	for i := range tags {
		if tags[i].Key == key {
			tags[i].Value = value
			return tags
		}
	}
	return append(tags, jsonlp.Tag{Key: key, Value: value})
}

// sleepCtx waits d and reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func waitOrDone(ctx context.Context, ch <-chan struct{}) {
	select {
	case <-ctx.Done():
	case <-ch:
	}
}

// chunkPool lends the claims their chunk buffers. A claim needs one only
// from its first converted message to the chunk's write, and the claims
// of one thread convert and write one after another: a buffer kept by
// each claim would hold up to flushBytes and a message at every
// partition (64 partitions: over 4 MB) while nearly all sit empty.
type chunkPool struct {
	mu   sync.Mutex
	free [][]byte
}

const (
	// chunkPoolFree buffers are kept between uses; more in use at once
	// (claims blocked on a full stdout) are left to the collector.
	chunkPoolFree = 4
	// A buffer grown past this by a large message is not kept.
	chunkPoolMax = 4 * flushBytes
	// A new buffer grows to flushBytes and a message where the load
	// needs it.
	chunkInitial = 4 << 10
)

func (p *chunkPool) get() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
		return b
	}
	return make([]byte, 0, chunkInitial)
}

func (p *chunkPool) put(b []byte) {
	if b == nil || cap(b) > chunkPoolMax {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) < chunkPoolFree {
		p.free = append(p.free, b[:0])
	}
}
