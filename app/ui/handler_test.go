package ui_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/maxence-charriere/go-app/v10/pkg/app"
	"github.com/parley-chat/parley/app/ui"
	"github.com/stretchr/testify/require"
)

// fakeWasm is not a real module: these tests check serving, not running.
var fakeWasm = bytes.Repeat([]byte("\x00asm parley "), 5000)

// webDir copies the real assets of web/ and adds an app.wasm with its
// compressed copies, so the handler is tested against what ships.
func webDir(t *testing.T, compressed bool) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir("../../web")
	require.NoError(t, err)
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), "app.wasm") {
			continue
		}
		b, err := os.ReadFile(filepath.Join("../../web", e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "app.wasm"), fakeWasm, 0o644))
	if compressed {
		var gz, br bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		_, _ = zw.Write(fakeWasm)
		require.NoError(t, zw.Close())
		bw := brotli.NewWriterLevel(&br, 5)
		_, _ = bw.Write(fakeWasm)
		require.NoError(t, bw.Close())
		require.NoError(t, os.WriteFile(filepath.Join(dir, "app.wasm.gz"), gz.Bytes(), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "app.wasm.br"), br.Bytes(), 0o644))
	}
	return dir
}

func newServer(t *testing.T, dir string) *httptest.Server {
	t.Helper()
	h, err := ui.Handler(ui.Options{WebDir: dir})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	// A bare transport: the default one would ask for gzip and decode it.
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

func TestServiceWorkerPatchApplies(t *testing.T) {
	patched, err := ui.PatchServiceWorker(app.DefaultAppWorkerJS)
	require.NoError(t, err)
	require.Contains(t, patched, ui.WorkerMarker)
	require.Contains(t, patched, `"/api/"`)
	require.Contains(t, patched, "event.waitUntil(installWorker()")
	require.Contains(t, patched, "event.respondWith(parleyFromCache(event.request))", "assets come from this version's cache only")
	require.NotContains(t, patched, "(event) => {\n  event.respondWith(fetchWithCache(event.request));", "the default fetch listener is replaced")

	_, err = ui.PatchServiceWorker(strings.Replace(app.DefaultAppWorkerJS, `self.addEventListener("fetch"`, `self.addEventListener( "fetch"`, 1))
	require.Error(t, err, "a template the patch no longer matches must be an error, not the default worker")

	// And the worker the browser downloads is the patched one.
	srv := newServer(t, webDir(t, true))
	resp, body := get(t, srv.URL+"/app-worker.js")
	require.Equal(t, 200, resp.StatusCode)
	require.Contains(t, string(body), ui.WorkerMarker)
	for _, p := range []string{"/api/", "/send_msg/", "/get_msg/", "/home/", "/healthz"} {
		require.Contains(t, string(body), `"`+p+`"`)
	}
}

// The worker pre-caches with cache.addAll, which fails as a whole on one
// bad URL and leaves the app without an offline shell.
func TestEveryCachedResourceAnswers200(t *testing.T) {
	srv := newServer(t, webDir(t, true))
	_, body := get(t, srv.URL+"/app-worker.js")
	m := regexp.MustCompile(`const resourcesToCache = (\[.*?\]);`).FindSubmatch(body)
	require.NotNil(t, m, "resourcesToCache in the worker")
	var urls []string
	require.NoError(t, json.Unmarshal(m[1], &urls))
	require.Contains(t, urls, "/web/app.wasm")
	require.Contains(t, urls, "/web/icon-512.png")
	require.Contains(t, urls, "/web/parley.css")
	for _, u := range urls {
		require.True(t, strings.HasPrefix(u, "/"), "%s must be local: the app must not depend on another host", u)
		resp, _ := get(t, srv.URL+u, "Accept-Encoding", "br, gzip")
		require.Equal(t, 200, resp.StatusCode, u)
	}
}

func TestManifest(t *testing.T) {
	srv := newServer(t, webDir(t, true))
	resp, body := get(t, srv.URL+"/manifest.webmanifest")
	require.Equal(t, 200, resp.StatusCode)
	var m struct {
		Name, ShortName, Description, StartURL, Display, ThemeColor, BackgroundColor string
		Icons                                                                        []struct{ Src, Sizes, Purpose, Type string }
	}
	require.NoError(t, json.Unmarshal(bytes.ReplaceAll(bytes.ReplaceAll(body, []byte("short_name"), []byte("ShortName")), []byte("theme_color"), []byte("ThemeColor")), &m))
	require.Equal(t, "Parley", m.Name)
	require.Equal(t, "Parley", m.ShortName)
	require.NotEmpty(t, m.Description)
	require.Equal(t, "standalone", m.Display)
	require.Equal(t, "#1f6f5c", m.ThemeColor)
	sizes := map[string]bool{}
	maskable := false
	for _, ic := range m.Icons {
		require.True(t, strings.HasPrefix(ic.Src, "/web/"), "local icon: %s", ic.Src)
		r, b := get(t, srv.URL+ic.Src)
		require.Equal(t, 200, r.StatusCode, ic.Src)
		if ic.Type == "image/png" {
			require.True(t, bytes.HasPrefix(b, []byte("\x89PNG")), ic.Src)
		}
		sizes[ic.Sizes] = true
		maskable = maskable || ic.Purpose == "maskable"
	}
	require.True(t, sizes["192x192"] && sizes["512x512"] && maskable, "icons: %+v", m.Icons)
}

func TestWasmPrecompressed(t *testing.T) {
	srv := newServer(t, webDir(t, true))
	for _, tc := range []struct{ accept, enc string }{
		{"gzip, deflate, br, zstd", "br"},
		{"gzip", "gzip"},
		{"br;q=0, gzip;q=0.5", "gzip"},
		{"identity", ""},
		{"", ""},
		{"*", "br"},
	} {
		resp, body := get(t, srv.URL+"/web/app.wasm", "Accept-Encoding", tc.accept)
		require.Equal(t, 200, resp.StatusCode, tc.accept)
		require.Equal(t, "application/wasm", resp.Header.Get("Content-Type"), tc.accept)
		require.Equal(t, tc.enc, resp.Header.Get("Content-Encoding"), tc.accept)
		require.Contains(t, resp.Header.Get("Vary"), "Accept-Encoding")
		require.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
		var raw []byte
		switch tc.enc {
		case "br":
			raw, _ = io.ReadAll(brotli.NewReader(bytes.NewReader(body)))
		case "gzip":
			zr, err := gzip.NewReader(bytes.NewReader(body))
			require.NoError(t, err)
			raw, _ = io.ReadAll(zr)
		default:
			raw = body
		}
		require.Equal(t, fakeWasm, raw, tc.accept)
		if tc.enc != "" {
			require.Less(t, len(body), len(fakeWasm))
		}
		// Revalidation is a 304 until the next build.
		r2, _ := get(t, srv.URL+"/web/app.wasm", "Accept-Encoding", tc.accept, "If-None-Match", resp.Header.Get("ETag"))
		require.Equal(t, http.StatusNotModified, r2.StatusCode, tc.accept)
	}
}

func TestStaleCompressedCopiesAreNotServed(t *testing.T) {
	dir := webDir(t, true)
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(filepath.Join(dir, "app.wasm.br"), old, old))
	srv := newServer(t, dir)
	resp, _ := get(t, srv.URL+"/web/app.wasm", "Accept-Encoding", "br, gzip")
	require.Equal(t, "gzip", resp.Header.Get("Content-Encoding"), "a .br older than app.wasm is from another build")
}

func TestWithoutCompressedCopiesServesRaw(t *testing.T) {
	srv := newServer(t, webDir(t, false))
	resp, body := get(t, srv.URL+"/web/app.wasm", "Accept-Encoding", "br, gzip")
	require.Equal(t, 200, resp.StatusCode)
	require.Empty(t, resp.Header.Get("Content-Encoding"))
	require.Equal(t, fakeWasm, body)
}

func TestPagesAndVersion(t *testing.T) {
	dir := webDir(t, true)
	srv := newServer(t, dir)
	resp, body := get(t, srv.URL+"/")
	require.Equal(t, 200, resp.StatusCode)
	require.Contains(t, string(body), `data-testid="app"`)
	require.Contains(t, string(body), "Starting…", "the prerendered page says the app is starting")

	resp, body = get(t, srv.URL+"/r/dev-team")
	require.Equal(t, 200, resp.StatusCode)
	require.Contains(t, string(body), "<title>#dev-team · Parley</title>")

	// The lesson page is a route of its own, prerendered with its hooks.
	resp, body = get(t, srv.URL+"/learn")
	require.Equal(t, 200, resp.StatusCode)
	require.Contains(t, string(body), "<title>How it works · Parley</title>")
	require.Contains(t, string(body), `data-testid="lesson"`)
	require.Equal(t, 3, strings.Count(string(body), `data-testid="lesson-client"`))

	resp, _ = get(t, srv.URL+"/r/Not_Valid!")
	require.Equal(t, 404, resp.StatusCode)
	resp, _ = get(t, srv.URL+"/web/")
	require.Equal(t, 404, resp.StatusCode, "no directory listings")

	// The version is the wasm's content: the same build gives the same
	// version after a restart, a new build a new one.
	_, js1 := get(t, srv.URL+"/app.js")
	srv2 := newServer(t, dir)
	_, js2 := get(t, srv2.URL+"/app.js")
	require.Equal(t, version(t, js1), version(t, js2))
	require.Contains(t, string(js1), `const goappWasmContentLength = "60000"`)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "app.wasm"), append(fakeWasm, 1), 0o644))
	srv3 := newServer(t, dir)
	_, js3 := get(t, srv3.URL+"/app.js")
	require.NotEqual(t, version(t, js1), version(t, js3))
}

func version(t *testing.T, appJS []byte) string {
	t.Helper()
	m := regexp.MustCompile(`"GOAPP_VERSION":"([^"]+)"`).FindSubmatch(appJS)
	require.NotNil(t, m)
	return string(m[1])
}

// The loader hands WebAssembly the real app.wasm response (so Chromium can
// reuse compiled code) and counts progress on a clone.
func TestAppJSLoaderPatch(t *testing.T) {
	srv := newServer(t, webDir(t, true))
	resp, js := get(t, srv.URL+"/app.js")
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, strconv.Itoa(len(js)), resp.Header.Get("Content-Length"))
	s := string(js)
	require.Contains(t, s, ui.LoaderMarker+`("/web/app.wasm", go, showProgress)`)
	require.NotContains(t, s, `fetchWithProgress("/web/app.wasm"`, "go-app's wrapping fetch is not called")
	require.Contains(t, s, `const goappWasmContentLength = "60000"`, "progress counts the uncompressed size")
	require.Contains(t, s, `const total = parseInt(goappWasmContentLength, 10)`)
	require.Contains(t, s, `early.onProgress(progress, total)`)
	require.Contains(t, s, "response.clone().body.getReader()", "without the boot script, progress is counted on a clone")
	require.Contains(t, s, "window.parleyInstantiatedAt = performance.now();\n    go.run(wasm.instance);")

	// The boot script is in the page, a classic script (it runs as soon
	// as it is here, before the deferred app.js), and compiles the real
	// response while counting progress on a clone.
	_, page := get(t, srv.URL+"/")
	require.Regexp(t, `<script src="`+regexp.QuoteMeta(ui.BootPath)+`">`, string(page))
	resp, boot := get(t, srv.URL+ui.BootPath)
	require.Equal(t, 200, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "javascript")
	require.Contains(t, string(boot), `WebAssembly.compileStreaming(r)`)
	require.Contains(t, string(boot), `r.clone().body.getReader()`)

	_, err := ui.PatchAppJS("no loader here")
	require.Error(t, err)
	_, err = ui.PatchAppJS(app.DefaultAppWorkerJS)
	require.Error(t, err)
}

// unreadable puts something that cannot be read where name was: a file
// with mode 0000 when not root, and a directory under root (which reads
// any file); both pass the Stat that finds a fresh copy.
func unreadable(t *testing.T, dir, name string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if os.Geteuid() != 0 {
		require.NoError(t, os.Chmod(p, 0))
		return
	}
	require.NoError(t, os.Remove(p))
	require.NoError(t, os.Mkdir(p, 0o755))
}

func TestUnreadableCompressedCopyFallsBackToTheNext(t *testing.T) {
	dir := webDir(t, true)
	unreadable(t, dir, "app.wasm.br")
	var logs bytes.Buffer
	h, err := ui.Handler(ui.Options{WebDir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()
	for range 3 {
		resp, body := get(t, srv.URL+"/web/app.wasm", "Accept-Encoding", "br, gzip")
		require.Equal(t, 200, resp.StatusCode)
		require.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
		zr, err := gzip.NewReader(bytes.NewReader(body))
		require.NoError(t, err)
		raw, _ := io.ReadAll(zr)
		require.Equal(t, fakeWasm, raw)
	}
	resp, _ := get(t, srv.URL+"/web/app.wasm", "Accept-Encoding", "br")
	require.Empty(t, resp.Header.Get("Content-Encoding"), "no usable br: the raw file")
	require.Equal(t, 1, strings.Count(logs.String(), "cannot be read"), "said once, at the start: %s", logs.String())

	unreadable(t, dir, "app.wasm.gz")
	srv2 := newServer(t, dir)
	resp, body := get(t, srv2.URL+"/web/app.wasm", "Accept-Encoding", "br, gzip")
	require.Equal(t, 200, resp.StatusCode)
	require.Empty(t, resp.Header.Get("Content-Encoding"))
	require.Equal(t, fakeWasm, body)
}

func TestUnreadableWasmIsAStartupError(t *testing.T) {
	dir := webDir(t, true)
	unreadable(t, dir, "app.wasm")
	_, err := ui.Handler(ui.Options{WebDir: dir})
	require.Error(t, err, "every encoding's source is unreadable: refuse to start")
}
