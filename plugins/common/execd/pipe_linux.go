package execd

import (
	"os"

	"golang.org/x/sys/unix"
)

// pipeBytes is the pipe size asked for: Linux's default limit for an
// unprivileged process (/proc/sys/fs/pipe-max-size).
const pipeBytes = 1 << 20

// GrowPipe asks the kernel for a 1 MiB buffer on f when it is a pipe.
// Telegraf writes a whole batch to an output child at once and reads an
// input child's lines as they come; with the default 64 KiB a batch does
// not fit, and each side wakes the other several times a batch. A pipe
// already larger (an operator's choice) is left as it is. It returns the
// pipe's size, or 0 when f is not a pipe or the size stays as it was.
func GrowPipe(f *os.File) int {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0
	}
	size := 0
	_ = rc.Control(func(fd uintptr) {
		if n, err := unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0); err != nil || n >= pipeBytes {
			return
		}
		if n, err := unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeBytes); err == nil {
			size = n
		}
	})
	return size
}

// Pollable returns a File for f's pipe that the Go runtime waits on with
// its poller, or f itself when f is not a pipe (a file, a terminal). A
// process's stdin and stdout are blocking: a read waiting for Telegraf
// holds a thread in the kernel, and since the runtime lets no P sit in a
// system call for more than 20 µs, it hands the P to another thread and
// keeps its monitor waking every 20 µs, thousands of times a second. On a
// pollable pipe the goroutine parks instead. f's descriptor is made
// non-blocking, so only the returned File may read or write it after.
func Pollable(f *os.File) *os.File {
	rc, err := f.SyscallConn()
	if err != nil {
		return f
	}
	fd, pipe := -1, false
	_ = rc.Control(func(d uintptr) {
		fd = int(d)
		_, err := unix.FcntlInt(d, unix.F_GETPIPE_SZ, 0)
		pipe = err == nil
	})
	if !pipe || unix.SetNonblock(fd, true) != nil {
		return f
	}
	return os.NewFile(uintptr(fd), f.Name())
}
