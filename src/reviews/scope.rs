//! What a console form read, as a token, so that a form conflicts only
//! with a change to what it read: a decision or answers on a stage with a
//! change to that stage's state, answers or approvals (a raised tier that
//! asks more approvals of it included), an assignment with a change to that
//! stage's assignments, a form on the whole review with its state or tier —
//! never with an assignment or a decision elsewhere. The API keeps the
//! review's version (`If-Match`) instead.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{ReviewSummary, StageSummary};
use crate::ids::StageKey;

/// What a form read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The review as a whole: its state and tier.
    Review,
    /// A stage's work: its state, answers and approvals.
    Work(StageKey),
    /// A stage's assignments, and its state.
    Assign(StageKey),
}

/// What a change was made against: the review's version (the API's
/// `If-Match`), or what a console form read of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    Version(i64),
    Read { scope: Scope, token: String },
}

impl Expected {
    /// What a posted form was rendered against: the `token` of what it
    /// read (its `scope` field) when it has one, else its `revision`.
    pub fn of_form(scope: Scope, token: Option<&str>, revision: Option<i64>) -> Option<Self> {
        match token {
            Some(token) => Some(Expected::Read {
                scope,
                token: token.to_owned(),
            }),
            None => revision.map(Expected::Version),
        }
    }
}

/// The answers of one stage, by question.
pub type StageAnswers = BTreeMap<String, Value>;

impl Scope {
    /// The token of what this scope reads of `review`, whose stages'
    /// answers `answers` gives; `None` when the review has no such stage.
    pub fn token(
        &self,
        review: &ReviewSummary,
        answers: impl Fn(&str) -> Option<StageAnswers>,
    ) -> Option<String> {
        let key = match self {
            Scope::Review => return Some(digest(&json!([review.state, review.tier]))),
            Scope::Work(key) | Scope::Assign(key) => key,
        };
        let stage = review.stages.iter().find(|s| s.key == *key)?;
        Some(self.of_stage(stage, &answers(key).unwrap_or_default()))
    }

    /// The token of what this scope reads of one stage with its answers.
    pub fn of_stage(&self, stage: &StageSummary, answers: &StageAnswers) -> String {
        let read = match self {
            Scope::Assign(_) => {
                json!([stage.state, stage.assignees.answer, stage.assignees.decide])
            }
            Scope::Review | Scope::Work(_) => {
                let approvers: Vec<&str> = stage.approvals.iter().map(|a| a.by.as_str()).collect();
                json!([stage.state, stage.approvals_required, approvers, answers])
            }
        };
        digest(&read)
    }
}

fn digest(read: &Value) -> String {
    let digest = Sha256::digest(read.to_string().as_bytes());
    hex::encode(&digest[..12])
}
