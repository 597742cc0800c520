//! Per-request telemetry that stays off the hot path: a request id (taken
//! from a sane incoming `X-Request-Id`, else generated) in the request's
//! headers and the response's `x-request-id` header, and, only when info
//! logging is on, a span carrying it and an access log line.

use std::future::{Ready, ready};

use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{FromRequest, HttpRequest};
use tracing::Instrument;

use super::problem::ApiError;

/// The id of one request, for logs and audit events.
#[derive(Debug, Clone)]
pub struct RequestId(HeaderValue);

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.to_str().unwrap_or_default())
    }
}

impl FromRequest for RequestId {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.headers()
                .get(&HEADER)
                .cloned()
                .map(RequestId)
                .ok_or_else(|| {
                    ApiError::Internal("no request id: the telemetry middleware is missing".into())
                }),
        )
    }
}

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Keeps an incoming id when it is short and plain, else makes one.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(&HEADER)
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.as_bytes()
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        })
        .cloned()
        .unwrap_or_else(|| {
            let mut buffer = uuid::Uuid::encode_buffer();
            let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
            HeaderValue::from_str(id).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
        })
}

/// The middleware, as a function for `App::wrap_fn`.
pub fn trace<S, B>(
    mut req: ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
{
    // Kept in the request's own headers (replacing one not kept): cheaper
    // than the extensions map, which would be allocated for it alone.
    let id = request_id(req.headers());
    req.headers_mut().insert(HEADER, id.clone());
    // Checks are the integrators' bulk path: an answered one is counted in
    // the metrics and logged only at `debug`; a refused one always is.
    let bulk = req.path() == CHECK_PATH;
    let logging = tracing::enabled!(tracing::Level::INFO) && (!bulk || logs(tracing::Level::DEBUG));
    let request_span = if logging {
        span(req.method(), req.path(), &id)
    } else {
        tracing::Span::none()
    };
    let method = bulk.then(|| req.method().clone());
    let started = std::time::Instant::now();
    let response = srv.call(req);
    async move {
        let mut response = response.await?;
        response.headers_mut().insert(HEADER, id.clone());
        let status = response.status();
        // A client over its rate limit is counted in the metrics, not
        // given a line per refusal (that flood is what the limit stops).
        let limited = status == StatusCode::TOO_MANY_REQUESTS && !logs(tracing::Level::DEBUG);
        if limited {
            return Ok(response);
        }
        if logging {
            served(status, started);
        } else if let Some(method) = method.filter(|_| !quiet(status) && logs(tracing::Level::INFO))
        {
            span(&method, CHECK_PATH, &id).in_scope(|| served(status, started));
        }
        Ok(response)
    }
    .instrument(request_span)
}

/// The path of the bulk check, whose answered requests are not logged at `info`.
const CHECK_PATH: &str = "/v1/status/check";

/// Whether a status needs no line of its own at `info`: answered (2xx) or
/// not modified.
pub fn quiet(status: StatusCode) -> bool {
    status.is_success() || status == StatusCode::NOT_MODIFIED
}

/// Whether events at `level` are written.
pub fn logs(level: tracing::Level) -> bool {
    match level {
        tracing::Level::DEBUG => tracing::enabled!(tracing::Level::DEBUG),
        tracing::Level::TRACE => tracing::enabled!(tracing::Level::TRACE),
        tracing::Level::INFO => tracing::enabled!(tracing::Level::INFO),
        tracing::Level::WARN => tracing::enabled!(tracing::Level::WARN),
        tracing::Level::ERROR => tracing::enabled!(tracing::Level::ERROR),
    }
}

/// The span of one request, for when info logging is on. A path that is
/// itself a credential (a supplier's `/respond/<token>`, a development
/// `/signin/link/<token>`) is logged without its token.
pub fn span(method: &Method, path: &str, id: &HeaderValue) -> tracing::Span {
    tracing::info_span!(
        "request",
        method = %method,
        path = %loggable(path),
        request_id = %id.to_str().unwrap_or_default(),
    )
}

/// `path` with the token of a link that admits its holder cut out.
pub fn loggable(path: &str) -> std::borrow::Cow<'_, str> {
    without_tokens(path)
}

/// The paths whose last segment is a credential: a supplier's link, a
/// development sign-in link.
const CREDENTIAL_LINKS: &[&str] = &["/respond/", "/signin/link/"];

/// `text` (a path, an email's payload) with the token of every link that
/// admits its holder cut out: what logs and admin listings may show.
pub fn without_tokens(text: &str) -> std::borrow::Cow<'_, str> {
    if !CREDENTIAL_LINKS.iter().any(|link| text.contains(link)) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((at, len)) = CREDENTIAL_LINKS
        .iter()
        .filter_map(|link| rest.find(link).map(|at| (at, link.len())))
        .min()
    {
        let (before, after) = rest.split_at(at + len);
        out.push_str(before);
        out.push_str("[redacted]");
        let token_end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
            .unwrap_or(after.len());
        rest = &after[token_end..];
    }
    out.push_str(rest);
    out.into()
}

/// The access log line of an answered request, in its span.
pub fn served(status: StatusCode, started: std::time::Instant) {
    tracing::info!(
        status = status.as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request served"
    );
}

#[cfg(test)]
mod redaction_tests {
    #[test]
    fn a_link_that_admits_its_holder_is_logged_without_its_token() {
        assert_eq!(
            super::loggable("/respond/eyJhbGci.abc.def"),
            "/respond/[redacted]"
        );
        assert_eq!(
            super::loggable("/signin/link/eyJ.x.y"),
            "/signin/link/[redacted]"
        );
        assert_eq!(super::loggable("/v1/reviews/r1"), "/v1/reviews/r1");
    }

    #[test]
    fn supplier_tokens_are_cut_from_listed_payloads() {
        let payload = r#"{"text":"Open http://x/respond/eyJ.abc-_.def\nThanks","html":"<a href=\"http://x/respond/eyJ.q\">"}"#;
        let shown = super::without_tokens(payload);
        assert!(!shown.contains("eyJ"), "{shown}");
        assert_eq!(shown.matches("/respond/[redacted]").count(), 2, "{shown}");
        assert!(serde_json::from_str::<serde_json::Value>(&shown).is_ok());
    }
}
