package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/app/api"
	"github.com/parley-chat/parley/shared"
)

// chatter is one of the well-behaved pair: the app's own client, a session,
// a poller following the room from where it joined and a sender. Anything
// but a clean answer is a problem: the attacks must not reach the pair.
type chatter struct {
	name  string
	api   *api.Client
	token string
	after uint64
	epoch string

	sentAll sync.WaitGroup // done when send returns

	mu    sync.Mutex
	seen  []shared.Message
	sent  []string // texts acknowledged, in order
	probs []string
}

const pairRoom = "hostile"

func newChatter(t *testing.T, h *hostile, n int, name string) *chatter {
	t.Helper()
	ctx := context.Background()
	c := &chatter{name: name, api: &api.Client{Base: h.base, HTTP: h.client(n)}}
	tok, err := h.join(ctx, n, name)
	require.NoError(t, err)
	c.token = tok
	h.mu.Lock()
	h.tokens[name] = tok
	h.mu.Unlock()
	head, err := c.api.Poll(ctx, tok, pairRoom, shared.PollRequest{Wait: shared.Ptr(0), Limit: shared.Ptr(1)})
	require.NoError(t, err)
	c.after, c.epoch = head.Next, head.Epoch
	c.sentAll.Add(1)
	return c
}

func (c *chatter) problem(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.probs = append(c.probs, fmt.Sprintf(format, args...))
}

// poll follows the room until ctx ends, as the app does.
func (c *chatter) poll(ctx context.Context) {
	after := c.after
	for ctx.Err() == nil {
		pr, err := c.api.Poll(ctx, c.token, pairRoom, shared.PollRequest{After: shared.Ptr(after), Epoch: c.epoch, Wait: shared.Ptr(5), Limit: shared.Ptr(50)})
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			c.problem("poll after %d: %v", after, err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if pr.Reset || pr.Gap || pr.Epoch != c.epoch {
			c.problem("poll after %d: reset=%v gap=%v epoch %q", after, pr.Reset, pr.Gap, pr.Epoch)
			return
		}
		for _, m := range pr.Messages {
			if m.Seq != after+1 {
				c.problem("seq %d after %d", m.Seq, after)
				return
			}
			after = m.Seq
		}
		if pr.Next != after {
			c.problem("next %d after seq %d", pr.Next, after)
			return
		}
		c.mu.Lock()
		c.seen = append(c.seen, pr.Messages...)
		c.mu.Unlock()
	}
}

// send posts "name NNN" about 25 times a second: at least min messages,
// and on until the attacks are done.
func (c *chatter) send(ctx context.Context, min int, attacksDone *atomic.Bool) {
	defer c.sentAll.Done()
	for i := 0; i < min || !attacksDone.Load(); i++ {
		text := fmt.Sprintf("%s %03d", c.name, i)
		m, err := c.api.Send(ctx, c.token, pairRoom, shared.SendRequest{Text: text, ClientMsgID: api.NewClientMsgID()})
		if ctx.Err() != nil {
			return
		}
		if err != nil || m.Author != c.name || m.Text != text {
			c.problem("send %q: %+v, %v", text, m, err)
			return
		}
		c.mu.Lock()
		c.sent = append(c.sent, text)
		c.mu.Unlock()
		time.Sleep(40 * time.Millisecond)
	}
}

func (c *chatter) acked() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sent)
}

func (c *chatter) sentTexts() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.sent...)
}

func (c *chatter) problems() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.probs...)
}

// textsFrom is what c received from author, in order.
func (c *chatter) textsFrom(author string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.seen {
		if m.Kind == shared.KindText && m.Author == author {
			out = append(out, m.Text)
		}
	}
	return out
}

func (c *chatter) countFrom(author string) int { return len(c.textsFrom(author)) }

func (c *chatter) hasAll(o *chatter) bool { return c.countFrom(o.name) >= o.acked() }
