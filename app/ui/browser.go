package ui

import (
	"context"
	"sort"
	"strings"
	"sync"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
	"github.com/parley-chat/parley/app/chat"
)

// This file bridges the chat package's Storage, Bus and Locker to the
// browser: localStorage, BroadcastChannel and the Web Locks API. It uses
// go-app's JS values so it compiles into the server too, where it is never
// called (components only start syncing in OnMount, which prerendering does
// not run).

// localStorage implements chat.Storage on window.localStorage. When storage
// is unavailable (disabled by the user, or full) writes fail and reads find
// nothing: the app still works, it only forgets on reload.
type localStorage struct{}

func (localStorage) ls() app.Value { return app.Window().Get("localStorage") }

func (s localStorage) Get(key string) (string, bool) {
	ls := s.ls()
	if !ls.Truthy() {
		return "", false
	}
	v := ls.Call("getItem", key)
	if v.IsNull() || v.IsUndefined() {
		return "", false
	}
	return v.String(), true
}

func (s localStorage) Set(key, value string) (err error) {
	ls := s.ls()
	if !ls.Truthy() {
		return errNoStorage
	}
	// setItem throws QuotaExceededError when full; go-app turns the JS
	// exception into a panic.
	defer func() {
		if r := recover(); r != nil {
			err = errNoStorage
		}
	}()
	ls.Call("setItem", key, value)
	return nil
}

func (s localStorage) Del(key string) {
	if ls := s.ls(); ls.Truthy() {
		ls.Call("removeItem", key)
	}
}

func (s localStorage) Keys(prefix string) []string {
	ls := s.ls()
	if !ls.Truthy() {
		return nil
	}
	var keys []string
	n := ls.Get("length").Int()
	for i := 0; i < n; i++ {
		k := ls.Call("key", i)
		if k.Type() == app.TypeString && strings.HasPrefix(k.String(), prefix) {
			keys = append(keys, k.String())
		}
	}
	sort.Strings(keys)
	return keys
}

type storageError string

func (e storageError) Error() string { return string(e) }

const errNoStorage = storageError("localStorage is not available")

// serialQueue hands items to a function one at a time on its own
// goroutine. JS event callbacks push into it: they must return at once,
// because blocking inside a callback freezes the tab.
type serialQueue struct {
	mu     sync.Mutex
	items  [][]byte
	wake   chan struct{}
	closed chan struct{}
	once   sync.Once
}

func newSerialQueue(fn func([]byte)) *serialQueue {
	q := &serialQueue{wake: make(chan struct{}, 1), closed: make(chan struct{})}
	go func() {
		for {
			select {
			case <-q.closed:
				return
			case <-q.wake:
			}
			for {
				q.mu.Lock()
				if len(q.items) == 0 {
					q.mu.Unlock()
					break
				}
				it := q.items[0]
				q.items = q.items[1:]
				q.mu.Unlock()
				fn(it)
			}
		}
	}()
	return q
}

func (q *serialQueue) push(b []byte) {
	q.mu.Lock()
	q.items = append(q.items, b)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *serialQueue) close() { q.once.Do(func() { close(q.closed) }) }

// broadcastBus implements chat.Bus with BroadcastChannel; without it (old
// browsers) each tab is on its own in-memory bus.
type broadcastBus struct{ fallback *chat.MemBus }

func (b broadcastBus) Open(name string, on func([]byte)) chat.Channel {
	ctor := app.Window().Get("BroadcastChannel")
	if !ctor.Truthy() {
		return b.fallback.Open(name, on)
	}
	c := &bcChannel{bc: ctor.New(name), q: newSerialQueue(on)}
	c.fn = app.FuncOf(func(this app.Value, args []app.Value) any {
		if d := args[0].Get("data"); d.Type() == app.TypeString {
			c.q.push([]byte(d.String()))
		}
		return nil
	})
	c.bc.Set("onmessage", c.fn)
	return c
}

type bcChannel struct {
	bc   app.Value
	fn   app.Func
	q    *serialQueue
	once sync.Once
}

func (c *bcChannel) Post(data []byte) { c.bc.Call("postMessage", string(data)) }

func (c *bcChannel) Close() {
	c.once.Do(func() {
		c.bc.Set("onmessage", nil)
		c.bc.Call("close")
		c.fn.Release()
		c.q.close()
	})
}

// webLocks implements chat.Locker with navigator.locks.request: the lock
// is held while the promise returned by the request's callback is pending,
// and the browser hands it to the next tab when the holder closes, even if
// it crashes. Without the API each tab leads (fallback is per tab).
type webLocks struct{ fallback *chat.MemLocker }

func (l webLocks) Acquire(ctx context.Context, name string) (func(), error) {
	locks := app.Window().Get("navigator").Get("locks")
	if !locks.Truthy() {
		return l.fallback.Acquire(ctx, name)
	}
	var (
		mu        sync.Mutex
		cancelled bool
		resolve   app.Value
	)
	granted := make(chan struct{}, 1)
	cb := app.FuncOf(func(this app.Value, args []app.Value) any {
		exec := app.FuncOf(func(this app.Value, a []app.Value) any {
			mu.Lock()
			resolve = a[0]
			mu.Unlock()
			return nil
		})
		p := app.Window().Get("Promise").New(exec)
		exec.Release()
		mu.Lock()
		gone := cancelled
		mu.Unlock()
		if gone {
			// Granted after the caller gave up: give it back at once.
			resolve.Invoke()
			return p
		}
		granted <- struct{}{}
		return p
	})
	abort := app.Window().Get("AbortController").New()
	opts := map[string]any{"signal": abort.Get("signal")}
	noop := app.FuncOf(func(app.Value, []app.Value) any { return nil })
	// An aborted request rejects its promise; catch it so the console does
	// not fill with "uncaught (in promise) AbortError".
	locks.Call("request", name, opts, cb).Call("catch", noop)

	select {
	case <-granted:
		var once sync.Once
		return func() {
			once.Do(func() {
				mu.Lock()
				r := resolve
				mu.Unlock()
				r.Invoke()
				cb.Release()
				noop.Release()
			})
		}, nil
	case <-ctx.Done():
		mu.Lock()
		cancelled = true
		mu.Unlock()
		abort.Call("abort")
		select {
		case <-granted:
			mu.Lock()
			r := resolve
			mu.Unlock()
			r.Invoke()
		default:
		}
		return nil, ctx.Err()
	}
}

// online reports navigator.onLine.
func online() bool {
	v := app.Window().Get("navigator").Get("onLine")
	return v.Type() != app.TypeBoolean || v.Bool()
}

// languages returns navigator.languages, best first.
func languages() []string {
	nav := app.Window().Get("navigator")
	var out []string
	if ls := nav.Get("languages"); ls.Truthy() {
		for i := 0; i < ls.Length(); i++ {
			out = append(out, ls.Index(i).String())
		}
	}
	if l := nav.Get("language"); len(out) == 0 && l.Type() == app.TypeString {
		out = append(out, l.String())
	}
	return out
}

// listen adds an event listener and returns its removal.
func listen(target app.Value, event string, fn func()) func() {
	return listenEvent(target, event, func(app.Value) { fn() })
}

// listenEvent adds an event listener that sees the event; fn runs inside
// the browser's dispatch, so it may call preventDefault, and must not block.
func listenEvent(target app.Value, event string, fn func(e app.Value)) func() {
	f := app.FuncOf(func(_ app.Value, args []app.Value) any {
		if len(args) > 0 {
			fn(args[0])
		}
		return nil
	})
	target.Call("addEventListener", event, f)
	return func() {
		target.Call("removeEventListener", event, f)
		f.Release()
	}
}
