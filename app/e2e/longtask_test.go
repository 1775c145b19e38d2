package e2e

import (
	"context"
	"fmt"
	"strings"
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

// longTaskBound is the longest main-thread task by the clock the tests
// accept; see TestBurstAndLongHistory.
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

func (r *longTaskReport) add(t *testing.T, what string, ts []longTask, tt taskTimes) {
	r.mu.Lock()
	defer r.mu.Unlock()
	line := fmt.Sprintf("%-34s long tasks: %d, longest %.0f ms; traced: %d tasks, longest %.0f ms (%d over 50), by thread time %.1f ms (%d over 50)",
		what, len(ts), maxDuration(ts), tt.Tasks, tt.Wall, tt.OverWall, tt.Thread, tt.OverThread)
	r.lines = append(r.lines, line)
	t.Log(line)
}

// mainTaskCategories are the trace categories mainTasks needs: the
// browser's tasks, and what V8 compiled in them.
var mainTaskCategories = []string{"devtools.timeline", "disabled-by-default-devtools.timeline", "v8.wasm"}

// taskTimes sums up the page's main-thread tasks in a trace.
type taskTimes struct {
	// Wall and Thread are the longest task by the clock and by the time
	// the thread itself ran (without the time other processes held the
	// CPU), in ms; OverWall and OverThread count tasks over 50 ms.
	Wall, Thread         float64
	OverWall, OverThread int
	// Tasks counts the tasks seen, so that a trace that saw none does not
	// pass for a page without long tasks.
	Tasks int
}

// mainTasks measures the tasks of the renderer's main thread. On a loaded
// machine the wall-clock length of a task includes the time the thread
// waited for a CPU; its thread time is what the page made it do.
func mainTasks(evs []traceEvent) taskTimes {
	type thread struct{ pid, tid int }
	main := map[thread]bool{}
	for _, e := range evs {
		if e.Ph == "M" && e.Name == "thread_name" && strings.Contains(string(e.Args), "CrRendererMain") {
			main[thread{e.Pid, e.Tid}] = true
		}
	}
	var tt taskTimes
	for _, e := range evs {
		if e.Name != "RunTask" || e.Ph != "X" || !main[thread{e.Pid, e.Tid}] {
			continue
		}
		tt.Tasks++
		wall, cpu := e.Dur/1000, e.Tdur/1000
		tt.Wall, tt.Thread = max(tt.Wall, wall), max(tt.Thread, cpu)
		if wall > 50 {
			tt.OverWall++
		}
		if cpu > 50 {
			tt.OverThread++
		}
	}
	return tt
}
