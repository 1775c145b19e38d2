package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// longTaskScript runs in every document before the page's own scripts: it
// records each main-thread task over 50 ms (Chromium's long-task
// threshold) with when it started.
const longTaskScript = `
window.parleyLongTasks = [];
new PerformanceObserver(l => l.getEntries().forEach(e =>
	parleyLongTasks.push({start: e.startTime, duration: e.duration}))).observe({type: 'longtask', buffered: true});
`

// initScript runs src in each of the tab's next documents, before the
// page's own scripts.
func (tb *tab) initScript(src string) {
	tb.b.t.Helper()
	tb.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: src})
		return err
	}))
}

// watchLongTasks installs longTaskScript for the tab's next documents.
func (tb *tab) watchLongTasks() { tb.initScript(longTaskScript) }

// longTaskBound is the longest main-thread task the tests accept; see
// TestBurstAndLongHistory.
const longTaskBound = 1000.0

// longTask is one entry of the page's long-task record.
type longTask struct {
	Start    float64 `json:"start"`
	Duration float64 `json:"duration"`
}

// markLongTasks returns the page's clock now, to ask for the long tasks
// after it.
func (tb *tab) markLongTasks() float64 { return eval[float64](tb, `performance.now()`) }

// longTasksSince returns the long tasks that started after mark.
func (tb *tab) longTasksSince(mark float64) []longTask {
	return eval[[]longTask](tb, fmt.Sprintf(`parleyLongTasks.filter(e => e.start >= %f)`, mark))
}

func maxDuration(ts []longTask) float64 {
	m := 0.0
	for _, t := range ts {
		m = max(m, t.Duration)
	}
	return m
}

// longTaskReport collects the figures of one run for the log.
type longTaskReport struct {
	mu    sync.Mutex
	lines []string
}

func (r *longTaskReport) add(t *testing.T, what string, ts []longTask) {
	r.mu.Lock()
	defer r.mu.Unlock()
	line := fmt.Sprintf("%-40s long tasks: %d, longest %.0f ms", what, len(ts), maxDuration(ts))
	r.lines = append(r.lines, line)
	t.Log(line)
}
