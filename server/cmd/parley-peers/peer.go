package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/parley-chat/parley/server/cmd/internal/loadkit"
	"github.com/parley-chat/parley/shared"
)

// A peer is one server's long-poll protocol: how a client asks for what
// follows its cursor, how it reads the answer, and how the sender publishes.
// Everything else (connections, timing, checking) is the same code for both.
type peer interface {
	name() string
	// pollRequest appends the next poll for cursor to dst.
	pollRequest(dst []byte, cur *cursor) []byte
	// readPoll checks an answer to a poll, advances cur and calls got with
	// the index of each message it carries, in order.
	readPoll(resp *loadkit.Response, cur *cursor, got func(k int)) error
	// sendRequest appends the publication of message k to dst.
	sendRequest(dst []byte, k int) []byte
	// sendOK says whether an answer to a send means it was accepted.
	sendOK(resp *loadkit.Response) bool
	// spec is what a sender process needs to send as this peer does.
	spec() senderSpec
}

// cursor is where one client is: Parley's (seq, epoch), or the validators
// Nchan answered last.
type cursor struct {
	seq                uint64
	epoch              string
	lastModified, etag string
	view               loadkit.PollView // Parley's last answer, its slices reused
}

// messageText is the text of message k; both peers publish the same bytes.
func messageText(run string, k int) string {
	return "peers " + run + " " + strconv.Itoa(k)
}

// messageIndex is the k of a messageText of this run.
func messageIndex(run, text string) (int, error) {
	rest, ok := strings.CutPrefix(text, "peers "+run+" ")
	if !ok {
		return 0, fmt.Errorf("message %q is not from this run", text)
	}
	k, err := strconv.Atoi(rest)
	if err != nil || k < 0 {
		return 0, fmt.Errorf("message %q has no index", text)
	}
	return k, nil
}

// messageIndexBytes is messageIndex without allocating for a good text.
func messageIndexBytes(run string, text []byte) (int, error) {
	const prefix = "peers "
	n := len(prefix) + len(run) + 1
	if len(text) <= n || string(text[:len(prefix)]) != prefix || string(text[len(prefix):n-1]) != run || text[n-1] != ' ' || len(text)-n > 9 {
		return messageIndex(run, string(text))
	}
	k := 0
	for _, c := range text[n:] {
		if c < '0' || c > '9' {
			return messageIndex(run, string(text))
		}
		k = k*10 + int(c-'0')
	}
	return k, nil
}

// ---- Parley ----

type parleyPeer struct {
	host, room, token, run string
	// slowReads counts answers that needed encoding/json; Parley's own
	// answers never should.
	slowReads atomic.Int64
}

func (p *parleyPeer) name() string { return "Parley" }

func (p *parleyPeer) spec() senderSpec {
	return senderSpec{Peer: "parley", Addr: p.host, Room: p.room, Token: p.token, Run: p.run}
}

func (p *parleyPeer) pollRequest(dst []byte, cur *cursor) []byte {
	dst = append(dst, "GET /api/rooms/"...)
	dst = append(dst, p.room...)
	dst = append(dst, "/messages?after="...)
	dst = strconv.AppendUint(dst, cur.seq, 10)
	if cur.epoch != "" {
		dst = append(dst, "&epoch="...)
		dst = append(dst, cur.epoch...) // hex, no escaping needed
	}
	dst = append(dst, "&wait=25&limit=100 HTTP/1.1\r\nHost: "...)
	dst = append(dst, p.host...)
	return append(dst, "\r\n\r\n"...)
}

func (p *parleyPeer) readPoll(resp *loadkit.Response, cur *cursor, got func(k int)) error {
	if resp.Status != http.StatusOK {
		return fmt.Errorf("poll answered %d: %.200s", resp.Status, resp.Body)
	}
	v := &cur.view
	if err := v.Decode(resp.Body); err != nil {
		// Not in the plain form: read it the slow way, same checks.
		p.slowReads.Add(1)
		if err := leanToView(resp.Body, v); err != nil {
			return fmt.Errorf("poll answer: %w", err)
		}
	}
	if v.Reset && cur.epoch != "" {
		return fmt.Errorf("the room was reset (epoch %s to %s)", cur.epoch, v.Epoch)
	}
	// A gap (messages no longer kept) shows as missing indices, which the
	// caller counts as loss.
	if string(v.Epoch) != cur.epoch {
		cur.epoch = string(v.Epoch)
	}
	for i, seq := range v.Seqs {
		if seq <= cur.seq {
			return fmt.Errorf("seq %d again after %d", seq, cur.seq)
		}
		k, err := messageIndexBytes(p.run, v.Texts[i])
		if err != nil {
			return err
		}
		cur.seq = seq
		got(k)
	}
	if v.Next < cur.seq {
		return fmt.Errorf("next %d is before seq %d", v.Next, cur.seq)
	}
	cur.seq = v.Next
	return nil
}

// leanToView reads body with encoding/json into v.
func leanToView(body []byte, v *loadkit.PollView) error {
	var pr loadkit.LeanPoll
	if err := json.Unmarshal(body, &pr); err != nil {
		return err
	}
	*v = loadkit.PollView{Epoch: []byte(pr.Epoch), Next: pr.Next, Gap: pr.Gap, Reset: pr.Reset}
	for _, m := range pr.Messages {
		v.Seqs = append(v.Seqs, m.Seq)
		v.Texts = append(v.Texts, []byte(m.Text))
	}
	return nil
}

func (p *parleyPeer) sendRequest(dst []byte, k int) []byte {
	body, _ := json.Marshal(shared.SendRequest{Text: messageText(p.run, k), ClientMsgID: p.run + "-" + strconv.Itoa(k)})
	dst = append(dst, "POST /api/rooms/"...)
	dst = append(dst, p.room...)
	dst = append(dst, "/messages HTTP/1.1\r\nHost: "...)
	dst = append(dst, p.host...)
	dst = append(dst, "\r\nAuthorization: Bearer "...)
	dst = append(dst, p.token...)
	dst = append(dst, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, body...)
}

func (p *parleyPeer) sendOK(resp *loadkit.Response) bool { return resp.Status == http.StatusCreated }

// ---- Nchan ----

// nchanPeer speaks Nchan's long-poll protocol: each answer carries one
// message, and the next poll sends its Last-Modified and Etag back as
// If-Modified-Since and If-None-Match.
type nchanPeer struct {
	host, room, run string
}

func (p *nchanPeer) name() string { return "Nchan" }

func (p *nchanPeer) spec() senderSpec {
	return senderSpec{Peer: "nchan", Addr: p.host, Room: p.room, Run: p.run}
}

func (p *nchanPeer) pollRequest(dst []byte, cur *cursor) []byte {
	dst = append(dst, "GET /sub?id="...)
	dst = append(dst, p.room...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, p.host...)
	if cur.lastModified != "" {
		dst = append(dst, "\r\nIf-Modified-Since: "...)
		dst = append(dst, cur.lastModified...)
	}
	if cur.etag != "" {
		dst = append(dst, "\r\nIf-None-Match: "...)
		dst = append(dst, cur.etag...)
	}
	return append(dst, "\r\n\r\n"...)
}

func (p *nchanPeer) readPoll(resp *loadkit.Response, cur *cursor, got func(k int)) error {
	switch resp.Status {
	case http.StatusOK:
	case http.StatusNotModified, http.StatusRequestTimeout:
		// The subscriber timed out with nothing new: ask again.
		return nil
	default:
		return fmt.Errorf("poll answered %d: %.200s", resp.Status, resp.Body)
	}
	if resp.LastModified == "" {
		return fmt.Errorf("answer without Last-Modified")
	}
	k, err := messageIndex(p.run, string(resp.Body))
	if err != nil {
		return err
	}
	cur.lastModified, cur.etag = resp.LastModified, resp.ETag
	got(k)
	return nil
}

func (p *nchanPeer) sendRequest(dst []byte, k int) []byte {
	text := messageText(p.run, k)
	dst = append(dst, "POST /pub?id="...)
	dst = append(dst, p.room...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, p.host...)
	dst = append(dst, "\r\nContent-Type: text/plain\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(text)), 10)
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, text...)
}

// Nchan answers 201 when the channel had subscribers, 202 when it did not.
func (p *nchanPeer) sendOK(resp *loadkit.Response) bool {
	return resp.Status == http.StatusCreated || resp.Status == http.StatusAccepted
}
