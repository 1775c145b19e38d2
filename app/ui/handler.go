// Package ui is the go-app user interface of Parley. It compiles twice: to
// web/app.wasm for the browser and into the server, which prerenders pages and
// serves the app shell through Handler.
package ui

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

// Options configures Handler.
type Options struct {
	// WebDir is the directory holding app.wasm and the static assets.
	WebDir string
	// Logger receives the handler's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Static assets the app shell lists; the service worker pre-caches each of
// them with the all-or-nothing cache.addAll, so every one must exist
// (TestEveryCachedResourceAnswers200 checks).
const (
	iconSVG      = "/web/icon.svg"
	icon192      = "/web/icon-192.png"
	icon512      = "/web/icon-512.png"
	iconMaskable = "/web/icon-maskable-512.png"
	styleSheet   = "/web/parley.css"
)

// Handler serves the app at "/" and "/r/{room}", and its assets under
// "/web/". The API lives on its own paths beside it. app.wasm is served
// precompressed (app.wasm.br, app.wasm.gz) when those files are present, at
// least as new as app.wasm and readable now. An app.wasm that is present
// but cannot be read is an error: it gives the version and serves every
// browser that takes neither encoding.
func Handler(o Options) (http.Handler, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	dir := o.WebDir
	if dir == "" {
		dir = "web"
	}
	worker, err := PatchServiceWorker(app.DefaultAppWorkerJS)
	if err != nil {
		return nil, err
	}
	wasm, err := loadWasm(dir, log)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		// The API still works without the UI; say how to get it.
		log.Warn("web/app.wasm is missing: the UI will not start; run `make wasm`", "dir", dir)
	} else {
		log.Info("serving app.wasm", "version", wasm.version, "bytes", wasm.size, "encodings", wasm.encodings())
	}

	Routes()
	h := &app.Handler{
		Name:            "Parley",
		ShortName:       "Parley",
		Title:           "Parley",
		Description:     "Group chat delivered by HTTP long polling.",
		Author:          "Parley",
		Lang:            "en",
		BackgroundColor: "#f4f1ea",
		ThemeColor:      "#1f6f5c",
		LoadingLabel:    "Parley {progress}%",
		Icon: app.Icon{
			Default:  icon192,
			Large:    icon512,
			Maskable: iconMaskable,
			SVG:      iconSVG,
		},
		Styles:                []string{styleSheet},
		Scripts:               []string{BootPath},
		Resources:             staticDir{dir: dir},
		Version:               wasm.version,
		WasmContentLength:     strconv.FormatInt(wasm.size, 10),
		ServiceWorkerTemplate: worker,
	}
	if wasm.size == 0 {
		h.Version = "no-wasm"
		h.WasmContentLength = ""
	}

	mux := http.NewServeMux()
	mux.Handle("/web/app.wasm", wasm)
	mux.Handle("/app.js", patchedAppJS{h})
	mux.HandleFunc(BootPath, serveBoot)
	mux.Handle("/", h)
	return mux, nil
}

// staticDir serves /web/... from a directory anywhere on disk, while the
// URLs in the page stay /web/...: app.LocalDir(dir) would put dir itself
// into every URL.
type staticDir struct{ dir string }

// Resolve maps a resource to its URL, the way app.LocalDir("") does.
func (s staticDir) Resolve(location string) string {
	if location == "" || location == "/" {
		return "/"
	}
	if strings.HasPrefix(location, "http://") || strings.HasPrefix(location, "https://") {
		return location
	}
	if location == "web" || location == "/web" || strings.HasPrefix(location, "web/") || strings.HasPrefix(location, "/web/") {
		return "/" + strings.Trim(location, "/")
	}
	return location
}

// ServeHTTP serves files under /web/ from dir, without directory listings.
func (s staticDir) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rel, ok := strings.CutPrefix(path.Clean(r.URL.Path), "/web/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	f := filepath.Join(s.dir, filepath.FromSlash(rel))
	st, err := os.Stat(f)
	if err != nil || st.IsDir() {
		http.NotFound(w, r)
		return
	}
	http.ServeFile(w, r, f)
}

// wasmFile serves app.wasm, precompressed when it can.
type wasmFile struct {
	dir     string
	size    int64
	version string
	br, gz  bool
}

func loadWasm(dir string, log *slog.Logger) (*wasmFile, error) {
	p := filepath.Join(dir, "app.wasm")
	f, err := os.Open(p)
	if err != nil {
		return &wasmFile{dir: dir}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return &wasmFile{dir: dir}, err
	}
	hash := sha256.New()
	if _, err := io.Copy(hash, f); err != nil {
		return &wasmFile{dir: dir}, err
	}
	w := &wasmFile{
		dir:  dir,
		size: st.Size(),
		// The version is the content: a restart or another replica with the
		// same build is not an "update", a new build always is.
		version: hex.EncodeToString(hash.Sum(nil))[:16],
	}
	// A compressed copy older than app.wasm is from an earlier build;
	// serving it would run old code under the new version.
	fresh := func(name string) bool {
		cst, err := os.Stat(filepath.Join(dir, name))
		return err == nil && !cst.ModTime().Before(st.ModTime())
	}
	// A copy that is there but cannot be read (written 0600 by another
	// user, say) would answer 500 to every browser that takes its
	// encoding: found now, it is left out and said once.
	usable := func(name string) bool {
		if !fresh(name) {
			return false
		}
		if err := readable(filepath.Join(dir, name)); err != nil {
			log.Warn("precompressed app.wasm cannot be read: not served", "file", name, "err", err)
			return false
		}
		return true
	}
	w.br, w.gz = usable("app.wasm.br"), usable("app.wasm.gz")
	return w, nil
}

// readable opens p and reads its first byte, which also fails for a
// directory in a file's place.
func readable(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Read(make([]byte, 1)); err != nil {
		return err
	}
	return nil
}

func (w *wasmFile) encodings() []string {
	var e []string
	if w.br {
		e = append(e, "br")
	}
	if w.gz {
		e = append(e, "gzip")
	}
	return e
}

// ServeHTTP serves GET/HEAD /web/app.wasm.
func (w *wasmFile) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		rw.Header().Set("Allow", "GET, HEAD")
		http.Error(rw, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if w.size == 0 {
		http.Error(rw, "app.wasm is not built: run `make wasm`", http.StatusNotFound)
		return
	}
	f, enc, err := w.open(r.Header.Get("Accept-Encoding"))
	if err != nil {
		http.Error(rw, "app.wasm is unavailable", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	h := rw.Header()
	h.Set("Content-Type", "application/wasm")
	h.Set("Vary", "Accept-Encoding")
	// The URL is not versioned, so caches must revalidate; the ETag makes
	// that a 304 until the next build. The service worker keeps its own
	// copy for offline starts.
	h.Set("Cache-Control", "no-cache")
	etag := w.version
	if enc != "" {
		h.Set("Content-Encoding", enc)
		etag += "-" + enc
	}
	h.Set("ETag", `"`+etag+`"`)
	// ServeContent handles If-None-Match and ranges, and sets
	// Content-Length to the encoded size.
	http.ServeContent(rw, r, "", time.Time{}, f)
}

// open opens the best copy the client accepts, falling back to the next
// encoding when one cannot be opened (changed on disk since the start).
func (w *wasmFile) open(accept string) (f *os.File, enc string, err error) {
	for _, c := range []struct {
		ok        bool
		name, enc string
	}{
		{w.br && acceptsEncoding(accept, "br"), "app.wasm.br", "br"},
		{w.gz && acceptsEncoding(accept, "gzip"), "app.wasm.gz", "gzip"},
		{true, "app.wasm", ""},
	} {
		if !c.ok {
			continue
		}
		if f, err = os.Open(filepath.Join(w.dir, c.name)); err == nil {
			return f, c.enc, nil
		}
	}
	return nil, "", err
}

// acceptsEncoding reports whether an Accept-Encoding header allows coding:
// listed (or "*") with a q-value above zero.
func acceptsEncoding(header, coding string) bool {
	star := false
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		switch name {
		case coding:
			return q > 0
		case "*":
			star = q > 0
		}
	}
	return star
}

// Patches to go-app's default service worker. Each must apply exactly once;
// PatchServiceWorker fails otherwise, so a go-app upgrade that changes the
// template is caught by the tests instead of silently shipping the default.
var workerPatches = []struct{ name, old, new string }{
	{
		name: "install waits for the cache",
		// The default worker caches in an async listener without
		// event.waitUntil: the worker activates before the shell is cached,
		// and a failed cache.addAll leaves it installed with nothing offline.
		old: `self.addEventListener("install", async (event) => {
  try {
    console.log("installing app worker {{.Version}}");
    await installWorker();
    await self.skipWaiting();
  } catch (error) {
    console.error("error during installation:", error);
  }
});`,
		new: `self.addEventListener("install", (event) => {
  console.log("installing app worker {{.Version}}");
  event.waitUntil(installWorker().then(() => self.skipWaiting()));
});`,
	},
	{
		name: "fetch bypasses the API and serves navigations offline",
		old: `self.addEventListener("fetch", (event) => {
  event.respondWith(fetchWithCache(event.request));
});`,
		new: `// Parley: API calls and the textbook's endpoints go straight to the
// network. A worker in the middle does not pass the page's abort on, so a
// cancelled long poll would hold one of the browser's six connections for
// its whole wait, and nothing of the API may be answered from a cache.
const parleyBypass = ["/api/", "/send_msg/", "/get_msg/", "/home/", "/healthz"];

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (url.origin !== self.location.origin || event.request.method !== "GET") {
    return;
  }
  if (parleyBypass.some((p) => url.pathname === p || url.pathname.startsWith(p))) {
    return;
  }
  if (event.request.mode === "navigate") {
    event.respondWith(parleyNavigate(event.request));
    return;
  }
  event.respondWith(parleyFromCache(event.request));
});

// Each worker answers from its own version's cache only. go-app's
// fetchWithCache asks every cache, oldest first: an update becomes active
// (and the page offers to reload) before the previous version's cache is
// deleted, and a reload in between would start the old app.js and
// app.wasm under the new worker.
async function parleyFromCache(request) {
  const cache = await caches.open(cacheName);
  return (await cache.match(request)) || fetch(request);
}

// Pages come from the network when it answers (fresh prerender) and
// otherwise from the cached shell: only "/" is pre-cached, and the app
// routes /r/{room} itself once loaded, so a deep link opens offline too.
async function parleyNavigate(request) {
  try {
    return await fetch(request);
  } catch (err) {
    const cache = await caches.open(cacheName);
    const shell = (await cache.match(request)) || (await cache.match("/"));
    if (shell) {
      return shell;
    }
    throw err;
  }
}`,
	},
}

// WorkerMarker is a string only the patched service worker contains.
const WorkerMarker = "parleyNavigate"

// PatchServiceWorker returns go-app's worker template with Parley's
// changes, or an error naming the patch that no longer applies.
func PatchServiceWorker(tmpl string) (string, error) {
	for _, p := range workerPatches {
		if n := strings.Count(tmpl, p.old); n != 1 {
			return "", fmt.Errorf("service worker patch %q: found %d times in go-app's template, want 1", p.name, n)
		}
		tmpl = strings.Replace(tmpl, p.old, p.new, 1)
	}
	return tmpl, nil
}
