package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/parley-chat/parley/app/i18n"
	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/shared"
)

// lessonClient is one column of /learn, from its data-* attributes.
type lessonClient struct {
	Mode       string `json:"mode"`
	Requests   int    `json:"requests"`
	Empty      int    `json:"empty"`
	Received   int    `json:"received"`
	Duplicates int    `json:"duplicates"`
	Other      int    `json:"other"`
	Errors     int    `json:"errors"`
	Bytes      int    `json:"bytes"`
	DelayAvg   int    `json:"delayAvg"`
	DelayMax   int    `json:"delayMax"`
}

func (tb *tab) lessonClients() map[string]lessonClient {
	tb.b.t.Helper()
	list := eval[[]lessonClient](tb, `[...document.querySelectorAll('[data-testid=lesson-client]')].map(e => ({
		mode: e.dataset.mode, requests: +e.dataset.requests, empty: +e.dataset.empty,
		received: +e.dataset.received, duplicates: +e.dataset.duplicates, other: +e.dataset.other,
		errors: +e.dataset.errors, bytes: +e.dataset.bytes,
		delayAvg: +e.dataset.delayAvgMs, delayMax: +e.dataset.delayMaxMs}))`)
	m := map[string]lessonClient{}
	for _, c := range list {
		m[c.Mode] = c
	}
	return m
}

// fullScreenshot saves the whole page, below the fold too.
func (tb *tab) fullScreenshot(label string) string {
	tb.b.shots++
	p := filepath.Join(artefacts, fmt.Sprintf("%s-%s-%02d-%s.png", sanitize(tb.b.t.Name()), tb.name, tb.b.shots, label))
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	img, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err == nil {
		err = os.WriteFile(p, img, 0o644)
	}
	if err != nil {
		tb.b.t.Logf("screenshot %s: %v", label, err)
		return ""
	}
	tb.b.t.Logf("screenshot: %s", p)
	return p
}

// refusedPolls starts n long polls of wait 1 s at once and counts those the
// server refused for lack of room (503): with -max-polls 3, that is how
// many polls someone else holds.
func (s *server) refusedPolls(t *testing.T, n int) int {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	refused := 0
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(fmt.Sprintf("%s/api/rooms/probe/messages?after=0&wait=1&n=%d", s.URL, i))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				mu.Lock()
				refused++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return refused
}

// /learn: the three clients receive the same messages, each exactly once;
// long polling asks far less often than short polling and is on time; the
// page works by keyboard, at phone width and in Chinese; and leaving it
// releases its held polls.
func TestLessonPage(t *testing.T) {
	const maxPolls = 3
	srv := startServer(t, "-max-polls", fmt.Sprint(maxPolls))
	b := newBrowser(t)
	tb := b.firstTab("learner")
	tb.navigate(srv.URL + "/")
	tb.ready()
	tb.do(chromedp.Click(chromedp.CSS(testid("learn-link"))))
	tb.waitFor("the lesson's clients", `location.pathname === '/learn' && document.querySelector('[data-testid=lesson][data-ready=true]')`, 20*time.Second)
	require.Len(t, tb.lessonClients(), 3)

	// Short polling every second, from the page's own select.
	eval[bool](tb, `(() => { const s = document.querySelector('[data-testid=lesson-interval]'); s.value = '1'; s.dispatchEvent(new Event('change', {bubbles: true})); return true })()`)
	start := time.Now()
	time.Sleep(3 * time.Second)
	tb.do(chromedp.Click(chromedp.CSS(testid("lesson-send-5"))))
	tb.waitFor("5 messages in every client", `[...document.querySelectorAll('[data-testid=lesson-client]')].every(e => e.dataset.received === '5')`, 20*time.Second)
	time.Sleep(8 * time.Second) // idle: short polling goes on asking, long polling waits
	c := tb.lessonClients()
	elapsed := time.Since(start)
	t.Logf("after %s: %+v", elapsed.Round(time.Millisecond), c)
	for _, m := range []string{"short", "long", "textbook"} {
		require.Equal(t, 5, c[m].Received, m)
		require.Zero(t, c[m].Duplicates, m)
		require.Zero(t, c[m].Other, "%s: nobody else is in the page's room", m)
		require.Zero(t, c[m].Errors, m)
		require.Positive(t, c[m].Bytes, m)
	}
	require.Equal(t, 5, c["textbook"].Requests-c["textbook"].Empty, "the textbook answers one message per call")
	require.GreaterOrEqual(t, c["short"].Requests, int(elapsed.Seconds())-3, "short polling asks every second")
	require.LessOrEqual(t, 2*c["long"].Requests, c["short"].Requests, "long polling asks far less often")
	require.Less(t, c["long"].DelayAvg, c["short"].DelayAvg, "and is on time")
	require.Less(t, c["long"].DelayMax, 300, "long polling delivers at once")
	for _, m := range srv.history(t, "lobby") {
		require.NotEqual(t, shared.KindText, m.Kind, "the page's messages are in a room of its own, not in lobby: %+v", m)
	}
	require.Positive(t, eval[int](tb, `document.querySelectorAll('[data-testid=lesson-timeline] .lesson-dot').length`))
	require.Equal(t, 3, eval[int](tb, `document.querySelectorAll('[data-testid=lesson-timeline] .lesson-lane').length`))
	tb.fullScreenshot("lesson")

	// By keyboard: type one and press Enter; "Send one" with the space bar.
	tb.do(chromedp.Focus(chromedp.CSS(testid("lesson-text"))), chromedp.SendKeys(chromedp.CSS(testid("lesson-text")), "typed by hand"), pressEnter())
	tb.waitFor("the typed message in every client", `[...document.querySelectorAll('[data-testid=lesson-client]')].every(e => e.dataset.received === '6')`, 15*time.Second)
	tb.do(chromedp.Focus(chromedp.CSS(testid("lesson-send-1"))), chromedp.KeyEvent(" "))
	tb.waitFor("one more in every client", `[...document.querySelectorAll('[data-testid=lesson-client]')].every(e => e.dataset.received === '7')`, 15*time.Second)
	require.Empty(t, eval[string](tb, `document.querySelector('[data-testid=lesson-text]').value`), "the field is cleared after sending")

	// Chinese, at phone width: one column, nothing wider than the screen.
	eval[bool](tb, `(() => { const s = document.querySelector('#lang'); s.value = 'zh-CN'; s.dispatchEvent(new Event('change', {bubbles: true})); return true })()`)
	zh := i18n.Get(i18n.ZH)
	tb.waitFor("the lesson in Chinese", `document.querySelector('.lesson-head h1').textContent === `+jsString(zh.LessonTitle), 5*time.Second)
	require.Equal(t, zh.Send5, eval[string](tb, `document.querySelector('[data-testid=lesson-send-5]').textContent`))
	tb.do(chromedp.EmulateViewport(390, 844))
	tb.waitFor("one column", `(() => { const cs = [...document.querySelectorAll('[data-testid=lesson-client]')].map(e => e.getBoundingClientRect()); return cs[1].top > cs[0].bottom && cs[2].top > cs[1].bottom })()`, 5*time.Second)
	require.LessOrEqual(t, eval[int](tb, `document.documentElement.scrollWidth`), 390, "no sideways scrolling at phone width")
	tb.fullScreenshot("lesson-phone-zh")

	// The page holds two polls (long polling's and the textbook's): of
	// three probes, two are refused while it is open…
	deadline := time.Now().Add(15 * time.Second)
	for srv.refusedPolls(t, maxPolls) != 2 {
		if time.Now().After(deadline) {
			tb.fatalf("the page does not hold its two polls")
		}
	}
	// … and none once it is left.
	tb.do(chromedp.Click(chromedp.CSS(testid("lesson-back"))))
	tb.waitFor("the join screen", `location.pathname === '/' && document.querySelector('`+testid("name")+`')`, 10*time.Second)
	left := time.Now()
	deadline = left.Add(5 * time.Second)
	for srv.refusedPolls(t, maxPolls) != 0 {
		if time.Now().After(deadline) {
			tb.fatalf("the lesson's polls are still held after leaving it")
		}
	}
	t.Logf("polls released within %s of leaving", time.Since(left).Round(time.Millisecond))
}

func jsString(s string) string { return fmt.Sprintf("%q", s) }
