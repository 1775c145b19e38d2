package chat

import (
	"time"

	"github.com/parley-chat/parley/shared"
)

// WarmUp runs, once, the JSON paths a room uses (poll answers, bus events,
// the room cache) on a small sample. In the browser, V8 compiles each wasm
// function the first time it runs, on the page's one thread: done here,
// while the page has just started, that work is not added to the first
// poll answer or the first burst.
func WarmUp() {
	msgs := []shared.Message{
		{Seq: 1, Kind: shared.KindText, Author: "a", Text: "x", ClientMsgID: "c", SentAt: time.Unix(1, 0)},
		{Seq: 2, Kind: shared.KindJoin, Author: "b", SentAt: time.Unix(2, 0)},
	}
	st := NewMemStorage()
	_ = setJSON(st, "r", shared.PollResponse{Room: "r", Epoch: "e", Messages: msgs, Next: 2})
	var resp shared.PollResponse
	getJSON(st, "r", &resp)
	for _, e := range []busEvent{batchEvent{Resp: resp}, statusEvent{Conn: Connected}, membersEvent{Members: []shared.Member{{Name: "a"}}}, sentEvent{Msg: msgs[0]}} {
		if b, err := encodeEvent(e); err == nil {
			decodeEvent(b)
		}
	}
	r := newRoomState("r", 10)
	r.apply(resp)
	_ = setJSON(st, "c", r.cache(10))
	r.view(10, nil)
}
