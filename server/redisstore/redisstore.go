// Package redisstore is a queue.Store on Redis, so that several Parley
// instances can share rooms: each room is a Stream whose entry IDs are the
// room's seqs, a hash with its epoch and last seq, and idempotency keys that
// expire. One Lua script does a whole append atomically and publishes a
// notification, which every instance receives through one pub/sub
// subscription (see Notifier). docs/redis.md describes the layout and what
// survives a Redis crash.
package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parley-chat/parley/server/memstore"
	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/shared"
)

var _ queue.Store = (*Store)(nil)

// Defaults of Options.
const (
	DefaultPrefix = "parley:"
	// DefaultMaxLen keeps as many messages per room as the memory store.
	DefaultMaxLen = memstore.DefaultRetain
	// DefaultIDTTL is how long a client_msg_id is remembered: a day, so a
	// client offline overnight can still retry safely.
	DefaultIDTTL = 24 * time.Hour
)

// Options configure a Store.
type Options struct {
	// Prefix starts every key and channel, so deployments can share a
	// Redis; DefaultPrefix when empty.
	Prefix string
	// MaxLen caps each room's Stream (XADD MAXLEN, exact): older messages
	// are dropped, which readers see as a gap. DefaultMaxLen when 0; -1
	// keeps everything.
	MaxLen int64
	// IDTTL is how long an idempotency key lives; DefaultIDTTL when 0.
	// It is rounded up to whole seconds.
	IDTTL time.Duration
}

func (o Options) withDefaults() Options {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	switch {
	case o.MaxLen == 0:
		o.MaxLen = DefaultMaxLen
	case o.MaxLen < 0:
		o.MaxLen = 0 // the script's "no cap"
	}
	if o.IDTTL <= 0 {
		o.IDTTL = DefaultIDTTL
	}
	return o
}

// Keys and channels under the prefix p (rooms are [a-z0-9_-], authors have
// no control characters, so NUL separates the idempotency key's parts):
//
//	p+"incarnation"                         string: random, set once per data set
//	p+"rooms"                               set: every room that had a log in this data set
//	p+"meta:"+room                          hash: epoch, last
//	p+"log:"+room                           stream: ID <seq>-0, field m = message JSON without seq
//	p+"id:"+room+"\x00"+author+"\x00"+cmid  string: "<epoch> <seq>", expires after IDTTL
//	p+"notify"                              channel: every append's notification
//	p+"probe:"+instance                     channel: a Notifier's liveness probes
type keys struct{ p string }

func (k keys) incarnation() string      { return k.p + "incarnation" }
func (k keys) rooms() string            { return k.p + "rooms" }
func (k keys) meta(room string) string  { return k.p + "meta:" + room }
func (k keys) log(room string) string   { return k.p + "log:" + room }
func (k keys) notify() string           { return k.p + "notify" }
func (k keys) probe(inst string) string { return k.p + "probe:" + inst }
func (k keys) id(m shared.Message) string {
	return k.p + "id:" + m.Room + "\x00" + memstore.IDKey(m)
}

// Store is a queue.Store on Redis. It is safe for concurrent use, by any
// number of processes sharing the Redis and prefix.
type Store struct {
	rdb  *redis.Client
	own  bool // Close closes rdb
	opt  Options
	keys keys
}

// ErrRetryingClient is returned by New for a client that retries commands.
var ErrRetryingClient = errors.New("redisstore: the client retries commands; set redis.Options.MaxRetries to -1")

// New returns a Store using rdb, which it does not close. rdb must not retry
// commands (MaxRetries: -1): go-redis retries a command after a network
// error, and an append that Redis ran but whose reply was lost would be
// stored twice when it has no client_msg_id (joins and leaves have none).
func New(rdb *redis.Client, opt Options) (*Store, error) {
	if rdb.Options().MaxRetries != 0 { // go-redis stores -1 as 0
		return nil, ErrRetryingClient
	}
	opt = opt.withDefaults()
	return &Store{rdb: rdb, opt: opt, keys: keys{opt.Prefix}}, nil
}

// Open connects to the Redis at url (redis://host:port/db, or rediss://)
// and returns a Store that owns the connection. It fails when Redis does
// not answer, so a misconfigured deployment stops at start.
func Open(ctx context.Context, url string, opt Options) (*Store, error) {
	ro, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis URL: %w", err)
	}
	ro.MaxRetries = -1
	// Deadlines of the caller's context bound each command, so a stalled
	// Redis costs a request its own timeout, not the socket's.
	ro.ContextTimeoutEnabled = true
	rdb := redis.NewClient(ro)
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redis at %s: %w", ro.Addr, err)
	}
	s, err := New(rdb, opt)
	if err == nil {
		err = s.Check(ctx)
	}
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	s.own = true
	return s, nil
}

// Check refuses a Redis the store cannot keep its promises on: older than
// 7.0 (the scripts use 7.0's flags), or with an allkeys-* maxmemory policy,
// which evicts rooms' logs and metas under memory pressure (volatile-*
// policies evict only keys with a TTL, here the idempotency keys, which
// shortens their day but loses no message). What a managed Redis hides
// (INFO or CONFIG renamed away) is not held against it. Open calls Check.
func (s *Store) Check(ctx context.Context) error {
	if info, err := s.rdb.Info(ctx, "server").Result(); err == nil {
		for line := range strings.Lines(info) {
			v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:")
			if !ok {
				continue
			}
			major, _, _ := strings.Cut(v, ".")
			if n, err := strconv.Atoi(major); err == nil && n < 7 {
				return fmt.Errorf("redisstore needs Redis 7.0 or newer; this one is %s", v)
			}
		}
	}
	if cfg, err := s.rdb.ConfigGet(ctx, "maxmemory-policy").Result(); err == nil {
		if p := cfg["maxmemory-policy"]; strings.HasPrefix(p, "allkeys-") {
			return fmt.Errorf("redisstore: maxmemory-policy %s would evict messages; use noeviction (or a volatile-* policy)", p)
		}
	}
	return nil
}

// Client is the store's Redis client, e.g. for a Notifier.
func (s *Store) Client() *redis.Client { return s.rdb }

// Options are the store's options with defaults applied.
func (s *Store) Options() Options { return s.opt }

// random returns a fresh random name: the incarnation offered to the
// scripts, or the seed of a fresh epoch. Lua in Redis has no usable
// randomness, so it comes from here with every call.
func random() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

// LoadRoom implements queue.Store. A room that never had a message is not
// created: its epoch is derived from the data set's incarnation and the
// room's name, and the first append creates the room with that same epoch.
// The only key it writes for such a room is the prefix's incarnation key,
// once per data set, so reads of many room names do not fill Redis with
// rooms. (A room that had messages but lost its meta key is given a fresh
// epoch here, which is a write.)
func (s *Store) LoadRoom(ctx context.Context, room string) (queue.RoomState, error) {
	st, _, err := s.load(ctx, room, 0, 0, 0)
	if err != nil {
		return st, fmt.Errorf("load room %q: %w", room, err)
	}
	return st, nil
}

// load runs loadScript: the room's state and, when limit > 0, up to limit
// messages with from <= seq <= to.
func (s *Store) load(ctx context.Context, room string, from, to uint64, limit int) (queue.RoomState, []shared.Message, error) {
	v, err := loadScript.Run(ctx, s.rdb,
		[]string{s.keys.incarnation(), s.keys.rooms(), s.keys.meta(room), s.keys.log(room)},
		random(), random(), room, from, to, max(limit, 0)).StringSlice()
	if err != nil {
		return queue.RoomState{}, nil, err
	}
	if len(v) < 3 || len(v)%2 != 1 {
		return queue.RoomState{}, nil, fmt.Errorf("script returned %d values", len(v))
	}
	first, err1 := strconv.ParseUint(v[1], 10, 64)
	last, err2 := strconv.ParseUint(v[2], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return queue.RoomState{}, nil, err
	}
	var msgs []shared.Message
	for i := 3; i < len(v); i += 2 {
		seq, err := strconv.ParseUint(v[i], 10, 64)
		if err != nil {
			return queue.RoomState{}, nil, fmt.Errorf("seq %q: %w", v[i], err)
		}
		m, err := decode(v[i+1], seq)
		if err != nil {
			return queue.RoomState{}, nil, err
		}
		msgs = append(msgs, m)
	}
	return queue.RoomState{Epoch: v[0], First: first, Last: last}, msgs, nil
}

// PartialError is Append's error when Redis stored the first Stored
// messages of the batch and refused the next one; none after it was tried.
type PartialError struct {
	Stored int
	Err    error
}

func (e *PartialError) Error() string {
	return fmt.Sprintf("stored %d messages, then: %v", e.Stored, e.Err)
}

func (e *PartialError) Unwrap() error { return e.Err }

// Append implements queue.Store with one script call for the whole batch:
// one round trip, and the batch is applied atomically with respect to
// other instances.
//
// Partial failure: the script stores messages in order and stops at the
// first one Redis refuses (in practice a key of the wrong type; an
// out-of-memory Redis refuses the whole script before it starts). Then
// Append returns the results of the messages before it, which are stored
// and published, and a *PartialError; the rest are not stored. Any other
// error (connection lost, timeout) is ambiguous: the batch may or may not
// have been stored, which is why the client is not retried and why senders
// carry a client_msg_id, so their retry is answered with the original.
func (s *Store) Append(ctx context.Context, msgs []shared.Message) ([]queue.Result, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	ks := make([]string, 0, 2+3*len(msgs))
	ks = append(ks, s.keys.incarnation(), s.keys.rooms())
	args := make([]any, 0, 5+3*len(msgs))
	args = append(args, random(), random(), s.opt.MaxLen, int64((s.opt.IDTTL+time.Second-1)/time.Second), s.keys.notify())
	for _, m := range msgs {
		hasID := "0"
		if m.ClientMsgID != "" {
			hasID = "1"
		}
		// The seq is the entry's ID; storing it in the JSON too would
		// make the script rewrite the JSON.
		m.Seq = 0
		body, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("append: encode message: %w", err)
		}
		ks = append(ks, s.keys.meta(m.Room), s.keys.log(m.Room), s.keys.id(m))
		args = append(args, m.Room, hasID, body)
	}
	reply, err := appendScript.Run(ctx, s.rdb, ks, args...).Slice()
	if err != nil {
		return nil, fmt.Errorf("append %d messages: %w", len(msgs), err)
	}
	out := make([]queue.Result, 0, len(msgs))
	for i, r := range reply {
		fields, ok := r.([]any)
		if !ok || len(fields) < 2 {
			return out, fmt.Errorf("append: unexpected script reply %v", r)
		}
		str := func(j int) string {
			if j >= len(fields) {
				return ""
			}
			v, _ := fields[j].(string)
			return v
		}
		switch str(0) {
		case "err":
			return out, fmt.Errorf("append: %w", &PartialError{Stored: i, Err: errors.New(str(1))})
		case "new", "dup":
		default:
			return out, fmt.Errorf("append: unexpected script reply %v", r)
		}
		seq, err := strconv.ParseUint(str(2), 10, 64)
		if err != nil {
			return out, fmt.Errorf("append: seq %q: %w", str(2), err)
		}
		m := msgs[i]
		m.Seq = seq
		res := queue.Result{Message: m}
		if str(0) == "dup" {
			res.Duplicate = true
			// The original, unless it has left the Stream (MaxLen) while its
			// key lives; the retry then stands in for it, with its seq.
			if orig := str(3); orig != "" {
				if res.Message, err = decode(orig, seq); err != nil {
					return out, fmt.Errorf("append: original of %q: %w", m.ClientMsgID, err)
				}
			}
		}
		out = append(out, res)
	}
	if len(out) != len(msgs) {
		return out, fmt.Errorf("append: script answered %d of %d messages", len(out), len(msgs))
	}
	return out, nil
}

func decode(body string, seq uint64) (shared.Message, error) {
	var m shared.Message
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		return m, fmt.Errorf("decode message %d: %w", seq, err)
	}
	m.Seq = seq
	return m, nil
}

// parseID returns the seq of a Stream entry ID "<seq>-0".
func parseID(id string) (uint64, error) {
	ms, _, ok := strings.Cut(id, "-")
	if !ok {
		return 0, fmt.Errorf("stream ID %q is not <seq>-0", id)
	}
	seq, err := strconv.ParseUint(ms, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stream ID %q: %w", id, err)
	}
	return seq, nil
}

// Range implements queue.Store with one XRANGE: the seq is the entry ID's
// first part, so from and to are the range's bounds as they are.
func (s *Store) Range(ctx context.Context, room string, from, to uint64, limit int) ([]shared.Message, error) {
	if limit <= 0 || from > to {
		return nil, nil
	}
	entries, err := s.rdb.XRangeN(ctx, s.keys.log(room),
		strconv.FormatUint(from, 10), strconv.FormatUint(to, 10), int64(limit)).Result()
	if err != nil {
		return nil, fmt.Errorf("range %q [%d,%d]: %w", room, from, to, err)
	}
	out, err := decodeEntries(entries)
	if err != nil {
		return nil, fmt.Errorf("range %q: %w", room, err)
	}
	return out, nil
}

func decodeEntries(entries []redis.XMessage) ([]shared.Message, error) {
	out := make([]shared.Message, 0, len(entries))
	for _, e := range entries {
		seq, err := parseID(e.ID)
		if err != nil {
			return nil, err
		}
		body, _ := e.Values["m"].(string)
		m, err := decode(body, seq)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// Snapshot returns the room's state and up to limit of its messages with
// from <= seq <= to, read by one script so that both belong to the same
// incarnation of the log: LoadRoom then Range could straddle a restart of
// Redis without persistence and mix an old epoch with a new log. It is what
// an instance wants when a notification arrives out of order, or when it
// checks a room's position after a resync. Like LoadRoom, it creates no
// room.
func (s *Store) Snapshot(ctx context.Context, room string, from, to uint64, limit int) (queue.RoomState, []shared.Message, error) {
	if from > to {
		limit = 0
	}
	st, msgs, err := s.load(ctx, room, from, to, limit)
	if err != nil {
		return st, nil, fmt.Errorf("snapshot %q [%d,%d]: %w", room, from, to, err)
	}
	return st, msgs, nil
}

// Close implements queue.Store: it closes the client when Open made it.
func (s *Store) Close() error {
	if !s.own {
		return nil
	}
	if err := s.rdb.Close(); err != nil {
		return fmt.Errorf("close redis client: %w", err)
	}
	return nil
}
