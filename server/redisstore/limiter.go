package redisstore

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limiter is a rate limiter shared by every instance on the Redis: GCRA
// (the generic cell rate algorithm) in one small script per decision, so
// that N instances allow the rate once, not N times. Each key is one
// string, p+"limit:"+key, holding its theoretical arrival time in
// milliseconds of Redis's clock (TIME, so the instances' clocks do not
// matter), and expiring once it is in the past, when the key is as good
// as new.
type Limiter struct {
	rdb      *redis.Client
	p        string
	interval float64 // ms between actions at the rate
	burst    int
}

// NewLimiter returns a Limiter on the store's client and prefix allowing
// perSecond actions a second per key, in bursts of up to burst.
func (s *Store) NewLimiter(perSecond float64, burst int) *Limiter {
	return &Limiter{rdb: s.rdb, p: s.opt.Prefix + "limit:", interval: 1000 / perSecond, burst: max(burst, 1)}
}

var gcraScript = redis.NewScript(`#!lua
-- KEYS: the key's TAT; ARGV: interval ms, burst. Returns {allowed, wait ms}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if now < allow_at then
  return {0, string.format('%d', math.ceil(allow_at - now))}
end
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', string.format('%d', math.ceil(new_tat - now)))
return {1, '0'}
`)

// Allow takes one action for key now, or reports how long to wait. It
// implements httpapi.Limiter.
func (l *Limiter) Allow(ctx context.Context, key string) (bool, time.Duration, error) {
	v, err := gcraScript.Run(ctx, l.rdb, []string{l.p + key}, l.interval, l.burst).Slice()
	if err != nil {
		return false, 0, fmt.Errorf("rate limit %q: %w", key, err)
	}
	if len(v) != 2 {
		return false, 0, fmt.Errorf("rate limit %q: script answered %v", key, v)
	}
	allowed, _ := v[0].(int64)
	var wait float64
	if s, ok := v[1].(string); ok {
		_, _ = fmt.Sscan(s, &wait)
	}
	return allowed == 1, time.Duration(math.Ceil(wait)) * time.Millisecond, nil
}
