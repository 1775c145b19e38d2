package ui

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// loaderPatch is the change to go-app's app.js: its loader wraps the
// app.wasm response in new Response(new ReadableStream(...)) to count the
// bytes, and such a response, made in JavaScript, has no URL: Chromium's
// cache of compiled WebAssembly (keyed by the response's URL) never hits,
// and every start compiles the whole module again. parleyFetchWasm hands
// instantiateStreaming the real response (from the network or the service
// worker's cache) and counts the bytes on a clone. The clone's body is
// decoded, so the total is the uncompressed size (WasmContentLength) under
// br and gzip too.
var loaderPatch = struct{ old, new, fn string }{
	old: `fetchWithProgress("/web/app.wasm", showProgress)`,
	new: `parleyFetchWasm("/web/app.wasm", showProgress)`,
	fn: `
// Parley: hand WebAssembly the real response, so that Chromium can reuse
// the compiled module from its code cache; count progress on a clone.
async function parleyFetchWasm(url, progress) {
  const response = await fetch(url);
  let total = parseInt(goappWasmContentLength, 10);
  if (!(total > 0)) {
    total = parseInt(response.headers.get("Content-Length"), 10);
  }
  if (response.body && total > 0) {
    const reader = response.clone().body.getReader();
    let loaded = 0;
    (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) {
          progress(100);
          return;
        }
        loaded += value.byteLength;
        progress(Math.min(100, Math.round((loaded * 100) / total)));
      }
    })().catch(() => {});
  }
  return response;
}
`,
}

// LoaderMarker is a string only the patched app.js contains.
const LoaderMarker = "parleyFetchWasm"

// PatchAppJS returns go-app's app.js (as served) with the loader handing
// the real app.wasm response to WebAssembly.instantiateStreaming, or an
// error when go-app's loader no longer has the call this replaces.
func PatchAppJS(js string) (string, error) {
	if n := strings.Count(js, loaderPatch.old); n != 1 {
		return "", fmt.Errorf("app.js patch: found the wasm fetch %d times in go-app's app.js, want 1", n)
	}
	return strings.Replace(js, loaderPatch.old, loaderPatch.new, 1) + loaderPatch.fn, nil
}

// patchedAppJS serves go-app's /app.js with PatchAppJS applied.
type patchedAppJS struct{ h http.Handler }

func (p patchedAppJS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	p.h.ServeHTTP(rec, r)
	body := rec.body.String()
	if rec.status == http.StatusOK {
		patched, err := PatchAppJS(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		body = patched
	}
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.Header().Del("Content-Length")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rec.status)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, body)
	}
}

// recorder keeps what a handler writes.
type recorder struct {
	header http.Header
	status int
	body   strings.Builder
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(status int)      { r.status = status }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
