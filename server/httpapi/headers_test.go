package httpapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/app/ui"
	"github.com/parley-chat/parley/server/httpapi"
)

// withRealUI serves the go-app handler that ships, so the page the policy
// must allow is the real one.
func withRealUI(t *testing.T) option {
	uiHandler, err := ui.Handler(ui.Options{WebDir: "../../web", Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	return func(s *settings) { s.ui = uiHandler }
}

func requireSecurityHeaders(t *testing.T, what string, h http.Header) {
	t.Helper()
	if strings.HasPrefix(what, "/api/") {
		// JSON: nothing may load from it, run in it or frame it.
		require.Equal(t, httpapi.APIContentSecurityPolicy, h.Get("Content-Security-Policy"), what)
		require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"), what)
		return
	}
	require.Equal(t, httpapi.ContentSecurityPolicy, h.Get("Content-Security-Policy"), what)
	require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"), what)
	require.Equal(t, "no-referrer", h.Get("Referrer-Policy"), what)
	require.Equal(t, "DENY", h.Get("X-Frame-Options"), what)
	require.Equal(t, "same-origin", h.Get("Cross-Origin-Opener-Policy"), what)
}

// TestSecurityHeadersOnTheRealUI: issue 8 found no CSP, nosniff, framing
// or Referrer-Policy on any answer. Every answer (page, scripts, manifest,
// worker, assets, API, errors) now carries them, and the page loads nothing
// the policy would block.
func TestSecurityHeadersOnTheRealUI(t *testing.T) {
	t.Parallel()
	h := newHarness(t, withRealUI(t))
	csp := httpapi.ContentSecurityPolicy
	for _, d := range []string{"script-src 'self' 'wasm-unsafe-eval'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "default-src 'self'"} {
		require.Contains(t, csp, d)
	}
	require.NotContains(t, csp, "unsafe-inline")
	require.NotContains(t, csp, "'unsafe-eval'")

	page := h.do("GET", "/", "", "", "")
	require.Equal(t, http.StatusOK, page.status)
	requireSecurityHeaders(t, "page", page.header)
	html := string(page.body)
	require.Empty(t, page.header.Get("Strict-Transport-Security"), "no HSTS over plain HTTP")

	// What the policy must let through: every script is a same-origin file,
	// no inline script, no style attribute or element, no event handler.
	scripts := regexp.MustCompile(`<script\b[^>]*>`).FindAllString(html, -1)
	require.NotEmpty(t, scripts)
	for _, s := range scripts {
		src := regexp.MustCompile(`src="([^"]*)"`).FindStringSubmatch(s)
		require.NotNil(t, src, "inline script %s would need 'unsafe-inline'", s)
		require.True(t, strings.HasPrefix(src[1], "/"), "script %s is not same-origin", s)
	}
	require.NotRegexp(t, `<script\b[^>]*>[^<]+</script>`, html, "inline script body")
	require.NotRegexp(t, `\sstyle=`, html, "style attributes would need 'unsafe-inline'")
	require.NotRegexp(t, `<style\b`, html, "style elements would need 'unsafe-inline'")
	require.NotRegexp(t, `\son[a-z]+=`, html, "event handler attributes")
	for _, ref := range regexp.MustCompile(`(?:href|src)="([^"]*)"`).FindAllStringSubmatch(html, -1) {
		require.True(t, strings.HasPrefix(ref[1], "/"), "%s is not same-origin", ref[1])
		r := h.do("GET", ref[1], "", "", "")
		require.Equal(t, http.StatusOK, r.status, ref[1])
		requireSecurityHeaders(t, ref[1], r.header)
	}
	for _, p := range []string{"/app-worker.js", "/manifest.webmanifest", "/app.js", "/wasm_exec.js"} {
		r := h.do("GET", p, "", "", "")
		require.Equal(t, http.StatusOK, r.status, p)
		requireSecurityHeaders(t, p, r.header)
		require.NotContains(t, string(r.body), "eval(", p)
	}

	// API answers and errors too, including the parked poll and 403s.
	for _, c := range []struct{ method, path, ctype, body string }{
		{"GET", "/healthz", "", ""},
		{"GET", "/api/rooms/lobby/messages?wait=0", "", ""},
		{"GET", "/api/nope", "", ""},
		{"POST", "/api/session", formType, "name=%E2%80%8B"},
		{"POST", "/send_msg/", formType, "content=hi"},
	} {
		r := h.do(c.method, c.path, "", c.ctype, c.body)
		requireSecurityHeaders(t, c.path, r.header)
	}
	r := h.doHeader(context.Background(), http.Header{"Origin": {"https://evil.example"}}, "POST", "/api/session", "", formType, "name=x")
	require.Equal(t, http.StatusForbidden, r.status)
	requireSecurityHeaders(t, "/api/session 403", r.header)
	r = h.doHeader(context.Background(), http.Header{"Origin": {"https://evil.example"}}, "POST", "/send_msg/", "", formType, "content=x")
	require.Equal(t, http.StatusForbidden, r.status)
	requireSecurityHeaders(t, "/send_msg/ 403", r.header)
}

func TestHSTSOnlyUnderTLS(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(s *settings) { s.tls = true })
	for _, p := range []string{"/", "/api/rooms/lobby/messages?wait=0", "/healthz"} {
		resp, err := h.client.Get(h.url + p)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Contains(t, resp.Header.Get("Strict-Transport-Security"), "max-age=", p)
		requireSecurityHeaders(t, p, resp.Header)
	}
}
