//! Reviews: one run of a workflow for a provider or one of its models. The
//! state machine is [`crate::workflow::engine`]; this module loads and saves
//! its state ([`store`]), shows it ([`views`]), runs each change as one unit
//! of work with its audit event and outbox messages ([`service`]), and
//! serves it over HTTP ([`routes`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::conditions::Conditions;
use crate::ids::{FindingId, InvitationId, ModelSlug, ProviderSlug, ReviewId, StageKey};
use crate::workflow::engine::{Decision, ReviewKind, ReviewState, StageState};
use crate::workflow::{Questionnaire, Severity, Tier};

pub mod invite;
pub mod openings;
pub mod portfolio;
pub mod routes;
pub mod scope;
pub mod service;
pub mod store;
pub mod tell;
pub mod views;
pub mod work;

/// Which workflow, exactly, a review follows.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkflowRef {
    pub id: String,
    pub version: i64,
    /// SHA-256 of the definition's text.
    pub digest: String,
    pub title: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApprovalView {
    pub by: String,
    pub at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Conditions>,
}

/// A stage as listed in a review.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StageSummary {
    pub key: StageKey,
    pub title: String,
    pub state: StageState,
    /// `supplier` or a role.
    #[schema(value_type = String, example = "supplier")]
    pub answered_by: crate::workflow::Answerer,
    pub approver_role: String,
    /// Who is assigned to what the stage waits on now: its decider while
    /// in review, else its answerer.
    pub assignee: Option<String>,
    /// Who is assigned to answer it and who to decide it.
    pub assignees: Assignees,
    pub due_at: Option<DateTime<Utc>>,
    pub overdue: bool,
    pub approvals_required: u32,
    pub approvals: Vec<ApprovalView>,
}

/// Who is assigned to a stage's answering and to its deciding.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Assignees {
    pub answer: Option<String>,
    pub decide: Option<String>,
}

/// A review with its stages.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReviewSummary {
    pub id: ReviewId,
    pub kind: ReviewKind,
    pub provider: ProviderSlug,
    pub model: Option<ModelSlug>,
    pub workflow: WorkflowRef,
    pub state: ReviewState,
    pub tier: Tier,
    pub tier_reason: Option<String>,
    pub started_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    /// Merged conditions of the approval, when it has any.
    pub conditions: Option<Conditions>,
    /// Increases with every change; also the review's `ETag`.
    pub version: i64,
    pub stages: Vec<StageSummary>,
    /// What the approver should know before deciding: the conditions
    /// approved so far exclude part of the use the review declared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AnswerView {
    /// Any JSON value: what the question takes (text, a number, a boolean,
    /// a list of choices).
    pub value: serde_json::Value,
    pub answered_by: String,
    pub updated_at: DateTime<Utc>,
    /// Copied from the previous review of the subject and not yet changed:
    /// the supplier confirms it by submitting, or changes it.
    pub carried_forward: bool,
    /// On a re-review, the answer of the previous cycle when it differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_value: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DecisionView {
    pub stage: StageKey,
    pub decision: Decision,
    pub by: String,
    pub comment: Option<String>,
    pub conditions: Option<Conditions>,
    pub round: i32,
    pub at: DateTime<Utc>,
}

crate::names::stored_enum! {
    pub enum FindingState {
        Open,
        Resolved,
        Accepted,
    }
}

/// Whether a finding stops its review's approval: open, high or critical,
/// and without an owner or without a remediation due date.
pub fn stops_approval(
    state: FindingState,
    severity: crate::workflow::Severity,
    owner: Option<&str>,
    remediation_due: bool,
) -> bool {
    state == FindingState::Open
        && severity >= crate::workflow::Severity::High
        && (owner.is_none_or(|o| o.trim().is_empty()) || !remediation_due)
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FindingView {
    pub id: FindingId,
    pub stage: Option<StageKey>,
    pub severity: Severity,
    pub text: String,
    pub owner: Option<String>,
    pub remediation_due: Option<DateTime<Utc>>,
    pub state: FindingState,
    pub resolution: Option<String>,
    /// Who resolved or accepted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    /// `rule:<stage>:<question>:<n>` when a risk rule opened it.
    pub source: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// On an open finding a risk rule raised: the answer that raised it,
    /// changed since (the supplier may have removed the risk).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer_changed: Option<AnswerChange>,
}

/// One answer, then and now.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AnswerChange {
    pub question: String,
    /// The question as the questionnaire asks it.
    pub question_text: String,
    /// `null`: there was no answer.
    pub before: Option<serde_json::Value>,
    /// `null`: there is no answer now.
    pub after: Option<serde_json::Value>,
    /// When the answer last changed.
    pub changed_at: DateTime<Utc>,
}

/// A reviewer's comment on one question, shown beside it to whoever answers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QuestionCommentView {
    pub stage: StageKey,
    pub question: String,
    pub question_text: String,
    pub text: String,
    /// Who left it (a supplier's link does not show it).
    pub by: String,
    pub at: DateTime<Utc>,
}

/// `POST /v1/reviews/{id}/stages/{stage}/questions/{question}/comments`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentInput {
    #[validate(required, length(min = 1, max = 5000))]
    #[schema(value_type = String, example = "Name the sub-processors, not only their countries.")]
    pub text: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InvitationView {
    pub id: InvitationId,
    pub stage: StageKey,
    pub email: String,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub detail: Option<serde_json::Value>,
}

/// `GET /v1/reviews/{id}`: the review with everything in it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReviewDetail {
    #[serde(flatten)]
    pub review: ReviewSummary,
    /// Per stage, per question.
    pub answers: BTreeMap<String, BTreeMap<String, AnswerView>>,
    pub decisions: Vec<DecisionView>,
    pub findings: Vec<FindingView>,
    pub invitations: Vec<InvitationView>,
    pub timeline: Vec<TimelineEntry>,
    /// Reviewers' comments on single questions, oldest first.
    pub comments: Vec<QuestionCommentView>,
    /// Per stage submitted again after a reviewer requested changes: the
    /// answers that changed since that request.
    pub changed_since_request: BTreeMap<String, Vec<AnswerChange>>,
}

/// One stage with its questionnaire and answers: what a respondent sees.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StageView {
    pub review_id: ReviewId,
    /// `provider` or `provider/model`.
    pub subject: String,
    /// The subject by name, as people read it (`Claude by Anthropic`).
    #[serde(skip)]
    pub named: String,
    #[serde(flatten)]
    pub stage: StageSummary,
    pub questionnaire: Questionnaire,
    pub answers: BTreeMap<String, serde_json::Value>,
    /// While the stage awaits new answers because a reviewer asked for
    /// changes: the reviewer's comment, for whoever answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes_requested: Option<String>,
    /// Reviewers' comments on this stage's questions, oldest first.
    pub comments: Vec<QuestionCommentView>,
    /// The answers changed since a reviewer last requested changes.
    pub changed_since_request: Vec<AnswerChange>,
    /// The review's version (its `ETag`).
    pub version: i64,
}

/// `POST /v1/reviews`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReview {
    #[validate(required)]
    #[schema(value_type = String, example = "anthropic")]
    pub provider: Option<String>,
    /// Omit to review the whole provider.
    #[schema(example = "claude-sonnet-4-5")]
    pub model: Option<String>,
    /// Workflow id; default `model-provider`.
    pub workflow: Option<String>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswersInput {
    /// Question id → answer; `null` clears an answer.
    #[validate(required)]
    #[schema(value_type = BTreeMap<String, serde_json::Value>)]
    pub answers: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteInput {
    #[validate(required, email)]
    #[schema(value_type = String, example = "security@supplier.example")]
    pub email: Option<String>,
    /// How long the link works, e.g. `14d` (default 30d, at most 90d).
    pub expires_in: Option<String>,
}

/// `POST /v1/reviews/{id}/invite`: one contact, several questionnaires.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteAllInput {
    #[validate(required, email)]
    #[schema(value_type = String, example = "security@supplier.example")]
    pub email: Option<String>,
    /// How long the link works, e.g. `14d` (default 30d, at most 90d).
    pub expires_in: Option<String>,
    /// The supplier stages to invite to; default every one still to be
    /// answered (open now, or waiting for the stages before it).
    #[schema(value_type = Option<Vec<String>>)]
    pub stages: Option<Vec<StageKey>>,
}

/// The invitations one email and one link carry.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InvitedAll {
    pub invitations: Vec<InvitationView>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignInput {
    /// Subject or email of the person; `null` unassigns. Someone who has
    /// not signed in yet may be given by email: they are told by email,
    /// and the stage is theirs when they sign in with that address.
    #[validate(
        length(min = 1, max = 254),
        custom(function = "crate::validation::one_line")
    )]
    pub assignee: Option<String>,
    /// `answer` (the questionnaire) or `decide` (approve, request changes
    /// or reject). Omitted: what the person's roles allow of the two; when
    /// both or neither, deciding a stage in review or answered by the
    /// supplier, else answering.
    #[schema(value_type = Option<crate::workflow::engine::Duty>)]
    pub duty: Option<crate::workflow::engine::Duty>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionInput {
    #[validate(required)]
    #[schema(value_type = Decision)]
    pub decision: Option<Decision>,
    #[validate(length(max = 10000))]
    pub comment: Option<String>,
    #[validate(nested)]
    pub conditions: Option<Conditions>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierInput {
    #[validate(required)]
    #[schema(value_type = Tier)]
    pub tier: Option<Tier>,
    #[validate(
        required,
        length(min = 1, max = 2000),
        custom(function = "crate::validation::one_line")
    )]
    #[schema(value_type = String)]
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawInput {
    #[validate(
        required,
        length(min = 1, max = 2000),
        custom(function = "crate::validation::one_line")
    )]
    #[schema(value_type = String)]
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFinding {
    #[validate(required)]
    #[schema(value_type = Severity)]
    pub severity: Option<Severity>,
    #[validate(required, length(min = 1, max = 10000))]
    #[schema(value_type = String)]
    pub text: Option<String>,
    pub stage: Option<StageKey>,
    #[validate(
        length(min = 1, max = 254),
        custom(function = "crate::validation::one_line")
    )]
    pub owner: Option<String>,
    #[validate(custom(function = "crate::validation::ordinary_time"))]
    pub remediation_due: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FindingPatch {
    pub state: Option<FindingState>,
    pub severity: Option<Severity>,
    #[validate(
        length(min = 1, max = 254),
        custom(function = "crate::validation::one_line")
    )]
    pub owner: Option<String>,
    #[validate(custom(function = "crate::validation::ordinary_time"))]
    pub remediation_due: Option<DateTime<Utc>>,
    #[validate(length(max = 10000))]
    pub resolution: Option<String>,
}

/// Why a review operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("no review `{0}`")]
    NotFound(String),
    #[error("no finding `{0}` in this review")]
    FindingNotFound(String),
    #[error("no question `{0}` in this stage")]
    QuestionNotFound(String),
    #[error("no invitation `{0}` in this review")]
    InvitationNotFound(String),
    #[error(
        "the review has changed since version {expected} (now {actual}); reload it and try again"
    )]
    Stale { expected: i64, actual: i64 },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Refused(#[from] crate::workflow::engine::Refusal),
    #[error("invalid input")]
    Invalid(Vec<crate::validation::FieldError>),
    #[error("{0}")]
    Unauthorized(String),
    /// A supplier's link to a review that was withdrawn: it shows nothing.
    #[error("this review was withdrawn; its invitation links no longer work")]
    Withdrawn,
    #[error(transparent)]
    Store(#[from] crate::db::StoreError),
    #[error("{0}")]
    Internal(String),
}

impl From<diesel::result::Error> for ReviewError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Store(crate::db::StoreError::Query(error))
    }
}
