//! Database code of reviews: their rows, loading a review (with its pinned
//! workflow) into what the engine and the views read, saving the engine's
//! outcome, and the list query with its filters. What the API shows is built
//! from it in [`super::views`]; changes are made by [`super::service`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;

use super::{FindingState, ReviewError, ReviewSummary};
use crate::conditions::Conditions;
use crate::db::{DbConnection, Json};
use crate::ids::{
    FindingId, InvitationId, ModelId, ModelSlug, ProviderId, ProviderSlug, ReviewId, StageId,
    StageKey,
};
use crate::schema::{
    answers, audit_events, decisions, findings, models, providers, question_comments,
    respondent_tokens, review_stages, reviews, workflow_definitions,
};
use crate::workflow::engine::{
    Approval, Decision, Duty, Effect, Review, ReviewKind, ReviewState, StageRecord, StageState,
};
use crate::workflow::{Catalog, LoadedWorkflow, Severity, Tier};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = reviews)]
pub struct ReviewRow {
    pub id: ReviewId,
    pub provider_id: ProviderId,
    pub model_id: Option<ModelId>,
    pub kind: ReviewKind,
    pub workflow_id: String,
    pub workflow_version: i64,
    pub workflow_digest: String,
    pub state: ReviewState,
    pub tier: Tier,
    pub tier_reason: Option<String>,
    pub started_by: String,
    pub previous_review_id: Option<ReviewId>,
    pub conditions: Option<Json<Conditions>>,
    pub decided_at: Option<NaiveDateTime>,
    pub valid_until: Option<NaiveDateTime>,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub started_by_email: Option<String>,
    /// When the sweep recorded that the approval lapsed (`status.expired`).
    pub expired_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = review_stages)]
pub struct StageRow {
    pub id: StageId,
    pub review_id: ReviewId,
    pub stage_key: StageKey,
    pub state: StageState,
    /// Who is assigned to answer the stage.
    pub answer_assignee: Option<String>,
    pub due_at: Option<NaiveDateTime>,
    pub escalation_level: i32,
    pub opened_at: Option<NaiveDateTime>,
    pub submitted_at: Option<NaiveDateTime>,
    pub submitted_by: Option<String>,
    pub closed_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub round: i32,
    pub answerers: Json<BTreeSet<String>>,
    /// Who is assigned to decide the stage.
    pub decide_assignee: Option<String>,
}

impl StageRow {
    /// Who is assigned to what the stage waits on now: deciding while in
    /// review, answering before.
    pub fn assignee(&self) -> Option<&str> {
        Duty::waited_on(self.state).pick((
            self.answer_assignee.as_deref(),
            self.decide_assignee.as_deref(),
        ))
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = answers)]
pub struct AnswerRow {
    pub id: String,
    pub stage_id: StageId,
    pub question_id: String,
    pub value: Json<Value>,
    pub answered_by: String,
    pub carried_forward: bool,
    pub previous_value: Option<Json<Value>>,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = decisions)]
pub struct DecisionRow {
    pub id: String,
    pub stage_id: StageId,
    pub decision: Decision,
    pub actor_sub: String,
    pub actor_email: Option<String>,
    pub comment: Option<String>,
    pub conditions: Option<Json<Conditions>>,
    pub created_at: NaiveDateTime,
    pub round: i32,
    /// The stage's answers when changes were requested (only then).
    pub answers_then: Option<Json<BTreeMap<String, Value>>>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = findings)]
pub struct FindingRow {
    pub id: FindingId,
    pub review_id: ReviewId,
    pub stage_key: Option<StageKey>,
    pub severity: Severity,
    pub text: String,
    pub owner: Option<String>,
    pub remediation_due: Option<NaiveDateTime>,
    pub state: FindingState,
    pub resolution: Option<String>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub source: Option<String>,
    /// Who resolved or accepted the finding.
    pub resolved_by: Option<String>,
    /// The answer that made a risk rule raise it.
    pub raised_by_value: Option<Json<Value>>,
}

impl FindingRow {
    /// The question whose answer raised it, when a risk rule did
    /// (`source` is `<stage>:<question>:<rule>`).
    pub fn raising_question(&self) -> Option<(&str, &str)> {
        let mut parts = self.source.as_deref()?.split(':');
        Some((parts.next()?, parts.next()?))
    }
}

/// A reviewer's comment on one question of a stage.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = question_comments)]
pub struct CommentRow {
    pub id: String,
    pub stage_id: StageId,
    pub question_id: String,
    pub body: String,
    pub author: String,
    /// The stage's round when it was left.
    pub round: i32,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = respondent_tokens)]
pub struct InvitationRow {
    pub id: InvitationId,
    pub stage_id: StageId,
    pub email: String,
    pub expires_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
}

pub fn utc(at: NaiveDateTime) -> DateTime<Utc> {
    at.and_utc()
}

pub fn opt_utc(at: Option<NaiveDateTime>) -> Option<DateTime<Utc>> {
    at.map(utc)
}

fn naive(at: Option<DateTime<Utc>>) -> Option<NaiveDateTime> {
    at.map(|a| a.naive_utc())
}

/// A review as stored, with what is needed to act on it and to show it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub row: ReviewRow,
    pub provider: ProviderSlug,
    pub model: Option<ModelSlug>,
    /// The provider's and the model's display names: what emails say.
    pub provider_name: String,
    pub model_name: Option<String>,
    pub workflow: Arc<LoadedWorkflow>,
    pub stages: Vec<StageRow>,
    pub answers: Vec<AnswerRow>,
    pub decisions: Vec<DecisionRow>,
    pub findings: Vec<FindingRow>,
    /// Reviewers' comments on single questions, oldest first.
    pub comments: Vec<CommentRow>,
}

impl Loaded {
    /// `provider` or `provider/model`.
    pub fn subject(&self) -> String {
        match &self.model {
            Some(model) => format!("{}/{model}", self.provider),
            None => self.provider.to_string(),
        }
    }

    /// The provider or model by its display names, as people read it:
    /// `Orion 7 by Acme AI`, or `Acme AI` for a provider.
    pub fn named(&self) -> String {
        crate::notify::messages::named(&self.provider_name, self.model_name.as_deref())
    }

    pub fn stage_row(&self, key: &str) -> Option<&StageRow> {
        self.stages.iter().find(|s| s.stage_key == key)
    }

    /// The engine's view of this review.
    pub fn engine_review(&self) -> Review {
        let stages = self
            .workflow
            .workflow
            .stages
            .iter()
            .filter_map(|definition| self.stage_row(&definition.key))
            .map(|row| StageRecord {
                key: row.stage_key.clone(),
                state: row.state,
                answer_assignee: row.answer_assignee.clone(),
                decide_assignee: row.decide_assignee.clone(),
                due_at: opt_utc(row.due_at),
                escalation_level: row.escalation_level,
                round: row.round,
                answers: self
                    .answers
                    .iter()
                    .filter(|a| a.stage_id == row.id)
                    .map(|a| (a.question_id.clone(), a.value.get().clone()))
                    .collect(),
                answerers: row.answerers.get().clone(),
                approvals: approvals_of(&self.decisions, row),
                opened_at: opt_utc(row.opened_at),
                submitted_at: opt_utc(row.submitted_at),
                submitted_by: row.submitted_by.clone(),
                closed_at: opt_utc(row.closed_at),
            })
            .collect();
        Review {
            kind: self.row.kind,
            state: self.row.state,
            tier: self.row.tier,
            tier_reason: self.row.tier_reason.clone(),
            started_by: self.row.started_by.clone(),
            stages,
            conditions: self.row.conditions.as_ref().map(|c| c.get().clone()),
            decided_at: opt_utc(self.row.decided_at),
            valid_until: opt_utc(self.row.valid_until),
            finding_sources: self
                .findings
                .iter()
                .filter_map(|f| f.source.clone())
                .collect(),
        }
    }

    pub fn summary(&self, now: DateTime<Utc>) -> ReviewSummary {
        let summary = super::views::summarize(
            &self.row,
            &self.provider,
            self.model.as_ref(),
            &self.workflow,
            &self.stages,
            &self.decisions,
            now,
        );
        ReviewSummary {
            warnings: super::views::declared_use_excluded(self),
            ..summary
        }
    }
}

/// Approvals of the stage's current round, oldest first.
pub fn approvals_of(decisions: &[DecisionRow], stage: &StageRow) -> Vec<Approval> {
    decisions
        .iter()
        .filter(|d| {
            d.stage_id == stage.id && d.round == stage.round && d.decision == Decision::Approve
        })
        .map(|d| Approval {
            by: d.actor_sub.clone(),
            at: utc(d.created_at),
            conditions: d.conditions.as_ref().map(|c| c.get().clone()),
        })
        .collect()
}

/// The definition a review pinned.
pub fn pinned_workflow(
    conn: &mut DbConnection,
    catalog: &Catalog,
    digest: &str,
) -> Result<Arc<LoadedWorkflow>, ReviewError> {
    let mut failure = None;
    let found = catalog.pinned(digest, || {
        match workflow_definitions::table
            .filter(workflow_definitions::digest.eq(digest))
            .select(workflow_definitions::source)
            .first::<String>(conn)
            .optional()
        {
            Ok(source) => source,
            Err(e) => {
                failure = Some(e);
                None
            }
        }
    });
    if let Some(error) = failure {
        return Err(error.into());
    }
    found.ok_or_else(|| {
        ReviewError::Internal(format!(
            "the workflow definition {digest} of this review is missing"
        ))
    })
}

/// The definition a review pinned, when already loaded (as reading the
/// review loads it).
pub fn pinned_workflow_of(catalog: &Catalog, digest: &str) -> Option<Arc<LoadedWorkflow>> {
    catalog.pinned(digest, || None)
}

/// Records the definition a new review pins, once per digest.
pub fn pin_workflow(
    conn: &mut DbConnection,
    workflow: &LoadedWorkflow,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let known = workflow_definitions::table
        .filter(workflow_definitions::digest.eq(&workflow.digest))
        .count()
        .get_result::<i64>(conn)?
        > 0;
    if !known {
        diesel::insert_into(workflow_definitions::table)
            .values((
                workflow_definitions::digest.eq(&workflow.digest),
                workflow_definitions::workflow_id.eq(&workflow.workflow.id),
                workflow_definitions::version.eq(workflow.workflow.version),
                workflow_definitions::source.eq(&workflow.source),
                workflow_definitions::created_at.eq(now.naive_utc()),
            ))
            .execute(conn)?;
    }
    Ok(())
}

pub fn load(
    conn: &mut DbConnection,
    catalog: &Catalog,
    id: &ReviewId,
) -> Result<Loaded, ReviewError> {
    let row = reviews::table
        .filter(reviews::id.eq(id))
        .select(ReviewRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| ReviewError::NotFound(id.to_string()))?;
    let (provider, provider_name) = providers::table
        .filter(providers::id.eq(&row.provider_id))
        .select((providers::slug, providers::name))
        .first::<(ProviderSlug, String)>(conn)?;
    let (model, model_name) = match &row.model_id {
        Some(model_id) => {
            let (slug, name) = models::table
                .filter(models::id.eq(model_id))
                .select((models::slug, models::name))
                .first::<(ModelSlug, String)>(conn)?;
            (Some(slug), Some(name))
        }
        None => (None, None),
    };
    let workflow = pinned_workflow(conn, catalog, &row.workflow_digest)?;
    let stages: Vec<StageRow> = review_stages::table
        .filter(review_stages::review_id.eq(id))
        .select(StageRow::as_select())
        .load(conn)?;
    let stage_ids: Vec<&StageId> = stages.iter().map(|s| &s.id).collect();
    let answers = answers::table
        .filter(answers::stage_id.eq_any(&stage_ids))
        .select(AnswerRow::as_select())
        .order(answers::question_id.asc())
        .load(conn)?;
    let decisions = decisions::table
        .filter(decisions::stage_id.eq_any(&stage_ids))
        .select(DecisionRow::as_select())
        .order((decisions::created_at.asc(), decisions::id.asc()))
        .load(conn)?;
    let findings = findings::table
        .filter(findings::review_id.eq(id))
        .select(FindingRow::as_select())
        .order((findings::created_at.asc(), findings::id.asc()))
        .load(conn)?;
    let comments = question_comments::table
        .filter(question_comments::stage_id.eq_any(&stage_ids))
        .select(CommentRow::as_select())
        .order((
            question_comments::created_at.asc(),
            question_comments::id.asc(),
        ))
        .load(conn)?;
    Ok(Loaded {
        row,
        provider,
        model,
        provider_name,
        model_name,
        workflow,
        stages,
        answers,
        decisions,
        findings,
        comments,
    })
}

/// Inserts a new review and its stages.
pub fn insert(
    conn: &mut DbConnection,
    row: &ReviewRow,
    review: &Review,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::insert_into(reviews::table)
        .values(row)
        .execute(conn)?;
    for record in &review.stages {
        let stage = stage_row(&row.id, StageId::generate(), record, now, now);
        diesel::insert_into(review_stages::table)
            .values(&stage)
            .execute(conn)?;
    }
    Ok(())
}

fn stage_row(
    review_id: &ReviewId,
    id: StageId,
    record: &StageRecord,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StageRow {
    StageRow {
        id,
        review_id: review_id.clone(),
        stage_key: record.key.clone(),
        state: record.state,
        answer_assignee: record.answer_assignee.clone(),
        decide_assignee: record.decide_assignee.clone(),
        due_at: naive(record.due_at),
        escalation_level: record.escalation_level,
        opened_at: naive(record.opened_at),
        submitted_at: naive(record.submitted_at),
        submitted_by: record.submitted_by.clone(),
        closed_at: naive(record.closed_at),
        created_at: created_at.naive_utc(),
        updated_at: now.naive_utc(),
        round: record.round,
        answerers: Json::new(record.answerers.clone()),
    }
}

/// Bumps the review's version; every change to a review does.
pub fn touch(conn: &mut DbConnection, id: &ReviewId, now: DateTime<Utc>) -> QueryResult<()> {
    diesel::update(reviews::table.filter(reviews::id.eq(id)))
        .set((
            reviews::version.eq(reviews::version + 1),
            reviews::updated_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Moves a stage's escalation level (the SLA sweep, past the levels it told).
pub fn set_escalation_level(
    conn: &mut DbConnection,
    stage: &StageId,
    level: i32,
) -> QueryResult<()> {
    diesel::update(review_stages::table.filter(review_stages::id.eq(stage)))
        .set(review_stages::escalation_level.eq(level))
        .execute(conn)
        .map(drop)
}

/// Writes the engine's outcome: the review, changed stages and answers,
/// decisions and findings. The caller writes the audit event and messages.
pub fn save(
    conn: &mut DbConnection,
    loaded: &Loaded,
    after: &Review,
    effects: &[Effect],
    actor: &str,
    actor_email: Option<&str>,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let before = loaded.engine_review();
    // A supplier's answers are credited to the invited contact, with the
    // invitation that admitted them.
    let credit = match (actor.strip_prefix("respondent:"), actor_email) {
        (Some(invitation), Some(email)) => format!("{email} (invitation {invitation})"),
        _ => actor.to_owned(),
    };
    diesel::update(reviews::table.filter(reviews::id.eq(&loaded.row.id)))
        .set((
            reviews::state.eq(after.state),
            reviews::tier.eq(after.tier),
            reviews::tier_reason.eq(&after.tier_reason),
            reviews::conditions.eq(after.conditions.clone().map(Json::new)),
            reviews::decided_at.eq(naive(after.decided_at)),
            reviews::valid_until.eq(naive(after.valid_until)),
            reviews::version.eq(loaded.row.version + 1),
            reviews::updated_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    for record in &after.stages {
        let Some(row) = loaded.stage_row(&record.key) else {
            continue;
        };
        let previous = before.stage(&record.key);
        if previous == Some(record) {
            continue;
        }
        let updated = stage_row(
            &loaded.row.id,
            row.id.clone(),
            record,
            utc(row.created_at),
            now,
        );
        diesel::update(review_stages::table.filter(review_stages::id.eq(&row.id)))
            .set((
                review_stages::state.eq(updated.state),
                review_stages::answer_assignee.eq(&updated.answer_assignee),
                review_stages::decide_assignee.eq(&updated.decide_assignee),
                review_stages::due_at.eq(updated.due_at),
                review_stages::escalation_level.eq(updated.escalation_level),
                review_stages::opened_at.eq(updated.opened_at),
                review_stages::submitted_at.eq(updated.submitted_at),
                review_stages::submitted_by.eq(&updated.submitted_by),
                review_stages::closed_at.eq(updated.closed_at),
                review_stages::updated_at.eq(updated.updated_at),
                review_stages::round.eq(updated.round),
                review_stages::answerers.eq(&updated.answerers),
            ))
            .execute(conn)?;
        let old_answers = previous.map(|p| p.answers.clone()).unwrap_or_default();
        if old_answers != record.answers {
            save_answers(conn, &row.id, &old_answers, &record.answers, &credit, now)?;
        }
    }
    for effect in effects {
        match effect {
            Effect::Decided {
                stage,
                decision,
                by,
                comment,
                conditions,
                round,
            } => {
                let Some(row) = loaded.stage_row(stage) else {
                    continue;
                };
                // What the next submission is compared with.
                let answers_then = (*decision == Decision::RequestChanges)
                    .then(|| before.stage(stage).map(|s| Json::new(s.answers.clone())))
                    .flatten();
                diesel::insert_into(decisions::table)
                    .values(&DecisionRow {
                        id: uuid::Uuid::now_v7().to_string(),
                        stage_id: row.id.clone(),
                        decision: *decision,
                        actor_sub: by.clone(),
                        actor_email: actor_email.map(str::to_owned),
                        comment: comment.clone(),
                        conditions: conditions.clone().map(Json::new),
                        created_at: now.naive_utc(),
                        round: *round,
                        answers_then,
                    })
                    .execute(conn)?;
            }
            Effect::FindingOpened {
                source,
                stage,
                severity,
                text,
            } => {
                let question = source.split(':').nth(1).unwrap_or_default();
                let raised_by_value = after
                    .stage(stage)
                    .and_then(|s| s.answers.get(question))
                    .map(|v| Json::new(v.clone()));
                insert_finding(
                    conn,
                    &FindingRow {
                        id: FindingId::generate(),
                        review_id: loaded.row.id.clone(),
                        stage_key: Some(stage.clone()),
                        severity: *severity,
                        text: text.clone(),
                        owner: None,
                        remediation_due: None,
                        state: FindingState::Open,
                        resolution: None,
                        created_by: "system:risk-rules".to_owned(),
                        created_at: now.naive_utc(),
                        updated_at: now.naive_utc(),
                        source: Some(source.clone()),
                        resolved_by: None,
                        raised_by_value,
                    },
                )?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn save_answers(
    conn: &mut DbConnection,
    stage_id: &StageId,
    old: &BTreeMap<String, Value>,
    new: &BTreeMap<String, Value>,
    actor: &str,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    for question in old.keys().filter(|q| !new.contains_key(*q)) {
        diesel::delete(
            answers::table
                .filter(answers::stage_id.eq(stage_id))
                .filter(answers::question_id.eq(question)),
        )
        .execute(conn)?;
    }
    for (question, value) in new {
        if old.get(question) == Some(value) {
            continue;
        }
        let value = Json::new(value.clone());
        let updated = diesel::update(
            answers::table
                .filter(answers::stage_id.eq(stage_id))
                .filter(answers::question_id.eq(question)),
        )
        .set((
            answers::value.eq(&value),
            answers::answered_by.eq(actor),
            answers::carried_forward.eq(false),
            answers::updated_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
        if updated == 0 {
            diesel::insert_into(answers::table)
                .values(&AnswerRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    stage_id: stage_id.clone(),
                    question_id: question.clone(),
                    value,
                    answered_by: actor.to_owned(),
                    carried_forward: false,
                    previous_value: None,
                    updated_at: now.naive_utc(),
                })
                .execute(conn)?;
        }
    }
    Ok(())
}

/// Copies the previous review's answers into a new review's stages: those
/// whose stage and question still exist and whose value the current question
/// still accepts. Each is marked carried forward, with the old value kept to
/// show what changes. Returns how many were carried.
pub fn carry_forward(
    conn: &mut DbConnection,
    previous: &Loaded,
    review_id: &ReviewId,
    workflow: &crate::workflow::Workflow,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    let stages: Vec<StageRow> = review_stages::table
        .filter(review_stages::review_id.eq(review_id))
        .select(StageRow::as_select())
        .load(conn)?;
    let mut carried = 0;
    for stage in &stages {
        let Some(definition) = workflow.stage(&stage.stage_key) else {
            continue;
        };
        let Some(old_stage) = previous.stage_row(&stage.stage_key) else {
            continue;
        };
        for answer in previous
            .answers
            .iter()
            .filter(|a| a.stage_id == old_stage.id)
        {
            let Some(question) = definition.question(&answer.question_id) else {
                continue;
            };
            if crate::workflow::answers::check_value(question, answer.value.get()).is_err() {
                continue;
            }
            diesel::insert_into(answers::table)
                .values(&AnswerRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    stage_id: stage.id.clone(),
                    question_id: answer.question_id.clone(),
                    value: answer.value.clone(),
                    answered_by: answer.answered_by.clone(),
                    carried_forward: true,
                    previous_value: Some(answer.value.clone()),
                    updated_at: now.naive_utc(),
                })
                .execute(conn)?;
            carried += 1;
        }
    }
    Ok(carried)
}

/// Records a reviewer's comment on a question.
pub fn insert_comment(conn: &mut DbConnection, row: &CommentRow) -> QueryResult<()> {
    diesel::insert_into(question_comments::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn insert_finding(conn: &mut DbConnection, row: &FindingRow) -> QueryResult<()> {
    diesel::insert_into(findings::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn update_finding(conn: &mut DbConnection, row: &FindingRow) -> QueryResult<()> {
    diesel::update(findings::table.filter(findings::id.eq(&row.id)))
        .set((
            findings::state.eq(row.state),
            findings::severity.eq(row.severity),
            findings::owner.eq(&row.owner),
            findings::remediation_due.eq(row.remediation_due),
            findings::resolution.eq(&row.resolution),
            findings::resolved_by.eq(&row.resolved_by),
            findings::updated_at.eq(row.updated_at),
        ))
        .execute(conn)
        .map(drop)
}

pub fn insert_invitation(conn: &mut DbConnection, row: &InvitationRow) -> QueryResult<()> {
    diesel::insert_into(respondent_tokens::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

/// Revokes an unrevoked invitation to one of `stages`; false when there is none.
pub fn revoke_invitation(
    conn: &mut DbConnection,
    id: &InvitationId,
    stages: &[StageId],
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let updated = diesel::update(
        respondent_tokens::table
            .filter(respondent_tokens::id.eq(id))
            .filter(respondent_tokens::stage_id.eq_any(stages))
            .filter(respondent_tokens::revoked_at.is_null()),
    )
    .set(respondent_tokens::revoked_at.eq(now.naive_utc()))
    .execute(conn)?;
    Ok(updated > 0)
}

/// The invitation `id` to `stage`, if there is one.
pub fn invitation(
    conn: &mut DbConnection,
    id: &InvitationId,
    stage: &StageId,
) -> QueryResult<Option<InvitationRow>> {
    respondent_tokens::table
        .filter(respondent_tokens::id.eq(id))
        .filter(respondent_tokens::stage_id.eq(stage))
        .select(InvitationRow::as_select())
        .first(conn)
        .optional()
}

/// Every invitation to a stage of the review, oldest first.
pub fn invitations(conn: &mut DbConnection, loaded: &Loaded) -> QueryResult<Vec<InvitationRow>> {
    let stage_ids: Vec<&StageId> = loaded.stages.iter().map(|s| &s.id).collect();
    respondent_tokens::table
        .filter(respondent_tokens::stage_id.eq_any(&stage_ids))
        .select(InvitationRow::as_select())
        .order(respondent_tokens::created_at.asc())
        .load(conn)
}

/// An audit event of a review: `(at, actor, action, after)`.
pub type TimelineRow = (NaiveDateTime, String, String, Option<String>);

/// The review's audit events, in chain order.
pub fn timeline(conn: &mut DbConnection, review_id: &ReviewId) -> QueryResult<Vec<TimelineRow>> {
    audit_events::table
        .filter(audit_events::review_id.eq(review_id.as_str()))
        .order(audit_events::seq.asc())
        .select((
            audit_events::occurred_at,
            audit_events::actor,
            audit_events::action,
            audit_events::after_data,
        ))
        .load(conn)
}

/// Filters of `GET /v1/reviews`, checked.
#[derive(Debug, Clone, Default)]
pub struct ReviewFilter {
    pub state: Option<ReviewState>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub stage: Option<String>,
    pub assignee: Option<String>,
    pub overdue: bool,
    pub expiring_before: Option<DateTime<Utc>>,
    /// Reviews this person started.
    pub started_by: Option<String>,
}

pub const OPEN_STATES: [StageState; 2] = [StageState::AwaitingAnswers, StageState::InReview];

/// A page of reviews, newest first; `after` is the last id of the previous page.
pub fn list(
    conn: &mut DbConnection,
    catalog: &Catalog,
    filter: &ReviewFilter,
    after: Option<&str>,
    limit: u32,
    now: DateTime<Utc>,
) -> Result<Vec<ReviewSummary>, ReviewError> {
    let mut query = reviews::table
        .inner_join(providers::table)
        .left_join(models::table)
        .select((
            ReviewRow::as_select(),
            providers::slug,
            models::slug.nullable(),
        ))
        .order(reviews::id.desc())
        .limit(i64::from(limit) + 1)
        .into_boxed();
    if let Some(state) = filter.state {
        query = query.filter(reviews::state.eq(state));
    }
    if let Some(provider) = &filter.provider {
        query = query.filter(providers::slug.eq(provider.clone()));
    }
    if let Some(model) = &filter.model {
        query = query.filter(models::slug.eq(model.clone()));
    }
    if let Some(after) = after {
        query = query.filter(reviews::id.lt(after.to_owned()));
    }
    if let Some(who) = &filter.started_by {
        query = query.filter(reviews::started_by.eq(who.clone()));
    }
    if let Some(stage) = &filter.stage {
        query = query.filter(diesel::dsl::exists(
            review_stages::table
                .filter(review_stages::review_id.eq(reviews::id))
                .filter(review_stages::stage_key.eq(stage.clone()))
                .filter(review_stages::state.eq_any(OPEN_STATES)),
        ));
    }
    if let Some(assignee) = &filter.assignee {
        query = query.filter(diesel::dsl::exists(
            review_stages::table
                .filter(review_stages::review_id.eq(reviews::id))
                .filter(
                    review_stages::answer_assignee
                        .eq(assignee.clone())
                        .or(review_stages::decide_assignee.eq(assignee.clone())),
                )
                .filter(review_stages::state.eq_any(OPEN_STATES)),
        ));
    }
    if filter.overdue {
        query = query.filter(diesel::dsl::exists(
            review_stages::table
                .filter(review_stages::review_id.eq(reviews::id))
                .filter(review_stages::state.eq_any(OPEN_STATES))
                .filter(review_stages::due_at.lt(now.naive_utc())),
        ));
    }
    if let Some(before) = filter.expiring_before {
        query = query
            .filter(
                reviews::state.eq_any([ReviewState::Approved, ReviewState::ApprovedWithConditions]),
            )
            .filter(reviews::valid_until.ge(now.naive_utc()))
            .filter(reviews::valid_until.le(before.naive_utc()));
    }
    let rows: Vec<(ReviewRow, ProviderSlug, Option<ModelSlug>)> = query.load(conn)?;
    let ids: Vec<&ReviewId> = rows.iter().map(|(r, _, _)| &r.id).collect();
    let stages: Vec<StageRow> = review_stages::table
        .filter(review_stages::review_id.eq_any(&ids))
        .select(StageRow::as_select())
        .load(conn)?;
    let stage_ids: Vec<&StageId> = stages.iter().map(|s| &s.id).collect();
    let approvals: Vec<DecisionRow> = decisions::table
        .filter(decisions::stage_id.eq_any(&stage_ids))
        .filter(decisions::decision.eq(Decision::Approve))
        .select(DecisionRow::as_select())
        .order((decisions::created_at.asc(), decisions::id.asc()))
        .load(conn)?;
    let mut workflows: HashMap<String, Arc<LoadedWorkflow>> = HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for (row, provider, model) in &rows {
        let workflow = match workflows.get(&row.workflow_digest) {
            Some(w) => w.clone(),
            None => {
                let w = pinned_workflow(conn, catalog, &row.workflow_digest)?;
                workflows.insert(row.workflow_digest.clone(), w.clone());
                w
            }
        };
        out.push(super::views::summarize(
            row,
            provider,
            model.as_ref(),
            &workflow,
            &stages,
            &approvals,
            now,
        ));
    }
    Ok(out)
}

/// An approval with its expiry, as the re-review sweep reads it.
#[derive(Debug, Clone, Queryable)]
pub struct ApprovalExpiry {
    pub id: ReviewId,
    pub provider_id: ProviderId,
    pub model_id: Option<ModelId>,
    pub workflow_digest: String,
    pub tier: Tier,
    pub valid_until: NaiveDateTime,
    /// When its lapse was recorded, if it was.
    pub expired_at: Option<NaiveDateTime>,
}

/// Every approval that has a `valid_until`.
pub fn approvals_with_expiry(conn: &mut DbConnection) -> QueryResult<Vec<ApprovalExpiry>> {
    reviews::table
        .filter(reviews::state.eq_any([ReviewState::Approved, ReviewState::ApprovedWithConditions]))
        .filter(reviews::valid_until.is_not_null())
        .select((
            reviews::id,
            reviews::provider_id,
            reviews::model_id,
            reviews::workflow_digest,
            reviews::tier,
            reviews::valid_until.assume_not_null(),
            reviews::expired_at,
        ))
        .load(conn)
}

/// Records that `review`'s approval lapsed at `at`, once: answers whether
/// this call recorded it (`false`: it was recorded already).
pub fn record_expiry(
    conn: &mut DbConnection,
    review: &ReviewId,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    let changed = diesel::update(reviews::table)
        .filter(reviews::id.eq(review))
        .filter(reviews::expired_at.is_null())
        .set(reviews::expired_at.eq(at))
        .execute(conn)?;
    Ok(changed == 1)
}

/// A decided review: `(id, provider, model, decided_at)`.
pub type DecidedReview = (ReviewId, ProviderId, Option<ModelId>, Option<NaiveDateTime>);

/// Every decided review.
pub fn decisions_by_subject(conn: &mut DbConnection) -> QueryResult<Vec<DecidedReview>> {
    reviews::table
        .filter(reviews::state.eq_any(ReviewState::DECIDED))
        .select((
            reviews::id,
            reviews::provider_id,
            reviews::model_id,
            reviews::decided_at,
        ))
        .load(conn)
}

/// The subjects (provider, model) with a review in progress.
pub fn subjects_in_progress(
    conn: &mut DbConnection,
) -> QueryResult<Vec<(ProviderId, Option<ModelId>)>> {
    reviews::table
        .filter(reviews::state.eq(ReviewState::InProgress))
        .select((reviews::provider_id, reviews::model_id))
        .load(conn)
}

/// An open stage with what the lists of work need of its review.
#[derive(Debug, Clone)]
pub struct OpenStage {
    pub key: StageKey,
    pub state: StageState,
    pub review_id: ReviewId,
    /// Who is assigned to what it waits on now: answering while awaiting
    /// answers, deciding while in review.
    pub assignee: Option<String>,
    pub due_at: Option<NaiveDateTime>,
    pub workflow_digest: String,
    pub provider: ProviderSlug,
    pub model: Option<ModelSlug>,
    /// The display names of the provider and model: what emails say.
    pub provider_name: String,
    pub model_name: Option<String>,
    pub started_by: String,
    pub started_by_email: Option<String>,
    pub answerers: Json<BTreeSet<String>>,
    /// Who approved it in this round (by `sub` and address): none of them
    /// may give its next approval.
    pub approved_by: Vec<Approver>,
}

/// Who approved a stage: their `sub`, and their address when known.
pub type Approver = (String, Option<String>);

/// An [`OpenStage`] as its query reads it, before its approvals.
#[derive(Queryable)]
struct OpenStageRow {
    id: String,
    round: i32,
    key: StageKey,
    state: StageState,
    review_id: ReviewId,
    answer_assignee: Option<String>,
    decide_assignee: Option<String>,
    due_at: Option<NaiveDateTime>,
    workflow_digest: String,
    provider: ProviderSlug,
    model: Option<ModelSlug>,
    provider_name: String,
    model_name: Option<String>,
    started_by: String,
    started_by_email: Option<String>,
    answerers: Json<BTreeSet<String>>,
}

impl OpenStage {
    /// The provider or model by its display names, as emails name it.
    pub fn named(&self) -> String {
        crate::notify::messages::named(&self.provider_name, self.model_name.as_deref())
    }

    /// `provider` or `provider/model`.
    pub fn subject(&self) -> String {
        match &self.model {
            Some(model) => format!("{}/{model}", self.provider),
            None => self.provider.to_string(),
        }
    }
}

/// Which open stages a person's list of work may hold: those awaiting the
/// answers of one of `assignees` or in review for one of them to decide,
/// and those with nobody assigned to what they wait on whose key they
/// answer (while awaiting answers) or decide (while in review). The caller
/// still checks each against its review's workflow; this keeps the rows
/// read to the few that can matter.
#[derive(Debug, Clone, Default)]
pub struct StageScope {
    pub assignees: Vec<String>,
    pub answer: Vec<StageKey>,
    pub decide: Vec<StageKey>,
}

/// The open stages of every review (of those in `scope`), with their
/// subjects, the earliest due first.
pub fn open_stages(
    conn: &mut DbConnection,
    scope: Option<&StageScope>,
) -> QueryResult<Vec<OpenStage>> {
    let mut query = review_stages::table
        .inner_join(reviews::table.inner_join(providers::table))
        .left_join(models::table.on(reviews::model_id.eq(models::id.nullable())))
        .filter(review_stages::state.eq_any(OPEN_STATES))
        .select((
            review_stages::id,
            review_stages::round,
            review_stages::stage_key,
            review_stages::state,
            reviews::id,
            review_stages::answer_assignee,
            review_stages::decide_assignee,
            review_stages::due_at,
            reviews::workflow_digest,
            providers::slug,
            models::slug.nullable(),
            providers::name,
            models::name.nullable(),
            reviews::started_by,
            reviews::started_by_email,
            review_stages::answerers,
        ))
        .order((review_stages::due_at.asc(), review_stages::id.asc()))
        .into_boxed();
    if let Some(scope) = scope {
        let awaiting = review_stages::state.eq(StageState::AwaitingAnswers);
        let reviewing = review_stages::state.eq(StageState::InReview);
        let to_answer = awaiting.and(
            review_stages::answer_assignee
                .eq_any(scope.assignees.clone())
                .or(review_stages::answer_assignee
                    .is_null()
                    .and(review_stages::stage_key.eq_any(scope.answer.clone()))),
        );
        // A stage in review whose decider started its review, or has
        // approved it already and it needs another approval, is the
        // approvers' again: segregation of duties bars that decider.
        let decider_barred = review_stages::decide_assignee
            .eq(reviews::started_by.nullable())
            .or(diesel::dsl::exists(
                decisions::table
                    .filter(decisions::stage_id.eq(review_stages::id))
                    .filter(decisions::round.eq(review_stages::round))
                    .filter(decisions::decision.eq(Decision::Approve))
                    .filter(
                        decisions::actor_sub
                            .nullable()
                            .eq(review_stages::decide_assignee),
                    ),
            ));
        let to_decide = reviewing.and(
            review_stages::decide_assignee
                .eq_any(scope.assignees.clone())
                .or(review_stages::stage_key
                    .eq_any(scope.decide.clone())
                    .and(review_stages::decide_assignee.is_null().or(decider_barred))),
        );
        query = query.filter(to_answer.or(to_decide));
    }
    let rows: Vec<OpenStageRow> = query.load(conn)?;
    // Who approved each stage in review in its current round, in one query.
    let in_review: Vec<&str> = rows
        .iter()
        .filter(|r| r.state == StageState::InReview)
        .map(|r| r.id.as_str())
        .collect();
    let mut approvals: HashMap<(String, i32), Vec<Approver>> = HashMap::new();
    if !in_review.is_empty() {
        let found: Vec<(String, i32, String, Option<String>)> = decisions::table
            .filter(decisions::stage_id.eq_any(&in_review))
            .filter(decisions::decision.eq(Decision::Approve))
            .select((
                decisions::stage_id,
                decisions::round,
                decisions::actor_sub,
                decisions::actor_email,
            ))
            .load(conn)?;
        for (stage, round, sub, email) in found {
            approvals
                .entry((stage, round))
                .or_default()
                .push((sub, email));
        }
    }
    Ok(rows
        .into_iter()
        .map(|row| OpenStage {
            approved_by: approvals.remove(&(row.id, row.round)).unwrap_or_default(),
            key: row.key,
            state: row.state,
            review_id: row.review_id,
            assignee: Duty::waited_on(row.state).pick((row.answer_assignee, row.decide_assignee)),
            due_at: row.due_at,
            workflow_digest: row.workflow_digest,
            provider: row.provider,
            model: row.model,
            provider_name: row.provider_name,
            model_name: row.model_name,
            started_by: row.started_by,
            started_by_email: row.started_by_email,
            answerers: row.answerers,
        })
        .collect())
}

/// The workflow definitions the reviews in progress pinned.
pub fn digests_in_progress(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    reviews::table
        .filter(reviews::state.eq(ReviewState::InProgress))
        .select(reviews::workflow_digest)
        .distinct()
        .load(conn)
}

/// An invitation whose supplier has yet to answer.
#[derive(Debug, Clone, Queryable)]
pub struct PendingInvitation {
    pub id: InvitationId,
    pub email: String,
    pub expires_at: NaiveDateTime,
    pub stage_key: StageKey,
    pub due_at: Option<NaiveDateTime>,
    pub review_id: ReviewId,
    pub provider: ProviderSlug,
    pub model: Option<ModelSlug>,
}

/// Unrevoked, unexpired invitations to stages still awaiting answers, of
/// the reviews `started_by` started (of every review with `None`).
pub fn pending_invitations(
    conn: &mut DbConnection,
    started_by: Option<&str>,
    now: DateTime<Utc>,
) -> QueryResult<Vec<PendingInvitation>> {
    let mut query = respondent_tokens::table
        .inner_join(review_stages::table.inner_join(reviews::table.inner_join(providers::table)))
        .left_join(models::table.on(reviews::model_id.eq(models::id.nullable())))
        .filter(respondent_tokens::revoked_at.is_null())
        .filter(respondent_tokens::expires_at.gt(now.naive_utc()))
        .filter(review_stages::state.eq(StageState::AwaitingAnswers))
        .select((
            respondent_tokens::id,
            respondent_tokens::email,
            respondent_tokens::expires_at,
            review_stages::stage_key,
            review_stages::due_at,
            reviews::id,
            providers::slug,
            models::slug.nullable(),
        ))
        .order(review_stages::due_at.asc())
        .into_boxed();
    if let Some(who) = started_by {
        query = query.filter(reviews::started_by.eq(who.to_owned()));
    }
    query.load(conn)
}

/// An unrevoked invitation to a stage still awaiting its supplier's
/// answers, with what chasing the supplier needs.
#[derive(Debug, Clone, Queryable)]
pub struct ChasedInvitation {
    pub id: InvitationId,
    pub email: String,
    pub expires_at: NaiveDateTime,
    pub stage_id: StageId,
    pub due_at: Option<NaiveDateTime>,
    /// Who saved answers in the stage, ever (`respondent:<invitation>` for
    /// a supplier's link).
    pub answerers: Json<BTreeSet<String>>,
    pub review_id: ReviewId,
}

/// The invitations whose suppliers may need chasing: unrevoked, to stages
/// awaiting answers of reviews in progress, the oldest first.
pub fn invitations_to_chase(conn: &mut DbConnection) -> QueryResult<Vec<ChasedInvitation>> {
    respondent_tokens::table
        .inner_join(review_stages::table.inner_join(reviews::table))
        .filter(respondent_tokens::revoked_at.is_null())
        .filter(review_stages::state.eq(StageState::AwaitingAnswers))
        .filter(reviews::state.eq(ReviewState::InProgress))
        .select((
            respondent_tokens::id,
            respondent_tokens::email,
            respondent_tokens::expires_at,
            review_stages::id,
            review_stages::due_at,
            review_stages::answerers,
            reviews::id,
        ))
        .order((
            respondent_tokens::created_at.asc(),
            respondent_tokens::id.asc(),
        ))
        .load(conn)
}

/// Open stages past their due time, `(stage, review)`, longest overdue first.
pub fn overdue_stages(
    conn: &mut DbConnection,
    now: DateTime<Utc>,
) -> QueryResult<Vec<(StageId, ReviewId)>> {
    review_stages::table
        .filter(review_stages::state.eq_any(OPEN_STATES))
        .filter(review_stages::due_at.le(now.naive_utc()))
        .select((review_stages::id, review_stages::review_id))
        .order(review_stages::due_at.asc())
        .load(conn)
}

/// The in-progress review of a subject, if any.
pub fn open_review_of(
    conn: &mut DbConnection,
    provider_id: &ProviderId,
    model_id: Option<&ModelId>,
) -> QueryResult<Option<ReviewId>> {
    let mut query = reviews::table
        .filter(reviews::provider_id.eq(provider_id))
        .filter(reviews::state.eq(ReviewState::InProgress))
        .select(reviews::id)
        .into_boxed();
    query = match model_id {
        Some(model) => query.filter(reviews::model_id.eq(model.clone())),
        None => query.filter(reviews::model_id.is_null()),
    };
    query.first(conn).optional()
}
