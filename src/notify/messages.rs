//! The words of each email, in the product's voice: what happened, what is
//! asked, by when, and the link to act. Each message fills a [`Notice`];
//! the templates under `templates/email/` render it as plain text and HTML,
//! sent together as multipart/alternative.

use askama::Template;
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
    pub fn review_link(&self) -> String {
        format!(
            "{}/v1/reviews/{}",
            self.public_url.trim_end_matches('/'),
            self.review_id
        )
    }

    fn stage_link(&self, stage: &str) -> String {
        format!("{}/stages/{stage}", self.review_link())
    }
}

/// A date as people read it.
pub fn date(at: DateTime<Utc>) -> String {
    at.format("%A %-d %B %Y, %H:%M UTC").to_string()
}

/// One line of a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub title: String,
    pub detail: String,
    pub link: String,
    pub overdue: bool,
}

/// The content of one email, before rendering.
#[derive(Debug, Clone, Default)]
pub struct Notice {
    pub title: String,
    pub greeting: String,
    pub paragraphs: Vec<String>,
    pub facts: Vec<(String, String)>,
    pub items: Vec<Item>,
    /// The button (HTML) or the last line (text): label and link.
    pub action: Option<(String, String)>,
    pub signature: String,
}

#[derive(Template)]
#[template(path = "email/notice.txt")]
struct Text<'a> {
    notice: &'a Notice,
}

#[derive(Template)]
#[template(path = "email/notice.html")]
struct Html<'a> {
    notice: &'a Notice,
}

impl Notice {
    /// Renders the notice into an email to `to`.
    pub fn email(self, to: Vec<String>) -> Email {
        let text = Text { notice: &self }
            .render()
            .unwrap_or_else(|_| self.paragraphs.join("\n\n"));
        let html = Html { notice: &self }.render().ok();
        Email {
            to,
            subject: self.title,
            text,
            html,
        }
    }
}

const TEAM: &str = "The vendor management team";
const CLEARANCE: &str = "Clearance";

fn review_facts(review: &ReviewContext<'_>, stage: Option<&str>) -> Vec<(String, String)> {
    let mut facts = vec![(
        "Review".to_owned(),
        format!("{} ({})", review.subject, review.workflow_title),
    )];
    if let Some(stage) = stage {
        facts.push(("Stage".to_owned(), stage.to_owned()));
    }
    facts
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
    let mut facts = review_facts(review, Some(stage_title));
    facts.push(("Questions".into(), questions.to_string()));
    if let Some(due) = due_at {
        facts.push(("Answers due".into(), date(due)));
    }
    facts.push(("Link works until".into(), date(expires_at)));
    let mut paragraphs = vec![format!(
        "As part of our due-diligence review of {subject} ({workflow}), we would like you to answer \
         the {stage_title} questionnaire ({questions} questions).",
        subject = review.subject,
        workflow = review.workflow_title,
    )];
    paragraphs.push(
        "You can save a draft and come back; submit when every required question is answered."
            .into(),
    );
    if let Some(due) = due_at {
        paragraphs.push(format!(
            "We would be grateful for your answers by {}.",
            date(due)
        ));
    }
    paragraphs.push(format!(
        "The link is personal to this questionnaire and works until {}.",
        date(expires_at)
    ));
    Notice {
        title: format!("Questionnaire: {stage_title} for {}", review.subject),
        greeting: "Hello,".into(),
        paragraphs,
        facts,
        action: Some(("Answer the questionnaire".into(), link.to_owned())),
        signature: format!("Thank you,\n{TEAM}"),
        ..Notice::default()
    }
    .email(vec![to.to_owned()])
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
    let mut paragraphs = vec![format!(
        "{by} decided \"{decision}\" on the {stage_title} stage of the review of {}.",
        review.subject
    )];
    if let Some(comment) = comment {
        paragraphs.push(format!("Their comment: \"{comment}\""));
    }
    let mut facts = review_facts(review, Some(stage_title));
    facts.push(("Decision".into(), decision.to_owned()));
    Notice {
        title: format!("{stage_title} of {}: {decision}", review.subject),
        greeting: "Hello,".into(),
        paragraphs,
        facts,
        action: Some(("Open the review".into(), review.review_link())),
        signature: CLEARANCE.into(),
        ..Notice::default()
    }
    .email(vec![to.to_owned()])
}

/// To whoever started the review: it has reached its outcome.
pub fn review_decided(
    review: &ReviewContext<'_>,
    to: &str,
    outcome: &str,
    valid_until: Option<DateTime<Utc>>,
) -> Email {
    let mut paragraphs = vec![format!(
        "The {} review of {} is {outcome}.",
        review.workflow_title, review.subject
    )];
    let mut facts = review_facts(review, None);
    facts.push(("Outcome".into(), outcome.to_owned()));
    if let Some(v) = valid_until {
        paragraphs.push(format!(
            "The clearance is valid until {}; a re-review opens before then.",
            date(v)
        ));
        facts.push(("Valid until".into(), date(v)));
    }
    Notice {
        title: format!("Review of {} {outcome}", review.subject),
        greeting: "Hello,".into(),
        paragraphs,
        facts,
        action: Some(("Open the review".into(), review.review_link())),
        signature: CLEARANCE.into(),
        ..Notice::default()
    }
    .email(vec![to.to_owned()])
}

/// What an overdue stage waits for, in words.
pub fn waiting_for(stage_state: &str) -> &'static str {
    match stage_state {
        "awaiting_answers" => "answers to its questionnaire, then their submission",
        _ => "a reviewer's decision (approve, request changes or reject)",
    }
}

/// Level 0 of a stage's ladder: a reminder to whoever must act.
pub fn reminder(
    review: &ReviewContext<'_>,
    to: Vec<String>,
    stage_key: &str,
    stage_title: &str,
    stage_state: &str,
    due_at: DateTime<Utc>,
) -> Email {
    let mut facts = review_facts(review, Some(stage_title));
    facts.push(("Waiting for".into(), waiting_for(stage_state).into()));
    facts.push(("Was due".into(), date(due_at)));
    Notice {
        title: format!("Reminder: {stage_title} of {} is overdue", review.subject),
        greeting: "Hello,".into(),
        paragraphs: vec![
            format!(
                "The {stage_title} stage of the review of {} was due on {} and is still waiting for {}.",
                review.subject,
                date(due_at),
                waiting_for(stage_state)
            ),
            "Please take it forward, or reassign it if someone else should.".into(),
        ],
        facts,
        action: Some(("Open the stage".into(), review.stage_link(stage_key))),
        signature: CLEARANCE.into(),
        ..Notice::default()
    }
    .email(to)
}

/// A later level of a stage's ladder: an escalation to a role or an address.
#[expect(clippy::too_many_arguments, reason = "each names what the email says")]
pub fn escalation(
    review: &ReviewContext<'_>,
    to: Vec<String>,
    stage_key: &str,
    stage_title: &str,
    stage_state: &str,
    due_at: DateTime<Utc>,
    level: usize,
    assignee: Option<&str>,
) -> Email {
    let mut facts = review_facts(review, Some(stage_title));
    facts.push(("Waiting for".into(), waiting_for(stage_state).into()));
    facts.push(("Was due".into(), date(due_at)));
    facts.push(("Escalation level".into(), level.to_string()));
    facts.push((
        "Assignee".into(),
        assignee.unwrap_or("nobody is assigned").to_owned(),
    ));
    Notice {
        title: format!(
            "Escalation {level}: {stage_title} of {} is overdue",
            review.subject
        ),
        greeting: "Hello,".into(),
        paragraphs: vec![
            format!(
                "The {stage_title} stage of the review of {} was due on {} and is still waiting for {}. \
                 Reminders have not moved it, so it is escalated to you.",
                review.subject,
                date(due_at),
                waiting_for(stage_state)
            ),
            "Please make sure someone takes it forward: assign it, decide it, or chase the supplier.".into(),
        ],
        facts,
        action: Some(("Open the stage".into(), review.stage_link(stage_key))),
        signature: CLEARANCE.into(),
        ..Notice::default()
    }
    .email(to)
}

/// To the vendor manager of the previous review: a re-review opened.
pub fn re_review_opened(
    review: &ReviewContext<'_>,
    to: &str,
    valid_until: Option<DateTime<Utc>>,
    first_due: Option<DateTime<Utc>>,
) -> Email {
    let mut facts = review_facts(review, None);
    if let Some(v) = valid_until {
        facts.push(("Current approval valid until".into(), date(v)));
    }
    if let Some(d) = first_due {
        facts.push(("First stages due".into(), date(d)));
    }
    Notice {
        title: format!("Re-review opened for {}", review.subject),
        greeting: "Hello,".into(),
        paragraphs: vec![
            format!(
                "The approval of {} expires {}, so a re-review has opened. Last time's answers are \
                 carried forward: please check them with the supplier and send the questionnaires again \
                 where anything changed.",
                review.subject,
                valid_until.map(date).map(|d| format!("on {d}")).unwrap_or_else(|| "soon".into())
            ),
        ],
        facts,
        action: Some(("Open the re-review".into(), review.review_link())),
        signature: CLEARANCE.into(),
        ..Notice::default()
    }
    .email(vec![to.to_owned()])
}

/// To the vendor manager: an approval lapsed without a newer decision.
pub fn approval_expired(
    review: &ReviewContext<'_>,
    to: &str,
    valid_until: DateTime<Utc>,
    re_review: Option<&str>,
) -> Email {
    let mut paragraphs = vec![format!(
        "The approval of {} expired on {}. Integrators asking for its status are now told `expired`, \
         and it is no longer allowed until a new decision.",
        review.subject,
        date(valid_until)
    )];
    paragraphs.push(match re_review {
        Some(id) => {
            format!("A re-review ({id}) is in progress; completing it restores the clearance.")
        }
        None => "No re-review is in progress: start one to restore the clearance.".into(),
    });
    let mut facts = review_facts(review, None);
    facts.push(("Expired".into(), date(valid_until)));
    Notice {
        title: format!("Approval expired: {}", review.subject),
        greeting: "Hello,".into(),
        paragraphs,
        facts,
        action: Some(("Open the review".into(), review.review_link())),
        signature: CLEARANCE.into(),
        ..Notice::default()
    }
    .email(vec![to.to_owned()])
}

/// To vendor managers: a model or provider was suspended by an admin.
pub fn suspension(
    public_url: &str,
    to: Vec<String>,
    subject: &str,
    reason: &str,
    by: &str,
) -> Email {
    Notice {
        title: format!("Suspended: {subject}"),
        greeting: "Hello,".into(),
        paragraphs: vec![
            format!(
                "{by} suspended {subject}, effective at once: every status check now answers `suspended` \
                 and denies its use."
            ),
            format!("Their reason: \"{reason}\""),
        ],
        facts: vec![("Subject".into(), subject.to_owned())],
        action: Some((
            "See its status".into(),
            format!("{}/v1/status/{subject}", public_url.trim_end_matches('/')),
        )),
        signature: CLEARANCE.into(),
        ..Notice::default()
    }
    .email(to)
}

/// Once a day, to one person: everything waiting for them, overdue first.
pub fn digest(to: &str, day: &str, items: Vec<Item>) -> Email {
    let overdue = items.iter().filter(|i| i.overdue).count();
    Notice {
        title: format!(
            "Your reviews for {day}: {} waiting, {overdue} overdue",
            items.len()
        ),
        greeting: "Good morning,".into(),
        paragraphs: vec![format!(
            "{} review stage{} wait{} for you{}.",
            items.len(),
            if items.len() == 1 { "" } else { "s" },
            if items.len() == 1 { "s" } else { "" },
            if overdue > 0 {
                format!("; {overdue} overdue, listed first")
            } else {
                String::new()
            }
        )],
        items,
        signature: CLEARANCE.into(),
        ..Notice::default()
    }
    .email(vec![to.to_owned()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> ReviewContext<'static> {
        ReviewContext {
            review_id: "r1",
            subject: "acme/model-a",
            workflow_title: "Model provider review",
            public_url: "https://clearance.example",
        }
    }

    #[test]
    fn a_reminder_names_review_stage_ask_due_date_and_link_in_both_forms() {
        let due = DateTime::parse_from_rfc3339("2026-03-07T09:00:00Z")
            .unwrap()
            .to_utc();
        let email = reminder(
            &context(),
            vec!["a@x.example".into()],
            "security",
            "Security <questionnaire>",
            "awaiting_answers",
            due,
        );
        let html = email.html.as_deref().unwrap();
        for body in [email.text.as_str(), html] {
            assert!(body.contains("acme/model-a"), "{body}");
            assert!(body.contains("answers to its questionnaire"), "{body}");
            assert!(body.contains("Saturday 7 March 2026"), "{body}");
            assert!(
                body.contains("https://clearance.example/v1/reviews/r1/stages/security"),
                "{body}"
            );
        }
        assert!(email.text.contains("Security <questionnaire>"));
        assert!(
            html.contains("Security &#60;questionnaire&#62;")
                || html.contains("&lt;questionnaire&gt;"),
            "{html}"
        );
    }
}
