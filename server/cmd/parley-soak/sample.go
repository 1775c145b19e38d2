package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// sample is one reading of the server.
type sample struct {
	at         time.Duration // since the first sample
	rssKB      float64       // VmRSS: anonymous and file-backed
	anonKB     float64       // RssAnon: the heap, stacks, the runtime's own
	fileKB     float64       // RssFile: mostly bolt's mapped pages, which grow with the file
	heapBytes  float64       // go_memstats_heap_inuse_bytes
	goroutines float64
	fds        float64
	fileBytes  float64
	sent       int64 // messages acknowledged so far
	received   int64 // messages the pollers received so far
}

// quantity is one column of the report. A judged one's tolerance is how
// much the line fitted to the last third may rise across that third: a
// share of the mean, or an absolute floor for values too small for a share
// to mean anything (a few goroutines come and go with every poll wave).
// Memory is judged by RssAnon: VmRSS also counts the bolt file's mapped
// pages, which follow the file, judged on its own.
type quantity struct {
	name   string
	unit   string
	get    func(sample) float64
	judged bool
	share  float64
	floor  float64
}

var quantities = []quantity{
	{"rss anon", "KB", func(s sample) float64 { return s.anonKB }, true, 0.10, 8 << 10},
	{"goroutines", "", func(s sample) float64 { return s.goroutines }, true, 0.10, 25},
	{"fds", "", func(s sample) float64 { return s.fds }, true, 0.10, 10},
	{"bolt file", "KB", func(s sample) float64 { return s.fileBytes / 1024 }, true, 0.10, 1 << 10},
	{"rss", "KB", func(s sample) float64 { return s.rssKB }, false, 0, 0},
	{"rss file", "KB", func(s sample) float64 { return s.fileKB }, false, 0, 0},
	{"heap in use", "KB", func(s sample) float64 { return s.heapBytes / 1024 }, false, 0, 0},
}

func sampleUntil(ctx context.Context, c config, srv *server, t *traffic, end time.Time, stdout io.Writer) ([]sample, error) {
	f, err := os.Create(filepath.Join(c.dir, "samples.csv"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	defer w.Flush()
	fmt.Fprintln(w, "seconds,rss_kb,rss_anon_kb,rss_file_kb,heap_inuse_bytes,goroutines,fds,bolt_bytes,sent,received")
	start := time.Now()
	var out []sample
	tick := time.NewTicker(c.sample)
	defer tick.Stop()
	lastPrint := time.Time{}
	for {
		s, err := readSample(ctx, srv)
		if err != nil {
			return out, err
		}
		s.at = time.Since(start)
		s.sent, s.received = t.sent.Load(), t.received.Load()
		out = append(out, s)
		fmt.Fprintf(w, "%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%d,%d\n", s.at.Seconds(), s.rssKB, s.anonKB, s.fileKB, s.heapBytes, s.goroutines, s.fds, s.fileBytes, s.sent, s.received)
		_ = w.Flush()
		if time.Since(lastPrint) >= time.Minute {
			lastPrint = time.Now()
			fmt.Fprintf(stdout, "%6s rss %5.1f MB (anon %5.1f)  heap %5.1f MB  goroutines %4.0f  fds %3.0f  bolt %6.1f MB  sent %d  received %d\n",
				s.at.Truncate(time.Second), s.rssKB/1024, s.anonKB/1024, s.heapBytes/(1<<20), s.goroutines, s.fds, s.fileBytes/(1<<20), s.sent, s.received)
		}
		if !time.Now().Before(end) {
			return out, nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return out, nil
		case <-srv.exited:
			return out, fmt.Errorf("parley exited during the soak; see %s", filepath.Join(c.dir, "parley.log"))
		}
	}
}

func readSample(ctx context.Context, srv *server) (sample, error) {
	var s sample
	pid := srv.cmd.Process.Pid
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("read /proc status: %w", err)
	}
	for line := range strings.Lines(string(status)) {
		key, v, _ := strings.Cut(line, ":")
		kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		switch key {
		case "VmRSS":
			s.rssKB = kb
		case "RssAnon":
			s.anonKB = kb
		case "RssFile":
			s.fileKB = kb
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, fmt.Errorf("read /proc fd: %w", err)
	}
	s.fds = float64(len(fds))
	st, err := os.Stat(srv.data)
	if err != nil {
		return s, err
	}
	s.fileBytes = float64(st.Size())
	if s.goroutines, err = scrapeGauge(ctx, srv.base+"/metrics", "go_goroutines"); err != nil {
		return s, err
	}
	s.heapBytes, err = scrapeGauge(ctx, srv.base+"/metrics", "go_memstats_heap_inuse_bytes")
	return s, err
}

// scrapeGauge reads one unlabelled sample from a Prometheus text page.
func scrapeGauge(ctx context.Context, url, name string) (float64, error) {
	req, err := newGet(ctx, url)
	if err != nil {
		return 0, err
	}
	resp, err := metricsClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("scrape: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("scrape: no %s in /metrics (status %d)", name, resp.StatusCode)
}

// judge prints the first, middle and last samples and the fitted growth of
// each quantity over the last third, and returns what was not flat.
func judge(samples []sample, w io.Writer) []string {
	if len(samples) < 6 {
		return []string{fmt.Sprintf("only %d samples: too few to judge", len(samples))}
	}
	first, mid, last := samples[0], samples[len(samples)/2], samples[len(samples)-1]
	tail := samples[len(samples)*2/3:]
	span := tail[len(tail)-1].at - tail[0].at
	fmt.Fprintf(w, "%-11s %12s %12s %12s %16s %12s\n", "", "start", "middle", "end", "last third: rise", "tolerance")
	var failures []string
	for _, q := range quantities {
		slope := fitSlope(tail, q.get) // per second
		rise := slope * span.Seconds()
		mean := 0.0
		for _, s := range tail {
			mean += q.get(s)
		}
		mean /= float64(len(tail))
		tol := math.Max(q.share*mean, q.floor)
		if !q.judged {
			fmt.Fprintf(w, "%-11s %12.0f %12.0f %12.0f %16.0f %12s %s\n", q.name, q.get(first), q.get(mid), q.get(last), rise, "-", q.unit)
			continue
		}
		fmt.Fprintf(w, "%-11s %12.0f %12.0f %12.0f %16.0f %12.0f %s\n", q.name, q.get(first), q.get(mid), q.get(last), rise, tol, q.unit)
		if rise > tol {
			failures = append(failures, fmt.Sprintf("%s rose %.0f%s over the last third (%s), tolerance %.0f%s", q.name, rise, q.unit, span.Truncate(time.Second), tol, q.unit))
		}
	}
	return failures
}

// fitSlope is the least-squares slope of get over time, per second.
func fitSlope(ss []sample, get func(sample) float64) float64 {
	var n, sx, sy, sxx, sxy float64
	for _, s := range ss {
		x, y := s.at.Seconds(), get(s)
		n++
		sx += x
		sy += y
		sxx += x * x
		sxy += x * y
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}
