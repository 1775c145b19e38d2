package e2e

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/parley-chat/parley/app/i18n"
	"github.com/parley-chat/parley/shared"
	"github.com/stretchr/testify/require"
)

// head returns the room's epoch and newest seq.
func (s *server) head(t *testing.T, room string) shared.PollResponse {
	t.Helper()
	resp, err := http.Get(s.URL + "/api/rooms/" + room + "/messages?limit=1")
	require.NoError(t, err)
	defer resp.Body.Close()
	var pr shared.PollResponse
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&pr))
	return pr
}

// layout is where a line's parts are on the screen.
type layout struct {
	NameLeft, NameRight, TimeLeft float64
}

// lineLayout measures the line with seq: its author (or, in a join line,
// the words with the name) and its time.
func (tb *tab) lineLayout(seq uint64) layout {
	return eval[layout](tb, `(() => {
		const li = document.querySelector('[data-testid=log] li[data-seq="`+strconv.FormatUint(seq, 10)+`"]');
		const name = (li.querySelector('.author') || li.querySelector('span')).getBoundingClientRect();
		const time = li.querySelector('time');
		const tr = time.getBoundingClientRect();
		return {NameLeft: name.left, NameRight: name.right, TimeLeft: tr.left};
	})()`)
}

// Names and texts are bidi-isolated: a right-to-left name, and a name
// with a right-to-left override (stored before the server refused them,
// here put into the room cache the app starts from), leave the order of
// the line as it is: name first, then the time, read left to right.
// Textbook posts are marked, in both languages, and one made under the
// user's name is not shown as the user's own.
func TestBidiIsolationAndTextbookPosts(t *testing.T) {
	srv := startServer(t)
	srv.legacySend(t, "alice", "posted on the textbook page as alice")
	srv.legacySend(t, "אבי", "שלום 12")
	srv.legacySend(t, "placeholder", "replaced in the cache")
	h := srv.head(t, "lobby")
	require.EqualValues(t, 3, h.Next)
	msgs := srv.history(t, "lobby")
	msgs[2] = shared.Message{Seq: 3, Room: "lobby", Kind: shared.KindJoin, Author: "\u202eecila", SentAt: msgs[2].SentAt}
	cache, err := json.Marshal(map[string]any{"epoch": h.Epoch, "next": h.Next, "messages": msgs})
	require.NoError(t, err)

	b := newBrowser(t)
	tb := b.firstTab("alice")
	tb.navigate(srv.URL + "/")
	tb.ready()
	eval[bool](tb, `(localStorage.setItem('parley:v1:cache:lobby', `+jsString(string(cache))+`), true)`)
	tb.join("alice")
	tb.inRoom("lobby")
	tb.waitFor("the cached lines", `document.querySelectorAll('[data-testid=log] li[data-seq]').length >= 4`, 10*time.Second)

	for _, seq := range []uint64{2, 3} {
		l := tb.lineLayout(seq)
		require.Less(t, l.NameRight, l.TimeLeft+1, "line %d: the name comes before the time", seq)
	}
	require.Equal(t, " joined", eval[string](tb, `document.querySelector('[data-testid=log] li[data-seq="3"] bdi.name').nextSibling.textContent`))

	textbook := `document.querySelector('[data-testid=log] li[data-seq="1"]')`
	require.Equal(t, "msg textbook", eval[string](tb, textbook+`.className`), "a textbook post under alice's name is not alice's own")
	require.Equal(t, i18n.Get(i18n.EN).Textbook, eval[string](tb, textbook+`.querySelector('[data-testid=textbook]').textContent`))
	require.Equal(t, 2, eval[int](tb, `document.querySelectorAll('[data-testid=log] [data-testid=textbook]').length`), "the two textbook posts are marked")
	tb.send("alice's own")
	tb.waitFor("alice's own line", `[...document.querySelectorAll('[data-testid=log] li.own[data-kind=text]')].some(e => e.dataset.state === 'sent' && e.textContent.includes("alice's own"))`, 10*time.Second)
	require.Equal(t, 1, eval[int](tb, `document.querySelectorAll('[data-testid=log] li.own[data-seq]').length`), "alice's own post is the only own line")
	require.Equal(t, 2, eval[int](tb, `document.querySelectorAll('[data-testid=log] [data-testid=textbook]').length`), "her own post is not marked")
	tb.screenshot("bidi-textbook")

	eval[bool](tb, `(() => { const s = document.querySelector('#lang'); s.value = 'zh-CN'; s.dispatchEvent(new Event('change', {bubbles: true})); return true })()`)
	tb.waitFor("the textbook mark in Chinese", textbook+`.querySelector('[data-testid=textbook]').textContent === `+jsString(i18n.Get(i18n.ZH).Textbook), 10*time.Second)
	l := tb.lineLayout(3)
	require.Less(t, l.NameRight, l.TimeLeft+1, "in Chinese too")
}
