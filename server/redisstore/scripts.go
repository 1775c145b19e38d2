package redisstore

import "github.com/redis/go-redis/v9"

// The scripts start with "#!lua" so that Redis 7 treats them as flagged
// scripts: without the allow-oom flag (which only loadScript has) Redis refuses the whole script up
// front when it is over maxmemory, rather than failing at its first write,
// so an out-of-memory append stores nothing (the unflagged behaviour could
// leave a half-done append).
//
// Seqs are Lua numbers (doubles): exact up to 2^53, and formatted with %d,
// never tostring, which would switch to exponent notation past 1e14.

// luaRoom is shared by both scripts: it finds, and when told to creates,
// the room's epoch.
const luaRoom = `
local function fmt(n) return string.format('%d', n) end

-- The prefix's incarnation: a random name written once per Redis data set.
-- When Redis loses its data (a restart without persistence) it is gone too,
-- so every room gets an epoch it never had before.
local function incarnation(inck, candidate)
  local inc = redis.call('GET', inck)
  if not inc then
    redis.call('SET', inck, candidate)
    inc = candidate
  end
  return inc
end

-- room_epoch returns the room's epoch and last seq. A room without meta
-- gets an epoch derived from the incarnation and its name, so LoadRoom can report the
-- epoch of an empty room without writing anything for it, and the first
-- append creates the room with that same epoch. A room that had a log in
-- this data set (its name is in the rooms set, or its log is still there)
-- but lost its meta (evicted, deleted by hand) must not get the derived
-- epoch again: readers may hold cursors of that epoch, which the new log
-- would contradict. It starts over with a fresh random epoch, and what is
-- left of the old log goes.
local function room_epoch(inck, roomsk, meta, log, room, candidate, seed, create)
  local m = redis.call('HMGET', meta, 'epoch', 'last')
  if m[1] then return m[1], tonumber(m[2]) end
  local inc, epoch = incarnation(inck, candidate), nil
  if redis.call('EXISTS', log) == 1 or redis.call('SISMEMBER', roomsk, room) == 1 then
    epoch = string.sub(redis.sha1hex(seed .. '\0' .. room), 1, 16)
    redis.call('DEL', log)
    redis.call('HSET', meta, 'epoch', epoch, 'last', '0')
    redis.call('SADD', roomsk, room)
    return epoch, 0
  end
  epoch = string.sub(redis.sha1hex(inc .. '\0' .. room), 1, 16)
  if create then
    redis.call('HSET', meta, 'epoch', epoch, 'last', '0')
    redis.call('SADD', roomsk, room)
  end
  return epoch, 0
end
`

// loadScript reports a room's epoch, first and last seq, and with a limit
// above 0 up to limit entries with from <= seq <= to, read together so that
// they belong to the same log. It writes nothing for a room that never had
// messages (only the prefix's incarnation key, once per data set).
//
// It is flagged allow-oom: a full Redis refuses appends, but reads must go
// on, and its writes are a few bytes (the incarnation key, a repaired meta).
// (A MULTI would not do: Redis refuses every queued command when full.)
//
// KEYS: incarnation, rooms set, meta, log. ARGV: candidate incarnation,
// fresh seed, room, from, to, limit. Returns {epoch, first, last, seq,
// JSON, seq, JSON, ...} as strings.
var loadScript = redis.NewScript("#!lua flags=allow-oom\n" + luaRoom + `
local inck, roomsk, meta, log = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local epoch, last = room_epoch(inck, roomsk, meta, log, ARGV[3], ARGV[1], ARGV[2], false)
local first = last + 1
local oldest = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)
if #oldest > 0 then
  first = tonumber(string.match(oldest[1][1], '^(%d+)'))
end
local out = {epoch, fmt(first), fmt(last)}
if tonumber(ARGV[6]) > 0 then
  for _, e in ipairs(redis.call('XRANGE', log, ARGV[4], ARGV[5], 'COUNT', ARGV[6])) do
    out[#out + 1] = string.match(e[1], '^(%d+)')
    out[#out + 1] = e[2][2]
  end
end
return out
`)

// appendScript stores a batch, message by message, in order.
//
// KEYS: incarnation, rooms set, then per message: meta, log, idempotency key.
// ARGV: candidate incarnation, fresh seed, MAXLEN (0: no cap), idempotency
// TTL in seconds, notification channel, then per message: room, "1" when it
// has a client_msg_id else "0", message JSON without seq.
//
// Returns one entry per message handled, in order:
//
//	{"new", epoch, seq}
//	{"dup", epoch, seq, original JSON or "" when no longer retained}
//	{"err", message}   -- this message was not stored; the script stopped
//
// Per message: (1) find or create the room's epoch; (2) if the
// idempotency key names a seq of this epoch, answer with that original;
// (3) seq = last+1; (4) XADD <seq>-0 with the MAXLEN cap, the first write,
// so a failure there leaves no trace and no hole; (5) last = seq; (6)
// record the idempotency key with its TTL; (7) PUBLISH room, epoch, seq
// and the message. A script runs atomically, so two instances appending at
// once are serialised by Redis: no duplicate seq, no hole.
var appendScript = redis.NewScript("#!lua\n" + luaRoom + `
local inck, roomsk = KEYS[1], KEYS[2]
local candidate, seed, maxlen, ttl, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

local function append_one(meta, log, idk, room, hasid, msg)
  local epoch, last = room_epoch(inck, roomsk, meta, log, room, candidate, seed, true)
  if hasid == '1' then
    local v = redis.call('GET', idk)
    if v then
      local sp = string.find(v, ' ', 1, true)
      -- A key of an older epoch names a seq of a log that is gone.
      if sp and string.sub(v, 1, sp - 1) == epoch then
        local seq = string.sub(v, sp + 1)
        local e = redis.call('XRANGE', log, seq, seq)
        local orig = ''
        if #e > 0 then orig = e[1][2][2] end
        return {'dup', epoch, seq, orig}
      end
    end
  end
  local seq = fmt(last + 1)
  if maxlen == '0' then
    redis.call('XADD', log, seq .. '-0', 'm', msg)
  else
    redis.call('XADD', log, 'MAXLEN', maxlen, seq .. '-0', 'm', msg)
  end
  redis.call('HSET', meta, 'last', seq)
  if hasid == '1' then
    redis.call('SET', idk, epoch .. ' ' .. seq, 'EX', ttl)
  end
  redis.call('PUBLISH', channel, '{"room":' .. cjson.encode(room) .. ',"epoch":' .. cjson.encode(epoch) ..
    ',"seq":' .. seq .. ',"msg":' .. msg .. '}')
  return {'new', epoch, seq}
end

local out = {}
for i = 1, (#KEYS - 2) / 3 do
  local k, a = 3 * i, 3 * i + 3
  local ok, res = pcall(append_one, KEYS[k], KEYS[k + 1], KEYS[k + 2], ARGV[a], ARGV[a + 1], ARGV[a + 2])
  if not ok then
    if type(res) == 'table' then res = res.err end
    out[i] = {'err', tostring(res)}
    break
  end
  out[i] = res
end
return out
`)
