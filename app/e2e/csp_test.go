package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestNoCSPViolations runs the app under the server's Content-Security-Policy
// (script-src 'self' 'wasm-unsafe-eval', no inline anything) through loading,
// joining, sending and receiving, and requires that the browser
// reported no violation: the policy is strict and the wasm app still runs.
func TestNoCSPViolations(t *testing.T) {
	srv := startServer(t)
	resp, err := http.Get(srv.URL + "/")
	require.NoError(t, err)
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	require.Contains(t, csp, "script-src 'self' 'wasm-unsafe-eval'")
	require.NotContains(t, csp, "unsafe-inline")

	b := newBrowser(t)
	tb := b.firstTab("alice")
	tb.initScript(`window.parleyCSP = [];
document.addEventListener('securitypolicyviolation', e => parleyCSP.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sample || '')));`)
	tb.enterLobby(srv.URL, "alice")
	tb.send("under a strict policy")
	tb.waitText("under a strict policy", 10*time.Second)
	srv.legacySend(t, "teacher", "from the textbook")
	tb.waitText("from the textbook", 10*time.Second)
	violations := eval[[]string](tb, `parleyCSP`)
	require.Empty(t, violations, "CSP violations:\n%s\nconsole:\n%s", strings.Join(violations, "\n"), tb.console.String())

	// The listener does hear violations: an inline script is one.
	eval[bool](tb, `(() => { const s = document.createElement('script'); s.textContent = 'window.parleyInline = 1'; document.head.appendChild(s); return true })()`)
	tb.waitFor("the inline script's violation", `parleyCSP.length === 1 && parleyCSP[0].startsWith('script-src') && !window.parleyInline`, 5*time.Second)
}
