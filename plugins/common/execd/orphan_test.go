package execd

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestWhileParentLives(t *testing.T) {
	var ppid atomic.Int64
	defer func(get func() int, poll time.Duration) { getppid, parentPoll = get, poll }(getppid, parentPoll)
	getppid = func() int { return int(ppid.Load()) }
	parentPoll = time.Millisecond

	t.Run("parent exits", func(t *testing.T) {
		ppid.Store(4242)
		ctx, stop := WhileParentLives(context.Background())
		defer stop()
		time.Sleep(20 * time.Millisecond)
		if ctx.Err() != nil {
			t.Fatal("cancelled while the parent lives")
		}
		ppid.Store(1) // adopted by init
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("not cancelled after the parent changed")
		}
		if !ParentExited(ctx) {
			t.Fatalf("cause %v", context.Cause(ctx))
		}
	})
	t.Run("stopped", func(t *testing.T) {
		ppid.Store(4242)
		ctx, stop := WhileParentLives(context.Background())
		stop()
		if ctx.Err() == nil || ParentExited(ctx) {
			t.Fatalf("err %v, cause %v", ctx.Err(), context.Cause(ctx))
		}
	})
	t.Run("started by init", func(t *testing.T) {
		// Telegraf as a container's PID 1: nothing to tell apart.
		ppid.Store(1)
		ctx, stop := WhileParentLives(context.Background())
		defer stop()
		ppid.Store(4242)
		time.Sleep(20 * time.Millisecond)
		if ctx.Err() != nil {
			t.Fatal("cancelled without a parent to watch")
		}
	})
	t.Run("signal first", func(t *testing.T) {
		ppid.Store(4242)
		parent, cancel := context.WithCancel(context.Background())
		ctx, stop := WhileParentLives(parent)
		defer stop()
		cancel()
		<-ctx.Done()
		if ParentExited(ctx) {
			t.Fatal("a stop signal taken for the parent's exit")
		}
	})
}
