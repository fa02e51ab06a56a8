package execd

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestLimitFor(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name                        string
		total, released, heap, live uint64
		floor, want                 int64
	}{
		{"small live heap: the floor", 30 * mib, 2 * mib, 22 * mib, 8 * mib, 26 * mib, 26 * mib},
		{"large live heap: half again above it", 120 * mib, 0, 110 * mib, 60 * mib, 26 * mib, 100 * mib},
		{"released counted out", 130 * mib, 10 * mib, 110 * mib, 60 * mib, 26 * mib, 100 * mib},
		{"heap above what is held: no other", 50 * mib, 10 * mib, 45 * mib, 30 * mib, 26 * mib, 45 * mib},
		{"released above total", 10 * mib, 20 * mib, 0, 40 * mib, 26 * mib, 60 * mib},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := limitFor(tt.total, tt.released, tt.heap, tt.live, tt.floor); got != tt.want {
				t.Errorf("limitFor = %d MiB, want %d MiB", got/mib, tt.want/mib)
			}
		})
	}
}

func TestSoftMemoryLimitLeavesGOMEMLIMIT(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Setenv("GOMEMLIMIT", "off")
	stop, ok := SoftMemoryLimit(26 << 20)
	stop()
	if ok {
		t.Error("SoftMemoryLimit set a limit although GOMEMLIMIT is set")
	}
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("limit changed from %d to %d", before, got)
	}
}

// The limit must rise with the live heap, or the collector would run
// back to back once the live heap nears the floor, and come back down.
func TestSoftMemoryLimitFollowsLiveHeap(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	const floor = 16 << 20
	stop, ok := SoftMemoryLimit(floor)
	defer stop()
	if !ok {
		t.Fatal("SoftMemoryLimit set no limit")
	}
	if got := debug.SetMemoryLimit(-1); got < floor || got == math.MaxInt64 {
		t.Fatalf("limit %d, want at least the floor %d", got, floor)
	}
	waitLimit := func(what string, ok func(int64) bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; {
			runtime.GC()
			got := debug.SetMemoryLimit(-1)
			if ok(got) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("limit %d MiB, want %s", got>>20, what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	live := make([]byte, 64<<20)
	for i := range live {
		live[i] = 1
	}
	waitLimit("at least 96 MiB with 64 MiB live", func(l int64) bool { return l >= 96<<20 })
	runtime.KeepAlive(live)
	waitLimit("the floor again", func(l int64) bool { return l == floor })

}

// Once stopped, the collections no longer move the limit.
func TestMemoryGovernorStopped(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	g := newMemoryGovernor(16 << 20)
	if !g.afterGC() {
		t.Fatal("a running governor stopped following the collections")
	}
	if got := debug.SetMemoryLimit(-1); got < 16<<20 || got == math.MaxInt64 {
		t.Fatalf("limit %d, want at least the floor", got)
	}
	g.stopped.Store(true)
	const mark = 1 << 40
	debug.SetMemoryLimit(mark)
	if g.afterGC() {
		t.Error("a stopped governor went on following the collections")
	}
	if got := debug.SetMemoryLimit(-1); got != mark {
		t.Errorf("a stopped governor set the limit to %d", got)
	}
}
