//! Evidence for auditors: the evidence pack of one review (a zip with a
//! human-readable report, the review as JSON, its answers and its control
//! mapping as CSV) and a summary of all reviews over a period.
//!
//! [`Evidence::build`] turns a review and the workflow it pinned into plain
//! text lines, once; [`pack`] renders them into the pack's files;
//! [`summary`] counts reviews over a period; [`routes`] serves both.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::audit::verify::ChainHead;
use crate::conditions::Conditions;
use crate::reviews::{DecisionView, ReviewDetail};
use crate::workflow::engine::StageState;
use crate::workflow::{Question, Workflow};

pub mod pack;
pub mod routes;
pub mod summary;

/// A review's evidence pack, ready to download.
#[derive(Debug)]
pub struct Pack {
    pub file_name: String,
    pub bytes: Vec<u8>,
    /// The sequence number of the audit chain's head the pack names.
    pub audit_head: i64,
}

/// Builds the evidence pack of a review from one consistent snapshot, and
/// records who took it and which head of the audit chain it shows
/// (`evidence.exported`).
pub async fn export(
    reviews: &crate::reviews::service::Reviews,
    actor: crate::audit::Actor,
    review: crate::ids::ReviewId,
    now: DateTime<Utc>,
) -> Result<Pack, crate::reviews::ReviewError> {
    use crate::reviews::ReviewError;
    let id = review.clone();
    let builder = reviews.clone();
    let pack = reviews
        .work
        .store()
        .run(move |conn| {
            crate::db::in_snapshot(conn, |conn| {
                let detail = builder.detail(conn, &id, now)?;
                let workflow = crate::reviews::store::pinned_workflow(
                    conn,
                    &builder.catalog,
                    &detail.review.workflow.digest,
                )?;
                let head = crate::audit::store::head(conn)?;
                let evidence = Evidence::build(&detail, &workflow.workflow, &head, now);
                let bytes =
                    pack::zip(&evidence, now).map_err(|e| ReviewError::Internal(e.to_string()))?;
                Ok::<_, ReviewError>(Pack {
                    file_name: pack::file_name(&evidence),
                    bytes,
                    audit_head: head.seq,
                })
            })
        })
        .await?;
    let after = serde_json::json!({"file": pack.file_name, "audit_head": pack.audit_head});
    reviews
        .work
        .run(actor, now, move |tx| {
            crate::audit::append(
                tx,
                crate::audit::Change::review(crate::audit::Action::EvidenceExported, &review)
                    .after(after),
            )?;
            Ok::<_, ReviewError>(())
        })
        .await?;
    Ok(pack)
}

/// One questionnaire answer, as printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerLine {
    pub stage: String,
    pub section: String,
    pub question_id: String,
    pub question: String,
    pub answer: String,
    pub answered_by: String,
    pub updated_at: String,
    /// Carried forward from the previous review, not answered anew.
    pub carried_forward: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionEvidence {
    pub title: String,
    pub answers: Vec<AnswerLine>,
}

/// One stage with its answered questions, by section, and its decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageEvidence {
    pub key: String,
    pub title: String,
    pub state: String,
    pub sections: Vec<SectionEvidence>,
    pub decisions: Vec<DecisionLine>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionLine {
    pub stage: String,
    pub decision: String,
    pub by: String,
    pub at: String,
    pub round: i32,
    /// Empty when there is none.
    pub comment: String,
    /// `key: value, value; …`; empty when there are none.
    pub conditions: String,
}

impl DecisionLine {
    /// `approve by sam at 2026-03-02T09:00:00Z`, for one cell of a table.
    pub fn brief(&self) -> String {
        format!("{} by {} at {}", self.decision, self.by, self.at)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingLine {
    pub severity: String,
    pub state: String,
    pub text: String,
    pub stage: String,
    pub owner: String,
    pub remediation_due: String,
    pub resolution: String,
    /// Who resolved or accepted it.
    pub resolved_by: String,
    pub source: String,
    pub created_by: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineLine {
    pub at: String,
    pub actor: String,
    pub action: String,
    /// The event's data as compact JSON.
    pub detail: String,
}

/// A question that evidences a control, with its answer in this review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlQuestion {
    pub stage: String,
    pub question_id: String,
    pub question: String,
    /// The answer, or why there is none (`not answered`, `stage skipped`).
    pub answer: String,
    pub answered: bool,
}

/// One control named by the workflow's questions, and what evidences it in
/// this review: those questions with their answers, and the decisions of the
/// stages that asked them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlEvidence {
    pub control: String,
    pub questions: Vec<ControlQuestion>,
    pub decisions: Vec<DecisionLine>,
}

/// Everything an evidence pack shows, as text ready to print.
#[derive(Debug, Clone)]
pub struct Evidence<'a> {
    /// The review as `GET /v1/reviews/{id}` shows it.
    pub detail: &'a ReviewDetail,
    /// `provider` or `provider/model`.
    pub subject: String,
    /// Label and value of each fact about the review, in reading order.
    pub facts: Vec<(&'static str, String)>,
    pub stages: Vec<StageEvidence>,
    pub decisions: Vec<DecisionLine>,
    pub findings: Vec<FindingLine>,
    pub timeline: Vec<TimelineLine>,
    pub controls: Vec<ControlEvidence>,
    pub generated_at: String,
}

/// A time as the pack prints it: RFC 3339, UTC, to the second.
pub fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn optional_time(at: Option<DateTime<Utc>>) -> String {
    at.map(time).unwrap_or_default()
}

/// Conditions as `key: value, value; key: value`.
pub fn conditions_text(conditions: Option<&Conditions>) -> String {
    let Some(serde_json::Value::Object(map)) =
        conditions.and_then(|c| serde_json::to_value(c).ok())
    else {
        return String::new();
    };
    map.iter()
        .map(|(key, values)| {
            let values: Vec<String> = values
                .as_array()
                .map(|items| items.iter().map(plain).collect())
                .unwrap_or_default();
            format!("{key}: {}", values.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A JSON value as a person reads it: strings without quotes.
fn plain(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// An answer as a person reads it: yes/no, option labels rather than values,
/// lists joined with commas.
pub fn answer_text(question: Option<&Question>, value: &serde_json::Value) -> String {
    use serde_json::Value;
    let label = |value: &Value| match (question, value) {
        (Some(question), Value::String(text)) => question
            .options
            .iter()
            .find(|o| &o.value == text)
            .map_or_else(|| text.clone(), |o| o.label.clone()),
        (_, other) => plain(other),
    };
    match value {
        Value::Null => String::new(),
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        Value::Array(items) => items.iter().map(label).collect::<Vec<_>>().join(", "),
        Value::Object(_) => value.to_string(),
        other => label(other),
    }
}

fn decision_line(view: &DecisionView) -> DecisionLine {
    DecisionLine {
        stage: view.stage.to_string(),
        decision: view.decision.as_str().to_owned(),
        by: view.by.clone(),
        at: time(view.at),
        round: view.round,
        comment: view.comment.clone().unwrap_or_default(),
        conditions: conditions_text(view.conditions.as_ref()),
    }
}

impl<'a> Evidence<'a> {
    /// Gathers what the pack shows from the review's detail, the workflow it
    /// pinned (for question texts, sections and controls) and the audit
    /// chain's head when the pack was made (which ties the pack to the log).
    pub fn build(
        detail: &'a ReviewDetail,
        workflow: &Workflow,
        audit_head: &ChainHead,
        now: DateTime<Utc>,
    ) -> Self {
        let review = &detail.review;
        let subject = match &review.model {
            Some(model) => format!("{}/{model}", review.provider),
            None => review.provider.to_string(),
        };
        let decisions: Vec<DecisionLine> = detail.decisions.iter().map(decision_line).collect();
        let stage_state = |key: &str| review.stages.iter().find(|s| s.key == key).map(|s| s.state);

        let mut stages = Vec::new();
        let mut controls: BTreeMap<String, ControlEvidence> = BTreeMap::new();
        for stage in &workflow.stages {
            let answers = detail.answers.get(stage.key.as_str());
            let state = stage_state(&stage.key);
            let stage_decisions: Vec<DecisionLine> = decisions
                .iter()
                .filter(|d| stage.key == d.stage.as_str())
                .cloned()
                .collect();
            let mut sections = Vec::new();
            for section in &stage.questionnaire.sections {
                let mut lines = Vec::new();
                for question in &section.questions {
                    let answer = answers.and_then(|a| a.get(&question.id));
                    if let Some(answer) = answer {
                        lines.push(AnswerLine {
                            stage: stage.key.to_string(),
                            section: section.title.clone(),
                            question_id: question.id.clone(),
                            question: question.text.clone(),
                            answer: answer_text(Some(question), &answer.value),
                            answered_by: answer.answered_by.clone(),
                            updated_at: time(answer.updated_at),
                            carried_forward: answer.carried_forward,
                        });
                    }
                    for control in &question.controls {
                        let entry =
                            controls
                                .entry(control.clone())
                                .or_insert_with(|| ControlEvidence {
                                    control: control.clone(),
                                    questions: Vec::new(),
                                    decisions: Vec::new(),
                                });
                        entry.questions.push(ControlQuestion {
                            stage: stage.key.to_string(),
                            question_id: question.id.clone(),
                            question: question.text.clone(),
                            answer: match (answer, state) {
                                (Some(answer), _) => answer_text(Some(question), &answer.value),
                                (None, Some(StageState::Skipped)) => "stage skipped".into(),
                                (None, _) => "not answered".into(),
                            },
                            answered: answer.is_some(),
                        });
                        for decision in &stage_decisions {
                            if !entry.decisions.contains(decision) {
                                entry.decisions.push(decision.clone());
                            }
                        }
                    }
                }
                if !lines.is_empty() {
                    sections.push(SectionEvidence {
                        title: section.title.clone(),
                        answers: lines,
                    });
                }
            }
            stages.push(StageEvidence {
                key: stage.key.to_string(),
                title: stage.title.clone(),
                state: state.map(|s| s.as_str()).unwrap_or("unknown").to_owned(),
                sections,
                decisions: stage_decisions,
            });
        }

        let findings = detail
            .findings
            .iter()
            .map(|f| FindingLine {
                severity: f.severity.as_str().to_owned(),
                state: f.state.as_str().to_owned(),
                text: f.text.clone(),
                stage: f
                    .stage
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                owner: f.owner.clone().unwrap_or_default(),
                remediation_due: optional_time(f.remediation_due),
                resolution: f.resolution.clone().unwrap_or_default(),
                resolved_by: f.resolved_by.clone().unwrap_or_default(),
                source: f.source.clone().unwrap_or_default(),
                created_by: f.created_by.clone(),
                created_at: time(f.created_at),
            })
            .collect();
        let timeline = detail
            .timeline
            .iter()
            .map(|entry| TimelineLine {
                at: time(entry.at),
                actor: entry.actor.clone(),
                action: entry.action.clone(),
                detail: entry
                    .detail
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            })
            .collect();

        let workflow_ref = &review.workflow;
        let facts = vec![
            ("Subject", subject.clone()),
            ("Review", review.id.to_string()),
            ("Kind", review.kind.as_str().replace('_', "-")),
            ("State", review.state.as_str().replace('_', " ")),
            ("Risk tier", review.tier.as_str().to_owned()),
            (
                "Tier reason",
                review
                    .tier_reason
                    .clone()
                    .unwrap_or_else(|| "default".into()),
            ),
            ("Workflow", workflow_ref.title.clone()),
            ("Workflow id", workflow_ref.id.clone()),
            ("Workflow version", workflow_ref.version.to_string()),
            ("Workflow digest (SHA-256)", workflow_ref.digest.clone()),
            ("Started by", review.started_by.clone()),
            ("Started at", time(review.created_at)),
            ("Decided at", optional_time(review.decided_at)),
            ("Valid until", optional_time(review.valid_until)),
            ("Conditions", conditions_text(review.conditions.as_ref())),
            ("Review version", review.version.to_string()),
            (
                "Audit chain head at export",
                format!("seq {}, hash {}", audit_head.seq, audit_head.hash),
            ),
        ];

        Self {
            detail,
            subject,
            facts,
            stages,
            decisions,
            findings,
            timeline,
            controls: controls.into_values().collect(),
            generated_at: time(now),
        }
    }

    /// Every answer, in workflow order (stage, section, question).
    pub fn answers(&self) -> impl Iterator<Item = &AnswerLine> {
        self.stages
            .iter()
            .flat_map(|s| s.sections.iter().flat_map(|sec| sec.answers.iter()))
    }
}

#[cfg(test)]
mod tests;
