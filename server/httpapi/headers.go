package httpapi

import (
	"net/http"
	"strings"
)

// ContentSecurityPolicy is sent with every answer. The go-app page loads
// only same-origin files (wasm_exec.js, app.js, app.css, the manifest, the
// service worker app-worker.js, /web/…) and has no inline script, style
// attribute or event handler, so nothing needs 'unsafe-inline';
// 'wasm-unsafe-eval' lets app.js compile app.wasm and nothing else.
// TestSecurityHeadersOnTheRealUI reads the real page to keep this true.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; " +
	"style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; " +
	"worker-src 'self'; manifest-src 'self'; object-src 'none'; base-uri 'none'; " +
	"form-action 'self'; frame-ancestors 'none'"

// APIContentSecurityPolicy is sent instead with answers under /api/: JSON
// that no browser should render, run or frame. Nothing may load from it
// and nothing may frame it (OWASP's REST guidance). It is a fifth the size
// of the page's: a poll's answer is mostly its head, written once per
// waiting browser per message, and parsed again by every one of them.
const APIContentSecurityPolicy = "default-src 'none'; frame-ancestors 'none'; sandbox"

// The values are shared slices, assigned without Header().Set's key
// canonicalisation and allocation: this runs on every poll.
var (
	cspValue      = []string{ContentSecurityPolicy}
	apiCSPValue   = []string{APIContentSecurityPolicy}
	nosniffValue  = []string{"nosniff"}
	noRefValue    = []string{"no-referrer"}
	denyValue     = []string{"DENY"}
	sameOrigValue = []string{"same-origin"}
	// Two years, the preload list's minimum; sent only over TLS, where the
	// browser can trust it (RFC 6797 §7.2).
	hstsValue = []string{"max-age=63072000; includeSubDomains"}
)

// securityHeaders sets the browser-side protections on every answer, API
// and UI alike, before any handler runs, so errors carry them too: a strict
// CSP, no MIME sniffing (a JSON answer never runs as a script), no Referer
// (room names in URLs stay here), no framing (clickjacking), a separate
// browsing context group from other sites' windows, and HSTS under TLS.
// API answers are never documents: their policy forbids everything, which
// covers framing, referrers and opener for them in one header.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if strings.HasPrefix(r.URL.Path, "/api/") {
			h["Content-Security-Policy"] = apiCSPValue
			h["X-Content-Type-Options"] = nosniffValue
			if r.TLS != nil {
				h["Strict-Transport-Security"] = hstsValue
			}
			next.ServeHTTP(w, r)
			return
		}
		h["Content-Security-Policy"] = cspValue
		h["X-Content-Type-Options"] = nosniffValue
		h["Referrer-Policy"] = noRefValue
		h["X-Frame-Options"] = denyValue
		h["Cross-Origin-Opener-Policy"] = sameOrigValue
		if r.TLS != nil {
			h["Strict-Transport-Security"] = hstsValue
		}
		next.ServeHTTP(w, r)
	})
}
