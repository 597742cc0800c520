//! A stage's questionnaire as a page shows it — to read (answers with the
//! controls each question serves, carried-forward and changed markers) or to
//! answer (form fields, conditional questions hidden until their condition
//! holds, each problem next to its question) — and the answers a posted form
//! gives. Shared by the review page and the supplier's page.

use std::collections::BTreeMap;

use serde_json::Value;

use super::page::Form;
use super::words;
use crate::reviews::{AnswerView, QuestionCommentView, ReviewError};
use crate::validation::FieldError;
use crate::workflow::answers::is_shown;
use crate::workflow::definition::QuestionKind;
use crate::workflow::engine::Refusal;
use crate::workflow::{Question, Questionnaire};

/// Saves a questionnaire's `answers` as a draft through `save`, keeping
/// every valid answer: when some are refused, the others are saved without
/// them, and the refused ones come back to be shown beside their questions
/// (with what was typed). Only submitting needs every answer valid.
pub async fn save_draft<F, Fut, T>(
    answers: &BTreeMap<String, Value>,
    save: F,
) -> (Result<T, ReviewError>, Vec<FieldError>)
where
    F: Fn(BTreeMap<String, Value>) -> Fut,
    Fut: std::future::Future<Output = Result<T, ReviewError>>,
{
    match save(answers.clone()).await {
        Err(ReviewError::Refused(Refusal::Invalid(refused))) => {
            let valid = answers
                .iter()
                .filter(|(id, _)| !refused.iter().any(|e| &e.field == *id))
                .map(|(id, value)| (id.clone(), value.clone()))
                .collect();
            (save(valid).await, refused)
        }
        other => (other, Vec::new()),
    }
}

/// One choice of a choice question, or of a yes/no one.
#[derive(Debug, Clone)]
pub struct ChoiceField {
    pub value: String,
    pub label: String,
    pub checked: bool,
}

/// A question, ready to render.
#[derive(Debug, Clone)]
pub struct QuestionBlock {
    pub id: String,
    /// The form field's name (`q_<id>`), and the element id prefix.
    pub field: String,
    pub text: String,
    pub help: Option<String>,
    pub required: bool,
    pub controls: String,
    /// `radio`, `checkbox`, `textarea`, `number`, `date`, `url`.
    pub input: &'static str,
    pub choices: Vec<ChoiceField>,
    /// The value of a text-like field.
    pub value: String,
    /// The condition that shows the question, as the script reads it.
    pub shown_when: Option<String>,
    /// Hidden now (its condition does not hold).
    pub hidden: bool,
    /// The answer as people read it.
    pub answer: Option<String>,
    pub carried_forward: bool,
    /// The previous cycle's answer, when it differs.
    pub previous: Option<String>,
    pub error: Option<String>,
    pub min: String,
    pub max: String,
    /// Reviewers' comments on the question, oldest first.
    pub comments: Vec<CommentNote>,
    /// The form that comments on it, for a reviewer who may.
    pub comment_form: Option<CommentForm>,
}

/// A reviewer's comment beside a question.
#[derive(Debug, Clone)]
pub struct CommentNote {
    pub text: String,
    pub at: String,
}

/// The form beside a question on the review page that comments on it.
#[derive(Debug, Clone)]
pub struct CommentForm {
    pub action: String,
    /// The element id of the form (and the anchor to come back to).
    pub anchor: String,
    pub csrf: String,
    /// What a refused form had in it.
    pub text: String,
    pub error: Option<String>,
}

/// The questions a reviewer commented on, for a list at the top.
pub fn commented(sections: &[SectionBlock]) -> Vec<&QuestionBlock> {
    sections
        .iter()
        .flat_map(|s| &s.questions)
        .filter(|q| !q.comments.is_empty())
        .collect()
}

/// Puts each comment beside its question (of the stage `sections` show).
pub fn add_comments(sections: &mut [SectionBlock], comments: &[QuestionCommentView]) {
    for question in sections.iter_mut().flat_map(|s| s.questions.iter_mut()) {
        question.comments = comments
            .iter()
            .filter(|c| c.question == question.id)
            .map(|c| CommentNote {
                text: c.text.clone(),
                at: words::when(c.at),
            })
            .collect();
    }
}

#[derive(Debug, Clone)]
pub struct SectionBlock {
    pub title: String,
    pub questions: Vec<QuestionBlock>,
}

impl QuestionBlock {
    /// Shown, and answered without a problem.
    fn answered(&self) -> bool {
        !self.hidden
            && self.error.is_none()
            && (!self.value.trim().is_empty() || self.choices.iter().any(|c| c.checked))
    }
}

impl SectionBlock {
    /// The questions shown now.
    pub fn shown(&self) -> usize {
        self.questions.iter().filter(|q| !q.hidden).count()
    }

    /// The questions shown and answered without a problem.
    pub fn answered(&self) -> usize {
        self.questions.iter().filter(|q| q.answered()).count()
    }
}

/// How far a questionnaire form is, for the top of the form: questions
/// answered of those shown, and each problem linked to its question.
pub struct Progress {
    pub answered: usize,
    pub shown: usize,
    pub problems: Vec<Problem>,
}

/// A problem in the form's summary: the question, and what is wrong.
pub struct Problem {
    pub href: String,
    pub text: String,
}

pub fn progress(sections: &[SectionBlock]) -> Progress {
    let problems = sections
        .iter()
        .flat_map(|s| &s.questions)
        .filter_map(|q| {
            q.error.as_ref().map(|e| Problem {
                href: format!("#question-{}", q.id),
                text: format!("{}: this answer {e}", q.text.trim_end_matches(['?', '.'])),
            })
        })
        .collect();
    Progress {
        answered: sections.iter().map(SectionBlock::answered).sum(),
        shown: sections.iter().map(SectionBlock::shown).sum(),
        problems,
    }
}

/// An answer as people read it.
pub fn answer_text(question: &Question, value: &Value) -> String {
    let label_of = |v: &str| {
        question
            .options
            .iter()
            .find(|o| o.value == v)
            .map_or_else(|| v.to_owned(), |o| o.label.clone())
    };
    match value {
        Value::Bool(true) => "Yes".into(),
        Value::Bool(false) => "No".into(),
        Value::String(text) => label_of(text),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => label_of(s),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The blocks of a questionnaire with `answers` (current values) and, when
/// shown read-only, their views (`views`, for markers), with `errors`
/// beside their questions.
pub fn blocks(
    questionnaire: &Questionnaire,
    answers: &BTreeMap<String, Value>,
    views: Option<&BTreeMap<String, AnswerView>>,
    errors: &[FieldError],
) -> Vec<SectionBlock> {
    questionnaire
        .sections
        .iter()
        .map(|section| SectionBlock {
            title: section.title.clone(),
            questions: section
                .questions
                .iter()
                .map(|q| block(q, answers, views.and_then(|v| v.get(&q.id)), errors))
                .collect(),
        })
        .collect()
}

fn block(
    question: &Question,
    answers: &BTreeMap<String, Value>,
    view: Option<&AnswerView>,
    errors: &[FieldError],
) -> QuestionBlock {
    let value = answers.get(&question.id);
    let choices = match question.kind {
        QuestionKind::YesNo => [
            ("true", "Yes", Value::Bool(true)),
            ("false", "No", Value::Bool(false)),
        ]
        .into_iter()
        .map(|(v, label, json)| ChoiceField {
            value: v.into(),
            label: label.into(),
            checked: value == Some(&json),
        })
        .collect(),
        QuestionKind::SingleChoice | QuestionKind::MultiChoice => question
            .options
            .iter()
            .map(|o| ChoiceField {
                value: o.value.clone(),
                label: o.label.clone(),
                checked: match value {
                    Some(Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(&o.value)),
                    Some(Value::String(s)) => *s == o.value,
                    _ => false,
                },
            })
            .collect(),
        _ => Vec::new(),
    };
    let input = match question.kind {
        QuestionKind::YesNo | QuestionKind::SingleChoice => "radio",
        QuestionKind::MultiChoice => "checkbox",
        QuestionKind::Text => "textarea",
        QuestionKind::Number => "number",
        QuestionKind::Date => "date",
        QuestionKind::Url => "url",
    };
    let text_value = match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    QuestionBlock {
        id: question.id.clone(),
        field: format!("q_{}", question.id),
        text: question.text.clone(),
        help: question.help.clone(),
        required: question.required,
        controls: question.controls.join(", "),
        input,
        choices,
        value: text_value,
        shown_when: question
            .shown_when
            .as_ref()
            .and_then(|s| serde_json::to_string(s).ok()),
        hidden: !is_shown(question, answers),
        answer: value
            .map(|v| answer_text(question, v))
            .filter(|a| !a.is_empty()),
        carried_forward: view.is_some_and(|v| v.carried_forward),
        previous: view
            .and_then(|v| v.previous_value.as_ref())
            .map(|p| answer_text(question, p)),
        error: words::field_error(errors, &question.id),
        min: question.min.map(|m| m.to_string()).unwrap_or_default(),
        max: question.max.map(|m| m.to_string()).unwrap_or_default(),
        comments: Vec::new(),
        comment_form: None,
    }
}

/// The answers a posted questionnaire form gives, every question of it: a
/// field left empty (or not sent, as a hidden question's is not) clears the
/// question's answer. What the engine checks (types, options) it checks.
pub fn posted_answers(questionnaire: &Questionnaire, form: &Form) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for question in questionnaire.questions() {
        let field = format!("q_{}", question.id);
        let values = form.all(&field);
        let value = match question.kind {
            QuestionKind::YesNo => match values.first().copied() {
                Some("true") => Value::Bool(true),
                Some("false") => Value::Bool(false),
                Some(other) => Value::String(other.to_owned()),
                None => Value::Null,
            },
            QuestionKind::MultiChoice => {
                let chosen: Vec<Value> = values
                    .iter()
                    .map(|v| Value::String((*v).to_owned()))
                    .collect();
                if chosen.is_empty() {
                    Value::Null
                } else {
                    Value::Array(chosen)
                }
            }
            QuestionKind::Number => match values.first().map(|v| v.trim()) {
                None | Some("") => Value::Null,
                Some(text) => text
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(|n| {
                        // Whole numbers as integers, as people type them.
                        if n.as_f64()
                            .is_some_and(|f| f.fract() == 0.0 && f.abs() < 1e15)
                        {
                            Value::from(n.as_f64().unwrap_or_default() as i64)
                        } else {
                            Value::Number(n)
                        }
                    })
                    .unwrap_or_else(|| Value::String(text.to_owned())),
            },
            _ => match values.first().map(|v| v.trim()) {
                None | Some("") => Value::Null,
                Some(text) => Value::String(text.to_owned()),
            },
        };
        out.insert(question.id.clone(), value);
    }
    out
}

/// The current answers of a stage, with what a failed form posted over them
/// (so the person sees what they typed next to its problem).
pub fn merged(
    current: &BTreeMap<String, Value>,
    posted: Option<&BTreeMap<String, Value>>,
) -> BTreeMap<String, Value> {
    match posted {
        Some(posted) => posted
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        None => current.clone(),
    }
}
