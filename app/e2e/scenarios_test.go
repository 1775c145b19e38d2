package e2e

import (
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

func TestReloadKeepsHistoryWithoutDuplicates(t *testing.T) {
	srv := startServer(t)
	carol := srv.apiJoin(t, "carol")
	srv.apiSend(t, carol, "lobby", "from carol 1")
	b := newBrowser(t)
	alice := b.firstTab("alice")
	alice.enterLobby(srv.URL, "alice")
	alice.waitText("from carol 1", 10*time.Second)
	alice.send("from alice")
	alice.waitText("from alice", 10*time.Second)
	srv.apiSend(t, carol, "lobby", "from carol 2")
	alice.waitText("from carol 2", 10*time.Second)
	before := alice.seqs()

	for i, u := range []string{srv.URL + "/r/lobby", srv.URL + "/"} {
		// Reload, then the bare "/": both land back in the room, signed in.
		alice.navigate(u)
		alice.ready()
		alice.inRoom("lobby")
		alice.waitText("from carol 2", 10*time.Second)
		// Let the first poll after the reload come back too.
		time.Sleep(500 * time.Millisecond)
		seqs := alice.seqs()
		require.True(t, sort.IntsAreSorted(seqs), "reload %d: %v", i, seqs)
		for j := 1; j < len(seqs); j++ {
			require.NotEqual(t, seqs[j-1], seqs[j], "reload %d: duplicate seq in %v", i, seqs)
		}
		require.Subset(t, seqs, before, "reload %d", i)
		require.Equal(t, []string{"from carol 1", "from alice", "from carol 2"}, alice.texts(), "reload %d", i)
	}
}

func TestNameTaken(t *testing.T) {
	srv := startServer(t)
	srv.apiJoin(t, "dora")
	b := newBrowser(t)
	tb := b.firstTab("tab")
	tb.navigate(srv.URL + "/r/lobby")
	tb.join("dora")
	tb.waitFor("the name-taken message", `document.querySelector('`+testid("join-error")+`').textContent.includes('taken')`, 10*time.Second)
	require.Equal(t, "/r/lobby", eval[string](tb, `location.pathname`))
	require.True(t, eval[bool](tb, `!!document.querySelector('`+testid("name")+`')`), "still on the join form")
	tb.screenshot("name-taken")
	tb.join("dora2")
	tb.inRoom("lobby")
}

func TestLegacySendMsgAppearsInUI(t *testing.T) {
	srv := startServer(t)
	b := newBrowser(t)
	tb := b.firstTab("alice")
	tb.enterLobby(srv.URL, "alice")
	srv.legacySend(t, "teacher", "同学们好 from the textbook page")
	tb.waitText("同学们好 from the textbook page", 10*time.Second)
	require.Equal(t, "teacher", eval[string](tb, `[...document.querySelectorAll('[data-testid=log] li[data-kind=text]')].pop().querySelector('.author').textContent`))
	srv.legacySend(t, "", "<b>not bold</b>")
	tb.waitText("<b>not bold</b>", 10*time.Second)
	require.Zero(t, eval[int](tb, `document.querySelectorAll('[data-testid=log] b').length`), "text is rendered as text, never HTML")
}

// Seven tabs of one browser (over HTTP/1.1, six connections per host) all
// receive, because the browser holds one long poll for the room, not one
// per tab.
func TestManyTabsShareOnePoll(t *testing.T) {
	const tabs = 8
	srv := startServer(t)
	b := newBrowser(t)
	first := b.firstTab("tab1")
	first.enterLobby(srv.URL, "alice")
	all := []*tab{first}
	for i := 2; i <= tabs; i++ {
		tb := b.newTab(fmt.Sprintf("tab%d", i))
		tb.navigate(srv.URL + "/r/lobby")
		tb.ready()
		tb.inRoom("lobby")
		all = append(all, tb)
	}
	leaders := 0
	for _, tb := range all {
		if eval[bool](tb, `document.querySelector('`+testid("connection")+`').dataset.leader === 'true'`) {
			leaders++
		}
	}
	require.Equal(t, 1, leaders, "one tab polls for the browser")

	carol := srv.apiJoin(t, "carol")
	start := time.Now()
	srv.apiSend(t, carol, "lobby", "to every tab")
	for _, tb := range all {
		tb.waitText("to every tab", 10*time.Second)
	}
	t.Logf("%d tabs received a message within %s", tabs, time.Since(start))

	// A tab that is not the leader sends; every tab shows it once.
	last := all[len(all)-1]
	last.send("from the last tab")
	for _, tb := range all {
		tb.waitText("from the last tab", 10*time.Second)
	}
	require.Equal(t, 1, count(srv.history(t, "lobby"), "from the last tab"))
}

func TestRoomSwitchBackForwardAndLanguage(t *testing.T) {
	srv := startServer(t)
	b := newBrowser(t)
	tb := b.firstTab("alice")
	tb.enterLobby(srv.URL, "alice")
	tb.send("in the lobby")
	tb.waitText("in the lobby", 10*time.Second)

	tb.do(
		chromedp.SendKeys(chromedp.CSS(testid("switch-room")), "dev-team"),
		pressEnter(),
	)
	tb.inRoom("dev-team")
	tb.send("in dev")
	tb.waitText("in dev", 10*time.Second)
	require.NotContains(t, tb.texts(), "in the lobby")

	tb.do(chromedp.NavigateBack())
	tb.inRoom("lobby")
	tb.waitText("in the lobby", 10*time.Second)
	require.NotContains(t, tb.texts(), "in dev")
	tb.do(chromedp.NavigateForward())
	tb.inRoom("dev-team")
	tb.waitText("in dev", 10*time.Second)

	// Chinese UI, and it sticks across a reload.
	tb.do(chromedp.SetValue(chromedp.CSS("#lang"), "zh-CN"))
	eval[bool](tb, `(document.querySelector('#lang').dispatchEvent(new Event('change')), true)`)
	tb.waitFor("Chinese labels", `document.querySelector('`+testid("connection")+`').textContent === '已连接'`, 5*time.Second)
	require.Equal(t, "发送", eval[string](tb, `document.querySelector('`+testid("send")+`').textContent`))
	tb.navigate(srv.URL + "/r/dev-team")
	tb.ready()
	tb.waitFor("Chinese after reload", `document.querySelector('`+testid("connection")+`').textContent === '已连接'`, 10*time.Second)
	require.Equal(t, "zh-CN", eval[string](tb, `document.documentElement.lang`))

	// Phone width.
	tb.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	tb.waitText("in dev", 5*time.Second)
	tb.screenshot("phone-zh")
}

// After one visit the shell opens with the server down, shows the cached
// messages, says it is offline and queues what is written; when the server
// is back the queued text is delivered exactly once.
func TestOfflineShellAndOutbox(t *testing.T) {
	data := filepath.Join(t.TempDir(), "parley.db")
	srv := startServer(t, "-store", "bolt", "-data", data)
	b := newBrowser(t)
	tb := b.firstTab("alice")
	tb.navigate(srv.URL + "/r/lobby")
	tb.join("alice")
	tb.inRoom("lobby")
	tb.send("before the outage")
	tb.waitText("before the outage", 10*time.Second)
	// The worker must have cached the whole shell before the server goes.
	tb.waitFor("the offline cache", `(async () => {
		const reg = await navigator.serviceWorker.ready;
		if (!reg.active || !navigator.serviceWorker.controller) return false;
		for (const k of await caches.keys()) {
			const c = await caches.open(k);
			if (await c.match('/web/app.wasm') && await c.match('/')) return true;
		}
		return false;
	})()`, 30*time.Second)

	srv.stop()
	tb.navigate(srv.URL + "/r/lobby")
	tb.ready()
	tb.waitText("before the outage", 10*time.Second)
	tb.waitFor("offline", `document.querySelector('`+testid("connection")+`').dataset.state === 'offline'`, 15*time.Second)
	tb.send("queued while offline")
	tb.waitFor("a pending message", `[...document.querySelectorAll('[data-testid=log] li[data-client-msg-id][data-state=pending]')].some(li => li.querySelector('.text').textContent === 'queued while offline')`, 5*time.Second)
	shot := tb.screenshot("offline-queued")
	require.NotEmpty(t, shot)

	srv.restart()
	tb.waitText("queued while offline", 30*time.Second)
	tb.waitFor("connected", `document.querySelector('`+testid("connection")+`').dataset.state === 'connected'`, 15*time.Second)
	time.Sleep(time.Second) // any duplicate send would have landed by now
	require.Equal(t, 1, count(srv.history(t, "lobby"), "queued while offline"), "delivered exactly once")
	require.Equal(t, 1, count(srv.history(t, "lobby"), "before the outage"), "history survived the restart")
	require.Equal(t, 1, eval[int](tb, `[...document.querySelectorAll('[data-testid=log] li .text')].filter(e => e.textContent === 'queued while offline').length`))
	require.Zero(t, eval[int](tb, `document.querySelectorAll('[data-testid=log] li[data-state=pending]').length`))
}
