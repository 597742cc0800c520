//! The console's words: every refusal of a service in one plain sentence,
//! and statuses, states, dates and conditions as people read them.

use chrono::{DateTime, Utc};

use super::page::Notice;
use crate::conditions::Conditions;
use crate::providers::CatalogueError;
use crate::reviews::ReviewError;
use crate::validation::FieldError;
use crate::workflow::engine::Refusal;

/// `approved_with_conditions` → `approved with conditions`.
pub fn label(name: &str) -> String {
    name.replace(['_', '-'], " ")
}

/// A role as people name it: `rai_reviewer` → `responsible AI reviewer`.
pub fn role(name: &str) -> String {
    match name {
        "rai_reviewer" => "responsible AI reviewer".into(),
        other => label(other),
    }
}

/// One person holding the role `name`: `a security reviewer`, `an approver`.
pub fn one_with_role(name: &str) -> String {
    let role = role(name);
    let article = if role.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {role}")
}

/// A sentence from a refusal's text: capitalised, with a full stop.
fn sentence(text: &str) -> String {
    let mut chars = text.trim().chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// A problem with a field, in words beside it: `is required…` under the
/// field's `name` (`a comment is required…`), anything else as a sentence,
/// without the API's backticks.
pub fn beside(name: &str, message: &str) -> String {
    let message = message.replace('`', "");
    if message.starts_with("is ") || message.starts_with("must ") {
        sentence(&format!("{name} {message}"))
    } else {
        sentence(&message)
    }
}

/// A date and time as people read it: `Mon 2 Mar 2026, 09:00 UTC`.
pub fn when(at: DateTime<Utc>) -> String {
    at.format("%a %-d %b %Y, %H:%M UTC").to_string()
}

/// A date as people read it: `2 Mar 2026`.
pub fn day(at: DateTime<Utc>) -> String {
    at.format("%-d %b %Y").to_string()
}

/// How a due time stands against `now`: `due in 3 days`, `overdue by 2 days`.
pub fn due(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let days = (at - now).num_hours() as f64 / 24.0;
    let count = |n: f64| {
        let n = n.abs().round() as i64;
        match n {
            0 => "today".to_owned(),
            1 => "1 day".to_owned(),
            n => format!("{n} days"),
        }
    };
    if at < now {
        match count(days).as_str() {
            "today" => "overdue since today".into(),
            text => format!("overdue by {text}"),
        }
    } else {
        match count(days).as_str() {
            "today" => "due today".into(),
            text => format!("due in {text}"),
        }
    }
}

/// Conditions in plain words, one line per kind of limit.
pub fn conditions(conditions: &Conditions) -> Vec<String> {
    let list = |items: Vec<String>| items.join(", ");
    let mut out = Vec::new();
    if let Some(use_cases) = &conditions.use_cases {
        out.push(format!(
            "Only for these use cases: {}",
            list(use_cases.iter().cloned().collect())
        ));
    }
    if let Some(classes) = &conditions.data_classes {
        out.push(format!(
            "Only with these data classes: {}",
            list(classes.iter().map(|c| label(c.as_str())).collect())
        ));
    }
    if let Some(regions) = &conditions.regions {
        out.push(format!(
            "Only in these regions: {}",
            list(regions.iter().cloned().collect())
        ));
    }
    if let Some(features) = &conditions.features_off {
        out.push(format!(
            "These features must stay off: {}",
            list(features.iter().map(|f| label(f)).collect())
        ));
    }
    out
}

/// A refusal of a review action, as the page that tried it shows it, and
/// the input problems to show beside their fields. `reload` is the page to
/// reload after a stale form.
pub fn review_refusal(error: &ReviewError, reload: &str) -> (Notice, Vec<FieldError>) {
    let plain = |text: &str| (Notice::bad(sentence(text)), Vec::new());
    match error {
        ReviewError::Stale { .. } => (
            Notice::bad(
                "Someone changed this review since you opened it, so your change was not saved.",
            )
            .with_link(reload, "Reload the review to see what changed"),
            Vec::new(),
        ),
        ReviewError::Refused(Refusal::SegregationOfDuties(text)) => (
            Notice::bad(format!(
                "{} (segregation of duties)",
                sentence(text).trim_end_matches('.')
            )),
            Vec::new(),
        ),
        ReviewError::Refused(Refusal::Forbidden(text))
        | ReviewError::Forbidden(text)
        | ReviewError::Conflict(text)
        | ReviewError::Unauthorized(text) => plain(text),
        ReviewError::Refused(Refusal::NotAllowed {
            action,
            subject,
            state,
        }) => plain(&format!(
            "you cannot {action} while {subject} is {}",
            label(state)
        )),
        ReviewError::Refused(Refusal::UnknownStage(stage)) => {
            plain(&format!("this review has no stage `{stage}`"))
        }
        ReviewError::Refused(Refusal::Invalid(errors)) | ReviewError::Invalid(errors) => (
            Notice::bad("Some of what you entered needs attention; see below."),
            errors.clone(),
        ),
        ReviewError::Refused(Refusal::MissingAnswers(questions)) => (
            Notice::bad("Some required questions are still unanswered; see below."),
            questions
                .iter()
                .map(|q| FieldError::new(q.clone(), "is required"))
                .collect(),
        ),
        ReviewError::NotFound(_)
        | ReviewError::FindingNotFound(_)
        | ReviewError::QuestionNotFound(_)
        | ReviewError::InvitationNotFound(_)
        | ReviewError::Withdrawn => plain(&error.to_string()),
        ReviewError::Store(_) | ReviewError::Internal(_) => {
            tracing::error!(%error, "a review action failed");
            plain("something went wrong on our side; the request id is in the server's logs")
        }
    }
}

/// A draft saved without the answers that were refused: which were kept,
/// and that the rest wait beside their questions.
pub fn draft_kept(refused: usize) -> Notice {
    let (these, need) = if refused == 1 {
        ("One answer", "needs")
    } else {
        ("Some answers", "need")
    };
    Notice::warn(format!(
        "Your other answers are saved. {these} could not be saved and {need} correcting below \
         before the questionnaire can be submitted."
    ))
}

/// A refusal of a catalogue change, in plain words.
pub fn catalogue_refusal(error: &CatalogueError) -> (Notice, Vec<FieldError>) {
    match error {
        CatalogueError::Stale { .. } => (
            Notice::bad(
                "Someone changed this entry since you opened it, so your change was not saved. Reload it and try again.",
            ),
            Vec::new(),
        ),
        CatalogueError::Invalid(errors) => (
            Notice::bad("Some of what you entered needs attention; see below."),
            errors.clone(),
        ),
        CatalogueError::Store(_) => {
            tracing::error!(%error, "a catalogue change failed");
            (
                Notice::bad(
                    "Something went wrong on our side; the request id is in the server's logs.",
                ),
                Vec::new(),
            )
        }
        other => (Notice::bad(sentence(&other.to_string())), Vec::new()),
    }
}

/// The message of `errors` for `field`, if any.
pub fn field_error(errors: &[FieldError], field: &str) -> Option<String> {
    errors
        .iter()
        .find(|e| e.field == field)
        .map(|e| e.message.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn refusals_read_as_sentences() {
        let sod = ReviewError::Refused(Refusal::SegregationOfDuties(
            "you started this review, so you may not decide its stages".into(),
        ));
        let (notice, _) = review_refusal(&sod, "/reviews/x");
        assert_eq!(
            notice.text,
            "You started this review, so you may not decide its stages (segregation of duties)"
        );
        let (stale, _) = review_refusal(
            &ReviewError::Stale {
                expected: 1,
                actual: 2,
            },
            "/reviews/x",
        );
        assert!(stale.text.contains("Someone changed this review"));
        assert_eq!(stale.link.unwrap().href, "/reviews/x");
    }

    #[test]
    fn roles_read_as_people() {
        assert_eq!(one_with_role("approver"), "an approver");
        assert_eq!(one_with_role("rai_reviewer"), "a responsible AI reviewer");
        assert_eq!(one_with_role("vendor_manager"), "a vendor manager");
    }

    #[test]
    fn due_times_read_as_distances() {
        let now = Utc::now();
        assert_eq!(due(now + TimeDelta::days(3), now), "due in 3 days");
        assert_eq!(due(now - TimeDelta::days(2), now), "overdue by 2 days");
        assert_eq!(due(now + TimeDelta::hours(2), now), "due today");
    }
}
