package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parley-chat/parley/server/session"
	"github.com/parley-chat/parley/shared"
)

var _ session.Store = (*Sessions)(nil)

// Sessions is a session.Store on Redis, so that every instance on it knows
// every session, name and presence. Under the store's prefix p:
//
//	p+"sess:"+hash        hash: name, key (its name key); expires after the TTL unless touched
//	p+"name:"+NameKey     string: the hash of the session holding the name; same expiry
//	p+"here:"+room        hash: name → since (ms), who is present in room
//	p+"leases"            sorted set: room NUL name, scored by the lease's end (ms)
//	p+"rooms-of:"+name    set: the rooms name is present in
//
// Only the SHA-256 of a token is stored. Lease ends come from the
// instances' clocks (session.Manager's Now), so the instances' clocks must
// agree to well within the presence grace period (30 s); session expiry
// is Redis's own (PEXPIRE). The scripts name some keys they compute, so
// like the rest of this package Sessions needs a single Redis, not a
// Redis Cluster.
type Sessions struct {
	rdb *redis.Client
	p   string
}

// Sessions returns the session.Store on the store's client and prefix.
func (s *Store) Sessions() *Sessions { return &Sessions{rdb: s.rdb, p: s.opt.Prefix} }

func (s *Sessions) sess(hash string) string { return s.p + "sess:" + hash }
func (s *Sessions) leases() string          { return s.p + "leases" }

func ms(t time.Time) int64 { return t.UnixMilli() }

var createSessionScript = redis.NewScript(`#!lua
-- KEYS: name key, session key; ARGV: hash, name, ttl ms
local holder = redis.call('GET', KEYS[1])
if holder and redis.call('EXISTS', ARGV[4] .. holder) == 1 then
  return 1
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('HSET', KEYS[2], 'name', ARGV[2], 'key', KEYS[1])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 0
`)

// CreateSession implements session.Store.
func (s *Sessions) CreateSession(ctx context.Context, rec session.Record, _ time.Time, ttl time.Duration) (bool, error) {
	taken, err := createSessionScript.Run(ctx, s.rdb, []string{s.p + "name:" + session.NameKey(rec.Name), s.sess(rec.Hash)},
		rec.Hash, rec.Name, ttl.Milliseconds(), s.p+"sess:").Int()
	if err != nil {
		return false, fmt.Errorf("create session: %w", err)
	}
	return taken == 1, nil
}

// touchSessionScript extends a session only when a quarter of its TTL has
// passed since it was last extended: every request looks its session up,
// and a write per request would cost Redis an fsync per request with
// appendfsync always, where a read costs none.
var touchSessionScript = redis.NewScript(`#!lua
-- KEYS: session key; ARGV: ttl ms, hash
local v = redis.call('HMGET', KEYS[1], 'name', 'key')
if not v[1] then return false end
local ttl = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl * 3 / 4 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  if redis.call('GET', v[2]) == ARGV[2] then redis.call('PEXPIRE', v[2], ttl) end
end
return v[1]
`)

// NameTaken implements session.Store: the name key lives as long as the
// session holding it.
func (s *Sessions) NameTaken(ctx context.Context, name string, _ time.Time) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.p+"name:"+session.NameKey(name)).Result()
	if err != nil {
		return false, fmt.Errorf("name taken: %w", err)
	}
	return n > 0, nil
}

// TouchSession implements session.Store.
func (s *Sessions) TouchSession(ctx context.Context, hash string, _ time.Time, ttl time.Duration) (string, bool, error) {
	return s.runForName(ctx, "touch session", touchSessionScript, hash, ttl.Milliseconds(), hash)
}

// runForName runs a script on the session hash's key that answers its
// name, or nil when there is no such session.
func (s *Sessions) runForName(ctx context.Context, what string, script *redis.Script, hash string, args ...any) (string, bool, error) {
	name, err := script.Run(ctx, s.rdb, []string{s.sess(hash)}, args...).Text()
	if err == redis.Nil {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", what, err)
	}
	return name, true, nil
}

var endSessionScript = redis.NewScript(`#!lua
-- KEYS: session key; ARGV: hash
local v = redis.call('HMGET', KEYS[1], 'name', 'key')
if not v[1] then return false end
redis.call('DEL', KEYS[1])
if redis.call('GET', v[2]) == ARGV[1] then redis.call('DEL', v[2]) end
return v[1]
`)

// EndSession implements session.Store.
func (s *Sessions) EndSession(ctx context.Context, hash string) (string, bool, error) {
	return s.runForName(ctx, "end session", endSessionScript, hash, hash)
}

var presentScript = redis.NewScript(`#!lua
-- KEYS: leases; ARGV: prefix, then room, name, session hash ("" for
-- none), since ms, until ms per lease
local out = {}
for i = 2, #ARGV, 5 do
  local room, name, hash = ARGV[i], ARGV[i+1], ARGV[i+2]
  local joined = 0
  if hash == '' or redis.call('EXISTS', ARGV[1] .. 'sess:' .. hash) == 1 then
    if redis.call('HSETNX', ARGV[1] .. 'here:' .. room, name, ARGV[i+3]) == 1 then
      redis.call('SADD', ARGV[1] .. 'rooms-of:' .. name, room)
      joined = 1
    end
    redis.call('ZADD', KEYS[1], 'GT', ARGV[i+4], room .. '\0' .. name)
  end
  out[#out+1] = joined
end
return out
`)

// Present implements session.Store: one script for all the leases, so
// "was it present" and "make it present" are one step for every instance.
func (s *Sessions) Present(ctx context.Context, leases []session.Lease) ([]bool, error) {
	if len(leases) == 0 {
		return nil, nil
	}
	args := make([]any, 0, 1+5*len(leases))
	args = append(args, s.p)
	for _, l := range leases {
		args = append(args, l.Room, l.Name, l.Hash, ms(l.Since), ms(l.Until))
	}
	v, err := presentScript.Run(ctx, s.rdb, []string{s.leases()}, args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("present %d leases: %w", len(leases), err)
	}
	if len(v) != len(leases) {
		return nil, fmt.Errorf("present: %d answers for %d leases", len(v), len(leases))
	}
	joined := make([]bool, len(v))
	for i, j := range v {
		joined[i] = j == 1
	}
	return joined, nil
}

var leaveAllScript = redis.NewScript(`#!lua
-- KEYS: leases; ARGV: prefix, name
local set = ARGV[1] .. 'rooms-of:' .. ARGV[2]
local rooms = redis.call('SMEMBERS', set)
for _, room in ipairs(rooms) do
  redis.call('HDEL', ARGV[1] .. 'here:' .. room, ARGV[2])
  redis.call('ZREM', KEYS[1], room .. '\0' .. ARGV[2])
end
redis.call('DEL', set)
return rooms
`)

// LeaveAll implements session.Store.
func (s *Sessions) LeaveAll(ctx context.Context, name string) ([]string, error) {
	rooms, err := leaveAllScript.Run(ctx, s.rdb, []string{s.leases()}, s.p, name).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("leave all rooms of %q: %w", name, err)
	}
	return rooms, nil
}

// expireBatch bounds the leases one Expire ends, so one script never
// blocks Redis for long; the rest go at the next sweep.
const expireBatch = 1000

var expireScript = redis.NewScript(`#!lua
-- KEYS: leases; ARGV: prefix, now ms, batch
local gone = redis.call('ZRANGE', KEYS[1], '-inf', '(' .. ARGV[2], 'BYSCORE', 'LIMIT', 0, ARGV[3])
for _, m in ipairs(gone) do
  local sep = string.find(m, '\0', 1, true)
  local room, name = string.sub(m, 1, sep - 1), string.sub(m, sep + 1)
  redis.call('ZREM', KEYS[1], m)
  redis.call('HDEL', ARGV[1] .. 'here:' .. room, name)
  redis.call('SREM', ARGV[1] .. 'rooms-of:' .. name, room)
end
return gone
`)

// Expire implements session.Store: a lease is removed by the script that
// finds it, so each is returned to one caller only.
func (s *Sessions) Expire(ctx context.Context, now time.Time) ([]session.Presence, error) {
	gone, err := expireScript.Run(ctx, s.rdb, []string{s.leases()}, s.p, ms(now), expireBatch).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("expire presence: %w", err)
	}
	out := make([]session.Presence, 0, len(gone))
	for _, m := range gone {
		for i := 0; i < len(m); i++ {
			if m[i] == 0 {
				out = append(out, session.Presence{Room: m[:i], Name: m[i+1:]})
				break
			}
		}
	}
	return out, nil
}

// Members implements session.Store.
func (s *Sessions) Members(ctx context.Context, room string) ([]shared.Member, error) {
	here, err := s.rdb.HGetAll(ctx, s.p+"here:"+room).Result()
	if err != nil {
		return nil, fmt.Errorf("members of %q: %w", room, err)
	}
	out := make([]shared.Member, 0, len(here))
	for name, since := range here {
		n, err := strconv.ParseInt(since, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("members of %q: since %q: %w", room, since, err)
		}
		out = append(out, shared.Member{Name: name, Since: time.UnixMilli(n).UTC()})
	}
	session.SortMembers(out)
	return out, nil
}

var _ session.CursorStore = (*Sessions)(nil)

// The textbook readers' cursors are one hash, p+"legacy": name → "<seq>
// <epoch>", shared by every instance.
func (s *Sessions) legacy() string { return s.p + "legacy" }

// Cursor implements session.CursorStore.
func (s *Sessions) Cursor(ctx context.Context, name string) (session.Cursor, bool, error) {
	v, err := s.rdb.HGet(ctx, s.legacy(), name).Result()
	if err == redis.Nil {
		return session.Cursor{}, false, nil
	}
	if err != nil {
		return session.Cursor{}, false, fmt.Errorf("cursor of %q: %w", name, err)
	}
	c, err := parseCursor(v)
	if err != nil {
		return c, false, fmt.Errorf("cursor of %q: %w", name, err)
	}
	return c, true, nil
}

func parseCursor(v string) (session.Cursor, error) {
	seq, epoch, _ := strings.Cut(v, " ")
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return session.Cursor{}, fmt.Errorf("cursor %q: %w", v, err)
	}
	return session.Cursor{Epoch: epoch, Seq: n}, nil
}

func formatCursor(c session.Cursor) string { return strconv.FormatUint(c.Seq, 10) + " " + c.Epoch }

var advanceCursorScript = redis.NewScript(`#!lua
-- KEYS: legacy hash; ARGV: name, old ("" for none), next
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if (cur or '') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
`)

// AdvanceCursor implements session.CursorStore with one script.
func (s *Sessions) AdvanceCursor(ctx context.Context, name string, old *session.Cursor, next session.Cursor) (bool, error) {
	o := ""
	if old != nil {
		o = formatCursor(*old)
	}
	set, err := advanceCursorScript.Run(ctx, s.rdb, []string{s.legacy()}, name, o, formatCursor(next)).Int()
	if err != nil {
		return false, fmt.Errorf("advance cursor of %q: %w", name, err)
	}
	return set == 1, nil
}
