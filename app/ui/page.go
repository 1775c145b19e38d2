package ui

import (
	"context"
	"strings"
	"sync/atomic"
	"time"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
	"github.com/parley-chat/parley/app/chat"
	"github.com/parley-chat/parley/app/i18n"
)

// stateLang is the go-app state holding the UI language (an i18n.Lang):
// the language switch sets it, the page observes it.
const stateLang = "parley.lang"

// page is the app's one route component. Its job is the page's lifecycle:
// it wires the browser (storage, tab bus, locks, listeners), follows the
// URL to a room, runs that room's Syncer and hands each View it publishes
// to the room's components. It serves both routes so that switching rooms
// updates it in place, stopping the old room's poll first.
type page struct {
	app.Compo

	mounted bool
	// ctx is the page's own context, from OnMount. Background work
	// dispatches through it: an event handler's context belongs to the
	// element that fired, and go-app drops dispatches for an element that
	// is gone (the join form is, once joined).
	ctx     app.Context
	env     *env
	lang    i18n.Lang
	str     *i18n.Strings
	version string

	self       string // the session's name, "" without a session
	memSession bool   // the session lives in this page's memory only

	room string
	ctl  *roomCtl
	// current is ctl for the browser's event callbacks, which do not run
	// on the UI goroutine.
	current atomic.Pointer[roomCtl]
	view    chat.View
	// conn is the open room's connection state as apply last saw it, and
	// roomUp is set once that room has been connected: the next transition
	// back to connected is a reconnect.
	conn   chat.ConnState
	roomUp bool
	// focusComposer asks for the focus in the composer once the room
	// shows: after joining, the next thing to do is write.
	focusComposer bool

	installable bool
	updateReady bool
	// warming, when not 0, is the step of the hidden sample of the log
	// rendered after the start: see warmUp.
	warming int

	// onLeft and onJoined are the page's callbacks, made once; see
	// callback.
	onLeft   *callback[func(app.Context)]
	onJoined *callback[func(app.Context, string)]

	stopBG   context.CancelFunc
	unlisten []func()
}

// OnPreRender sets what the server-rendered page shows before the wasm
// starts: the right title and language. No I/O here: the server's prerender
// waits for every Async started during it.
func (c *page) OnPreRender(ctx app.Context) {
	c.setLang(ctx, i18n.EN)
	c.room = roomFromPath(ctx.Page().URL().Path)
	c.version = app.Getenv("GOAPP_VERSION")
	c.setTitle(ctx)
}

// OnMount runs in the browser only: it wires the browser's storage, tab
// bus and locks, and starts the room's sync.
func (c *page) OnMount(ctx app.Context) {
	c.mounted = true
	c.ctx = ctx
	bg, cancel := context.WithCancel(context.Background())
	c.stopBG = cancel
	c.env = newBrowserEnv(newPacer(bg))
	c.version = app.Getenv("GOAPP_VERSION")
	c.installable = ctx.IsAppInstallable()

	followLang(ctx, c.env.store, func(l i18n.Lang) { c.setLang(ctx, l) })
	c.readSession()
	c.listen(ctx)

	// v10 no longer looks for a new version by itself; a chat tab stays
	// open for days. Besides this slow tick, the page looks after every
	// reconnect (a deploy restarts the server), when the network comes
	// back and when the tab is shown again.
	ctx.Async(func() { every(bg, 10*time.Minute, checkForUpdate) })
	c.route(ctx)
	ctx.Async(func() { c.warmUp(bg) })
	// Lets tests and the timing report know the wasm has taken over.
	app.Window().Set("parleyReadyAt", app.Window().Get("performance").Call("now"))
}

// every calls f every d until ctx ends.
func every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// followLang sets the saved (or the browser's) language now and whenever
// the language switch changes it, and saves the choice.
func followLang(ctx app.Context, store chat.Storage, set func(i18n.Lang)) {
	lang := i18n.Parse(chat.SavedLang(store))
	if lang == "" {
		lang = i18n.Match(languages())
	}
	set(lang)
	ctx.SetState(stateLang, lang)
	ctx.ObserveState(stateLang, &lang).OnChange(func() {
		set(lang)
		chat.SaveLang(store, string(lang))
	})
}

// warmUp runs, soon after the start and in small steps, the code a room
// needs: V8 compiles each wasm function the first time it runs, on the
// page's one thread, and the first poll answer or burst would otherwise
// pay for compiling the JSON and rendering code in one long task.
func (c *page) warmUp(bg context.Context) {
	pause := func() bool {
		select {
		case <-bg.Done():
			return false
		case <-time.After(20 * time.Millisecond):
			return true
		}
	}
	// Each step takes a turn of the pacer; see pacer.Render.
	if !pause() {
		return
	}
	end := c.env.pace.Begin()
	chat.WarmUp()
	end()
	// Steps 1 to warmUpSteps draw the sample, one more (0) takes it away.
	for i := 1; i <= warmUpSteps+1; i++ {
		if !pause() {
			return
		}
		step := i % (warmUpSteps + 1)
		c.draw(func() { c.warming = step }, bg.Done())
	}
}

// listen wires the browser events the page reacts to.
func (c *page) listen(ctx app.Context) {
	wake := func(app.Context) {
		if c.ctl != nil {
			c.ctl.Wake()
		}
		checkForUpdate()
	}
	doc := app.Window().Get("document")
	c.unlisten = append(c.unlisten,
		// Retry at once when the network returns or the tab is looked at
		// again, instead of sitting out the backoff; both are also moments
		// a new version may have been deployed meanwhile.
		listen(app.Window(), "online", func() { ctx.Dispatch(wake) }),
		listen(doc, "visibilitychange", func() {
			if doc.Get("visibilityState").String() == "visible" {
				ctx.Dispatch(wake)
			}
		}),
		// The page goes away (reload, navigation, closing): write what the
		// room would otherwise cache a moment later. This runs inside the
		// browser's event, before the page is gone.
		listen(app.Window(), "pagehide", func() {
			if ctl := c.current.Load(); ctl != nil {
				ctl.syncer.Flush()
			}
		}),
		// Another tab queued or sent a message: localStorage tells every
		// other tab, independently of the BroadcastChannel message.
		listenEvent(app.Window(), "storage", func(e app.Value) {
			if k := e.Get("key"); k.Type() == app.TypeString && strings.HasPrefix(k.String(), "parley:v1:outbox:") {
				ctx.Dispatch(func(app.Context) {
					if c.ctl != nil {
						c.ctl.syncer.OutboxStored()
					}
				})
			}
		}),
	)
}

// OnNav follows URL changes (links, back and forward) to the room they name.
func (c *page) OnNav(ctx app.Context) {
	if !c.mounted {
		return
	}
	c.route(ctx)
}

// OnDismount stops the sync and every listener: the contexts the loops run
// on are ours, not go-app's, which is never cancelled.
func (c *page) OnDismount() {
	c.stopRoom()
	if c.stopBG != nil {
		c.stopBG()
	}
	for _, f := range c.unlisten {
		f()
	}
	c.unlisten = nil
}

// checkForUpdate asks the browser to fetch the service worker again: a new
// build makes a new worker, which installs the new version in the
// background and then fires OnAppUpdate. It costs one small request.
func checkForUpdate() { app.TryUpdate() }

// OnAppUpdate shows the "new version" banner.
func (c *page) OnAppUpdate(ctx app.Context) { c.updateReady = ctx.AppUpdateAvailable() }

// OnAppInstallChange shows or hides the Install button.
func (c *page) OnAppInstallChange(ctx app.Context) { c.installable = ctx.IsAppInstallable() }

func (c *page) setLang(ctx app.Context, l i18n.Lang) {
	c.lang = l
	c.str = i18n.Get(l)
	ctx.Page().SetLang(string(l))
}

func (c *page) setTitle(ctx app.Context) {
	if c.room != "" {
		ctx.Page().SetTitle("#%s · Parley", c.room)
		return
	}
	ctx.Page().SetTitle("Parley")
}

func (c *page) readSession() {
	sess, ok := c.env.sessions.Get()
	c.self = ""
	if ok {
		c.self = sess.Name
	}
	c.memSession = ok && !c.env.sessions.Stored()
}

// Render draws the page: the banners, then the join form or the room.
func (c *page) Render() app.UI {
	if c.str == nil {
		c.str = i18n.Get(i18n.EN)
	}
	if c.onLeft == nil {
		c.onLeft = &callback[func(app.Context)]{c.left}
		c.onJoined = &callback[func(app.Context, string)]{c.joined}
	}
	s := c.str
	showJoin := c.self == "" || c.room == "" || c.view.NeedJoin != ""
	// go-app diffs children by position: an element that comes and goes
	// in front of the composer would make it be rebuilt, dropping what the
	// user is typing. Such elements are always rendered, and hidden.
	return app.Div().
		Class("parley").
		DataSet("ready", c.mounted).
		DataSet("testid", "app").
		DataSet("version", c.version).
		Body(
			&banners{Str: s, UpdateReady: c.updateReady, MemorySession: c.memSession},
			hiddenIf(app.P().Class("starting").Role("status"), c.mounted).Text(s.Starting),
			app.If(showJoin, func() app.UI {
				return &joinForm{
					Env: c.env, Str: s, Lang: c.lang, Room: c.room, Name: c.self,
					NeedJoin: c.view.NeedJoin, OnJoined: c.onJoined,
				}
			}).Else(func() app.UI {
				return &roomView{
					Env: c.env, Ctl: c.ctl, Str: s, Lang: c.lang, Self: c.self,
					View: c.view, Installable: c.installable, OnLeft: c.onLeft,
				}
			}),
			app.If(c.warming != 0, func() app.UI { return warmUpSample(s, c.warming) }),
		)
}
