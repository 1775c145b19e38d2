package redisstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/server/internal/redistest"
	"github.com/parley-chat/parley/server/redisstore"
)

// Three instances' limiters on one Redis allow the burst once between
// them, then the rate, and say how long to wait.
func TestLimiterHoldsAcrossInstances(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	const burst = 20
	var limiters []*redisstore.Limiter
	for range 3 {
		limiters = append(limiters, newStore(t, srv, redisstore.Options{}).NewLimiter(2, burst))
	}
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() {
			ok, _, err := limiters[i%3].Allow(ctx, "send:ann")
			if err == nil && ok {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, burst, allowed.Load(), "the burst, once, across three instances")

	ok, wait, err := limiters[0].Allow(ctx, "send:ann")
	require.NoError(t, err)
	require.False(t, ok)
	require.Greater(t, wait, time.Duration(0))
	require.LessOrEqual(t, wait, 500*time.Millisecond, "one interval at 2/s")
	ok, _, err = limiters[1].Allow(ctx, "send:bob")
	require.NoError(t, err)
	require.True(t, ok, "keys are independent")

	time.Sleep(wait + 20*time.Millisecond)
	ok, _, err = limiters[2].Allow(ctx, "send:ann")
	require.NoError(t, err)
	require.True(t, ok, "one more after the interval")
	ok, _, err = limiters[0].Allow(ctx, "send:ann")
	require.NoError(t, err)
	require.False(t, ok)
	n, err := srv.Client().PTTL(ctx, "parley:limit:send:ann").Result()
	require.NoError(t, err)
	require.Greater(t, n, time.Duration(0), "the key expires: %v", n)
	require.LessOrEqual(t, n, time.Duration(burst)*time.Second/2+time.Second, fmt.Sprint(n))
}
