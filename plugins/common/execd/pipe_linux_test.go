package execd

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
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
