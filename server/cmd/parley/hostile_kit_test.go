package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/parley-chat/parley/shared"
)

// The hostile suite's clients each leave from their own loopback address
// (127.0.0.N): the server's per-address limits then see an attacker as one
// address and the well-behaved pair as others, as they would on a network.

// from is an HTTP client whose connections leave from 127.0.0.n, with a
// cookie jar of its own (one browser).
func from(n int) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(n))}}
	jar, _ := cookiejar.New(nil) // its only error is for options, none given
	return &http.Client{
		Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 8, DisableCompression: true},
		Jar:       jar,
		// No redirects: /home/ answers one, and the attack only wants its cookie.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
}

// answer is what one attack request got: its status and, for errors, the
// code of the JSON envelope.
type answer struct {
	status int
	code   string
}

func (a answer) String() string { return fmt.Sprintf("%d %s", a.status, a.code) }

// req is one hand-made request: its body is sent as given (form, JSON or
// not even UTF-8), with the headers given.
type req struct {
	method, path, body string
	header             map[string]string
}

func formType() map[string]string {
	return map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
}

func jsonType(token string) map[string]string {
	h := map[string]string{"Content-Type": "application/json"}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	return h
}

// with returns h plus the pairs kv (key, value, key, value…).
func with(h map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// do sends r and decodes the answer's error code; a transport error is an
// answer with status 0 and the error as code, which no attack expects.
func do(ctx context.Context, hc *http.Client, base string, r req) answer {
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr, err := http.NewRequestWithContext(ctx, r.method, base+r.path, body)
	if err != nil {
		return answer{code: err.Error()}
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	resp, err := hc.Do(hr)
	if err != nil {
		return answer{code: err.Error()}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	a := answer{status: resp.StatusCode}
	var e shared.ErrorResponse
	if resp.StatusCode >= 400 && json.Unmarshal(b, &e) == nil && e.Error != nil {
		a.code = e.Error.Code
	}
	return a
}

// rawStatus writes head (and body) on a fresh connection from 127.0.0.n
// and returns the status of the answer, for what net/http's client will
// not send: a head of 900 KB, a body that stops half way.
func rawStatus(ctx context.Context, n int, addr, head, body string, stall time.Duration) answer {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(n))}}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return answer{code: err.Error()}
	}
	defer conn.Close()
	// Written in the background: the server may answer before reading it all.
	go func() { _, _ = io.WriteString(conn, head+body) }()
	_ = conn.SetReadDeadline(time.Now().Add(stall + 20*time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return answer{code: err.Error()}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	a := answer{status: resp.StatusCode}
	var e shared.ErrorResponse
	if json.Unmarshal(b, &e) == nil && e.Error != nil {
		a.code = e.Error.Code
	}
	return a
}

// rssKB reads the resident set of process pid from /proc.
func rssKB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// gauge reads one unlabelled sample from base's /metrics.
func gauge(ctx context.Context, base, name string) (float64, error) {
	var body []byte
	if _, err := getRaw(ctx, base+"/metrics", &body); err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no %s in /metrics", name)
}

// getJSON GETs u and decodes a 200's body into out. A 503 over_capacity
// is waited out and retried, as the app does: the held-poll flood may fill
// the anonymous share for a few seconds while this runs.
func getJSON(ctx context.Context, hc *http.Client, u string, out any) (answer, error) {
	for range 40 {
		hr, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return answer{}, err
		}
		resp, err := hc.Do(hr)
		if err != nil {
			return answer{code: err.Error()}, err
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		_ = resp.Body.Close()
		if err != nil {
			return answer{status: resp.StatusCode, code: err.Error()}, err
		}
		a := answer{status: resp.StatusCode}
		var e shared.ErrorResponse
		if resp.StatusCode >= 400 && json.Unmarshal(b, &e) == nil && e.Error != nil {
			a.code = e.Error.Code
		}
		if a.status == http.StatusServiceUnavailable && a.code == shared.CodeOverCapacity {
			select {
			case <-time.After(250 * time.Millisecond):
				continue
			case <-ctx.Done():
				return a, ctx.Err()
			}
		}
		if a.status != http.StatusOK {
			return a, fmt.Errorf("GET %s: %v", u, a)
		}
		return a, json.Unmarshal(b, out)
	}
	return answer{}, fmt.Errorf("GET %s: over capacity for 10 s", u)
}

// getRaw GETs u into *body and fails on any status but 200.
func getRaw(ctx context.Context, u string, body *[]byte) (int, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Do(hr)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	*body, err = io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %d", u, resp.StatusCode)
	}
	return resp.StatusCode, err
}
