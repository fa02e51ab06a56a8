package execd

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestGrowPipe(t *testing.T) {
	if b, err := os.ReadFile("/proc/sys/fs/pipe-max-size"); err == nil {
		if max, _ := strconv.Atoi(strings.TrimSpace(string(b))); max < pipeBytes {
			t.Skipf("pipes are limited to %d bytes here", max)
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if n := GrowPipe(r); n < pipeBytes {
		t.Fatalf("pipe grown to %d bytes, want %d", n, pipeBytes)
	}
	// The other end sees the same pipe: 1 MiB is written without a reader.
	if n, err := w.Write(make([]byte, pipeBytes)); err != nil || n != pipeBytes {
		t.Fatalf("wrote %d bytes into the grown pipe: %v", n, err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "file"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n := GrowPipe(f); n != 0 {
		t.Fatalf("a regular file reported as a pipe of %d bytes", n)
	}
}

// A pipe already as large as asked for, or larger (an operator's
// choice), keeps its size.
func TestGrowPipeNeverShrinks(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	size := 2 * pipeBytes
	if _, err := unix.FcntlInt(r.Fd(), unix.F_SETPIPE_SZ, size); err != nil {
		size = GrowPipe(r) // no right to exceed pipe-max-size here
		if size < pipeBytes {
			t.Skipf("pipes are limited to %d bytes here", size)
		}
	}
	if n := GrowPipe(r); n != 0 {
		t.Fatalf("GrowPipe changed a %d-byte pipe to %d bytes", size, n)
	}
	if n, _ := unix.FcntlInt(r.Fd(), unix.F_GETPIPE_SZ, 0); n != size {
		t.Fatalf("pipe is %d bytes, want %d", n, size)
	}
}

// A pipe made pollable takes deadlines (only a File on the runtime's
// poller does) and carries data; a regular file is returned as it is.
func TestPollable(t *testing.T) {
	// Raw descriptors, blocking, as a child's stdin is (os.Pipe's ends
	// are on the poller already).
	var fds [2]int
	if err := unix.Pipe(fds[:]); err != nil {
		t.Fatal(err)
	}
	w := os.NewFile(uintptr(fds[1]), "w")
	defer w.Close()
	fd := fds[0]
	blocking := os.NewFile(uintptr(fd), "stdin")
	if err := blocking.SetReadDeadline(time.Now()); err == nil {
		t.Fatal("a blocking pipe took a deadline: the test does not test")
	}
	p := Pollable(blocking)
	if err := p.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatalf("the pollable pipe takes no deadline: %v", err)
	}
	if _, err := p.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read of an empty pipe: %v, want the deadline", err)
	}
	_ = p.SetReadDeadline(time.Time{})
	if _, err := w.Write([]byte("line\n")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 16)
	if n, err := p.Read(got); err != nil || string(got[:n]) != "line\n" {
		t.Fatalf("read %q, %v", got[:n], err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "file"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if Pollable(f) != f {
		t.Fatal("a regular file was replaced")
	}
}
