package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/parley-chat/parley/shared"
	"github.com/stretchr/testify/require"
)

// renderWatch records, in the receiving page, when each message text first
// shows in the log (wall-clock ms, comparable with the sender's and Go's).
const renderWatch = `(() => {
	window.parleySeen = {};
	const now = () => performance.timeOrigin + performance.now();
	const scan = () => {
		for (const e of document.querySelectorAll('[data-testid=log] li[data-seq] .text')) {
			const t = e.textContent;
			if (t.startsWith('s2r ') && !(t in parleySeen)) parleySeen[t] = now();
		}
	};
	new MutationObserver(scan).observe(document.body, {subtree: true, childList: true, characterData: true});
	return true;
})()`

// enterWatch records, in the sending page, when Enter goes down in the
// composer (the browser's own event, before the app sees it).
const enterWatch = `(() => {
	window.parleyEnter = [];
	document.addEventListener('keydown', e => {
		if (e.key === 'Enter' && e.target.id === 'composer') parleyEnter.push({text: e.target.value, at: performance.timeOrigin + performance.now()});
	}, true);
	return true;
})()`

// pollWatch long-polls room as a plain Go client would and records when
// each message text arrives.
func pollWatch(ctx context.Context, t *testing.T, base, room string, seen map[string]time.Time, mu *sync.Mutex) {
	var after uint64
	var epoch string
	for ctx.Err() == nil {
		url := fmt.Sprintf("%s/api/rooms/%s/messages?wait=25&limit=500", base, room)
		if epoch != "" {
			url += fmt.Sprintf("&after=%d&epoch=%s", after, epoch)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		var pr shared.PollResponse
		err = json.NewDecoder(resp.Body).Decode(&pr)
		resp.Body.Close()
		at := time.Now()
		if err != nil {
			return
		}
		mu.Lock()
		for _, m := range pr.Messages {
			if _, ok := seen[m.Text]; !ok && strings.HasPrefix(m.Text, "s2r ") {
				seen[m.Text] = at
			}
		}
		mu.Unlock()
		if epoch == "" {
			// The first answer is the latest page: start after it.
			after = pr.Next
		} else if pr.Next > after {
			after = pr.Next
		}
		epoch = pr.Epoch
	}
}

func percentile(v []float64, p float64) float64 {
	sort.Float64s(v)
	i := int(p * float64(len(v)-1))
	return v[i]
}

// From Enter in one browser context to the message rendered in another,
// over 100 messages, next to a plain Go client's long poll seeing the same
// messages in the same run.
func TestSendToRender(t *testing.T) {
	srv := startServer(t, "-send-rate", "100")
	b := newBrowser(t)
	alice := b.firstTab("alice")
	bob := b.isolatedTab("bob")
	alice.enterLobby(srv.URL, "alice")
	bob.enterLobby(srv.URL, "bob")
	eval[bool](bob, renderWatch)
	eval[bool](alice, enterWatch)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	goSeen := map[string]time.Time{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		pollWatch(ctx, t, srv.URL, "lobby", goSeen, &mu)
	}()
	time.Sleep(300 * time.Millisecond) // the Go client's first poll is held

	const n = 100
	for i := 0; i < n; i++ {
		text := fmt.Sprintf("s2r %03d", i)
		js, _ := json.Marshal(text)
		eval[bool](alice, `(document.querySelector('[data-testid=message]').value = `+string(js)+`, true)`)
		alice.do(chromedp.Focus(chromedp.CSS(testid("message"))), pressEnter())
		bob.waitText(text, 10*time.Second)
		time.Sleep(50 * time.Millisecond)
	}
	enters := eval[[]struct {
		Text string  `json:"text"`
		At   float64 `json:"at"`
	}](alice, `parleyEnter`)
	rendered := eval[map[string]float64](bob, `parleySeen`)
	time.Sleep(200 * time.Millisecond)
	cancel()
	<-done

	var toRender, toPoll []float64
	mu.Lock()
	for _, e := range enters {
		r, ok := rendered[e.Text]
		require.True(t, ok, "%s rendered", e.Text)
		toRender = append(toRender, r-e.At)
		g, ok := goSeen[e.Text]
		require.True(t, ok, "%s seen by the Go client", e.Text)
		toPoll = append(toPoll, float64(g.UnixNano())/1e6-e.At)
	}
	mu.Unlock()
	require.Len(t, toRender, n)
	report := fmt.Sprintf("| %d messages, Enter in one context to | p50 (ms) | p99 (ms) | max (ms) |\n|---|---|---|---|\n| rendered in another browser context | %.1f | %.1f | %.1f |\n| seen by a plain Go client's long poll | %.1f | %.1f | %.1f |",
		n, percentile(toRender, .5), percentile(toRender, .99), percentile(toRender, 1),
		percentile(toPoll, .5), percentile(toPoll, .99), percentile(toPoll, 1))
	t.Log("\n" + report)
	require.NoError(t, os.WriteFile(filepath.Join(artefacts, "send-to-render.md"), []byte(report+"\n"), 0o644))
	require.Less(t, percentile(toRender, .5), 1000.0)
}
