package ui

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
	"github.com/parley-chat/parley/app/chat"
	"github.com/parley-chat/parley/app/i18n"
	"github.com/parley-chat/parley/app/lesson"
	"github.com/parley-chat/parley/shared"
	"github.com/stretchr/testify/require"
)

// These tests run components in go-app's test engine (server mode: no DOM,
// OnMount does not run), and check what they render from their properties.

var en, zh = i18n.Get(i18n.EN), i18n.Get(i18n.ZH)

// render loads c in a test engine and returns its HTML.
func render(t *testing.T, c app.Composer) string {
	t.Helper()
	e := app.NewTestEngine()
	require.NoError(t, e.Load(c))
	e.ConsumeAll()
	return app.HTMLString(c)
}

// attrs returns the attributes of the element whose opening tag contains
// marker (go-app writes attributes in any order). A boolean attribute that
// is set has the value "", one that is not is absent or "false".
func attrs(t *testing.T, html, marker string) map[string]string {
	t.Helper()
	i := strings.Index(html, marker)
	require.GreaterOrEqual(t, i, 0, "no %s in %s", marker, html)
	start := strings.LastIndex(html[:i], "<")
	end := i + strings.Index(html[i:], ">")
	m := map[string]string{}
	for _, a := range attrRe.FindAllStringSubmatch(html[start:end], -1) {
		m[a[1]] = a[2]
	}
	return m
}

var attrRe = regexp.MustCompile(`\s([a-z-]+)(?:="([^"]*)")?`)

// set reports whether a boolean attribute is on.
func set(a map[string]string, name string) bool {
	v, ok := a[name]
	return ok && v != "false"
}

func entries(from, to int, author string) []chat.Entry {
	var es []chat.Entry
	for i := from; i <= to; i++ {
		es = append(es, chat.Entry{Message: shared.Message{
			Seq: uint64(i), Kind: shared.KindText, Author: author, Text: fmt.Sprintf("m%d", i),
			SentAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		}})
	}
	return es
}

func TestConnIndicatorSaysItsStateInWords(t *testing.T) {
	for _, s := range []*i18n.Strings{en, zh} {
		for state, word := range map[chat.ConnState]string{chat.Connected: s.Connected, chat.Reconnecting: s.Reconnecting, chat.Offline: s.Offline, "": s.Reconnecting} {
			html := render(t, &connIndicator{Str: s, State: state, Leader: true})
			want := state
			if want == "" {
				want = chat.Reconnecting
			}
			require.Contains(t, html, `data-state="`+string(want)+`"`)
			require.Contains(t, html, `role="status"`)
			require.Contains(t, html, `title="`+s.ConnectionName+": "+word+`"`)
			require.Contains(t, html, word)
			require.True(t, set(attrs(t, html, `data-testid="connection"`), "data-leader"))
		}
	}
}

func TestMemberListMarksTheUserAndCounts(t *testing.T) {
	html := render(t, &memberList{Str: en, Self: "bob", Members: []shared.Member{{Name: "alice"}, {Name: "bob"}}})
	require.Contains(t, html, fmt.Sprintf(en.MembersTitle, 2))
	require.Equal(t, "member own", attrs(t, html, `data-name="bob"`)["class"])
	require.Equal(t, "member", attrs(t, html, `data-name="alice"`)["class"])
	require.True(t, set(attrs(t, html, `class="hint"`), "hidden"))

	alone := render(t, &memberList{Str: en, Self: "bob", Members: []shared.Member{{Name: "bob"}}, Alone: true})
	require.False(t, set(attrs(t, alone, `class="hint"`), "hidden"))
	require.Contains(t, alone, en.NobodyHere)
}

func TestMessageLogLinesOwnAndPending(t *testing.T) {
	es := entries(1, 3, "alice")
	es[1].Author, es[1].ClientMsgID = "bob", "c2"
	es[2].GapBefore = true
	html := render(t, &messageLog{
		Str: zh, Room: "lobby", Self: "bob", Conn: chat.Offline, Entries: es,
		Outbox: []chat.Item{
			{ID: "q1", Text: "queued <b>", State: chat.ItemPending},
			{ID: "f1", Text: "refused", State: chat.ItemFailed, Code: shared.CodeTextTooLong},
		},
	})
	require.Contains(t, html, `aria-label="`+fmt.Sprintf(zh.LogLabel, "lobby")+`"`)
	require.Contains(t, html, `aria-live="polite"`)
	require.Equal(t, 3, strings.Count(html, "data-seq="))
	own := attrs(t, html, `data-seq="2"`)
	require.Equal(t, "msg own", own["class"])
	require.Equal(t, "c2", own["data-client-msg-id"])
	require.Equal(t, "sent", own["data-state"])
	require.Equal(t, "msg", attrs(t, html, `data-seq="1"`)["class"])
	require.Contains(t, html, `data-testid="gap"`, "a gap before message 3")
	// Queued while offline, the refused one with its reason and actions;
	// user text is text, never markup.
	require.Contains(t, html, zh.Queued)
	require.Contains(t, html, "queued &lt;b&gt;")
	require.Contains(t, html, fmt.Sprintf(zh.Failed, zh.ErrorText(shared.CodeTextTooLong)))
	require.Equal(t, 1, strings.Count(html, `data-testid="retry"`))
	require.True(t, set(attrs(t, html, `data-testid="load-older"`), "hidden"))
}

// While the reader is at the newest messages, the first line shown moves
// in steps: new messages add lines at the end, they do not shift every line.
func TestMessageLogWindowMovesInSteps(t *testing.T) {
	l := &messageLog{Str: en}
	l.OnInit()
	for _, newest := range []int{99, 150, 151, 199, 200, 1234} {
		l.Entries = entries(max(1, newest-baseWindow+1), newest, "a")
		shown := l.shown()
		require.Equal(t, uint64(newest), shown[len(shown)-1].Seq)
		first := shown[0].Seq
		require.True(t, len(shown) <= baseWindow && (len(shown) >= anchorKeep || first == 1), "newest %d: %d shown", newest, len(shown))
		require.True(t, first == 1 || (first-1)%anchorStep == 0, "newest %d: the first line %d is on a step", newest, first)
	}
	// Reading back, everything handed over is shown.
	l.pinned = false
	l.Entries = entries(1, 300, "a")
	require.Len(t, l.shown(), 300)
}

func TestComposerDisabledUntilTheRoomRuns(t *testing.T) {
	html := render(t, &composer{Str: en})
	require.True(t, set(attrs(t, html, `data-testid="message"`), "disabled"))
	require.True(t, set(attrs(t, html, `data-testid="send"`), "disabled"))
	require.Contains(t, html, `aria-label="`+en.MessageLabel+`"`)
}

func TestJoinFormStatesAndErrors(t *testing.T) {
	// Before the wasm runs (no env) nothing can be submitted.
	html := render(t, &joinForm{Str: en, Lang: i18n.EN})
	require.True(t, set(attrs(t, html, `data-testid="join"`), "disabled"))
	require.Equal(t, shared.DefaultRoom, attrs(t, html, `data-testid="room"`)["value"])

	// Sent back by the server: its reason shows, with the name kept and
	// the URL's room fixed.
	html = render(t, &joinForm{Str: zh, Lang: i18n.ZH, Room: "dev", Name: "李雷", NeedJoin: shared.CodeNameTaken})
	require.Contains(t, html, zh.ErrorText(shared.CodeNameTaken))
	name := attrs(t, html, `data-testid="name"`)
	require.True(t, set(name, "aria-invalid"))
	require.Equal(t, "李雷", name["value"])
	require.True(t, set(attrs(t, html, `data-testid="room"`), "readonly"))
	require.True(t, set(attrs(t, html, `value="zh-CN"`), "selected"))
}

func TestBannersAndNotices(t *testing.T) {
	html := render(t, &banners{Str: en})
	require.True(t, set(attrs(t, html, `data-testid="update"`), "hidden"))
	require.True(t, set(attrs(t, html, `data-testid="storage"`), "hidden"))
	html = render(t, &banners{Str: en, UpdateReady: true, MemorySession: true})
	require.False(t, set(attrs(t, html, `data-testid="update"`), "hidden"))
	require.False(t, set(attrs(t, html, `data-testid="storage"`), "hidden"))
	require.Contains(t, html, en.SessionNotStored)

	html = render(t, &roomNotices{Str: en, Offline: true, Fatal: shared.CodeInvalidRoom})
	require.Contains(t, html, en.OfflineCached)
	require.False(t, set(attrs(t, html, `data-testid="offline-note"`), "hidden"))
	require.Contains(t, html, en.ErrorText(shared.CodeInvalidRoom))
}

// The prerendered page is the join form, disabled, with "starting" shown:
// what a person sees before the wasm runs.
func TestPagePrerender(t *testing.T) {
	e := app.NewTestEngine()
	p := &page{}
	require.NoError(t, e.Load(p))
	e.ConsumeAll()
	html := app.HTMLString(p)
	require.Equal(t, "false", attrs(t, html, `data-testid="app"`)["data-ready"])
	require.False(t, set(attrs(t, html, `class="starting"`), "hidden"))
	require.Contains(t, html, en.Starting)
	require.True(t, set(attrs(t, html, `data-testid="join"`), "disabled"))
}

// The room's parts get their slice of the View.
func TestRoomViewHandsTheViewToItsParts(t *testing.T) {
	v := chat.View{
		Room: "dev", Conn: chat.Connected, Leader: true, Entries: entries(1, 2, "alice"),
		Members: []shared.Member{{Name: "alice"}, {Name: "bob"}},
	}
	html := render(t, &roomView{Str: en, Lang: i18n.EN, Self: "bob", View: v})
	require.Contains(t, html, `data-state="connected"`)
	require.Contains(t, html, `data-name="alice"`)
	require.Equal(t, 2, strings.Count(html, "data-seq="))
	require.True(t, set(attrs(t, html, `data-testid="offline-note"`), "hidden"))
	require.True(t, set(attrs(t, html, `data-testid="message"`), "disabled"), "no room controller yet")
}

// A room that opens with many messages fills in over a few renders, newest
// first and at most linesPerFrame new lines each; a new message then only
// adds to the last block, and no block moves.
func TestMessageLogFillsInBlocksNewestFirst(t *testing.T) {
	l := &messageLog{Str: en, Room: "lobby"}
	l.OnInit()
	l.Entries = entries(1001, 1150, "a")
	var filled []int
	var blocks []*msgBlock
	for i := 0; i < 50; i++ {
		blocks = l.blocks(l.shown())
		n := 0
		for _, b := range blocks {
			n += len(b.Entries)
		}
		filled = append(filled, n)
		if !l.more {
			break
		}
	}
	require.False(t, l.more)
	for i := 1; i < len(filled); i++ {
		require.LessOrEqual(t, filled[i]-filled[i-1], linesPerFrame, "lines added by render %d: %v", i, filled)
	}
	require.Equal(t, len(l.shown()), filled[len(filled)-1])
	require.Equal(t, uint64(1150), blocks[len(blocks)-1].Entries[len(blocks[len(blocks)-1].Entries)-1].Seq)

	// The first render filled the newest lines.
	l2 := &messageLog{Str: en, Room: "lobby"}
	l2.OnInit()
	l2.Entries = l.Entries
	first := l2.blocks(l2.shown())
	require.NotEmpty(t, first[len(first)-1].Entries)
	require.Empty(t, first[0].Entries)

	// One more message: the same blocks in the same places.
	base := l.base
	l.Entries = entries(1002, 1151, "a")
	after := l.blocks(l.shown())
	require.Equal(t, base, l.base)
	require.Equal(t, blocks[0].Entries, after[0].Entries)
	require.True(t, &blocks[0].Entries[0] == &after[0].Entries[0], "an unchanged block gets the same slice, which go-app compares at once")
	require.Len(t, after, len(blocks), "1151 joins the block of 1150")
	require.Len(t, after[len(after)-1].Entries, 2)
}

// The lesson page before the wasm runs: every hook is there, the controls
// are disabled, the counters are zero.
func TestLessonPrerender(t *testing.T) {
	html := render(t, &lessonPage{})
	require.Equal(t, "false", attrs(t, html, `data-testid="lesson"`)["data-ready"])
	for _, id := range []string{"lesson-send-5", "lesson-send-1", "lesson-text", "lesson-interval"} {
		require.True(t, set(attrs(t, html, `data-testid="`+id+`"`), "disabled"), id)
	}
	for _, m := range []string{"short", "long", "textbook"} {
		a := attrs(t, html, `id="lesson-col-`+m+`"`)
		require.Equal(t, "0", a["data-requests"], m)
		require.Equal(t, "0", a["data-received"], m)
	}
	require.Contains(t, html, en.ExplainLong)
	require.Contains(t, html, `<svg`)
	require.Equal(t, 3, strings.Count(html, `class="lesson-lane"`))
}

// The counters and the timeline follow the Board, in either language.
func TestLessonColumnsAndTimeline(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 30, 0, time.UTC)
	b := lesson.NewBoard("learn-ab12")
	id := b.Send("hi")
	b.Acked(id, now.Add(-10*time.Second))
	r := b.Started(lesson.Long, now.Add(-20*time.Second))
	b.Answered(lesson.Long, r, now.Add(-9900*time.Millisecond), 321, []lesson.Incoming{{Author: "learn-ab12", Text: "hi"}}, false)
	b.Started(lesson.Long, now.Add(-9900*time.Millisecond))
	for i := 0; i < 3; i++ {
		r := b.Started(lesson.Short, now.Add(time.Duration(i-20)*time.Second))
		b.Answered(lesson.Short, r, now.Add(time.Duration(i-20)*time.Second), 50, nil, false)
	}
	html := render(t, &lessonPage{str: zh, lang: i18n.ZH, board: b, now: now, interval: 5})
	long := attrs(t, html, `id="lesson-col-long"`)
	require.Equal(t, "1", long["data-requests"])
	require.Equal(t, "1", long["data-received"])
	require.Equal(t, "100", long["data-delay-avg-ms"])
	require.Equal(t, "100", long["data-delay-max-ms"])
	require.Equal(t, "321", long["data-bytes"])
	short := attrs(t, html, `id="lesson-col-short"`)
	require.Equal(t, "3", short["data-requests"])
	require.Equal(t, "3", short["data-empty"])
	require.Contains(t, html, zh.ModeTextbook)
	require.Contains(t, html, fmt.Sprintf(zh.Millis, 100))
	require.Contains(t, html, fmt.Sprintf(zh.IntervalOption, 5))
	require.True(t, set(attrs(t, html, `value="5"`), "selected"))
	// Long: one answered bar that carried a message, one in flight, one dot.
	g := attrs(t, html, `data-lane="long"`)
	require.Equal(t, "2", g["data-bars"])
	require.Equal(t, "1", g["data-dots"])
	require.Equal(t, 1, strings.Count(html, `class="lesson-bar got"`))
	require.Equal(t, 1, strings.Count(html, `class="lesson-bar inflight"`))
	require.Equal(t, 1, strings.Count(html, `class="lesson-dot"`))
	require.Equal(t, "3", attrs(t, html, `data-lane="short"`)["data-bars"])
}

// Both ways into the lesson: the join screen and the room's header.
func TestLinksToTheLesson(t *testing.T) {
	for _, html := range []string{
		render(t, &joinForm{Str: en, Lang: i18n.EN}),
		render(t, &roomHeader{Str: zh, Room: "dev"}),
	} {
		require.Equal(t, LearnPath, attrs(t, html, `data-testid="learn-link"`)["href"])
	}
	require.Contains(t, render(t, &roomHeader{Str: zh, Room: "dev"}), zh.LessonLink)
}
