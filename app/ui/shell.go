package ui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
	"github.com/parley-chat/parley/app/api"
	"github.com/parley-chat/parley/app/chat"
	"github.com/parley-chat/parley/app/i18n"
	"github.com/parley-chat/parley/shared"
)

const (
	// baseWindow is how many messages are rendered while the user reads the
	// newest ones: a burst of a thousand or a long history costs no more DOM
	// than this.
	baseWindow = 150
	// maxWindow bounds the window when the user scrolls back or loads
	// older messages.
	maxWindow = 1500
	olderPage = 50

	idLog      = "log"
	idComposer = "composer"
	idName     = "join-name"
)

// shell is the one page component: the join form, or the room with its
// members, log and composer. It serves both routes so that switching rooms
// updates it in place and the poll of the old room is stopped first.
type shell struct {
	app.Compo

	mounted bool
	// ctx is the component's own context, from OnMount. Background work
	// dispatches through it: an event handler's context belongs to the
	// element that fired, and go-app drops dispatches for an element that
	// is gone (the join form is, once joined).
	ctx    app.Context
	lang   i18n.Lang
	str    *i18n.Strings
	store  chat.Storage
	client *api.Client
	bus    chat.Bus
	locks  chat.Locker

	sess       chat.Session
	hasSession bool

	joinErr string
	joining bool

	room    string
	syncer  *chat.Syncer
	stopRun context.CancelFunc
	view    chat.View
	window  int
	pending atomic.Bool

	draft      string
	composeErr string
	// focusComposer asks startRoom to put the focus in the composer once
	// the room shows: after joining, the next thing to do is write.
	focusComposer bool

	pinned       bool
	unseen       int
	newest       uint64
	loadingOlder bool
	switchTo     string

	installable bool
	updateReady bool
	// version is the build the page runs (go-app's GOAPP_VERSION, a hash
	// of app.wasm), shown as data-version.
	version string
	// conn is the open room's connection state as applyView last saw it,
	// and roomUp is set once that room has been connected: the next
	// transition back to connected is a reconnect.
	conn   chat.ConnState
	roomUp bool

	stopBG   context.CancelFunc
	unlisten []func()
}

// OnPreRender sets what the server-rendered page shows before the wasm
// starts: the right title and language. No I/O here: the server's prerender
// waits for every Async started during it.
func (c *shell) OnPreRender(ctx app.Context) {
	c.setLang(ctx, i18n.EN)
	c.room = roomFromPath(ctx.Page().URL().Path)
	c.version = app.Getenv("GOAPP_VERSION")
	c.setTitle(ctx)
}

// OnMount runs in the browser only: it wires the browser's storage, tab
// bus and locks, and starts the room's sync.
func (c *shell) OnMount(ctx app.Context) {
	c.mounted = true
	c.ctx = ctx
	c.store = localStorage{}
	c.bus = broadcastBus{fallback: chat.NewMemBus()}
	c.locks = webLocks{fallback: chat.NewMemLocker()}
	u := app.Window().URL()
	c.client = &api.Client{Base: u.Scheme + "://" + u.Host}
	c.window = baseWindow
	c.pinned = true

	lang := i18n.Parse(chat.SavedLang(c.store))
	if lang == "" {
		lang = i18n.Match(languages())
	}
	c.setLang(ctx, lang)
	c.sess, c.hasSession = chat.LoadSession(c.store)
	c.installable = ctx.IsAppInstallable()
	c.version = app.Getenv("GOAPP_VERSION")

	wake := func() {
		if c.syncer != nil {
			c.syncer.Wake()
		}
	}
	doc := app.Window().Get("document")
	c.unlisten = append(c.unlisten,
		// go-app runs OnKeyDown handlers later, on its UI goroutine, so their
		// PreventDefault comes after the browser already inserted the
		// newline. This native listener stops Enter (not Shift+Enter, not an
		// IME confirmation) on the composer synchronously.
		listenEvent(doc, "keydown", func(e app.Value) {
			if e.Get("target").Get("id").String() == idComposer && e.Get("key").String() == "Enter" &&
				!e.Get("shiftKey").Bool() && !e.Get("isComposing").Bool() {
				e.Call("preventDefault")
			}
		}),
		// Retry at once when the network returns or the tab is looked at
		// again, instead of sitting out the backoff; both are also moments
		// a new version may have been deployed meanwhile.
		listen(app.Window(), "online", func() {
			ctx.Dispatch(func(app.Context) {
				wake()
				checkForUpdate()
			})
		}),
		// Another tab queued or sent a message: localStorage tells every
		// other tab, independently of the BroadcastChannel message.
		listenEvent(app.Window(), "storage", func(e app.Value) {
			if k := e.Get("key"); k.Type() == app.TypeString && strings.HasPrefix(k.String(), "parley:v1:outbox:") {
				ctx.Dispatch(func(app.Context) {
					if c.syncer != nil {
						c.syncer.OutboxStored()
					}
				})
			}
		}),
		listen(doc, "visibilitychange", func() {
			if doc.Get("visibilityState").String() == "visible" {
				ctx.Dispatch(func(app.Context) {
					wake()
					checkForUpdate()
				})
			}
		}),
	)

	bg, cancel := context.WithCancel(context.Background())
	c.stopBG = cancel
	ctx.Async(func() {
		// v10 no longer looks for a new version by itself; a chat tab stays
		// open for days. Besides this slow tick, the page looks after every
		// reconnect (a deploy restarts the server), when the network comes
		// back and when the tab is shown again.
		t := time.NewTicker(10 * time.Minute)
		defer t.Stop()
		for {
			select {
			case <-bg.Done():
				return
			case <-t.C:
				checkForUpdate()
			}
		}
	})
	c.route(ctx)
	// Lets tests and the timing report know the wasm has taken over.
	app.Window().Set("parleyReadyAt", app.Window().Get("performance").Call("now"))
}

// OnNav follows URL changes (links, back and forward) to the room they name.
func (c *shell) OnNav(ctx app.Context) {
	if !c.mounted {
		return
	}
	c.route(ctx)
}

// OnDismount stops the sync and every listener: the contexts the loops run
// on are ours, not go-app's, which is never cancelled.
func (c *shell) OnDismount() {
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
func (c *shell) OnAppUpdate(ctx app.Context) { c.updateReady = ctx.AppUpdateAvailable() }

// OnAppInstallChange shows or hides the Install button.
func (c *shell) OnAppInstallChange(ctx app.Context) { c.installable = ctx.IsAppInstallable() }

func (c *shell) setLang(ctx app.Context, l i18n.Lang) {
	c.lang = l
	c.str = i18n.Get(l)
	ctx.Page().SetLang(string(l))
}

func (c *shell) setTitle(ctx app.Context) {
	if c.room != "" {
		ctx.Page().SetTitle("#%s · Parley", c.room)
		return
	}
	ctx.Page().SetTitle("Parley")
}

// route starts the room the URL names; "/" goes back to the last room when
// there is a session, so a reload lands where the user was.
func (c *shell) route(ctx app.Context) {
	room := roomFromPath(ctx.Page().URL().Path)
	if room == "" {
		if last := chat.LastRoom(c.store); c.hasSession && last != "" {
			ctx.Navigate(RoomPath(last))
			return
		}
		c.stopRoom()
		c.room = ""
		c.setTitle(ctx)
		return
	}
	c.startRoom(ctx, room)
}

func (c *shell) startRoom(_ app.Context, room string) {
	ctx := c.ctx
	if c.room == room && c.syncer != nil {
		return
	}
	c.stopRoom()
	c.room = room
	c.setTitle(ctx)
	c.view = chat.View{Room: room, Conn: chat.Reconnecting}
	c.conn, c.roomUp = "", false
	c.window, c.pinned, c.unseen, c.newest, c.switchTo = baseWindow, true, 0, 0, ""
	if !c.hasSession {
		return
	}
	chat.SaveLastRoom(c.store, room)
	var s *chat.Syncer
	s = chat.NewSyncer(chat.Config{
		Room: room, API: c.client, Store: c.store, Bus: c.bus, Locks: c.locks,
		Online:   online,
		OnChange: func() { c.viewChanged(ctx, s) },
	})
	runCtx, cancel := context.WithCancel(context.Background())
	c.syncer, c.stopRun = s, cancel
	ctx.Async(func() { s.Run(runCtx) })
	if c.focusComposer {
		c.focusComposer = false
		// After the render that enables it.
		ctx.Defer(func(app.Context) { focus(idComposer) })
	}
}

func (c *shell) stopRoom() {
	if c.stopRun != nil {
		c.stopRun()
	}
	c.syncer, c.stopRun = nil, nil
}

// viewChanged is the Syncer's OnChange, called from its goroutines. Many
// changes in a row make one update: only the first schedules a dispatch.
func (c *shell) viewChanged(ctx app.Context, s *chat.Syncer) {
	if c.pending.Swap(true) {
		return
	}
	ctx.Dispatch(func(ctx app.Context) {
		c.pending.Store(false)
		if c.syncer != s {
			return
		}
		c.applyView(ctx, s.View(c.window))
	})
}

func (c *shell) applyView(ctx app.Context, v chat.View) {
	c.sess, c.hasSession = chat.LoadSession(c.store)
	var newest uint64
	if n := len(v.Entries); n > 0 {
		newest = v.Entries[n-1].Seq
	}
	if newest > c.newest && c.newest != 0 && !c.pinned {
		for _, e := range v.Entries {
			if e.Seq > c.newest {
				c.unseen++
			}
		}
		// Keep what the reader is looking at in place: grow the window
		// instead of sliding it.
		if c.window < maxWindow {
			c.window = min(maxWindow, c.window+int(newest-c.newest))
			v = c.syncer.View(c.window)
		}
	}
	c.newest = newest
	if v.Conn != c.conn {
		if v.Conn == chat.Connected {
			if c.roomUp {
				// Back after an outage: often a restart, possibly a deploy.
				checkForUpdate()
			}
			c.roomUp = true
		}
		c.conn = v.Conn
	}
	c.view = v
	if c.pinned {
		c.ctx.Defer(func(app.Context) { scrollToBottom() })
	}
}

func logElement() app.Value { return app.Window().GetElementByID(idLog) }

func scrollToBottom() {
	if el := logElement(); el.Truthy() {
		el.Set("scrollTop", el.Get("scrollHeight"))
	}
}

func (c *shell) onLogScroll(ctx app.Context, e app.Event) {
	el := ctx.JSSrc()
	atBottom := el.Get("scrollTop").Float()+el.Get("clientHeight").Float() >= el.Get("scrollHeight").Float()-48
	if atBottom == c.pinned {
		ctx.PreventUpdate()
		return
	}
	c.pinned = atBottom
	if atBottom {
		c.unseen = 0
		if c.window > baseWindow && c.syncer != nil {
			c.window = baseWindow
			c.view = c.syncer.View(c.window)
			c.ctx.Defer(func(app.Context) { scrollToBottom() })
		}
	}
}

func (c *shell) jumpToNewest(ctx app.Context, e app.Event) {
	c.pinned, c.unseen = true, 0
	c.window = baseWindow
	if c.syncer != nil {
		c.view = c.syncer.View(c.window)
	}
	c.ctx.Defer(func(app.Context) { scrollToBottom() })
}

func (c *shell) loadOlder(ctx app.Context, e app.Event) {
	if c.syncer == nil || c.loadingOlder {
		return
	}
	c.pinned = false
	keep := keepScrollPosition()
	if c.view.Hidden > 0 {
		c.window = min(maxWindow, c.window+olderPage)
		c.view = c.syncer.View(c.window)
		c.ctx.Defer(func(app.Context) { keep() })
		return
	}
	s := c.syncer
	c.loadingOlder = true
	ctx.Async(func() {
		rctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		n, err := s.LoadOlder(rctx, olderPage)
		c.ctx.Dispatch(func(ctx app.Context) {
			c.loadingOlder = false
			if err != nil || c.syncer != s {
				return
			}
			c.window = min(maxWindow, c.window+n)
			c.view = s.View(c.window)
			c.ctx.Defer(func(app.Context) { keep() })
		})
	})
}

// keepScrollPosition returns a func that, after older messages were added
// above, scrolls so the same messages stay under the reader's eyes.
func keepScrollPosition() func() {
	el := logElement()
	if !el.Truthy() {
		return func() {}
	}
	before := el.Get("scrollHeight").Float() - el.Get("scrollTop").Float()
	return func() {
		el := logElement()
		if el.Truthy() {
			el.Set("scrollTop", el.Get("scrollHeight").Float()-before)
		}
	}
}

// --- joining -------------------------------------------------------------

func inputValue(id string) string {
	el := app.Window().GetElementByID(id)
	if !el.Truthy() {
		return ""
	}
	return el.Get("value").String()
}

func setInputValue(id, v string) {
	if el := app.Window().GetElementByID(id); el.Truthy() {
		// go-app does not clear a field the user typed in when its Value
		// attribute is set again (go-app #1083): set the DOM property.
		el.Set("value", v)
	}
}

func focus(id string) {
	if el := app.Window().GetElementByID(id); el.Truthy() {
		el.Call("focus")
	}
}

func (c *shell) join(ctx app.Context, e app.Event) {
	e.PreventDefault()
	if !c.mounted || c.joining {
		return
	}
	name, err := shared.NormalizeName(inputValue(idName))
	if err != nil {
		c.joinErr = c.str.ErrorText(shared.ErrorCode(err))
		focus(idName)
		return
	}
	room := c.room
	if room == "" {
		room = strings.TrimSpace(inputValue("join-room"))
		if room == "" {
			room = shared.DefaultRoom
		}
	}
	if err := shared.ValidateRoom(room); err != nil {
		c.joinErr = c.str.InvalidRoom
		focus("join-room")
		return
	}
	c.joining, c.joinErr = true, ""
	cl := c.client
	ctx.Async(func() {
		jctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		resp, err := cl.Join(jctx, name)
		c.ctx.Dispatch(func(ctx app.Context) {
			c.joining = false
			if err != nil {
				c.joinErr = c.errorText(err)
				c.ctx.Defer(func(app.Context) { focus(idName) })
				return
			}
			c.sess = chat.Session{Name: resp.Name, Token: resp.Token}
			c.hasSession = true
			_ = chat.SaveSession(c.store, c.sess)
			chat.SaveLastRoom(c.store, room)
			if c.syncer != nil {
				c.syncer.Wake()
			}
			// The join form and its focused button are gone: without this
			// a keyboard user would be left on the page's start.
			c.focusComposer = true
			if c.room != room {
				ctx.Navigate(RoomPath(room))
				return
			}
			c.room = ""
			c.startRoom(ctx, room)
		})
	})
}

func (c *shell) errorText(err error) string {
	if api.IsNetwork(err) || errors.Is(err, context.DeadlineExceeded) {
		return c.str.Unreachable
	}
	return c.str.ErrorText(api.Code(err))
}

func (c *shell) leave(ctx app.Context, e app.Event) {
	token, cl := c.sess.Token, c.client
	chat.ClearSession(c.store)
	c.sess, c.hasSession = chat.Session{}, false
	c.stopRoom()
	ctx.Async(func() {
		lctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// Best effort: an unreachable server ends the session by its TTL.
		_ = cl.Leave(lctx, token)
	})
	c.room = ""
	ctx.Navigate("/")
}

// --- sending ------------------------------------------------------------

func (c *shell) onDraft(ctx app.Context, e app.Event) {
	c.draft = ctx.JSSrc().Get("value").String()
	if c.composeErr != "" {
		c.composeErr = ""
	}
}

func (c *shell) onComposerKey(ctx app.Context, e app.Event) {
	if e.Get("key").String() != "Enter" || e.Get("shiftKey").Bool() || e.Get("isComposing").Bool() {
		// Shift+Enter is a new line; Enter that confirms an IME
		// composition (Chinese input) must not send half a word.
		ctx.PreventUpdate()
		return
	}
	e.PreventDefault()
	c.send(ctx, e)
}

func (c *shell) send(ctx app.Context, e app.Event) {
	if c.syncer == nil {
		return
	}
	text := inputValue(idComposer)
	if _, err := c.syncer.Send(text); err != nil {
		c.composeErr = c.textError(text, err)
		return
	}
	setInputValue(idComposer, "")
	c.draft, c.composeErr = "", ""
	c.pinned, c.unseen = true, 0
	focus(idComposer)
}

func (c *shell) textError(text string, err error) string {
	if shared.ErrorCode(err) == shared.CodeTextTooLong {
		return fmt.Sprintf(c.str.TextTooLong, utf8.RuneCountInString(text), shared.MaxTextRunes)
	}
	return c.str.ErrorText(shared.ErrorCode(err))
}

func (c *shell) retry(id string) app.EventHandler {
	return func(ctx app.Context, e app.Event) {
		if c.syncer != nil {
			c.syncer.Retry(id)
		}
	}
}

func (c *shell) discard(id string) app.EventHandler {
	return func(ctx app.Context, e app.Event) {
		if c.syncer != nil {
			c.syncer.Discard(id)
		}
	}
}

// --- header actions -----------------------------------------------------

func (c *shell) switchRoom(ctx app.Context, e app.Event) {
	e.PreventDefault()
	room := strings.ToLower(strings.TrimSpace(inputValue("switch-room")))
	if shared.ValidateRoom(room) != nil {
		c.switchTo = c.str.InvalidRoom
		return
	}
	c.switchTo = ""
	setInputValue("switch-room", "")
	ctx.Navigate(RoomPath(room))
}

func (c *shell) changeLang(ctx app.Context, e app.Event) {
	l := i18n.Parse(ctx.JSSrc().Get("value").String())
	if l == "" {
		return
	}
	c.setLang(ctx, l)
	chat.SaveLang(c.store, string(l))
}

func (c *shell) install(ctx app.Context, e app.Event) { ctx.ShowAppInstallPrompt() }

func (c *shell) reload(ctx app.Context, e app.Event) { ctx.Reload() }
