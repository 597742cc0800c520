//! Per-request telemetry that stays off the hot path: a root span carrying
//! the request id (without resolving the route, which would scan every
//! route's pattern once more per request), and an access log line written
//! only when info-level logging is on.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

/// Root span with method, path and request id.
pub struct LeanRootSpan;

impl RootSpanBuilder for LeanRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request.extensions().get::<RequestId>().copied();
        tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.path(),
            request_id = %request_id.map(|id| id.to_string()).unwrap_or_default(),
        )
    }

    fn on_request_end<B: MessageBody>(_span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        if tracing::enabled!(tracing::Level::INFO) {
            match outcome {
                Ok(response) => {
                    tracing::info!(status = response.status().as_u16(), "request served")
                }
                Err(error) => tracing::info!(%error, "request failed"),
            }
        }
    }
}
