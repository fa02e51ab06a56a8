package execd

import (
	"errors"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Reading Telegraf's metrics as they trickle in.
//
// Telegraf before 1.28, and later ones without use_batch_format, write an
// output child one metric per write. A reader waiting on the pipe with the
// runtime's poller is woken by each of them (the kernel wakes a pipe's
// poller at every write into it), reads a line or two and waits again: at
// a few hundred thousand metrics a second that is the larger part of the
// output's CPU, and every one of those wake-ups is paid in Telegraf's
// writes too.
//
// A PacedReader notices the trickle (many small reads in a short time),
// takes the pipe off the poller and sleeps when it is empty: Telegraf goes
// on writing into the 1 MiB pipe, wakes no one, and the next read takes
// what piled up in one system call. Once the pipe stays empty for a
// while it goes back to the poller, which costs nothing while Telegraf
// is idle and one wake-up per write when Telegraf writes whole batches.

const (
	// A read of fewer bytes is small: a metric or two, not a batch.
	smallRead = 16 << 10
	// trickleReads small reads in a row within trickleWindow make the
	// reader sleep instead of waiting on the poller: thousands of
	// wake-ups a second.
	trickleReads  = 256
	trickleWindow = 100 * time.Millisecond
	// minPace is the first sleep on an empty pipe; the runtime's timers
	// wake no sooner than a millisecond apart when nothing else runs.
	minPace = time.Millisecond
	// maxPace bounds how late new data is seen while sleeping: the
	// delivery loop's acknowledgements wait for it.
	maxPace = 8 * time.Millisecond
	// idleBack: empty for this long while sleeping, and the poller takes
	// over again.
	idleBack = 64 * time.Millisecond
)

// PacedReader reads one end of a pipe, with the poller's wake-ups or with
// sleeps, whichever the writer's pace calls for; see NewPacedReader.
type PacedReader struct {
	fd   int // non-blocking, never on the poller itself
	name string
	// polled is a duplicate of fd on the runtime's poller, read while
	// Telegraf writes in batches or is idle; nil while sleeping.
	polled *os.File

	small      int       // small reads in a row, with the poller
	smallSince time.Time // when the first of them was counted

	pace  time.Duration // the next sleep on an empty pipe
	empty time.Duration // slept on an empty pipe since the last data

	sleep func(time.Duration)
	now   func() time.Time
	// keep holds the File whose descriptor fd is, so that it is never
	// closed under us.
	keep *os.File
}

// NewPacedReader returns a PacedReader for f's pipe, or f itself when f is
// not a pipe (a file or a terminal wakes no one). f's descriptor is made
// non-blocking, so only the returned reader may read it after.
func NewPacedReader(f *os.File) io.Reader {
	rc, err := f.SyscallConn()
	if err != nil {
		return f
	}
	fd := -1
	_ = rc.Control(func(d uintptr) {
		fd = int(d)
		_, err = unix.FcntlInt(d, unix.F_GETPIPE_SZ, 0)
	})
	if err != nil || unix.SetNonblock(fd, true) != nil {
		return f
	}
	r := &PacedReader{fd: fd, name: f.Name(), pace: minPace, sleep: time.Sleep, now: time.Now, keep: f}
	if !r.poll() {
		return f
	}
	return r
}

// Paced reports whether the reader sleeps on an empty pipe rather than
// waiting on the poller.
func (r *PacedReader) Paced() bool { return r.polled == nil }

// poll puts a duplicate of the descriptor on the runtime's poller.
func (r *PacedReader) poll() bool {
	d, err := unix.Dup(r.fd)
	if err != nil {
		return false
	}
	unix.CloseOnExec(d)
	r.polled = os.NewFile(uintptr(d), r.name) // non-blocking: on the poller
	r.small = 0
	return true
}

// Read reads what the pipe holds, waiting for some when it is empty. It
// returns io.EOF once the writer has closed its end and the pipe is empty.
func (r *PacedReader) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if r.polled != nil {
		return r.readPolled(b)
	}
	for {
		n, err := unix.Read(r.fd, b)
		switch {
		case err == nil && n > 0:
			r.pace, r.empty = minPace, 0
			return n, nil
		case err == nil:
			return 0, io.EOF
		case errors.Is(err, unix.EINTR):
		case errors.Is(err, unix.EAGAIN):
			if r.empty >= idleBack && r.poll() {
				return r.readPolled(b)
			}
			r.sleep(r.pace)
			r.empty += r.pace
			r.pace = min(2*r.pace, maxPace)
		default:
			return 0, &os.PathError{Op: "read", Path: r.name, Err: err}
		}
	}
}

func (r *PacedReader) readPolled(b []byte) (int, error) {
	n, err := r.polled.Read(b)
	if n >= smallRead || err != nil {
		r.small = 0
		return n, err
	}
	if r.small == 0 {
		r.smallSince = r.now()
	}
	r.small++
	if r.small >= trickleReads {
		if r.now().Sub(r.smallSince) < trickleWindow {
			// Closing the duplicate takes the pipe off the poller.
			r.polled.Close()
			r.polled = nil
			r.pace, r.empty = minPace, 0
		}
		r.small = 0
	}
	return n, nil
}
