package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/shared"
)

// Metrics are Parley's Prometheus metrics, served as GET /metrics. Nothing
// here takes a lock on the hot path: counters and histograms are atomic,
// and the gauges (held polls, sessions, rooms, parked connections) read the
// existing counts only when scraped.
type Metrics struct {
	reg *prometheus.Registry

	pollAnswer   prometheus.Histogram
	deliveries   prometheus.Counter
	appended     prometheus.Counter
	commit       prometheus.Histogram
	batch        prometheus.Histogram
	commitFailed prometheus.Counter
	// errors has one counter per known code, made up front: a read-only map
	// of ready counters costs no lock per refusal, where a CounterVec's
	// WithLabelValues would take its read lock.
	errors map[string]prometheus.Counter
}

// NewMetrics returns the metrics of one server, with the Go runtime's and
// the process's own.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		reg: reg,
		pollAnswer: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "parley_poll_answer_seconds",
			Help: "Time from a poll's arrival to its answer, held or not.",
			// Short polls and wakes in milliseconds; timeouts at the default
			// 25 s wait and the 60 s maximum.
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 10, 20, 26, 30, 61},
		}),
		deliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_deliveries_total",
			Help: "Messages delivered in poll answers (one message to three polls is three).",
		}),
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_messages_appended_total",
			Help: "Messages stored (texts, joins and leaves; duplicates of a client_msg_id not counted).",
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "parley_store_commit_seconds",
			Help:    "Time of one store commit (one batch of appends).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12), // 0.1 ms to 2.4 s
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "parley_store_batch_size",
			Help:    "Messages per store commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9), // 1 to 256 (queue's MaxBatch)
		}),
		commitFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_store_commit_failures_total",
			Help: "Store commits that failed (their requests answered 503 unavailable).",
		}),
		errors: make(map[string]prometheus.Counter, len(statusOf)+1),
	}
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_http_errors_total",
		Help: "Requests answered with an error, by code (rate_limited, cross_site, over_capacity, …).",
	}, []string{"code"})
	for code := range statusOf {
		m.errors[code] = refused.WithLabelValues(code)
	}
	m.errors[""] = refused.WithLabelValues("other")
	reg.MustRegister(m.pollAnswer, m.deliveries, m.appended, m.commit, m.batch, m.commitFailed, refused)
	return m
}

// Register adds collectors of parts beside the API (the connection cap)
// to the same registry, so one scrape has them all.
func (m *Metrics) Register(cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// refused counts one error answer by its code.
func (m *Metrics) refused(code string) {
	c, ok := m.errors[code]
	if !ok {
		c = m.errors[""]
	}
	c.Inc()
}

// answered records a poll answered after since with n messages.
func (m *Metrics) answered(since time.Time, n int) {
	m.pollAnswer.Observe(time.Since(since).Seconds())
	if n > 0 {
		m.deliveries.Add(float64(n))
	}
}

// Store returns st with its commits measured: their latency, batch size,
// failures and the messages they stored. Wrap the store before giving it
// to queue.New.
func (m *Metrics) Store(st queue.Store) queue.Store { return measuredStore{st, m} }

type measuredStore struct {
	queue.Store
	m *Metrics
}

func (s measuredStore) Append(ctx context.Context, msgs []shared.Message) ([]queue.Result, error) {
	start := time.Now()
	res, err := s.Store.Append(ctx, msgs)
	s.m.commit.Observe(time.Since(start).Seconds())
	s.m.batch.Observe(float64(len(msgs)))
	if err != nil {
		s.m.commitFailed.Inc()
		return res, err
	}
	stored := 0
	for _, r := range res {
		if !r.Duplicate {
			stored++
		}
	}
	s.m.appended.Add(float64(stored))
	return res, nil
}

// registerMetrics adds the gauges that read s's parts when scraped.
func (s *Server) registerMetrics() error {
	gauges := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "parley_held_polls", Help: "Polls held now (parked or on a goroutine), textbook polls included.",
		}, func() float64 { return float64(s.sessions.Held()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "parley_sessions", Help: "Live sessions.",
		}, func() float64 { return float64(s.sessions.Count()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "parley_rooms_in_memory", Help: "Rooms held in memory.",
		}, func() float64 { return float64(s.hub.Rooms()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "parley_room_evictions_total", Help: "Rooms that left memory, unused (idle, without messages, or the coldest when full).",
		}, func() float64 { return float64(s.hub.Evictions()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "parley_window_bytes", Help: "Estimated bytes of every room's in-memory window together.",
		}, func() float64 { return float64(s.hub.WindowBytes()) }),
	}
	if s.lot != nil {
		gauges = append(gauges,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "parley_parked_polls", Help: "Held polls whose connections are parked.",
			}, func() float64 { return float64(s.lot.Stats().Parked) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "parley_lane_requests_total", Help: "Requests read and served on the park's lane.",
			}, func() float64 { return float64(s.lot.Stats().Served) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "parley_lane_handed_total", Help: "Lane connections handed back to net/http.",
			}, func() float64 { return float64(s.lot.Stats().Handed) }),
		)
	}
	for _, g := range gauges {
		if err := s.metrics.reg.Register(g); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return errors.New("httpapi: a Metrics serves one Server")
			}
			return err
		}
	}
	return nil
}

// MetricsHandler serves the metrics in the Prometheus text format. Handler
// serves it at GET /metrics unless Config.MetricsElsewhere is set.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
}
