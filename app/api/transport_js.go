//go:build js && wasm

package api

import (
	"context"
	"errors"
	"fmt"
	"syscall/js"
)

// roundTrip sends one request with the browser's Fetch API, directly. In
// js/wasm, calling net/http's client links its whole transport (HTTP/1,
// HTTP/2, TLS) into app.wasm: 5 MB of the 13 MB, downloaded and compiled
// at every cold start for a fallback the browser never takes. The context
// aborts the fetch, while waiting for the headers and the body alike.
func (c *Client) roundTrip(ctx context.Context, url string, r request) (rawResponse, error) {
	headers := map[string]any{"Accept": "application/json"}
	if r.body != nil {
		headers["Content-Type"] = "application/json"
	}
	if r.token != "" {
		headers["Authorization"] = "Bearer " + r.token
	}
	abort := js.Global().Get("AbortController").New()
	// Same-origin credentials (the default, said out loud): the textbook
	// endpoints tie a cursor to the browser with a cookie.
	opts := map[string]any{"method": r.method, "headers": headers, "signal": abort.Get("signal"), "credentials": "same-origin"}
	if r.body != nil {
		opts["body"] = string(r.body)
	}
	if r.noRedirect {
		// The answer is then an "opaqueredirect" with status 0.
		opts["redirect"] = "manual"
	}
	if err := ctx.Err(); err != nil {
		return rawResponse{}, err
	}
	resp, err := await(ctx, abort, js.Global().Call("fetch", url, opts))
	if err != nil {
		return rawResponse{}, err
	}
	var out rawResponse
	out.status = resp.Get("status").Int()
	if ra := resp.Get("headers").Call("get", "Retry-After"); ra.Type() == js.TypeString {
		out.retryAfter = ra.String()
	}
	if n := resp.Get("headers").Call("get", "Content-Length"); n.Type() == js.TypeString && len(n.String()) > 9 {
		abort.Call("abort")
		return rawResponse{}, fmt.Errorf("answer of %s bytes is too long", n.String())
	}
	buf, err := await(ctx, abort, resp.Call("arrayBuffer"))
	if err != nil {
		return rawResponse{}, err
	}
	arr := js.Global().Get("Uint8Array").New(buf)
	n := arr.Get("length").Int()
	if n > maxBody {
		return rawResponse{}, fmt.Errorf("answer of %d bytes is too long", n)
	}
	out.body = make([]byte, n)
	js.CopyBytesToGo(out.body, arr)
	return out, nil
}

// await waits for a promise, or aborts the request when ctx ends first.
func await(ctx context.Context, abort, promise js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1)
	then := js.FuncOf(func(_ js.Value, args []js.Value) any {
		ch <- result{v: args[0]}
		return nil
	})
	catch := js.FuncOf(func(_ js.Value, args []js.Value) any {
		msg := "fetch failed"
		if len(args) > 0 && args[0].Truthy() {
			msg = args[0].Call("toString").String()
		}
		ch <- result{err: errors.New(msg)}
		return nil
	})
	defer then.Release()
	defer catch.Release()
	promise.Call("then", then, catch)
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		abort.Call("abort")
		// The promise settles (rejected) after the abort; wait for it so
		// the callbacks are not released while still referenced.
		<-ch
		return js.Value{}, ctx.Err()
	}
}
