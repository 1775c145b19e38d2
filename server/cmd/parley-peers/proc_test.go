package main

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseProc(t *testing.T) {
	st, err := parseStat([]byte("4242 (nginx: worker (x)) S 4200 4200 4200 0 -1 4194624 1 0 0 0 123 45 0 0 20 0 1 0 100 1000 200 18446744073709551615\n"))
	require.NoError(t, err)
	require.Equal(t, procStat{ppid: 4200, ticks: 168, sys: 45}, st)
	_, err = parseStat([]byte("4242 (x) S 1"))
	require.Error(t, err)

	rss, err := parseRSS([]byte("Name:\tparley\nVmPeak:\t  9000 kB\nVmRSS:\t   10240 kB\nThreads:\t5\n"))
	require.NoError(t, err)
	require.EqualValues(t, 10<<20, rss)
	_, err = parseRSS([]byte("Name:\tzombie\n"))
	require.Error(t, err)

	// This process, read for real.
	pids := []int{os.Getpid()}
	_, err = cpuTicks(pids)
	require.NoError(t, err)
	rss, err = rssBytes(pids)
	require.NoError(t, err)
	require.Positive(t, rss)
	require.Equal(t, pids, family(os.Getpid())[:1])
}
