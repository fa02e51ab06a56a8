package delivery

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// Measurement names checkpoint markers. It is fixed, not configurable, so
// that an output recognises markers without being told; other outputs
// drop them with namedrop = ["kafka_json_checkpoint"].
const Measurement = "kafka_json_checkpoint"

// Marker is a checkpoint in the input's stream of lines.
type Marker struct {
	// Seq increases by one per marker of one input process.
	Seq uint64
	// Lines is how many data lines the input wrote between its previous
	// marker and this one, so the output can tell when some went missing.
	Lines uint64
	// Socket is the Unix socket the input reads acknowledgements on.
	Socket string
	// Hold says the input can go on without this acknowledgement for a
	// while (the output holds under half its share of the window), so
	// the output may keep the marker in a batch while lines keep coming,
	// until the batch fills, rather than send that batch at the first
	// pause: fewer, larger writes to CnosDB. Without it (as from an input
	// that predates the field) the input may be waiting for it.
	Hold bool
}

// AppendMarker appends m as a line of line protocol without a timestamp
// (Telegraf gives it one). Integers are written as plain integers since
// Telegraf's serializer turns unsigned ones into signed ones anyway.
func AppendMarker(dst []byte, m Marker) []byte {
	dst = append(dst, Measurement...)
	dst = append(dst, " seq="...)
	dst = strconv.AppendUint(dst, m.Seq, 10)
	dst = append(dst, "i,lines="...)
	dst = strconv.AppendUint(dst, m.Lines, 10)
	dst = append(dst, `i,socket="`...)
	for i := 0; i < len(m.Socket); i++ {
		if c := m.Socket[i]; c == '"' || c == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, m.Socket[i])
	}
	if m.Hold {
		return append(dst, "\",hold=true\n"...)
	}
	return append(dst, "\"\n"...)
}

// IsMarker tells markers from data by a line's measurement and fields,
// as found in the line (still escaped). A marker keeps its name unless a
// Telegraf modifier on the [[inputs.execd]] block renamed it: name_prefix
// and name_suffix keep the name inside, name_override leaves only the
// fields, which start as the input wrote them unless a processor
// reordered them.
func IsMarker(measurement, fields []byte) bool {
	return bytes.Contains(measurement, []byte(Measurement)) || bytes.HasPrefix(fields, []byte("seq=")) && bytes.Contains(fields, []byte(",socket=\""))
}

// ParseMarker reads a marker line as Telegraf serialized it: with the
// tags Telegraf added (host, global tags), fields in any order, a
// timestamp, and numbers that processors may have turned into floats.
func ParseMarker(line []byte) (Marker, error) {
	var m Marker
	dec := lineprotocol.NewDecoderWithBytes(bytes.TrimRight(line, "\r\n"))
	if !dec.Next() {
		return m, errors.New("empty line")
	}
	// The name is not checked: a modifier may have renamed it (IsMarker).
	if _, err := dec.Measurement(); err != nil {
		return m, err
	}
	for {
		key, _, err := dec.NextTag()
		if err != nil {
			return m, err
		}
		if key == nil {
			break
		}
	}
	var haveSeq, haveLines, haveSocket bool
	for {
		key, val, err := dec.NextField()
		if err != nil {
			return m, err
		}
		if key == nil {
			break
		}
		switch string(key) {
		case "seq":
			m.Seq, err = count(val)
			haveSeq = err == nil
		case "lines":
			m.Lines, err = count(val)
			haveLines = err == nil
		case "socket":
			if val.Kind() != lineprotocol.String {
				err = fmt.Errorf("socket is a %v, not a string", val.Kind())
				break
			}
			m.Socket = val.StringV()
			haveSocket = m.Socket != ""
		case "hold":
			// Anything but a true bool is read as no: holding is only
			// ever an optimisation.
			m.Hold = val.Kind() == lineprotocol.Bool && val.BoolV()
		}
		if err != nil {
			return m, fmt.Errorf("field %s: %w", key, err)
		}
	}
	if !haveSeq || !haveLines || !haveSocket {
		return m, errors.New("a checkpoint needs the fields seq, lines and socket")
	}
	return m, nil
}

func count(v lineprotocol.Value) (uint64, error) {
	switch v.Kind() {
	case lineprotocol.Int:
		if v.IntV() >= 0 {
			return uint64(v.IntV()), nil
		}
	case lineprotocol.Uint:
		// Above MaxInt64 AppendMarker could not write it back.
		if v.UintV() <= math.MaxInt64 {
			return v.UintV(), nil
		}
	case lineprotocol.Float:
		if f := v.FloatV(); f >= 0 && f < math.MaxInt64 && f == math.Trunc(f) {
			return uint64(f), nil
		}
	}
	return 0, fmt.Errorf("%v is not a count", v)
}
