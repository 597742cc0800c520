//! HTTP routes of the integrators' hot path (answered from the in-memory
//! snapshot), attestations and their keys, and the admin suspend switch.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::Deserialize;
use utoipa::ToSchema;
use validator::Validate;

use super::check::{ITEM_COUNT, MAX_ITEMS, Refusal};
use super::derive::{CheckContext, CheckResult, Clearance, Status};
use super::snapshot::ModelKey;
use super::switch::{Subject, SwitchError, Throw};
use crate::audit::Actor;
use crate::auth::Principal;
use crate::auth::roles::EVERYONE;
use crate::http::AppState;
use crate::http::auth::Admin;
use crate::http::auth::authenticate;
use crate::http::extract::{JsonBody, ValidJson, parse_json};
use crate::http::problem::{ApiError, Problem};
use crate::ids::{ModelSlug, ProviderSlug};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1/status")
            .service(web::resource("/check").route(web::post().to(check)))
            .default_service(web::to(by_model)),
    )
    .service(web::resource("/.well-known/jwks.json").route(web::get().to(jwks)))
    .service(web::resource("/v1/models/{provider}/{model}/suspend").route(web::post().to(suspend)))
    .service(web::resource("/v1/models/{provider}/{model}/resume").route(web::post().to(resume)))
    .service(web::resource("/v1/providers/{provider}/suspend").route(web::post().to(suspend)))
    .service(web::resource("/v1/providers/{provider}/resume").route(web::post().to(resume)));
}

const PROBLEM: &str = "application/problem+json";

/// The clearance of a model.
///
/// Roles: every role (`integrator` included). Answered from memory. Unknown
/// models answer `not_reviewed`, never 404. Strong `ETag`; `If-None-Match`
/// answers 304. `HEAD` answers the same headers without the body.
#[utoipa::path(get, path = "/v1/status/{provider}/{model}", tag = "status",
    params(("provider" = String, Path), ("model" = String, Path), ("If-None-Match" = Option<String>, Header)),
    responses(
        (status = 200, description = "The clearance", body = Clearance, headers(("ETag" = String))),
        (status = 304, description = "Unchanged since the ETag sent"),
    ), security(("bearer" = [])))]
pub async fn get_status(
    req: &HttpRequest,
    state: &AppState,
    provider: &str,
    model: &str,
) -> Result<HttpResponse, ApiError> {
    let principal = authenticate(req)?;
    principal.require(EVERYONE)?;
    let if_none_match = req.headers().get(header::IF_NONE_MATCH);
    Ok(status_response(
        state,
        (provider, model),
        &principal.sub,
        if_none_match,
    ))
}

/// The answer to an admitted caller's (`asker`'s) status lookup: the
/// clearance from the snapshot, or 304 when `If-None-Match` names its entity
/// tag. An ask about a model nobody reviewed is noted for the intake.
pub fn status_response(
    state: &AppState,
    (provider, model): (&str, &str),
    asker: &str,
    if_none_match: Option<&HeaderValue>,
) -> HttpResponse {
    let now = state.clock.now();
    let rendered = state.status.snapshot().lookup(provider, model, now);
    note_answer(
        state,
        (provider, model),
        asker,
        (rendered.status, rendered.model),
        now,
    );
    let matches = if_none_match
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|tag| tag.trim().as_bytes() == rendered.etag || tag.trim() == "*")
        });
    // The tag is the snapshot's own text (quoted hex digits): always a valid value.
    let etag = HeaderValue::from_maybe_shared(rendered.etag)
        .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
    if matches {
        return HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .finish();
    }
    // Headers set on the response itself: the builder's conversions cost a
    // tenth of a lookup.
    let mut response = HttpResponse::with_body(StatusCode::OK, rendered.body);
    let headers = response.headers_mut();
    headers.insert(header::ETAG, etag);
    headers.insert(header::CACHE_CONTROL, NO_CACHE);
    headers.insert(header::CONTENT_TYPE, JSON);
    response.map_into_boxed_body()
}

/// Notes a lookup's answer: in the usage of a catalogued model (allowed
/// when its clearance is an approval in force), and in the intake when
/// nobody reviewed the model.
fn note_answer(
    state: &AppState,
    (provider, model): (&str, &str),
    asker: &str,
    (status, key): (Status, Option<ModelKey>),
    now: chrono::DateTime<Utc>,
) {
    if let Some(key) = key {
        state
            .usage
            .answered(key, asker, None, status.is_approval(), now);
    }
    if status == Status::NotReviewed {
        state.intake.asked(provider, model, asker, None, now);
    }
}

const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");
const JSON: HeaderValue = HeaderValue::from_static("application/json");
pub const STATUS: &str = "/v1/status/{provider}/{model}";
const ATTESTATION: &str = "/v1/status/{provider}/{model}/attestation";

/// The route pattern, provider and model of a path that [`by_model`] serves.
pub fn model_route(path: &str) -> Option<(&'static str, &str, &str)> {
    let rest = path.strip_prefix("/v1/status/")?;
    let mut segments = rest.split('/');
    let (provider, model) = (segments.next()?, segments.next()?);
    if provider.is_empty() || model.is_empty() {
        return None;
    }
    match (segments.next(), segments.next()) {
        (None, _) => Some((STATUS, provider, model)),
        (Some("attestation"), None) => Some((ATTESTATION, provider, model)),
        _ => None,
    }
}

/// `GET` (and `HEAD`) `/v1/status/{provider}/{model}` and `…/attestation`,
/// the integrators' hot path, routed here by splitting the path: actix
/// matches a pattern with segments by a regular expression, which cost a
/// fifth of a whole lookup.
/// Segments arrive decoded, but for `%2F`, `%25` and `%2B`, which no slug holds.
async fn by_model(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let Some((endpoint, provider, model)) = model_route(req.match_info().as_str()) else {
        return Err(crate::http::no_route(&req));
    };
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return Ok(crate::http::refuse_method(&req, "GET, HEAD"));
    }
    if endpoint == STATUS {
        get_status(&req, &state, provider, model).await
    } else {
        attestation(&req, &state, provider, model).await
    }
}

/// `POST /v1/status/check`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// 1 to 1000 uses to decide.
    #[validate(custom(function = "item_count"))]
    #[schema(min_items = 1, max_items = 1000)]
    pub items: Vec<CheckContext>,
}

fn item_count(items: &[CheckContext]) -> Result<(), validator::ValidationError> {
    if (1..=MAX_ITEMS).contains(&items.len()) {
        return Ok(());
    }
    Err(validator::ValidationError::new("length").with_message(ITEM_COUNT.into()))
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct CheckResponse {
    pub results: Vec<CheckResult>,
}

/// Decide uses in context: allow only an approval in force whose conditions
/// admit the context, with stable reason codes otherwise.
///
/// Roles: every role (`integrator` included).
#[utoipa::path(post, path = "/v1/status/check", tag = "status", request_body = CheckRequest,
    responses(
        (status = 200, description = "One result per item, in order", body = CheckResponse),
        (status = 422, description = "No items, more than 1000, a malformed item, or a region or use case outside the vocabulary (the problem lists the known ones)", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn check(
    state: web::Data<AppState>,
    principal: Principal,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    principal.require(EVERYONE)?;
    let snapshot = state.status.snapshot();
    let vocabulary = &state.config.vocabulary;
    let now = state.clock.now();
    let asker = super::check::Asker {
        intake: &state.intake,
        usage: state.usage.tally(&principal.sub, now),
        sub: &principal.sub,
    };
    match super::check::answer(&body.0, &snapshot, vocabulary, now, Some(asker)) {
        Ok(answer) => Ok(HttpResponse::Ok()
            .content_type("application/json")
            .body(answer)),
        Err(Refusal::ItemCount) => Err(ApiError::validation("items", ITEM_COUNT)),
        Err(Refusal::Unknown(error)) => Err(ApiError::validation(error.field, error.message)),
        // Parsed again, slowly, to name the field at fault.
        Err(Refusal::Malformed) => Err(parse_json::<CheckRequest>(&body.0)
            .err()
            .unwrap_or_else(|| ApiError::MalformedJson("not a check request".into()))),
    }
}

/// A signed attestation (compact JWT, EdDSA) of the model's clearance, to
/// verify offline against `/.well-known/jwks.json`. Its `exp` is
/// `valid_until` for an approval, an hour for any other status.
///
/// Roles: every role (`integrator` included).
#[utoipa::path(get, path = "/v1/status/{provider}/{model}/attestation", tag = "status",
    params(("provider" = String, Path), ("model" = String, Path)),
    responses(
        (status = 200, description = "The attestation", content_type = "application/jwt", body = String),
    ), security(("bearer" = [])))]
pub async fn attestation(
    req: &HttpRequest,
    state: &AppState,
    provider: &str,
    model: &str,
) -> Result<HttpResponse, ApiError> {
    let principal = authenticate(req)?;
    principal.require(EVERYONE)?;
    let snapshot = state.status.snapshot();
    let now = state.clock.now();
    let clearance = snapshot.clearance(provider, model, now);
    let key = snapshot.for_check(provider, model, now).model;
    let answer = (clearance.status, key);
    note_answer(state, (provider, model), &principal.sub, answer, now);
    // `iat` and a short `exp` follow real time: verifiers check them against theirs.
    let token = state
        .keys
        .sign(&clearance, Utc::now())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type("application/jwt")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(token))
}

/// The public keys that verify attestations (old keys stay until their
/// attestations have expired).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "status",
    responses((status = 200, description = "JWKS", content_type = "application/json", body = Object)))]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(state.keys.jwks())
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspendInput {
    /// Why; required unless `dry_run`.
    #[validate(length(min = 1, max = 2000))]
    #[schema(example = "Provider incident under investigation")]
    pub reason: Option<String>,
    /// Only preview who the suspension would deny; nothing changes.
    #[serde(default)]
    pub dry_run: bool,
}

/// What a suspension would do, answered instead of doing it (`dry_run`).
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct SuspensionPreview {
    /// Always `true`: nothing was suspended.
    pub dry_run: bool,
    /// `provider/model`, or `provider` for a whole provider.
    pub subject: String,
    /// The integrators that asked about it since this hour (30 days
    /// before now, to the hour): once it is suspended, every answer to them
    /// denies it. Each with a directory address is emailed when it is.
    pub since: chrono::DateTime<Utc>,
    pub would_be_denied: Vec<crate::usage::Integrator>,
    /// The clearances now, unchanged.
    pub clearances: Vec<Clearance>,
}

/// What the suspend switch answers.
#[derive(Debug, serde::Serialize, ToSchema)]
#[serde(untagged)]
pub enum Suspended {
    /// The clearance now (of every model of a provider).
    Done(Vec<Clearance>),
    Preview(SuspensionPreview),
}

#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResumeInput {
    #[validate(length(max = 2000))]
    pub reason: Option<String>,
}

/// What the switch's path names: a model, or a whole provider.
fn subject(req: &HttpRequest) -> Result<Subject, ApiError> {
    let info = req.match_info();
    let not_found = |what: &str| ApiError::NotFound(format!("no {what} `{}`", req.path()));
    let provider = info
        .get("provider")
        .and_then(|p| ProviderSlug::parse(p).ok())
        .ok_or_else(|| not_found("provider at"))?;
    Ok(match info.get("model") {
        Some(model) => Subject::Model(
            provider,
            ModelSlug::parse(model).map_err(|_| not_found("model at"))?,
        ),
        None => Subject::Provider(provider),
    })
}

/// Throws the switch of the path's subject.
async fn throw_switch(
    req: &HttpRequest,
    state: &AppState,
    actor: Actor,
    throw: Throw,
) -> Result<Vec<Clearance>, ApiError> {
    let subject = subject(req)?;
    let clearances = super::switch::throw(
        &state.work,
        actor,
        subject,
        throw,
        state.config.mailboxes.clone(),
        state.reviews.public_url.clone(),
        state.clock.now(),
    )
    .await?;
    Ok(clearances)
}

impl From<SwitchError> for ApiError {
    fn from(error: SwitchError) -> Self {
        match error {
            SwitchError::Catalogue(e) => e.into(),
            SwitchError::AlreadySuspended(_) | SwitchError::NotSuspended(_) => {
                ApiError::Conflict(error.to_string())
            }
        }
    }
}

/// Suspend a model: it is denied everywhere at once. The same at
/// `/v1/providers/{provider}/suspend` suspends every model of a provider.
///
/// Roles: `admin`. Takes effect in this instance's snapshot at once and on
/// every other instance within a second (PostgreSQL); audited; notifies
/// the vendor managers, webhook subscribers, and by email the integrators
/// that asked about it in the last 30 days. With `"dry_run": true` it
/// changes nothing and answers those integrators instead.
#[utoipa::path(post, path = "/v1/models/{provider}/{model}/suspend", operation_id = "suspend_model", tag = "status", request_body = SuspendInput,
    params(("provider" = String, Path), ("model" = String, Path)),
    responses(
        (status = 200, description = "The clearance now (of every model of a provider); with `dry_run`, the preview", body = Suspended),
        (status = 404, description = "No such provider or model", body = Problem, content_type = PROBLEM),
        (status = 409, description = "Already suspended", body = Problem, content_type = PROBLEM),
        (status = 422, description = "No reason given", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn suspend(
    req: HttpRequest,
    state: web::Data<AppState>,
    Admin(actor): Admin,
    body: ValidJson<SuspendInput>,
) -> Result<HttpResponse, ApiError> {
    let SuspendInput { reason, dry_run } = body.0;
    if dry_run {
        let subject = subject(&req)?;
        crate::usage::write_now(&state).await;
        let preview = preview(&state, subject).await?;
        return Ok(HttpResponse::Ok().json(Suspended::Preview(preview)));
    }
    let reason = reason.ok_or_else(|| ApiError::validation("reason", "is required"))?;
    // Whom it denies is read from usage: this instance's tallies first.
    crate::usage::write_now(&state).await;
    let clearances = throw_switch(&req, &state, actor, Throw::Suspend { reason }).await?;
    Ok(HttpResponse::Ok().json(Suspended::Done(clearances)))
}

/// Who suspending `subject` would deny, and its clearances now.
async fn preview(state: &AppState, subject: Subject) -> Result<SuspensionPreview, ApiError> {
    let now = state.clock.now();
    let label = subject.label();
    let (since, integrators, models) = state
        .store
        .run(move |conn| super::switch::impact(conn, &subject, now))
        .await?;
    let snapshot = state.status.snapshot();
    let clearances = models
        .iter()
        .map(|(provider, model)| snapshot.clearance(provider, model, now))
        .collect();
    Ok(SuspensionPreview {
        dry_run: true,
        subject: label,
        since,
        would_be_denied: integrators,
        clearances,
    })
}

/// Lift a model's suspension. The same at `/v1/providers/{provider}/resume`
/// lifts a provider's.
///
/// Roles: `admin`.
#[utoipa::path(post, path = "/v1/models/{provider}/{model}/resume", operation_id = "resume_model", tag = "status", request_body = ResumeInput,
    params(("provider" = String, Path), ("model" = String, Path)),
    responses(
        (status = 200, description = "The clearance now (of every model of a provider)", body = Vec<Clearance>),
        (status = 404, description = "No such provider or model", body = Problem, content_type = PROBLEM),
        (status = 409, description = "Not suspended", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn resume(
    req: HttpRequest,
    state: web::Data<AppState>,
    Admin(actor): Admin,
    body: ValidJson<ResumeInput>,
) -> Result<HttpResponse, ApiError> {
    let reason = body.0.reason;
    let clearances = throw_switch(&req, &state, actor, Throw::Resume { reason }).await?;
    Ok(HttpResponse::Ok().json(clearances))
}
