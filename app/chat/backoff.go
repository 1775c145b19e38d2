package chat

import "time"

// Backoff computes retry delays: exponential from Base, capped at Max, with
// "equal jitter" (half fixed, half random) so that many clients that lost
// the server at the same moment do not come back in lockstep.
type Backoff struct {
	Base, Max time.Duration
	// Rand returns a number in [0,1); it is injected so tests are exact.
	Rand     func() float64
	attempts int
}

// Next returns the delay before the next attempt and counts the attempt.
func (b *Backoff) Next() time.Duration {
	d := b.Base
	for i := 0; i < b.attempts && d < b.Max; i++ {
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	b.attempts++
	half := d / 2
	r := 0.5
	if b.Rand != nil {
		r = b.Rand()
	}
	return half + time.Duration(float64(half)*r)
}

// Attempts is the number of delays handed out since the last Reset.
func (b *Backoff) Attempts() int { return b.attempts }

// Reset starts over after a success.
func (b *Backoff) Reset() { b.attempts = 0 }
