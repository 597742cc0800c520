//! HTTP routes of the intake: list the requests, start a review from one,
//! dismiss one (vendor managers and admins). The use cases are in
//! [`super::service`]; these handlers read the request and answer.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::service::{self, IntakeError};
use super::{After, IntakeRequest, IntakeState, OverBound};
use crate::audit::Actor;
use crate::auth::Principal;
use crate::auth::roles::MANAGERS;
use crate::http::AppState;
use crate::http::extract::{Page, PageParams, ValidJson};
use crate::http::problem::{ApiError, Problem};
use crate::http::telemetry::RequestId;
use crate::ids::{ModelSlug, ProviderSlug};
use crate::reviews::ReviewSummary;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/intake").route(web::get().to(list_intake)))
        .service(
            web::resource("/v1/intake/{provider}/{model}/review")
                .route(web::post().to(review_from_intake)),
        )
        .service(
            web::resource("/v1/intake/{provider}/{model}/dismiss")
                .route(web::post().to(dismiss_intake)),
        );
}

const PROBLEM: &str = "application/problem+json";

impl From<IntakeError> for ApiError {
    fn from(error: IntakeError) -> Self {
        match error {
            IntakeError::NotAsked(..) => ApiError::NotFound(error.to_string()),
            IntakeError::Review(e) => e.into(),
            IntakeError::Catalogue(e) => e.into(),
            IntakeError::Store(e) => e.into(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IntakeQuery {
    /// `open` (default), `started`, `dismissed` or `all`.
    pub state: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of requests, and the askers past the bound.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntakePage {
    pub items: Vec<IntakeRequest>,
    pub next_cursor: Option<String>,
    /// Askers that asked about more new models in a day than
    /// `CLEARANCE_INTAKE_PER_ASKER` in the last seven days, most names
    /// first (at most 50): their asks past the bound are counted here, not
    /// listed as requests.
    pub over_bound: Vec<OverBound>,
}

/// Models integrators asked about that nobody reviewed: who asked, for which
/// use cases, how often, first and last seen; most recently asked first.
/// Beside them, the askers that went past the per-asker bound.
///
/// Roles: `vendor_manager`, `admin`. Asks are written every
/// `CLEARANCE_INTAKE_FLUSH_MS` (this instance's before it answers).
#[utoipa::path(get, path = "/v1/intake", tag = "intake", params(IntakeQuery),
    responses(
        (status = 200, description = "A page of requests", body = IntakePage),
        (status = 422, description = "An unknown state, or a bad `limit` or `cursor`", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn list_intake(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<IntakeQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(MANAGERS)?;
    let wanted = match query.state.as_deref().unwrap_or("open") {
        "all" => None,
        text => Some(text.parse::<IntakeState>().map_err(|_| {
            ApiError::validation(
                "state",
                format!("`{text}` is not open, started, dismissed or all"),
            )
        })?),
    };
    let page = PageParams {
        limit: query.limit.clone(),
        cursor: query.cursor.clone(),
    }
    .check()?;
    let after = match page.after.as_deref() {
        None => None,
        Some(text) => Some(After::parse(text).ok_or_else(|| {
            ApiError::validation("cursor", "is not a cursor this service issued")
        })?),
    };
    let limit = page.limit;
    let (items, over_bound) = service::requests(
        (&state.intake, &state.store),
        wanted,
        (after, limit),
        state.clock.now(),
    )
    .await?;
    let Page { items, next_cursor } = Page::from_rows(items, limit, After::key);
    Ok(HttpResponse::Ok().json(IntakePage {
        items,
        next_cursor,
        over_bound,
    }))
}

/// `POST /v1/intake/{provider}/{model}/review`.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntakeReview {
    /// Workflow id; default `model-provider`.
    pub workflow: Option<String>,
}

/// Start a review of the model of a request, registering its provider and
/// model (named by their slugs) when they are new. The request becomes
/// `started`.
///
/// Roles: `vendor_manager`, `admin`.
#[utoipa::path(post, path = "/v1/intake/{provider}/{model}/review", tag = "intake",
    params(("provider" = String, Path), ("model" = String, Path)),
    request_body = IntakeReview,
    responses(
        (status = 201, description = "The review", body = ReviewSummary, headers(("Location" = String))),
        (status = 404, description = "Nobody asked about this model", body = Problem, content_type = PROBLEM),
        (status = 409, description = "A review of the model is already in progress", body = Problem, content_type = PROBLEM),
        (status = 422, description = "An unknown workflow", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn review_from_intake(
    state: web::Data<AppState>,
    principal: Principal,
    request_id: RequestId,
    path: web::Path<(String, String)>,
    body: ValidJson<IntakeReview>,
) -> Result<HttpResponse, ApiError> {
    principal.require(MANAGERS)?;
    let subject = subject(&path)?;
    let actor = Actor::person(&principal, Some(request_id.to_string()));
    let summary = service::start_review(
        (&state.intake, &state.work),
        &state.reviews,
        actor,
        principal.email.clone(),
        subject,
        body.0.workflow,
        state.clock.now(),
    )
    .await?;
    Ok(HttpResponse::build(StatusCode::CREATED)
        .insert_header((header::LOCATION, format!("/v1/reviews/{}", summary.id)))
        .json(summary))
}

/// `POST /v1/intake/{provider}/{model}/dismiss`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Dismissal {
    /// Why nobody will review it (shown to vendor managers).
    #[validate(
        required,
        length(min = 1, max = 2000),
        custom(function = "crate::validation::one_line")
    )]
    #[schema(value_type = String, example = "replaced by an approved model")]
    pub reason: Option<String>,
}

/// Dismiss a request with a reason; it stays listed (`state=dismissed`), and
/// later asks still count.
///
/// Roles: `vendor_manager`, `admin`.
#[utoipa::path(post, path = "/v1/intake/{provider}/{model}/dismiss", tag = "intake",
    params(("provider" = String, Path), ("model" = String, Path)),
    request_body = Dismissal,
    responses(
        (status = 200, description = "The request", body = IntakeRequest),
        (status = 404, description = "Nobody asked about this model", body = Problem, content_type = PROBLEM),
        (status = 422, description = "No reason", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn dismiss_intake(
    state: web::Data<AppState>,
    principal: Principal,
    request_id: RequestId,
    path: web::Path<(String, String)>,
    body: ValidJson<Dismissal>,
) -> Result<HttpResponse, ApiError> {
    principal.require(MANAGERS)?;
    let subject = subject(&path)?;
    let reason = body.0.reason.unwrap_or_default().trim().to_owned();
    let actor = Actor::person(&principal, Some(request_id.to_string()));
    let request = service::dismiss(
        (&state.intake, &state.work),
        actor,
        subject,
        reason,
        state.clock.now(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(request))
}

/// The model a path names, as slugs (404 when no model could have them).
fn subject(path: &(String, String)) -> Result<(ProviderSlug, ModelSlug), ApiError> {
    let not_found = || ApiError::NotFound(format!("nobody asked about `{}/{}`", path.0, path.1));
    let provider = ProviderSlug::parse(&path.0).map_err(|_| not_found())?;
    let model = ModelSlug::parse(&path.1).map_err(|_| not_found())?;
    Ok((provider, model))
}
