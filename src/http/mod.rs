//! The HTTP layer: application state, the route table, operational endpoints
//! (`/healthz`, `/readyz`, `/metrics`, `/openapi.json`, `/docs`), and the
//! middleware that makes every error a problem document.

use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{HttpRequest, HttpResponse, guard, web};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::clock::SharedClock;
use crate::config::Config;
use crate::db::Store;

pub mod auth;
pub mod extract;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod telemetry;

use problem::{ApiError, PROBLEM_CONTENT_TYPE};

/// What every handler may use.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    /// Every change goes through it (see [`crate::unit`]).
    pub work: crate::unit::UnitOfWork,
    /// Verifies bearer tokens (and invitation links).
    pub authenticator: Arc<crate::auth::Authenticator>,
    /// The console's sign-in and sessions.
    pub console: Arc<crate::console::Console>,
    pub clock: SharedClock,
    pub config: Arc<Config>,
    pub reviews: crate::reviews::service::Reviews,
    pub status: Arc<crate::status::StatusService>,
    pub keys: Arc<crate::status::attestation::AttestationKeys>,
    pub outbox: Arc<crate::outbox::Outbox>,
    pub scheduler: Arc<crate::scheduler::Scheduler>,
    pub directory: crate::people::Directory,
    /// Set in time-skipping mode (`CLEARANCE_CLOCK=manual`): the clock that
    /// `POST /v1/admin/clock` moves.
    pub manual_clock: Option<Arc<crate::clock::ManualClock>>,
    /// Per-client limits on failed authentication and supplier links.
    pub limits: Arc<limits::RateLimits>,
    /// Asks about models nobody reviewed, tallied until written.
    pub intake: Arc<crate::intake::Intake>,
    pub usage: Arc<crate::usage::Usage>,
}

/// Registers every route of the service.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // The integrators' hot path first: routing tries patterns in order.
    cfg.configure(crate::status::routes::configure)
        // Resources, not bare routes: a resource answers a method it does
        // not take with 405 and `Allow`, a bare route falls through to 404.
        .service(web::resource("/healthz").route(web::get().to(healthz)))
        .service(web::resource("/metrics").route(web::get().to(metrics::metrics)))
        .service(web::resource("/readyz").route(web::get().to(readyz)))
        .service(web::resource("/docs").route(web::get().to(|| async {
            HttpResponse::PermanentRedirect()
                .insert_header((header::LOCATION, "/docs/"))
                .finish()
        })))
        // The documentation's own routes (Swagger UI's) admit GET alone and
        // let any other method fall through; these answer it.
        .service(
            web::resource(["/openapi.json", "/docs/{_:.*}"])
                .guard(guard::Not(guard::Get()))
                .to(|req: HttpRequest| async move { refuse_method(&req, "GET") }),
        )
        .configure(crate::providers::routes::configure)
        .configure(crate::workflow::routes::configure)
        .configure(crate::reviews::routes::configure)
        .configure(crate::webhooks::routes::configure)
        .configure(crate::outbox::routes::configure)
        .configure(crate::scheduler::routes::configure)
        .configure(crate::people::routes::configure)
        .configure(crate::audit::routes::configure)
        .configure(crate::evidence::routes::configure)
        .configure(crate::exports::routes::configure)
        .configure(crate::intake::routes::configure)
        .configure(crate::usage::routes::configure)
        .configure(crate::console::configure);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` with the reason in `detail`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
        detail: None,
    })
}

/// Readiness: the database answers and every migration has been applied.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Health),
        (status = 503, description = "Database unreachable or migrations pending", body = Health),
    ))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let store = state.store.clone();
    let result = tokio::task::spawn_blocking(move || store.ready()).await;
    let detail = match result {
        Ok(Ok(true)) => {
            return HttpResponse::Ok().json(Health {
                status: "ok".into(),
                detail: None,
            });
        }
        Ok(Ok(false)) => "migrations are pending".to_owned(),
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    };
    HttpResponse::ServiceUnavailable().json(Health {
        status: "unavailable".into(),
        detail: Some(detail),
    })
}

/// Unknown routes get a problem document, not an empty 404.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(no_route(&req))
}

/// The 404 of a path no route serves.
pub fn no_route(req: &HttpRequest) -> ApiError {
    ApiError::NotFound(format!("no route for {} {}", req.method(), req.path()))
}

/// The 405 of a method the route does not take.
pub fn method_not_allowed(req: &HttpRequest) -> ApiError {
    ApiError::MethodNotAllowed(format!("{} is not allowed on {}", req.method(), req.path()))
}

/// The whole 405 answer to a method a path does not take, with the `Allow`
/// header RFC 9110 requires (`allow`: the methods it does take, e.g.
/// `"GET, HEAD"`), for handlers that route methods themselves.
pub fn refuse_method(req: &HttpRequest, allow: &'static str) -> HttpResponse {
    let mut response = actix_web::ResponseError::error_response(&method_not_allowed(req));
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// Renders any error response that is not yet a problem document (a method
/// the route does not allow, an oversized body refused by actix itself) as
/// one; the console's HTML pages stay as they are.
pub fn problem_errors<B: MessageBody + 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(to_problem)
}

fn to_problem<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    // A problem document already, or a console page (which explains itself).
    let explained = res.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes();
        v.starts_with(PROBLEM_CONTENT_TYPE.as_bytes()) || v.starts_with(b"text/html")
    });
    if explained {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let error = match status.as_u16() {
        404 => no_route(res.request()),
        405 => method_not_allowed(res.request()),
        413 => ApiError::PayloadTooLarge("the body is larger than this service accepts".into()),
        415 => ApiError::UnsupportedMediaType("send the body as application/json".into()),
        400..=499 => ApiError::BadRequest(
            status
                .canonical_reason()
                .unwrap_or("bad request")
                .to_owned(),
        ),
        _ => ApiError::Internal(format!("status {status}")),
    };
    let (req, old) = res.into_parts();
    let mut new: HttpResponse<BoxBody> = actix_web::ResponseError::error_response(&error);
    *new.status_mut() = status;
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.headers_mut().insert(name.clone(), value.clone());
        }
    }
    new.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
    );
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, new).map_into_right_body(),
    ))
}

/// The Content-Security-Policy of the API's documentation (Swagger UI,
/// whose page configures itself with an inline script): nothing from
/// elsewhere, never inside another site's frame.
const DOCS_CSP: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'";

/// Headers every response carries unless its handler set them: no content
/// sniffing, and `no-store` (review data must not sit in shared or browser
/// caches; status lookups set their own caching); the documentation pages
/// get their own Content-Security-Policy.
pub async fn security_headers(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl MessageBody + 'static>,
) -> actix_web::Result<ServiceResponse<impl MessageBody>> {
    let docs = req.path().starts_with("/docs");
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    if !headers.contains_key(header::X_CONTENT_TYPE_OPTIONS) {
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if docs {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DOCS_CSP),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    Ok(res)
}

/// The OpenAPI document, generated from the code.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi::ApiDoc::openapi()
}
