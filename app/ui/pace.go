package ui

import (
	"context"
	"sync"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

// pacer hands out turns, one per browser task. In js/wasm the Go code runs
// until every goroutine waits, and only then does the browser get its
// thread back (input, paint): two goroutines with work at the same moment
// make one long task, and so does a goroutine whose short sleep has
// already run out when another blocks. Each costly step (rendering a View,
// applying or broadcasting a poll answer, writing the room cache) first
// takes a turn; after a turn ends the pacer waits for a JavaScript timer
// callback, which only runs once the Go code has given the thread back, so
// the next turn starts in a new task.
type pacer struct {
	turn chan struct{}
	end  chan struct{}
	// tick is fed by the timer callback, which must not block.
	tick chan struct{}
	done <-chan struct{}
}

// newPacer starts handing out turns until ctx ends.
func newPacer(ctx context.Context) *pacer {
	p := &pacer{
		turn: make(chan struct{}),
		end:  make(chan struct{}),
		tick: make(chan struct{}, 1),
		done: ctx.Done(),
	}
	fn := app.FuncOf(func(app.Value, []app.Value) any {
		select {
		case p.tick <- struct{}{}:
		default:
		}
		return nil
	})
	go p.run(ctx, fn)
	return p
}

func (p *pacer) run(ctx context.Context, fn app.Func) {
	defer fn.Release()
	for {
		select {
		case <-ctx.Done():
			return
		case p.turn <- struct{}{}:
		}
		select {
		case <-ctx.Done():
			return
		case <-p.end:
		}
		app.Window().Call("setTimeout", fn, 0)
		select {
		case <-ctx.Done():
			return
		case <-p.tick:
		}
	}
}

// Begin waits for the caller's turn and returns the func that ends it;
// the turn lasts until then. Without a pacer (nil, or stopped because the
// page is going away) it returns at once. Never wait for a turn inside a
// JavaScript callback: the next turn comes only after it returned.
func (p *pacer) Begin() (end func()) {
	if p == nil {
		return func() {}
	}
	select {
	case <-p.turn:
	case <-p.done:
		return func() {}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			select {
			case p.end <- struct{}{}:
			case <-p.done:
			}
		})
	}
}

// Wait waits for a turn for a step that runs right after it returns, in
// the same task.
func (p *pacer) Wait() { p.Begin()() }
