package ui

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
	"github.com/parley-chat/parley/app/api"
	"github.com/parley-chat/parley/app/chat"
	"github.com/parley-chat/parley/app/i18n"
	"github.com/parley-chat/parley/app/lesson"
	"github.com/parley-chat/parley/shared"
)

// LearnPath is the lesson page's path.
const LearnPath = "/learn"

const (
	idLessonText     = "lesson-text"
	idLessonInterval = "lesson-interval"
	// burstGap is the pause between the messages of "Send 5 messages".
	burstGap = 700 * time.Millisecond
)

// intervals are the short polling client's choices, in seconds.
var intervals = []int{1, 2, 5}

// lessonPage is /learn: three clients (short polling, long polling, the
// textbook's /get_msg/) receive the same messages side by side, with their
// counters and a timeline. The clients, the matching of messages and the
// timeline's geometry are in package lesson; see there why they all read
// lobby.
type lessonPage struct {
	app.Compo

	mounted bool
	ctx     app.Context
	lang    i18n.Lang
	str     *i18n.Strings

	board   *lesson.Board
	clients *lesson.Clients
	// interval is the short polling interval in seconds; the client reads
	// it from its own goroutine, through the UI goroutine's dispatch.
	interval int
	// period is interval for the client's goroutine.
	period atomic.Int64
	now    time.Time
	err    string

	// bg is the page's own context: go-app's is never cancelled, and the
	// clients' polls must end when the page goes.
	bg   context.Context
	stop context.CancelFunc
}

func newLesson() app.Composer { return &lessonPage{} }

// OnPreRender sets the title and language of the server's rendering; no
// I/O here.
func (c *lessonPage) OnPreRender(ctx app.Context) {
	if c.lang == "" {
		c.lang = i18n.EN
	}
	c.setLang(ctx, c.lang)
}

// OnMount starts the three clients; they run until OnDismount.
func (c *lessonPage) OnMount(ctx app.Context) {
	c.mounted = true
	c.ctx = ctx
	followLang(ctx, chat.NewFallbackStorage(localStorage{}), func(l i18n.Lang) { c.setLang(ctx, l) })

	c.interval = 2
	c.now = time.Now()
	// A name of its own: the textbook client's cursor and the author of
	// the page's messages.
	name := "learn-" + api.Nonce()[:6]
	c.board = lesson.NewBoard(name)
	u := app.Window().URL()
	c.period.Store(int64(2 * time.Second))
	c.clients = &lesson.Clients{
		Base:     u.Scheme + "://" + u.Host,
		Name:     name,
		Interval: func() time.Duration { return time.Duration(c.period.Load()) },
		Apply: func(f func(*lesson.Board)) {
			ctx.Dispatch(func(app.Context) {
				f(c.board)
				c.now = time.Now()
			})
		},
	}
	// A room and a session of its own, so that nothing the page does shows
	// up in anybody's chat.
	c.clients.Room = "learn-" + api.Nonce()[:10]
	c.bg, c.stop = context.WithCancel(context.Background())
	bg, cl := c.bg, c.clients
	ctx.Async(func() {
		token, ok := lessonSession(bg, cl.Base, name)
		if !ok {
			return // the page was left first
		}
		// Set before the clients start: the send buttons wait until all
		// three are ready, which they report after this.
		cl.Token = token
		go cl.RunShort(bg)
		go cl.RunLong(bg)
		cl.RunTextbook(bg)
	})
	// The time axis moves on even when nothing happens.
	ctx.Async(func() {
		every(bg, 500*time.Millisecond, func() {
			ctx.Dispatch(func(app.Context) {
				c.now = time.Now()
				c.board.Prune(c.now)
			})
		})
	})
}

// lessonSession joins as name, retrying until it works or bg ends; the page
// sends its messages with this session. It ends the session when bg ends.
func lessonSession(bg context.Context, base, name string) (string, bool) {
	cl := &api.Client{Base: base}
	for {
		s, err := cl.Join(bg, name)
		if err == nil {
			go func() {
				<-bg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = cl.Leave(ctx, s.Token)
			}()
			return s.Token, true
		}
		if !lesson.Sleep(bg, time.Second) {
			return "", false
		}
	}
}

// OnDismount stops the clients: cancelling aborts their requests, and the
// service worker lets the abort through (see PatchServiceWorker), so the
// server releases the held polls at once.
func (c *lessonPage) OnDismount() {
	if c.stop != nil {
		c.stop()
	}
}

func (c *lessonPage) setLang(ctx app.Context, l i18n.Lang) {
	c.lang = l
	c.str = i18n.Get(l)
	ctx.Page().SetLang(string(l))
	ctx.Page().SetTitle("%s · Parley", c.str.LessonLink)
}

func (c *lessonPage) ready() bool { return c.mounted && c.board != nil && c.board.AllReady() }

// post sends text (the page's next message when auto) from a goroutine.
func (c *lessonPage) post(bg context.Context, text string, auto bool) {
	type msg struct {
		id   int
		text string
	}
	ch := make(chan msg, 1)
	c.ctx.Dispatch(func(app.Context) {
		t := text
		if auto {
			t = fmt.Sprintf(c.str.LessonAuto, c.board.NextID(), c.board.Name)
		}
		ch <- msg{c.board.Send(t), t}
	})
	var m msg
	select {
	case m = <-ch:
	case <-bg.Done():
		return
	}
	if err := c.clients.Post(bg, m.id, m.text); err != nil && bg.Err() == nil {
		c.ctx.Dispatch(func(app.Context) { c.err = c.errorText(err) })
	}
}

func (c *lessonPage) errorText(err error) string {
	if api.IsNetwork(err) {
		return c.str.Unreachable
	}
	return c.str.ErrorText(api.Code(err))
}

func (c *lessonPage) send5(ctx app.Context, e app.Event) {
	if !c.ready() {
		return
	}
	c.err = ""
	bg := c.bg
	ctx.Async(func() {
		for i := 0; i < 5; i++ {
			if i > 0 {
				select {
				case <-bg.Done():
					return
				case <-time.After(burstGap):
				}
			}
			c.post(bg, "", true)
		}
	})
}

func (c *lessonPage) send1(ctx app.Context, e app.Event) {
	if !c.ready() {
		return
	}
	c.err = ""
	bg := c.bg
	ctx.Async(func() { c.post(bg, "", true) })
}

func (c *lessonPage) sendTyped(ctx app.Context, e app.Event) {
	e.PreventDefault()
	if !c.ready() {
		return
	}
	text, err := shared.NormalizeText(inputValue(idLessonText))
	if err != nil {
		c.err = c.str.ErrorText(shared.ErrorCode(err))
		return
	}
	c.err = ""
	setInputValue(idLessonText, "")
	bg := c.bg
	ctx.Async(func() { c.post(bg, text, false) })
}

func (c *lessonPage) changeInterval(ctx app.Context, e app.Event) {
	n, err := strconv.Atoi(ctx.JSSrc().Get("value").String())
	if err != nil || n <= 0 {
		return
	}
	c.interval = n
	c.period.Store(int64(time.Duration(n) * time.Second))
}

// Render draws the page.
func (c *lessonPage) Render() app.UI {
	if c.str == nil {
		c.str = i18n.Get(i18n.EN)
	}
	if c.board == nil {
		c.board = lesson.NewBoard("")
	}
	if c.interval == 0 {
		c.interval = 2
	}
	s := c.str
	ready := c.ready()
	return app.Main().Class("lesson").DataSet("testid", "lesson").DataSet("ready", ready).Body(
		app.Header().Class("lesson-head").Body(
			app.H1().Text(s.LessonTitle),
			app.Div().Class("actions").Body(
				&langSwitch{Str: s, Lang: c.lang, Enabled: c.mounted},
				app.A().Href("/").DataSet("testid", "lesson-back").Text(s.LessonBack),
			),
		),
		app.P().Text(s.LessonIntro),
		app.P().Class("lesson-note").Text(s.LessonLobby),
		app.Div().Class("lesson-controls").Body(
			disabledIf(app.Button().Type("button").DataSet("testid", "lesson-send-5"), !ready).Text(s.Send5).OnClick(c.send5),
			disabledIf(app.Button().Type("button").DataSet("testid", "lesson-send-1"), !ready).Text(s.Send1).OnClick(c.send1),
			app.Form().Class("lesson-own").OnSubmit(c.sendTyped).Body(
				app.Label().For(idLessonText).Class("sr-only").Text(s.LessonText),
				disabledIf(app.Input().ID(idLessonText).Type("text").DataSet("testid", "lesson-text").
					Placeholder(s.LessonText).MaxLength(shared.MaxTextRunes), !ready),
				disabledIf(app.Button().Type("submit").DataSet("testid", "lesson-send-text"), !ready).Text(s.SendButton),
			),
			app.P().Class("lesson-status").Role("status").Text(pick(c.mounted && !ready, s.LessonStarting, "")),
			app.P().Class("error").Role("alert").DataSet("testid", "lesson-error").Text(c.err),
		),
		app.Div().Class("lesson-cols").Body(
			c.column(lesson.Short),
			c.column(lesson.Long),
			c.column(lesson.Textbook),
		),
		timeline(s, lesson.Layout(c.board, c.now)),
	)
}

// modeText is a client's name, what it does, and its name on the timeline.
func modeText(s *i18n.Strings, m lesson.Mode) (title, explain, lane string) {
	switch m {
	case lesson.Short:
		return s.ModeShort, s.ExplainShort, s.LaneShort
	case lesson.Long:
		return s.ModeLong, s.ExplainLong, s.LaneLong
	}
	return s.ModeTextbook, s.ExplainTextbook, s.LaneTextbook
}

// column is one client: what it is, then its counters, kept in data-*
// attributes as well for tests.
func (c *lessonPage) column(m lesson.Mode) app.UI {
	s := c.str
	col := c.board.Columns[m]
	head := "lesson-h-" + string(m)
	title, explain, _ := modeText(s, m)
	delay := func(d time.Duration) string {
		if col.Delayed == 0 {
			return "—"
		}
		return fmt.Sprintf(s.Millis, d.Milliseconds())
	}
	stat := func(name, value string) app.UI {
		return app.Div().Body(app.Dt().Text(name), app.Dd().Text(value))
	}
	return app.Section().
		ID("lesson-col-"+string(m)).
		Class("lesson-col").
		Aria("labelledby", head).
		DataSet("testid", "lesson-client").
		DataSet("mode", string(m)).
		DataSet("requests", col.Requests).
		DataSet("empty", col.Empty).
		DataSet("received", col.Received).
		DataSet("duplicates", col.Duplicates).
		DataSet("other", col.Other).
		DataSet("errors", col.Errors).
		DataSet("bytes", col.Bytes).
		DataSet("delay-avg-ms", col.DelayAvg().Milliseconds()).
		DataSet("delay-max-ms", col.DelayMax.Milliseconds()).
		Body(
			app.H2().ID(head).Text(title),
			app.P().Class("lesson-explain").Text(explain),
			app.If(m == lesson.Short, func() app.UI {
				return app.Div().Class("lesson-interval").Body(
					app.Label().For(idLessonInterval).Text(s.IntervalLabel),
					disabledIf(app.Select().ID(idLessonInterval).DataSet("testid", "lesson-interval"),
						!c.mounted).OnChange(c.changeInterval).
						Body(app.Range(intervals).Slice(func(i int) app.UI {
							n := intervals[i]
							return selectedIf(app.Option().Value(strconv.Itoa(n)), n == c.interval).Text(fmt.Sprintf(s.IntervalOption, n))
						})),
				)
			}),
			app.Dl().Class("lesson-stats").Body(
				stat(s.StatRequests, strconv.Itoa(col.Requests)),
				stat(s.StatEmpty, strconv.Itoa(col.Empty)),
				stat(s.StatReceived, strconv.Itoa(col.Received)),
				stat(s.StatDelayAvg, delay(col.DelayAvg())),
				stat(s.StatDelayMax, delay(col.DelayMax)),
				stat(s.StatBytes, strconv.FormatInt(col.Bytes, 10)),
				stat(s.StatOther, strconv.Itoa(col.Other)),
			),
		)
}

const svgNS = "http://www.w3.org/2000/svg"

func svg(tag string) app.HTMLElem { return app.Elem(tag).XMLNS(svgNS) }

func num(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

// timeline draws tl: a lane per client, a bar per request, a dot per
// arrival, the time axis under them.
func timeline(s *i18n.Strings, tl lesson.Timeline) app.UI {
	var kids []app.UI
	kids = append(kids,
		svg("title").ID("lesson-tl-title").Text(s.TimelineTitle),
		svg("desc").ID("lesson-tl-desc").Text(s.TimelineDesc),
	)
	axisY := tl.Height - lesson.AxisHeight
	for _, t := range tl.Ticks {
		label := fmt.Sprintf(s.TickAgo, t.Ago)
		if t.Ago == 0 {
			label = s.TickNow
		}
		kids = append(kids,
			svg("line").Class("lesson-tick").Attr("x1", num(t.X)).Attr("x2", num(t.X)).Attr("y1", "0").Attr("y2", num(axisY+4)),
			svg("text").Class("lesson-tick-label").Attr("x", num(t.X)).Attr("y", num(tl.Height-4)).
				Attr("text-anchor", pick(t.Ago == 0, "end", "middle")).Text(label),
		)
	}
	for _, l := range tl.Lanes {
		var lane []app.UI
		_, _, name := modeText(s, l.Mode)
		lane = append(lane,
			svg("rect").Class("lesson-lane").Attr("x", num(lesson.Gutter)).Attr("y", num(l.Y)).
				Attr("width", num(tl.Width-lesson.Gutter)).Attr("height", num(l.H)),
			svg("text").Class("lesson-lane-label").Attr("x", "0").Attr("y", num(l.LabelY)).Text(name),
		)
		for _, r := range l.Bars {
			cls := "lesson-bar"
			switch {
			case r.Failed:
				cls += " failed"
			case r.InFlight:
				cls += " inflight"
			case r.Got:
				cls += " got"
			}
			lane = append(lane, svg("rect").Class(cls).
				Attr("x", num(r.X)).Attr("y", num(r.Y)).Attr("width", num(r.W)).Attr("height", num(r.H)))
		}
		for _, d := range l.Dots {
			lane = append(lane, svg("circle").Class("lesson-dot").
				Attr("cx", num(d.CX)).Attr("cy", num(d.CY)).Attr("r", num(d.R)))
		}
		kids = append(kids, svg("g").DataSet("lane", string(l.Mode)).
			DataSet("bars", len(l.Bars)).DataSet("dots", len(l.Dots)).Body(lane...))
	}
	return app.Figure().Class("lesson-timeline").Body(
		svg("svg").
			DataSet("testid", "lesson-timeline").
			Attr("viewBox", fmt.Sprintf("0 0 %s %s", num(tl.Width), num(tl.Height))).
			Attr("role", "img").
			Aria("labelledby", "lesson-tl-title").
			Aria("describedby", "lesson-tl-desc").
			Body(kids...),
		app.FigCaption().Text(s.TimelineTitle),
	)
}
