//! Request metrics for `GET /metrics` (Prometheus text): requests by route
//! pattern, method and status, and a latency histogram. Recorded by a small
//! middleware at the response head; the ready-made middleware we used before
//! wrapped every response body and formatted label strings per request, which
//! cost a third of a status lookup.

use std::time::Instant;

use actix_web::{HttpResponse, web};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

/// The service's metrics registry and its HTTP collectors.
#[derive(Clone)]
pub struct HttpMetrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl std::fmt::Debug for HttpMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpMetrics").finish_non_exhaustive()
    }
}

impl HttpMetrics {
    /// Registers the HTTP collectors in `registry`, which also serves every
    /// other collector of the service.
    pub fn register(registry: Registry) -> prometheus::Result<Self> {
        let labels = ["endpoint", "method", "status"];
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status",
            )
            .namespace("clearance"),
            &labels,
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_requests_duration_seconds",
                "HTTP request latency in seconds",
            )
            .namespace("clearance"),
            &labels,
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self {
            registry,
            requests,
            duration,
        })
    }

    /// Records one answered request.
    pub fn observe(&self, endpoint: &str, method: &str, status: &str, started: Instant) {
        let labels = [endpoint, method, status];
        self.requests.with_label_values(&labels).inc();
        self.duration
            .with_label_values(&labels)
            .observe(started.elapsed().as_secs_f64());
    }

    /// The Prometheus text of every registered collector.
    pub fn render(&self) -> HttpResponse {
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        match encoder.encode(&self.registry.gather(), &mut buffer) {
            Ok(()) => HttpResponse::Ok()
                .content_type(encoder.format_type())
                .body(buffer),
            Err(error) => HttpResponse::InternalServerError().body(error.to_string()),
        }
    }
}

/// `GET /metrics`.
pub async fn metrics(metrics: web::Data<HttpMetrics>) -> HttpResponse {
    metrics.render()
}
