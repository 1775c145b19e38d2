package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/parley-chat/parley/server/boltstore"
	"github.com/parley-chat/parley/server/httpapi"
	"github.com/parley-chat/parley/server/memstore"
	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/server/redisstore"
	"github.com/parley-chat/parley/server/session"
	"github.com/parley-chat/parley/shared"
)

// redisSyncInterval is how often an instance on Redis checks the position
// of each room with held polls, so that a lost notification delays a
// message by at most this long.
const redisSyncInterval = time.Second

// retainEvery is how often the bolt store drops what -retain-messages and
// -retain-age no longer keep: a room overshoots its bound by at most a
// minute of traffic.
const retainEvery = time.Minute

// The bursts of the rate limits (-send-rate, -session-rate).
const (
	sendBurst    = 20
	sessionBurst = 20
	roomBurst    = 10
)

// backend is the message store run serves from, and what a store shared
// by several instances needs besides.
type backend struct {
	store queue.Store
	// sessions keeps sessions and presence; nil for the Manager's default,
	// this process's memory.
	sessions session.Store
	// cursors keeps the textbook readers' cursors; nil for memory.
	cursors session.CursorStore
	// sendLimit, sessionLimit and roomLimit are rate limiters shared by
	// instances; nil for this process's own.
	sendLimit, sessionLimit, roomLimit httpapi.Limiter
	// syncInterval is queue.Options.SyncInterval: set for a shared store.
	syncInterval time.Duration
	// upkeep, when set, is the store's own background work (bolt's
	// retention), run until its context ends.
	upkeep func(ctx context.Context)
	// follow starts keeping hub in step with the other instances (nil for
	// a store of our own) and returns the API's readiness check and the
	// function that stops it.
	follow func(hub *queue.Hub) (ready func() error, stop func())
}

// openBackend opens the store c names. A Redis that does not answer fails
// here, so a misconfigured deployment stops at start.
func openBackend(ctx context.Context, c config, log *slog.Logger) (*backend, error) {
	switch c.store {
	case "memory":
		return &backend{store: memstore.New(c.retainMessages)}, nil
	case "redis":
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		maxLen := int64(c.retainMessages)
		if maxLen == 0 {
			maxLen = -1 // redisstore's "no cap"
		}
		rs, err := redisstore.Open(octx, c.redis, redisstore.Options{Prefix: c.redisPrefix, MaxLen: maxLen})
		if err != nil {
			return nil, fmt.Errorf("-store redis: %w", err)
		}
		return &backend{store: rs, sessions: rs.Sessions(), cursors: rs.Sessions(), syncInterval: redisSyncInterval,
			sendLimit: rs.NewLimiter(c.sendRate, sendBurst), sessionLimit: rs.NewLimiter(c.sessionRate, sessionBurst),
			roomLimit: rs.NewLimiter(c.roomRate, roomBurst), follow: func(hub *queue.Hub) (func() error, func()) {
				return followRedis(rs, hub, log)
			}}, nil
	default:
		bs, err := boltstore.Open(c.data)
		if err != nil {
			return nil, err
		}
		ss, err := bs.Sessions(time.Now(), c.sessionTTL, shared.PresenceGrace)
		if err != nil {
			_ = bs.Close()
			return nil, err
		}
		keep := boltstore.Retention{Messages: c.retainMessages, Age: c.retainAge}
		return &backend{store: bs, sessions: ss, cursors: bs.Cursors(), upkeep: func(ctx context.Context) {
			bs.Retain(ctx, retainEvery, keep, log)
		}}, nil
	}
}

// followRedis runs the instance's one pub/sub subscription, which feeds
// hub every instance's messages, until stop is called.
func followRedis(rs *redisstore.Store, hub *queue.Hub, log *slog.Logger) (ready func() error, stop func()) {
	n := rs.NewHubNotifier(hub, redisstore.NotifierOptions{Logger: log})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := n.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("redis notifier stopped", "err", err)
		}
	}()
	return n.Ready, func() {
		cancel()
		<-done
	}
}
