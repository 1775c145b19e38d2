package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parley-chat/parley/shared"
)

// Notification is what an append publishes: the stored message with its
// room's epoch. A consumer whose room is at Seq-1 in Epoch can take it as
// is; any other position means it missed something and must fill from the
// Stream (Store.Range) before waking anyone.
type Notification struct {
	Room    string
	Epoch   string
	Seq     uint64
	Message shared.Message
}

// NotifierOptions configure a Notifier.
type NotifierOptions struct {
	// Prefix must be the Store's; DefaultPrefix when empty.
	Prefix string
	// OnNotify receives each notification, in the order Redis delivered
	// them. It runs on Run's goroutine and must return quickly: a slow
	// callback delays the liveness probe's answer too.
	OnNotify func(Notification)
	// OnResync is called after every (re)subscription, the first included:
	// notifications published while there was no subscription are lost
	// (pub/sub is at-most-once), so the consumer must check every room it
	// serves against the Stream. Same goroutine as OnNotify.
	OnResync func()
	// ProbeInterval is how often the subscription is probed (default 2s);
	// ProbeTimeout how long a probe may take to come back (default 2s).
	// A wedged subscription is thus rebuilt within their sum.
	ProbeInterval, ProbeTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts to
	// subscribe while Redis is unreachable (defaults 100ms and 5s); the
	// wait doubles from one to the other, with jitter.
	MinBackoff, MaxBackoff time.Duration
	// Logger gets a line per lost subscription; slog.Default() when nil.
	Logger *slog.Logger
}

// Notifier holds a process's one pub/sub subscription to every room's
// notifications and keeps it alive: it probes it by publishing to a private
// channel and expecting its own probe back, and rebuilds it when the probe
// does not return (Redis restarted, the connection was killed, or it
// wedged while PUBLISH kept succeeding).
type Notifier struct {
	rdb      *redis.Client
	opt      NotifierOptions
	notify   string
	probe    string
	healthy  atomic.Bool
	mu       sync.Mutex
	lastErr  error
	running  atomic.Bool
	probeSeq uint64
}

// NewNotifier returns a Notifier using rdb (which it does not close); Run
// starts it.
func NewNotifier(rdb *redis.Client, opt NotifierOptions) *Notifier {
	if opt.Prefix == "" {
		opt.Prefix = DefaultPrefix
	}
	if opt.OnNotify == nil {
		opt.OnNotify = func(Notification) {}
	}
	if opt.OnResync == nil {
		opt.OnResync = func() {}
	}
	if opt.ProbeInterval <= 0 {
		opt.ProbeInterval = 2 * time.Second
	}
	if opt.ProbeTimeout <= 0 {
		opt.ProbeTimeout = 2 * time.Second
	}
	if opt.MinBackoff <= 0 {
		opt.MinBackoff = 100 * time.Millisecond
	}
	if opt.MaxBackoff < opt.MinBackoff {
		opt.MaxBackoff = max(5*time.Second, opt.MinBackoff)
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	k := keys{opt.Prefix}
	return &Notifier{rdb: rdb, opt: opt, notify: k.notify(), probe: k.probe(random())}
}

// NewNotifier returns a Notifier on the store's client and prefix, which
// is what an instance using s wants: a Notifier under another prefix would
// hear another deployment.
func (s *Store) NewNotifier(opt NotifierOptions) *Notifier {
	opt.Prefix = s.opt.Prefix
	return NewNotifier(s.rdb, opt)
}

// Healthy reports whether the subscription is up and its last probe came
// back in time. While it is false, notifications may be lost and the HTTP
// layer should answer 503 unavailable with Retry-After.
func (n *Notifier) Healthy() bool { return n.healthy.Load() }

// Err is why the subscription was last lost, nil if it never was.
func (n *Notifier) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lastErr
}

var (
	errWedged = errors.New("probe not answered in time: subscription wedged")
	errNoSub  = errors.New("probe reached no subscriber: subscription lost")
)

// ErrRunning is returned by Run when the Notifier already runs.
var ErrRunning = errors.New("redisstore: notifier already running")

// Run keeps the subscription until ctx ends, then returns ctx's error. It
// owns every goroutine and connection it starts and leaves none behind.
func (n *Notifier) Run(ctx context.Context) error {
	if !n.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer n.running.Store(false)
	backoff := n.opt.MinBackoff
	for {
		start := time.Now()
		subscribed, err := n.session(ctx)
		n.healthy.Store(false)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		n.mu.Lock()
		n.lastErr = err
		n.mu.Unlock()
		// A subscription that lived through a probe or two worked: rebuild
		// it at once, since every moment without one loses notifications.
		// One that fails as soon as it is made (Redis flapping, publishes
		// and subscriptions reaching different servers) backs off like a
		// failed connect, or it would spin and resync the consumer in a loop.
		if subscribed && time.Since(start) > n.opt.ProbeInterval+n.opt.ProbeTimeout {
			backoff = n.opt.MinBackoff
			n.opt.Logger.Warn("redis subscription lost; rebuilding it", "err", err)
			continue
		}
		n.opt.Logger.Warn("redis subscription failed; retrying", "err", err, "in", backoff)
		// Jitter spreads the reconnects of many instances after an outage.
		wait := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, n.opt.MaxBackoff)
	}
}

// session subscribes once and serves the subscription until it fails or
// ctx ends. subscribed reports whether it got as far as subscribing.
func (n *Notifier) session(ctx context.Context) (subscribed bool, err error) {
	ps := n.rdb.Subscribe(ctx)
	defer ps.Close()
	// Receive does not watch ctx; closing the PubSub ends a blocked read.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()

	subCtx, cancel := context.WithTimeout(ctx, n.opt.ProbeTimeout)
	err = ps.Subscribe(subCtx, n.notify, n.probe)
	cancel()
	if err != nil {
		return false, fmt.Errorf("subscribe: %w", err)
	}
	// Redis confirms each channel; until then the subscription may not
	// exist yet, and a resync before it could miss what comes in between.
	deadline := time.Now().Add(n.opt.ProbeTimeout)
	for confirmed := 0; confirmed < 2; {
		wait := time.Until(deadline)
		if wait <= 0 { // 0 would mean no timeout at all
			return false, errors.New("subscribe: not confirmed in time")
		}
		msg, err := ps.ReceiveTimeout(ctx, wait)
		if err != nil {
			return false, fmt.Errorf("subscribe: %w", err)
		}
		switch msg := msg.(type) {
		case *redis.Subscription:
			confirmed++
		case *redis.Message:
			n.handle(msg, nil)
		}
	}
	n.healthy.Store(true)
	n.opt.OnResync()

	var (
		pending   string // payload of the probe in flight, "" when none
		nextProbe = time.Now().Add(n.opt.ProbeInterval)
		probeDue  time.Time
	)
	for {
		now := time.Now()
		if pending == "" && !now.Before(nextProbe) {
			n.probeSeq++
			pending = strconv.FormatUint(n.probeSeq, 10)
			probeDue = now.Add(n.opt.ProbeTimeout)
			pubCtx, cancel := context.WithTimeout(ctx, n.opt.ProbeTimeout)
			receivers, err := n.rdb.Publish(pubCtx, n.probe, pending).Result()
			cancel()
			if err != nil {
				return true, fmt.Errorf("publish probe: %w", err)
			}
			if receivers == 0 {
				// Redis knows no subscriber on our channel: the server
				// lost it (restart, CLIENT KILL) before our read noticed.
				return true, errNoSub
			}
		}
		if pending != "" && !now.Before(probeDue) {
			n.healthy.Store(false)
			return true, errWedged
		}
		wait := time.Until(nextProbe)
		if pending != "" {
			wait = time.Until(probeDue)
		}
		msg, err := ps.ReceiveTimeout(ctx, max(wait, time.Millisecond))
		if err != nil {
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				continue
			}
			return true, fmt.Errorf("receive: %w", err)
		}
		switch msg := msg.(type) {
		case *redis.Message:
			if n.handle(msg, &pending) {
				nextProbe = time.Now().Add(n.opt.ProbeInterval)
			}
		case *redis.Subscription:
			// go-redis reconnects and resubscribes by itself after some
			// errors; whatever was published meanwhile is lost.
			if msg.Kind == "subscribe" {
				return true, errors.New("subscription was renewed underneath")
			}
		}
	}
}

// handle delivers a notification or checks off a probe; it reports whether
// msg answered the pending probe.
func (n *Notifier) handle(msg *redis.Message, pending *string) bool {
	switch msg.Channel {
	case n.probe:
		if pending != nil && *pending != "" && msg.Payload == *pending {
			*pending = ""
			n.healthy.Store(true)
			return true
		}
	case n.notify:
		note, err := decodeNotification(msg.Payload)
		if err != nil {
			// A payload we cannot read was not written by this package;
			// nothing of ours is lost by skipping it.
			n.opt.Logger.Error("undecodable notification", "err", err)
			return false
		}
		n.opt.OnNotify(note)
	}
	return false
}

func decodeNotification(payload string) (Notification, error) {
	var w struct {
		Room  string          `json:"room"`
		Epoch string          `json:"epoch"`
		Seq   uint64          `json:"seq"`
		Msg   json.RawMessage `json:"msg"`
	}
	if err := json.Unmarshal([]byte(payload), &w); err != nil {
		return Notification{}, fmt.Errorf("decode notification: %w", err)
	}
	m, err := decode(string(w.Msg), w.Seq)
	if err != nil {
		return Notification{}, fmt.Errorf("decode notification: %w", err)
	}
	return Notification{Room: w.Room, Epoch: w.Epoch, Seq: w.Seq, Message: m}, nil
}
