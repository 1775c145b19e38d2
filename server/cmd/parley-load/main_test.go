package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/parley-chat/parley/server/httpapi"
	"github.com/parley-chat/parley/server/memstore"
	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/server/session"
	"github.com/parley-chat/parley/shared"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestHistQuantiles checks the reported percentiles against exact ones: the
// buckets promise 2%.
func TestHistQuantiles(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h hist
	var all []time.Duration
	for range 100000 {
		// Log-uniform from 10µs to 10s, like latencies under load.
		d := time.Duration(1e4 * math.Pow(10, 6*r.Float64()))
		h.add(d)
		all = append(all, d)
	}
	slices.Sort(all)
	for _, q := range []float64{0.5, 0.95, 0.99} {
		exact := all[int(q*float64(len(all)))-1]
		got := h.quantile(q)
		require.InEpsilon(t, float64(exact), float64(got), 0.021, "p%v", q*100)
	}
	require.Equal(t, all[len(all)-1], h.max)
	var empty hist
	require.Zero(t, empty.quantile(0.5))
}

func TestParseConfigBounds(t *testing.T) {
	_, err := parseConfig(nil, io.Discard)
	require.NoError(t, err)
	for _, args := range [][]string{
		{"-rooms", "0"},
		{"-rooms", "10", "-senders", "5"},
		{"-rooms", "100", "-pollers", "1000"},
		{"-messages", "0"},
		{"-duration", "2h"},
		{"-wait", "0"},
		{"-sessions-per-ip", "21"},
		{"-rate", "-1"},
	} {
		_, err := parseConfig(args, io.Discard)
		require.Error(t, err, "%v", args)
	}
}

// newServer runs the real HTTP API over a memory store in process; alter,
// if set, may rewrite poll answers to play a faulty server.
func newServer(t *testing.T, alter func(*shared.PollResponse)) string {
	t.Helper()
	hub := queue.New(memstore.New(0), queue.Options{})
	sessions := session.NewManager(session.Options{})
	api, err := httpapi.New(httpapi.Config{Hub: hub, Sessions: sessions})
	require.NoError(t, err)
	h := api.Handler()
	if alter != nil {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/messages") {
				inner.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			inner.ServeHTTP(rec, r)
			var pr shared.PollResponse
			if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &pr) != nil {
				w.WriteHeader(rec.Code)
				_, _ = w.Write(rec.Body.Bytes())
				return
			}
			alter(&pr)
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(pr)
		})
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		hub.Drain()
		srv.Close()
		hub.Close()
	})
	return srv.URL
}

func runLoad(t *testing.T, url string, extra ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	args := append([]string{"-url", url, "-rooms", "2", "-pollers", "5", "-senders", "4", "-messages", "6", "-rate", "0", "-wait", "2", "-drain", "5s"}, extra...)
	err := run(context.Background(), args, &out, &errOut)
	t.Logf("parley-load %s\n%s%s", strings.Join(args, " "), out.String(), errOut.String())
	return out.String(), err
}

// TestRunAgainstRealAPI drives the real handlers: every message reaches
// every poller, and the report says so.
func TestRunAgainstRealAPI(t *testing.T) {
	out, err := runLoad(t, newServer(t, nil))
	require.NoError(t, err)
	require.Contains(t, out, "committed   24 messages")
	require.Contains(t, out, "over 120 receipts") // 2 rooms × 5 pollers × 12 messages
	require.Contains(t, out, "0 lost, 0 duplicates, 0 gaps, 0 resets, 0 pollers with a different set; 0 failed requests")

	out, err = runLoad(t, newServer(t, nil), "-row", "-label", "t")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(out, "| t | 2 × 5 | 4 × 6 @ 0/s | 24 |"), out)
	require.True(t, strings.HasSuffix(out, "| ok |\n"), out)
}

// TestRunDetectsLossAndDuplicates plays servers that drop or repeat a
// message in their answers: the run must fail and say what it saw.
func TestRunDetectsLossAndDuplicates(t *testing.T) {
	drop := func(pr *shared.PollResponse) {
		pr.Messages = slices.DeleteFunc(pr.Messages, func(m shared.Message) bool { return m.Seq == 3 })
	}
	out, err := runLoad(t, newServer(t, drop))
	require.ErrorContains(t, err, "delivery failed")
	require.Contains(t, out, "10 lost") // seq 3 in each room, for 5 pollers each

	repeat := func(pr *shared.PollResponse) {
		for _, m := range pr.Messages {
			if m.Seq == 2 {
				pr.Messages = append(pr.Messages, m)
				break
			}
		}
	}
	out, err = runLoad(t, newServer(t, repeat))
	require.ErrorContains(t, err, "delivery failed")
	require.Contains(t, out, "10 duplicates")
}

// TestLessonRuns drives the -lesson mode against the real handlers: each
// mode's clients receive every message once, and the row says so.
func TestLessonRuns(t *testing.T) {
	for _, mode := range []string{"short", "long", "textbook"} {
		var out, errOut bytes.Buffer
		args := []string{"-url", newServer(t, nil), "-lesson", mode, "-pollers", "5", "-messages", "3", "-rate", "20", "-interval", "200ms", "-wait", "2", "-drain", "5s"}
		err := run(context.Background(), args, &out, &errOut)
		t.Logf("%s%s", out.String(), errOut.String())
		require.NoError(t, err, mode)
		require.Contains(t, out.String(), "| 3 × 5 @ 20.00/s | 15 |", mode)
		require.True(t, strings.HasSuffix(out.String(), "| ok |\n"), out.String())
	}
	_, err := parseConfig([]string{"-lesson", "medium"}, io.Discard)
	require.Error(t, err)
}
