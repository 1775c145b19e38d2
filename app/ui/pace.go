package ui

import (
	"context"
	"sync"
	"time"

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
	done <-chan struct{}
	// after is a timer outside the Go runtime (jsAfter in the browser):
	// see renderWait for why.
	after func(time.Duration) (<-chan struct{}, func())
}

// newPacer starts handing out turns until ctx ends, between browser tasks.
func newPacer(ctx context.Context) *pacer { return startPacer(ctx, jsAfter) }

func startPacer(ctx context.Context, after func(time.Duration) (<-chan struct{}, func())) *pacer {
	p := &pacer{
		turn:  make(chan struct{}),
		end:   make(chan struct{}),
		done:  ctx.Done(),
		after: after,
	}
	go p.run(ctx)
	return p
}

func (p *pacer) run(ctx context.Context) {
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
		next, stop := p.after(0)
		select {
		case <-ctx.Done():
			stop()
			return
		case <-next:
			stop()
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

// renderWait bounds a render's turn. A turn waits for go-app's next frame
// so that no other step shares the render's task, but that frame is not
// certain: go-app drops a dispatch, and the Defer it queues, for an element
// that is no longer mounted, and under load the many-tabs test once waited
// more than 10 s for a frame that never came, for a reason not found. A
// turn that never ends stops every step behind it: in the leader tab that
// is the room's poll, so no tab of the browser got a message any more.
const renderWait = 250 * time.Millisecond

// Render runs draw in a turn of its own: draw has go-app apply a change
// and calls rendered once go-app's frame drew it (from a Defer). Render
// returns then, after renderWait at the latest, or once done is closed or
// the pacer stopped.
func (p *pacer) Render(draw func(rendered func()), done <-chan struct{}) {
	end := p.Begin()
	defer end()
	drawn := make(chan struct{})
	var once sync.Once
	draw(func() { once.Do(func() { close(drawn) }) })
	if p == nil {
		return
	}
	// Not a Go timer: the browser task that fires it also resumes the Go
	// scheduler, so a frame whose ticker is overdue runs then too.
	late, stop := p.after(renderWait)
	defer stop()
	select {
	case <-drawn:
	case <-late:
	case <-done:
	case <-p.done:
	}
}

// jsAfter returns a channel that a JavaScript timer closes after d, and
// the func that releases the timer, which must be called.
func jsAfter(d time.Duration) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	var once sync.Once
	fn := app.FuncOf(func(app.Value, []app.Value) any {
		once.Do(func() { close(ch) })
		return nil
	})
	id := app.Window().Call("setTimeout", fn, d.Milliseconds())
	return ch, func() {
		app.Window().Call("clearTimeout", id)
		fn.Release()
	}
}
