package execd

import (
	"runtime"
	"testing"
)

func TestLimitProcs(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(before)
	t.Setenv("GOMAXPROCS", "")
	if before > 1 {
		if got := LimitProcs(1); got != 1 || runtime.GOMAXPROCS(0) != 1 {
			t.Fatalf("LimitProcs(1) = %d, GOMAXPROCS %d", got, runtime.GOMAXPROCS(0))
		}
		runtime.GOMAXPROCS(before)
	}
	if got := LimitProcs(before + 1); got != before {
		t.Fatalf("LimitProcs above the cores: %d, want %d as it was", got, before)
	}
	t.Setenv("GOMAXPROCS", "3")
	runtime.GOMAXPROCS(3)
	if got := LimitProcs(1); got != 3 {
		t.Fatalf("with GOMAXPROCS=3 in the environment, LimitProcs(1) = %d", got)
	}
}
