//! Checking answers against their questions: types, options, ranges, and
//! which questions are shown (and so required) given the other answers.

use std::collections::BTreeMap;

use serde_json::Value;

use super::definition::{Question, QuestionKind, Questionnaire};
use crate::validation::FieldError;

/// Longest text answer when a question sets no `max_length`.
pub const DEFAULT_TEXT_LIMIT: usize = 5000;

pub type Answers = BTreeMap<String, Value>;

/// Checks one answer; the message says what the question expects.
pub fn check_value(question: &Question, value: &Value) -> Result<(), String> {
    match question.kind {
        QuestionKind::YesNo => {
            if !value.is_boolean() {
                return Err("expects true or false".into());
            }
        }
        QuestionKind::SingleChoice => {
            let known = value
                .as_str()
                .is_some_and(|v| question.options.iter().any(|o| o.value == v));
            if !known {
                return Err(format!("expects one of: {}", option_list(question)));
            }
        }
        QuestionKind::MultiChoice => {
            let Some(items) = value.as_array() else {
                return Err(format!("expects an array of: {}", option_list(question)));
            };
            for item in items {
                if !item
                    .as_str()
                    .is_some_and(|v| question.options.iter().any(|o| o.value == v))
                {
                    return Err(format!(
                        "{item} is not an option; expects an array of: {}",
                        option_list(question)
                    ));
                }
            }
            let mut distinct: Vec<_> = items.iter().filter_map(Value::as_str).collect();
            distinct.sort_unstable();
            distinct.dedup();
            if distinct.len() != items.len() {
                return Err("lists an option twice".into());
            }
        }
        QuestionKind::Text => {
            let Some(text) = value.as_str() else {
                return Err("expects text".into());
            };
            let limit = question.max_length.unwrap_or(DEFAULT_TEXT_LIMIT);
            if text.chars().count() > limit {
                return Err(format!("must be at most {limit} characters long"));
            }
        }
        QuestionKind::Number => {
            let Some(number) = value.as_f64() else {
                return Err("expects a number".into());
            };
            if let Some(min) = question.min
                && number < min
            {
                return Err(format!("must be at least {min}"));
            }
            if let Some(max) = question.max
                && number > max
            {
                return Err(format!("must be at most {max}"));
            }
        }
        QuestionKind::Date => {
            let ok = value
                .as_str()
                .is_some_and(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok());
            if !ok {
                return Err("expects a date written YYYY-MM-DD".into());
            }
        }
        QuestionKind::Url => {
            let ok = value.as_str().is_some_and(|u| {
                u.len() <= 2000
                    && crate::validation::line_fault(u).is_none()
                    && url::Url::parse(u).is_ok_and(|p| {
                        matches!(p.scheme(), "http" | "https") && p.host_str().is_some()
                    })
            });
            if !ok {
                return Err("expects an http:// or https:// URL".into());
            }
        }
    }
    Ok(())
}

fn option_list(question: &Question) -> String {
    question
        .options
        .iter()
        .map(|o| o.value.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks a draft of answers (`null` clears an answer); one error per question.
pub fn check_draft(
    questionnaire: &Questionnaire,
    draft: &BTreeMap<String, Value>,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (id, value) in draft {
        match questionnaire.questions().find(|q| &q.id == id) {
            None => errors.push(FieldError::new(
                id.clone(),
                format!(
                    "is not a question of the `{}` questionnaire",
                    questionnaire.key
                ),
            )),
            Some(_) if value.is_null() => {}
            Some(question) => {
                if let Err(message) = check_value(question, value) {
                    errors.push(FieldError::new(id.clone(), message));
                }
            }
        }
    }
    errors
}

/// True when `question` is shown given `answers`.
pub fn is_shown(question: &Question, answers: &Answers) -> bool {
    match &question.shown_when {
        None => true,
        Some(shown) => shown.condition.matches(answers.get(&shown.question)),
    }
}

/// Required questions that are shown and unanswered, in questionnaire order.
pub fn missing_required(questionnaire: &Questionnaire, answers: &Answers) -> Vec<String> {
    questionnaire
        .questions()
        .filter(|q| q.required && is_shown(q, answers))
        .filter(|q| answers.get(&q.id).is_none_or(is_blank))
        .map(|q| q.id.clone())
        .collect()
}

fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}
