//! Reviews: the list, and a review's page — subject, workflow, tier and why,
//! the stages as a timeline with who acts next, answers by stage and section
//! (with controls and markers), decisions, findings, invitations and the
//! audit timeline — with every action as a form: start, answer, invite (and
//! revoke), assign, decide (with a conditions editor), raise the tier,
//! findings, withdraw, re-review, and the evidence pack.
//!
//! Each action calls the review service the API calls. A refusal re-renders
//! the page with the service's reason in plain words where it happened; a
//! form rendered from an older revision is refused (412) with a reload link.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::http::StatusCode;
use actix_web::http::header::{ContentDisposition, DispositionParam, DispositionType};
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use validator::Validate;

use super::page::{self, Form, Layout, Notice, PageError, Viewer};
use super::questionnaire::{self, SectionBlock};
use super::words;
use crate::audit::Actor;
use crate::auth::Role;
use crate::conditions::{Conditions, DataClass};
use crate::ids::{ReviewId, StageKey};
use crate::reviews::service::{Call, invitation_lifetime};
use crate::reviews::store::ReviewFilter;
use crate::reviews::{
    FindingPatch, FindingState, NewFinding, NewReview, READERS, ReviewDetail, ReviewError,
    ReviewSummary, STARTERS,
};
use crate::validation::FieldError;
use crate::workflow::engine::{Action, Caller, Decision, ReviewState, StageState};
use crate::workflow::{Answerer, Severity, Tier};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/reviews").get(list).post(start))
        .service(web::resource("/reviews/{id}").get(review_page))
        .service(web::resource("/reviews/{id}/evidence").get(evidence))
        .service(web::resource("/reviews/{id}/re-review").post(re_review))
        .service(web::resource("/reviews/{id}/tier").post(raise_tier))
        .service(web::resource("/reviews/{id}/withdraw").post(withdraw))
        .service(web::resource("/reviews/{id}/findings").post(add_finding))
        .service(web::resource("/reviews/{id}/findings/{finding}").post(update_finding))
        .service(web::resource("/reviews/{id}/invitations/{invitation}/revoke").post(revoke))
        .service(web::resource("/reviews/{id}/stages/{stage}/answers").post(answer))
        .service(web::resource("/reviews/{id}/stages/{stage}/invite").post(invite))
        .service(web::resource("/reviews/{id}/invite").post(invite_all))
        .service(web::resource("/reviews/{id}/stages/{stage}/assign").post(assign))
        .service(web::resource("/reviews/{id}/stages/{stage}/decide").post(decide));
}

fn review_id(text: &str) -> Result<ReviewId, PageError> {
    ReviewId::parse(text).map_err(|_| PageError::NotFound(format!("There is no review `{text}`.")))
}

fn stage_key(text: &str) -> Result<StageKey, PageError> {
    StageKey::parse(text).map_err(|_| PageError::NotFound(format!("There is no stage `{text}`.")))
}

fn reader(viewer: &Viewer) -> Result<(), PageError> {
    if viewer.has_any(READERS) {
        Ok(())
    } else {
        Err(PageError::Forbidden(
            "Reviews are for vendor managers, reviewers, approvers and admins.".into(),
        ))
    }
}

fn subject_of(review: &ReviewSummary) -> String {
    match &review.model {
        Some(m) => format!("{}/{m}", review.provider),
        None => format!("{} (every model)", review.provider),
    }
}

// --- The list -------------------------------------------------------------

struct ListLine {
    href: String,
    subject: String,
    state: String,
    badge: String,
    tier: String,
    open: String,
    started: String,
}

#[derive(Template)]
#[template(path = "console/reviews.html")]
struct ListPage {
    layout: Layout,
    lines: Vec<ListLine>,
    state: String,
    overdue: bool,
    mine: bool,
    next: Option<String>,
    states: Vec<(&'static str, String)>,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    state: Option<String>,
    overdue: Option<String>,
    mine: Option<String>,
    after: Option<String>,
}

/// `GET /reviews`.
async fn list(viewer: Viewer, query: web::Query<ListQuery>) -> Result<HttpResponse, PageError> {
    reader(&viewer)?;
    let state_filter = query
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(ReviewState::parse);
    let overdue = query.overdue.as_deref() == Some("true");
    let mine = query.mine.as_deref() == Some("true");
    let filter = ReviewFilter {
        state: state_filter,
        overdue,
        started_by: mine.then(|| viewer.sub().to_owned()),
        ..ReviewFilter::default()
    };
    let state = viewer.state.clone();
    let catalog = state.reviews.catalog.clone();
    let now = state.clock.now();
    let after = query.after.clone().filter(|a| ReviewId::parse(a).is_ok());
    let reviews = state
        .store
        .run(move |conn| {
            crate::reviews::store::list(conn, &catalog, &filter, after.as_deref(), 50, now)
        })
        .await
        .map_err(review_failure)?;
    let more = reviews.len() > 50;
    let lines: Vec<ListLine> = reviews
        .iter()
        .take(50)
        .map(|r| ListLine {
            href: format!("/reviews/{}", r.id),
            subject: subject_of(r),
            state: words::label(r.state.as_str()),
            badge: r.state.as_str().to_owned(),
            tier: r.tier.as_str().to_owned(),
            open: r
                .stages
                .iter()
                .filter(|s| s.state.is_open())
                .map(|s| {
                    if s.overdue {
                        format!("{} (overdue)", s.title)
                    } else {
                        s.title.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(", "),
            started: words::day(r.created_at),
        })
        .collect();
    let state_text = state_filter
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default();
    let next = more.then(|| {
        let mut url = url::form_urlencoded::Serializer::for_suffix(String::from("/reviews?"), 9);
        if !state_text.is_empty() {
            url.append_pair("state", &state_text);
        }
        if overdue {
            url.append_pair("overdue", "true");
        }
        if mine {
            url.append_pair("mine", "true");
        }
        if let Some(last) = reviews.get(49) {
            url.append_pair("after", last.id.as_str());
        }
        url.finish()
    });
    Ok(page::html(
        StatusCode::OK,
        &ListPage {
            layout: viewer.layout("Reviews", "/reviews"),
            lines,
            state: state_text,
            overdue,
            mine,
            next,
            states: ReviewState::ALL
                .iter()
                .map(|s| (s.as_str(), words::label(s.as_str())))
                .collect(),
        },
    ))
}

fn review_failure(error: ReviewError) -> PageError {
    match error {
        ReviewError::NotFound(id) => PageError::NotFound(format!("There is no review `{id}`.")),
        other => {
            tracing::error!(error = %other, "reading a review failed");
            PageError::Internal
        }
    }
}

// --- The page -------------------------------------------------------------

struct DecisionLine {
    decision: String,
    badge: &'static str,
    by: String,
    at: String,
    comment: Option<String>,
    conditions: Vec<String>,
}

struct ApprovalLine {
    by: String,
}

struct StageBlock {
    key: String,
    title: String,
    state: String,
    badge: String,
    answered_by: String,
    approver_role: String,
    assignee: Option<String>,
    due: Option<String>,
    approvals_required: u32,
    approvals: Vec<ApprovalLine>,
    next: String,
    sections: Vec<SectionBlock>,
    /// The questionnaire as a form, when the viewer may answer it now.
    answer_form: bool,
    can_invite: bool,
    can_assign: bool,
    can_decide: bool,
    decisions: Vec<DecisionLine>,
    /// This stage's form was the one refused.
    failed: bool,
}

struct FindingLine {
    id: String,
    severity: String,
    state: String,
    text: String,
    stage: String,
    owner: String,
    due: String,
    resolution: Option<String>,
    open: bool,
}

struct InvitationLine {
    id: String,
    stage: String,
    email: String,
    expires: String,
    state: &'static str,
    live: bool,
}

struct EventLine {
    at: String,
    actor: String,
    action: String,
}

struct Choice {
    value: String,
    label: String,
}

#[derive(Template)]
#[template(path = "console/review.html")]
struct ReviewPage {
    layout: Layout,
    csrf: String,
    id: String,
    revision: i64,
    subject: String,
    subject_href: String,
    kind: String,
    state: String,
    state_badge: String,
    in_progress: bool,
    tier: String,
    tier_reason: Option<String>,
    workflow: String,
    started_by: String,
    started: String,
    decided: Option<String>,
    valid_until: Option<String>,
    conditions: Vec<String>,
    /// What the approver should know: the conditions exclude the declared use.
    warnings: Vec<String>,
    /// Open high or critical findings without an owner and a due date,
    /// which stop the review's approval.
    blocking: Vec<String>,
    stages: Vec<StageBlock>,
    findings: Vec<FindingLine>,
    invitations: Vec<InvitationLine>,
    events: Vec<EventLine>,
    can_start: bool,
    can_raise_tier: bool,
    can_findings: bool,
    can_re_review: bool,
    /// A contact may be invited to every supplier questionnaire at once.
    can_invite_all: bool,
    higher_tiers: Vec<Choice>,
    severities: Vec<Choice>,
    stage_choices: Vec<Choice>,
    data_classes: Vec<Choice>,
    /// The form that was refused, to keep it in view: a stage key, `tier`,
    /// `finding`, `withdraw`.
    failed_form: String,
    errors: Vec<FieldError>,
}

impl ReviewPage {
    fn error(&self, field: &str) -> Option<String> {
        words::field_error(&self.errors, field)
    }
}

/// Who acts next on a stage, in words.
fn next_actor(
    state: StageState,
    answered_by: &str,
    approver: &str,
    assignee: Option<&str>,
) -> String {
    let role = |r: &str| words::label(r);
    match state {
        StageState::Blocked => "waits for earlier stages".into(),
        StageState::AwaitingAnswers if answered_by == "supplier" => {
            "waits for the supplier's answers".into()
        }
        StageState::AwaitingAnswers => match assignee {
            Some(who) => format!("waits for {who} to answer"),
            None => format!("waits for a {} to answer", role(answered_by)),
        },
        StageState::InReview => match assignee {
            Some(who) => format!("waits for {who} to decide"),
            None => format!("waits for a {} to decide", role(approver)),
        },
        StageState::Approved => "approved".into(),
        StageState::Rejected => "rejected".into(),
        StageState::Skipped => "not needed at this tier".into(),
    }
}

/// What a failed form wants the page to show.
#[derive(Default)]
struct Failure {
    notice: Option<Notice>,
    errors: Vec<FieldError>,
    form: String,
    /// What the failed questionnaire form posted, to show it again.
    posted: Option<BTreeMap<String, serde_json::Value>>,
    status: Option<StatusCode>,
}

async fn load(viewer: &Viewer, id: &ReviewId) -> Result<ReviewDetail, PageError> {
    let state = viewer.state.clone();
    let reviews = state.reviews.clone();
    let now = state.clock.now();
    let id = id.clone();
    state
        .store
        .run(move |conn| reviews.detail(conn, &id, now))
        .await
        .map_err(review_failure)
}

/// Renders the review's page, with a failed form's notice and problems.
async fn render(
    viewer: &Viewer,
    id: &ReviewId,
    failure: Failure,
    done: Option<&str>,
) -> Result<HttpResponse, PageError> {
    let detail = load(viewer, id).await?;
    let state = &viewer.state;
    let now = state.clock.now();
    let review = &detail.review;
    let workflow =
        crate::reviews::store::pinned_workflow_of(&state.reviews.catalog, &review.workflow.digest)
            .ok_or(PageError::Internal)?;
    let principal = &viewer.session.principal;
    let in_progress = review.state == ReviewState::InProgress;
    let starter = viewer.has_any(STARTERS);
    let stages: Vec<StageBlock> = review
        .stages
        .iter()
        .filter_map(|summary| {
            let definition = workflow.workflow.stage(&summary.key)?;
            let answers: BTreeMap<String, serde_json::Value> = detail
                .answers
                .get(summary.key.as_str())
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.clone(), v.value.clone()))
                        .collect()
                })
                .unwrap_or_default();
            let failed = failure.form == summary.key.as_str();
            let shown = questionnaire::merged(&answers, failure.posted.as_ref().filter(|_| failed));
            let may_answer = in_progress
                && summary.state == StageState::AwaitingAnswers
                && match definition.answered_by {
                    Answerer::Role(role) => principal.has(role),
                    Answerer::Supplier => principal.has(Role::VendorManager),
                };
            Some(StageBlock {
                key: summary.key.to_string(),
                title: summary.title.clone(),
                state: words::label(summary.state.as_str()),
                badge: if summary.overdue {
                    "overdue".into()
                } else {
                    summary.state.as_str().to_owned()
                },
                answered_by: words::label(&summary.answered_by),
                approver_role: words::label(&summary.approver_role),
                assignee: summary.assignee.clone(),
                due: summary
                    .due_at
                    .filter(|_| summary.state.is_open())
                    .map(|d| format!("{} ({})", words::day(d), words::due(d, now))),
                approvals_required: summary.approvals_required,
                approvals: summary
                    .approvals
                    .iter()
                    .map(|a| ApprovalLine { by: a.by.clone() })
                    .collect(),
                next: next_actor(
                    summary.state,
                    &summary.answered_by,
                    &summary.approver_role,
                    summary.assignee.as_deref(),
                ),
                sections: questionnaire::blocks(
                    &definition.questionnaire,
                    &shown,
                    detail.answers.get(summary.key.as_str()),
                    if failed { &failure.errors[..] } else { &[] },
                ),
                answer_form: may_answer,
                can_invite: in_progress
                    && starter
                    && matches!(
                        summary.state,
                        StageState::Blocked | StageState::AwaitingAnswers
                    )
                    && definition.answered_by == Answerer::Supplier,
                can_assign: in_progress
                    && starter
                    && summary.state != StageState::Approved
                    && summary.state != StageState::Rejected
                    && summary.state != StageState::Skipped,
                can_decide: in_progress
                    && summary.state == StageState::InReview
                    && principal.has(definition.approver_role),
                decisions: detail
                    .decisions
                    .iter()
                    .filter(|d| d.stage == summary.key)
                    .map(|d| DecisionLine {
                        decision: words::label(d.decision.as_str()),
                        badge: match d.decision {
                            Decision::Approve => "approved",
                            Decision::Reject => "rejected",
                            Decision::RequestChanges => "in_review",
                        },
                        by: d.by.clone(),
                        at: words::when(d.at),
                        comment: d.comment.clone(),
                        conditions: d
                            .conditions
                            .as_ref()
                            .map(words::conditions)
                            .unwrap_or_default(),
                    })
                    .collect(),
                failed,
            })
        })
        .collect();
    let blocking = detail
        .findings
        .iter()
        .filter(|f| {
            crate::reviews::stops_approval(
                f.state,
                f.severity,
                f.owner.as_deref(),
                f.remediation_due.is_some(),
            )
        })
        .map(|f| format!("{} ({}): {}", f.text, f.severity, f.id))
        .collect();
    let findings = detail
        .findings
        .iter()
        .map(|f| FindingLine {
            id: f.id.to_string(),
            severity: f.severity.as_str().to_owned(),
            state: words::label(f.state.as_str()),
            text: f.text.clone(),
            stage: f
                .stage
                .as_ref()
                .map(|s| words::label(s))
                .unwrap_or_default(),
            owner: f.owner.clone().unwrap_or_else(|| "nobody yet".into()),
            due: f.remediation_due.map(words::day).unwrap_or_default(),
            resolution: f.resolution.clone(),
            open: f.state == FindingState::Open,
        })
        .collect();
    let invitations = detail
        .invitations
        .iter()
        .map(|i| {
            let (state, live) = if i.revoked_at.is_some() {
                ("revoked", false)
            } else if i.expires_at <= now {
                ("expired", false)
            } else {
                ("open", true)
            };
            InvitationLine {
                id: i.id.to_string(),
                stage: words::label(&i.stage),
                email: i.email.clone(),
                expires: words::day(i.expires_at),
                state,
                live: live && in_progress && starter,
            }
        })
        .collect();
    let events = detail
        .timeline
        .iter()
        .rev()
        .map(|e| EventLine {
            at: words::when(e.at),
            actor: e.actor.clone(),
            action: words::label(&e.action.replace('.', " ")),
        })
        .collect();
    let mut layout = viewer.layout(format!("Review of {}", subject_of(review)), "/reviews");
    if let Some(notice) = done_notice(done) {
        layout = layout.notice(notice);
    }
    if let Some(notice) = failure.notice {
        layout = layout.notice(notice);
    }
    let invitable = stages.iter().filter(|s| s.can_invite).count();
    let page = ReviewPage {
        layout,
        csrf: viewer.session.csrf.clone(),
        id: review.id.to_string(),
        revision: review.version,
        subject: subject_of(review),
        subject_href: match &review.model {
            Some(m) => format!("/providers/{}/models/{m}", review.provider),
            None => format!("/providers/{}", review.provider),
        },
        kind: words::label(review.kind.as_str()),
        state: words::label(review.state.as_str()),
        state_badge: review.state.as_str().to_owned(),
        in_progress,
        tier: review.tier.as_str().to_owned(),
        tier_reason: review.tier_reason.clone(),
        workflow: format!(
            "{} (version {}, {})",
            review.workflow.title,
            review.workflow.version,
            &review.workflow.digest[..12.min(review.workflow.digest.len())]
        ),
        started_by: review.started_by.clone(),
        started: words::when(review.created_at),
        decided: review.decided_at.map(words::when),
        valid_until: review.valid_until.map(words::day),
        conditions: review
            .conditions
            .as_ref()
            .map(words::conditions)
            .unwrap_or_default(),
        warnings: review.warnings.clone(),
        blocking,
        stages,
        findings,
        invitations,
        events,
        can_start: starter,
        can_raise_tier: in_progress && viewer.has_any(READERS),
        can_findings: viewer.has_any(READERS),
        can_invite_all: in_progress && starter && invitable > 1,
        can_re_review: starter
            && matches!(
                review.state,
                ReviewState::Approved | ReviewState::ApprovedWithConditions
            ),
        higher_tiers: Tier::ALL
            .iter()
            .filter(|t| **t > review.tier)
            .map(|t| Choice {
                value: t.as_str().to_owned(),
                label: t.as_str().to_owned(),
            })
            .collect(),
        severities: Severity::ALL
            .iter()
            .map(|s| Choice {
                value: s.as_str().to_owned(),
                label: s.as_str().to_owned(),
            })
            .collect(),
        stage_choices: workflow
            .workflow
            .stages
            .iter()
            .map(|s| Choice {
                value: s.key.to_string(),
                label: s.title.clone(),
            })
            .collect(),
        data_classes: DataClass::ALL
            .iter()
            .map(|c| Choice {
                value: c.as_str().to_owned(),
                label: words::label(c.as_str()),
            })
            .collect(),
        failed_form: failure.form,
        errors: failure.errors,
    };
    Ok(page::html(failure.status.unwrap_or(StatusCode::OK), &page))
}

fn done_notice(done: Option<&str>) -> Option<Notice> {
    let text = match done? {
        "started" => "The review has started; its first stages are open.",
        "saved" => "Your answers are saved as a draft.",
        "submitted" => "Submitted: the stage is now in review.",
        "invited" => "The invitation is on its way to the supplier.",
        "revoked" => "The invitation link no longer works.",
        "assigned" => "The stage is assigned.",
        "decided" => "Your decision is recorded.",
        "tier" => "The tier is raised.",
        "finding" => "The finding is recorded.",
        "withdrawn" => "The review is withdrawn.",
        _ => return None,
    };
    Some(Notice::ok(text))
}

#[derive(Debug, Deserialize)]
pub struct Done {
    done: Option<String>,
}

/// `GET /reviews/{id}`.
async fn review_page(
    viewer: Viewer,
    path: web::Path<String>,
    query: web::Query<Done>,
) -> Result<HttpResponse, PageError> {
    reader(&viewer)?;
    let id = review_id(&path)?;
    render(&viewer, &id, Failure::default(), query.done.as_deref()).await
}

// --- Actions --------------------------------------------------------------

fn call(viewer: &Viewer, id: &ReviewId, form: &Form) -> Call {
    let principal = &viewer.session.principal;
    Call {
        review_id: id.clone(),
        expected: form.revision(),
        actor: Actor::person(principal, None),
        email: principal.email.clone(),
        now: viewer.state.clock.now(),
    }
}

fn caller(viewer: &Viewer) -> Caller {
    let principal = &viewer.session.principal;
    Caller::Person {
        id: principal.sub.clone(),
        roles: principal.roles.clone(),
    }
}

/// After an action: on to the page (at `anchor`) with its notice, or the
/// page again with the refusal where it happened.
async fn outcome<T>(
    viewer: &Viewer,
    id: &ReviewId,
    result: Result<T, ReviewError>,
    done: &str,
    form: &str,
    posted: Option<BTreeMap<String, serde_json::Value>>,
) -> Result<HttpResponse, PageError> {
    match result {
        Ok(_) => Ok(page::redirect(&format!("/reviews/{id}?done={done}#{form}"))),
        Err(ReviewError::NotFound(id)) => {
            Err(PageError::NotFound(format!("There is no review `{id}`.")))
        }
        Err(error) => {
            let status = match &error {
                ReviewError::Stale { .. } => StatusCode::PRECONDITION_FAILED,
                ReviewError::Refused(crate::workflow::engine::Refusal::SegregationOfDuties(_))
                | ReviewError::Refused(crate::workflow::engine::Refusal::Forbidden(_))
                | ReviewError::Forbidden(_) => StatusCode::FORBIDDEN,
                ReviewError::Refused(crate::workflow::engine::Refusal::NotAllowed { .. })
                | ReviewError::Conflict(_) => StatusCode::CONFLICT,
                ReviewError::Store(_) | ReviewError::Internal(_) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let (notice, errors) = words::review_refusal(&error, &format!("/reviews/{id}"));
            let failure = Failure {
                notice: Some(notice),
                errors,
                form: form.to_owned(),
                posted,
                status: Some(status),
            };
            render(viewer, id, failure, None).await
        }
    }
}

/// `POST /reviews`: start a review of a provider or model.
async fn start(viewer: Viewer, form: Form) -> Result<HttpResponse, PageError> {
    viewer.check_csrf(form.get("csrf"))?;
    if !viewer.has_any(STARTERS) {
        return Err(PageError::Forbidden(
            "Only a vendor manager or an admin starts a review.".into(),
        ));
    }
    let input = NewReview {
        provider: form.text("provider"),
        model: form.text("model"),
        workflow: form.text("workflow"),
    };
    let back = match (&input.provider, &input.model) {
        (Some(p), Some(m)) => format!("/providers/{p}/models/{m}"),
        (Some(p), None) => format!("/providers/{p}"),
        _ => "/providers".to_owned(),
    };
    let state = &viewer.state;
    let principal = &viewer.session.principal;
    let result = state
        .reviews
        .start(
            Actor::person(principal, None),
            principal.email.clone(),
            input,
            state.clock.now(),
        )
        .await;
    match result {
        Ok(summary) => Ok(page::redirect(&format!(
            "/reviews/{}?done=started",
            summary.id
        ))),
        Err(error) => {
            let (notice, _) = words::review_refusal(&error, &back);
            Err(PageError::Refused(notice.text, back))
        }
    }
}

/// `POST /reviews/{id}/stages/{stage}/answers`: save (`action=save`) or
/// submit (`action=submit`) an internal questionnaire, or a supplier's on
/// their behalf.
async fn answer(
    viewer: Viewer,
    path: web::Path<(String, String)>,
    form: Form,
) -> Result<HttpResponse, PageError> {
    viewer.check_csrf(form.get("csrf"))?;
    let (id, stage) = (review_id(&path.0)?, stage_key(&path.1)?);
    let detail = load(&viewer, &id).await?;
    let workflow = crate::reviews::store::pinned_workflow_of(
        &viewer.state.reviews.catalog,
        &detail.review.workflow.digest,
    )
    .ok_or(PageError::Internal)?;
    let definition = workflow
        .workflow
        .stage(&stage)
        .ok_or_else(|| PageError::NotFound(format!("There is no stage `{stage}`.")))?;
    let answers = questionnaire::posted_answers(&definition.questionnaire, &form);
    let reviews = &viewer.state.reviews;
    let saved = reviews
        .act(
            call(&viewer, &id, &form),
            caller(&viewer),
            Action::SaveAnswers {
                stage: stage.clone(),
                answers: answers.clone(),
            },
        )
        .await;
    let submit = form.get("action") == Some("submit");
    let result = match saved {
        Ok(loaded) if submit => {
            let mut next = call(&viewer, &id, &form);
            next.expected = Some(loaded.row.version);
            reviews
                .act(
                    next,
                    caller(&viewer),
                    Action::Submit {
                        stage: stage.clone(),
                    },
                )
                .await
        }
        other => other,
    };
    let done = if submit { "submitted" } else { "saved" };
    outcome(&viewer, &id, result, done, &stage, Some(answers)).await
}

/// `POST /reviews/{id}/stages/{stage}/invite`.
async fn invite(
    viewer: Viewer,
    path: web::Path<(String, String)>,
    form: Form,
) -> Result<HttpResponse, PageError> {
    viewer.check_csrf(form.get("csrf"))?;
    let (id, stage) = (review_id(&path.0)?, stage_key(&path.1)?);
    if !viewer.has_any(STARTERS) {
        return Err(PageError::Forbidden(
            "Only a vendor manager or an admin invites a supplier.".into(),
        ));
    }
    let (email, lifetime) = match invitation_form(&form) {
        Ok(parsed) => parsed,
        Err(errors) => {
            let result: Result<(), ReviewError> = Err(ReviewError::Invalid(errors));
            return outcome(&viewer, &id, result, "invited", &stage, None).await;
        }
    };
    let result = viewer
        .state
        .reviews
        .invite(call(&viewer, &id, &form), stage.clone(), email, lifetime)
        .await;
    outcome(&viewer, &id, result, "invited", &stage, None).await
}

/// The contact's address and the link's lifetime an invitation form gives.
fn invitation_form(form: &Form) -> Result<(String, Option<chrono::TimeDelta>), Vec<FieldError>> {
    let email = form.text("email").unwrap_or_default();
    let mut errors = Vec::new();
    let input = crate::reviews::InviteInput {
        email: Some(email.clone()),
        expires_in: form.text("expires_in"),
    };
    if let Err(invalid) = input.validate() {
        errors.extend(FieldError::from_validator(&invalid));
    }
    let lifetime = match form.text("expires_in") {
        None => None,
        Some(text) => match crate::duration::parse(&text)
            .map_err(|e| e.to_string())
            .and_then(|d| invitation_lifetime(Some(d)))
        {
            Ok(lifetime) => lifetime,
            Err(message) => {
                errors.push(FieldError::new("expires_in", message));
                None
            }
        },
    };
    if errors.is_empty() {
        Ok((email, lifetime))
    } else {
        Err(errors)
    }
}

/// `POST /reviews/{id}/invite`: one contact, every supplier questionnaire
/// still to answer, one link.
async fn invite_all(
    viewer: Viewer,
    path: web::Path<String>,
    form: Form,
) -> Result<HttpResponse, PageError> {
    viewer.check_csrf(form.get("csrf"))?;
    let id = review_id(&path)?;
    if !viewer.has_any(STARTERS) {
        return Err(PageError::Forbidden(
            "Only a vendor manager or an admin invites a supplier.".into(),
        ));
    }
    let result = match invitation_form(&form) {
        Ok((email, lifetime)) => viewer
            .state
            .reviews
            .invite_all(call(&viewer, &id, &form), email, None, lifetime)
            .await
            .map(drop),
        Err(errors) => Err(ReviewError::Invalid(errors)),
    };
    outcome(&viewer, &id, result, "invited", "invite-all", None).await
}

/// `POST /reviews/{id}/invitations/{invitation}/revoke`.
async fn revoke(
    viewer: Viewer,
    path: web::Path<(String, String)>,
    form: Form,
) -> Result<HttpResponse, PageError> {
    viewer.check_csrf(form.get("csrf"))?;
    let id = review_id(&path.0)?;
    if !viewer.has_any(STARTERS) {
        return Err(PageError::Forbidden(
            "Only a vendor manager or an admin revokes an invitation.".into(),
        ));
    }
    let result = viewer
        .state
        .reviews
        .revoke_invitation(call(&viewer, &id, &form), path.1.clone())
        .await;
    outcome(&viewer, &id, result, "revoked", "invitations", None).await
}

/// `POST /reviews/{id}/stages/{stage}/assign`.
async fn assign(
    viewer: Viewer,
    path: web::Path<(String, String)>,
    form: Form,
) -> Result<HttpResponse, PageError> {
    viewer.check_csrf(form.get("csrf"))?;
    let (id, stage) = (review_id(&path.0)?, stage_key(&path.1)?);
    let action = Action::Assign {
        stage: stage.clone(),
        assignee: form.text("assignee"),
    };
    let result = viewer
        .state
        .reviews
        .act(call(&viewer, &id, &form), caller(&viewer), action)
        .await;
    outcome(&viewer, &id, result, "assigned", &stage, None).await
}

/// The conditions a decision form's editor gives: each list left empty is
/// no limit of that kind.
fn posted_conditions(form: &Form) -> Result<Option<Conditions>, Vec<FieldError>> {
    let list = |key: &str| -> Option<BTreeSet<String>> {
        let items: BTreeSet<String> = form
            .get(key)
            .unwrap_or_default()
            .split([',', '\n'])
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        (!items.is_empty()).then_some(items)
    };
    let mut errors = Vec::new();
    let classes: BTreeSet<DataClass> = form
        .all("data_classes")
        .into_iter()
        .filter_map(|c| {
            let parsed = DataClass::parse(c);
            if parsed.is_none() {
                errors.push(FieldError::new(
                    "conditions.data_classes",
                    format!("`{c}` is not a data class"),
                ));
            }
            parsed
        })
        .collect();
    let conditions = Conditions {
        use_cases: list("use_cases"),
        data_classes: (!classes.is_empty()).then_some(classes),
        regions: list("regions"),
        features_off: list("features_off"),
    };
    if let Err(invalid) = conditions.validate() {
        errors.extend(
            FieldError::from_validator(&invalid)
                .into_iter()
                .map(|e| FieldError::new(format!("conditions.{}", e.field), e.message)),
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok((!conditions.is_empty()).then_some(conditions))
}

/// `POST /reviews/{id}/stages/{stage}/decide`.
async fn decide(
    viewer: Viewer,
    path: web::Path<(String, String)>,
    form: Form,
) -> Result<HttpResponse, PageError> {
    viewer.check_csrf(form.get("csrf"))?;
    let (id, stage) = (review_id(&path.0)?, stage_key(&path.1)?);
    let decision = match form.get("decision").and_then(Decision::parse) {
        Some(decision) => decision,
        None => {
            let result: Result<(), ReviewError> = Err(ReviewError::Invalid(vec![FieldError::new(
                "decision",
                "is required: approve, reject or request changes",
            )]));
            return outcome(&viewer, &id, result, "decided", &stage, None).await;
        }
    };
    let conditions = match posted_conditions(&form) {
        Ok(conditions) => conditions.filter(|_| decision == Decision::Approve),
        Err(errors) => {
            let result: Result<(), ReviewError> = Err(ReviewError::Invalid(errors));
            return outcome(&viewer, &id, result, "decided", &stage, None).await;
        }
    };
    let action = Action::Decide {
        stage: stage.clone(),
        decision,
        comment: form.text("comment"),
        conditions,
    };
    let result = viewer
        .state
        .reviews
        .act(call(&viewer, &id, &form), caller(&viewer), action)
        .await;
    outcome(&viewer, &id, result, "decided", &stage, None).await
}

/// `POST /reviews/{id}/tier`.
async fn raise_tier(
    viewer: Viewer,
    path: web::Path<String>,
    form: Form,
) -> Result<HttpResponse, PageError> {
    viewer.check_csrf(form.get("csrf"))?;
    let id = review_id(&path)?;
    let Some(tier) = form.get("tier").and_then(Tier::parse) else {
        let result: Result<(), ReviewError> = Err(ReviewError::Invalid(vec![FieldError::new(
            "tier",
            "is required",
        )]));
        return outcome(&viewer, &id, result, "tier", "tier", None).await;
    };
    let action = Action::RaiseTier {
        tier,
        reason: form.text("reason").unwrap_or_default(),
    };
    let result = viewer
        .state
        .reviews
        .act(call(&viewer, &id, &form), caller(&viewer), action)
        .await;
    outcome(&viewer, &id, result, "tier", "tier", None).await
}

/// `POST /reviews/{id}/withdraw`.
async fn withdraw(
    viewer: Viewer,
    path: web::Path<String>,
    form: Form,
) -> Result<HttpResponse, PageError> {
    viewer.check_csrf(form.get("csrf"))?;
    let id = review_id(&path)?;
    let action = Action::Withdraw {
        reason: form.text("reason").unwrap_or_default(),
    };
    let result = viewer
        .state
        .reviews
        .act(call(&viewer, &id, &form), caller(&viewer), action)
        .await;
    outcome(&viewer, &id, result, "withdrawn", "withdraw", None).await
}

/// A date field (`2026-06-01`) as the end of that day, UTC.
fn date_field(form: &Form, key: &str) -> Result<Option<DateTime<Utc>>, FieldError> {
    match form.text(key) {
        None => Ok(None),
        Some(text) => chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(23, 59, 59))
            .map(|d| Some(d.and_utc()))
            .ok_or_else(|| FieldError::new(key, "is not a date such as 2026-06-01")),
    }
}

/// `POST /reviews/{id}/findings`.
async fn add_finding(
    viewer: Viewer,
    path: web::Path<String>,
    form: Form,
) -> Result<HttpResponse, PageError> {
    viewer.check_csrf(form.get("csrf"))?;
    let id = review_id(&path)?;
    if !viewer.has_any(READERS) {
        return Err(PageError::Forbidden(
            "Only reviewers raise findings.".into(),
        ));
    }
    let mut errors = Vec::new();
    let severity = form.get("severity").and_then(Severity::parse);
    if severity.is_none() {
        errors.push(FieldError::new("severity", "is required"));
    }
    let remediation_due = date_field(&form, "remediation_due").unwrap_or_else(|e| {
        errors.push(e);
        None
    });
    let stage = form.text("stage").and_then(|s| StageKey::parse(&s).ok());
    let input = NewFinding {
        severity,
        text: form.text("text"),
        stage,
        owner: form.text("owner"),
        remediation_due,
    };
    if let Err(invalid) = input.validate() {
        errors.extend(FieldError::from_validator(&invalid));
    }
    let result = if errors.is_empty() {
        viewer
            .state
            .reviews
            .add_finding(call(&viewer, &id, &form), input)
            .await
            .map(drop)
    } else {
        Err(ReviewError::Invalid(errors))
    };
    outcome(&viewer, &id, result, "finding", "finding", None).await
}

/// `POST /reviews/{id}/findings/{finding}`: resolve, accept or reopen.
async fn update_finding(
    viewer: Viewer,
    path: web::Path<(String, String)>,
    form: Form,
) -> Result<HttpResponse, PageError> {
    viewer.check_csrf(form.get("csrf"))?;
    let id = review_id(&path.0)?;
    if !viewer.has_any(READERS) {
        return Err(PageError::Forbidden(
            "Only reviewers change findings.".into(),
        ));
    }
    let mut errors = Vec::new();
    let remediation_due = date_field(&form, "remediation_due").unwrap_or_else(|e| {
        errors.push(e);
        None
    });
    let patch = FindingPatch {
        state: form.get("state").and_then(FindingState::parse),
        severity: None,
        owner: form.text("owner"),
        remediation_due,
        resolution: form.text("resolution"),
    };
    let result = if errors.is_empty() {
        viewer
            .state
            .reviews
            .update_finding(call(&viewer, &id, &form), path.1.clone(), patch)
            .await
            .map(drop)
    } else {
        Err(ReviewError::Invalid(errors))
    };
    outcome(&viewer, &id, result, "finding", "findings", None).await
}

/// `POST /reviews/{id}/re-review`.
async fn re_review(
    viewer: Viewer,
    path: web::Path<String>,
    form: Form,
) -> Result<HttpResponse, PageError> {
    viewer.check_csrf(form.get("csrf"))?;
    let id = review_id(&path)?;
    if !viewer.has_any(STARTERS) {
        return Err(PageError::Forbidden(
            "Only a vendor manager or an admin opens a re-review.".into(),
        ));
    }
    let state = &viewer.state;
    let result = state
        .reviews
        .re_review(
            id.clone(),
            Actor::person(&viewer.session.principal, None),
            state.clock.now(),
            None,
        )
        .await;
    match result {
        Ok(summary) => Ok(page::redirect(&format!(
            "/reviews/{}?done=started",
            summary.id
        ))),
        Err(error) => outcome::<()>(&viewer, &id, Err(error), "started", "re-review", None).await,
    }
}

/// `GET /reviews/{id}/evidence`: the evidence pack, audited as the API's is.
async fn evidence(viewer: Viewer, path: web::Path<String>) -> Result<HttpResponse, PageError> {
    reader(&viewer)?;
    let id = review_id(&path)?;
    let state = &viewer.state;
    let pack = crate::evidence::export(
        &state.reviews,
        Actor::person(&viewer.session.principal, None),
        id,
        state.clock.now(),
    )
    .await
    .map_err(review_failure)?;
    let mut response = HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(pack.file_name)],
        })
        .body(pack.bytes);
    page::secure(&mut response);
    Ok(response)
}
