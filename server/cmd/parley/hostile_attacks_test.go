package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/parley-chat/parley/shared"
)

// attack is one row of the hostile suite: what it sends, and the answers
// docs/api.md promises for it. Every answer must be one of want (error
// status and code) or have a status in ok; every answer in want must come
// at least once; an answer with status 0 is a connection the server
// closed, or a transport error, which only want may allow. run may also
// check what its answers imply (a victim's cursor still holding its
// message) and return that as an error.
type attack struct {
	name string
	want []answer
	ok   []int
	run  func(ctx context.Context, h *hostile) ([]answer, error)
}

// attacks run all at once. Each leaves from its own loopback addresses
// (127.0.0.10 and up; 2 and 3 are the pair's), so that one attack's
// per-address limits do not answer another's requests. A new attack is one
// more entry.
var attacks = []attack{
	{
		name: "post as a live user through /send_msg/ (alice, Alice, Cyrillic аlice, fullwidth, bob)",
		want: []answer{{409, shared.CodeNameTaken}},
		run: func(ctx context.Context, h *hostile) ([]answer, error) {
			hc := h.client(10)
			var out []answer
			for _, name := range []string{"alice", "Alice", "аlice", "ａｌｉｃｅ", "bob", "b\u043eb"} {
				out = append(out, do(ctx, hc, h.base, req{"POST", "/send_msg/", url.Values{"content": {"impostor"}, "name": {name}}.Encode(), formType()}))
			}
			return out, nil
		},
	},
	{
		name: "textbook post flood: 30 posts at once from one address",
		want: []answer{{429, shared.CodeRateLimited}},
		ok:   []int{200},
		run: func(ctx context.Context, h *hostile) ([]answer, error) {
			hc := h.client(11)
			var out []answer
			for i := range 30 {
				text := fmt.Sprintf("flood %d", i)
				a := do(ctx, hc, h.base, req{"POST", "/send_msg/", url.Values{"content": {text}, "name": {"flooder"}, "room": {"tb-flood"}}.Encode(), formType()})
				if a.status == 200 {
					h.allow("tb-flood", "flooder", text)
				}
				out = append(out, a)
			}
			return out, nil
		},
	},
	{
		name: "drain another browser's textbook cursor (GET /get_msg/?name=carol from another browser)",
		ok:   []int{200, 302, 303},
		run:  drainCursor,
	},
	{
		name: "cross-site state changes on every endpoint (Origin evil or null, Sec-Fetch-Site cross-site or same-site), with the pair's real tokens",
		want: []answer{{403, shared.CodeCrossSite}},
		run: func(ctx context.Context, h *hostile) ([]answer, error) {
			hc := h.client(15)
			evil := []string{"Origin", "https://evil.example"}
			var out []answer
			for _, r := range []req{
				{"POST", "/api/session", `{"name":"csrf"}`, with(jsonType(""), evil...)},
				{"POST", "/api/session", "name=csrf", with(formType(), "Origin", "null")},
				{"POST", "/api/rooms/hostile/messages", `{"text":"csrf as alice"}`, with(jsonType(h.token("alice")), "Sec-Fetch-Site", "cross-site")},
				{"POST", "/api/rooms/hostile/messages", "text=csrf+as+alice", with(with(formType(), evil...), "Authorization", "Bearer "+h.token("alice"))},
				{"DELETE", "/api/session", "", with(jsonType(h.token("bob")), evil...)},
				{"PATCH", "/api/rooms/hostile/messages", `{"text":"csrf"}`, with(jsonType(h.token("bob")), evil...)},
				{"POST", "/send_msg/", "content=csrf&name=eve", with(formType(), evil...)},
				{"POST", "/send_msg/", "content=csrf&name=eve", with(formType(), "Sec-Fetch-Site", "same-site")},
			} {
				out = append(out, do(ctx, hc, h.base, r))
			}
			return out, nil
		},
	},
	{
		name: "look-alike, invisible and bidi names while alice and bob are present",
		want: []answer{{400, shared.CodeInvalidName}, {409, shared.CodeNameTaken}},
		run: func(ctx context.Context, h *hostile) ([]answer, error) {
			hc := h.client(16)
			var out []answer
			for _, name := range []string{
				"Alice", "аlice", "ａｌｉｃｅ", "al\u0456ce", "BOB", // taken by look
				"alice\u200b", "\ufeffalice", "\u202eecila", "\u200b", "\u2800", "\u3164", "x" + strings.Repeat("\u0301", 20), // refused
			} {
				out = append(out, do(ctx, hc, h.base, req{"POST", "/api/session", fmt.Sprintf(`{"name":%q}`, name), jsonType("")}))
			}
			return out, nil
		},
	},
	{
		name: "invisible-only, Zalgo and invalid UTF-8 texts from a session",
		want: []answer{{400, shared.CodeTextEmpty}, {400, shared.CodeTextInvalid}},
		run: func(ctx context.Context, h *hostile) ([]answer, error) {
			tok, err := h.join(ctx, 17, "mallory")
			if err != nil {
				return nil, err
			}
			hc := h.client(17)
			send := func(body string, header map[string]string) answer {
				return do(ctx, hc, h.base, req{"POST", "/api/rooms/hostile/messages", body, header})
			}
			bearer := func(m map[string]string) map[string]string { return with(m, "Authorization", "Bearer "+tok) }
			return []answer{
				send(`{"text":"\u200b\u2800\ufeff"}`, jsonType(tok)),
				// 1,000 marks: 2,000 would be refused as text_too_long first.
				send(`{"text":"`+"a"+strings.Repeat("\u0301", 1000)+`"}`, jsonType(tok)),
				send("{\"text\":\"bad \xff\xfe bytes\"}", jsonType(tok)),
				send(`{"text":"half \ud800 a pair"}`, jsonType(tok)),
				send("text=bad+%FF+bytes", bearer(formType())),
			}, nil
		},
	},
	{
		name: "the same parameter twice",
		want: []answer{{400, shared.CodeInvalidParam}, {400, shared.CodeBadRequest}},
		run: func(ctx context.Context, h *hostile) ([]answer, error) {
			hc := h.client(18)
			var out []answer
			for _, r := range []req{
				{"GET", "/api/rooms/hostile/messages?after=1&after=9&wait=0", "", nil},
				{"GET", "/api/rooms/hostile/messages?wait=0&WAIT=60", "", nil},
				{"GET", "/get_msg/?name=a&name=b", "", nil},
				{"POST", "/send_msg/", "content=x&content=y&name=dup", formType()},
			} {
				out = append(out, do(ctx, hc, h.base, r))
			}
			return out, nil
		},
	},
	{
		name: "900 KB request heads, forty at once",
		want: []answer{{431, ""}},
		run: func(ctx context.Context, h *hostile) ([]answer, error) {
			head := "GET /api/rooms/hostile/messages?wait=0 HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 900<<10) + "\r\n\r\n"
			// From eight addresses, five each: within the connection cap.
			return concurrently(40, func(i int) answer { return rawStatus(ctx, 40+i%8, h.addr, head, "", 0) }), nil
		},
	},
	{
		name: "bodies that stop half way (send, session, /send_msg/)",
		want: []answer{{400, shared.CodeBadRequest}},
		run: func(ctx context.Context, h *hostile) ([]answer, error) {
			tok, err := h.join(ctx, 20, "slowpoke")
			if err != nil {
				return nil, err
			}
			var out []answer
			for _, c := range []struct{ path, ctype, body string }{
				{"/api/rooms/hostile/messages", "application/json", `{"text":"slow and unstored"}`},
				{"/api/session", "application/json", `{"name":"slowpoke2"}`},
				{"/send_msg/", "application/x-www-form-urlencoded", "content=slow+and+unstored&room=tb-flood"},
			} {
				head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", c.path, tok, c.ctype, len(c.body))
				out = append(out, rawStatus(ctx, 20, h.addr, head, c.body[:len(c.body)/2], hostileReadTimeout))
			}
			return out, nil
		},
	},
	{
		name: "held polls: six from one address, then 32 anonymous ones from eight",
		want: []answer{{429, shared.CodeRateLimited}, {503, shared.CodeOverCapacity}},
		ok:   []int{200},
		run: func(ctx context.Context, h *hostile) ([]answer, error) {
			// Held 5 s, so that all of a step's polls are held together
			// even on a loaded machine.
			hold := func(n int) answer {
				return do(ctx, h.client(n), h.base, req{"GET", "/api/rooms/idle/messages?after=0&wait=5", "", nil})
			}
			out := concurrently(hostileMaxPollsPerAddr+2, func(int) answer { return hold(21) })
			return append(out, concurrently(32, func(i int) answer { return hold(22 + i%8) })...), nil
		},
	},
	{
		name: "connections held open from one address, beyond -max-conns-per-addr",
		want: []answer{{0, "closed"}},
		ok:   []int{200},
		run:  holdConnections,
	},
	{
		name: "15 new rooms at once from one session, each created by a first message",
		want: []answer{{429, shared.CodeRateLimited}},
		ok:   []int{201},
		run: func(ctx context.Context, h *hostile) ([]answer, error) {
			tok, err := h.join(ctx, 34, "roomer")
			if err != nil {
				return nil, err
			}
			hc := h.client(34)
			var out []answer
			for i := range 15 {
				out = append(out, do(ctx, hc, h.base, req{"POST", fmt.Sprintf("/api/rooms/bulk-%d/messages", i), `{"text":"first"}`, jsonType(tok)}))
			}
			return out, nil
		},
	},
	{
		name: "30 sessions at once from one address",
		want: []answer{{429, shared.CodeRateLimited}},
		ok:   []int{201},
		run: func(ctx context.Context, h *hostile) ([]answer, error) {
			hc := h.client(30)
			var out []answer
			for i := range 30 {
				name := fmt.Sprintf("swarm-%d", i)
				a := do(ctx, hc, h.base, req{"POST", "/api/session", fmt.Sprintf(`{"name":%q}`, name), jsonType("")})
				if a.status == 201 {
					h.sessionNamed(name)
				}
				out = append(out, a)
			}
			return out, nil
		},
	},
	{
		name: "reads of 100 made-up rooms without a session, then a real room's first message",
		ok:   []int{200, 201},
		run:  madeUpRooms,
	},
	{
		name: "one session polls 40 rooms it was never in",
		want: []answer{{429, shared.CodeRateLimited}},
		ok:   []int{200},
		run: func(ctx context.Context, h *hostile) ([]answer, error) {
			tok, err := h.join(ctx, 41, "wanderer")
			if err != nil {
				return nil, err
			}
			hc := h.client(41)
			var out []answer
			for i := range 40 {
				out = append(out, do(ctx, hc, h.base, req{"GET", fmt.Sprintf("/api/rooms/wander-%d/messages?wait=0", i), "", jsonType(tok)}))
			}
			if n := slices.IndexFunc(out, func(a answer) bool { return a.status != 200 }); n > 10 {
				return out, fmt.Errorf("%d joins before the first refusal, want at most the burst of 10", n)
			}
			return out, nil
		},
	},
	{
		name: "1 MB bodies (session, send, /send_msg/)",
		want: []answer{{413, shared.CodeBodyTooLarge}},
		run: func(ctx context.Context, h *hostile) ([]answer, error) {
			tok, err := h.join(ctx, 31, "bulky")
			if err != nil {
				return nil, err
			}
			hc := h.client(31)
			big := strings.Repeat("a", 1<<20)
			return []answer{
				do(ctx, hc, h.base, req{"POST", "/api/session", `{"name":"` + big + `"}`, jsonType("")}),
				do(ctx, hc, h.base, req{"POST", "/api/rooms/hostile/messages", `{"text":"` + big + `"}`, jsonType(tok)}),
				do(ctx, hc, h.base, req{"POST", "/send_msg/", "content=" + big, formType()}),
			}, nil
		},
	},
}

// madeUpRooms reads rooms nobody wrote to, more of them than -max-rooms;
// before, each read created the room (and a bolt bucket), and a full hub
// refused every new room until restart. Then a new session writes the
// first message of a new room, which must be stored.
func madeUpRooms(ctx context.Context, h *hostile) ([]answer, error) {
	hc := h.client(40)
	var out []answer
	for i := range 100 {
		out = append(out, do(ctx, hc, h.base, req{"GET", fmt.Sprintf("/api/rooms/void-%d/messages?wait=0", i), "", nil}))
	}
	tok, err := h.join(ctx, 42, "founder")
	if err != nil {
		return out, err
	}
	a := do(ctx, h.client(42), h.base, req{"POST", "/api/rooms/after-void/messages", `{"text":"a room of our own"}`, jsonType(tok)})
	out = append(out, a)
	if a.status != 201 {
		return out, fmt.Errorf("the first message of a new room after the made-up reads: %v", a)
	}
	return out, nil
}

// drainCursor: carol's browser registers her textbook cursor; another
// browser registers one for the same name, a third posts, and the other
// browser reads first. carol's own read must still get the post.
func drainCursor(ctx context.Context, h *hostile) ([]answer, error) {
	victim, thief, poster := h.client(12), h.client(13), h.client(14)
	q := "?name=carol&room=tb-cursor"
	out := []answer{
		do(ctx, victim, h.base, req{"GET", "/home/" + q, "", nil}),
		do(ctx, thief, h.base, req{"GET", "/home/" + q, "", nil}),
	}
	const text = "for carol"
	a := do(ctx, poster, h.base, req{"POST", "/send_msg/", url.Values{"content": {text}, "name": {"dave"}, "room": {"tb-cursor"}}.Encode(), formType()})
	out = append(out, a)
	if a.status != 200 {
		return out, fmt.Errorf("the post for carol was answered %v", a)
	}
	h.allow("tb-cursor", "dave", text)
	for _, who := range []struct {
		name string
		hc   *http.Client
	}{{"the other browser", thief}, {"carol's browser", victim}} {
		var m shared.LegacyMessage
		a, err := getJSON(ctx, who.hc, h.base+"/get_msg/"+q, &m)
		out = append(out, a)
		if err != nil {
			return out, fmt.Errorf("%s: %w", who.name, err)
		}
		if !m.Status || m.Msg != text {
			return out, fmt.Errorf("%s read %+v, want %q", who.name, m, text)
		}
	}
	return out, nil
}

// holdConnections opens four connections more than the cap from one
// address and keeps them all open, then asks for /healthz on each: the
// first ones are served, those over the cap were closed at accept.
func holdConnections(ctx context.Context, h *hostile) ([]answer, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 33)}}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for range hostileMaxConnsPerAddr + 4 {
		c, err := d.DialContext(ctx, "tcp", h.addr)
		if err != nil {
			return nil, err
		}
		conns = append(conns, c)
	}
	var out []answer
	for _, c := range conns {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			out = append(out, answer{0, "closed"})
			continue
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			out = append(out, answer{0, "closed"})
			continue
		}
		_ = resp.Body.Close()
		out = append(out, answer{status: resp.StatusCode})
	}
	if closed := len(out) - slices.IndexFunc(out, func(a answer) bool { return a.status == 0 }); closed != 4 {
		return out, fmt.Errorf("%d connections closed, want the 4 over the cap", closed)
	}
	return out, nil
}

// concurrently runs f(0..n-1) at once and returns their answers.
func concurrently(n int, f func(i int) answer) []answer {
	out := make([]answer, n)
	var wg sync.WaitGroup
	for i := range out {
		wg.Go(func() { out[i] = f(i) })
	}
	wg.Wait()
	return out
}

// hostileReadTimeout is the server's -read-timeout in the suite: short, so
// that a stalled body is answered within the run.
const hostileReadTimeout = 2 * time.Second

// hostileMaxPollsPerAddr and hostileMaxPolls are the suite's caps, small
// so that the flood reaches them with a few dozen polls.
const (
	hostileMaxPollsPerAddr = 4
	hostileMaxPolls        = 40
	hostileMaxConnsPerAddr = 12
	// hostileMaxRooms is above the rooms the suite writes to (about 30)
	// and below the made-up rooms it reads (100).
	hostileMaxRooms = 48
)
