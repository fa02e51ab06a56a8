package execd

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

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
