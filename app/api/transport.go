//go:build !js

package api

import (
	"bytes"
	"context"
	"io"
	"net/http"
)

// roundTrip sends one request with net/http.
func (c *Client) roundTrip(ctx context.Context, url string, r request) (rawResponse, error) {
	var rd io.Reader
	if r.body != nil {
		rd = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, url, rd)
	if err != nil {
		return rawResponse{}, err
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	if r.noRedirect {
		nc := *hc
		nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		hc = &nc
	}
	resp, err := hc.Do(req)
	if err != nil {
		return rawResponse{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return rawResponse{}, err
	}
	return rawResponse{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: data}, nil
}
