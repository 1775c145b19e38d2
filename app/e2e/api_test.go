package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/parley-chat/parley/shared"
)

// apiJoin starts a session through the API, as another client would.
func (s *server) apiJoin(t *testing.T, name string) string {
	t.Helper()
	b, _ := json.Marshal(shared.SessionRequest{Name: name})
	resp, err := http.Post(s.URL+"/api/session", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("join %s: %s", name, resp.Status)
	}
	var sr shared.SessionResponse
	if err := json.NewDecoder(resp.Body).Decode(&sr); err != nil {
		t.Fatal(err)
	}
	return sr.Token
}

// apiSend posts a message through the API.
func (s *server) apiSend(t *testing.T, token, room, text string) {
	t.Helper()
	b, _ := json.Marshal(shared.SendRequest{Text: text})
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/rooms/"+room+"/messages", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("send: %s", resp.Status)
	}
}

// legacySend is the textbook page's $.ajax POST to /send_msg/.
func (s *server) legacySend(t *testing.T, name, content string) {
	t.Helper()
	form := url.Values{"content": {content}, "name": {name}}
	resp, err := http.Post(s.URL+"/send_msg/", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/send_msg/: %s", resp.Status)
	}
}

// count returns how many stored messages have this text.
func count(msgs []shared.Message, text string) int {
	n := 0
	for _, m := range msgs {
		if m.Text == text {
			n++
		}
	}
	return n
}
