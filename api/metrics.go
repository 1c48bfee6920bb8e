package api

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are what GET /metrics exports, in a registry of the server's
// own (two servers in one process, as in tests, do not collide).
type metrics struct {
	reg *prometheus.Registry

	requests        *prometheus.CounterVec   // by route and status code
	errors          *prometheus.CounterVec   // by route and error type
	latency         *prometheus.HistogramVec // by route
	tokens          prometheus.Counter
	tokensPerSecond prometheus.Histogram
	queueDepth      prometheus.Gauge
	running         prometheus.Gauge
	modelLoaded     prometheus.Gauge
	modelInfo       *prometheus.GaugeVec // by model
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dfill_http_requests_total",
			Help: "HTTP requests answered, by route and status code (499: the client went away first).",
		}, []string{"route", "code"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dfill_http_errors_total",
			Help: "Requests that ended in an error, by route and error type (the type field of the error answered, or canceled).",
		}, []string{"route", "type"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dfill_http_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its answer (queue wait included), by route.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14), // 5 ms to 41 s
		}, []string{"route"}),
		tokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dfill_generated_tokens_total",
			Help: "Completion tokens generated.",
		}),
		tokensPerSecond: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "dfill_generation_tokens_per_second",
			Help:    "Completion tokens per second of each generation, from the moment it gets the model to its end.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 16), // 1 to 32768
		}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dfill_queue_depth",
			Help: "Requests waiting for the model.",
		}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dfill_generations_running",
			Help: "Generations running (at most Options.Batch, denoised together).",
		}),
		modelLoaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dfill_model_loaded",
			Help: "1 once the model is loaded and serving, 0 while it loads.",
		}),
		modelInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dfill_model_info",
			Help: "1, labelled with the name of the model served.",
		}, []string{"model"}),
	}
	m.reg.MustRegister(m.requests, m.errors, m.latency, m.tokens, m.tokensPerSecond, m.queueDepth, m.running, m.modelLoaded, m.modelInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// handler serves the metrics in Prometheus's text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
