package ui

import (
	"context"
	"time"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
	"github.com/parley-chat/parley/app/api"
	"github.com/parley-chat/parley/app/chat"
)

// env is what the page wires once, in the browser, and hands down to its
// components: a stable pointer, so passing it as a property costs go-app
// one pointer comparison per render. It is nil during the server's
// prerender, where nothing may do I/O.
type env struct {
	// store is localStorage with a memory fallback for what it refuses;
	// the session has its own owner over the bare localStorage, so it
	// knows when it was not stored.
	store    chat.Storage
	sessions *chat.Sessions
	client   *api.Client
	bus      chat.Bus
	locks    chat.Locker
	// pace spreads costly steps over browser tasks; see pacer.
	pace *pacer
}

func newBrowserEnv(pace *pacer) *env {
	locks := webLocks{fallback: chat.NewMemLocker()}
	u := app.Window().URL()
	return &env{
		store:    chat.NewFallbackStorage(localStorage{}),
		sessions: chat.NewSessions(localStorage{}, locks),
		client:   &api.Client{Base: u.Scheme + "://" + u.Host},
		bus:      broadcastBus{fallback: chat.NewMemBus()},
		locks:    locks,
		pace:     pace,
	}
}

// roomCtl is one open room as the room's components act on it: what they
// may ask of its Syncer. A new room gets a new roomCtl, so a component
// holding the old one never acts on the new room.
type roomCtl struct {
	room   string
	syncer *chat.Syncer
	stop   context.CancelFunc
	// done is closed once stop was called.
	done <-chan struct{}
}

// startRoom starts syncing room; views arrive on ctl.syncer.Updates().
func (e *env) startRoom(room string, window int) *roomCtl {
	s := chat.NewSyncer(chat.Config{
		Room: room, API: e.client, Store: e.store, Sessions: e.sessions, Bus: e.bus, Locks: e.locks,
		Online: online, Window: window, Yield: e.pace.Wait,
	})
	ctx, cancel := context.WithCancel(context.Background())
	go s.Run(ctx)
	return &roomCtl{room: room, syncer: s, stop: cancel, done: ctx.Done()}
}

// Send queues text; the error is a *shared.Error when the text is refused.
func (c *roomCtl) Send(text string) error {
	_, err := c.syncer.Send(text)
	return err
}

func (c *roomCtl) Retry(id string)   { c.syncer.Retry(id) }
func (c *roomCtl) Discard(id string) { c.syncer.Discard(id) }
func (c *roomCtl) Wake()             { c.syncer.Wake() }

// SetWindow asks for views of the newest n entries.
func (c *roomCtl) SetWindow(n int) { c.syncer.SetWindow(n) }

// LoadOlder fetches a page of older history from the server.
func (c *roomCtl) LoadOlder(n int) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return c.syncer.LoadOlder(ctx, n)
}
