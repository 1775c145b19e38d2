package chat

import (
	"encoding/json"

	"github.com/parley-chat/parley/shared"
)

// busEvent is one thing a tab tells the other tabs of a room. Each kind is
// its own type, so the receiving side is a type switch the compiler checks.
type busEvent interface{ busEvent() }

// batchEvent is the answer of the leader's poll.
type batchEvent struct{ Resp shared.PollResponse }

// statusEvent is the leader's connection state, and why a name is needed.
type statusEvent struct {
	Conn     ConnState
	NeedJoin string
}

// membersEvent is the room's member list as the leader last fetched it.
type membersEvent struct{ Members []shared.Member }

// sentEvent is a message the leader's send got acknowledged.
type sentEvent struct{ Msg shared.Message }

// helloEvent is a new tab asking the leader for status and members.
type helloEvent struct{}

// outboxEvent says the outbox in storage changed; the leader sends it.
type outboxEvent struct{}

// wakeEvent cuts short every tab's wait for a retry.
type wakeEvent struct{}

func (batchEvent) busEvent()   {}
func (statusEvent) busEvent()  {}
func (membersEvent) busEvent() {}
func (sentEvent) busEvent()    {}
func (helloEvent) busEvent()   {}
func (outboxEvent) busEvent()  {}
func (wakeEvent) busEvent()    {}

// busEnvelope is the JSON form of a busEvent: exactly one field is set.
type busEnvelope struct {
	Batch   *shared.PollResponse `json:"batch,omitempty"`
	Status  *statusEvent         `json:"status,omitempty"`
	Members *[]shared.Member     `json:"members,omitempty"`
	Sent    *shared.Message      `json:"sent,omitempty"`
	Hello   bool                 `json:"hello,omitempty"`
	Outbox  bool                 `json:"outbox,omitempty"`
	Wake    bool                 `json:"wake,omitempty"`
}

func encodeEvent(e busEvent) ([]byte, error) {
	var env busEnvelope
	switch e := e.(type) {
	case batchEvent:
		env.Batch = &e.Resp
	case statusEvent:
		env.Status = &e
	case membersEvent:
		m := e.Members
		if m == nil {
			m = []shared.Member{}
		}
		env.Members = &m
	case sentEvent:
		env.Sent = &e.Msg
	case helloEvent:
		env.Hello = true
	case outboxEvent:
		env.Outbox = true
	case wakeEvent:
		env.Wake = true
	}
	return json.Marshal(env)
}

// decodeEvent reads a busEvent; false for anything else (a tab of another
// version, a corrupt message).
func decodeEvent(b []byte) (busEvent, bool) {
	var env busEnvelope
	if json.Unmarshal(b, &env) != nil {
		return nil, false
	}
	switch {
	case env.Batch != nil:
		return batchEvent{Resp: *env.Batch}, true
	case env.Status != nil:
		return *env.Status, true
	case env.Members != nil:
		return membersEvent{Members: *env.Members}, true
	case env.Sent != nil:
		return sentEvent{Msg: *env.Sent}, true
	case env.Hello:
		return helloEvent{}, true
	case env.Outbox:
		return outboxEvent{}, true
	case env.Wake:
		return wakeEvent{}, true
	}
	return nil, false
}
