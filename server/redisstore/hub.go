package redisstore

import (
	"errors"

	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/shared"
)

var _ queue.Snapshotter = (*Store)(nil)

// NewHubNotifier returns the Notifier that keeps hub, a queue.Hub over s,
// in step with every other instance on the same Redis: each notification is
// handed to hub.Notify (which publishes it when it follows the room's last
// seq, and fills the room from the Stream first when not), and every
// (re)subscription makes the hub check each loaded room (hub.SyncAll),
// since what was published without a subscription is lost. The hub must be
// made with queue.Options.SyncInterval set, so that rooms with waiters are
// also checked periodically. opt's OnNotify and OnResync are replaced.
func (s *Store) NewHubNotifier(hub *queue.Hub, opt NotifierOptions) *Notifier {
	opt.OnNotify = func(n Notification) {
		hub.Notify(n.Room, n.Epoch, []shared.Message{n.Message})
	}
	opt.OnResync = hub.SyncAll
	return s.NewNotifier(opt)
}

// errNotSubscribed is Ready's error before the first subscription.
var errNotSubscribed = errors.New("redis subscription not established yet")

// Ready is nil while the subscription is up and probed in time, and
// otherwise says why not: what the HTTP layer asks before each send and
// poll (httpapi.Config.Ready), to answer 503 unavailable meanwhile.
func (n *Notifier) Ready() error {
	if n.Healthy() {
		return nil
	}
	if err := n.Err(); err != nil {
		return err
	}
	return errNotSubscribed
}
