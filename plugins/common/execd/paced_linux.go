package execd

import (
	"errors"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Pacing a pipe to or from Telegraf.
//
// Telegraf reads an input child's lines a few kilobytes at a time and
// writes an output child's metrics as they come (one write per metric
// before 1.28). A child waiting on the pipe with the runtime's poller is
// woken by each of those: the kernel wakes a pipe's poller at every write
// into it, and at every read out of a full one. At a few hundred thousand
// lines a second that is tens of thousands of wake-ups, on both sides of
// the pipe, and Telegraf in the middle is what bounds the pipeline.
//
// A paced pipe is non-blocking and kept off the poller. When it would
// block, the child sleeps instead: the other side goes on reading or
// writing into the 1 MiB pipe, wakes no one, and the next attempt moves
// what piled up meanwhile in one system call. Telegraf never waits for
// it: a millisecond is a small part of what a full pipe holds.

// Sleeps of a paced pipe. The runtime's timers wake no sooner than a
// millisecond apart when nothing else runs.
const (
	minPace = time.Millisecond
	// maxReadPace bounds how late an idle reader sees new data: the
	// delivery loop's acknowledgements wait for it.
	maxReadPace = 8 * time.Millisecond
	// maxWritePace stays well under the time Telegraf takes to read a
	// full pipe.
	maxWritePace = 16 * time.Millisecond
)

// PacedPipe is one end of a pipe read or written with sleeps instead of
// the poller's wake-ups; see Paced.
type PacedPipe struct {
	fd   int
	name string
	size int // the pipe's capacity
	// pace is the next sleep when the pipe would block.
	pace  time.Duration
	sleep func(time.Duration)
	// keep holds the File whose descriptor this is, so that it is never
	// closed under us.
	keep *os.File
}

// Paced returns f's pipe as a PacedPipe, or f itself (as the runtime opened
// it) when f is not a pipe: a file or a terminal does not wake anyone.
// f's descriptor is made non-blocking, so only the returned value may read
// or write it after.
func Paced(f *os.File) io.ReadWriter {
	rc, err := f.SyscallConn()
	if err != nil {
		return f
	}
	fd, size := -1, 0
	_ = rc.Control(func(d uintptr) {
		fd = int(d)
		size, err = unix.FcntlInt(d, unix.F_GETPIPE_SZ, 0)
	})
	if err != nil || size <= 0 || unix.SetNonblock(fd, true) != nil {
		return f
	}
	return &PacedPipe{fd: fd, name: f.Name(), size: size, pace: minPace, sleep: time.Sleep, keep: f}
}

// Read reads what the pipe holds; when it is empty it sleeps, longer at
// each empty attempt up to maxReadPace, and tries again. It returns
// io.EOF once the writer has closed its end and the pipe is empty.
func (p *PacedPipe) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		n, err := unix.Read(p.fd, b)
		switch {
		case err == nil && n > 0:
			p.pace = minPace
			return n, nil
		case err == nil:
			return 0, io.EOF
		case errors.Is(err, unix.EINTR):
		case errors.Is(err, unix.EAGAIN):
			p.sleep(p.pace)
			p.pace = min(2*p.pace, maxReadPace)
		default:
			return 0, &os.PathError{Op: "read", Path: p.name, Err: err}
		}
	}
}

// Write writes all of b. When the pipe is full it sleeps and tries again;
// the sleep adapts so that each attempt after one finds about a quarter
// to a half of the pipe free: a longer one when less was taken, a shorter
// one when the pipe had nearly emptied.
func (p *PacedPipe) Write(b []byte) (int, error) {
	written, slept := 0, false
	for {
		n, err := unix.Write(p.fd, b[written:])
		switch {
		case err == nil:
			written += n
			if written == len(b) {
				return written, nil
			}
			// A short write filled the pipe; after a sleep, n is what it
			// drained meanwhile.
			if slept {
				switch {
				case n < p.size/8:
					p.pace = min(2*p.pace, maxWritePace)
				case n > p.size/2:
					p.pace = max(p.pace/2, minPace)
				}
			}
		case errors.Is(err, unix.EINTR):
			continue
		case !errors.Is(err, unix.EAGAIN):
			return written, &os.PathError{Op: "write", Path: p.name, Err: err}
		}
		p.sleep(p.pace)
		slept = true
	}
}
