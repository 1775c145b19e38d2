package ui

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// BootPath is the page's classic script (bootJS). go-app's loader asks
// for app.wasm only from app.js, a deferred script: it runs once the whole
// document is parsed, after every classic script. An async boot script
// lost that race whenever the scripts arrived together (seen: from the
// service worker, and on a busy main thread), and then did nothing; a
// classic one always runs first. It is 1.6 KB from the same origin as the
// render-blocking style sheet.
const BootPath = "/web/parley-boot.js"

// bootJS fetches and compiles app.wasm as early as the page can, with
// WebAssembly.compileStreaming on the real response (from the network or
// the service worker): Chromium's cache of compiled WebAssembly is keyed
// by the response's URL and never hits for a response made in JavaScript,
// such as the ReadableStream go-app's loader wraps app.wasm in to count
// progress. Progress is counted here on a clone; its body is decoded, so
// the total is the uncompressed size (WasmContentLength) under br and gzip
// too. A preload
// <link> would start the fetch as early, but the response it hands to
// fetch() comes from the memory cache without the handle V8's module cache
// needs (seen: no moduleCacheHit in the trace).
const bootJS = `"use strict";
// Parley: start fetching and compiling app.wasm while the page is parsed.
// go-app's loader (app.js, patched) instantiates what this compiled.
(() => {
  if (typeof WebAssembly !== "object" || !WebAssembly.compileStreaming) {
    return;
  }
  // go-app's loader does not load the wasm for these; neither does this.
  if (/bot|googlebot|crawler|spider|robot|crawling/i.test(navigator.userAgent) ||
      new URLSearchParams(location.search).get("wasm") === "false") {
    return;
  }
  // Another copy of this script already started it.
  if (window.parleyWasm) {
    return;
  }
  const state = { loaded: 0, total: 0, listener: null };
  const report = () => {
    if (state.listener && state.total > 0) {
      state.listener(Math.min(100, Math.round((state.loaded * 100) / state.total)));
    }
  };
  const response = fetch("/web/app.wasm");
  const module = response.then((r) => {
    if (!r.ok) {
      throw new Error("app.wasm: " + r.status);
    }
    if (r.body) {
      const reader = r.clone().body.getReader();
      (async () => {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) {
            state.loaded = state.total;
            report();
            return;
          }
          state.loaded += value.byteLength;
          report();
        }
      })().catch(() => {});
    }
    return WebAssembly.compileStreaming(r);
  });
  // An early failure is handled by the loader, which fetches again.
  module.catch(() => {});
  window.parleyWasm = {
    module,
    // total is the uncompressed size, which the loader knows.
    onProgress(f, total) {
      state.listener = f;
      state.total = total;
      report();
    },
  };
})();
`

// loaderPatches are the changes to go-app's app.js (as served).
var loaderPatches = []struct{ name, old, new string }{
	{
		name: "the wasm comes from the boot script, not a wrapped response",
		old: `instantiateStreaming(
      fetchWithProgress("/web/app.wasm", showProgress),
      go.importObject
    )`,
		new: `parleyInstantiate("/web/app.wasm", go, showProgress)`,
	},
	{
		// The start benchmark splits the time after the fetch into V8's
		// compile and Go's start at this point.
		name: "the moment the module is instantiated is kept",
		old:  `    go.run(wasm.instance);`,
		new: `    window.parleyInstantiatedAt = performance.now();
    go.run(wasm.instance);`,
	},
}

// parleyInstantiate fetches app.wasm itself, still handing WebAssembly the
// real response, when the boot script has not run yet (it then does
// nothing) or its start failed.
const parleyInstantiate = `
// Parley: instantiate the module bootJS compiled (see app/ui/loader.go).
async function parleyInstantiate(url, go, progress) {
  const total = parseInt(goappWasmContentLength, 10) || 0;
  const early = window.parleyWasm;
  if (early) {
    early.onProgress(progress, total);
    try {
      const module = await early.module;
      return { instance: await WebAssembly.instantiate(module, go.importObject) };
    } catch (err) {
      console.error("early app.wasm start failed, fetching again:", err);
    }
  }
  window.parleyWasm = window.parleyWasm || { own: true };
  const response = await fetch(url);
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
  return await WebAssembly.instantiateStreaming(response, go.importObject);
}
`

// LoaderMarker is a string only the patched app.js contains.
const LoaderMarker = "parleyInstantiate"

// PatchAppJS returns go-app's app.js (as served) with the loader taking
// the module the boot script compiled, or an error when go-app's loader no
// longer has the code this replaces.
func PatchAppJS(js string) (string, error) {
	for _, p := range loaderPatches {
		if n := strings.Count(js, p.old); n != 1 {
			return "", fmt.Errorf("app.js patch %q: found %d times in go-app's app.js, want 1", p.name, n)
		}
		js = strings.Replace(js, p.old, p.new, 1)
	}
	return js + parleyInstantiate, nil
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

// serveBoot serves bootJS; like go-app's own scripts it is revalidated on
// every load and cached by the service worker for offline starts.
func serveBoot(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Length", strconv.Itoa(len(bootJS)))
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, bootJS)
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
