package kafka_consumer //nolint:revive,stylecheck // named after the Telegraf plugin it replaces

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/influxdata/telegraf"
)

// Fetching without sarama's partition consumers.
//
// sarama's ConsumerGroup keeps the membership, the assignment and the
// commits. Its partition consumers would hand every message to the claim
// over a channel, and that hand-off (a select, a send and a receive per
// message, and the wake-ups behind them) was about 40 % of the input's
// CPU. So the claims' partitions are paused in sarama and fetched here
// with sarama's own protocol layer: one FetchRequest per broker for every
// partition of it that has room, and each partition's decoded record
// batches handed to its claim whole, one channel operation per fetch. A
// partition has room while at most the block being converted is out:
// the next is fetched meanwhile.

// busyPollWait bounds the broker's wait in a fetch that leaves out a
// partition still converting its last block: a fetch long-polling for
// idle partitions must not keep a busy one from its next block.
const busyPollWait = 10 * time.Millisecond

// responseBytes bounds a fetch's answer (unless one partition's default
// is larger): with many partitions behind, an answer of
// consumer_fetch_default bytes for each would hold tens of megabytes.
// The broker fills partitions in the order asked, and sarama sends them in
// map order, so none is always last.
const responseBytes = 4 << 20

// heldBytes bounds what the fetched blocks of all partitions hold between
// them (two each: one converting, one fetched ahead; their decoded records
// take as much again): with many partitions each asks for less than
// consumer_fetch_default, but never under minPartitionBytes. 64 partitions
// behind would otherwise hold 128 MB; at 4 MB the input peaked at 61-66 MB
// RSS reading 64 of them, at 2 MB at 43 MB, as fast.
const (
	heldBytes         = 2 << 20
	minPartitionBytes = 16 << 10
)

// fetchConfig is what every FetchRequest takes from the sarama config.
type fetchConfig struct {
	version        int16
	minBytes       int32
	maxWait        time.Duration
	maxBytes       int32
	partitionBytes int32 // consumer_fetch_default
	partitionMax   int32 // the largest a partial batch grows it to; 0: no limit
	isolation      sarama.IsolationLevel
	rackID         string
	backoff        time.Duration
	initial        int64 // offset: where a partition without a valid offset starts
}

// fetchVersion is the newest Fetch request version that cfg.Version
// allows, and false before Kafka 0.11: older brokers send message sets
// that sarama's partition consumer is left to read.
func fetchVersion(v sarama.KafkaVersion) (int16, bool) {
	switch {
	case v.IsAtLeast(sarama.V2_7_0_0):
		return 12, true
	case v.IsAtLeast(sarama.V2_3_0_0):
		return 11, true
	case v.IsAtLeast(sarama.V2_1_0_0):
		return 10, true
	case v.IsAtLeast(sarama.V2_0_0_0):
		return 8, true
	case v.IsAtLeast(sarama.V1_1_0_0):
		return 7, true
	case v.IsAtLeast(sarama.V1_0_0_0):
		return 6, true
	case v.IsAtLeast(sarama.V0_11_0_0):
		return 5, true
	}
	return 0, false
}

func newFetchConfig(cfg *sarama.Config) (fetchConfig, bool) {
	version, ok := fetchVersion(cfg.Version)
	return fetchConfig{
		version:        version,
		minBytes:       cfg.Consumer.Fetch.Min,
		maxWait:        cfg.Consumer.MaxWaitTime,
		maxBytes:       cfg.Consumer.Fetch.MaxBytes,
		partitionBytes: cfg.Consumer.Fetch.Default,
		partitionMax:   cfg.Consumer.Fetch.Max,
		isolation:      cfg.Consumer.IsolationLevel,
		rackID:         cfg.RackID,
		backoff:        cfg.Consumer.Retry.Backoff,
		initial:        cfg.Consumer.Offsets.Initial,
	}, ok
}

// fetcher fetches the partitions the claims have added, until ctx ends.
type fetcher struct {
	log    telegraf.Logger
	client sarama.Client
	conf   fetchConfig
	ctx    context.Context
	wg     sync.WaitGroup

	mu      sync.Mutex
	brokers map[int32]*brokerFetcher
	// feeds are added and not removed; expected, the partitions of the
	// session starting, which add theirs one by one.
	feeds, expected int
}

// feed is one partition's fetched blocks, for its claim.
type feed struct {
	topic     string
	partition int32
	// blocks holds the block fetched ahead of the one being converted.
	blocks chan fetched

	// Under fetcher.mu.
	next    int64 // the offset the next fetch asks for
	size    int32 // bytes the next fetch asks for
	owner   *brokerFetcher
	removed bool
	// emptyAnswers counts the answers in a row with nothing at emptyAt,
	// below the high watermark.
	emptyAt      int64
	emptyAnswers int
}

// stallAnswers empty answers in a row below the high watermark are said.
const stallAnswers = 100

// fetched is a block of record batches, from the offset the claim has
// not seen yet: batches may start before it.
type fetched struct {
	block *sarama.FetchResponseBlock
	from  int64
}

func newFetcher(ctx context.Context, log telegraf.Logger, client sarama.Client, conf fetchConfig) *fetcher {
	return &fetcher{log: log, client: client, conf: conf, ctx: ctx, brokers: map[int32]*brokerFetcher{}}
}

// expect says how many partitions the session owns, before their claims
// start: the first fetches already share heldBytes between all of them.
func (f *fetcher) expect(partitions int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expected = partitions
}

// wait returns once every fetch has ended (ctx is done).
func (f *fetcher) wait() { f.wg.Wait() }

// add starts fetching a partition from offset, or from where `offset`
// says when it is sarama.OffsetOldest or OffsetNewest.
// Where that cannot be asked yet (a leader being elected), it is asked
// again after the back-off, as sarama's consumer does, rather than leave
// the partition unread until the next rebalance.
func (f *fetcher) add(topic string, partition int32, offset int64) *feed {
	fd := &feed{topic: topic, partition: partition, blocks: make(chan fetched, 1), next: offset, size: f.conf.partitionBytes}
	f.mu.Lock()
	f.feeds++
	f.mu.Unlock()
	if offset >= 0 {
		f.home(fd)
		return fd
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			resolved, err := f.client.GetOffset(topic, partition, offset)
			if err == nil {
				f.mu.Lock()
				fd.next = resolved
				f.mu.Unlock()
				f.home(fd)
				return
			}
			f.log.Warnf("topic %q partition %d: asking where `offset` (%s) starts: %v (retrying in %s)", topic, partition, offsetName(offset), err, f.conf.backoff)
			if !sleepCtx(f.ctx, f.conf.backoff) || f.isRemoved(fd) {
				return
			}
		}
	}()
	return fd
}

func offsetName(offset int64) string {
	if offset == sarama.OffsetNewest {
		return "newest"
	}
	return "oldest"
}

// remove stops fetching fd; a block fetched meanwhile is dropped.
func (f *fetcher) remove(fd *feed) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fd.removed = true
	f.feeds--
	f.detachLocked(fd)
}

// taken is the claim's word that it took a block: fd has room again.
func (f *fetcher) taken(fd *feed) {
	f.mu.Lock()
	b := fd.owner
	f.mu.Unlock()
	if b != nil {
		b.poke()
	}
}

// home attaches fd to its leader's fetch, now or, when the leader is not
// known, after a back-off, as often as it takes.
func (f *fetcher) home(fd *feed) {
	leader, err := f.client.Leader(fd.topic, fd.partition)
	if err == nil {
		f.attach(fd, leader)
		return
	}
	f.log.Debugf("finding the leader of topic %q partition %d: %v (retrying in %s)", fd.topic, fd.partition, err, f.conf.backoff)
	f.rehome(fd)
}

// rehome looks for fd's leader again after the back-off, with fresh
// metadata.
func (f *fetcher) rehome(fd *feed) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for sleepCtx(f.ctx, f.conf.backoff) {
			if f.isRemoved(fd) {
				return
			}
			if err := f.client.RefreshMetadata(fd.topic); err != nil {
				f.log.Debugf("refreshing the metadata of topic %q: %v", fd.topic, err)
			}
			leader, err := f.client.Leader(fd.topic, fd.partition)
			if err == nil {
				f.attach(fd, leader)
				return
			}
			f.log.Debugf("finding the leader of topic %q partition %d: %v (retrying in %s)", fd.topic, fd.partition, err, f.conf.backoff)
		}
	}()
}

func (f *fetcher) isRemoved(fd *feed) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fd.removed
}

func (f *fetcher) attach(fd *feed, leader *sarama.Broker) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fd.removed {
		return
	}
	b := f.brokers[leader.ID()]
	if b == nil {
		b = &brokerFetcher{f: f, wake: make(chan struct{}, 1)}
		f.brokers[leader.ID()] = b
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			b.run()
		}()
	}
	if b.broker == nil || b.broker.Addr() != leader.Addr() {
		if old := b.broker; old != nil {
			// The leader moved. Close waits for a fetch in flight on it
			// (sarama holds the connection's lock for the round trip), so
			// not under f.mu; that fetch's answer is dropped (owner
			// checks) or fails, and is made again.
			go func() { _ = old.Close() }()
		}
		b.broker = f.connect(leader.Addr())
	}
	fd.owner = b
	b.feeds = append(b.feeds, fd)
	b.poke()
}

// connect opens a connection of the fetcher's own to a broker (at once;
// it is established in the background, and the first fetch reports its
// failure). Sharing the client's would put every other request to that
// broker (heartbeats, commits, the lag's ListOffsets) behind a fetch the
// broker holds for up to max_wait_time: it serves a connection's requests
// one at a time. The Java client keeps its coordinator connection apart
// for the same reason.
func (f *fetcher) connect(addr string) *sarama.Broker {
	conn := sarama.NewBroker(addr)
	if err := conn.Open(f.client.Config()); err != nil && !errors.Is(err, sarama.ErrAlreadyConnected) {
		f.log.Debugf("connecting to broker %s for fetching: %v", addr, err)
	}
	return conn
}

func (f *fetcher) detachLocked(fd *feed) {
	b := fd.owner
	if b == nil {
		return
	}
	fd.owner = nil
	for i, other := range b.feeds {
		if other == fd {
			b.feeds = append(b.feeds[:i], b.feeds[i+1:]...)
			break
		}
	}
}

// brokerFetcher is the fetch loop of one broker.
type brokerFetcher struct {
	f    *fetcher
	wake chan struct{}
	// Under fetcher.mu. broker is the fetcher's own connection.
	broker *sarama.Broker
	feeds  []*feed
}

func (b *brokerFetcher) poke() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *brokerFetcher) run() {
	f := b.f
	defer b.closeConn(nil)
	var (
		asked  []*feed
		blocks []*sarama.FetchResponseBlock
	)
	for {
		broker, req, n := b.request(asked[:0])
		asked = n
		if req == nil {
			select {
			case <-b.wake:
				continue
			case <-f.ctx.Done():
				return
			}
		}
		resp, err := broker.Fetch(req)
		if f.ctx.Err() != nil {
			return
		}
		if err != nil {
			// The connection is gone or broken: find every partition's
			// leader again, as sarama's own consumer does.
			f.log.Warnf("fetching from broker %s: %v (finding the partitions' leaders again in %s)", broker.Addr(), err, f.conf.backoff)
			b.closeConn(broker)
			b.evictAll()
			continue
		}
		blocks = blocks[:0]
		filled := 0
		for _, fd := range asked {
			block := resp.GetBlock(fd.topic, fd.partition)
			if block != nil && len(block.RecordsSet) > 0 {
				filled++
			}
			blocks = append(blocks, block)
		}
		for i, fd := range asked {
			b.handle(broker, fd, blocks[i], filled >= ownAt)
		}
		clear(blocks)
	}
}

// closeConn closes the connection, if it is still conn (nil: any); the
// next attach opens another.
func (b *brokerFetcher) closeConn(conn *sarama.Broker) {
	b.f.mu.Lock()
	defer b.f.mu.Unlock()
	if b.broker != nil && (conn == nil || b.broker == conn) {
		_ = b.broker.Close()
		b.broker = nil
	}
}

// request builds the next fetch, for the feeds with room; nil when none
// has. asked returns those feeds.
func (b *brokerFetcher) request(asked []*feed) (*sarama.Broker, *sarama.FetchRequest, []*feed) {
	f := b.f
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fd := range b.feeds {
		if len(fd.blocks) == 0 {
			asked = append(asked, fd)
		}
	}
	if len(asked) == 0 || b.broker == nil {
		return b.broker, nil, asked[:0]
	}
	wait := f.conf.maxWait
	if len(asked) < len(b.feeds) {
		wait = min(wait, busyPollWait)
	}
	req := &sarama.FetchRequest{
		Version:     f.conf.version,
		MinBytes:    f.conf.minBytes,
		MaxWaitTime: int32(wait / time.Millisecond),
		MaxBytes:    min(f.conf.maxBytes, max(responseBytes, f.conf.partitionBytes)),
		Isolation:   f.conf.isolation,
		// No fetch session (KIP-227): every request names its partitions.
		SessionID:    0,
		SessionEpoch: -1,
		RackID:       f.conf.rackID,
	}
	share := max(minPartitionBytes, heldBytes/(2*max(1, f.feeds, f.expected)))
	for _, fd := range asked {
		size := fd.size
		if size == f.conf.partitionBytes {
			size = min(size, int32(share)) // not grown for a large batch
		}
		req.AddBlock(fd.topic, fd.partition, fd.next, size, -1)
	}
	return b.broker, req, asked
}

// evictAll sends every feed of the broker to find its leader again.
func (b *brokerFetcher) evictAll() {
	f := b.f
	f.mu.Lock()
	feeds := append([]*feed(nil), b.feeds...)
	for _, fd := range feeds {
		f.detachLocked(fd)
	}
	f.mu.Unlock()
	for _, fd := range feeds {
		f.rehome(fd)
	}
}

// ownAt partitions with records in one answer have their blocks copied
// out of it (ownBytes). An answer for one partition goes with its block;
// one for two or more would stay whole until the last of them is
// converted: at 64 partitions, with 8 here, a heap profile had 4 MB of
// answers still held, and hardly a copy.
const ownAt = 2

// handle takes a partition's answer: the block goes to its claim, or the
// partition's error is acted on. shared: the records of ownAt partitions
// or more came in the same answer.
func (b *brokerFetcher) handle(broker *sarama.Broker, fd *feed, block *sarama.FetchResponseBlock, shared bool) {
	f := b.f
	if block == nil {
		return // not in the answer: asked again next time
	}
	switch block.Err {
	case sarama.ErrNoError:
		if shared {
			ownBytes(block)
		}
		b.deliver(fd, block)
	case sarama.ErrOffsetOutOfRange:
		b.resetOffset(fd, block)
	case sarama.ErrNotLeaderForPartition, sarama.ErrLeaderNotAvailable, sarama.ErrUnknownTopicOrPartition,
		sarama.ErrReplicaNotAvailable, sarama.ErrFencedLeaderEpoch, sarama.ErrUnknownLeaderEpoch,
		sarama.ErrOffsetNotAvailable, sarama.ErrKafkaStorageError:
		f.log.Debugf("fetching topic %q partition %d: %v (finding its leader again)", fd.topic, fd.partition, block.Err)
		b.move(fd)
	default:
		f.log.Errorf("fetching topic %q partition %d at offset %d from broker %s: %v (retrying in %s)",
			fd.topic, fd.partition, b.offset(fd), broker.Addr(), block.Err, f.conf.backoff)
		b.move(fd)
	}
}

func (b *brokerFetcher) offset(fd *feed) int64 {
	b.f.mu.Lock()
	defer b.f.mu.Unlock()
	return fd.next
}

// move detaches fd from this broker and finds its leader again.
func (b *brokerFetcher) move(fd *feed) {
	f := b.f
	f.mu.Lock()
	ours := fd.owner == b && !fd.removed
	if ours {
		f.detachLocked(fd)
	}
	f.mu.Unlock()
	if ours {
		f.rehome(fd)
	}
}

func (b *brokerFetcher) deliver(fd *feed, block *sarama.FetchResponseBlock) {
	f := b.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if fd.removed || fd.owner != b {
		return
	}
	from := fd.next
	next, records, partial := blockExtent(block, from)
	switch {
	case records:
		// Only this loop sends, and only for a feed that had room; were
		// it full, the offsets would be asked for again, not skipped.
		select {
		case fd.blocks <- fetched{block: block, from: from}:
			fd.size = f.conf.partitionBytes
			fd.next = next
		default:
		}
	case next > from:
		fd.next = next // control records, or a compacted stretch
	case !partial && len(block.RecordsSet) == 0 && from < block.HighWaterMarkOffset:
		// Below the high watermark yet nothing. That happens now and then
		// with records there (stepping past it lost one in the e2e
		// backlog test), and for good at a batch the log cleaner emptied,
		// which sarama's decoder leaves out without saying where it ends.
		// The offset is asked for again; if it keeps coming back empty,
		// the stall is said once.
		if fd.emptyAt != from {
			fd.emptyAt, fd.emptyAnswers = from, 0
		}
		if fd.emptyAnswers++; fd.emptyAnswers == stallAnswers {
			f.log.Warnf("topic %q partition %d: the broker answered offset %d with nothing %d times in a row though the high watermark is %d: the partition does not advance (a batch emptied by compaction? sarama does not tell where such a batch ends)",
				fd.topic, fd.partition, from, stallAnswers, block.HighWaterMarkOffset)
		}
	case partial:
		// The next batch is larger than the bytes asked for.
		if f.conf.partitionMax > 0 && fd.size >= f.conf.partitionMax {
			f.log.Errorf("topic %q partition %d offset %d: the record batch there is larger than sarama's Consumer.Fetch.Max allows; skipping it", fd.topic, fd.partition, fd.next)
			fd.next++
			return
		}
		fd.size = max(fd.size, 1) * 2
		if fd.size < 0 || (f.conf.partitionMax > 0 && fd.size > f.conf.partitionMax) {
			fd.size = f.conf.partitionMax
		}
		if fd.size <= 0 {
			fd.size = 1<<31 - 1
		}
	}
}

// resetOffset moves a partition whose offset the broker no longer has (or
// not yet) to where `offset` says: the oldest or the newest there is.
func (b *brokerFetcher) resetOffset(fd *feed, block *sarama.FetchResponseBlock) {
	f := b.f
	to, err := f.client.GetOffset(fd.topic, fd.partition, f.conf.initial)
	if err != nil {
		f.log.Warnf("topic %q partition %d: offset out of range, and asking where it now starts failed: %v", fd.topic, fd.partition, err)
		b.move(fd)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if fd.removed || fd.owner != b {
		return
	}
	f.log.Warnf("topic %q partition %d: offset %d is out of range (the log starts at %d, ends at %d); consuming from offset %d, as `offset` says",
		fd.topic, fd.partition, fd.next, block.LogStartOffset, block.HighWaterMarkOffset, to)
	fd.next = to
}

// ownBytes copies the keys, values and headers of a block's records into
// one buffer of the block's own. Records point into the bytes of the
// answer they came in, so an answer for many partitions stayed whole
// while any of them still held a block from it: at 64 partitions those
// answers were a third of the input's heap. The copy is made only for
// answers of ownAt partitions or more, so never at one partition:
// BenchmarkOwnBytes takes about a fifth of BenchmarkFetchedBlock's time a
// message (50 against 260 ns), and a smaller heap is collected more often.
func ownBytes(block *sarama.FetchResponseBlock) {
	n := 0
	for _, rs := range block.RecordsSet {
		switch {
		case rs.RecordBatch != nil:
			for _, rec := range rs.RecordBatch.Records {
				n += len(rec.Key) + len(rec.Value)
				for _, h := range rec.Headers {
					n += len(h.Key) + len(h.Value)
				}
			}
		case rs.MsgSet != nil:
			eachMessageSetBytes(rs.MsgSet, func(b *[]byte) { n += len(*b) })
		}
	}
	buf := ownedBytes(make([]byte, 0, n))
	for _, rs := range block.RecordsSet {
		switch {
		case rs.RecordBatch != nil:
			for _, rec := range rs.RecordBatch.Records {
				rec.Key = buf.keep(rec.Key)
				rec.Value = buf.keep(rec.Value)
				for _, h := range rec.Headers {
					h.Key = buf.keep(h.Key)
					h.Value = buf.keep(h.Value)
				}
			}
		case rs.MsgSet != nil:
			eachMessageSetBytes(rs.MsgSet, func(b *[]byte) { *b = buf.keep(*b) })
		}
	}
}

// ownedBytes is the buffer ownBytes copies into, sized beforehand.
type ownedBytes []byte

// keep copies b to the end of the buffer and returns the copy, nil for
// nil, with no room after it for an append to write into.
func (o *ownedBytes) keep(b []byte) []byte {
	if b == nil {
		return nil
	}
	start := len(*o)
	*o = append(*o, b...)
	return (*o)[start:len(*o):len(*o)]
}

// eachMessageSetBytes hands fn every key and value of a message set
// (before Kafka 0.11), which point into the answer. A compressed message
// keeps its compressed value beside the set it decompressed to.
func eachMessageSetBytes(set *sarama.MessageSet, fn func(*[]byte)) {
	for _, outer := range set.Messages {
		if outer == nil || outer.Msg == nil {
			continue
		}
		fn(&outer.Msg.Key)
		fn(&outer.Msg.Value)
		if outer.Msg.Set == nil {
			continue
		}
		for _, inner := range outer.Msg.Set.Messages {
			if inner != nil && inner.Msg != nil {
				fn(&inner.Msg.Key)
				fn(&inner.Msg.Value)
			}
		}
	}
}

// blockExtent reads a block's batches for the offset after them, whether
// they hold a record at from or later, and whether a batch was cut short
// (more bytes are needed to read it).
func blockExtent(block *sarama.FetchResponseBlock, from int64) (next int64, records, partial bool) {
	next = from
	partial = block.Partial
	for _, rs := range block.RecordsSet {
		switch {
		case rs.RecordBatch != nil:
			batch := rs.RecordBatch
			if batch.PartialTrailingRecord {
				partial = true
				continue
			}
			next = max(next, batch.LastOffset()+1)
			if !batch.Control && len(batch.Records) > 0 && batch.FirstOffset+batch.Records[len(batch.Records)-1].OffsetDelta >= from {
				records = true
			}
		case rs.MsgSet != nil:
			if rs.MsgSet.PartialTrailingMessage {
				partial = true
			}
			eachLegacyMessage(rs.MsgSet, func(offset int64, _, _ *sarama.MessageBlock) {
				next = max(next, offset+1)
				if offset >= from {
					records = true
				}
			})
		}
	}
	return next, records, partial
}

// eachLegacyMessage walks a message set (message format 0 and 1, before
// Kafka 0.11), compressed sets unwrapped, with each message's offset.
func eachLegacyMessage(set *sarama.MessageSet, fn func(offset int64, outer, msg *sarama.MessageBlock)) {
	for _, outer := range set.Messages {
		if outer == nil || outer.Msg == nil {
			continue
		}
		inner := outer.Messages()
		for _, msg := range inner {
			if msg == nil || msg.Msg == nil {
				continue
			}
			offset := msg.Offset
			if msg.Msg.Version >= 1 && outer.Msg.Set != nil {
				// Inner offsets are relative: the wrapper has the last one's.
				offset += outer.Offset - inner[len(inner)-1].Offset
			}
			fn(offset, outer, msg)
		}
	}
}

// eachMessage hands fn every message of a fetched block from b.from on,
// in msg (reused: fn must not keep it); fn returning false stops. A
// record's timestamps are set only with times: working them out is a
// few percent of the per-message path, and only timestamp_source and
// dead letters read them.
func eachMessage(b fetched, msg *sarama.ConsumerMessage, times bool, fn func(msg *sarama.ConsumerMessage) bool) {
	for _, rs := range b.block.RecordsSet {
		switch {
		case rs.RecordBatch != nil:
			batch := rs.RecordBatch
			if batch.Control || batch.PartialTrailingRecord {
				continue
			}
			for _, rec := range batch.Records {
				offset := batch.FirstOffset + rec.OffsetDelta
				if offset < b.from {
					continue
				}
				msg.Offset = offset
				msg.Key, msg.Value, msg.Headers = rec.Key, rec.Value, rec.Headers
				if times {
					// As sarama's partition consumer sets them: a
					// record batch has no block timestamp.
					msg.Timestamp = batch.FirstTimestamp.Add(rec.TimestampDelta)
					if batch.LogAppendTime {
						msg.Timestamp = batch.MaxTimestamp
					}
					msg.BlockTimestamp = time.Time{}
				}
				if !fn(msg) {
					return
				}
			}
		case rs.MsgSet != nil:
			stop := false
			eachLegacyMessage(rs.MsgSet, func(offset int64, outer, m *sarama.MessageBlock) {
				if stop || offset < b.from {
					return
				}
				msg.Offset = offset
				msg.Key, msg.Value, msg.Headers = m.Msg.Key, m.Msg.Value, nil
				msg.Timestamp = m.Msg.Timestamp
				if m.Msg.Version >= 1 && m.Msg.LogAppendTime {
					msg.Timestamp = outer.Msg.Timestamp
				}
				msg.BlockTimestamp = outer.Msg.Timestamp
				stop = !fn(msg)
			})
			if stop {
				return
			}
		}
	}
}
