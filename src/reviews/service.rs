//! Review operations, each one transaction: load, check `If-Match`, let the
//! engine decide, save, and write the audit event and outbox messages.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use serde_json::json;

use super::store::{self, Loaded, ReviewRow};
use super::{
    FindingPatch, FindingState, FindingView, InvitationView, NewFinding, NewReview, ReviewDetail,
    ReviewError, ReviewSummary, StageView,
};
use crate::audit::{self, Actor, Change};
use crate::auth::{RespondentScope, TokenIssuer};
use crate::db::DbConnection;
use crate::notify::{self, messages};
use crate::providers::store as catalogue;
use crate::schema::{findings, respondent_tokens};
use crate::status::store as status;
use crate::workflow::engine::{self, Action, Caller, Effect, ReviewKind};
use crate::workflow::{Answerer, Catalog};

/// The default workflow of `POST /v1/reviews`.
pub const DEFAULT_WORKFLOW: &str = "model-provider";
const DEFAULT_INVITATION_DAYS: i64 = 30;
const MAX_INVITATION_DAYS: i64 = 90;

/// Who changes which review, when, and against which version (`If-Match`).
#[derive(Debug, Clone)]
pub struct Call {
    pub review_id: String,
    pub expected: Option<i64>,
    pub actor: Actor,
    pub email: Option<String>,
    pub now: DateTime<Utc>,
}

impl Call {
    fn parts(&self) -> (&str, Option<i64>, &Actor, Option<&str>, DateTime<Utc>) {
        (
            &self.review_id,
            self.expected,
            &self.actor,
            self.email.as_deref(),
            self.now,
        )
    }
}

/// What review operations need besides the database.
#[derive(Clone)]
pub struct Reviews {
    pub catalog: Arc<Catalog>,
    pub tokens: Arc<TokenIssuer>,
    pub public_url: String,
}

impl std::fmt::Debug for Reviews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reviews")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// The row of a review the engine has just started.
fn new_review_row(
    provider_id: &str,
    model_id: Option<&str>,
    workflow: &crate::workflow::LoadedWorkflow,
    review: &engine::Review,
    started_by: &str,
    now: DateTime<Utc>,
) -> ReviewRow {
    ReviewRow {
        id: uuid::Uuid::now_v7().to_string(),
        provider_id: provider_id.to_owned(),
        model_id: model_id.map(str::to_owned),
        kind: review.kind.as_str().to_owned(),
        workflow_id: workflow.workflow.id.clone(),
        workflow_version: workflow.workflow.version,
        workflow_digest: workflow.digest.clone(),
        state: review.state.as_str().to_owned(),
        tier: review.tier.as_str().to_owned(),
        tier_reason: None,
        started_by: started_by.to_owned(),
        previous_review_id: None,
        conditions: None,
        decided_at: None,
        valid_until: None,
        version: 1,
        created_at: now.naive_utc(),
        updated_at: now.naive_utc(),
        started_by_email: None,
    }
}

fn check_version(loaded: &Loaded, expected: Option<i64>) -> Result<(), ReviewError> {
    match expected {
        Some(expected) if expected != loaded.row.version => Err(ReviewError::Stale {
            expected,
            actual: loaded.row.version,
        }),
        _ => Ok(()),
    }
}

impl Reviews {
    fn context<'a>(&'a self, loaded: &'a Loaded, subject: &'a str) -> messages::ReviewContext<'a> {
        messages::ReviewContext {
            review_id: &loaded.row.id,
            subject,
            workflow_title: &loaded.workflow.workflow.title,
            public_url: &self.public_url,
        }
    }

    /// Starts a review of a provider or one of its models.
    pub fn start(
        &self,
        conn: &mut DbConnection,
        actor: &Actor,
        email: Option<&str>,
        input: NewReview,
        now: DateTime<Utc>,
    ) -> Result<ReviewSummary, ReviewError> {
        let provider_slug = input.provider.unwrap_or_default();
        let invalid = |field: &str, message: String| {
            ReviewError::Invalid(vec![crate::validation::FieldError::new(field, message)])
        };
        let provider = catalogue::find_provider(conn, &provider_slug)
            .map_err(|_| invalid("provider", format!("no provider `{provider_slug}`")))?;
        let model = match &input.model {
            Some(model) => Some(
                catalogue::find_model(conn, &provider_slug, model)
                    .map_err(|_| {
                        invalid(
                            "model",
                            format!("no model `{model}` of provider `{provider_slug}`"),
                        )
                    })?
                    .1,
            ),
            None => None,
        };
        let workflow_id = input.workflow.as_deref().unwrap_or(DEFAULT_WORKFLOW);
        let workflow = self.catalog.get(workflow_id).ok_or_else(|| {
            let known: Vec<_> = self.catalog.all().map(|w| w.workflow.id.clone()).collect();
            invalid(
                "workflow",
                format!("no workflow `{workflow_id}` (known: {})", known.join(", ")),
            )
        })?;
        if let Some(open) =
            store::open_review_of(conn, &provider.id, model.as_ref().map(|m| m.id.as_str()))?
        {
            return Err(ReviewError::Conflict(format!(
                "a review of this subject is already in progress: {open}"
            )));
        }
        store::pin_workflow(conn, &workflow, now)?;
        let outcome = engine::start(&workflow.workflow, ReviewKind::Initial, &actor.id, now);
        let review = &outcome.review;
        let row = ReviewRow {
            started_by_email: email.map(str::to_owned),
            ..new_review_row(
                &provider.id,
                model.as_ref().map(|m| m.id.as_str()),
                &workflow,
                review,
                &actor.id,
                now,
            )
        };
        let before = status::statuses_of(conn, &provider.id, input.model.as_deref(), now)?;
        store::insert(conn, &row, review, now)?;
        let mut after = status::statuses_of(conn, &provider.id, input.model.as_deref(), now)?;
        status::announce_changes(conn, &before, &mut after, now)?;
        let loaded = store::load(conn, &self.catalog, &row.id)?;
        let summary = loaded.summary(now);
        audit::append(
            conn,
            actor,
            Change {
                action: "review.started",
                subject: format!("review/{}", row.id),
                review_id: Some(&row.id),
                before: None,
                after: Some(json!({
                    "subject": loaded.subject(),
                    "workflow": {"id": workflow.workflow.id, "version": workflow.workflow.version, "digest": workflow.digest},
                    "state": review.state.as_str(),
                    "tier": review.tier.as_str(),
                })),
            },
            now,
        )?;
        Ok(summary)
    }

    /// Opens a re-review of the subject of an approved review, on the
    /// workflow's current version, with the previous answers carried forward
    /// (marked as such) and every stage assigned to the previous review's
    /// vendor manager. Refused while another review of the subject is open.
    pub fn start_re_review(
        &self,
        conn: &mut DbConnection,
        previous_review_id: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<ReviewSummary, ReviewError> {
        use crate::workflow::engine::ReviewState;
        let previous = store::load(conn, &self.catalog, previous_review_id)?;
        let approved = matches!(
            ReviewState::parse(&previous.row.state),
            Some(ReviewState::Approved | ReviewState::ApprovedWithConditions)
        );
        if !approved {
            return Err(ReviewError::Conflict(format!(
                "review {previous_review_id} is `{}`; only an approval is re-reviewed",
                previous.row.state
            )));
        }
        if let Some(open) = store::open_review_of(
            conn,
            &previous.row.provider_id,
            previous.row.model_id.as_deref(),
        )? {
            return Err(ReviewError::Conflict(format!(
                "a review of this subject is already in progress: {open}"
            )));
        }
        // The workflow as it is now; if it was removed, the one the approval followed.
        let workflow = self
            .catalog
            .get(&previous.row.workflow_id)
            .unwrap_or_else(|| previous.workflow.clone());
        store::pin_workflow(conn, &workflow, now)?;
        let mut outcome = engine::start(&workflow.workflow, ReviewKind::ReReview, &actor.id, now);
        for stage in &mut outcome.review.stages {
            stage.assignee = Some(previous.row.started_by.clone());
        }
        let row = ReviewRow {
            previous_review_id: Some(previous.row.id.clone()),
            started_by_email: previous.row.started_by_email.clone(),
            ..new_review_row(
                &previous.row.provider_id,
                previous.row.model_id.as_deref(),
                &workflow,
                &outcome.review,
                &actor.id,
                now,
            )
        };
        let before = status::statuses_of(conn, &row.provider_id, previous.model.as_deref(), now)?;
        store::insert(conn, &row, &outcome.review, now)?;
        let carried = store::carry_forward(conn, &previous, &row.id, &workflow.workflow, now)?;
        let mut after =
            status::statuses_of(conn, &row.provider_id, previous.model.as_deref(), now)?;
        status::announce_changes(conn, &before, &mut after, now)?;
        let loaded = store::load(conn, &self.catalog, &row.id)?;
        audit::append(
            conn,
            actor,
            Change {
                action: "review.re_review_started",
                subject: format!("review/{}", row.id),
                review_id: Some(&row.id),
                before: None,
                after: Some(json!({
                    "subject": loaded.subject(),
                    "previous_review": previous.row.id,
                    "workflow": {"id": workflow.workflow.id, "version": workflow.workflow.version, "digest": workflow.digest},
                    "answers_carried_forward": carried,
                    "assignee": previous.row.started_by,
                })),
            },
            now,
        )?;
        Ok(loaded.summary(now))
    }

    /// Applies an engine action to a review.
    pub fn act(
        &self,
        conn: &mut DbConnection,
        call: &Call,
        caller: &Caller,
        action: Action,
    ) -> Result<Loaded, ReviewError> {
        let (review_id, expected, actor, email, now) = call.parts();
        let loaded = store::load(conn, &self.catalog, review_id)?;
        check_version(&loaded, expected)?;
        if let Caller::Respondent { id, stage } = caller {
            check_invitation(
                conn,
                &loaded,
                id.trim_start_matches("respondent:"),
                stage,
                now,
            )?;
        }
        let before = loaded.engine_review();
        let outcome = engine::apply(&loaded.workflow.workflow, &before, &action, caller, now)?;
        // Only a decision or a withdrawal can change what is published.
        let publishes = outcome.effects.iter().any(|e| {
            matches!(
                e,
                Effect::ReviewDecided { .. } | Effect::ReviewWithdrawn { .. }
            )
        });
        let statuses_before = if publishes {
            status::statuses_of(conn, &loaded.row.provider_id, loaded.model.as_deref(), now)?
        } else {
            Vec::new()
        };
        store::save(
            conn,
            &loaded,
            &outcome.review,
            &outcome.effects,
            caller.id(),
            email,
            now,
        )?;
        if publishes {
            let mut statuses_after =
                status::statuses_of(conn, &loaded.row.provider_id, loaded.model.as_deref(), now)?;
            status::announce_changes(conn, &statuses_before, &mut statuses_after, now)?;
        }
        let subject = loaded.subject();
        let after = &outcome.review;

        let stage_key = match &action {
            Action::SaveAnswers { stage, .. }
            | Action::Submit { stage }
            | Action::Decide { stage, .. }
            | Action::Assign { stage, .. } => Some(stage.clone()),
            _ => None,
        };
        let stage_state = |review: &engine::Review| {
            stage_key
                .as_ref()
                .and_then(|k| review.stage(k))
                .map(|s| s.state.as_str())
        };
        let detail = match &action {
            Action::SaveAnswers { answers, .. } => json!({"answers": answers}),
            Action::Submit { .. } => json!({}),
            Action::Decide {
                decision,
                comment,
                conditions,
                ..
            } => json!({"decision": decision, "comment": comment, "conditions": conditions}),
            Action::Assign { assignee, .. } => json!({"assignee": assignee}),
            Action::RaiseTier { tier, reason } => json!({"tier": tier, "reason": reason}),
            Action::Withdraw { reason } => json!({"reason": reason}),
        };
        let mut after_data =
            json!({"state": after.state.as_str(), "tier": after.tier.as_str(), "detail": detail});
        if let Some(stage) = &stage_key {
            after_data["stage"] = json!({"key": stage, "state": stage_state(after)});
        }
        let findings: Vec<_> = outcome
            .effects
            .iter()
            .filter_map(|e| match e {
                Effect::FindingOpened { severity, text, .. } => {
                    Some(json!({"severity": severity, "text": text}))
                }
                _ => None,
            })
            .collect();
        if !findings.is_empty() {
            after_data["findings_opened"] = json!(findings);
        }
        audit::append(
            conn,
            actor,
            Change {
                action: action.name(),
                subject: format!("review/{review_id}"),
                review_id: Some(review_id),
                before: Some(
                    json!({"state": before.state.as_str(), "tier": before.tier.as_str(), "stage_state": stage_state(&before)}),
                ),
                after: Some(after_data),
            },
            now,
        )?;

        let context = self.context(&loaded, &subject);
        let starter = loaded.row.started_by_email.clone();
        for effect in &outcome.effects {
            match effect {
                Effect::Decided {
                    stage,
                    decision,
                    by,
                    comment,
                    ..
                } => {
                    if let Some(to) = &starter {
                        let title = loaded
                            .workflow
                            .workflow
                            .stage(stage)
                            .map_or(stage.as_str(), |s| s.title.as_str());
                        let email = messages::decision_notice(
                            &context,
                            to,
                            title,
                            decision.as_str(),
                            by,
                            comment.as_deref(),
                        );
                        notify::enqueue_email(conn, &email, None, now)?;
                    }
                }
                Effect::ReviewDecided { state } => {
                    if let Some(to) = &starter {
                        let label = state.as_str().replace('_', " ");
                        let email =
                            messages::review_decided(&context, to, &label, after.valid_until);
                        notify::enqueue_email(conn, &email, None, now)?;
                    }
                }
                _ => {}
            }
        }
        store::load(conn, &self.catalog, review_id)
    }

    /// Invites a supplier contact to answer one stage through a link.
    pub fn invite(
        &self,
        conn: &mut DbConnection,
        call: &Call,
        stage: &str,
        email: &str,
        expires_in: Option<TimeDelta>,
    ) -> Result<(InvitationView, String), ReviewError> {
        let (review_id, expected, actor, _, now) = call.parts();
        let loaded = store::load(conn, &self.catalog, review_id)?;
        check_version(&loaded, expected)?;
        let review = loaded.engine_review();
        if review.state.is_decided() {
            return Err(engine::Refusal::NotAllowed {
                action: "invite",
                subject: "the review".into(),
                state: review.state.as_str(),
            }
            .into());
        }
        let definition = loaded
            .workflow
            .workflow
            .stage(stage)
            .ok_or_else(|| engine::Refusal::UnknownStage(stage.to_owned()))?;
        if definition.answered_by != Answerer::Supplier {
            return Err(ReviewError::Invalid(vec![
                crate::validation::FieldError::new(
                    "stage",
                    format!(
                        "stage `{stage}` is answered by `{}`, not by the supplier",
                        definition.answered_by.as_str()
                    ),
                ),
            ]));
        }
        let record = review
            .stage(stage)
            .ok_or_else(|| engine::Refusal::UnknownStage(stage.to_owned()))?;
        if record.state != engine::StageState::AwaitingAnswers {
            return Err(engine::Refusal::NotAllowed {
                action: "invite",
                subject: format!("stage `{stage}`"),
                state: record.state.as_str(),
            }
            .into());
        }
        let stage_row = loaded
            .stage_row(stage)
            .ok_or_else(|| engine::Refusal::UnknownStage(stage.to_owned()))?;
        let expires_at = now + expires_in.unwrap_or(TimeDelta::days(DEFAULT_INVITATION_DAYS));
        let invitation = respondent_invitation(&stage_row.id, email, expires_at, &actor.id, now);
        diesel::insert_into(respondent_tokens::table)
            .values(&invitation)
            .execute(conn)?;
        let scope = RespondentScope {
            invitation: invitation.id.clone(),
            review: review_id.to_owned(),
            stage: stage.to_owned(),
        };
        // The token's own `exp` is checked by the JWT library against the
        // system clock; the invitation row's expiry (checked on every use)
        // follows the application's clock, which tests and demos move.
        let system_now = Utc::now();
        let token = self
            .tokens
            .issue_respondent(&scope, email, system_now, system_now + (expires_at - now))
            .map_err(|e| ReviewError::Internal(e.to_string()))?;
        let link = format!("{}/respond/{token}", self.public_url.trim_end_matches('/'));
        let subject = loaded.subject();
        let message = messages::invitation(
            &self.context(&loaded, &subject),
            email,
            &definition.title,
            definition.questionnaire.questions().count(),
            &link,
            record.due_at,
            expires_at,
        );
        notify::enqueue_email(
            conn,
            &message,
            Some(format!("invitation:{}", invitation.id)),
            now,
        )?;
        store::touch(conn, review_id, now)?;
        audit::append(
            conn,
            actor,
            Change {
                action: "stage.invited",
                subject: format!("review/{review_id}"),
                review_id: Some(review_id),
                before: None,
                after: Some(
                    json!({"stage": stage, "email": email, "invitation": invitation.id, "expires_at": expires_at}),
                ),
            },
            now,
        )?;
        let view = InvitationView {
            id: invitation.id,
            stage: stage.to_owned(),
            email: email.to_owned(),
            expires_at,
            revoked_at: None,
            created_by: actor.id.clone(),
            created_at: now,
        };
        Ok((view, link))
    }

    /// Revokes an invitation: its link stops working at once.
    pub fn revoke_invitation(
        &self,
        conn: &mut DbConnection,
        call: &Call,
        invitation: &str,
    ) -> Result<(), ReviewError> {
        let (review_id, _, actor, _, now) = call.parts();
        let loaded = store::load(conn, &self.catalog, review_id)?;
        let stage_ids: Vec<String> = loaded.stages.iter().map(|s| s.id.clone()).collect();
        let updated = diesel::update(
            respondent_tokens::table
                .filter(respondent_tokens::id.eq(invitation))
                .filter(respondent_tokens::stage_id.eq_any(&stage_ids))
                .filter(respondent_tokens::revoked_at.is_null()),
        )
        .set(respondent_tokens::revoked_at.eq(now.naive_utc()))
        .execute(conn)?;
        if updated == 0 {
            return Err(ReviewError::InvitationNotFound(invitation.to_owned()));
        }
        store::touch(conn, review_id, now)?;
        audit::append(
            conn,
            actor,
            Change {
                action: "stage.invitation_revoked",
                subject: format!("review/{review_id}"),
                review_id: Some(review_id),
                before: None,
                after: Some(json!({"invitation": invitation})),
            },
            now,
        )?;
        Ok(())
    }

    pub fn add_finding(
        &self,
        conn: &mut DbConnection,
        call: &Call,
        input: NewFinding,
    ) -> Result<FindingView, ReviewError> {
        let (review_id, expected, actor, _, now) = call.parts();
        let loaded = store::load(conn, &self.catalog, review_id)?;
        check_version(&loaded, expected)?;
        if let Some(stage) = &input.stage
            && loaded.stage_row(stage).is_none()
        {
            return Err(ReviewError::Invalid(vec![
                crate::validation::FieldError::new(
                    "stage",
                    format!("no stage `{stage}` in this review"),
                ),
            ]));
        }
        let row = store::FindingRow {
            id: uuid::Uuid::now_v7().to_string(),
            review_id: review_id.to_owned(),
            stage_key: input.stage,
            severity: input
                .severity
                .map(|s| s.as_str())
                .unwrap_or("medium")
                .to_owned(),
            text: input.text.unwrap_or_default().trim().to_owned(),
            owner: input.owner,
            remediation_due: input.remediation_due.map(|d| d.naive_utc()),
            state: FindingState::Open.as_str().to_owned(),
            resolution: None,
            created_by: actor.id.clone(),
            created_at: now.naive_utc(),
            updated_at: now.naive_utc(),
            source: None,
        };
        diesel::insert_into(findings::table)
            .values(&row)
            .execute(conn)?;
        store::touch(conn, review_id, now)?;
        let view = store::finding_view(&row);
        audit::append(
            conn,
            actor,
            Change {
                action: "finding.opened",
                subject: format!("review/{review_id}"),
                review_id: Some(review_id),
                before: None,
                after: Some(serde_json::to_value(&view).unwrap_or_default()),
            },
            now,
        )?;
        Ok(view)
    }

    pub fn update_finding(
        &self,
        conn: &mut DbConnection,
        call: &Call,
        finding: &str,
        patch: FindingPatch,
    ) -> Result<FindingView, ReviewError> {
        let (review_id, expected, actor, _, now) = call.parts();
        let loaded = store::load(conn, &self.catalog, review_id)?;
        check_version(&loaded, expected)?;
        let before = loaded
            .findings
            .iter()
            .find(|f| f.id == finding)
            .cloned()
            .ok_or_else(|| ReviewError::FindingNotFound(finding.to_owned()))?;
        let mut after = before.clone();
        if let Some(state) = patch.state {
            if state != FindingState::Open
                && patch
                    .resolution
                    .as_deref()
                    .or(before.resolution.as_deref())
                    .is_none_or(|r| r.trim().is_empty())
            {
                return Err(ReviewError::Invalid(vec![
                    crate::validation::FieldError::new(
                        "resolution",
                        "is required to resolve or accept a finding",
                    ),
                ]));
            }
            after.state = state.as_str().to_owned();
        }
        if let Some(severity) = patch.severity {
            after.severity = severity.as_str().to_owned();
        }
        if let Some(owner) = patch.owner {
            after.owner = Some(owner);
        }
        if let Some(due) = patch.remediation_due {
            after.remediation_due = Some(due.naive_utc());
        }
        if let Some(resolution) = patch.resolution {
            after.resolution = Some(resolution);
        }
        after.updated_at = now.naive_utc();
        diesel::update(findings::table.filter(findings::id.eq(finding)))
            .set((
                findings::state.eq(&after.state),
                findings::severity.eq(&after.severity),
                findings::owner.eq(&after.owner),
                findings::remediation_due.eq(after.remediation_due),
                findings::resolution.eq(&after.resolution),
                findings::updated_at.eq(after.updated_at),
            ))
            .execute(conn)?;
        store::touch(conn, review_id, now)?;
        let view = store::finding_view(&after);
        audit::append(
            conn,
            actor,
            Change {
                action: "finding.updated",
                subject: format!("review/{review_id}"),
                review_id: Some(review_id),
                before: Some(
                    serde_json::to_value(store::finding_view(&before)).unwrap_or_default(),
                ),
                after: Some(serde_json::to_value(&view).unwrap_or_default()),
            },
            now,
        )?;
        Ok(view)
    }

    pub fn detail(
        &self,
        conn: &mut DbConnection,
        review_id: &str,
        now: DateTime<Utc>,
    ) -> Result<ReviewDetail, ReviewError> {
        let loaded = store::load(conn, &self.catalog, review_id)?;
        Ok(ReviewDetail {
            review: loaded.summary(now),
            answers: store::answer_views(&loaded),
            decisions: store::decision_views(&loaded),
            findings: loaded.findings.iter().map(store::finding_view).collect(),
            invitations: store::invitations(conn, &loaded)?,
            timeline: store::timeline(conn, review_id)?,
        })
    }

    /// One stage with its questionnaire; respondents see only their stage.
    pub fn stage_view(
        &self,
        conn: &mut DbConnection,
        review_id: &str,
        stage: &str,
        caller: &Caller,
        now: DateTime<Utc>,
    ) -> Result<StageView, ReviewError> {
        let loaded = store::load(conn, &self.catalog, review_id)?;
        if let Caller::Respondent { id, stage: scope } = caller {
            check_invitation(
                conn,
                &loaded,
                id.trim_start_matches("respondent:"),
                scope,
                now,
            )?;
        }
        stage_view_of(&loaded, stage, now)
    }
}

pub fn stage_view_of(
    loaded: &Loaded,
    stage: &str,
    now: DateTime<Utc>,
) -> Result<StageView, ReviewError> {
    let summary = loaded.summary(now);
    let definition = loaded
        .workflow
        .workflow
        .stage(stage)
        .ok_or_else(|| engine::Refusal::UnknownStage(stage.to_owned()))?;
    let stage_summary = summary
        .stages
        .into_iter()
        .find(|s| s.key == stage)
        .ok_or_else(|| engine::Refusal::UnknownStage(stage.to_owned()))?;
    let answers = loaded
        .engine_review()
        .stage(stage)
        .map(|s| s.answers.clone())
        .unwrap_or_default();
    Ok(StageView {
        review_id: loaded.row.id.clone(),
        subject: loaded.subject(),
        stage: stage_summary,
        questionnaire: definition.questionnaire.clone(),
        answers,
        version: loaded.row.version,
    })
}

fn respondent_invitation(
    stage_id: &str,
    email: &str,
    expires_at: DateTime<Utc>,
    by: &str,
    now: DateTime<Utc>,
) -> store::InvitationRow {
    store::InvitationRow {
        id: uuid::Uuid::now_v7().to_string(),
        stage_id: stage_id.to_owned(),
        email: email.to_owned(),
        expires_at: expires_at.naive_utc(),
        revoked_at: None,
        created_by: by.to_owned(),
        created_at: now.naive_utc(),
    }
}

/// Parses `expires_in` of an invitation.
pub fn invitation_lifetime(text: Option<&str>) -> Result<Option<TimeDelta>, String> {
    let Some(text) = text else { return Ok(None) };
    let delta = crate::workflow::file::parse_duration(text)
        .ok_or_else(|| format!("`{text}` is not a duration such as \"14d\""))?;
    if delta <= TimeDelta::zero() || delta > TimeDelta::days(MAX_INVITATION_DAYS) {
        return Err(format!(
            "must be longer than zero and at most {MAX_INVITATION_DAYS}d"
        ));
    }
    Ok(Some(delta))
}

/// A respondent's link works while its invitation is unrevoked and unexpired.
fn check_invitation(
    conn: &mut DbConnection,
    loaded: &Loaded,
    invitation: &str,
    stage: &str,
    now: DateTime<Utc>,
) -> Result<(), ReviewError> {
    let stage_id = loaded
        .stage_row(stage)
        .map(|s| s.id.clone())
        .unwrap_or_default();
    let row: Option<store::InvitationRow> = respondent_tokens::table
        .filter(respondent_tokens::id.eq(invitation))
        .filter(respondent_tokens::stage_id.eq(&stage_id))
        .select(store::InvitationRow::as_select())
        .first(conn)
        .optional()?;
    match row {
        None => Err(ReviewError::Unauthorized(
            "this invitation link is not valid".into(),
        )),
        Some(row) if row.revoked_at.is_some() => Err(ReviewError::Unauthorized(
            "this invitation link has been revoked".into(),
        )),
        Some(row) if store::utc(row.expires_at) <= now => Err(ReviewError::Unauthorized(
            "this invitation link has expired".into(),
        )),
        Some(_) => Ok(()),
    }
}
