//! A checked workflow definition: stages, questionnaires, tiers. Built only by
//! [`super::file::parse`], so code that holds one never re-checks it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::TimeDelta;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Role;
use crate::ids::StageKey;

crate::names::stored_enum! {
    /// Risk tier of a review, lowest first.
    #[derive(PartialOrd, Ord, Hash)]
    pub enum Tier {
        Low,
        Medium,
        High,
        Critical,
    }
}

crate::names::stored_enum! {
    /// Severity of a finding.
    #[derive(PartialOrd, Ord)]
    pub enum Severity {
        Low,
        Medium,
        High,
        Critical,
    }
}

/// A duration as written in the file (`"10d"`), with its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub text: String,
    pub delta: TimeDelta,
}

impl Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

/// Re-review cadence of one tier.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TierPolicy {
    /// An approval is valid this long.
    #[schema(value_type = String, example = "365d")]
    pub re_review_every: Span,
    /// A re-review opens this long before the approval expires.
    #[schema(value_type = String, example = "45d")]
    pub re_review_lead: Span,
}

/// Who answers a stage's questionnaire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answerer {
    /// The provider's contact, through an invitation link (a vendor manager may answer for them).
    Supplier,
    Role(Role),
}

impl Answerer {
    pub fn as_str(self) -> &'static str {
        match self {
            Answerer::Supplier => "supplier",
            Answerer::Role(role) => role.as_str(),
        }
    }
}

impl Serialize for Answerer {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Whom an escalation step notifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notify {
    Assignee,
    Role(Role),
    Email(String),
}

impl Serialize for Notify {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Notify::Assignee => serializer.serialize_str("assignee"),
            Notify::Role(role) => serializer.serialize_str(&format!("role:{role}")),
            Notify::Email(email) => serializer.serialize_str(&format!("email:{email}")),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EscalationStep {
    /// How long after the due time.
    #[schema(value_type = String, example = "3d")]
    pub after: Span,
    /// `assignee`, `role:<role>` or `email:<address>`.
    #[schema(value_type = String, example = "role:vendor_manager")]
    pub notify: Notify,
}

/// One stage of a workflow.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Stage {
    pub key: StageKey,
    pub title: String,
    /// Stages that must be approved (or skipped) before this one opens.
    pub after: Vec<StageKey>,
    #[schema(value_type = String, example = "supplier")]
    pub answered_by: Answerer,
    pub approver_role: Role,
    /// Distinct approvals needed, per tier.
    #[schema(value_type = BTreeMap<String, u32>)]
    pub approvals: BTreeMap<Tier, u32>,
    /// Tiers the stage applies to; in others it is skipped.
    pub tiers: BTreeSet<Tier>,
    #[schema(value_type = String, example = "10d")]
    pub sla: Span,
    pub escalation: Vec<EscalationStep>,
    pub questionnaire: Questionnaire,
}

impl Stage {
    pub fn approvals_for(&self, tier: Tier) -> u32 {
        self.approvals.get(&tier).copied().unwrap_or(1)
    }

    pub fn applies_to(&self, tier: Tier) -> bool {
        self.tiers.contains(&tier)
    }

    pub fn question(&self, id: &str) -> Option<&Question> {
        self.questionnaire.questions().find(|q| q.id == id)
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Questionnaire {
    pub key: String,
    pub title: String,
    pub sections: Vec<Section>,
}

impl Questionnaire {
    pub fn questions(&self) -> impl Iterator<Item = &Question> {
        self.sections.iter().flat_map(|s| s.questions.iter())
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Section {
    pub title: String,
    pub questions: Vec<Question>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Question {
    pub id: String,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "yes_no")]
    pub kind: QuestionKind,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<ChoiceOption>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Required while shown.
    pub required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shown_when: Option<ShownWhen>,
    /// Controls this question evidences, e.g. `iso42001:A.10.3`.
    pub controls: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub risk: Vec<RiskRule>,
}

crate::names::named_enum! {
    pub enum QuestionKind {
        YesNo,
        SingleChoice,
        MultiChoice,
        Text,
        Number,
        Date,
        Url,
    }
}

impl QuestionKind {
    pub fn has_options(self) -> bool {
        matches!(self, QuestionKind::SingleChoice | QuestionKind::MultiChoice)
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChoiceOption {
    pub value: String,
    pub label: String,
}

/// When a question is shown: a condition on an earlier answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ShownWhen {
    pub question: String,
    /// One of `equals`, `any_of`, `above`, `below`.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub condition: Condition,
}

/// A test of an answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The answer equals the value (a multi-choice answer contains it).
    Equals(serde_json::Value),
    /// The answer is one of the values (a multi-choice answer contains one).
    AnyOf(Vec<serde_json::Value>),
    Above(f64),
    Below(f64),
}

impl Condition {
    /// True when `answer` meets the condition; an absent answer meets none.
    pub fn matches(&self, answer: Option<&serde_json::Value>) -> bool {
        use serde_json::Value;
        let Some(answer) = answer else { return false };
        let contains = |wanted: &Value| match answer {
            Value::Array(items) => items.contains(wanted),
            other => other == wanted,
        };
        match self {
            Condition::Equals(value) => contains(value),
            Condition::AnyOf(values) => values.iter().any(contains),
            Condition::Above(limit) => answer.as_f64().is_some_and(|n| n > *limit),
            Condition::Below(limit) => answer.as_f64().is_some_and(|n| n < *limit),
        }
    }
}

/// An answer that raises the tier or opens a finding.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RiskRule {
    /// One of `equals`, `any_of`, `above`, `below`.
    #[schema(value_type = Object)]
    pub when: Condition,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_tier: Option<Tier>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding: Option<FindingTemplate>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FindingTemplate {
    pub severity: Severity,
    pub text: String,
}

/// A checked workflow definition.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Workflow {
    pub id: String,
    pub version: i64,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub default_tier: Tier,
    /// Whether a review may be approved while a high or critical finding is
    /// open without an owner and a remediation due date (default: no).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approve_with_unowned_findings: bool,
    /// The answers that declare the intended use, which approval conditions
    /// are compared with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared_use: Option<DeclaredUse>,
    #[schema(value_type = BTreeMap<String, TierPolicy>)]
    pub tiers: BTreeMap<Tier, TierPolicy>,
    pub stages: Vec<Stage>,
}

/// One answer of a review: a question of a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AnswerRef {
    pub stage: StageKey,
    pub question: String,
}

/// Where a review declares its intended use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct DeclaredUse {
    /// The answer listing the data classes the use sends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_classes: Option<AnswerRef>,
    /// The answer listing the regions of use or processing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regions: Option<AnswerRef>,
}

impl Workflow {
    pub fn stage(&self, key: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.key == key)
    }

    pub fn policy(&self, tier: Tier) -> &TierPolicy {
        // Every tier has a policy: the file check guarantees it.
        &self.tiers[&tier]
    }
}
