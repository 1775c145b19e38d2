package ui_test

import (
	"net/http"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// booleanAttr matches an HTML boolean attribute with a value. A browser
// reads a boolean attribute as true whatever its value, "false" included.
var booleanAttr = regexp.MustCompile(`\s(hidden|selected|disabled|readonly|checked|required|autofocus|multiple|open)="([^"]*)"`)

// The pages as the server prerenders them, before any wasm runs: no
// boolean attribute says "false" (which reads as true), the "Starting…"
// line shows, and the language list selects English, not 简体中文.
func TestPrerenderedBooleanAttributes(t *testing.T) {
	srv := newServer(t, webDir(t, false))
	for _, path := range []string{"/", "/r/lobby", "/learn"} {
		resp, body := get(t, srv.URL+path)
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		for _, m := range booleanAttr.FindAllStringSubmatch(string(body), -1) {
			require.NotEqual(t, "false", m[2], "%s: %s", path, m[0])
		}
		if path != "/learn" {
			starting := regexp.MustCompile(`<p[^>]*class="starting"[^>]*>`).FindString(string(body))
			require.NotEmpty(t, starting, path)
			require.NotContains(t, starting, "hidden", "%s: the Starting line shows before the wasm runs", path)
		}
		options := regexp.MustCompile(`<option[^>]*>`).FindAllString(string(body), -1)
		require.NotEmpty(t, options, path)
		for _, o := range options {
			selected := regexp.MustCompile(`\sselected[\s>=]`).MatchString(o)
			switch {
			case regexp.MustCompile(`value="zh-CN"`).MatchString(o):
				require.False(t, selected, "%s: %s", path, o)
			case regexp.MustCompile(`value="en"`).MatchString(o):
				require.True(t, selected, "%s: %s", path, o)
			}
		}
	}
}
