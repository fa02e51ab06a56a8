package execd

import (
	"context"
	"errors"
	"os"
	"time"
)

// ErrParentExited is the cause of a context that WhileParentLives
// cancelled: the process that started this one is gone.
var ErrParentExited = errors.New("the process that started this one (Telegraf) exited")

var (
	// parentPoll is how often the parent is looked for: a child of a
	// dead Telegraf loses nothing by learning of it a second late.
	parentPoll = time.Second
	// getppid is os.Getppid, replaced by tests.
	getppid = os.Getppid
)

// WhileParentLives returns a context that is cancelled, with cause
// ErrParentExited, once this process's parent changes: the kernel gives
// an orphan a new parent (init, or a subreaper) when the old one dies.
//
// A child learns that Telegraf stopped it from its stdin closing and from
// SIGTERM. A Telegraf that is killed (the OOM killer, kill -9) sends no
// signal, and a child that is not reading stdin at that moment (the
// output waits for a free batch while CnosDB is down) never sees it
// close: without this it would hold its data, and run, until CnosDB came
// back, with no one left to read what it logs.
func WhileParentLives(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := func() { cancel(context.Canceled) }
	ppid := getppid()
	if ppid <= 1 {
		// Started by init, or orphaned already: nothing to watch.
		return ctx, stop
	}
	get, tick := getppid, time.NewTicker(parentPoll)
	go func() {
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if get() != ppid {
					cancel(ErrParentExited)
					return
				}
			}
		}
	}()
	return ctx, stop
}

// ParentExited reports whether ctx ended because WhileParentLives saw the
// parent go.
func ParentExited(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), ErrParentExited)
}
