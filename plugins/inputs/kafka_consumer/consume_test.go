package kafka_consumer //nolint:revive,stylecheck // named after the Telegraf plugin it replaces

import "testing"

// The pool hands back what was returned, keeps no more than
// chunkPoolFree buffers, and drops one a large message grew.
func TestChunkPool(t *testing.T) {
	var p chunkPool
	b := p.get()
	if cap(b) != chunkInitial || len(b) != 0 {
		t.Fatalf("new buffer: len %d cap %d, want 0 and %d", len(b), cap(b), chunkInitial)
	}
	b = append(b, make([]byte, 3*chunkInitial)...)
	p.put(b)
	if again := p.get(); cap(again) != cap(b) || len(again) != 0 {
		t.Errorf("returned buffer: len %d cap %d, want 0 and %d", len(again), cap(again), cap(b))
	}
	p.put(make([]byte, 0, chunkPoolMax+1))
	if len(p.free) != 0 {
		t.Errorf("an oversized buffer was kept")
	}
	for range chunkPoolFree + 3 {
		p.put(make([]byte, 10))
	}
	if len(p.free) != chunkPoolFree {
		t.Errorf("%d buffers kept, want %d", len(p.free), chunkPoolFree)
	}
	p.put(nil)
	if len(p.free) != chunkPoolFree {
		t.Errorf("nil was kept")
	}
}
