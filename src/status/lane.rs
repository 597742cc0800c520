//! The fast lane of `GET /v1/status/{provider}/{model}`, the integrators'
//! hot path: answered in front of the application, without its router,
//! extractors and middleware stack, which together cost more than the lookup
//! itself. It does what they would do for this one route, with the same
//! functions: the caller is authenticated and noted by [`auth::caller`], the
//! answer is [`status_response`], the request id and access log come from
//! [`telemetry`], and the request is counted in the route's metrics.
//! Every other request, a path with percent-escapes (the router decodes
//! them) and a lookup whose token is refused (the application's rate limits
//! count those) go on to the application unchanged.

use std::future::{Ready, ready};
use std::sync::Arc;
use std::time::Instant;

use actix_http::Request;
use actix_service::{IntoServiceFactory, Service, ServiceFactory};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{AppConfig, Response, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header;
use actix_web::{HttpMessage, ResponseError};
use futures_util::TryFutureExt;
use futures_util::future::{Either, LocalBoxFuture, MapOk};

use super::routes::{STATUS, model_route, status_response};
use crate::auth::Authenticator;
use crate::auth::roles::EVERYONE;
use crate::http::metrics::HttpMetrics;
use crate::http::problem::ApiError;
use crate::http::telemetry;
use crate::http::{AppState, auth};

/// What the lane needs: the application's state, authenticator and metrics.
#[derive(Clone)]
pub struct Lane {
    pub state: AppState,
    pub authenticator: Arc<Authenticator>,
    pub metrics: HttpMetrics,
}

impl Lane {
    /// Puts the lane in front of `app`.
    pub fn before<A, F>(&self, app: A) -> WithLane<F>
    where
        A: IntoServiceFactory<F, Request>,
        F: ServiceFactory<Request>,
    {
        WithLane {
            app: app.into_factory(),
            lane: self.clone(),
        }
    }

    /// The response to `req` when it is a status lookup this lane serves.
    fn serve(&self, req: &Request) -> Option<Response<BoxBody>> {
        // HEAD is answered as GET is; actix-http leaves out the body.
        if !matches!(*req.method(), Method::GET | Method::HEAD) || req.path().contains('%') {
            return None;
        }
        let (endpoint, provider, model) = model_route(req.path())?;
        if endpoint != STATUS {
            return None;
        }
        let started = Instant::now();
        let headers = req.headers();
        let id = telemetry::request_id(headers);
        // A refused token, or a supplier's, goes on to the application,
        // whose rate limits count it.
        let principal = auth::caller(
            &self.authenticator,
            Some(&self.state.directory),
            headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()),
        )
        .ok()
        .filter(|principal| principal.respondent.is_none())?;
        let admitted = principal.require(EVERYONE).map_err(ApiError::from);
        let mut response = match admitted {
            Ok(()) => status_response(
                &self.state,
                (provider, model),
                &principal.sub,
                headers.get(header::IF_NONE_MATCH),
            ),
            Err(error) => error.error_response(),
        };
        response.headers_mut().insert(telemetry::HEADER, id.clone());
        let status = response.status();
        self.metrics.observe(STATUS, req.method(), status, started);
        // Answered lookups are counted in the metrics, not written line by
        // line at `info` (they are the integrators' hot path); at `debug`
        // each is logged, and a refusal or failure always is.
        let level = if telemetry::quiet(status) {
            tracing::Level::DEBUG
        } else {
            tracing::Level::INFO
        };
        if telemetry::logs(level) {
            telemetry::span(req.method(), req.path(), &id)
                .in_scope(|| telemetry::served(status, started));
        }
        Some(response.into())
    }
}

/// The application with the lane in front, as `HttpServer::new` takes it.
pub struct WithLane<F> {
    app: F,
    lane: Lane,
}

impl<F, B> ServiceFactory<Request> for WithLane<F>
where
    F: ServiceFactory<
            Request,
            Config = AppConfig,
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    F::Future: 'static,
    F::InitError: 'static,
    B: MessageBody + 'static,
{
    type Response = Response<BoxBody>;
    type Error = actix_web::Error;
    type Config = AppConfig;
    type Service = LaneService<F::Service>;
    type InitError = F::InitError;
    type Future = LocalBoxFuture<'static, Result<Self::Service, Self::InitError>>;

    fn new_service(&self, config: AppConfig) -> Self::Future {
        let app = self.app.new_service(config);
        let lane = self.lane.clone();
        Box::pin(async move {
            Ok(LaneService {
                app: app.await?,
                lane,
            })
        })
    }
}

/// One worker's application with the lane in front.
pub struct LaneService<S> {
    app: S,
    lane: Lane,
}

type Answered = Ready<Result<Response<BoxBody>, actix_web::Error>>;
type Passed<S, B> =
    MapOk<<S as Service<Request>>::Future, fn(ServiceResponse<B>) -> Response<BoxBody>>;

impl<S, B> Service<Request> for LaneService<S>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    type Response = Response<BoxBody>;
    type Error = actix_web::Error;
    type Future = Either<Answered, Passed<S, B>>;

    actix_service::forward_ready!(app);

    fn call(&self, req: Request) -> Self::Future {
        match self.lane.serve(&req) {
            Some(response) => Either::Left(ready(Ok(response))),
            None => Either::Right(self.app.call(req).map_ok(boxed as fn(_) -> _)),
        }
    }
}

fn boxed<B: MessageBody + 'static>(response: ServiceResponse<B>) -> Response<BoxBody> {
    response.map_into_boxed_body().into()
}
