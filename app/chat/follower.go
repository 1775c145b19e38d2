package chat

import (
	"context"

	"github.com/parley-chat/parley/app/api"
)

// follower is the side of a Syncer that runs in every tab: it takes what
// the leader tab broadcasts, and fetches by itself only what it missed (at
// start, and when a broadcast batch shows a hole) with short polls that
// never wait.
type follower struct{ s *Syncer }

// onBus handles another tab's message. The Bus calls it from its own
// goroutine, one message at a time.
func (f *follower) onBus(data []byte) {
	s := f.s
	ev, ok := decodeEvent(data)
	if !ok {
		return
	}
	switch ev := ev.(type) {
	case batchEvent:
		s.yield()
		if s.received(ev.Resp).Behind {
			notify(s.catchKick)
		}
	case sentEvent:
		s.state.insert(ev.Msg)
		s.changed()
	case statusEvent:
		s.state.follow(ev)
		s.changed()
	case membersEvent:
		s.state.setMembers(ev.Members)
		s.changed()
	case helloEvent:
		if s.state.isLeader() {
			s.post(s.state.status())
			s.post(membersEvent{Members: s.state.memberList()})
		}
	case outboxEvent:
		s.changed()
		notify(s.flushKick)
	case wakeEvent:
		s.wakeLocal()
	}
}

// run catches up at start (unless this tab already leads) and whenever a
// batch showed a hole, until ctx ends.
func (f *follower) run(ctx context.Context) {
	s := f.s
	if !s.state.isLeader() {
		f.catchUp(ctx)
		if m, err := fetchMembers(ctx, s.cfg.API, s.cfg.Room); err == nil {
			s.state.setMembers(m)
			s.changed()
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.catchKick:
		}
		if !s.state.isLeader() {
			f.catchUp(ctx)
		}
	}
}

func (f *follower) catchUp(ctx context.Context) {
	s := f.s
	const limit = pollPage
	for i := 0; i < 50 && ctx.Err() == nil; i++ {
		resp, err := s.cfg.API.Poll(ctx, "", s.cfg.Room, s.state.pollRequest(0, limit))
		if err != nil {
			if api.IsNetwork(err) {
				s.setConn(Offline, false)
			}
			return
		}
		s.setConn(Connected, false)
		s.received(resp)
		if len(resp.Messages) < limit || resp.Reset {
			return
		}
	}
}
