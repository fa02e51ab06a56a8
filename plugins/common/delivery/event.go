package delivery

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind is what an Event says.
type Kind uint8

const (
	// Ack: every line before marker Seq is settled in CnosDB (stored, or
	// rejected for its content and logged).
	Ack Kind = iota + 1
	// Lost: marker Seq arrived, but fewer data lines came before it than
	// the input wrote (Expected, Got): Telegraf dropped some.
	Lost
	// Alive: the output runs; Seq is the last marker it read from this
	// input, Busy that it holds lines not yet settled (CnosDB slow or
	// down), so silence about later markers is no sign of loss.
	Alive
	// Received: marker Seq has been read, so the lines before it have
	// left Telegraf. The input paces itself by what is still inside.
	Received
)

// Event is one line of the socket protocol, from output to input.
type Event struct {
	Kind          Kind
	Seq           uint64
	Expected, Got uint64 // Lost only
	Busy          bool   // Alive only
}

// AppendEvent appends e as one protocol line.
func AppendEvent(dst []byte, e Event) []byte {
	switch e.Kind {
	case Ack:
		dst = append(dst, "ack "...)
		dst = strconv.AppendUint(dst, e.Seq, 10)
	case Lost:
		dst = append(dst, "lost "...)
		dst = strconv.AppendUint(dst, e.Seq, 10)
		dst = append(dst, ' ')
		dst = strconv.AppendUint(dst, e.Expected, 10)
		dst = append(dst, ' ')
		dst = strconv.AppendUint(dst, e.Got, 10)
	case Received:
		dst = append(dst, "recv "...)
		dst = strconv.AppendUint(dst, e.Seq, 10)
	case Alive:
		dst = append(dst, "alive "...)
		dst = strconv.AppendUint(dst, e.Seq, 10)
		if e.Busy {
			dst = append(dst, " 1"...)
		} else {
			dst = append(dst, " 0"...)
		}
	}
	return append(dst, '\n')
}

// ParseEvent reads one protocol line (without its newline).
func ParseEvent(line string) (Event, error) {
	words := strings.Fields(line)
	nums := make([]uint64, 0, 3)
	for _, w := range words[min(1, len(words)):] {
		n, err := strconv.ParseUint(w, 10, 64)
		if err != nil {
			return Event{}, fmt.Errorf("event %q: %w", line, err)
		}
		nums = append(nums, n)
	}
	want := map[string]int{"ack": 1, "recv": 1, "lost": 3, "alive": 2}
	if len(words) == 0 || want[words[0]] == 0 || want[words[0]] != len(nums) {
		return Event{}, fmt.Errorf("event %q: not ack SEQ, recv SEQ, lost SEQ EXPECTED GOT or alive SEQ BUSY", line)
	}
	e := Event{Seq: nums[0]}
	switch words[0] {
	case "ack":
		e.Kind = Ack
	case "recv":
		e.Kind = Received
	case "lost":
		e.Kind, e.Expected, e.Got = Lost, nums[1], nums[2]
	case "alive":
		e.Kind, e.Busy = Alive, nums[1] != 0
	}
	return e, nil
}
