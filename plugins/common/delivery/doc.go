// Package delivery closes the loop between the Kafka input and the CnosDB
// output, two execd children of stock Telegraf that cannot see each other.
//
// Stock kafka_consumer commits an offset only after Telegraf's outputs
// delivered the message, and keeps at most max_undelivered_messages in
// flight. Split into two processes, that link is gone: Telegraf tells an
// execd input nothing about delivery, and drops the oldest metrics when
// its buffer overflows. This package puts the link back through Telegraf
// itself:
//
//   - the input writes a checkpoint Marker (measurement
//     kafka_json_checkpoint) after each chunk of data lines; Telegraf
//     carries it in order with the data, like any other metric;
//   - the output never stores a marker. Once every line it read before
//     the marker is settled in CnosDB, it sends an Ack over the Unix socket
//     the marker names (so the output needs no configuration), and Alive
//     heartbeats while it holds data. A marker with Hold may wait in its
//     batch until the batch fills or flush_interval passes; any other is
//     written at the first pause, since the input may be waiting for it;
//   - the input commits a partition's offsets only for acknowledged
//     markers, pauses when too much is unacknowledged, and rewinds to the
//     committed offsets when a marker was lost (acks arrive in marker
//     order, so a gap is a loss) or nothing is heard for too long.
//
// The socket protocol is one line per event, output to input:
//
//	recv SEQ                marker SEQ was read
//	ack SEQ                 every line before marker SEQ is in CnosDB
//	lost SEQ EXPECTED GOT   lines before marker SEQ went missing
//	alive LASTSEQ BUSY      heartbeat
package delivery
