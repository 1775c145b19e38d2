package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/parley-chat/parley/server/httpapi"
	"github.com/parley-chat/parley/server/memstore"
	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/server/session"
	"github.com/parley-chat/parley/shared"
)

// fuzzHandler is the whole API in process, with one session whose token the
// fuzz targets use.
func fuzzHandler(f *testing.F) (http.Handler, string) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub := queue.New(memstore.New(1000), queue.Options{History: 50, Logger: log})
	f.Cleanup(hub.Close)
	sessions := session.NewManager(session.Options{SendRate: rate.Inf, Logger: log})
	s, err := sessions.Create(context.Background(), "fuzzer")
	if err != nil {
		f.Fatal(err)
	}
	api, err := httpapi.New(httpapi.Config{Hub: hub, Sessions: sessions, Logger: log, SessionRate: rate.Inf})
	if err != nil {
		f.Fatal(err)
	}
	return api.Handler(), s.Token
}

// checkAnswer asserts the API's contract for any input: a success, or a
// 4xx with a JSON error whose code is in the status table; never a 5xx.
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder, ok ...int) {
	if rec.Body.Len() == 0 {
		return // the fuzz request's own deadline passed; nothing was answered
	}
	for _, s := range ok {
		if rec.Code == s {
			return
		}
	}
	if rec.Code < 400 || rec.Code >= 500 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var e shared.ErrorResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == nil || e.Error.Code == "" {
		t.Fatalf("error is not JSON with a code: %d %s", rec.Code, rec.Body)
	}
}

func FuzzPollQuery(f *testing.F) {
	h, tok := fuzzHandler(f)
	for _, q := range []string{"", "after=0&wait=0", "after=1&epoch=x", "before=3&limit=2", "after=x", "wait=61",
		"limit=0", "after=18446744073709551615", "after=1&before=2", "%zz", "after=&wait=", "after=1&after=2"} {
		f.Add("lobby", q, true)
	}
	f.Add("Bad Room", "", false)
	f.Fuzz(func(t *testing.T, room, query string, withToken bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, "GET", "/", nil)
		req.URL.Path = "/api/rooms/" + room + "/messages"
		req.URL.RawQuery = query
		if withToken {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if ctx.Err() != nil && rec.Code == http.StatusServiceUnavailable {
			// The 5 ms deadline passed while the room loaded (a loaded
			// machine): a cancelled request is answered 503, as it should be.
			return
		}
		// An unclean path (a room with "/" or "..") is redirected by the mux.
		checkAnswer(t, rec, http.StatusOK, http.StatusMovedPermanently, http.StatusTemporaryRedirect)
		if rec.Code == http.StatusOK && strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			var p shared.PollResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatalf("bad poll answer: %s", rec.Body)
			}
			for i := 1; i < len(p.Messages); i++ {
				if p.Messages[i].Seq != p.Messages[i-1].Seq+1 {
					t.Fatalf("not dense: %s", rec.Body)
				}
			}
		}
	})
}

func FuzzSendBody(f *testing.F) {
	h, tok := fuzzHandler(f)
	f.Add("application/json", `{"text":"hi","client_msg_id":"a"}`)
	f.Add("application/json", `{"text":5}`)
	f.Add("application/json", `{"text":"\u0000"}`)
	f.Add("application/x-www-form-urlencoded", "text=hi&client_msg_id=b")
	f.Add("application/x-www-form-urlencoded", "text=%ff")
	f.Add("multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nhi\r\n--x--\r\n")
	f.Add("text/plain", "hi")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, ctype, body string) {
		req := httptest.NewRequest("POST", "/api/rooms/lobby/messages", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		checkAnswer(t, rec, http.StatusCreated, http.StatusOK)
		if rec.Code == http.StatusCreated {
			var m shared.Message
			if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || m.Seq == 0 || m.Author != "fuzzer" {
				t.Fatalf("bad send answer: %s", rec.Body)
			}
			if _, err := shared.NormalizeText(m.Text); err != nil {
				t.Fatalf("stored text that fails validation: %q", m.Text)
			}
		}
	})
}

func FuzzSessionBody(f *testing.F) {
	h, _ := fuzzHandler(f)
	f.Add("application/json", `{"name":"alice"}`)
	f.Add("application/x-www-form-urlencoded", "name=%E5%B0%8F")
	f.Add("application/json", `{"name":"fuzzer"}`)
	f.Add("application/json", `null`)
	f.Fuzz(func(t *testing.T, ctype, body string) {
		req := httptest.NewRequest("POST", "/api/session", strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		checkAnswer(t, rec, http.StatusCreated)
	})
}
