//! Database code of reviews: rows, loading a review into the engine's state,
//! saving the engine's outcome, and the list query with its filters.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::{
    AnswerView, ApprovalView, DecisionView, FindingState, FindingView, InvitationView, ReviewError,
    ReviewSummary, StageSummary, TimelineEntry, WorkflowRef,
};
use crate::conditions::Conditions;
use crate::db::DbConnection;
use crate::schema::{
    answers, audit_events, decisions, findings, models, providers, respondent_tokens,
    review_stages, reviews, workflow_definitions,
};
use crate::workflow::engine::{
    Approval, Decision, Effect, Review, ReviewKind, ReviewState, StageRecord, StageState,
};
use crate::workflow::{Catalog, LoadedWorkflow, Severity, Tier};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = reviews)]
pub struct ReviewRow {
    pub id: String,
    pub provider_id: String,
    pub model_id: Option<String>,
    pub kind: String,
    pub workflow_id: String,
    pub workflow_version: i64,
    pub workflow_digest: String,
    pub state: String,
    pub tier: String,
    pub tier_reason: Option<String>,
    pub started_by: String,
    pub previous_review_id: Option<String>,
    pub conditions: Option<String>,
    pub decided_at: Option<NaiveDateTime>,
    pub valid_until: Option<NaiveDateTime>,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub started_by_email: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = review_stages)]
pub struct StageRow {
    pub id: String,
    pub review_id: String,
    pub stage_key: String,
    pub state: String,
    pub assignee: Option<String>,
    pub due_at: Option<NaiveDateTime>,
    pub escalation_level: i32,
    pub opened_at: Option<NaiveDateTime>,
    pub submitted_at: Option<NaiveDateTime>,
    pub submitted_by: Option<String>,
    pub closed_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub round: i32,
    pub answerers: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = answers)]
pub struct AnswerRow {
    pub id: String,
    pub stage_id: String,
    pub question_id: String,
    pub value: String,
    pub answered_by: String,
    pub carried_forward: bool,
    pub previous_value: Option<String>,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = decisions)]
pub struct DecisionRow {
    pub id: String,
    pub stage_id: String,
    pub decision: String,
    pub actor_sub: String,
    pub actor_email: Option<String>,
    pub comment: Option<String>,
    pub conditions: Option<String>,
    pub created_at: NaiveDateTime,
    pub round: i32,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = findings)]
pub struct FindingRow {
    pub id: String,
    pub review_id: String,
    pub stage_key: Option<String>,
    pub severity: String,
    pub text: String,
    pub owner: Option<String>,
    pub remediation_due: Option<NaiveDateTime>,
    pub state: String,
    pub resolution: Option<String>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub source: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = respondent_tokens)]
pub struct InvitationRow {
    pub id: String,
    pub stage_id: String,
    pub email: String,
    pub expires_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
}

pub fn utc(at: NaiveDateTime) -> DateTime<Utc> {
    at.and_utc()
}

fn opt_utc(at: Option<NaiveDateTime>) -> Option<DateTime<Utc>> {
    at.map(utc)
}

fn naive(at: Option<DateTime<Utc>>) -> Option<NaiveDateTime> {
    at.map(|a| a.naive_utc())
}

fn parse_conditions(text: &Option<String>) -> Option<Conditions> {
    text.as_deref().and_then(|t| serde_json::from_str(t).ok())
}

fn conditions_json(conditions: &Option<Conditions>) -> Option<String> {
    conditions
        .as_ref()
        .and_then(|c| serde_json::to_string(c).ok())
}

/// A review as stored, with what is needed to act on it and to show it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub row: ReviewRow,
    pub provider: String,
    pub model: Option<String>,
    pub workflow: Arc<LoadedWorkflow>,
    pub stages: Vec<StageRow>,
    pub answers: Vec<AnswerRow>,
    pub decisions: Vec<DecisionRow>,
    pub findings: Vec<FindingRow>,
}

impl Loaded {
    /// `provider` or `provider/model`.
    pub fn subject(&self) -> String {
        match &self.model {
            Some(model) => format!("{}/{model}", self.provider),
            None => self.provider.clone(),
        }
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
            .map(|row| {
                let answers = self
                    .answers
                    .iter()
                    .filter(|a| a.stage_id == row.id)
                    .map(|a| {
                        (
                            a.question_id.clone(),
                            serde_json::from_str(&a.value).unwrap_or(serde_json::Value::Null),
                        )
                    })
                    .collect();
                StageRecord {
                    key: row.stage_key.clone(),
                    state: StageState::parse(&row.state).unwrap_or(StageState::Blocked),
                    assignee: row.assignee.clone(),
                    due_at: opt_utc(row.due_at),
                    escalation_level: row.escalation_level,
                    round: row.round,
                    answers,
                    answerers: serde_json::from_str(&row.answerers).unwrap_or_default(),
                    approvals: approvals_of(&self.decisions, row),
                    opened_at: opt_utc(row.opened_at),
                    submitted_at: opt_utc(row.submitted_at),
                    submitted_by: row.submitted_by.clone(),
                    closed_at: opt_utc(row.closed_at),
                }
            })
            .collect();
        Review {
            kind: ReviewKind::parse(&self.row.kind).unwrap_or(ReviewKind::Initial),
            state: ReviewState::parse(&self.row.state).unwrap_or(ReviewState::InProgress),
            tier: Tier::parse(&self.row.tier).unwrap_or(Tier::Low),
            tier_reason: self.row.tier_reason.clone(),
            started_by: self.row.started_by.clone(),
            stages,
            conditions: parse_conditions(&self.row.conditions),
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
        summarize(
            &self.row,
            &self.provider,
            self.model.as_deref(),
            &self.workflow,
            &self.stages,
            &self.decisions,
            now,
        )
    }
}

/// Approvals of the stage's current round, oldest first.
fn approvals_of(decisions: &[DecisionRow], stage: &StageRow) -> Vec<Approval> {
    decisions
        .iter()
        .filter(|d| {
            d.stage_id == stage.id
                && d.round == stage.round
                && d.decision == Decision::Approve.as_str()
        })
        .map(|d| Approval {
            by: d.actor_sub.clone(),
            at: utc(d.created_at),
            conditions: parse_conditions(&d.conditions),
        })
        .collect()
}

fn summarize(
    row: &ReviewRow,
    provider: &str,
    model: Option<&str>,
    workflow: &LoadedWorkflow,
    stage_rows: &[StageRow],
    decision_rows: &[DecisionRow],
    now: DateTime<Utc>,
) -> ReviewSummary {
    let tier = Tier::parse(&row.tier).unwrap_or(Tier::Low);
    let stages = workflow
        .workflow
        .stages
        .iter()
        .filter_map(|definition| {
            let stage = stage_rows
                .iter()
                .find(|s| s.stage_key == definition.key && s.review_id == row.id)?;
            let state = StageState::parse(&stage.state).unwrap_or(StageState::Blocked);
            let due_at = opt_utc(stage.due_at);
            Some(StageSummary {
                key: definition.key.clone(),
                title: definition.title.clone(),
                state,
                answered_by: definition.answered_by.as_str().to_owned(),
                approver_role: definition.approver_role.as_str().to_owned(),
                assignee: stage.assignee.clone(),
                due_at,
                overdue: state.is_open() && due_at.is_some_and(|d| d < now),
                approvals_required: definition.approvals_for(tier),
                approvals: approvals_of(decision_rows, stage)
                    .into_iter()
                    .map(|a| ApprovalView {
                        by: a.by,
                        at: a.at,
                        conditions: a.conditions,
                    })
                    .collect(),
            })
        })
        .collect();
    ReviewSummary {
        id: row.id.clone(),
        kind: ReviewKind::parse(&row.kind).unwrap_or(ReviewKind::Initial),
        provider: provider.to_owned(),
        model: model.map(str::to_owned),
        workflow: WorkflowRef {
            id: row.workflow_id.clone(),
            version: row.workflow_version,
            digest: row.workflow_digest.clone(),
            title: workflow.workflow.title.clone(),
        },
        state: ReviewState::parse(&row.state).unwrap_or(ReviewState::InProgress),
        tier,
        tier_reason: row.tier_reason.clone(),
        started_by: row.started_by.clone(),
        created_at: utc(row.created_at),
        updated_at: utc(row.updated_at),
        decided_at: opt_utc(row.decided_at),
        valid_until: opt_utc(row.valid_until),
        conditions: parse_conditions(&row.conditions),
        version: row.version,
        stages,
    }
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

pub fn load(conn: &mut DbConnection, catalog: &Catalog, id: &str) -> Result<Loaded, ReviewError> {
    let row = reviews::table
        .filter(reviews::id.eq(id))
        .select(ReviewRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| ReviewError::NotFound(id.to_owned()))?;
    let provider = providers::table
        .filter(providers::id.eq(&row.provider_id))
        .select(providers::slug)
        .first::<String>(conn)?;
    let model = match &row.model_id {
        Some(model_id) => Some(
            models::table
                .filter(models::id.eq(model_id))
                .select(models::slug)
                .first::<String>(conn)?,
        ),
        None => None,
    };
    let workflow = pinned_workflow(conn, catalog, &row.workflow_digest)?;
    let stages: Vec<StageRow> = review_stages::table
        .filter(review_stages::review_id.eq(id))
        .select(StageRow::as_select())
        .load(conn)?;
    let stage_ids: Vec<String> = stages.iter().map(|s| s.id.clone()).collect();
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
    Ok(Loaded {
        row,
        provider,
        model,
        workflow,
        stages,
        answers,
        decisions,
        findings,
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
    let stages: Vec<StageRow> = review
        .stages
        .iter()
        .map(|record| stage_row(&row.id, uuid::Uuid::now_v7().to_string(), record, now, now))
        .collect();
    for stage in &stages {
        diesel::insert_into(review_stages::table)
            .values(stage)
            .execute(conn)?;
    }
    Ok(())
}

fn stage_row(
    review_id: &str,
    id: String,
    record: &StageRecord,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StageRow {
    StageRow {
        id,
        review_id: review_id.to_owned(),
        stage_key: record.key.clone(),
        state: record.state.as_str().to_owned(),
        assignee: record.assignee.clone(),
        due_at: naive(record.due_at),
        escalation_level: record.escalation_level,
        opened_at: naive(record.opened_at),
        submitted_at: naive(record.submitted_at),
        submitted_by: record.submitted_by.clone(),
        closed_at: naive(record.closed_at),
        created_at: created_at.naive_utc(),
        updated_at: now.naive_utc(),
        round: record.round,
        answerers: serde_json::to_string(&record.answerers).unwrap_or_else(|_| "[]".into()),
    }
}

/// Bumps the review's version; every change to a review does.
pub fn touch(conn: &mut DbConnection, id: &str, now: DateTime<Utc>) -> QueryResult<()> {
    diesel::update(reviews::table.filter(reviews::id.eq(id)))
        .set((
            reviews::version.eq(reviews::version + 1),
            reviews::updated_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    Ok(())
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
    diesel::update(reviews::table.filter(reviews::id.eq(&loaded.row.id)))
        .set((
            reviews::state.eq(after.state.as_str()),
            reviews::tier.eq(after.tier.as_str()),
            reviews::tier_reason.eq(&after.tier_reason),
            reviews::conditions.eq(conditions_json(&after.conditions)),
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
                review_stages::state.eq(&updated.state),
                review_stages::assignee.eq(&updated.assignee),
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
            save_answers(conn, &row.id, &old_answers, &record.answers, actor, now)?;
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
                diesel::insert_into(decisions::table)
                    .values(&DecisionRow {
                        id: uuid::Uuid::now_v7().to_string(),
                        stage_id: row.id.clone(),
                        decision: decision.as_str().to_owned(),
                        actor_sub: by.clone(),
                        actor_email: actor_email.map(str::to_owned),
                        comment: comment.clone(),
                        conditions: conditions_json(conditions),
                        created_at: now.naive_utc(),
                        round: *round,
                    })
                    .execute(conn)?;
            }
            Effect::FindingOpened {
                source,
                stage,
                severity,
                text,
            } => {
                diesel::insert_into(findings::table)
                    .values(&FindingRow {
                        id: uuid::Uuid::now_v7().to_string(),
                        review_id: loaded.row.id.clone(),
                        stage_key: Some(stage.clone()),
                        severity: severity.as_str().to_owned(),
                        text: text.clone(),
                        owner: None,
                        remediation_due: None,
                        state: FindingState::Open.as_str().to_owned(),
                        resolution: None,
                        created_by: "system:risk-rules".to_owned(),
                        created_at: now.naive_utc(),
                        updated_at: now.naive_utc(),
                        source: Some(source.clone()),
                    })
                    .execute(conn)?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn save_answers(
    conn: &mut DbConnection,
    stage_id: &str,
    old: &BTreeMap<String, serde_json::Value>,
    new: &BTreeMap<String, serde_json::Value>,
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
        let text = value.to_string();
        let updated = diesel::update(
            answers::table
                .filter(answers::stage_id.eq(stage_id))
                .filter(answers::question_id.eq(question)),
        )
        .set((
            answers::value.eq(&text),
            answers::answered_by.eq(actor),
            answers::carried_forward.eq(false),
            answers::updated_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
        if updated == 0 {
            diesel::insert_into(answers::table)
                .values(&AnswerRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    stage_id: stage_id.to_owned(),
                    question_id: question.clone(),
                    value: text,
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
    review_id: &str,
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
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&answer.value) else {
                continue;
            };
            if crate::workflow::answers::check_value(question, &value).is_err() {
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

pub fn answer_views(loaded: &Loaded) -> BTreeMap<String, BTreeMap<String, AnswerView>> {
    let mut out: BTreeMap<String, BTreeMap<String, AnswerView>> = BTreeMap::new();
    for answer in &loaded.answers {
        let Some(stage) = loaded.stages.iter().find(|s| s.id == answer.stage_id) else {
            continue;
        };
        let value: serde_json::Value =
            serde_json::from_str(&answer.value).unwrap_or(serde_json::Value::Null);
        let previous_value = answer
            .previous_value
            .as_deref()
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
            .filter(|previous| *previous != value);
        out.entry(stage.stage_key.clone()).or_default().insert(
            answer.question_id.clone(),
            AnswerView {
                value,
                answered_by: answer.answered_by.clone(),
                updated_at: utc(answer.updated_at),
                carried_forward: answer.carried_forward,
                previous_value,
            },
        );
    }
    out
}

pub fn decision_views(loaded: &Loaded) -> Vec<DecisionView> {
    loaded
        .decisions
        .iter()
        .filter_map(|d| {
            let stage = loaded.stages.iter().find(|s| s.id == d.stage_id)?;
            Some(DecisionView {
                stage: stage.stage_key.clone(),
                decision: Decision::parse(&d.decision)?,
                by: d.actor_sub.clone(),
                comment: d.comment.clone(),
                conditions: parse_conditions(&d.conditions),
                round: d.round,
                at: utc(d.created_at),
            })
        })
        .collect()
}

pub fn finding_view(row: &FindingRow) -> FindingView {
    FindingView {
        id: row.id.clone(),
        stage: row.stage_key.clone(),
        severity: Severity::parse(&row.severity).unwrap_or(Severity::Medium),
        text: row.text.clone(),
        owner: row.owner.clone(),
        remediation_due: opt_utc(row.remediation_due),
        state: FindingState::parse(&row.state).unwrap_or(FindingState::Open),
        resolution: row.resolution.clone(),
        source: row.source.as_ref().map(|s| format!("rule:{s}")),
        created_by: row.created_by.clone(),
        created_at: utc(row.created_at),
        updated_at: utc(row.updated_at),
    }
}

pub fn invitations(conn: &mut DbConnection, loaded: &Loaded) -> QueryResult<Vec<InvitationView>> {
    let stage_ids: Vec<String> = loaded.stages.iter().map(|s| s.id.clone()).collect();
    let rows: Vec<InvitationRow> = respondent_tokens::table
        .filter(respondent_tokens::stage_id.eq_any(&stage_ids))
        .select(InvitationRow::as_select())
        .order(respondent_tokens::created_at.asc())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let stage = loaded.stages.iter().find(|s| s.id == r.stage_id)?;
            Some(InvitationView {
                id: r.id,
                stage: stage.stage_key.clone(),
                email: r.email,
                expires_at: utc(r.expires_at),
                revoked_at: opt_utc(r.revoked_at),
                created_by: r.created_by,
                created_at: utc(r.created_at),
            })
        })
        .collect())
}

pub fn timeline(conn: &mut DbConnection, review_id: &str) -> QueryResult<Vec<TimelineEntry>> {
    let rows: Vec<(NaiveDateTime, String, String, Option<String>)> = audit_events::table
        .filter(audit_events::review_id.eq(review_id))
        .order(audit_events::seq.asc())
        .select((
            audit_events::occurred_at,
            audit_events::actor,
            audit_events::action,
            audit_events::after_data,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(at, actor, action, detail)| TimelineEntry {
            at: utc(at),
            actor,
            action,
            detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
        })
        .collect())
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
}

const OPEN_STATES: [&str; 2] = ["awaiting_answers", "in_review"];

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
        query = query.filter(reviews::state.eq(state.as_str()));
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
                .filter(review_stages::assignee.eq(assignee.clone()))
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
            .filter(reviews::state.eq_any([
                ReviewState::Approved.as_str(),
                ReviewState::ApprovedWithConditions.as_str(),
            ]))
            .filter(reviews::valid_until.ge(now.naive_utc()))
            .filter(reviews::valid_until.le(before.naive_utc()));
    }
    let rows: Vec<(ReviewRow, String, Option<String>)> = query.load(conn)?;
    let ids: Vec<String> = rows.iter().map(|(r, _, _)| r.id.clone()).collect();
    let stages: Vec<StageRow> = review_stages::table
        .filter(review_stages::review_id.eq_any(&ids))
        .select(StageRow::as_select())
        .load(conn)?;
    let stage_ids: Vec<String> = stages.iter().map(|s| s.id.clone()).collect();
    let approvals: Vec<DecisionRow> = decisions::table
        .filter(decisions::stage_id.eq_any(&stage_ids))
        .filter(decisions::decision.eq(Decision::Approve.as_str()))
        .select(DecisionRow::as_select())
        .order((decisions::created_at.asc(), decisions::id.asc()))
        .load(conn)?;
    let mut workflows: HashMap<String, Arc<LoadedWorkflow>> = HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for (row, provider, model) in rows {
        let workflow = match workflows.get(&row.workflow_digest) {
            Some(w) => w.clone(),
            None => {
                let w = pinned_workflow(conn, catalog, &row.workflow_digest)?;
                workflows.insert(row.workflow_digest.clone(), w.clone());
                w
            }
        };
        out.push(summarize(
            &row,
            &provider,
            model.as_deref(),
            &workflow,
            &stages,
            &approvals,
            now,
        ));
    }
    Ok(out)
}

/// The in-progress review of a subject, if any.
pub fn open_review_of(
    conn: &mut DbConnection,
    provider_id: &str,
    model_id: Option<&str>,
) -> QueryResult<Option<String>> {
    let mut query = reviews::table
        .filter(reviews::provider_id.eq(provider_id))
        .filter(reviews::state.eq(ReviewState::InProgress.as_str()))
        .select(reviews::id)
        .into_boxed();
    query = match model_id {
        Some(model) => query.filter(reviews::model_id.eq(model.to_owned())),
        None => query.filter(reviews::model_id.is_null()),
    };
    query.first(conn).optional()
}
