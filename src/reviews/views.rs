//! What the API shows of a review, built from what the store loaded: the
//! summary with its stages, answers, decisions, findings (with the change of
//! the answer that raised one), invitations, the timeline, comments on
//! questions, the answers changed since changes were requested, and the
//! stage view a respondent reads. Plain functions, no database access.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::store::{
    CommentRow, DecisionRow, FindingRow, InvitationRow, Loaded, ReviewRow, StageRow, TimelineRow,
    approvals_of, opt_utc, utc,
};
use super::{
    AnswerChange, AnswerView, ApprovalView, DecisionView, FindingState, FindingView,
    InvitationView, QuestionCommentView, ReviewError, ReviewSummary, StageSummary, StageView,
    TimelineEntry, WorkflowRef,
};
use crate::conditions::DataClass;
use crate::ids::{ModelSlug, ProviderSlug, StageKey};
use crate::workflow::engine::{Decision, Refusal, StageState};
use crate::workflow::{AnswerRef, LoadedWorkflow};

pub fn summarize(
    row: &ReviewRow,
    provider: &ProviderSlug,
    model: Option<&ModelSlug>,
    workflow: &LoadedWorkflow,
    stage_rows: &[StageRow],
    decision_rows: &[DecisionRow],
    now: DateTime<Utc>,
) -> ReviewSummary {
    let stages = workflow
        .workflow
        .stages
        .iter()
        .filter_map(|definition| {
            let stage = stage_rows
                .iter()
                .find(|s| s.stage_key == definition.key && s.review_id == row.id)?;
            let due_at = opt_utc(stage.due_at);
            Some(StageSummary {
                key: definition.key.clone(),
                title: definition.title.clone(),
                state: stage.state,
                answered_by: definition.answered_by,
                approver_role: definition.approver_role.as_str().to_owned(),
                assignee: stage.assignee().map(str::to_owned),
                assignees: super::Assignees {
                    answer: stage.answer_assignee.clone(),
                    decide: stage.decide_assignee.clone(),
                },
                due_at,
                overdue: stage.state.is_open() && due_at.is_some_and(|d| d < now),
                approvals_required: definition.approvals_for(row.tier),
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
        kind: row.kind,
        provider: provider.clone(),
        model: model.cloned(),
        workflow: WorkflowRef {
            id: row.workflow_id.clone(),
            version: row.workflow_version,
            digest: row.workflow_digest.clone(),
            title: workflow.workflow.title.clone(),
        },
        state: row.state,
        tier: row.tier,
        tier_reason: row.tier_reason.clone(),
        started_by: row.started_by.clone(),
        created_at: utc(row.created_at),
        updated_at: utc(row.updated_at),
        decided_at: opt_utc(row.decided_at),
        valid_until: opt_utc(row.valid_until),
        conditions: row.conditions.as_ref().map(|c| c.get().clone()),
        version: row.version,
        stages,
        warnings: Vec::new(),
    }
}

/// Per stage, per question: each answer, with what changed since the last cycle.
pub fn answers(loaded: &Loaded) -> BTreeMap<String, BTreeMap<String, AnswerView>> {
    let mut out: BTreeMap<String, BTreeMap<String, AnswerView>> = BTreeMap::new();
    for answer in &loaded.answers {
        let Some(stage) = loaded.stages.iter().find(|s| s.id == answer.stage_id) else {
            continue;
        };
        let value = answer.value.get().clone();
        let previous_value = answer
            .previous_value
            .as_ref()
            .map(|p| p.get().clone())
            .filter(|previous| *previous != value);
        out.entry(stage.stage_key.to_string()).or_default().insert(
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

pub fn decisions(loaded: &Loaded) -> Vec<DecisionView> {
    loaded
        .decisions
        .iter()
        .filter_map(|d| {
            let stage = loaded.stages.iter().find(|s| s.id == d.stage_id)?;
            Some(DecisionView {
                stage: stage.stage_key.clone(),
                decision: d.decision,
                by: d.actor_sub.clone(),
                comment: d.comment.clone(),
                conditions: d.conditions.as_ref().map(|c| c.get().clone()),
                round: d.round,
                at: utc(d.created_at),
            })
        })
        .collect()
}

pub fn finding(row: &FindingRow) -> FindingView {
    FindingView {
        id: row.id.clone(),
        stage: row.stage_key.clone(),
        severity: row.severity,
        text: row.text.clone(),
        owner: row.owner.clone(),
        remediation_due: opt_utc(row.remediation_due),
        state: row.state,
        resolution: row.resolution.clone(),
        resolved_by: row.resolved_by.clone(),
        source: row.source.as_ref().map(|s| format!("rule:{s}")),
        created_by: row.created_by.clone(),
        created_at: utc(row.created_at),
        updated_at: utc(row.updated_at),
        answer_changed: None,
    }
}

/// The review's findings, each open one a risk rule raised with the
/// change of the answer that raised it.
pub fn findings(loaded: &Loaded) -> Vec<FindingView> {
    loaded
        .findings
        .iter()
        .map(|row| FindingView {
            answer_changed: raising_answer_changed(loaded, row),
            ..finding(row)
        })
        .collect()
}

/// The answer that raised an open finding, when it changed since: its value
/// differs from the one that raised it (or, for a finding raised before
/// that value was kept, it was saved again after the finding).
pub fn raising_answer_changed(loaded: &Loaded, row: &FindingRow) -> Option<AnswerChange> {
    if row.state != FindingState::Open {
        return None;
    }
    let (stage, question) = row.raising_question()?;
    let stage_row = loaded.stage_row(stage)?;
    let definition = loaded.workflow.workflow.stage(stage)?.question(question)?;
    let answer = loaded
        .answers
        .iter()
        .find(|a| a.stage_id == stage_row.id && a.question_id == question);
    let now = answer.map(|a| a.value.get().clone());
    let then = row.raised_by_value.as_ref().map(|v| v.get().clone());
    let changed = match &then {
        Some(then) => now.as_ref() != Some(then),
        None => answer.is_none_or(|a| a.updated_at > row.created_at),
    };
    changed.then(|| AnswerChange {
        question: question.to_owned(),
        question_text: definition.text.clone(),
        before: then,
        after: now,
        changed_at: utc(answer.map_or(stage_row.updated_at, |a| a.updated_at)),
    })
}

/// A change's answer then and now in words, `no answer` for none.
pub fn change_in_words(
    workflow: &crate::workflow::Workflow,
    change: &AnswerChange,
) -> (String, String) {
    let question = workflow
        .stages
        .iter()
        .find_map(|s| s.question(&change.question));
    let words = |value: &Option<serde_json::Value>| {
        let text = value
            .as_ref()
            .map(|v| crate::evidence::answer_text(question, v))
            .unwrap_or_default();
        if text.is_empty() {
            "no answer".to_owned()
        } else {
            text
        }
    };
    (words(&change.before), words(&change.after))
}

/// Per stage submitted again since a reviewer requested changes: the
/// answers that differ from those the reviewer saw.
pub fn changed_since_request(loaded: &Loaded) -> BTreeMap<String, Vec<AnswerChange>> {
    loaded
        .stages
        .iter()
        .filter(|s| s.state != StageState::AwaitingAnswers)
        .map(|s| (s.stage_key.to_string(), stage_changes(loaded, &s.stage_key)))
        .filter(|(_, changes)| !changes.is_empty())
        .collect()
}

/// The answers of `stage` that differ from those it had when a reviewer
/// last requested changes (none when nobody has).
pub fn stage_changes(loaded: &Loaded, stage: &str) -> Vec<AnswerChange> {
    let (Some(row), Some(definition)) = (
        loaded.stage_row(stage),
        loaded.workflow.workflow.stage(stage),
    ) else {
        return Vec::new();
    };
    let Some((then, asked)) = loaded
        .decisions
        .iter()
        .filter(|d| d.stage_id == row.id && d.decision == Decision::RequestChanges)
        .filter_map(|d| Some((d.answers_then.as_ref()?.get(), d.created_at)))
        .next_back()
    else {
        return Vec::new();
    };
    definition
        .questionnaire
        .questions()
        .filter_map(|question| {
            let answer = loaded
                .answers
                .iter()
                .find(|a| a.stage_id == row.id && a.question_id == question.id);
            let before = then.get(&question.id).cloned();
            let after = answer.map(|a| a.value.get().clone());
            (before != after).then(|| AnswerChange {
                question: question.id.clone(),
                question_text: question.text.clone(),
                before,
                after,
                changed_at: utc(answer.map_or(asked, |a| a.updated_at)),
            })
        })
        .collect()
}

/// Reviewers' comments on single questions (of `stage`, or of every stage).
pub fn comments(loaded: &Loaded, stage: Option<&str>) -> Vec<QuestionCommentView> {
    loaded
        .comments
        .iter()
        .filter_map(|c| {
            let row = loaded.stages.iter().find(|s| s.id == c.stage_id)?;
            if stage.is_some_and(|s| row.stage_key != s) {
                return None;
            }
            Some(comment(loaded, c, row.stage_key.clone()))
        })
        .collect()
}

/// One comment, on a question of `stage`.
pub fn comment(loaded: &Loaded, row: &CommentRow, stage: StageKey) -> QuestionCommentView {
    let question_text = loaded
        .workflow
        .workflow
        .stage(&stage)
        .and_then(|s| s.question(&row.question_id))
        .map_or_else(|| row.question_id.clone(), |q| q.text.clone());
    QuestionCommentView {
        stage,
        question: row.question_id.clone(),
        question_text,
        text: row.body.clone(),
        by: row.author.clone(),
        at: utc(row.created_at),
    }
}

pub fn invitations(loaded: &Loaded, rows: Vec<InvitationRow>) -> Vec<InvitationView> {
    rows.into_iter()
        .filter_map(|r| {
            let stage = loaded.stages.iter().find(|s| s.id == r.stage_id)?;
            Some(invitation(r, stage.stage_key.clone()))
        })
        .collect()
}

/// One invitation, to `stage`.
pub fn invitation(row: InvitationRow, stage: StageKey) -> InvitationView {
    InvitationView {
        id: row.id,
        stage,
        email: row.email,
        expires_at: utc(row.expires_at),
        revoked_at: opt_utc(row.revoked_at),
        created_by: row.created_by,
        created_at: utc(row.created_at),
    }
}

/// The review's audit events as its timeline. An `after` that no longer
/// reads as JSON (edited by hand) shows as its text: the log is evidence.
pub fn timeline(events: Vec<TimelineRow>) -> Vec<TimelineEntry> {
    events
        .into_iter()
        .map(|(at, actor, action, detail)| TimelineEntry {
            at: utc(at),
            actor,
            action,
            detail: detail
                .map(|d| serde_json::from_str(&d).unwrap_or(serde_json::Value::String(d))),
        })
        .collect()
}

/// One stage with its questionnaire and answers: what a respondent sees.
pub fn stage(loaded: &Loaded, stage: &str, now: DateTime<Utc>) -> Result<StageView, ReviewError> {
    let summary = loaded.summary(now);
    let definition = loaded
        .workflow
        .workflow
        .stage(stage)
        .ok_or_else(|| Refusal::UnknownStage(stage.to_owned()))?;
    let stage_summary = summary
        .stages
        .into_iter()
        .find(|s| s.key == stage)
        .ok_or_else(|| Refusal::UnknownStage(stage.to_owned()))?;
    let answers = loaded
        .engine_review()
        .stage(stage)
        .map(|s| s.answers.clone())
        .unwrap_or_default();
    Ok(StageView {
        review_id: loaded.row.id.clone(),
        subject: loaded.subject(),
        named: loaded.named(),
        stage: stage_summary,
        questionnaire: definition.questionnaire.clone(),
        answers,
        changes_requested: changes_requested(loaded, stage),
        comments: comments(loaded, Some(stage)),
        changed_since_request: stage_changes(loaded, stage),
        version: loaded.row.version,
    })
}

/// Where the conditions approved so far (merged, as the approval will
/// carry them) exclude a data class or region the review declared (the
/// workflow's `declared_use` answers), in words for the approver.
pub fn declared_use_excluded(loaded: &Loaded) -> Vec<String> {
    let Some(declared) = &loaded.workflow.workflow.declared_use else {
        return Vec::new();
    };
    let merged = match &loaded.row.conditions {
        Some(conditions) => Some(conditions.get().clone()),
        None => loaded
            .stages
            .iter()
            .flat_map(|stage| approvals_of(&loaded.decisions, stage))
            .filter_map(|a| a.conditions)
            .reduce(|a, b| a.merge(&b)),
    };
    let Some(merged) = merged else {
        return Vec::new();
    };
    let answer = |at: &Option<AnswerRef>| -> Vec<String> {
        let Some(at) = at else { return Vec::new() };
        let Some(stage) = loaded.stage_row(&at.stage) else {
            return Vec::new();
        };
        let value = loaded
            .answers
            .iter()
            .find(|a| a.stage_id == stage.id && a.question_id == at.question)
            .map(|a| a.value.get().clone());
        match value {
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_ascii_lowercase))
                .collect(),
            Some(serde_json::Value::String(one)) => vec![one.to_ascii_lowercase()],
            _ => Vec::new(),
        }
    };
    let mut warnings = Vec::new();
    if let Some(allowed) = &merged.data_classes {
        let excluded: Vec<String> = answer(&declared.data_classes)
            .into_iter()
            .filter(|d| {
                d.parse::<DataClass>()
                    .is_ok_and(|class| !allowed.contains(&class))
            })
            .collect();
        if !excluded.is_empty() {
            let admitted: Vec<&str> = allowed.iter().map(|c| c.as_str()).collect();
            warnings.push(format!(
                "The conditions exclude data the review declared it will send: {} (they admit only {}). \
                 Integrators asking for that use will be denied.",
                excluded.join(", "),
                admitted.join(", ")
            ));
        }
    }
    if let Some(allowed) = &merged.regions {
        let excluded: Vec<String> = answer(&declared.regions)
            .into_iter()
            .filter(|r| !allowed.contains(r))
            .collect();
        if !excluded.is_empty() {
            let admitted: Vec<&str> = allowed.iter().map(String::as_str).collect();
            warnings.push(format!(
                "The conditions exclude regions the review declared: {} (they admit only {}). \
                 Integrators asking for that use will be denied.",
                excluded.join(", "),
                admitted.join(", ")
            ));
        }
    }
    warnings
}

/// The comment of the reviewer who asked for changes, while the stage
/// awaits the new answers.
pub fn changes_requested(loaded: &Loaded, stage: &str) -> Option<String> {
    let row = loaded.stage_row(stage)?;
    if row.state != StageState::AwaitingAnswers {
        return None;
    }
    loaded
        .decisions
        .iter()
        .filter(|d| d.stage_id == row.id)
        .max_by_key(|d| (d.round, d.created_at))
        .filter(|d| d.decision == Decision::RequestChanges)
        .and_then(|d| d.comment.clone())
}
