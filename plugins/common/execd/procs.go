package execd

import (
	"os"
	"runtime"
)

// LimitProcs runs Go code on at most n threads at once (GOMAXPROCS),
// unless the GOMAXPROCS environment variable says otherwise (an execd
// block's environment option can set it). A child whose goroutines mostly
// hand work to each other gains little from more: with a thread per core
// the runtime keeps idle ones spinning for work at every hand-off, CPU
// that Telegraf and CnosDB on the same cores then lack. It returns the
// setting in effect.
func LimitProcs(n int) int {
	if os.Getenv("GOMAXPROCS") != "" || n < 1 || n >= runtime.GOMAXPROCS(0) {
		return runtime.GOMAXPROCS(0)
	}
	runtime.GOMAXPROCS(n)
	return n
}
