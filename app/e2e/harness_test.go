// Package e2e drives the real Parley server binary and the real app.wasm in
// Debian's headless Chromium. Nothing here is faked: the server is built
// from ./server/cmd/parley, the wasm by `make wasm`, and the browser is a
// fresh profile per test. These tests never skip; without Chromium they
// fail and say how to install it.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/parley-chat/parley/shared"
)

var (
	repoRoot   string
	serverBin  string
	webDir     string
	chromePath string
	artefacts  string
)

func TestMain(m *testing.M) {
	// The suite drives Chromium against a built server and app.wasm: it is
	// in the integration tier, which make test always turns on (see
	// server/internal/tier), so that go test ./... needs nothing but Go.
	if os.Getenv("PARLEY_INTEGRATION") != "1" {
		fmt.Println("app/e2e: integration tier: needs chromium and a wasm build; run with PARLEY_INTEGRATION=1 (make test does)")
		os.Exit(0)
	}
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func setup() error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	repoRoot = filepath.Clean(filepath.Join(wd, "..", ".."))
	chromePath = os.Getenv("PARLEY_CHROMIUM")
	if chromePath == "" {
		for _, c := range []string{"chromium", "chromium-browser"} {
			if p, err := exec.LookPath(c); err == nil {
				chromePath = p
				break
			}
		}
	}
	if chromePath == "" {
		return fmt.Errorf("chromium is not installed; the end-to-end tests need it: run `apt-get install chromium` (make test does this when it can)")
	}
	artefacts = os.Getenv("PARLEY_E2E_ARTEFACTS")
	if artefacts == "" {
		artefacts = filepath.Join(os.TempDir(), "parley-e2e")
	}
	if err := os.MkdirAll(artefacts, 0o755); err != nil {
		return err
	}
	bin, err := os.MkdirTemp("", "parley-e2e-bin")
	if err != nil {
		return err
	}
	serverBin = filepath.Join(bin, "parley")
	build := exec.Command("go", "build", "-o", serverBin, "./server/cmd/parley")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building the server: %v\n%s", err, out)
	}
	// make knows whether app.wasm (and its .br/.gz) are older than their
	// sources; a cold wasm build takes a minute or more.
	mk := exec.Command("make", "wasm")
	mk.Dir = repoRoot
	if out, err := mk.CombinedOutput(); err != nil {
		return fmt.Errorf("make wasm: %v\n%s", err, out)
	}
	webDir = filepath.Join(repoRoot, "web")
	if d := os.Getenv("PARLEY_E2E_WEB"); d != "" {
		// Another build of the app (web/ with another app.wasm), to
		// measure a client before and after a change in the same run.
		webDir = d
	}
	return nil
}

// server is the real parley binary running as a subprocess.
type server struct {
	t    *testing.T
	args []string
	addr string
	URL  string
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// startServer runs parley with -store memory unless args say otherwise.
func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	s := &server{t: t, addr: freeAddr(t), logs: &syncBuffer{}}
	s.args = args
	s.URL = "http://" + s.addr
	s.start()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("server log:\n%s", tail(s.logs.String(), 4000))
		}
	})
	return s
}

func (s *server) start() {
	s.t.Helper()
	args := append([]string{"-addr", s.addr, "-web", webDir}, s.args...)
	if !contains(args, "-store") {
		args = append(args, "-store", "memory")
	}
	s.cmd = exec.Command(serverBin, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.done = make(chan struct{})
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-s.done:
			s.t.Fatalf("server exited at start:\n%s", s.logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	s.t.Fatalf("server did not answer /healthz:\n%s", s.logs.String())
}

// stop ends the server with SIGTERM (graceful) and waits for it.
func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// restart starts the server again on the same address and flags.
func (s *server) restart() {
	s.t.Helper()
	s.stop()
	s.start()
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// history reads a room through the API, as a third party would.
func (s *server) history(t *testing.T, room string) []shared.Message {
	t.Helper()
	resp, err := http.Get(s.URL + "/api/rooms/" + room + "/messages?limit=500")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var pr shared.PollResponse
	if err := json.NewDecoder(resp.Body).Decode(&pr); err != nil {
		t.Fatal(err)
	}
	return pr.Messages
}

// browser is one Chromium process with a fresh profile.
type browser struct {
	t      *testing.T
	ctx    context.Context
	cancel context.CancelFunc
	shots  int
}

func newBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	profile := t.TempDir()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromePath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// Background tabs must keep running their timers and wasm: the
		// many-tabs test has one leader tab and six in the background.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.WindowSize(1100, 800),
		chromedp.UserDataDir(profile),
	}
	opts = append(opts, extra...)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx); err != nil {
		acancel()
		t.Fatalf("starting chromium (%s): %v", chromePath, err)
	}
	b := &browser{t: t, ctx: ctx, cancel: func() { cancel(); acancel() }}
	t.Cleanup(b.cancel)
	return b
}

// tab is one page of a browser.
type tab struct {
	b       *browser
	name    string
	ctx     context.Context
	console *syncBuffer
}

func (b *browser) track(name string, ctx context.Context) *tab {
	tb := &tab{b: b, name: name, ctx: ctx, console: &syncBuffer{}}
	// The page's console and uncaught exceptions, kept for failures.
	_ = chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *cdpruntime.EventConsoleAPICalled:
			var parts []string
			for _, a := range ev.Args {
				if len(a.Value) > 0 {
					parts = append(parts, string(a.Value))
				} else {
					parts = append(parts, a.Description)
				}
			}
			fmt.Fprintf(tb.console, "%s %s: %s\n", time.Now().Format("15:04:05.000"), ev.Type, strings.Join(parts, " "))
		case *cdpruntime.EventExceptionThrown:
			fmt.Fprintf(tb.console, "%s exception: %s\n", time.Now().Format("15:04:05.000"), ev.ExceptionDetails.Text+" "+describe(ev.ExceptionDetails.Exception))
		}
	})
	return tb
}

// firstTab is the tab the browser opened with.
func (b *browser) firstTab(name string) *tab { return b.track(name, b.ctx) }

// newTab opens another tab of the same profile: it shares localStorage,
// the service worker and the connection pool with the others.
func (b *browser) newTab(name string) *tab {
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatal(err)
	}
	return b.track(name, ctx)
}

// isolatedTab opens a tab in a new browser context: its own storage and
// cookies, like a different person's browser.
func (b *browser) isolatedTab(name string) *tab {
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatal(err)
	}
	return b.track(name, ctx)
}

// screenshot saves the tab's page to the artefact directory.
func (tb *tab) screenshot(label string) string {
	tb.b.shots++
	name := fmt.Sprintf("%s-%s-%02d-%s.png", sanitize(tb.b.t.Name()), tb.name, tb.b.shots, label)
	p := filepath.Join(artefacts, name)
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	img, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.b.t.Logf("screenshot %s: %v", label, err)
		return ""
	}
	if err := os.WriteFile(p, img, 0o644); err != nil {
		tb.b.t.Logf("screenshot %s: %v", label, err)
		return ""
	}
	tb.b.t.Logf("screenshot: %s", p)
	return p
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' || r == ':' {
			return '_'
		}
		return r
	}, s)
}

// fatalf keeps the tab's screenshot, DOM, console and storage, then fails
// the test.
func (tb *tab) fatalf(format string, args ...any) {
	tb.b.t.Helper()
	if p := tb.screenshot("failure"); p != "" {
		// The DOM next to the picture: attributes are what the tests query.
		ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
		html, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
		cancel()
		if err == nil {
			_ = os.WriteFile(strings.TrimSuffix(p, ".png")+".html", []byte(html), 0o644)
		}
		_ = os.WriteFile(strings.TrimSuffix(p, ".png")+".console.txt", []byte(tb.console.String()), 0o644)
		// The tab's storage (session, outbox, room cache): what the Syncer
		// would act on next.
		ctx, cancel = context.WithTimeout(tb.ctx, 5*time.Second)
		storage, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(Object.assign({}, localStorage), null, 1)`))
		cancel()
		if err == nil {
			_ = os.WriteFile(strings.TrimSuffix(p, ".png")+".storage.json", []byte(storage), 0o644)
		}
	}
	tb.b.t.Fatalf(tb.name+": "+format, args...)
}

func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.b.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.fatalf("%v", err)
	}
}

func (tb *tab) navigate(url string) {
	tb.b.t.Helper()
	tb.do(chromedp.Navigate(url))
}

// eval runs JavaScript in the page and decodes its result.
func eval[T any](tb *tab, js string) T {
	tb.b.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// waitFor polls a JavaScript condition until it is true.
func (tb *tab) waitFor(what, js string, timeout time.Duration) {
	tb.b.t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+js+")"))
		cancel()
		if err == nil && ok {
			return
		}
		if err != nil {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			tb.fatalf("timed out after %s waiting for %s (%s) %s", timeout, what, js, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Selectors of the elements tests use, by data-testid.
func testid(id string) string { return fmt.Sprintf(`[data-testid=%q]`, id) }

// ready waits for the wasm to have mounted the app.
func (tb *tab) ready() {
	tb.b.t.Helper()
	tb.waitFor("the app to start", `document.querySelector('[data-testid=app][data-ready=true]')`, 60*time.Second)
}

// join fills the join form.
func (tb *tab) join(name string) {
	tb.b.t.Helper()
	tb.ready()
	tb.waitFor("the join form", `document.querySelector('`+testid("name")+`') && !document.querySelector('`+testid("name")+`').disabled`, 10*time.Second)
	eval[bool](tb, `(document.querySelector('`+testid("name")+`').value = '', true)`)
	tb.do(
		chromedp.SendKeys(chromedp.CSS(testid("name")), name),
		chromedp.Click(chromedp.CSS(testid("join"))),
	)
}

// inRoom waits until the room view shows and is connected.
func (tb *tab) inRoom(room string) {
	tb.b.t.Helper()
	tb.waitFor("the room "+room, `location.pathname === '/r/`+room+`' && document.querySelector('`+testid("message")+`') && !document.querySelector('`+testid("message")+`').disabled`, 15*time.Second)
	tb.waitFor("connected", `document.querySelector('`+testid("connection")+`').dataset.state === 'connected'`, 15*time.Second)
}

// enterLobby opens the app at base, joins as name and waits for the lobby:
// the way most scenarios begin.
func (tb *tab) enterLobby(base, name string) {
	tb.b.t.Helper()
	tb.navigate(base + "/")
	tb.join(name)
	tb.inRoom("lobby")
}

// send types text into the composer and presses Enter.
func (tb *tab) send(text string) {
	tb.b.t.Helper()
	tb.do(
		chromedp.Click(chromedp.CSS(testid("message"))),
		chromedp.SendKeys(chromedp.CSS(testid("message")), text),
		pressEnter(),
	)
}

// pressEnter presses Enter the way a keyboard does: one keyDown that
// carries its text, so the page's preventDefault suppresses the newline.
// (chromedp's SendKeys sends the character as a separate "char" event that
// no keydown handler can cancel.)
func pressEnter() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		down := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyDown, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13, Text: "\r", UnmodifiedText: "\r"}
		if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, down); err != nil {
			return err
		}
		up := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyUp, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13}
		_, err := cdp.Call(ctx, t, input.DispatchKeyEvent, up)
		return err
	})
}

// texts returns the texts of the text messages in the log, in order.
func (tb *tab) texts() []string {
	return eval[[]string](tb, `Array.from(document.querySelectorAll('[data-testid=log] li[data-kind=text] .text')).map(e => e.textContent)`)
}

// seqs returns every data-seq in the log, in order.
func (tb *tab) seqs() []int {
	return eval[[]int](tb, `Array.from(document.querySelectorAll('[data-testid=log] li[data-seq]')).map(e => +e.dataset.seq)`)
}

// waitText waits until a text message with exactly this text is shown.
func (tb *tab) waitText(text string, timeout time.Duration) {
	tb.b.t.Helper()
	js, _ := json.Marshal(text)
	tb.waitFor("message "+string(js), `Array.from(document.querySelectorAll('[data-testid=log] li[data-seq][data-kind=text] .text')).some(e => e.textContent === `+string(js)+`)`, timeout)
}

func describe(o *cdpruntime.RemoteObject) string {
	if o == nil {
		return ""
	}
	return o.Description
}
