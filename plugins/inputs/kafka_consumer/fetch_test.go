package kafka_consumer //nolint:revive,stylecheck // named after the Telegraf plugin it replaces

import (
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// recordBatch is a decoded batch of values from offset first on, one
// offset apart.
func recordBatch(first int64, values ...string) *sarama.Records {
	b := &sarama.RecordBatch{FirstOffset: first, FirstTimestamp: time.Unix(1700000000, 0), LastOffsetDelta: int32(len(values) - 1)}
	for i, v := range values {
		b.Records = append(b.Records, &sarama.Record{OffsetDelta: int64(i), TimestampDelta: time.Duration(i) * time.Millisecond, Value: []byte(v)})
	}
	return &sarama.Records{RecordBatch: b}
}

func offsetsOf(b fetched) (offsets []int64, values []string) {
	var msg sarama.ConsumerMessage
	eachMessage(b, &msg, true, func(m *sarama.ConsumerMessage) bool {
		offsets = append(offsets, m.Offset)
		values = append(values, string(m.Value))
		return true
	})
	return offsets, values
}

func TestBlockWalk(t *testing.T) {
	control := recordBatch(13, "commit marker")
	control.RecordBatch.Control = true
	partial := &sarama.Records{RecordBatch: &sarama.RecordBatch{FirstOffset: 20, PartialTrailingRecord: true}}
	// A compacted batch: offsets 30..39, only 31 and 38 left.
	compacted := &sarama.Records{RecordBatch: &sarama.RecordBatch{FirstOffset: 30, LastOffsetDelta: 9, Records: []*sarama.Record{
		{OffsetDelta: 1, Value: []byte("a")}, {OffsetDelta: 8, Value: []byte("b")},
	}}}
	tests := []struct {
		name        string
		sets        []*sarama.Records
		from        int64
		wantNext    int64
		wantRecords bool
		wantPartial bool
		wantOffsets []int64
	}{
		{name: "one batch", sets: []*sarama.Records{recordBatch(10, "x", "y", "z")}, from: 10, wantNext: 13, wantRecords: true, wantOffsets: []int64{10, 11, 12}},
		{name: "batch starts before the offset asked", sets: []*sarama.Records{recordBatch(10, "x", "y", "z")}, from: 12, wantNext: 13, wantRecords: true, wantOffsets: []int64{12}},
		{name: "only records already seen", sets: []*sarama.Records{recordBatch(10, "x", "y")}, from: 12, wantNext: 12},
		{name: "control batch: skipped, offset moves past it", sets: []*sarama.Records{recordBatch(10, "x", "y", "z"), control}, from: 10, wantNext: 14, wantRecords: true, wantOffsets: []int64{10, 11, 12}},
		{name: "control batch alone", sets: []*sarama.Records{control}, from: 13, wantNext: 14},
		{name: "partial trailing batch after whole ones", sets: []*sarama.Records{recordBatch(18, "x", "y"), partial}, from: 18, wantNext: 20, wantRecords: true, wantPartial: true, wantOffsets: []int64{18, 19}},
		{name: "nothing but a partial batch", sets: []*sarama.Records{partial}, from: 20, wantNext: 20, wantPartial: true},
		{name: "compacted gaps", sets: []*sarama.Records{compacted}, from: 32, wantNext: 40, wantRecords: true, wantOffsets: []int64{38}},
		{name: "empty", from: 5, wantNext: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			block := &sarama.FetchResponseBlock{RecordsSet: tt.sets}
			next, records, partial := blockExtent(block, tt.from)
			if next != tt.wantNext || records != tt.wantRecords || partial != tt.wantPartial {
				t.Errorf("blockExtent = next %d, records %v, partial %v; want %d, %v, %v", next, records, partial, tt.wantNext, tt.wantRecords, tt.wantPartial)
			}
			offsets, _ := offsetsOf(fetched{block: block, from: tt.from})
			if fmt.Sprint(offsets) != fmt.Sprint(tt.wantOffsets) && len(offsets)+len(tt.wantOffsets) > 0 {
				t.Errorf("offsets %v, want %v", offsets, tt.wantOffsets)
			}
		})
	}
}

// A record's timestamp is the batch's first plus its delta, or the
// batch's max when the broker set log-append time; a record batch has no
// block timestamp (as sarama's consumer reports it, for timestamp_source).
func TestBlockWalkTimestamps(t *testing.T) {
	set := recordBatch(0, "a", "b")
	block := &sarama.FetchResponseBlock{RecordsSet: []*sarama.Records{set}}
	var got []time.Time
	var msg sarama.ConsumerMessage
	eachMessage(fetched{block: block}, &msg, true, func(m *sarama.ConsumerMessage) bool {
		got = append(got, m.Timestamp)
		if !m.BlockTimestamp.IsZero() {
			t.Errorf("block timestamp %v", m.BlockTimestamp)
		}
		return true
	})
	first := set.RecordBatch.FirstTimestamp
	if len(got) != 2 || !got[0].Equal(first) || !got[1].Equal(first.Add(time.Millisecond)) {
		t.Errorf("create times %v", got)
	}
	set.RecordBatch.LogAppendTime = true
	set.RecordBatch.MaxTimestamp = first.Add(time.Hour)
	eachMessage(fetched{block: block}, &msg, true, func(m *sarama.ConsumerMessage) bool {
		if !m.Timestamp.Equal(first.Add(time.Hour)) {
			t.Errorf("log-append time %v", m.Timestamp)
		}
		return true
	})
}

// Before Kafka 0.11: message sets, a compressed wrapper holding relative
// offsets (format 1) whose own offset is its last message's.
func TestBlockWalkLegacyMessageSet(t *testing.T) {
	inner := &sarama.MessageSet{Messages: []*sarama.MessageBlock{
		{Offset: 0, Msg: &sarama.Message{Version: 1, Value: []byte("p")}},
		{Offset: 1, Msg: &sarama.Message{Version: 1, Value: []byte("q")}},
		{Offset: 2, Msg: &sarama.Message{Version: 1, Value: []byte("r")}},
	}}
	set := &sarama.MessageSet{Messages: []*sarama.MessageBlock{
		{Offset: 6, Msg: &sarama.Message{Version: 0, Value: []byte("plain")}},
		{Offset: 9, Msg: &sarama.Message{Version: 1, Codec: sarama.CompressionGZIP, Set: inner}},
	}}
	block := &sarama.FetchResponseBlock{RecordsSet: []*sarama.Records{{MsgSet: set}}}
	next, records, _ := blockExtent(block, 8)
	if next != 10 || !records {
		t.Errorf("blockExtent = %d, %v; want 10, true", next, records)
	}
	offsets, values := offsetsOf(fetched{block: block, from: 8})
	if fmt.Sprint(offsets) != "[8 9]" || fmt.Sprint(values) != "[q r]" {
		t.Errorf("offsets %v values %v", offsets, values)
	}
}

func TestFetchVersion(t *testing.T) {
	for _, tt := range []struct {
		kafka string
		want  int16
		ok    bool
	}{{"0.10.2.0", 0, false}, {"0.11.0.0", 5, true}, {"2.1.0", 10, true}, {"3.9.0", 12, true}} {
		v, err := sarama.ParseKafkaVersion(tt.kafka)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := fetchVersion(v); got != tt.want || ok != tt.ok {
			t.Errorf("fetchVersion(%s) = %d, %v; want %d, %v", tt.kafka, got, ok, tt.want, tt.ok)
		}
	}
}

// BenchmarkFetchedBlock is the input's per-burst path without Kafka: a
// fetched block of guide messages walked and converted into the chunk
// buffer, which is emptied as the claim's writes would empty it. A
// message is one op.
func BenchmarkFetchedBlock(b *testing.B) {
	k, err := newFromText(&testing.T{}, "[[inputs.kafka_consumer]]\nbrokers = [\"127.0.0.1:9092\"]\ntopics = [\"oceanic\"]\ndata_format = \"json\"\n")
	if err != nil {
		b.Fatal(err)
	}
	const perBlock = 10000 // about a default fetch (1 MB) of guide messages
	values := make([]string, perBlock)
	for i := range values {
		values[i] = fmt.Sprintf(`{"pressure":%.1f,"temperature":%.1f,"visibility":%.1f}`, float64(i%100)/10, float64(i%400)/10, float64(i%900)/10)
	}
	block := &sarama.FetchResponseBlock{RecordsSet: []*sarama.Records{recordBatch(0, values...)}}
	c := newClaimConverter(k)
	msg := &sarama.ConsumerMessage{Topic: "oceanic"}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		eachMessage(fetched{block: block}, msg, false, func(m *sarama.ConsumerMessage) bool {
			if err := c.append(m); err != nil {
				b.Fatal(err)
			}
			if len(c.buf) >= flushBytes {
				c.reset()
			}
			done++
			return done < b.N
		})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// deliver moves a partition's next offset only past what it hands over
// or what holds no record; an answer with no batch at all below the high
// watermark is asked for again (stepping past one lost a record in the
// e2e backlog test).
func TestDeliverMovesTheOffset(t *testing.T) {
	partial := &sarama.Records{RecordBatch: &sarama.RecordBatch{FirstOffset: 5, PartialTrailingRecord: true}}
	tests := []struct {
		name     string
		block    *sarama.FetchResponseBlock
		full     bool // the feed's slot already holds a block
		wantNext int64
		wantSent bool
		wantSize int32
	}{
		{name: "records", block: &sarama.FetchResponseBlock{HighWaterMarkOffset: 8, RecordsSet: []*sarama.Records{recordBatch(5, "a", "b", "c")}}, wantNext: 8, wantSent: true, wantSize: 1000},
		{name: "records, slot full: asked again", block: &sarama.FetchResponseBlock{HighWaterMarkOffset: 8, RecordsSet: []*sarama.Records{recordBatch(5, "a")}}, full: true, wantNext: 5, wantSize: 1000},
		{name: "caught up", block: &sarama.FetchResponseBlock{HighWaterMarkOffset: 5}, wantNext: 5, wantSize: 1000},
		{name: "nothing below the high watermark: asked again", block: &sarama.FetchResponseBlock{HighWaterMarkOffset: 9}, wantNext: 5, wantSize: 1000},
		{name: "a batch larger than asked", block: &sarama.FetchResponseBlock{HighWaterMarkOffset: 9, RecordsSet: []*sarama.Records{partial}}, wantNext: 5, wantSize: 2000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFetcher(t.Context(), New().Log, nil, fetchConfig{partitionBytes: 1000})
			b := &brokerFetcher{f: f, wake: make(chan struct{}, 1)}
			fd := &feed{blocks: make(chan fetched, 1), next: 5, size: 1000, owner: b}
			if tt.full {
				fd.blocks <- fetched{}
			}
			b.deliver(fd, tt.block)
			sent := !tt.full && len(fd.blocks) == 1
			if fd.next != tt.wantNext || sent != tt.wantSent || fd.size != tt.wantSize {
				t.Errorf("next %d, sent %v, size %d; want %d, %v, %d", fd.next, sent, fd.size, tt.wantNext, tt.wantSent, tt.wantSize)
			}
		})
	}
}

// eachRecordBytes hands fn every byte slice of a block's records that
// points into the answer: keys, values, header keys and values.
func eachRecordBytes(block *sarama.FetchResponseBlock, fn func(*[]byte)) {
	for _, rs := range block.RecordsSet {
		switch {
		case rs.RecordBatch != nil:
			for _, rec := range rs.RecordBatch.Records {
				fn(&rec.Key)
				fn(&rec.Value)
				for _, h := range rec.Headers {
					fn(&h.Key)
					fn(&h.Value)
				}
			}
		case rs.MsgSet != nil:
			eachMessageSetBytes(rs.MsgSet, fn)
		}
	}
}

// A block copied out of its answer reads the same, and no longer
// shares a byte with the answer; a nil key stays nil, an empty value
// empty.
func TestOwnBytes(t *testing.T) {
	answer := []byte("k1v1hkhvv2v3legacy")
	rec := func(key, value []byte, headers ...*sarama.RecordHeader) *sarama.Record {
		return &sarama.Record{Key: key, Value: value, Headers: headers}
	}
	batch := &sarama.RecordBatch{Records: []*sarama.Record{
		rec(answer[0:2], answer[2:4], &sarama.RecordHeader{Key: answer[4:6], Value: answer[6:8]}),
		rec(nil, answer[8:10]),
		rec(nil, answer[10:10]),
		rec(nil, answer[10:12]),
	}}
	inner := &sarama.MessageBlock{Offset: 0, Msg: &sarama.Message{Value: answer[12:18]}}
	compressed := &sarama.MessageBlock{Offset: 1, Msg: &sarama.Message{Value: answer[12:14], Set: &sarama.MessageSet{Messages: []*sarama.MessageBlock{inner}}}}
	block := &sarama.FetchResponseBlock{RecordsSet: []*sarama.Records{
		{RecordBatch: batch},
		{MsgSet: &sarama.MessageSet{Messages: []*sarama.MessageBlock{compressed}}},
	}}
	var before []string
	eachRecordBytes(block, func(b *[]byte) { before = append(before, fmt.Sprintf("%q", *b)) })

	ownBytes(block)
	for i := range answer {
		answer[i] = '#'
	}
	var after []string
	eachRecordBytes(block, func(b *[]byte) { after = append(after, fmt.Sprintf("%q", *b)) })
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("after the copy %v, want %v", after, before)
	}
	if batch.Records[1].Key != nil {
		t.Errorf("a nil key became %q", batch.Records[1].Key)
	}
	if v := batch.Records[2].Value; v == nil || len(v) != 0 {
		t.Errorf("an empty value became %#v", v)
	}
	if v := batch.Records[0].Value; cap(v) != len(v) {
		t.Errorf("a copied value has room after it (cap %d, len %d): an append would write into the next", cap(v), len(v))
	}
}

// BenchmarkOwnBytes is the copy of a block out of an answer for many
// partitions (16 KB of guide messages, as at 64 partitions). A message is
// one op.
func BenchmarkOwnBytes(b *testing.B) {
	const perBlock = 250
	values := make([]string, perBlock)
	for i := range values {
		values[i] = fmt.Sprintf(`{"pressure": %.1f, "temperature": %.1f, "visibility": %.1f}`, float64(i%100)/10, float64(i%400)/10, float64(i%900)/10)
	}
	set := recordBatch(0, values...)
	block := &sarama.FetchResponseBlock{RecordsSet: []*sarama.Records{set}}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += perBlock {
		ownBytes(block)
	}
}
