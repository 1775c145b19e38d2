package e2e

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/tracing"
	"github.com/chromedp/chromedp"
)

// traceEvent is one event of a Chromium trace (the JSON trace format).
type traceEvent struct {
	Name string  `json:"name"`
	Cat  string  `json:"cat"`
	Ph   string  `json:"ph"`
	Ts   float64 `json:"ts"`  // µs
	Dur  float64 `json:"dur"` // µs, for complete events
	// Tdur is the thread's own time in the event (µs): what it ran,
	// without the time another process held the CPU.
	Tdur float64         `json:"tdur"`
	Pid  int             `json:"pid"`
	Tid  int             `json:"tid"`
	Args json.RawMessage `json:"args"`
}

// trace records a Chromium trace of the given categories on the tab's
// browser until stop is called.
type trace struct {
	tb     *tab
	mu     sync.Mutex
	events []traceEvent
	done   chan struct{}
}

func (tb *tab) startTrace(categories ...string) *trace {
	tb.b.t.Helper()
	tr := &trace{tb: tb, done: make(chan struct{})}
	var once sync.Once
	chromedp.Listen(tb.ctx, func(ev any) {
		switch ev := ev.(type) {
		case *tracing.EventDataCollected:
			tr.mu.Lock()
			for _, raw := range ev.Value {
				var e traceEvent
				if json.Unmarshal(raw, &e) == nil {
					tr.events = append(tr.events, e)
				}
			}
			tr.mu.Unlock()
		case *tracing.EventTracingComplete:
			once.Do(func() { close(tr.done) })
		}
	})
	tb.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, tracing.Start, tracing.StartParams{
			TransferMode: tracing.StartTransferModeReportEvents,
			TraceConfig:  &tracing.TraceConfig{IncludedCategories: categories},
		})
		return err
	}))
	return tr
}

// stop ends the trace and returns its events.
func (tr *trace) stop() []traceEvent {
	tr.tb.b.t.Helper()
	tr.tb.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, tracing.End, cdp.Empty{})
		return err
	}))
	select {
	case <-tr.done:
	case <-time.After(30 * time.Second):
		tr.tb.fatalf("the trace did not complete")
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]traceEvent(nil), tr.events...)
}
