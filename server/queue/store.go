// Package queue is Parley's long-poll core: per-room append-only logs with
// dense sequence numbers, a bounded in-memory window per room that serves
// polls, and waiters that are woken in O(1) per message by closing a channel.
// Every reader keeps its own cursor, so each client sees every message once,
// in order, without per-client queues.
package queue

import (
	"context"

	"github.com/parley-chat/parley/shared"
)

// RoomState is what a store knows about a room's log.
type RoomState struct {
	// Epoch names this incarnation of the log; it changes only when the log
	// is created anew, so a cursor is valid only with its epoch.
	Epoch string
	// First is the oldest seq the store still retains (Last+1 when empty).
	First uint64
	// Last is the newest seq, 0 when the log is empty.
	Last uint64
}

// Result is what Store.Append did with one message.
type Result struct {
	Message shared.Message
	// Duplicate is true when a message with the same room, author and
	// ClientMsgID was stored before; Message is then that original.
	Duplicate bool
}

// Store keeps the rooms' logs. Implementations must be safe for concurrent
// use, but the Hub calls Append from one goroutine only, so Append need not
// order concurrent callers.
type Store interface {
	// LoadRoom returns the room's state, creating the room (with a new epoch)
	// if it does not exist yet.
	LoadRoom(ctx context.Context, room string) (RoomState, error)
	// Append stores msgs atomically and durably, in order: when it returns
	// nil, every message is stored (on disk for durable stores) with Seq set
	// to the next seq of its room. A message whose ClientMsgID is not empty
	// and was already stored for the same room and author is not stored
	// again; its Result carries the original. Results are in input order.
	Append(ctx context.Context, msgs []shared.Message) ([]Result, error)
	// Range returns up to limit messages of room with from <= seq <= to,
	// oldest first. Messages no longer retained are simply absent.
	Range(ctx context.Context, room string, from, to uint64, limit int) ([]shared.Message, error)
	// Close flushes and releases the store.
	Close() error
}

// Snapshotter is implemented by a Store that several processes append to
// (Redis): Snapshot reads a room's state and up to limit of its messages
// with from <= seq <= to at once, so both belong to the same incarnation
// of the log. Hub.Sync uses it when the store has it, and LoadRoom then
// Range when not.
type Snapshotter interface {
	Snapshot(ctx context.Context, room string, from, to uint64, limit int) (RoomState, []shared.Message, error)
}
