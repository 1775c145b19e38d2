package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/parley-chat/parley/server/cmd/internal/loadkit"
	"github.com/parley-chat/parley/shared"
)

// probe is one bad request and the answer the docs promise for it.
type probe struct {
	method, path, body string
	header             map[string]string
	status             int
	code               string
}

var probes = []probe{
	{method: "GET", path: "/api/rooms/soak-0/messages?after=1&after=2&wait=0", status: 400, code: shared.CodeInvalidParam},
	{method: "GET", path: "/api/rooms/-bad/messages?wait=0", status: 400, code: shared.CodeInvalidRoom},
	{method: "POST", path: "/api/session", body: `{"name":"\u200b\u200b"}`, status: 400, code: shared.CodeInvalidName},
	{method: "POST", path: "/api/rooms/soak-0/messages", body: `{"text":"hi"}`, status: 401, code: shared.CodeUnauthorized},
	{method: "POST", path: "/api/rooms/soak-0/messages", body: `{"text":"hi"}`, header: map[string]string{"Authorization": "Bearer forged"}, status: 401, code: shared.CodeUnknownToken},
	{method: "POST", path: "/api/session", body: `{"name":"mallory"}`, header: map[string]string{"Origin": "https://evil.example"}, status: 403, code: shared.CodeCrossSite},
	{method: "POST", path: "/api/session", body: `{"name":"` + strings.Repeat("a", 1<<20) + `"}`, status: 413, code: shared.CodeBodyTooLarge},
}

// prober sends one bad request four times a second and checks its answer:
// error paths must neither leak nor stop being answered over a long run.
func (t *traffic) prober(ctx context.Context) {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer hc.CloseIdleConnections()
	for i := 0; loadkit.Sleep(ctx, 250*time.Millisecond); i++ {
		p := probes[i%len(probes)]
		status, code, err := p.do(ctx, hc, t.base)
		if ctx.Err() != nil {
			return
		}
		t.probes.Add(1)
		if err != nil || status != p.status || code != p.code {
			t.fail("%s %.60s: %d %q (%v), want %d %q", p.method, p.path, status, code, err, p.status, p.code)
		}
	}
}

func (p probe) do(ctx context.Context, hc *http.Client, base string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, p.method, base+p.path, strings.NewReader(p.body))
	if err != nil {
		return 0, "", err
	}
	if p.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range p.header {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var e shared.ErrorResponse
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &e) != nil || e.Error == nil {
		return resp.StatusCode, "", nil
	}
	return resp.StatusCode, e.Error.Code, nil
}

func newGet(ctx context.Context, url string) (*http.Request, error) {
	return http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
}
