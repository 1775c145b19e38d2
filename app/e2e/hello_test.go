package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
	"github.com/stretchr/testify/require"
)

var helloOnce struct {
	sync.Once
	dir string
	err error
}

// buildHello builds go-app's hello world for the browser with the flags
// of app.wasm, compressed the way web/ has app.wasm (same encodings, the
// same brotli quality).
func buildHello(t *testing.T) string {
	t.Helper()
	helloOnce.Do(func() {
		dir, err := os.MkdirTemp("", "parley-hello")
		if err != nil {
			helloOnce.err = err
			return
		}
		helloOnce.dir = dir
		wasm := filepath.Join(dir, "app.wasm")
		build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", wasm, "./app/e2e/testdata/hello")
		build.Dir, build.Env = repoRoot, append(os.Environ(), "GOOS=js", "GOARCH=wasm")
		if out, err := build.CombinedOutput(); err != nil {
			helloOnce.err = fmt.Errorf("building the hello world: %v\n%s", err, out)
			return
		}
		q := os.Getenv("BROTLI_Q")
		if q == "" {
			q = "11"
		}
		steps := [][]string{{"sh", "-c", "gzip -9 -n -c app.wasm > app.wasm.gz"}}
		if _, err := os.Stat(filepath.Join(webDir, "app.wasm.br")); err == nil {
			if _, err := exec.LookPath("brotli"); err == nil {
				steps = append(steps, []string{"brotli", "-q", q, "-f", "-o", "app.wasm.br", "app.wasm"})
			} else {
				steps = append(steps, []string{"go", "run", filepath.Join(repoRoot, "app/cmd/brotli"), "-q", q, "-o", "app.wasm.br", "app.wasm"})
			}
		}
		for _, s := range steps {
			c := exec.Command(s[0], s[1:]...)
			c.Dir = dir
			if out, err := c.CombinedOutput(); err != nil {
				helloOnce.err = fmt.Errorf("%v: %v\n%s", s, err, out)
				return
			}
		}
	})
	if helloOnce.err != nil {
		t.Fatal(helloOnce.err)
	}
	return helloOnce.dir
}

var helloRoute sync.Once

// helloServer serves the hello world with go-app's stock handler (its
// loader and worker), app.wasm precompressed as Parley serves it, and a
// local icon (go-app's default points to a remote host, which would make
// the worker's pre-cache fail here).
func helloServer(t *testing.T, dir string) *httptest.Server {
	t.Helper()
	helloRoute.Do(func() { app.Route("/", func() app.Composer { return &hello{} }) })
	raw, err := os.ReadFile(filepath.Join(dir, "app.wasm"))
	require.NoError(t, err)
	sum := sha256.Sum256(raw)
	version := hex.EncodeToString(sum[:8])
	mux := http.NewServeMux()
	mux.HandleFunc("/web/app.wasm", func(w http.ResponseWriter, r *http.Request) {
		name, enc := "app.wasm", ""
		ae := r.Header.Get("Accept-Encoding")
		if _, err := os.Stat(filepath.Join(dir, "app.wasm.br")); err == nil && strings.Contains(ae, "br") {
			name, enc = "app.wasm.br", "br"
		} else if strings.Contains(ae, "gzip") {
			name, enc = "app.wasm.gz", "gzip"
		}
		w.Header().Set("Content-Type", "application/wasm")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Vary", "Accept-Encoding")
		w.Header().Set("ETag", `"`+version+enc+`"`)
		if enc != "" {
			w.Header().Set("Content-Encoding", enc)
		}
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, "", time.Time{}, f)
	})
	mux.HandleFunc("/web/icon.png", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(webDir, "icon-192.png"))
	})
	mux.Handle("/", &app.Handler{
		Name:              "Hello",
		Description:       "An Hello World! example",
		Icon:              app.Icon{Default: "/web/icon.png"},
		Version:           version,
		WasmContentLength: strconv.Itoa(len(raw)),
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

type hello struct{ app.Compo }

func (h *hello) Render() app.UI { return app.H1().Text("Hello World!") }
