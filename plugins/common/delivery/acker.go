package delivery

import (
	"context"
	"net"
	"sync/atomic"
	"time"

	"github.com/influxdata/telegraf"
)

const (
	// HeartbeatInterval is how often the output tells each input it is
	// alive. An input waits many of these before it presumes a loss.
	HeartbeatInterval = time.Second
	// forgetAfter drops an input that has sent no marker for this long:
	// it has stopped, or moved to another output.
	forgetAfter = 10 * time.Minute
	// queueSize bounds the events waiting for the socket writer. A full
	// queue drops an event; the input sees the gap and replays, so
	// nothing is lost, only repeated.
	queueSize = 4096
	ioTimeout = time.Second
	// redialDelay keeps an input that is gone from being dialled for
	// every event.
	redialDelay = time.Second
)

// Acker is the output's end of the loop: it sends events to the sockets
// markers name, from one goroutine, so neither reading stdin nor writing
// to CnosDB ever waits for an input.
type Acker struct {
	log  telegraf.Logger
	busy func() bool

	queue   chan outgoing
	dropped atomic.Int64
	done    chan struct{}

	// Owned by the run goroutine.
	inputs map[string]*input
	buf    []byte
}

type outgoing struct {
	socket string
	event  Event
}

// input is one input process, known by its socket.
type input struct {
	conn     net.Conn
	pending  []byte // events not yet written
	lastSeq  uint64 // last marker read from it
	lastAck  uint64 // last marker settled
	lastSeen time.Time
	retryAt  time.Time
	failures int
}

// NewAcker returns an Acker; busy reports whether the output holds lines
// not yet settled. Start it with Run.
func NewAcker(log telegraf.Logger, busy func() bool) *Acker {
	return &Acker{
		log:    log,
		busy:   busy,
		queue:  make(chan outgoing, queueSize),
		done:   make(chan struct{}),
		inputs: map[string]*input{},
	}
}

// Received tells the input that marker m was read. When fewer lines than
// m.Lines came before it, it reports the loss instead, and m must not be
// settled.
func (a *Acker) Received(m Marker, short bool, got uint64) {
	e := Event{Kind: Received, Seq: m.Seq}
	if short {
		e = Event{Kind: Lost, Seq: m.Seq, Expected: m.Lines, Got: got}
	}
	a.send(m.Socket, e)
}

// Settled acknowledges m: every line read before it is settled.
func (a *Acker) Settled(m Marker) {
	a.send(m.Socket, Event{Kind: Ack, Seq: m.Seq})
}

// Dropped is how many events a full queue cost.
func (a *Acker) Dropped() int64 { return a.dropped.Load() }

func (a *Acker) send(socket string, e Event) {
	select {
	case a.queue <- outgoing{socket, e}:
	default:
		if a.dropped.Add(1) == 1 {
			a.log.Warnf("acknowledgements are not going out fast enough: dropping some; the input will replay what they covered")
		}
	}
}

// Run sends events and heartbeats until ctx is done, then sends what is
// queued and closes the connections.
func (a *Acker) Run(ctx context.Context) {
	defer close(a.done)
	tick := time.NewTicker(HeartbeatInterval)
	defer tick.Stop()
	for {
		select {
		case o := <-a.queue:
			a.add(o, time.Now())
			a.drain()
			a.flush(time.Now())
		case now := <-tick.C:
			a.heartbeat(now)
			a.flush(now)
		case <-ctx.Done():
			a.drain()
			a.flush(time.Now())
			for socket, in := range a.inputs {
				if in.conn != nil {
					in.conn.Close()
				}
				delete(a.inputs, socket)
			}
			return
		}
	}
}

// Wait returns once Run has returned.
func (a *Acker) Wait() { <-a.done }

func (a *Acker) drain() {
	for {
		select {
		case o := <-a.queue:
			a.add(o, time.Now())
		default:
			return
		}
	}
}

func (a *Acker) add(o outgoing, now time.Time) {
	in := a.inputs[o.socket]
	if in == nil {
		in = &input{}
		a.inputs[o.socket] = in
	}
	if o.event.Kind == Received || o.event.Kind == Lost {
		// A marker was read: remember it for the heartbeats.
		in.lastSeq = o.event.Seq
		in.lastSeen = now
	}
	if o.event.Kind == Ack {
		in.lastAck = o.event.Seq
	}
	in.pending = AppendEvent(in.pending, o.event)
}

func (a *Acker) heartbeat(now time.Time) {
	busy := a.busy()
	for socket, in := range a.inputs {
		// An input waiting on a busy output sends no markers, but must
		// go on hearing that the output is alive.
		waiting := busy && in.lastAck < in.lastSeq
		if now.Sub(in.lastSeen) > forgetAfter && !waiting {
			if in.conn != nil {
				in.conn.Close()
			}
			delete(a.inputs, socket)
			continue
		}
		// Busy only for an input with lines here: one whose checkpoints
		// are all acknowledged must not take another input's data for
		// progress of its own, or a loss of its own would never show.
		in.pending = AppendEvent(in.pending, Event{Kind: Alive, Seq: in.lastSeq, Busy: waiting})
	}
}

var dialer = net.Dialer{Timeout: ioTimeout}

// flush writes each input's pending events, dialling where needed. An
// input that cannot be reached loses them: it is gone (a restarted
// Telegraf started a new one), or it will see the gap and replay.
func (a *Acker) flush(now time.Time) {
	for socket, in := range a.inputs {
		if len(in.pending) == 0 {
			continue
		}
		if in.conn == nil {
			if now.Before(in.retryAt) {
				in.pending = in.pending[:0]
				continue
			}
			conn, err := dialer.Dial("unix", socket)
			if err != nil {
				in.failures++
				in.retryAt = now.Add(redialDelay)
				in.pending = in.pending[:0]
				if in.failures == 1 {
					a.log.Debugf("cannot reach the input at %s to acknowledge checkpoints (it may have stopped): %v", socket, err)
				}
				continue
			}
			in.conn = conn
			in.failures = 0
		}
		in.conn.SetWriteDeadline(now.Add(ioTimeout))
		if _, err := in.conn.Write(in.pending); err != nil {
			a.log.Debugf("writing acknowledgements to %s: %v", socket, err)
			in.conn.Close()
			in.conn = nil
		}
		in.pending = in.pending[:0]
	}
}

// Tally checks that no data lines went missing in Telegraf between an
// input's markers. It belongs to the stdin reader, which counts lines.
type Tally struct {
	at map[string]uint64 // the reader's line count at each input's last marker
}

// maxInputs bounds the inputs a Tally remembers; forgetting them all only
// skips one check per input.
const maxInputs = 1024

// Marker takes the reader's count of data lines read so far and reports
// how many came since the previous marker of m's input, and whether that
// is fewer than the input wrote. Lines from other inputs count too, so
// the check can miss a loss but never invents one; the first marker seen
// from an input is not checked.
func (t *Tally) Marker(m Marker, lines uint64) (got uint64, short bool) {
	if t.at == nil || len(t.at) >= maxInputs {
		t.at = map[string]uint64{}
	}
	last, known := t.at[m.Socket]
	t.at[m.Socket] = lines
	got = lines - last
	return got, known && got < m.Lines
}
