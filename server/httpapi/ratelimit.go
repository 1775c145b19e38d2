package httpapi

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter bounds how often one key may act, at the rate and burst it was
// made with. With several instances it must be shared (redisstore's GCRA
// limiter), or N instances would allow N times the rate.
type Limiter interface {
	// Allow takes one action for key now, or reports how long to wait.
	Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error)
}

var _ Limiter = (*keyedLimiter)(nil)

// Allow implements Limiter in this process's memory.
func (k *keyedLimiter) Allow(_ context.Context, key string) (bool, time.Duration, error) {
	ok, wait := k.allow(key)
	return ok, wait, nil
}

// keyedLimiter is a token bucket per key (a client IP), holding at most max
// keys: when full, keys whose bucket has refilled are dropped, since a full
// bucket is the same as a new one.
type keyedLimiter struct {
	r     rate.Limit
	burst int
	max   int

	mu   sync.Mutex
	keys map[string]*rate.Limiter
}

func newKeyedLimiter(r rate.Limit, burst, max int) *keyedLimiter {
	return &keyedLimiter{r: r, burst: burst, max: max, keys: make(map[string]*rate.Limiter)}
}

func (k *keyedLimiter) allow(key string) (bool, time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	l := k.keys[key]
	if l == nil {
		if len(k.keys) >= k.max {
			for key, l := range k.keys {
				if l.TokensAt(now) >= float64(k.burst) {
					delete(k.keys, key)
				}
			}
		}
		if len(k.keys) >= k.max {
			// Every tracked client is active; refuse newcomers rather than
			// grow without bound.
			return false, time.Second
		}
		l = rate.NewLimiter(k.r, k.burst)
		k.keys[key] = l
	}
	r := l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}
