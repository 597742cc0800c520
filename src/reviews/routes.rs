//! HTTP routes of reviews, their stages and findings.

use crate::http::telemetry::RequestId;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::service::{Call, Expected, TierChoice, invitation_lifetime};
use super::store::{self, ReviewFilter};
use super::{
    AnswersInput, AssignInput, DecisionInput, FindingPatch, FindingView, InvitationView,
    NewFinding, NewReview, ReviewDetail, ReviewError, ReviewSummary, StageView, TierInput,
    WithdrawInput,
};
use crate::audit::Actor;
use crate::auth::roles::{MANAGERS, STAFF};
use crate::auth::{Principal, Role};
use crate::http::AppState;
use crate::http::extract::{
    JsonBody, Page, PageParams, ValidJson, etag, if_match_version, parse_json,
};
use crate::http::problem::{ApiError, FieldError, Problem};
use crate::ids::{ReviewId, StageKey};
use crate::workflow::engine::{Action, Caller, Refusal, ReviewState};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/reviews")
            .route(web::get().to(list_reviews))
            .route(web::post().to(start_review)),
    )
    .service(web::resource("/v1/reviews/{id}").route(web::get().to(get_review)))
    .service(web::resource("/v1/reviews/{id}/stages/{stage}").route(web::get().to(get_stage)))
    .service(
        web::resource("/v1/reviews/{id}/stages/{stage}/answers").route(web::put().to(save_answers)),
    )
    .service(web::resource("/v1/reviews/{id}/stages/{stage}/submit").route(web::post().to(submit)))
    .service(web::resource("/v1/reviews/{id}/stages/{stage}/invite").route(web::post().to(invite)))
    .service(web::resource("/v1/reviews/{id}/invite").route(web::post().to(invite_all)))
    .service(web::resource("/v1/reviews/{id}/stages/{stage}/assign").route(web::post().to(assign)))
    .service(
        web::resource("/v1/reviews/{id}/stages/{stage}/decisions").route(web::post().to(decide)),
    )
    .service(
        web::resource("/v1/reviews/{id}/stages/{stage}/questions/{question}/comments")
            .route(web::post().to(comment)),
    )
    .service(web::resource("/v1/reviews/{id}/tier").route(web::post().to(raise_tier)))
    .service(web::resource("/v1/reviews/{id}/withdraw").route(web::post().to(withdraw)))
    .service(web::resource("/v1/reviews/{id}/re-review").route(web::post().to(re_review)))
    .service(web::resource("/v1/reviews/{id}/findings").route(web::post().to(add_finding)))
    .service(
        web::resource("/v1/reviews/{id}/findings/{finding}").route(web::patch().to(update_finding)),
    )
    .service(
        web::resource("/v1/reviews/{id}/invitations/{invitation}")
            .route(web::delete().to(revoke_invitation)),
    );
}

impl From<ReviewError> for ApiError {
    fn from(error: ReviewError) -> Self {
        match error {
            ReviewError::NotFound(_)
            | ReviewError::FindingNotFound(_)
            | ReviewError::QuestionNotFound(_)
            | ReviewError::InvitationNotFound(_) => ApiError::NotFound(error.to_string()),
            ReviewError::Stale { .. } => ApiError::PreconditionFailed(error.to_string()),
            ReviewError::Conflict(m) => ApiError::Conflict(m),
            ReviewError::Forbidden(m) => ApiError::Forbidden(m),
            ReviewError::Unauthorized(m) => ApiError::Unauthorized(m),
            ReviewError::Withdrawn => ApiError::Unauthorized(error.to_string()),
            ReviewError::Invalid(errors) => ApiError::Validation(errors),
            ReviewError::Refused(refusal) => match refusal {
                Refusal::UnknownStage(_) => ApiError::NotFound(refusal.to_string()),
                Refusal::NotAllowed { .. } => ApiError::Conflict(refusal.to_string()),
                Refusal::Forbidden(m) => ApiError::Forbidden(m),
                Refusal::SegregationOfDuties(m) => ApiError::SegregationOfDuties(m),
                Refusal::Invalid(errors) => ApiError::Validation(errors),
                Refusal::MissingAnswers(questions) => ApiError::Validation(
                    questions
                        .into_iter()
                        .map(|q| FieldError::new(q, "is required"))
                        .collect(),
                ),
            },
            ReviewError::Store(e) => e.into(),
            ReviewError::Internal(m) => ApiError::Internal(m),
        }
    }
}

/// Who acts on a review: a person with a reading role, or a respondent
/// whose invitation covers exactly this stage.
fn caller(
    principal: &Principal,
    review: &ReviewId,
    stage: Option<&StageKey>,
) -> Result<Caller, ApiError> {
    if let Some(scope) = &principal.respondent {
        let own = StageKey::parse(&scope.stage)
            .ok()
            .filter(|own| *review == scope.review.as_str() && Some(own) == stage);
        let Some(own) = own else {
            return Err(ApiError::Forbidden(
                "this invitation admits only its own questionnaire".into(),
            ));
        };
        return Ok(Caller::Respondent {
            id: scope.actor_id(),
            stage: own,
        });
    }
    principal.require(STAFF)?;
    Ok(Caller::Person {
        id: principal.sub.clone(),
        roles: principal.roles.clone(),
    })
}

fn actor(principal: &Principal, request_id: RequestId) -> Actor {
    Actor::person(principal, Some(request_id.to_string()))
}

fn with_etag<T: serde::Serialize>(status: StatusCode, version: i64, body: &T) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::ETAG, etag(version)))
        .json(body)
}

type ReviewPath = web::Path<ReviewId>;
type StagePath = web::Path<(ReviewId, StageKey)>;

const PROBLEM: &str = "application/problem+json";

/// Filters of `GET /v1/reviews`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReviewQuery {
    /// `in_progress`, `approved`, `approved_with_conditions`, `rejected`, `withdrawn`.
    pub state: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    /// Reviews with this stage open (awaiting answers or in review).
    pub stage: Option<String>,
    /// Reviews with an open stage assigned to this person.
    pub assignee: Option<String>,
    /// `true`: reviews with an open stage past its due time.
    pub overdue: Option<String>,
    /// Approvals that expire within this duration, e.g. `30d`.
    pub expiring_within: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

impl ReviewQuery {
    fn filter(&self, now: chrono::DateTime<chrono::Utc>) -> Result<ReviewFilter, ApiError> {
        let mut errors = Vec::new();
        let state = self.state.as_deref().and_then(|s| {
            let parsed = ReviewState::parse(s);
            if parsed.is_none() {
                errors.push(FieldError::new("state", "must be in_progress, approved, approved_with_conditions, rejected or withdrawn"));
            }
            parsed
        });
        let overdue = match self.overdue.as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                errors.push(FieldError::new("overdue", "must be true or false"));
                false
            }
        };
        let expiring_before = self.expiring_within.as_deref().and_then(|text| {
            let until = crate::duration::parse(text)
                .map_err(|e| e.to_string())
                .and_then(|delta| {
                    now.checked_add_signed(delta)
                        .ok_or_else(|| format!("`{text}` reaches past any date"))
                });
            match until {
                Ok(until) => Some(until),
                Err(message) => {
                    errors.push(FieldError::new("expiring_within", message));
                    None
                }
            }
        });
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(ReviewFilter {
            state,
            provider: self.provider.clone(),
            model: self.model.clone(),
            stage: self.stage.clone(),
            assignee: self.assignee.clone(),
            overdue,
            expiring_before,
            started_by: None,
        })
    }
}

/// List reviews, newest first.
///
/// Roles: `vendor_manager`, the reviewer roles, `approver`, `admin`.
#[utoipa::path(get, path = "/v1/reviews", tag = "reviews", params(ReviewQuery),
    responses(
        (status = 200, description = "A page of reviews", body = inline(Page<ReviewSummary>)),
        (status = 422, description = "A bad filter", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn list_reviews(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<ReviewQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(STAFF)?;
    let now = state.clock.now();
    let filter = query.filter(now)?;
    let page = PageParams {
        limit: query.limit.clone(),
        cursor: query.cursor.clone(),
    }
    .check()?;
    let catalog = state.reviews.catalog.clone();
    let limit = page.limit;
    let items = state
        .store
        .run(move |conn| {
            store::list(
                conn,
                &catalog,
                &filter,
                page.after.as_deref(),
                page.limit,
                now,
            )
            .map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(items, limit, |r| r.id.to_string())))
}

/// Start a review of a provider, or of one of its models.
///
/// Roles: `vendor_manager`, `admin`. Its first stages open at once.
#[utoipa::path(post, path = "/v1/reviews", tag = "reviews", request_body = NewReview,
    responses(
        (status = 201, description = "The review", body = ReviewSummary, headers(("ETag" = String), ("Location" = String))),
        (status = 409, description = "A review of this subject is already in progress", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Unknown provider, model or workflow", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn start_review(
    state: web::Data<AppState>,
    principal: Principal,
    request_id: RequestId,
    body: ValidJson<NewReview>,
) -> Result<HttpResponse, ApiError> {
    principal.require(MANAGERS)?;
    let actor = actor(&principal, request_id);
    let email = principal.email.clone();
    let summary = state
        .reviews
        .start(actor, email, body.0, state.clock.now())
        .await?;
    let mut response = with_etag(StatusCode::CREATED, summary.version, &summary);
    response.headers_mut().insert(
        header::LOCATION,
        header::HeaderValue::from_str(&format!("/v1/reviews/{}", summary.id))
            .map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    Ok(response)
}

/// A review with its answers, decisions, findings, invitations and timeline.
///
/// Roles: `vendor_manager`, the reviewer roles, `approver`, `admin`.
#[utoipa::path(get, path = "/v1/reviews/{id}", tag = "reviews", params(("id" = String, Path)),
    responses(
        (status = 200, description = "The review", body = ReviewDetail, headers(("ETag" = String))),
        (status = 404, description = "No such review", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn get_review(
    state: web::Data<AppState>,
    principal: Principal,
    path: ReviewPath,
) -> Result<HttpResponse, ApiError> {
    principal.require(STAFF)?;
    let id = path.into_inner();
    let now = state.clock.now();
    let reviews = state.reviews.clone();
    let detail = state
        .store
        .run(move |conn| reviews.detail(conn, &id, now).map_err(ApiError::from))
        .await?;
    Ok(with_etag(StatusCode::OK, detail.review.version, &detail))
}

/// One stage: its questionnaire (every question inline) and its answers.
///
/// Roles: `vendor_manager`, the reviewer roles, `approver`, `admin`; or a
/// supplier respondent's invitation token for this stage.
#[utoipa::path(get, path = "/v1/reviews/{id}/stages/{stage}", tag = "reviews", params(("id" = String, Path), ("stage" = String, Path)),
    responses(
        (status = 200, description = "The stage", body = StageView, headers(("ETag" = String))),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = PROBLEM),
        (status = 403, description = "The token lacks the role, or is an invitation to another stage", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such review or stage", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn get_stage(
    state: web::Data<AppState>,
    principal: Principal,
    path: StagePath,
) -> Result<HttpResponse, ApiError> {
    let (id, stage) = path.into_inner();
    let caller = caller(&principal, &id, Some(&stage))?;
    let supplier = matches!(caller, Caller::Respondent { .. });
    let now = state.clock.now();
    let reviews = state.reviews.clone();
    let view = state
        .store
        .run(move |conn| {
            reviews
                .stage_view(conn, &id, &stage, &caller, now)
                .map_err(ApiError::from)
        })
        .await?;
    if supplier {
        // The supplier sees their questionnaire, not who works on it inside.
        let mut shown =
            serde_json::to_value(&view).map_err(|e| ApiError::Internal(e.to_string()))?;
        if let Some(fields) = shown.as_object_mut() {
            for internal in INTERNAL_STAGE_FIELDS {
                fields.remove(*internal);
            }
            // Who left a comment is the reviewers' business too.
            if let Some(serde_json::Value::Array(comments)) = fields.get_mut("comments") {
                for comment in comments.iter_mut().filter_map(|c| c.as_object_mut()) {
                    comment.remove("by");
                }
            }
        }
        return Ok(with_etag(StatusCode::OK, view.version, &shown));
    }
    Ok(with_etag(StatusCode::OK, view.version, &view))
}

/// What a stage view says that a supplier's link does not show: who is
/// assigned, who decides and who has approved.
const INTERNAL_STAGE_FIELDS: &[&str] = &[
    "assignee",
    "approver_role",
    "approvals",
    "approvals_required",
];

/// Who changes a review, and when: what every handler of a change needs,
/// read from the request (the state, the verified caller, the request id
/// and the `If-Match` version).
pub struct Changer {
    state: web::Data<AppState>,
    principal: Principal,
    request_id: RequestId,
    /// Where `If-Match` is read, when the change is made (after the role
    /// check, so that a caller without the role hears 403 first).
    request: HttpRequest,
}

impl actix_web::FromRequest for Changer {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let changer = || {
            Ok(Changer {
                state: req
                    .app_data::<web::Data<AppState>>()
                    .cloned()
                    .ok_or_else(|| ApiError::Internal("no application state".into()))?,
                principal: crate::http::auth::authenticate(req)?,
                request_id: RequestId::from_request(req, &mut actix_web::dev::Payload::None)
                    .into_inner()?,
                request: req.clone(),
            })
        };
        std::future::ready(changer())
    }
}

impl Changer {
    /// Admits the caller when they hold any of `roles`.
    fn require(self, roles: &[Role]) -> Result<Self, ApiError> {
        self.principal.require(roles)?;
        Ok(self)
    }

    /// The change's [`Call`] on review `id`.
    fn call(&self, id: ReviewId) -> Result<Call, ApiError> {
        Ok(Call {
            review_id: id,
            expected: if_match_version(&self.request)?.map(Expected::Version),
            actor: actor(&self.principal, self.request_id.clone()),
            email: self.principal.email.clone(),
            now: self.state.clock.now(),
        })
    }

    /// Runs an engine action; answers and submissions reply with the stage,
    /// the rest with the review.
    async fn act(self, id: ReviewId, action: Action) -> Result<HttpResponse, ApiError> {
        let stage = action.stage().cloned();
        let caller = caller(&self.principal, &id, stage.as_ref())?;
        let call = self.call(id)?;
        let now = call.now;
        let with_stage = matches!(action, Action::SaveAnswers { .. } | Action::Submit { .. });
        let loaded = self.state.reviews.act(call, caller, action).await?;
        if with_stage && let Some(stage) = stage {
            let view = super::views::stage(&loaded, &stage, now)?;
            return Ok(with_etag(StatusCode::OK, view.version, &view));
        }
        let summary = loaded.summary(now);
        Ok(with_etag(StatusCode::OK, summary.version, &summary))
    }
}

/// Save draft answers (`null` clears one).
///
/// Roles: whoever answers the stage (`answered_by`: a role, or for `supplier`
/// the invitation token or a `vendor_manager`). Checks each answer's type.
#[utoipa::path(put, path = "/v1/reviews/{id}/stages/{stage}/answers", tag = "reviews", request_body = AnswersInput,
    params(("id" = String, Path), ("stage" = String, Path), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 200, description = "The stage with its answers", body = StageView, headers(("ETag" = String))),
        (status = 403, description = "Not the stage's answerer", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such review or stage", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The stage does not take answers now", body = Problem, content_type = PROBLEM),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Unknown questions or wrong types, one error per question id", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn save_answers(
    who: Changer,
    path: StagePath,
    body: ValidJson<AnswersInput>,
) -> Result<HttpResponse, ApiError> {
    let (id, stage) = path.into_inner();
    let answers = body.0.answers.unwrap_or_default();
    who.act(id, Action::SaveAnswers { stage, answers }).await
}

/// Submit the answers for review.
///
/// Roles: as for saving answers. Every required, shown question must be answered.
#[utoipa::path(post, path = "/v1/reviews/{id}/stages/{stage}/submit", tag = "reviews",
    params(("id" = String, Path), ("stage" = String, Path), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 200, description = "The stage, now in review", body = StageView, headers(("ETag" = String))),
        (status = 403, description = "Not the stage's answerer", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The stage is already answered (an invitation may go out before it opens)", body = Problem, content_type = PROBLEM),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Required questions unanswered, one error per question id", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn submit(who: Changer, path: StagePath) -> Result<HttpResponse, ApiError> {
    let (id, stage) = path.into_inner();
    who.act(id, Action::Submit { stage }).await
}

/// Decide a stage: approve (with optional conditions), reject, or request changes.
///
/// Roles: the stage's `approver_role`. Whoever started the review or answered
/// the stage may not decide it, and N approvals need N different people (403
/// `segregation-of-duties`). `comment` is required to reject or request changes.
#[utoipa::path(post, path = "/v1/reviews/{id}/stages/{stage}/decisions", tag = "reviews", request_body = DecisionInput,
    params(("id" = String, Path), ("stage" = String, Path), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 200, description = "The review", body = ReviewSummary, headers(("ETag" = String))),
        (status = 403, description = "Not the approver role, or segregation of duties", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The stage is not in review", body = Problem, content_type = PROBLEM),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid decision", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn decide(
    who: Changer,
    path: StagePath,
    body: ValidJson<DecisionInput>,
) -> Result<HttpResponse, ApiError> {
    let (id, stage) = path.into_inner();
    let input = body.0;
    let decision = input
        .decision
        .ok_or_else(|| ApiError::validation("decision", "is required"))?;
    let action = Action::Decide {
        stage,
        decision,
        comment: input.comment,
        conditions: input.conditions,
    };
    who.act(id, action).await
}

/// Assign a stage to a person.
///
/// Roles: `vendor_manager`, `admin`.
#[utoipa::path(post, path = "/v1/reviews/{id}/stages/{stage}/assign", tag = "reviews", request_body = AssignInput,
    params(("id" = String, Path), ("stage" = String, Path), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 200, description = "The review", body = ReviewSummary, headers(("ETag" = String))),
        (status = 409, description = "The stage is closed", body = Problem, content_type = PROBLEM),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn assign(
    who: Changer,
    path: StagePath,
    body: ValidJson<AssignInput>,
) -> Result<HttpResponse, ApiError> {
    let (id, stage) = path.into_inner();
    let AssignInput { assignee, duty } = body.0;
    let assignee = assignee.map(|a| a.trim().to_owned());
    who.act(
        id,
        Action::Assign {
            stage,
            duty,
            assignee,
        },
    )
    .await
}

/// Raise the review's risk tier (never lower it), with a reason.
///
/// Roles: reviewer roles, `approver`, `vendor_manager`, `admin`. Stages the new
/// tier needs are un-skipped.
#[utoipa::path(post, path = "/v1/reviews/{id}/tier", tag = "reviews", request_body = TierInput,
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 200, description = "The review", body = ReviewSummary, headers(("ETag" = String))),
        (status = 409, description = "The review is decided", body = Problem, content_type = PROBLEM),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Not higher than the current tier, or no reason", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn raise_tier(
    who: Changer,
    path: ReviewPath,
    body: ValidJson<TierInput>,
) -> Result<HttpResponse, ApiError> {
    let input = body.0;
    let action = Action::RaiseTier {
        tier: input
            .tier
            .ok_or_else(|| ApiError::validation("tier", "is required"))?,
        reason: input.reason.unwrap_or_default(),
    };
    who.act(path.into_inner(), action).await
}

/// Withdraw a review in progress.
///
/// Roles: `vendor_manager`, `admin`.
#[utoipa::path(post, path = "/v1/reviews/{id}/withdraw", tag = "reviews", request_body = WithdrawInput,
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 200, description = "The review", body = ReviewSummary, headers(("ETag" = String))),
        (status = 409, description = "The review is decided", body = Problem, content_type = PROBLEM),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn withdraw(
    who: Changer,
    path: ReviewPath,
    body: ValidJson<WithdrawInput>,
) -> Result<HttpResponse, ApiError> {
    let reason = body.0.reason.unwrap_or_default();
    who.act(path.into_inner(), Action::Withdraw { reason })
        .await
}

/// Invite a supplier contact to answer a stage's questionnaire by email.
///
/// Roles: `vendor_manager`, `admin`. The email carries a link with a token
/// that admits reading, saving and submitting this stage's answers, and
/// nothing else, until it expires or is revoked.
#[utoipa::path(post, path = "/v1/reviews/{id}/stages/{stage}/invite", tag = "reviews", request_body = super::InviteInput,
    params(("id" = String, Path), ("stage" = String, Path), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 201, description = "The invitation (its link goes only to the invitee)", body = InvitationView),
        (status = 409, description = "The stage is not awaiting answers", body = Problem, content_type = PROBLEM),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Bad email or lifetime, or the stage is not answered by the supplier", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn invite(
    who: Changer,
    path: StagePath,
    body: ValidJson<super::InviteInput>,
) -> Result<HttpResponse, ApiError> {
    let who = who.require(MANAGERS)?;
    let (id, stage) = path.into_inner();
    let lifetime = lifetime_of(body.0.expires_in.as_deref())?;
    let email = body.0.email.unwrap_or_default();
    let reviews = &who.state.reviews;
    let (view, _link) = reviews
        .invite(who.call(id)?, stage, email, lifetime)
        .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Invite a supplier contact to every supplier questionnaire of a review
/// (or to `stages`) with one email and one link that lists them.
///
/// Roles: `vendor_manager`, `admin`. Each questionnaire gets its own
/// invitation (revocable one by one); one still waiting for earlier stages
/// opens to the contact, who is emailed, as soon as they are approved.
#[utoipa::path(post, path = "/v1/reviews/{id}/invite", tag = "reviews", request_body = super::InviteAllInput,
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 201, description = "The invitations (the link goes only to the invitee)", body = super::InvitedAll),
        (status = 409, description = "No supplier questionnaire is waiting, or a stage is already answered", body = Problem, content_type = PROBLEM),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Bad email, lifetime or stage", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn invite_all(
    who: Changer,
    path: ReviewPath,
    body: ValidJson<super::InviteAllInput>,
) -> Result<HttpResponse, ApiError> {
    let who = who.require(MANAGERS)?;
    let input = body.0;
    let lifetime = lifetime_of(input.expires_in.as_deref())?;
    let email = input.email.unwrap_or_default();
    let reviews = &who.state.reviews;
    let invited = reviews
        .invite_all(who.call(path.into_inner())?, email, input.stages, lifetime)
        .await?;
    Ok(HttpResponse::Created().json(super::InvitedAll {
        invitations: invited.invitations,
    }))
}

/// An invitation's `expires_in`, checked.
fn lifetime_of(text: Option<&str>) -> Result<Option<chrono::TimeDelta>, ApiError> {
    text.map(crate::duration::parse)
        .transpose()
        .map_err(|e| e.to_string())
        .and_then(invitation_lifetime)
        .map_err(|m| ApiError::validation("expires_in", m))
}

/// Revoke an invitation: its link stops working at once.
///
/// Roles: `vendor_manager`, `admin`.
#[utoipa::path(delete, path = "/v1/reviews/{id}/invitations/{invitation}", tag = "reviews",
    params(("id" = String, Path), ("invitation" = String, Path)),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such (unrevoked) invitation", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn revoke_invitation(
    who: Changer,
    path: web::Path<(ReviewId, String)>,
) -> Result<HttpResponse, ApiError> {
    let who = who.require(MANAGERS)?;
    let (id, invitation) = path.into_inner();
    let reviews = &who.state.reviews;
    reviews.revoke_invitation(who.call(id)?, invitation).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Raise a finding on a review.
///
/// Roles: reviewer roles, `approver`, `vendor_manager`, `admin`.
#[utoipa::path(post, path = "/v1/reviews/{id}/findings", tag = "reviews", request_body = NewFinding,
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 201, description = "The finding", body = FindingView),
        (status = 404, description = "No such review", body = Problem, content_type = PROBLEM),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid finding", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn add_finding(
    who: Changer,
    path: ReviewPath,
    body: ValidJson<NewFinding>,
) -> Result<HttpResponse, ApiError> {
    let who = who.require(STAFF)?;
    let reviews = &who.state.reviews;
    let view = reviews
        .add_finding(who.call(path.into_inner())?, body.0)
        .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Update a finding: resolve or accept it (with a resolution), change owner,
/// due date or severity.
///
/// Roles: reviewer roles, `approver`, `vendor_manager`, `admin`.
#[utoipa::path(patch, path = "/v1/reviews/{id}/findings/{finding}", tag = "reviews", request_body = FindingPatch,
    params(("id" = String, Path), ("finding" = String, Path), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 200, description = "The finding", body = FindingView),
        (status = 404, description = "No such review or finding", body = Problem, content_type = PROBLEM),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid change", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn update_finding(
    who: Changer,
    path: web::Path<(ReviewId, String)>,
    body: ValidJson<FindingPatch>,
) -> Result<HttpResponse, ApiError> {
    let who = who.require(STAFF)?;
    let (id, finding) = path.into_inner();
    let reviews = &who.state.reviews;
    let view = reviews
        .update_finding(who.call(id)?, finding, body.0)
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Comment on one question of a stage: whoever answers sees the comment
/// beside the question.
///
/// Roles: the stage's deciding role, `admin`; while the stage is in review
/// or sent back for changes. A comment leaves the review's version as it is.
#[utoipa::path(post, path = "/v1/reviews/{id}/stages/{stage}/questions/{question}/comments", tag = "reviews",
    request_body = super::CommentInput,
    params(("id" = String, Path), ("stage" = String, Path), ("question" = String, Path)),
    responses(
        (status = 201, description = "The comment", body = super::QuestionCommentView),
        (status = 403, description = "The caller does not decide this stage", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such review, stage or question", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The stage is neither in review nor sent back", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Empty or too long a comment", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn comment(
    who: Changer,
    path: web::Path<(ReviewId, StageKey, String)>,
    body: ValidJson<super::CommentInput>,
) -> Result<HttpResponse, ApiError> {
    let who = who.require(STAFF)?;
    let (id, stage, question) = path.into_inner();
    let caller = caller(&who.principal, &id, Some(&stage))?;
    let call = who.call(id)?;
    let view = who
        .state
        .reviews
        .comment(call, caller, stage, question, body.0)
        .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Open a re-review of an approved review now (the re-review sweep does it
/// by itself before the approval expires).
///
/// Roles: `vendor_manager`, `admin`. Previous answers are carried forward,
/// marked as such; the approval stays in force until its `valid_until`.
/// The re-review starts at the previous review's tier, each stage assigned
/// as it was; an optional body `{"tier": …, "reason": …}` starts it at
/// another tier, with the reason.
#[utoipa::path(post, path = "/v1/reviews/{id}/re-review", tag = "reviews",
    params(("id" = String, Path, description = "The approved review")),
    request_body(content = Option<TierChoice>, description = "Optional: another tier than the previous review's, with a reason"),
    responses(
        (status = 201, description = "The re-review", body = ReviewSummary, headers(("ETag" = String), ("Location" = String))),
        (status = 404, description = "No such review", body = Problem, content_type = PROBLEM),
        (status = 409, description = "Not an approval, or a review of the subject is already open", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn re_review(
    state: web::Data<AppState>,
    principal: Principal,
    request_id: RequestId,
    path: ReviewPath,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    principal.require(MANAGERS)?;
    let tier: Option<TierChoice> = if body.0.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(parse_json(&body.0)?)
    };
    let actor = actor(&principal, request_id);
    let summary = state
        .reviews
        .re_review(path.into_inner(), actor, state.clock.now(), tier)
        .await?;
    let location = format!("/v1/reviews/{}", summary.id);
    Ok(HttpResponse::Created()
        .insert_header((header::ETAG, etag(summary.version)))
        .insert_header((header::LOCATION, location))
        .json(summary))
}
