//! The words of each email, in the product's voice: what happened, what is
//! asked, by when, and the link to act.

use chrono::{DateTime, Utc};

use super::Email;

/// What every message about a review names.
#[derive(Debug, Clone)]
pub struct ReviewContext<'a> {
    pub review_id: &'a str,
    /// `provider` or `provider/model`.
    pub subject: &'a str,
    pub workflow_title: &'a str,
    pub public_url: &'a str,
}

impl ReviewContext<'_> {
    fn review_link(&self) -> String {
        format!(
            "{}/v1/reviews/{}",
            self.public_url.trim_end_matches('/'),
            self.review_id
        )
    }
}

fn date(at: DateTime<Utc>) -> String {
    at.format("%A %-d %B %Y, %H:%M UTC").to_string()
}

/// To a supplier contact: answer a questionnaire through a link.
pub fn invitation(
    review: &ReviewContext<'_>,
    to: &str,
    stage_title: &str,
    questions: usize,
    link: &str,
    due_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
) -> Email {
    let due = due_at
        .map(|d| format!("We would be grateful for your answers by {}.\n", date(d)))
        .unwrap_or_default();
    Email {
        to: vec![to.to_owned()],
        subject: format!("Questionnaire: {stage_title} for {}", review.subject),
        text: format!(
            "Hello,\n\n\
             As part of our due-diligence review of {subject} ({workflow}), we would like you to answer \
             the {stage_title} questionnaire ({questions} questions).\n\n\
             Open it here:\n{link}\n\n\
             You can save a draft and come back; submit when every required question is answered.\n\
             {due}\
             The link is personal to this questionnaire and works until {expires}.\n\n\
             Thank you,\nThe vendor management team\n",
            subject = review.subject,
            workflow = review.workflow_title,
            expires = date(expires_at),
        ),
    }
}

/// To whoever started the review: a stage was decided.
pub fn decision_notice(
    review: &ReviewContext<'_>,
    to: &str,
    stage_title: &str,
    decision: &str,
    by: &str,
    comment: Option<&str>,
) -> Email {
    let comment = comment
        .map(|c| format!("\nTheir comment:\n> {}\n", c.replace('\n', "\n> ")))
        .unwrap_or_default();
    Email {
        to: vec![to.to_owned()],
        subject: format!("{stage_title} of {}: {decision}", review.subject),
        text: format!(
            "{by} decided \"{decision}\" on the {stage_title} stage of the review of {subject}.\n{comment}\n\
             The review: {link}\n",
            subject = review.subject,
            link = review.review_link(),
        ),
    }
}

/// To whoever started the review: it has reached its outcome.
pub fn review_decided(
    review: &ReviewContext<'_>,
    to: &str,
    outcome: &str,
    valid_until: Option<DateTime<Utc>>,
) -> Email {
    let validity = valid_until
        .map(|v| {
            format!(
                "The clearance is valid until {}; a re-review opens before then.\n",
                date(v)
            )
        })
        .unwrap_or_default();
    Email {
        to: vec![to.to_owned()],
        subject: format!("Review of {} {outcome}", review.subject),
        text: format!(
            "The {workflow} review of {subject} is {outcome}.\n{validity}\nThe review: {link}\n",
            workflow = review.workflow_title,
            subject = review.subject,
            link = review.review_link(),
        ),
    }
}
