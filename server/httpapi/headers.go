package httpapi

import "net/http"

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

// The values are shared slices, assigned without Header().Set's key
// canonicalisation and allocation: this runs on every poll.
var (
	cspValue      = []string{ContentSecurityPolicy}
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
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
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
