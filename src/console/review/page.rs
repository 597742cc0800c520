//! A review's page: its view model, built from the review's detail and
//! what the viewer may do, with a refused form's notice and problems.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::*;
use crate::auth::Role;
use crate::auth::roles::{MANAGERS, STAFF};
use crate::conditions::DataClass;
use crate::console::page::{self, Layout, Notice, PageError, Viewer};
use crate::console::questionnaire::{self, SectionBlock};
use crate::console::words;
use crate::ids::ReviewId;
use crate::reviews::scope::Scope;
use crate::reviews::{AnswerChange, FindingState, ReviewDetail, ReviewError, StageSummary, views};
use crate::validation::FieldError;
use crate::workflow::engine::{self, Decision, Duty, Refusal, ReviewState, StageState, Verb};
use crate::workflow::{Answerer, Severity, Tier};

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
    /// Who is assigned to answer it, and who to decide it.
    answer_assignee: Option<String>,
    decide_assignee: Option<String>,
    /// The forms that assign its answering and its deciding.
    assign_forms: Vec<AssignForm>,
    due: Option<String>,
    approvals_required: u32,
    approvals: Vec<ApprovalLine>,
    next: String,
    sections: Vec<SectionBlock>,
    /// The questionnaire as a form, when the viewer may answer it now.
    answer_form: bool,
    can_invite: bool,
    can_decide: bool,
    /// The decision form, as it was entered when it was refused.
    decide: DecideForm,
    /// What a form on the stage's work, or on its assignments, read.
    work_scope: String,
    assign_scope: String,
    /// Why the viewer, who holds the deciding role, may not decide.
    decide_refusal: Option<String>,
    decisions: Vec<DecisionLine>,
    /// Submitted again after a reviewer requested changes: the answers
    /// that changed since.
    changed: Vec<ChangeLine>,
    /// A comment on one of its questions was refused: its answers show open.
    answers_open: bool,
}

/// One answer, then and now, in words.
struct ChangeLine {
    question: String,
    before: String,
    after: String,
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
    /// The owner and due date in the form (what was typed, after a refusal).
    owner_value: String,
    due_value: String,
    resolution_value: String,
    /// How the answer that raised it changed since, in words.
    answer_changed: Option<String>,
    /// This finding's form was the one refused.
    failed: bool,
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

/// A box of a pick list.
struct Pick {
    value: String,
    label: String,
    checked: bool,
}

/// A stage's decision form: empty, or as entered when it was refused,
/// with each problem in words for the field it is about.
struct DecideForm {
    /// The form's id, and the refused form's name: `decide-<stage>`.
    id: String,
    decisions: Vec<Pick>,
    comment: String,
    /// The catalogue's use cases as boxes; empty while any is one (typed).
    use_cases: Vec<Pick>,
    use_cases_text: String,
    data_classes: Vec<Pick>,
    regions: Vec<Pick>,
    features_off: String,
    /// The conditions open: they hold an entry or a problem.
    open_conditions: bool,
    problems: BTreeMap<&'static str, String>,
}

impl DecideForm {
    fn problem(&self, field: &str) -> Option<&str> {
        self.problems.get(field).map(String::as_str)
    }
}

/// The decision form of stage `key`, with what `failure` kept of it.
fn decide_form(
    key: &str,
    failure: &Failure,
    vocabulary: &crate::vocabulary::Vocabulary,
) -> DecideForm {
    let id = format!("decide-{key}");
    let typed = failure.posted.as_ref().filter(|_| failure.form == id);
    let values = |name: &str| -> Vec<String> {
        match typed.and_then(|t| t.get(name)) {
            Some(serde_json::Value::Array(list)) => list
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(serde_json::Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        }
    };
    let text = |name: &str| values(name).join(", ");
    let picks = |codes: Vec<(String, String)>, name: &str| -> Vec<Pick> {
        let chosen: Vec<String> = values(name)
            .iter()
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().to_lowercase())
            .collect();
        codes
            .into_iter()
            .map(|(value, label)| Pick {
                checked: chosen.contains(&value),
                value,
                label,
            })
            .collect()
    };
    let decisions = [
        Decision::Approve,
        Decision::RequestChanges,
        Decision::Reject,
    ]
    .map(|d| {
        (
            d.as_str().to_owned(),
            sentence_case(&words::label(d.as_str())),
        )
    });
    let use_cases = vocabulary
        .use_cases()
        .unwrap_or_default()
        .into_iter()
        .map(|u| (u.to_owned(), words::label(u)))
        .collect();
    let regions = vocabulary
        .regions()
        .into_iter()
        .map(|r| (r.to_owned(), region_name(r)))
        .collect();
    let classes = DataClass::ALL
        .iter()
        .map(|c| (c.as_str().to_owned(), words::label(c.as_str())))
        .collect();
    let mut problems = BTreeMap::new();
    if typed.is_some() {
        for (field, name) in [
            ("decision", "The decision"),
            ("comment", "A comment"),
            ("conditions", "Conditions"),
            ("conditions.use_cases", "Use cases"),
            ("conditions.data_classes", "Data classes"),
            ("conditions.regions", "Regions"),
            ("conditions.features_off", "Features that must stay off"),
        ] {
            let found: Vec<String> = failure
                .errors
                .iter()
                .filter(|e| e.field == field)
                .map(|e| words::beside(name, &e.message))
                .collect();
            if !found.is_empty() {
                problems.insert(field, found.join(" "));
            }
        }
    }
    let form = DecideForm {
        decisions: picks(decisions.into_iter().collect(), "decision"),
        comment: text("comment"),
        use_cases_text: if vocabulary.use_cases().is_some() {
            String::new()
        } else {
            text("use_cases")
        },
        use_cases: picks(use_cases, "use_cases"),
        data_classes: picks(classes, "data_classes"),
        regions: picks(regions, "regions"),
        features_off: text("features_off"),
        open_conditions: false,
        problems,
        id,
    };
    DecideForm {
        open_conditions: form.problems.keys().any(|f| f.starts_with("conditions"))
            || [&form.use_cases, &form.data_classes, &form.regions]
                .iter()
                .any(|list| list.iter().any(|p| p.checked))
            || !form.use_cases_text.is_empty()
            || !form.features_off.is_empty(),
        ..form
    }
}

/// `request changes` → `Request changes`.
fn sentence_case(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A region's code as people read it: `eu` → `EU`, `global` → `Global`.
fn region_name(code: &str) -> String {
    if code.len() <= 3 {
        code.to_uppercase()
    } else {
        sentence_case(code)
    }
}

/// What changed on the review while a refused form's page was open: the
/// events after the `seen` first, in words.
fn changed_since(
    detail: &ReviewDetail,
    seen: usize,
    titles: &BTreeMap<String, String>,
) -> Vec<String> {
    detail
        .timeline
        .iter()
        .skip(seen)
        .map(|e| {
            let stage = e
                .detail
                .as_ref()
                .and_then(|d| d.pointer("/stage/key").or_else(|| d.get("stage")))
                .and_then(|k| k.as_str())
                .map(|k| format!(" ({})", titles.get(k).map_or(k, String::as_str)))
                .unwrap_or_default();
            format!(
                "{} — {}{stage}",
                actor_words(&e.actor, &detail.invitations),
                words::label(&e.action.replace('.', " "))
            )
        })
        .collect()
}

/// Who the directory knows with each approver role of the stages in
/// review, by `sub`.
async fn deciders(
    viewer: &Viewer,
    review: &crate::reviews::ReviewSummary,
) -> Result<BTreeMap<String, Vec<String>>, PageError> {
    let roles: std::collections::BTreeSet<String> = review
        .stages
        .iter()
        .filter(|s| s.state == StageState::InReview)
        .map(|s| s.approver_role.clone())
        .collect();
    if roles.is_empty() {
        return Ok(BTreeMap::new());
    }
    viewer
        .state
        .store
        .run(move |conn| {
            let mut found = BTreeMap::new();
            for name in roles {
                let Some(role) = Role::parse(&name) else {
                    continue;
                };
                let subs = crate::people::people_with_role(conn, role)?
                    .into_iter()
                    .map(|(sub, _)| sub)
                    .collect();
                found.insert(name, subs);
            }
            Ok::<_, crate::db::StoreError>(found)
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "reading who may decide");
            PageError::Internal
        })
}

/// For a stage in review with nobody assigned to decide it, when
/// segregation of duties bars everyone the directory knows with its role
/// (they started the review, answered the stage or approved it already):
/// the page says so, and what to do.
fn nobody_may_decide(
    stage: &StageSummary,
    detail: &ReviewDetail,
    deciders: &BTreeMap<String, Vec<String>>,
) -> Option<String> {
    if stage.state != StageState::InReview || stage.assignees.decide.is_some() {
        return None;
    }
    let answered: Vec<&str> = detail
        .answers
        .get(stage.key.as_str())
        .map(|a| a.values().map(|v| v.answered_by.as_str()).collect())
        .unwrap_or_default();
    let barred = |who: &str| {
        who == detail.review.started_by
            || answered.contains(&who)
            || stage.approvals.iter().any(|a| a.by == who)
    };
    let known = deciders.get(&stage.approver_role)?;
    if known.iter().any(|who| !barred(who)) {
        return None;
    }
    let role = words::role(&stage.approver_role);
    let why = if known.is_empty() {
        format!("nobody known to Clearance holds the {role} role yet")
    } else {
        format!(
            "nobody known to Clearance may decide it: everyone with the {role} role started the review, answered the stage or approved it already, so segregation of duties keeps them from it"
        )
    };
    Some(format!(
        "{why}. Give the role to someone else, or assign someone who has not signed in yet by their email address"
    ))
}

/// A form assigning one duty of a stage: who now (or as typed, when it
/// was refused), the people who may take it, and why it was refused.
struct AssignForm {
    /// The form's id, and the refused form's name: `assign-<duty>-<stage>`.
    id: String,
    duty: &'static str,
    label: String,
    value: String,
    people: Vec<Choice>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/review.html")]
struct ReviewPage {
    layout: Layout,
    csrf: String,
    id: String,
    revision: i64,
    /// What a form on the whole review read (see [`Scope`]).
    review_scope: String,
    /// How many of the review's events the page shows.
    seen: usize,
    subject: String,
    subject_href: String,
    kind: String,
    state: String,
    state_badge: String,
    in_progress: bool,
    tier: String,
    tier_reason: Option<String>,
    workflow: String,
    workflow_id: String,
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
    can_raise_tier: bool,
    can_withdraw: bool,
    can_findings: bool,
    can_re_review: bool,
    /// A contact may be invited to every supplier questionnaire at once.
    can_invite_all: bool,
    higher_tiers: Vec<Choice>,
    severities: Vec<Choice>,
    stage_choices: Vec<Choice>,
    /// The form that was refused, to keep it in view: a stage key, `tier`,
    /// `finding`, `withdraw`.
    failed_form: String,
    errors: Vec<FieldError>,
    /// What the refused form held, to show it again.
    typed: BTreeMap<String, serde_json::Value>,
}

impl ReviewPage {
    fn error(&self, field: &str) -> Option<String> {
        words::field_error(&self.errors, field)
    }

    /// What the refused form `form` held in `field`, to show it again.
    fn kept(&self, form: &str, field: &str) -> String {
        kept_value(Some(&self.typed), &self.failed_form, form, field).unwrap_or_default()
    }
}

/// Who acted, as people read it: a supplier by the address they were
/// invited at, a job of Clearance's as Clearance, a person by their name.
fn actor_words(actor: &str, invitations: &[crate::reviews::InvitationView]) -> String {
    if let Some(invitation) = actor.strip_prefix("respondent:") {
        return invitations
            .iter()
            .find(|i| i.id.as_str() == invitation)
            .map_or_else(
                || "the supplier".into(),
                |i| format!("{} (supplier)", i.email),
            );
    }
    if let Some(job) = actor.strip_prefix("system:") {
        return format!("Clearance ({})", job.replace('-', " "));
    }
    actor.to_owned()
}

/// Who acts next on a stage, in words: in review, how many approvals it
/// has of how many, and who may give the next one (an assignee who has
/// approved already no longer holds it).
fn next_actor(stage: &StageSummary) -> String {
    let role = |r: &str| words::role(r);
    let approved = |who: &str| stage.approvals.iter().any(|a| a.by == who);
    match stage.state {
        StageState::Blocked => "waits for earlier stages".into(),
        StageState::AwaitingAnswers if stage.answered_by == Answerer::Supplier => {
            "waits for the supplier's answers".into()
        }
        StageState::AwaitingAnswers => match stage.assignee.as_deref() {
            Some(who) => format!("waits for {who} to answer"),
            None => format!(
                "waits for {} to answer",
                words::one_with_role(stage.answered_by.as_str())
            ),
        },
        StageState::InReview if !stage.approvals.is_empty() => {
            let next = match stage.assignee.as_deref().filter(|who| !approved(who)) {
                Some(who) => format!("waits for {who} to decide"),
                None => format!("needs another {}", role(&stage.approver_role)),
            };
            format!(
                "{} of {} approvals — {next}",
                stage.approvals.len(),
                stage.approvals_required
            )
        }
        StageState::InReview => match stage.assignee.as_deref() {
            Some(who) => format!("waits for {who} to decide"),
            None => format!(
                "waits for {} to decide",
                words::one_with_role(&stage.approver_role)
            ),
        },
        StageState::Approved => "approved".into(),
        StageState::Rejected => "rejected".into(),
        StageState::Skipped => "not needed at this tier".into(),
    }
}

/// A stage's questionnaire with the reviewers' comments beside their
/// questions and, when the viewer may comment (`commentable`, the review),
/// a comment form beside each (the refused one with what was typed).
fn stage_sections(
    viewer: &Viewer,
    detail: &ReviewDetail,
    failure: &Failure,
    mut sections: Vec<SectionBlock>,
    commentable: Option<&ReviewId>,
    stage: &StageKey,
) -> Vec<SectionBlock> {
    let comments: Vec<_> = detail
        .comments
        .iter()
        .filter(|c| c.stage == *stage)
        .cloned()
        .collect();
    questionnaire::add_comments(&mut sections, &comments);
    let Some(id) = commentable else {
        return sections;
    };
    for question in sections.iter_mut().flat_map(|s| s.questions.iter_mut()) {
        let anchor = super::comments::comment_form(stage, &question.id);
        let failed = failure.form == anchor;
        question.comment_form = Some(questionnaire::CommentForm {
            action: format!(
                "/reviews/{id}/stages/{stage}/questions/{}/comments",
                question.id
            ),
            csrf: viewer.session.csrf.clone(),
            text: failure.kept(&anchor, "text").unwrap_or_default(),
            error: failed
                .then(|| {
                    words::field_error(&failure.errors, "text")
                        .map(|e| format!("Comment {e}"))
                        .or_else(|| failure.notice.as_ref().map(|n| n.text.clone()))
                })
                .flatten(),
            anchor,
        });
    }
    sections
}

/// An answer then and now, in words.
fn change_line(workflow: &crate::workflow::Workflow, change: &AnswerChange) -> ChangeLine {
    let (before, after) = views::change_in_words(workflow, change);
    ChangeLine {
        question: change.question_text.clone(),
        before,
        after,
    }
}

pub(super) async fn render(
    viewer: &Viewer,
    id: &ReviewId,
    failure: Failure,
    done: Option<&str>,
) -> Result<HttpResponse, PageError> {
    let (detail, allowed) = load_for(viewer, id).await?;
    let state = &viewer.state;
    let now = state.clock.now();
    let review = &detail.review;
    let workflow =
        crate::reviews::store::pinned_workflow_of(&state.reviews.catalog, &review.workflow.digest)
            .ok_or(PageError::Internal)?;
    let in_progress = review.state == ReviewState::InProgress;
    let starter = viewer.has_any(MANAGERS);
    let deciders = deciders(viewer, review).await?;
    let candidates = if in_progress && starter {
        candidates(viewer, &workflow.workflow).await?
    } else {
        BTreeMap::new()
    };
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
            // What the page offers is what the engine allows, no more.
            let key = Some(summary.key.as_str());
            let may_answer = allowed.allows(key, Verb::SaveAnswers);
            let may_decide = [
                Decision::Approve,
                Decision::Reject,
                Decision::RequestChanges,
            ]
            .into_iter()
            .any(|d| allowed.allows(key, Verb::Decide(d)));
            // Someone with the role whom segregation of duties keeps from
            // deciding is told why, where the form would be.
            let decide_refusal = match allowed.refusal(key, Verb::Decide(Decision::Approve)) {
                Some(refusal @ Refusal::SegregationOfDuties(_)) if !may_decide => Some(
                    words::review_refusal(&ReviewError::Refused(refusal.clone()), "")
                        .0
                        .text,
                ),
                _ => None,
            };
            let work_scope = Scope::Work(summary.key.clone()).of_stage(summary, &answers);
            let assign_scope = Scope::Assign(summary.key.clone()).of_stage(summary, &answers);
            Some(StageBlock {
                decide: decide_form(summary.key.as_str(), &failure, &state.reviews.vocabulary),
                work_scope,
                assign_scope,
                key: summary.key.to_string(),
                title: summary.title.clone(),
                state: words::label(summary.state.as_str()),
                badge: if summary.overdue {
                    "overdue".into()
                } else {
                    summary.state.as_str().to_owned()
                },
                answered_by: words::role(summary.answered_by.as_str()),
                approver_role: words::role(&summary.approver_role),
                answer_assignee: summary.assignees.answer.clone(),
                decide_assignee: summary.assignees.decide.clone(),
                assign_forms: if allowed.allows(key, Verb::Assign) {
                    assign_forms(definition, summary, &failure, &candidates)
                } else {
                    Vec::new()
                },
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
                next: match nobody_may_decide(summary, &detail, &deciders) {
                    Some(why) => why,
                    None => next_actor(summary),
                },
                sections: stage_sections(
                    viewer,
                    &detail,
                    &failure,
                    questionnaire::blocks(
                        &definition.questionnaire,
                        &shown,
                        detail.answers.get(summary.key.as_str()),
                        if failed { &failure.errors[..] } else { &[] },
                    ),
                    allowed.commentable.contains(&summary.key).then_some(id),
                    &summary.key,
                ),
                answer_form: may_answer,
                can_invite: in_progress
                    && starter
                    && matches!(
                        summary.state,
                        StageState::Blocked | StageState::AwaitingAnswers
                    )
                    && definition.answered_by == Answerer::Supplier,
                can_decide: may_decide,
                decide_refusal,
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
                answers_open: failure
                    .form
                    .starts_with(&super::comments::comment_form(&summary.key, "")),
                changed: detail
                    .changed_since_request
                    .get(summary.key.as_str())
                    .map(|changes| {
                        changes
                            .iter()
                            .map(|c| change_line(&workflow.workflow, c))
                            .collect()
                    })
                    .unwrap_or_default(),
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
        .map(|f| format!("{} ({})", f.text, f.severity))
        .collect();
    let findings = detail
        .findings
        .iter()
        .map(|f| {
            let form = format!("finding-{}", f.id);
            let failed = failure.form == form;
            let kept = |field: &str| failure.kept(&form, field);
            FindingLine {
                owner_value: kept("owner").unwrap_or_else(|| f.owner.clone().unwrap_or_default()),
                due_value: kept("remediation_due").unwrap_or_else(|| {
                    f.remediation_due
                        .map(|d| d.format("%Y-%m-%d").to_string())
                        .unwrap_or_default()
                }),
                resolution_value: kept("resolution").unwrap_or_default(),
                answer_changed: f.answer_changed.as_ref().map(|c| {
                    let (before, after) = views::change_in_words(&workflow.workflow, c);
                    format!(
                        "The answer that raised this, to “{}”, changed on {}: {before} → {after}",
                        c.question_text,
                        words::day(c.changed_at)
                    )
                }),
                failed,
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
            }
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
            actor: actor_words(&e.actor, &detail.invitations),
            action: words::label(&e.action.replace('.', " ")),
        })
        .collect();
    let mut layout = viewer.layout(format!("Review of {}", subject_of(review)), "/reviews");
    if let Some(notice) = done_notice(done) {
        layout = layout.notice(notice);
    }
    let titles: BTreeMap<String, String> = workflow
        .workflow
        .stages
        .iter()
        .map(|s| (s.key.to_string(), s.title.clone()))
        .collect();
    let changes = match (failure.status, failure.seen) {
        (Some(StatusCode::PRECONDITION_FAILED), Some(seen)) => {
            changed_since(&detail, seen, &titles)
        }
        _ => Vec::new(),
    };
    if !changes.is_empty() {
        layout = layout.notice(Notice::bad(format!(
            "While this page was open, this changed: {}. So nothing you sent was saved; what you entered is still below — check it against the change and send it again.",
            changes.join("; ")
        )));
    } else if let Some(notice) = failure.notice {
        layout = layout.notice(notice);
    }
    let invitable = stages.iter().filter(|s| s.can_invite).count();
    let page = ReviewPage {
        layout,
        csrf: viewer.session.csrf.clone(),
        id: review.id.to_string(),
        revision: review.version,
        review_scope: Scope::Review.token(review, |_| None).unwrap_or_default(),
        seen: detail.timeline.len(),
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
        workflow_id: review.workflow.id.clone(),
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
        can_raise_tier: allowed.allows(None, Verb::RaiseTier),
        can_withdraw: allowed.allows(None, Verb::Withdraw),
        can_findings: viewer.has_any(STAFF),
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
        typed: failure.posted.unwrap_or_default(),
        failed_form: failure.form,
        errors: failure.errors,
    };
    Ok(page::html(failure.status.unwrap_or(StatusCode::OK), &page))
}

/// The people who may be picked for each role the workflow's stages
/// need, as `(value, label)`: everyone the directory knows with the role
/// (by `sub`), and the addresses the organisation lists for it. The
/// review's assign forms and the model page's start form offer them.
pub(crate) async fn candidates(
    viewer: &Viewer,
    workflow: &crate::workflow::Workflow,
) -> Result<BTreeMap<Role, Vec<(String, String)>>, PageError> {
    let roles: std::collections::BTreeSet<Role> = workflow
        .stages
        .iter()
        .flat_map(|s| [Duty::Answer, Duty::Decide].map(|d| engine::duty_role(s, d)))
        .collect();
    let mailboxes = viewer.state.reviews.mailboxes.clone();
    viewer
        .state
        .store
        .run(move |conn| {
            let mut found = BTreeMap::new();
            for role in roles {
                found.insert(role, crate::people::candidates(conn, role, &mailboxes)?);
            }
            Ok::<_, crate::db::StoreError>(found)
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "reading who may be assigned");
            PageError::Internal
        })
}

/// A stage's assignment forms: its answering (unless the supplier answers
/// it) and its deciding, each with the person assigned (or what was typed
/// into a refused form, with the reason beside it).
fn assign_forms(
    definition: &crate::workflow::Stage,
    summary: &StageSummary,
    failure: &Failure,
    candidates: &BTreeMap<Role, Vec<(String, String)>>,
) -> Vec<AssignForm> {
    let mut duties = Vec::new();
    if definition.answered_by != Answerer::Supplier {
        duties.push((Duty::Answer, summary.assignees.answer.as_deref()));
    }
    duties.push((Duty::Decide, summary.assignees.decide.as_deref()));
    duties
        .into_iter()
        .map(|(duty, now)| {
            let id = format!("assign-{duty}-{}", summary.key);
            let refused = failure.form == id;
            let typed = failure
                .posted
                .as_ref()
                .filter(|_| refused)
                .and_then(|p| p.get("assignee"))
                .and_then(|v| v.as_str());
            let role = engine::duty_role(definition, duty);
            let label = match duty {
                Duty::Answer => format!("Who answers it ({})", words::one_with_role(role.as_str())),
                Duty::Decide => format!("Who decides it ({})", words::one_with_role(role.as_str())),
            };
            let people = candidates
                .get(&role)
                .into_iter()
                .flatten()
                .map(|(value, label)| Choice {
                    value: value.clone(),
                    label: label.clone(),
                })
                .collect();
            AssignForm {
                error: if refused {
                    failure
                        .errors
                        .iter()
                        .map(|e| words::beside("The person", &e.message))
                        .next()
                } else {
                    None
                },
                value: typed.or(now).unwrap_or_default().to_owned(),
                duty: duty.as_str(),
                label,
                people,
                id,
            }
        })
        .collect()
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
        "finding-closed" => "The finding is closed: the answer that raised it changed.",
        "commented" => "Your comment is beside the question, for whoever answers it.",
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
pub(super) async fn review_page(
    viewer: Viewer,
    path: web::Path<String>,
    query: web::Query<Done>,
) -> Result<HttpResponse, PageError> {
    reader(&viewer)?;
    let id = review_id(&path)?;
    render(&viewer, &id, Failure::default(), query.done.as_deref()).await
}
