package chat

import (
	"fmt"
	"strings"
	"time"
)

// ItemState is where an outbox item stands.
type ItemState string

// Outbox item states. A pending item is sent (or resent) automatically when
// the connection allows; a failed one was refused by the server and waits
// for the user to retry or discard it.
const (
	ItemPending ItemState = "pending"
	ItemFailed  ItemState = "failed"
)

// Item is one message the user wrote that the server has not acknowledged.
type Item struct {
	// ID is the client_msg_id: the server stores a repeated one only once,
	// so resending after a lost answer never posts twice.
	ID      string    `json:"id"`
	Room    string    `json:"room"`
	Text    string    `json:"text"`
	Created time.Time `json:"created"`
	State   ItemState `json:"state"`
	// Code is the server's error code for a failed item.
	Code string `json:"code,omitempty"`

	key string
}

// Outbox is the persisted queue of unacknowledged messages of one room. Each
// item lives under its own key (ordered by creation time) so that tabs
// adding and removing items at the same time never overwrite each other.
// Storage is the only copy: every method reads it, so what another tab
// wrote is seen at once and no cache can go stale.
type Outbox struct {
	store Storage
	room  string
}

// NewOutbox returns the outbox of room in store.
func NewOutbox(store Storage, room string) *Outbox { return &Outbox{store: store, room: room} }

func (o *Outbox) prefix() string { return keyOutbox + o.room + ":" }

// Add queues text under id and returns the item.
func (o *Outbox) Add(id, text string, now time.Time) (Item, error) {
	it := Item{ID: id, Room: o.room, Text: text, Created: now.UTC(), State: ItemPending}
	// Zero-padded nanoseconds sort lexically in creation order.
	it.key = fmt.Sprintf("%s%020d:%s", o.prefix(), now.UnixNano(), id)
	return it, setJSON(o.store, it.key, it)
}

// Items lists the queued items in the order they were written.
func (o *Outbox) Items() []Item {
	var items []Item
	for _, k := range o.store.Keys(o.prefix()) {
		var it Item
		if getJSON(o.store, k, &it) && it.ID != "" {
			it.key = k
			items = append(items, it)
		}
	}
	return items
}

// NextPending returns the oldest item waiting to be sent.
func (o *Outbox) NextPending() (Item, bool) {
	for _, it := range o.Items() {
		if it.State == ItemPending {
			return it, true
		}
	}
	return Item{}, false
}

// Remove deletes the item with id (acknowledged or discarded).
func (o *Outbox) Remove(id string) bool {
	for _, k := range o.store.Keys(o.prefix()) {
		if strings.HasSuffix(k, ":"+id) {
			o.store.Del(k)
			return true
		}
	}
	return false
}

// SetState marks the item with id as pending again (retry) or failed with
// the server's code.
func (o *Outbox) SetState(id string, st ItemState, code string) bool {
	for _, it := range o.Items() {
		if it.ID == id {
			it.State, it.Code = st, code
			return setJSON(o.store, it.key, it) == nil
		}
	}
	return false
}
