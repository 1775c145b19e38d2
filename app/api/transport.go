//go:build !js

package api

import (
	"bytes"
	"context"
	"io"
	"net/http"
)

// roundTrip sends one request with net/http.
func (c *Client) roundTrip(ctx context.Context, method, url, token string, body []byte) (rawResponse, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return rawResponse{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
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
