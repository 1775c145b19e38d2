package main

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFormatting(t *testing.T) {
	require.Equal(t, "10,000", thousands(10000))
	require.Equal(t, "999", thousands(999))
	require.Equal(t, "1,234,567", thousands(1234567))
	require.Equal(t, "-1,000", thousands(-1000))
	require.Equal(t, "44 ms", formatValue(44.4, "ms"))
	require.Equal(t, "1,766 ms", formatValue(1765.8, "ms"))
	require.Equal(t, "9.5 ms", formatValue(9.46, "ms"))
	require.Equal(t, "62 µs", formatValue(61.9, "µs"))
	require.Equal(t, "28.6 KB", formatValue(28.64, "KB"))
	require.Equal(t, "31,500", formatValue(31489, "/s"))
	require.Equal(t, "—", formatValue(math.NaN(), "ms"))
	require.Equal(t, "1.42", formatRatio(44.0/31))
	require.Equal(t, "—", formatRatio(math.NaN()))
	require.Equal(t, ", 14.2 % lost", lostText(14.2))
	require.Equal(t, ", 0 lost", lostText(0))
}

func TestMedian(t *testing.T) {
	require.Equal(t, 2.0, median([]float64{3, 1, 2}))
	require.Equal(t, 2.5, median([]float64{4, 1, 3, 2}))
}

func TestQuantile(t *testing.T) {
	require.Zero(t, quantile(nil, 0.5))
	xs := []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	require.Equal(t, 5.0, quantile(xs, 0.5))
	require.Equal(t, 9.0, quantile(xs, 0.9))
	require.Equal(t, 10.0, quantile(xs, 1))
}

// TestTable builds the table from made-up runs: issue 7's rows, the ratio
// Parley/Nchan, and whether each target is met.
func TestTable(t *testing.T) {
	runs := []*result{
		{Peer: "Parley", Clients: 1000, TimeToAllMS: []float64{20}, TimeToAllMedian: 20, TimeToAllP90: 30, Deliveries: 50000, CPUPerDeliveryU: 30, RSSPerWaiterKB: 8,
			Burst: &burstResult{PerSecond: 45000}},
		{Peer: "Nchan", Clients: 1000, TimeToAllMS: []float64{31}, TimeToAllMedian: 31, TimeToAllP90: 40, Deliveries: 50000, CPUPerDeliveryU: 22, RSSPerWaiterKB: 10.2,
			Burst: &burstResult{PerSecond: 27800, Lost: 7000, LostPercent: 14}},
		{Peer: "Nchan", Clients: 5000, TimeToAllMS: []float64{250}, TimeToAllMedian: 250, TimeToAllP90: 300, Deliveries: 250000, CPUPerDeliveryU: 26, RSSPerWaiterKB: 8},
		{Peer: "Parley", Clients: 5000, TimeToAllMS: []float64{434}, TimeToAllMedian: 434, TimeToAllP90: 500, Deliveries: 250000, CPUPerDeliveryU: 26, RSSPerWaiterKB: 18.5},
	}
	rep := buildReport(machineInfo{CPUs: 2}, runs, 150*time.Second)
	var b bytes.Buffer
	rep.table(&b)
	lines := strings.Split(b.String(), "\n")
	require.Equal(t, "| figure | N | Parley | Nchan | ratio Parley/Nchan | target | met? |", lines[0])
	for _, want := range []string{
		"| time until all N have a message, median | 1,000 | 20 ms | 31 ms | 0.65 | ≤ 0.8 × Nchan | met |",
		"|  | 5,000 | 434 ms | 250 ms | 1.74 | ≤ 0.8 × Nchan | not met |",
		"| time until all N have a message, p90 | 1,000 | 30 ms | 40 ms | 0.75 | — | — |",
		"| server CPU per delivery | 1,000 | 30 µs | 22 µs | 1.36 | ≤ Nchan | not met |",
		"|  | 5,000 | 26 µs | 26 µs | 1.00 | ≤ Nchan | met |",
		"| RSS per waiting client | 1,000 | 8.0 KB | 10.2 KB | 0.78 | ≤ Nchan | met |",
		"| deliveries/s, N=1,000, back-to-back sends |  | 45,000, 0 lost | 27,800, 14.0 % lost | 1.62 | ≥ 1.5 × Nchan, 0 lost | met |",
		"| 0 | Parley | 5,000 | 0.0 | 0.00 | 0.00 | 0.00 | 0.00 | 0.0 ms | 434 ms |",
	} {
		require.Contains(t, lines, want)
	}
	require.Contains(t, b.String(), "Total run time 2m30s")

	// With rounds, each figure is the median over them.
	more := []*result{
		{Peer: "Parley", Clients: 1000, TimeToAllMS: []float64{40}, TimeToAllMedian: 40, TimeToAllP90: 50, Deliveries: 1, CPUPerDeliveryU: 30, Burst: &burstResult{PerSecond: 30000}},
		{Peer: "Parley", Clients: 1000, TimeToAllMS: []float64{30}, TimeToAllMedian: 30, TimeToAllP90: 50, Deliveries: 1, CPUPerDeliveryU: 30, Burst: &burstResult{PerSecond: 50000}},
	}
	rep = buildReport(machineInfo{}, append(slices.Clone(runs), more...), time.Second)
	require.Equal(t, 30.0, rep.Rows[0].Parley, "median of 20, 40 and 30 ms")
	require.Equal(t, 45000.0, rep.Rows[len(rep.Rows)-1].Parley, "median of 45,000, 30,000 and 50,000/s")

	// A Parley loss fails the burst target whatever the rate.
	runs[0].Burst.Lost = 1
	rep = buildReport(machineInfo{}, runs, time.Second)
	last := rep.Rows[len(rep.Rows)-1]
	require.False(t, *last.Met)

	// Missing figures are null in JSON, and so are their ratios.
	rep = buildReport(machineInfo{}, runs[2:3], time.Second)
	data, err := json.Marshal(rep.Rows[0])
	require.NoError(t, err)
	require.JSONEq(t, `{"figure":"time until all N have a message, median","n":5000,"unit":"ms","target":"≤ 0.8 × Nchan","met":null,"parley":null,"nchan":250,"ratio":null}`, string(data))
}
