package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/profiler"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// startScript runs in every document before the page's scripts: it notes
// when go-app's loader leaves the page (the wasm runs and has rendered),
// and when, after that, the room's composer is enabled: the wasm's
// composer, which keeps and sends what is typed.
const startScript = `
window.parleyStart = {};
new MutationObserver(() => {
	if (!parleyStart.loaderGone && document.readyState !== 'loading' && !document.getElementById('app-wasm-loader')) {
		parleyStart.loaderGone = performance.now();
	}
	if (parleyStart.loaderGone && !parleyStart.usable && location.pathname === '/r/lobby') {
		const m = document.querySelector('[data-testid=message]');
		if (m && !m.disabled) parleyStart.usable = performance.now();
	}
}).observe(document, {subtree: true, childList: true, attributes: true, attributeFilter: ['disabled']});
// Before the wasm can run (app.js is deferred), is the prerendered page
// what a person sees, or does go-app's loader cover it? Asked only where
// a test sets parleyCheckShell: the hit test forces a layout.
document.addEventListener('DOMContentLoaded', () => {
	const app = document.querySelector('[data-testid=app]') || document.querySelector('h1');
	const loader = document.getElementById('app-wasm-loader');
	if (!window.parleyCheckShell || !app || !loader) return;
	const r = app.getBoundingClientRect();
	const hit = document.elementFromPoint(r.left + r.width / 2, r.top + Math.min(r.height / 2, 120));
	parleyStart.shellShown = !!hit && app.contains(hit) && !loader.contains(hit);
	parleyStart.wasmRanBefore = !!window.parleyMainAt;
});
`

// startFigures is one start of an app, in ms after navigation start.
type startFigures struct {
	// HTML is when the page's HTML had arrived (the navigation's
	// responseEnd).
	HTML float64 `json:"html"`
	// Requested is when the page asked for app.wasm, Fetched when its
	// response ended (network or worker cache).
	Requested float64 `json:"requested"`
	Fetched   float64 `json:"fetched"`
	// Compile is V8's time compiling (or loading from its cache) app.wasm,
	// from the trace.
	Compile float64 `json:"-"`
	// Instantiated is when V8 had the module instantiated and Go could
	// start (from the trace), Main when Go's main began (Parley only:
	// the runtime and every package's init ran in between).
	Instantiated float64 `json:"-"`
	Main         float64 `json:"main"`
	// Rendered is when the wasm removed go-app's loader: Go started and
	// rendered the page.
	Rendered float64 `json:"rendered"`
	// Interactive is when Parley's room is usable (the composer enabled);
	// 0 for the hello world.
	Interactive float64 `json:"interactive"`
	// CacheHit says the trace saw V8 take the module from its code cache.
	CacheHit bool `json:"-"`
	// WasmFetches counts the page's requests for app.wasm: the boot
	// script and app.js must not both fetch it.
	WasmFetches int `json:"wasmFetches"`
}

// watchStart installs startScript for the tab's next documents.
func (tb *tab) watchStart() { tb.initScript(startScript) }

// start opens url and waits for ready (a JavaScript condition), tracing
// V8's work on the wasm; it returns the figures of that start.
func (tb *tab) start(url, ready string) startFigures {
	tb.b.t.Helper()
	// devtools.timeline has the page's request for app.wasm, which places
	// performance.now()'s zero in the trace's clock.
	cats := []string{"v8.wasm", "disabled-by-default-v8.wasm.detailed", "disabled-by-default-devtools.timeline", "devtools.timeline"}
	if os.Getenv("PARLEY_START_TRACE") != "" {
		cats = append(cats, "blink.user_timing", "loading", "navigation", "toplevel", "v8", "blink", "ServiceWorker", "netlog")
	}
	tr := tb.startTrace(cats...)
	stopProfile := tb.startProfile()
	tb.navigate(url)
	tb.waitFor("the app", ready, 60*time.Second)
	var f startFigures
	raw := eval[string](tb, `JSON.stringify({
		requested: (performance.getEntriesByType('resource').find(e => e.name.endsWith('/web/app.wasm')) || {}).startTime || 0,
		fetched: (performance.getEntriesByType('resource').find(e => e.name.endsWith('/web/app.wasm')) || {}).responseEnd || 0,
		html: performance.getEntriesByType('navigation')[0].responseEnd,
		wasmFetches: performance.getEntriesByType('resource').filter(e => e.name.endsWith('/web/app.wasm')).length,
		main: window.parleyMainAt || 0,
		rendered: parleyStart.loaderGone || 0,
		interactive: parleyStart.usable || 0,
	})`)
	require.NoError(tb.b.t, json.Unmarshal([]byte(raw), &f))
	stopProfile()
	evs := tr.stop()
	if os.Getenv("PARLEY_START_TRACE") != "" {
		// For profiling by hand: the whole trace of each start.
		tb.b.shots++
		if raw, err := json.Marshal(evs); err == nil {
			_ = os.WriteFile(filepath.Join(artefacts, fmt.Sprintf("start-trace-%s-%02d.json", tb.name, tb.b.shots)), raw, 0o644)
		}
	}
	hit, invalid := false, false
	// performance.now()'s zero in the trace's clock: the page's request
	// for app.wasm is in both (the trace of a new browser context does not
	// always name the navigation's URL).
	var navStart float64
	for _, e := range evs {
		var a struct {
			Data struct {
				URL   string `json:"url"`
				Frame string `json:"frame"`
			} `json:"data"`
		}
		if e.Name == "ResourceSendRequest" && json.Unmarshal(e.Args, &a) == nil && a.Data.Frame != "" &&
			strings.HasSuffix(a.Data.URL, "/web/app.wasm") && (navStart == 0 || e.Ts-f.Requested*1000 < navStart) {
			navStart = e.Ts - f.Requested*1000
		}
	}
	for _, e := range evs {
		switch {
		case e.Name == "wasm.AsyncInstantiate" && navStart > 0 && e.Ts > navStart+f.Requested*1000:
			f.Instantiated = (e.Ts + e.Dur - navStart) / 1000
		case e.Name == "v8.wasm.moduleCacheHit":
			hit = true
		case e.Name == "v8.wasm.moduleCacheInvalid":
			invalid = true
		case strings.HasPrefix(e.Cat, "v8.wasm") || strings.Contains(e.Cat, "v8.wasm"):
			if e.Ph == "X" && (strings.Contains(e.Name, "ompile") || strings.Contains(e.Name, "eserialize")) {
				f.Compile += e.Dur / 1000
			}
		}
	}
	f.CacheHit = hit && !invalid
	return f
}

func median(fs []startFigures, get func(startFigures) float64) float64 {
	v := make([]float64, len(fs))
	for i, f := range fs {
		v[i] = get(f)
	}
	sort.Float64s(v)
	return v[len(v)/2]
}

// Parley and go-app's own hello world, started in the same Chromium, cold
// and warm, with a breakdown: Parley's warm start reuses the compiled
// module (a module cache hit in V8's trace), the hello world's stock
// loader does not. The report compares Parley's warm start to a usable
// room with the hello world's warm first render, and the cold starts.
func TestStartSideBySide(t *testing.T) {
	helloDir := buildHello(t)
	srv := startServer(t)
	hw := helloServer(t, helloDir)
	// V8 writes compiled wasm to its code cache only after an idle timer
	// that headless Chromium never fires; both apps run in this one
	// browser, with the same flags, so the comparison is fair.
	b := newBrowser(t, chromedp.Flag("js-flags", "--wasm-caching-timeout-ms=0"))

	ready := `document.querySelector('[data-testid=app][data-ready=true]')`
	inRoom := `window.parleyStart && parleyStart.usable`
	helloReady := `window.parleyStart && parleyStart.loaderGone`

	// Cold starts, each in a new browser context (nothing cached), the two
	// apps taking turns so that the machine's load falls on both alike.
	var pColds, hColds []startFigures
	var wire map[string]float64
	for i := 0; i < 3; i++ {
		pt := b.isolatedTab(fmt.Sprintf("parley-cold-%d", i))
		pt.watchStart()
		pColds = append(pColds, pt.start(srv.URL+"/", ready))
		if i == 0 {
			wire = eval[map[string]float64](pt, `(() => {
				const e = performance.getEntriesByType('resource').find(e => e.name.endsWith('/web/app.wasm'));
				return {encoded: e.encodedBodySize, decoded: e.decodedBodySize};
			})()`)
		}
		ht := b.isolatedTab(fmt.Sprintf("hello-cold-%d", i))
		ht.watchStart()
		hColds = append(hColds, ht.start(hw.URL+"/", helloReady))
	}
	require.Less(t, wire["encoded"], wire["decoded"]/3, "app.wasm must come compressed: %v", wire)

	// While the wasm starts, the prerendered page shows: go-app's loader
	// is a small badge, not a cover over it (an extra start, not measured).
	st := b.isolatedTab("parley-shell")
	st.watchStart()
	st.initScript(`window.parleyCheckShell = true`)
	st.start(srv.URL+"/", ready)
	shell := eval[map[string]bool](st, `({shown: !!parleyStart.shellShown, wasmRan: !!parleyStart.wasmRanBefore})`)
	require.False(t, shell["wasmRan"], "the check ran before the wasm")
	require.True(t, shell["shown"], "the prerendered page, not go-app's loader, is what shows while the wasm starts")
	// The same check on the hello world finds go-app's stock loader over
	// its prerendered heading.
	hs := b.isolatedTab("hello-shell")
	hs.watchStart()
	hs.initScript(`window.parleyCheckShell = true`)
	hs.start(hw.URL+"/", helloReady)
	require.True(t, eval[bool](hs, `parleyStart.shellShown === false`), "go-app's stock loader covers the hello world's page")

	// Warm starts in the browser's own profile (V8 keeps no code cache for
	// a throwaway context): Parley joined, so that "/" opens the room.
	pt := b.firstTab("parley")
	pt.watchStart()
	pt.start(srv.URL+"/", ready)
	pt.join("alice")
	pt.inRoom("lobby")
	ht := b.newTab("hello")
	ht.watchStart()
	ht.start(hw.URL+"/", helloReady)
	warmUp(pt, srv.URL+"/", inRoom)
	warmUp(ht, hw.URL+"/", helloReady)
	var pWarm, hWarm []startFigures
	for i := 0; i < 3; i++ {
		pWarm = append(pWarm, pt.start(srv.URL+"/", inRoom))
		hWarm = append(hWarm, ht.start(hw.URL+"/", helloReady))
	}

	row := func(name string, f startFigures) string {
		return fmt.Sprintf("| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %s | %.0f | %s | %v |", name, f.HTML, f.Requested, f.Fetched, f.Compile, f.Instantiated, orDash(f.Main), f.Rendered, orDash(f.Interactive), f.CacheHit)
	}
	med := func(fs []startFigures) startFigures {
		m := startFigures{
			HTML:         median(fs, func(f startFigures) float64 { return f.HTML }),
			Requested:    median(fs, func(f startFigures) float64 { return f.Requested }),
			Fetched:      median(fs, func(f startFigures) float64 { return f.Fetched }),
			Compile:      median(fs, func(f startFigures) float64 { return f.Compile }),
			Instantiated: median(fs, func(f startFigures) float64 { return f.Instantiated }),
			Main:         median(fs, func(f startFigures) float64 { return f.Main }),
			Rendered:     median(fs, func(f startFigures) float64 { return f.Rendered }),
			Interactive:  median(fs, func(f startFigures) float64 { return f.Interactive }),
		}
		m.CacheHit = true
		for _, f := range fs {
			m.CacheHit = m.CacheHit && f.CacheHit
		}
		return m
	}
	pw, hwm := med(pWarm), med(hWarm)
	pCold, hCold := med(pColds), med(hColds)
	report := strings.Join([]string{
		fmt.Sprintf("app.wasm on the wire: %.0f bytes (decoded %.0f)", wire["encoded"], wire["decoded"]),
		"| start | HTML in (ms) | wasm requested (ms) | wasm fetched (ms) | V8 compile/load (ms) | instantiated (ms) | Go main (ms) | loader gone, first render (ms) | room usable (ms) | module cache hit |",
		"|---|---|---|---|---|---|---|---|---|---|",
		row("Parley cold (median of 3)", pCold),
		row("Parley warm (median of 3)", pw),
		row("hello world cold (median of 3)", hCold),
		row("hello world warm (median of 3)", hwm),
		fmt.Sprintf("Parley warm to a usable room / hello world warm first render: %.2f (goal <= 0.5)", pw.Interactive/hwm.Rendered),
		fmt.Sprintf("Parley cold first render / hello world cold first render: %.2f (goal <= 1.0)", pCold.Rendered/hCold.Rendered),
	}, "\n")
	t.Log("\n" + report)
	if os.Getenv("PARLEY_START_TRACE") != "" {
		t.Logf("Parley's console:\n%s", pt.console.String())
	}
	require.NoError(t, os.WriteFile(filepath.Join(artefacts, "start.md"), []byte(report+"\n"), 0o644))

	for _, f := range append(pColds, pWarm...) {
		require.Equal(t, 1, f.WasmFetches, "each start of Parley fetches app.wasm once")
	}
	require.True(t, pw.CacheHit, "every warm start of Parley takes app.wasm from V8's code cache")
	require.False(t, hwm.CacheHit, "go-app's stock loader defeats the cache (the comparison is fair only if this still holds)")
	// The goals of issue 9 (warm <= 0.5, cold <= 1.0) are not met yet: the
	// figures go to the report and docs/benchmarks.md. These bounds catch a
	// regression from where Parley stands.
	require.Less(t, pw.Interactive/hwm.Rendered, 6.0, "Parley warm to a usable room vs hello world warm first render")
	require.Less(t, pCold.Rendered/hCold.Rendered, 4.0, "cold starts")
}

// startProfile records a CPU profile of the tab's page (V8's sampling
// profiler, wasm functions by name when app.wasm keeps its name section)
// when PARLEY_START_PROFILE is set, for profiling by hand; the returned
// func writes it to the artefacts as a .cpuprofile for DevTools.
func (tb *tab) startProfile() func() {
	if os.Getenv("PARLEY_START_PROFILE") == "" {
		return func() {}
	}
	tb.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, profiler.Enable, cdp.Empty{}); err != nil {
			return err
		}
		if _, err := cdp.Call(ctx, t, profiler.SetSamplingInterval, profiler.SetSamplingIntervalParams{Interval: 100}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, profiler.Start, cdp.Empty{})
		return err
	}))
	return func() {
		tb.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			res, err := cdp.Call(ctx, t, profiler.Stop, cdp.Empty{})
			if err != nil {
				return err
			}
			raw, err := json.Marshal(res.Profile)
			if err != nil {
				return err
			}
			tb.b.shots++
			return os.WriteFile(filepath.Join(artefacts, fmt.Sprintf("start-%s-%02d.cpuprofile", tb.name, tb.b.shots)), raw, 0o644)
		}))
	}
}

// warmUp opens url until V8 has cached the module: the first start served
// by the worker compiles and writes the cache, the next ones can hit it.
func warmUp(tb *tab, url, ready string) {
	tb.b.t.Helper()
	tb.waitFor("the offline cache", `(async () => {
		for (const k of await caches.keys()) { if (await (await caches.open(k)).match('/web/app.wasm')) return true; }
		return false;
	})()`, 30*time.Second)
	for i := 0; i < 2; i++ {
		tb.start(url, ready)
		time.Sleep(500 * time.Millisecond) // V8 writes the cache after the start
	}
}

func orDash(v float64) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f", v)
}
