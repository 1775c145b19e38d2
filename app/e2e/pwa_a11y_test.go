package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/parley-chat/parley/app/i18n"
	"github.com/stretchr/testify/require"
)

// --- "update available — reload" ------------------------------------------

// A deploy while the app is open: the server restarts on the same address
// with another build of app.wasm. The page notices when it reconnects,
// the new version installs in the background, the banner offers a reload,
// and the reload runs the new version with the chat intact.
func TestUpdateBannerAfterDeploy(t *testing.T) {
	data := filepath.Join(t.TempDir(), "parley.db")
	srv := startServer(t, "-store", "bolt", "-data", data)
	b := newBrowser(t)
	alice := b.firstTab("alice")
	bob := b.isolatedTab("bob")
	// Bob reads Chinese: the banner speaks the UI's language.
	bob.setLanguage("zh-CN,zh")
	for _, p := range []struct {
		tb   *tab
		name string
	}{{alice, "alice"}, {bob, "bob"}} {
		p.tb.navigate(srv.URL + "/")
		p.tb.join(p.name)
		p.tb.inRoom("lobby")
	}
	alice.send("before the deploy")
	bob.waitText("before the deploy", 10*time.Second)

	oldVersion := servedVersion(t, srv)
	for _, tb := range []*tab{alice, bob} {
		require.Equal(t, oldVersion, eval[string](tb, `document.querySelector('[data-testid=app]').dataset.version`), tb.name)
		require.Equal(t, oldVersion, eval[string](tb, `goappGetenv('GOAPP_VERSION')`), tb.name)
		// An update is only announced to a page its worker controls, once
		// the worker has cached the version it runs.
		tb.waitFor("the worker to control the page", `(async () => {
			if (!navigator.serviceWorker.controller) return false;
			const c = await caches.open('app-' + goappGetenv('GOAPP_VERSION'));
			return !!(await c.match('/web/app.wasm'));
		})()`, 60*time.Second)
		require.True(t, eval[bool](tb, `document.querySelector('[data-testid=update]').hidden`), "%s: no banner before the deploy", tb.name)
	}

	web, marker := newBuild(t)
	deployed := time.Now()
	srv.redeploy(web)
	newVersion := servedVersion(t, srv)
	require.NotEqual(t, oldVersion, newVersion, "the new build must have a new version")

	// Both pages reconnect, look for an update, install it and say so.
	for _, tb := range []*tab{alice, bob} {
		tb.waitFor("the update banner", `!document.querySelector('[data-testid=update]').hidden`, 60*time.Second)
	}
	t.Logf("update banner shown %s after the deploy", time.Since(deployed).Round(time.Millisecond))
	for _, tb := range []*tab{alice, bob} {
		tb.waitFor("only the new version's cache", fmt.Sprintf(`caches.keys().then(k => k.length === 1 && k[0] === %q)`, "app-"+newVersion), 10*time.Second)
	}
	for tb, lang := range map[*tab]i18n.Lang{alice: i18n.EN, bob: i18n.ZH} {
		str := i18n.Get(lang)
		require.Equal(t, str.UpdateReady, eval[string](tb, `document.querySelector('[data-testid=update] span').textContent`), tb.name)
		screen := tb.checkNames("update", "reload")
		require.Equal(t, str.ReloadButton, screen.controls["reload"].Name, tb.name)
		require.Contains(t, screen.status, "update", "%s: the banner is a status region", tb.name)
	}
	// Still the old build until the user chooses to reload.
	require.Equal(t, oldVersion, eval[string](alice, `document.querySelector('[data-testid=app]').dataset.version`))
	require.NotEmpty(t, alice.screenshot("update-banner"))

	alice.do(chromedp.Click(chromedp.CSS(testid("reload"))))
	alice.waitFor("the new version to run", fmt.Sprintf(`document.querySelector('[data-testid=app][data-ready=true]') && document.querySelector('[data-testid=app]').dataset.version === %q`, newVersion), 60*time.Second)
	require.Equal(t, newVersion, eval[string](alice, `goappGetenv('GOAPP_VERSION')`))
	require.True(t, eval[bool](alice, `document.querySelector('[data-testid=update]').hidden`), "no banner after the reload")
	// The wasm the page started from is the new build: it has the new
	// build's length, came from the new version's cache, and that copy ends
	// with the section we added.
	newSize := fileSize(t, filepath.Join(web, "app.wasm"))
	require.Equal(t, newSize, eval[int64](alice, `performance.getEntriesByType('resource').find(e => e.name.endsWith('/web/app.wasm')).decodedBodySize`))
	require.Equal(t, marker, eval[string](alice, fmt.Sprintf(`(async () => {
		const r = await (await caches.open('app-' + %q)).match('/web/app.wasm');
		const b = new Uint8Array(await r.arrayBuffer());
		return new TextDecoder().decode(b.slice(b.length - %d));
	})()`, newVersion, len(marker))))

	// The chat goes on, without duplicates.
	alice.inRoom("lobby")
	alice.waitText("before the deploy", 10*time.Second)
	alice.send("after the reload")
	bob.waitText("after the reload", 15*time.Second)
	bob.send("bob on the old build")
	alice.waitText("bob on the old build", 15*time.Second)
	require.Equal(t, []string{"before the deploy", "after the reload", "bob on the old build"}, alice.texts())
	seqs := alice.seqs()
	require.True(t, sort.IntsAreSorted(seqs), "%v", seqs)
	for i := 1; i < len(seqs); i++ {
		require.NotEqual(t, seqs[i-1], seqs[i], "duplicate seq in %v", seqs)
	}
	for _, text := range []string{"before the deploy", "after the reload", "bob on the old build"} {
		require.Equal(t, 1, count(srv.history(t, "lobby"), text), text)
	}
}

// redeploy restarts the server on the same address, serving another web
// directory, as a deploy of a new build does.
func (s *server) redeploy(web string) {
	s.t.Helper()
	s.stop()
	// The harness puts "-web <repo>/web" first; the last -web wins.
	s.args = append(s.args, "-web", web)
	s.start()
}

var versionRE = regexp.MustCompile(`"GOAPP_VERSION":"([^"]+)"`)

// servedVersion is the app version the server hands out in app.js.
func servedVersion(t *testing.T, s *server) string {
	t.Helper()
	resp, err := http.Get(s.URL + "/app.js")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	m := versionRE.FindSubmatch(body)
	require.NotNil(t, m, "no GOAPP_VERSION in app.js")
	return string(m[1])
}

// newBuild makes a copy of web/ whose app.wasm differs from the real one
// and is still a valid module: a custom section (which engines ignore) is
// appended. The precompressed copies are left out, so the server serves
// the new app.wasm raw. It returns the directory and the section's payload.
func newBuild(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(webDir)
	require.NoError(t, err)
	for _, e := range entries {
		if e.IsDir() || e.Name() == "app.wasm.br" || e.Name() == "app.wasm.gz" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(webDir, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644))
	}
	marker := fmt.Sprintf("parley e2e build %d", time.Now().UnixNano())
	wasm, err := os.ReadFile(filepath.Join(dir, "app.wasm"))
	require.NoError(t, err)
	require.Equal(t, []byte("\x00asm"), wasm[:4], "app.wasm is not a wasm module")
	wasm = append(wasm, customSection("parley.build", []byte(marker))...)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "app.wasm"), wasm, 0o644))
	return dir, marker
}

// customSection encodes a WebAssembly custom section: id 0, the size of
// the rest, then the name (length-prefixed) and the payload.
func customSection(name string, payload []byte) []byte {
	body := append(uleb128(uint64(len(name))), name...)
	body = append(body, payload...)
	out := append([]byte{0}, uleb128(uint64(len(body)))...)
	return append(out, body...)
}

func uleb128(v uint64) []byte {
	var out []byte
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b |= 0x80
		}
		out = append(out, b)
		if v == 0 {
			return out
		}
	}
}

func TestULEB128(t *testing.T) {
	require.Equal(t, []byte{0}, uleb128(0))
	require.Equal(t, []byte{0x7f}, uleb128(127))
	require.Equal(t, []byte{0x80, 0x01}, uleb128(128))
	require.Equal(t, []byte{0xe5, 0x8e, 0x26}, uleb128(624485))
	require.Equal(t, []byte{0, 3, 1, 'a', 'x'}, customSection("a", []byte("x")))
}

// --- accessible names -----------------------------------------------------

// axControl is one node of Chromium's accessibility tree that a person can
// operate or focus, with the DOM element it stands for.
type axControl struct {
	Key       string // data-testid, else id, else tag and value
	Role      string
	Name      string
	Live      string
	Focusable bool
}

func (c axControl) String() string { return fmt.Sprintf("%s %s %q", c.Key, c.Role, c.Name) }

var interactiveRoles = map[string]bool{
	"button": true, "textbox": true, "searchbox": true, "combobox": true, "listbox": true,
	"option": true, "link": true, "checkbox": true, "radio": true, "switch": true,
	"slider": true, "spinbutton": true, "menuitem": true, "menuitemcheckbox": true,
	"menuitemradio": true, "tab": true, "treeitem": true,
}

// axTree returns every operable or focusable node of the page's
// accessibility tree, and the logs and status regions separately.
func (tb *tab) axTree() (controls, logs, statuses []axControl) {
	tb.b.t.Helper()
	tb.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		res, err := cdp.Call(ctx, t, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
		if err != nil {
			return err
		}
		for _, n := range res.Nodes {
			if n.Ignored {
				continue
			}
			c := axControl{Role: axString(n.Role), Name: strings.TrimSpace(axString(n.Name))}
			for _, p := range n.Properties {
				switch p.Name {
				case accessibility.PropertyNameFocusable:
					c.Focusable = axString(p.Value) == "true"
				case accessibility.PropertyNameLive:
					c.Live = axString(p.Value)
				}
			}
			if c.Role == "RootWebArea" || !(interactiveRoles[c.Role] || c.Focusable || c.Role == "log" || c.Role == "status") {
				continue
			}
			if n.BackendDOMNodeID == 0 {
				return fmt.Errorf("accessibility node %s (%s) has no DOM node", n.NodeID, c.Role)
			}
			d, err := cdp.Call(ctx, t, dom.DescribeNode, dom.DescribeNodeParams{BackendNodeID: n.BackendDOMNodeID})
			if err != nil {
				return err
			}
			c.Key = domKey(d.Node)
			switch c.Role {
			case "log":
				logs = append(logs, c)
			case "status":
				statuses = append(statuses, c)
			}
			if interactiveRoles[c.Role] || c.Focusable {
				controls = append(controls, c)
			}
		}
		return nil
	}))
	return controls, logs, statuses
}

// axString decodes an accessibility value (a JSON string, bool or number)
// into its text.
func axString(v *accessibility.Value) string {
	if v == nil || len(v.Value) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(v.Value, &s) == nil {
		return s
	}
	return string(v.Value)
}

func domKey(n *cdp.Node) string {
	attrs := map[string]string{}
	for i := 0; i+1 < len(n.Attributes); i += 2 {
		attrs[n.Attributes[i]] = n.Attributes[i+1]
	}
	switch {
	case attrs["data-testid"] != "":
		return attrs["data-testid"]
	case attrs["id"] != "":
		return "#" + attrs["id"]
	case strings.EqualFold(n.NodeName, "option"):
		return "option=" + attrs["value"]
	}
	return strings.ToLower(n.NodeName) + "." + attrs["class"]
}

// setLanguage makes the tab's browser prefer lang (navigator.languages and
// Accept-Language), as a person's browser settings do.
func (tb *tab) setLanguage(lang string) {
	tb.b.t.Helper()
	ua := eval[string](tb, `navigator.userAgent`)
	tb.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: ua, AcceptLanguage: lang})
		return err
	}))
}

type a11yScreen struct {
	controls map[string]axControl
	log      []axControl
	status   map[string]axControl
}

// checkNames fails unless every control of the screen has a name, and
// returns them by key.
func (tb *tab) checkNames(screen string, want ...string) a11yScreen {
	tb.b.t.Helper()
	controls, logs, statuses := tb.axTree()
	s := a11yScreen{controls: map[string]axControl{}, log: logs, status: map[string]axControl{}}
	for _, st := range statuses {
		s.status[st.Key] = st
	}
	var lines []string
	for _, c := range controls {
		lines = append(lines, c.String())
		if c.Name == "" {
			tb.fatalf("%s screen: %s (role %s) has no accessible name", screen, c.Key, c.Role)
		}
		if _, dup := s.controls[c.Key]; dup {
			tb.fatalf("%s screen: two controls with the key %s", screen, c.Key)
		}
		s.controls[c.Key] = c
	}
	tb.b.t.Logf("%s, %s screen: %s", tb.name, screen, strings.Join(lines, "; "))
	for _, k := range want {
		if _, ok := s.controls[k]; !ok {
			tb.fatalf("%s screen: no accessible control %s among %v", screen, k, lines)
		}
	}
	return s
}

// Every control on the join and room screens has an accessible name, in
// the language the browser asks for; the message list is a live log; the
// connection indicator says its state in that language.
func TestAccessibleNamesInBothLanguages(t *testing.T) {
	srv := startServer(t)
	langs := []struct {
		lang   i18n.Lang
		accept string
		user   string
	}{{i18n.EN, "en-US,en", "alice"}, {i18n.ZH, "zh-CN,zh", "李雷"}}
	tabs := map[i18n.Lang]*tab{}
	join := map[i18n.Lang]a11yScreen{}
	room := map[i18n.Lang]a11yScreen{}
	for _, l := range langs {
		str := i18n.Get(l.lang)
		// A browser each: a person of each language, and the default
		// context, where the app is installable.
		tb := newBrowser(t).firstTab(string(l.lang))
		tabs[l.lang] = tb
		tb.setLanguage(l.accept)
		tb.navigate(srv.URL + "/")
		tb.ready()
		require.Equal(t, strings.Split(l.accept, ",")[0], eval[string](tb, `navigator.languages[0]`))
		tb.waitFor("the UI in "+string(l.lang), fmt.Sprintf(`document.documentElement.lang === %q && document.querySelector('%s').textContent === %q && !document.querySelector('%s').disabled`,
			l.lang, testid("join"), str.JoinButton, testid("name")), 10*time.Second)
		join[l.lang] = tb.checkNames("join", "name", "room", "join", "#lang")
		require.Equal(t, str.NameLabel, join[l.lang].controls["name"].Name)
		require.Equal(t, str.LangLabel, join[l.lang].controls["#lang"].Name)
		tb.screenshot("join-" + string(l.lang))

		tb.join(l.user)
		tb.inRoom("lobby")
		tb.send("hello / 你好")
		tb.waitText("hello / 你好", 10*time.Second)
		// The default browser context may install the app; wait for the
		// browser to say so, so both languages show the same controls.
		tb.waitFor("the Install button", `document.querySelector('`+testid("install")+`')`, 30*time.Second)
		room[l.lang] = tb.checkNames("room", "message", "send", "switch-room", "switch-go", "#lang", "install", "leave", "log")
		require.Equal(t, str.MessageLabel, room[l.lang].controls["message"].Name)
		require.Equal(t, str.SendButton, room[l.lang].controls["send"].Name)
		require.Equal(t, str.ConnectionName+": "+str.Connected, room[l.lang].status["connection"].Name, "the connection indicator is a named status")

		// The message list: one live log, named for the room.
		logs := room[l.lang].log
		require.Len(t, logs, 1, "one role=log")
		require.Equal(t, "log", logs[0].Key)
		require.Equal(t, "polite", logs[0].Live, "the log is aria-live")
		require.Equal(t, fmt.Sprintf(str.LogLabel, "lobby"), logs[0].Name)
		require.Equal(t, "polite", eval[string](tb, `document.querySelector('[data-testid=log]').getAttribute('aria-live')`))
		tb.screenshot("room-" + string(l.lang))
	}

	// Translated means translated: the same control has another name in
	// the other language. (The language options name each language in
	// itself, on purpose, so they read the same in both.)
	for screen, by := range map[string]map[i18n.Lang]a11yScreen{"join": join, "room": room} {
		en, zh := by[i18n.EN].controls, by[i18n.ZH].controls
		require.ElementsMatch(t, keys(en), keys(zh), "%s screen: the same controls in both languages", screen)
		for k, c := range en {
			if c.Role == "option" {
				continue
			}
			require.NotEqual(t, c.Name, zh[k].Name, "%s screen: %s is not translated", screen, k)
		}
	}

	// The connection indicator through an outage, in both languages: each
	// state it shows has that state's words.
	for _, tb := range tabs {
		eval[bool](tb, `(() => {
			window.parleyConnSeen = [];
			const rec = () => {
				const e = document.querySelector('[data-testid=connection]');
				if (e) parleyConnSeen.push({state: e.dataset.state, text: e.textContent, title: e.title});
			};
			rec();
			new MutationObserver(rec).observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
			return true;
		})()`)
	}
	srv.stop()
	for _, tb := range tabs {
		tb.waitFor("offline", `document.querySelector('`+testid("connection")+`').dataset.state === 'offline'`, 30*time.Second)
	}
	srv.restart()
	for _, tb := range tabs {
		tb.waitFor("connected", `document.querySelector('`+testid("connection")+`').dataset.state === 'connected'`, 30*time.Second)
	}
	type seen struct {
		State string `json:"state"`
		Text  string `json:"text"`
		Title string `json:"title"`
	}
	for _, l := range langs {
		str := i18n.Get(l.lang)
		tb := tabs[l.lang]
		words := map[string]string{"connected": str.Connected, "reconnecting": str.Reconnecting, "offline": str.Offline}
		states := map[string]bool{}
		for _, s := range eval[[]seen](tb, `parleyConnSeen`) {
			want, ok := words[s.State]
			if !ok {
				tb.fatalf("unknown data-state %q", s.State)
			}
			if s.Text != want || s.Title != str.ConnectionName+": "+want {
				tb.fatalf("data-state %s shows %q (title %q), want %q", s.State, s.Text, s.Title, want)
			}
			states[s.State] = true
		}
		require.Len(t, states, 3, "%s: saw %v", l.lang, states)
		// Assistive technology hears the same words.
		_, _, statuses := tb.axTree()
		var conn *axControl
		for i := range statuses {
			if statuses[i].Key == "connection" {
				conn = &statuses[i]
			}
		}
		require.NotNil(t, conn, "%s: the connection indicator is a status", l.lang)
		require.Equal(t, str.ConnectionName+": "+str.Connected, conn.Name, l.lang)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// --- keyboard only ----------------------------------------------------------

// key is one key of a US keyboard, for CDP key events.
type key struct {
	key, code string
	vk        int64
	text      string
}

var (
	keyTab   = key{"Tab", "Tab", 9, ""}
	keyEnter = key{"Enter", "Enter", 13, "\r"}
	keyDown  = key{"ArrowDown", "ArrowDown", 40, ""}
	keyUp    = key{"ArrowUp", "ArrowUp", 38, ""}
)

const modShift = 8

// press presses and releases k with the modifiers held, as one keyboard
// stroke: a keyDown that carries its text (so a keydown handler can cancel
// it), or a rawKeyDown for keys without text.
func press(k key, modifiers int64) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		down := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeRawKeyDown, Modifiers: modifiers, Key: k.key, Code: k.code, WindowsVirtualKeyCode: k.vk, NativeVirtualKeyCode: k.vk}
		if k.text != "" {
			down.Type, down.Text, down.UnmodifiedText = input.DispatchKeyEventTypeKeyDown, k.text, k.text
		}
		if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, down); err != nil {
			return err
		}
		up := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyUp, Modifiers: modifiers, Key: k.key, Code: k.code, WindowsVirtualKeyCode: k.vk, NativeVirtualKeyCode: k.vk}
		_, err := cdp.Call(ctx, t, input.DispatchKeyEvent, up)
		return err
	})
}

// focused describes document.activeElement and whether focus shows on it.
type focused struct {
	Key     string `json:"key"`
	Visible bool   `json:"visible"` // :focus-visible matches
	Ring    bool   `json:"ring"`    // a computed outline or box-shadow
	Outline string `json:"outline"`
	Shadow  string `json:"shadow"`
}

func (tb *tab) focused() focused {
	tb.b.t.Helper()
	return eval[focused](tb, `(() => {
		const e = document.activeElement;
		if (!e || e === document.body || e === document.documentElement) return {key: ''};
		const s = getComputedStyle(e);
		const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
		const shadow = !!s.boxShadow && s.boxShadow !== 'none';
		return {
			key: e.dataset.testid || (e.id ? '#' + e.id : e.tagName.toLowerCase()),
			visible: e.matches(':focus-visible'),
			ring: outline || shadow,
			outline: s.outlineStyle + ' ' + s.outlineWidth + ' ' + s.outlineColor,
			shadow: s.boxShadow,
		};
	})()`)
}

// tab presses Tab (Shift+Tab when back) and checks the element that gets
// focus shows it.
func (tb *tab) tabKey(back bool) focused {
	tb.b.t.Helper()
	var mod int64
	if back {
		mod = modShift
	}
	tb.do(press(keyTab, mod))
	f := tb.focused()
	if f.Key != "" && (!f.Visible || !f.Ring) {
		tb.fatalf("focus on %s is not visible: %+v", f.Key, f)
	}
	return f
}

// tabTo presses Tab until the element with this key has focus.
func (tb *tab) tabTo(want string, max int) []string {
	tb.b.t.Helper()
	var path []string
	for range max {
		f := tb.tabKey(false)
		path = append(path, f.Key)
		if f.Key == want {
			return path
		}
	}
	tb.fatalf("%s not reached with %d Tabs: %v", want, max, path)
	return nil
}

// typeKeys types text one key at a time.
func (tb *tab) typeKeys(text string) {
	tb.b.t.Helper()
	tb.do(chromedp.KeyEvent(text))
}

// From a fresh page, everything works with the keyboard alone: Tab to the
// name, type, join, write, Shift+Enter for a new line, Enter to send;
// focus shows wherever it is, and the other person gets the message.
func TestKeyboardOnly(t *testing.T) {
	srv := startServer(t)
	b := newBrowser(t)
	bob := b.isolatedTab("bob")
	bob.enterLobby(srv.URL, "bob")

	alice := b.firstTab("alice")
	alice.navigate(srv.URL + "/")
	alice.ready()
	alice.waitFor("the join form", `!document.querySelector('`+testid("name")+`').disabled`, 10*time.Second)
	if start := alice.focused(); start.Key == "name" {
		// Autofocus put us there already; Tab away and back.
		t.Logf("the name field has focus on a fresh page")
		require.Equal(t, "room", alice.tabKey(false).Key)
		require.Equal(t, "name", alice.tabKey(true).Key)
	} else {
		path := alice.tabTo("name", 10)
		t.Logf("focus starts on %q; Tab stops to the name field: %v", start.Key, path)
	}
	alice.typeKeys("alice")
	require.Equal(t, "alice", eval[string](alice, `document.querySelector('`+testid("name")+`').value`))
	require.Equal(t, "room", alice.tabKey(false).Key)
	require.Equal(t, "join", alice.tabKey(false).Key)
	alice.screenshot("focus-join")
	alice.do(press(keyEnter, 0))
	alice.inRoom("lobby")

	// Joined: the composer has focus, ready to type.
	alice.waitFor("focus in the composer", `document.activeElement === document.querySelector('`+testid("message")+`')`, 10*time.Second)
	if f := alice.focused(); !f.Ring {
		alice.fatalf("focus on the composer is not visible: %+v", f)
	}
	alice.typeKeys("first line")
	alice.do(press(keyEnter, modShift))
	require.Equal(t, "first line\n", eval[string](alice, `document.querySelector('`+testid("message")+`').value`), "Shift+Enter inserts a newline")
	require.Zero(t, eval[int](alice, `document.querySelectorAll('[data-testid=log] li[data-client-msg-id]').length`), "Shift+Enter does not send")
	alice.typeKeys("second line")
	alice.do(press(keyEnter, 0))
	bob.waitText("first line\nsecond line", 10*time.Second)
	alice.waitText("first line\nsecond line", 10*time.Second)
	require.Equal(t, "", eval[string](alice, `document.querySelector('`+testid("message")+`').value`), "the composer is emptied")
	require.Equal(t, "message", alice.focused().Key, "focus stays in the composer")
	// Had Shift+Enter sent, "first line" would have gone before this one.
	require.Zero(t, count(srv.history(t, "lobby"), "first line"))
	require.Equal(t, 1, count(srv.history(t, "lobby"), "first line\nsecond line"))
	alice.screenshot("focus-composer")

	// Every control of the room is a Tab stop that shows its focus.
	var stops []string
	for range 20 {
		f := alice.tabKey(false)
		if f.Key == "message" {
			break
		}
		if f.Key != "" {
			stops = append(stops, f.Key)
		}
	}
	t.Logf("Tab stops after the composer, round to it again: %v", stops)
	for _, want := range []string{"send", "switch-room", "switch-go", "#lang", "install", "leave", "log"} {
		require.Contains(t, stops, want)
	}

	// The send button works from the keyboard.
	alice.typeKeys("sent with the button")
	require.Equal(t, "send", alice.tabKey(false).Key)
	alice.do(press(keyEnter, 0))
	bob.waitText("sent with the button", 10*time.Second)

	// The language switcher: arrow keys change it.
	alice.tabTo("#lang", 20)
	alice.do(press(keyDown, 0))
	alice.waitFor("the Chinese UI", `document.documentElement.lang === 'zh-CN' && document.querySelector('`+testid("send")+`').textContent === '`+i18n.Get(i18n.ZH).SendButton+`'`, 10*time.Second)
	alice.screenshot("keyboard-zh")
	alice.do(press(keyUp, 0))
	alice.waitFor("the English UI", `document.documentElement.lang === 'en'`, 10*time.Second)

	// Another room by keyboard: the switch field, then Enter.
	alice.tabTo("switch-room", 20)
	alice.typeKeys("keys")
	alice.do(press(keyEnter, 0))
	alice.inRoom("keys")
	alice.tabTo("message", 20)
	alice.typeKeys("in keys")
	alice.do(press(keyEnter, 0))
	alice.waitText("in keys", 10*time.Second)
	require.Equal(t, 1, count(srv.history(t, "keys"), "in keys"))
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	st, err := os.Stat(p)
	require.NoError(t, err)
	return st.Size()
}
