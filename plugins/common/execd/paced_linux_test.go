package execd

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// rawPipe is a pipe of blocking descriptors, as a child's stdin is
// (os.Pipe's ends are on the poller already).
func rawPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	var fds [2]int
	if err := unix.Pipe(fds[:]); err != nil {
		t.Fatal(err)
	}
	r, w = os.NewFile(uintptr(fds[0]), "r"), os.NewFile(uintptr(fds[1]), "w")
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func pacedReader(t *testing.T, f *os.File) *PacedReader {
	t.Helper()
	r, ok := NewPacedReader(f).(*PacedReader)
	if !ok {
		t.Fatalf("%s is a pipe, but got no PacedReader", f.Name())
	}
	return r
}

func readLine(t *testing.T, r io.Reader, want string) {
	t.Helper()
	buf := make([]byte, 64)
	if n, err := r.Read(buf); err != nil || string(buf[:n]) != want {
		t.Fatalf("read %q, %v; want %q", buf[:n], err, want)
	}
}

// Metrics written one at a time, thousands a second, take the pipe off
// the poller: an empty pipe is then tried again after sleeps that double
// up to maxPace. Data resets them, a pipe that stays empty goes back to
// the poller, and the writer's close is the end in either mode.
func TestPacedReaderTrickle(t *testing.T) {
	rf, w := rawPipe(t)
	r := pacedReader(t, rf)
	var slept []time.Duration
	wrote := false
	r.sleep = func(d time.Duration) {
		slept = append(slept, d)
		if len(slept) == 6 && !wrote {
			w.Write([]byte("after six\n"))
			wrote = true
		}
	}
	for i := 0; i < trickleReads; i++ {
		if r.Paced() {
			t.Fatalf("paced after %d small reads", i)
		}
		w.Write([]byte("m v=1\n"))
		readLine(t, r, "m v=1\n")
	}
	if !r.Paced() {
		t.Fatalf("%d small reads in a row did not pace the reader", trickleReads)
	}
	readLine(t, r, "after six\n")
	want := []time.Duration{minPace, 2 * minPace, 4 * minPace, maxPace, maxPace, maxPace}
	if !slices.Equal(slept, want) {
		t.Fatalf("slept %v, want %v", slept, want)
	}
	// Empty for idleBack: back to the poller, which waits for the next write.
	slept = nil
	go func() {
		time.Sleep(20 * time.Millisecond)
		w.Write([]byte("on the poller\n"))
	}()
	readLine(t, r, "on the poller\n")
	if r.Paced() {
		t.Fatal("still sleeping after the pipe stayed empty")
	}
	var sum time.Duration
	for _, d := range slept {
		sum += d
	}
	if slept[0] != minPace || sum < idleBack || sum > idleBack+maxPace {
		t.Fatalf("slept %v (%v in all) before going back to the poller; want from %v, about %v", slept, sum, minPace, idleBack)
	}
	w.Close()
	if n, err := r.Read(make([]byte, 8)); err != io.EOF || n != 0 {
		t.Fatalf("after the writer closed: %d bytes, %v; want io.EOF", n, err)
	}
}

// Small reads spread out (a slow stream), or reads of whole batches, keep
// the poller; so does an end of input while paced.
func TestPacedReaderKeepsThePoller(t *testing.T) {
	rf, w := rawPipe(t)
	r := pacedReader(t, rf)
	clock := time.Unix(0, 0)
	r.now = func() time.Time { return clock }
	for i := 0; i < 2*trickleReads; i++ {
		clock = clock.Add(time.Millisecond)
		w.Write([]byte("slow v=1\n"))
		readLine(t, r, "slow v=1\n")
	}
	if r.Paced() {
		t.Fatal("a small read a millisecond paced the reader")
	}
	r.now = time.Now
	batch := make([]byte, smallRead)
	for i := 0; i < 2*trickleReads; i++ {
		w.Write(batch)
		if n, err := io.ReadFull(r, make([]byte, len(batch))); err != nil || n != len(batch) {
			t.Fatalf("read %d of a %d-byte batch: %v", n, len(batch), err)
		}
	}
	if r.Paced() {
		t.Fatal("batches paced the reader")
	}
}

func TestPacedReaderEndWhilePaced(t *testing.T) {
	rf, w := rawPipe(t)
	r := pacedReader(t, rf)
	r.sleep = func(time.Duration) { w.Close() }
	for i := 0; i < trickleReads; i++ {
		w.Write([]byte("m v=1\n"))
		readLine(t, r, "m v=1\n")
	}
	if !r.Paced() {
		t.Fatal("not paced")
	}
	if n, err := r.Read(make([]byte, 8)); err != io.EOF || n != 0 {
		t.Fatalf("after the writer closed: %d bytes, %v; want io.EOF", n, err)
	}
}

func TestPacedReaderLeavesFilesAlone(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "file"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if NewPacedReader(f) != io.Reader(f) {
		t.Fatal("a regular file was replaced")
	}
}
