package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/parley-chat/parley/server/internal/tier"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// series makes samples a second apart whose quantities follow f.
func series(n int, f func(i int) float64) []sample {
	out := make([]sample, n)
	for i := range out {
		v := f(i)
		out[i] = sample{at: time.Duration(i) * time.Second, anonKB: 50 << 10, goroutines: 40, fds: 20, fileBytes: v}
	}
	return out
}

// TestJudge: a quantity that rises steadily through the last third fails;
// one that rose early and then held, or wobbles, passes.
func TestJudge(t *testing.T) {
	var out bytes.Buffer
	flatAfterWarmup := series(90, func(i int) float64 { return float64(min(i, 30)) * (1 << 20) })
	require.Empty(t, judge(flatAfterWarmup, &out))
	wobble := series(90, func(i int) float64 { return float64(10<<20 + (i%2)*(512<<10)) })
	require.Empty(t, judge(wobble, &out))

	growing := series(90, func(i int) float64 { return float64(i) * (256 << 10) }) // 256 KB/s
	failures := judge(growing, &out)
	require.Len(t, failures, 1)
	require.Contains(t, failures[0], "bolt file rose")
	require.Contains(t, out.String(), "last third")

	require.NotEmpty(t, judge(growing[:3], &out), "too few samples to judge")
}

func TestFitSlope(t *testing.T) {
	ss := series(10, func(i int) float64 { return 3*float64(i) + 7 })
	require.InDelta(t, 3, fitSlope(ss, func(s sample) float64 { return s.fileBytes }), 1e-9)
	require.InDelta(t, 0, fitSlope(ss[:1], func(s sample) float64 { return s.fileBytes }), 1e-9)
}

// TestSoakShortRun runs the real soak for a few seconds against the real
// binary: every client kind gets its answers, every probe its code, and the
// samples file is written.
func TestSoakShortRun(t *testing.T) {
	tier.Require(t, "the parley binary as a subprocess")
	dir := t.TempDir()
	bin := filepath.Join(dir, "parley")
	build := exec.Command("go", "build", "-o", bin, "../parley")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	var stdout, stderr bytes.Buffer
	err = run(context.Background(), []string{"-parley", bin, "-duration", "12s", "-sample", "1s", "-dir", dir, "-chatters", "2", "-pollers", "3"}, &stdout, &stderr)
	require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	require.Contains(t, stdout.String(), "flat: every check held")
	csv, err := os.ReadFile(filepath.Join(dir, "samples.csv"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, strings.Count(string(csv), "\n"), 10)
	require.NotContains(t, stdout.String(), " 0 messages sent")
	require.NotContains(t, stdout.String(), " 0 received")
	require.NotContains(t, stdout.String(), " 0 bad requests")
}
