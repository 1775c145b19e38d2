package e2e

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// legacyBurst posts n messages through /send_msg/ from several goroutines.
func (s *server) legacyBurst(t *testing.T, prefix string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				s.legacySend(t, "burst", fmt.Sprintf("%s %d", prefix, i))
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

// A room with 5,000 messages opens at once with the latest page, and a
// burst of 1,000 more renders without freezing the page: the DOM holds a
// bounded window, older messages come on demand.
func TestBurstAndLongHistory(t *testing.T) {
	srv := startServer(t, "-history", "6000", "-textbook-rate", "0")
	srv.legacyBurst(t, "history", 5000)

	b := newBrowser(t)
	tb := b.firstTab("alice")
	tb.navigate(srv.URL + "/")
	tb.join("alice")
	start := time.Now()
	tb.inRoom("lobby")
	tb.waitFor("the latest messages", `document.querySelectorAll('[data-testid=log] li[data-seq]').length >= 50`, 10*time.Second)
	t.Logf("room with 5000 messages shown %s after joining", time.Since(start))
	require.LessOrEqual(t, eval[int](tb, `document.querySelectorAll('[data-testid=log] li').length`), 200)

	// Watch the main thread while 1,000 messages arrive.
	eval[bool](tb, `(() => {
		window.parleyLongTasks = [];
		new PerformanceObserver(l => l.getEntries().forEach(e => parleyLongTasks.push(e.duration))).observe({type: 'longtask'});
		window.parleyMaxGap = 0;
		let last = performance.now();
		window.parleyBeat = setInterval(() => {
			const now = performance.now();
			parleyMaxGap = Math.max(parleyMaxGap, now - last);
			last = now;
		}, 20);
		return true;
	})()`)
	start = time.Now()
	srv.legacyBurst(t, "burst", 1000)
	last := srv.history(t, "lobby")
	newest := last[len(last)-1].Seq
	tb.waitFor("the whole burst", fmt.Sprintf(`Math.max(...[...document.querySelectorAll('[data-testid=log] li[data-seq]')].map(e => +e.dataset.seq)) >= %d`, newest), 30*time.Second)
	elapsed := time.Since(start)
	maxGap := eval[float64](tb, `(clearInterval(parleyBeat), parleyMaxGap)`)
	longest := eval[float64](tb, `Math.max(0, ...parleyLongTasks)`)
	lis := eval[int](tb, `document.querySelectorAll('[data-testid=log] li').length`)
	t.Logf("burst of 1000 shown in %s; longest main-thread task %.0f ms, longest timer gap %.0f ms; %d list items in the DOM", elapsed, longest, maxGap, lis)
	require.LessOrEqual(t, lis, 200, "the DOM holds a bounded window")
	// A frozen page would show gaps of seconds; rendering the window stays
	// far below, even on a slow 2-core machine.
	require.Less(t, maxGap, 1500.0, "the page must stay responsive")
	tb.screenshot("burst")

	// Older messages on demand: first from memory, then from the server.
	first := eval[int](tb, `+document.querySelector('[data-testid=log] li[data-seq]').dataset.seq`)
	for i := 0; i < 3; i++ {
		tb.do(chromedp.Click(chromedp.CSS(testid("load-older"))))
		time.Sleep(300 * time.Millisecond)
	}
	tb.waitFor("older messages", fmt.Sprintf(`+document.querySelector('[data-testid=log] li[data-seq]').dataset.seq < %d`, first), 10*time.Second)
}
