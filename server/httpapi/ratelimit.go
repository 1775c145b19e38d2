package httpapi

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

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
