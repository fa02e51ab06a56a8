package execd

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// A soft memory limit that follows the live heap.
//
// Go's collector lets the heap grow to twice what was live at the last
// collection (GOGC=100) and gives freed pages back to the system slowly.
// A child that keeps little alive, while it allocates much, carries that
// slack in its RSS: the input at 64 partitions had about 10 MB live and
// 25 MB of anonymous memory. A fixed GOMEMLIMIT trims the slack, but once the
// live heap nears it (large messages, many partitions) the collector runs
// back to back, up to half the CPU. So the limit set here is a floor that
// rises with the live heap: after every collection it becomes at least
// the runtime's memory besides the heap plus 1.5 times the live heap, so
// the collector runs at most about as often as GOGC=50 would make it.

// memorySamples are read after each collection, in this order.
var memorySamples = [...]string{
	"/memory/classes/total:bytes",
	"/memory/classes/heap/released:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
	"/gc/heap/live:bytes",
}

// memoryGovernor raises the soft memory limit above floor when the live
// heap needs it, and lowers it back as far as floor.
type memoryGovernor struct {
	floor   int64
	samples [len(memorySamples)]metrics.Sample
	stopped atomic.Bool
}

func newMemoryGovernor(floor int64) *memoryGovernor {
	g := &memoryGovernor{floor: floor}
	for i, name := range memorySamples {
		g.samples[i].Name = name
	}
	return g
}

// limit is the soft memory limit for the runtime's memory as it is now.
func (g *memoryGovernor) limit() int64 {
	metrics.Read(g.samples[:])
	var v [len(memorySamples)]uint64
	for i := range g.samples {
		if g.samples[i].Value.Kind() == metrics.KindUint64 {
			v[i] = g.samples[i].Value.Uint64()
		}
	}
	return limitFor(v[0], v[1], v[2]+v[3]+v[4], v[5], g.floor)
}

// limitFor is floor, or the runtime's memory besides the heap (what the
// runtime holds, less what it released and what the heap holds) plus half
// as much again as the live heap, when that is more.
func limitFor(total, released, heap, live uint64, floor int64) int64 {
	other := uint64(0)
	if held := total - min(total, released); held > heap {
		other = held - heap
	}
	need := other + live + live/2
	if need > uint64(floor) {
		return int64(min(need, 1<<62))
	}
	return floor
}

// afterGC sets the limit for the collection that just ended and follows
// the next one; false once stopped.
func (g *memoryGovernor) afterGC() bool {
	if g.stopped.Load() {
		return false
	}
	debug.SetMemoryLimit(g.limit())
	g.arm()
	return true
}

// arm calls afterGC after the next collection: a finalizer runs once the
// collector has found its object unreachable, so re-arming it from the
// finalizer runs it once a cycle.
func (g *memoryGovernor) arm() {
	runtime.SetFinalizer(&gcSentinel{g: g}, func(s *gcSentinel) { s.g.afterGC() })
}

// gcSentinel is the object whose finalizer follows the collections; it
// holds a pointer, so it is never one of the runtime's tiny allocations,
// whose finalizers may never run.
type gcSentinel struct{ g *memoryGovernor }

// SoftMemoryLimit sets the runtime's soft memory limit to floor bytes,
// raised after every collection as far as the live heap needs (see above),
// unless the GOMEMLIMIT environment variable sets one (an execd block's
// environment option can: GOMEMLIMIT=off turns the limit off). It returns
// false when it left the limit alone, and stop, which ends the following
// and leaves the last limit set.
func SoftMemoryLimit(floor int64) (stop func(), ok bool) {
	if os.Getenv("GOMEMLIMIT") != "" || floor <= 0 {
		return func() {}, false
	}
	g := newMemoryGovernor(floor)
	debug.SetMemoryLimit(g.limit())
	g.arm()
	return func() { g.stopped.Store(true) }, true
}
