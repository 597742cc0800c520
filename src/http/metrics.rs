//! Request metrics for `GET /metrics` (Prometheus text): requests by route
//! pattern, method and status, and a latency histogram. Recorded by a small
//! middleware at the response head; the ready-made middleware we used before
//! wrapped every response body and formatted label strings per request, which
//! cost a third of a status lookup.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::time::Instant;

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpResponse, web};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
    TextEncoder,
};

/// The service's metrics registry and its HTTP collectors.
#[derive(Clone)]
pub struct HttpMetrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    /// Tells this service's collectors from another's in [`HANDLES`]
    /// (tests run several services in one process).
    id: u64,
}

/// The collectors of one label set.
struct Handle {
    metrics: u64,
    method: Method,
    status: StatusCode,
    requests: IntCounter,
    duration: Histogram,
}

/// The source of [`HttpMetrics`] ids.
static SERVICES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

thread_local! {
    /// Collectors by route pattern, for each worker thread.
    static HANDLES: RefCell<HashMap<Box<str>, Vec<Handle>, foldhash::fast::RandomState>> =
        RefCell::default();
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
            id: SERVICES.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// The middleware, for `App::wrap_fn`: records each answered request
    /// under its route pattern.
    pub fn record<S, B>(
        &self,
        req: ServiceRequest,
        srv: &S,
    ) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + use<S, B>
    where
        S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
        S::Future: 'static,
    {
        let started = Instant::now();
        let method = req.method().clone();
        let metrics = self.clone();
        let response = srv.call(req);
        async move {
            let response = response.await?;
            let status = response.status();
            // The status lookups are routed by hand (see `status::routes`).
            match crate::status::routes::model_route(response.request().path()) {
                Some((endpoint, _, _)) => metrics.observe(endpoint, &method, status, started),
                None => {
                    let endpoint = response.request().match_pattern();
                    let endpoint = endpoint.as_deref().unwrap_or("UNMATCHED");
                    metrics.observe(endpoint, &method, status, started)
                }
            }
            Ok(response)
        }
    }

    /// Records one answered request. The collectors of each label set are
    /// looked up once per worker thread, not hashed anew for every request.
    pub fn observe(&self, endpoint: &str, method: &Method, status: StatusCode, started: Instant) {
        let elapsed = started.elapsed().as_secs_f64();
        let id = self.id;
        HANDLES.with_borrow_mut(|handles| {
            let known = match handles.get_mut(endpoint) {
                Some(known) => known,
                None => handles.entry(endpoint.into()).or_default(),
            };
            let found = known
                .iter()
                .find(|h| h.metrics == id && h.method == method && h.status == status);
            let handle = match found {
                Some(handle) => handle,
                None => {
                    let labels = [endpoint, method.as_str(), status.as_str()];
                    known.push(Handle {
                        metrics: id,
                        method: method.clone(),
                        status,
                        requests: self.requests.with_label_values(&labels),
                        duration: self.duration.with_label_values(&labels),
                    });
                    &known[known.len() - 1]
                }
            };
            handle.requests.inc();
            handle.duration.observe(elapsed);
        });
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
