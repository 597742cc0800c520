//! HTTP routes of the intake: list the requests, start a review from one,
//! dismiss one (vendor managers and admins).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::{After, IntakeRequest, IntakeState, OverBound};
use crate::audit::{Actor, Change};
use crate::auth::Principal;
use crate::auth::roles::MANAGERS;
use crate::http::AppState;
use crate::http::extract::{Page, PageParams, ValidJson};
use crate::http::problem::{ApiError, Problem};
use crate::http::telemetry::RequestId;
use crate::ids::{ModelId, ModelSlug, ProviderId, ProviderSlug};
use crate::providers::store as catalogue;
use crate::reviews::{NewReview, ReviewSummary};

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
    flush(&state).await?;
    let now = state.clock.now();
    let (items, over_bound) = state
        .store
        .run(move |conn| {
            let items = super::list(conn, wanted, None, (after.as_ref(), limit))?;
            let over_bound = super::over_bound(conn, now)?;
            Ok::<_, ApiError>((items, over_bound))
        })
        .await?;
    let Page { items, next_cursor } = Page::from_rows(items, limit, After::key);
    Ok(HttpResponse::Ok().json(IntakePage {
        items,
        next_cursor,
        over_bound,
    }))
}

/// This instance's pending asks, written now; if they cannot be, they are
/// kept for the next write and the answer goes on without them.
async fn flush(state: &AppState) -> Result<(), ApiError> {
    if let Err(error) = state.intake.flush(&state.store, state.clock.now()).await {
        tracing::warn!(%error, "cannot write the intake's asks; kept for the next try");
    }
    Ok(())
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
    let (provider, model) = subject(&path)?;
    known(&state, &provider, &model).await?;
    let actor = Actor::person(&principal, Some(request_id.to_string()));
    let email = principal.email.clone();
    let workflow = body.0.workflow;
    let reviews = state.reviews.clone();
    let now = state.clock.now();
    let summary = state
        .work
        .run(actor, now, move |tx| -> Result<ReviewSummary, ApiError> {
            register(tx, &provider, &model)?;
            let input = NewReview {
                provider: Some(provider.to_string()),
                model: Some(model.to_string()),
                workflow,
            };
            let summary = reviews.start_in(tx, email, input)?;
            let (by, now) = (tx.actor().id.clone(), tx.now());
            super::decide(
                tx.conn(),
                (&provider, &model),
                IntakeState::Started,
                None,
                Some(summary.id.as_ref()),
                (&by, now),
            )?;
            crate::audit::append(
                tx,
                Change {
                    action: "intake.started",
                    subject: format!("model/{provider}/{model}"),
                    review_id: Some(summary.id.as_ref()),
                    before: None,
                    after: Some(serde_json::json!({"review_id": summary.id})),
                },
            )?;
            Ok(summary)
        })
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
    let (provider, model) = subject(&path)?;
    let before = known(&state, &provider, &model).await?;
    let reason = body.0.reason.unwrap_or_default().trim().to_owned();
    let actor = Actor::person(&principal, Some(request_id.to_string()));
    let request = state
        .work
        .run(
            actor,
            state.clock.now(),
            move |tx| -> Result<IntakeRequest, ApiError> {
                let by = tx.actor().id.clone();
                let now = tx.now();
                super::decide(
                    tx.conn(),
                    (&provider, &model),
                    IntakeState::Dismissed,
                    Some(&reason),
                    None,
                    (&by, now),
                )?;
                crate::audit::append(
                    tx,
                    Change {
                        action: "intake.dismissed",
                        subject: format!("model/{provider}/{model}"),
                        review_id: None,
                        before: Some(serde_json::json!({"state": before.state})),
                        after: Some(serde_json::json!({"state": "dismissed", "reason": reason})),
                    },
                )?;
                super::find(tx.conn(), &provider, &model)?
                    .ok_or_else(|| ApiError::Internal("the request vanished".into()))
            },
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

/// The request for a model, once this instance's asks are written; 404 when
/// nobody asked.
async fn known(
    state: &AppState,
    provider: &ProviderSlug,
    model: &ModelSlug,
) -> Result<IntakeRequest, ApiError> {
    flush(state).await?;
    let (p, m) = (provider.clone(), model.clone());
    state
        .store
        .run(move |conn| super::find(conn, &p, &m).map_err(ApiError::from))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("nobody asked about `{provider}/{model}`")))
}

/// Registers the provider and model when they are new, with their slugs as
/// names (a vendor manager renames them later).
fn register(
    tx: &mut crate::unit::Tx<'_>,
    provider: &ProviderSlug,
    model: &ModelSlug,
) -> Result<(), ApiError> {
    let now = tx.now();
    let provider_row = match catalogue::find_provider(tx.conn(), provider)? {
        Some(row) => row,
        None => {
            let row = catalogue::ProviderRow::new(
                ProviderId::generate(),
                provider.clone(),
                provider.to_string(),
                now,
            );
            catalogue::insert_provider(tx.conn(), &row)?;
            let after = serde_json::to_value(row.to_provider()).ok();
            crate::audit::append(
                tx,
                Change {
                    action: "provider.created",
                    subject: format!("provider/{provider}"),
                    review_id: None,
                    before: None,
                    after,
                },
            )?;
            row
        }
    };
    if catalogue::find_model(tx.conn(), &provider_row.id, model)?.is_none() {
        tx.watch(&provider_row.id, Some(model))?;
        let row = catalogue::ModelRow::new(
            ModelId::generate(),
            provider_row.id.clone(),
            model.clone(),
            model.to_string(),
            now,
        );
        catalogue::insert_model(tx.conn(), &row)?;
        let after = serde_json::to_value(row.to_model(provider)).ok();
        crate::audit::append(
            tx,
            Change {
                action: "model.created",
                subject: format!("model/{provider}/{model}"),
                review_id: None,
                before: None,
                after,
            },
        )?;
    }
    Ok(())
}
