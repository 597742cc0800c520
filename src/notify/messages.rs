//! The words of each email, in the product's voice: what happened, what is
//! asked, by when, and the link to act. Each message fills a [`Notice`];
//! the templates under `templates/email/` render it as plain text and HTML,
//! sent together as multipart/alternative.

use askama::Template;
use chrono::{DateTime, Utc};

use super::Email;
use crate::workflow::engine::Duty;

/// What every message about a review names.
#[derive(Debug, Clone)]
pub struct ReviewContext<'a> {
    pub review_id: &'a str,
    /// `provider` or `provider/model`.
    pub subject: &'a str,
    pub workflow_title: &'a str,
    pub public_url: &'a str,
    /// Who runs the reviews, when configured: suppliers read it.
    pub organisation: Option<&'a str>,
}

impl ReviewContext<'_> {
    /// "our", or the organisation's possessive when it is configured.
    pub fn our(&self) -> String {
        match self.organisation {
            Some(organisation) => format!("{organisation}'s"),
            None => "our".into(),
        }
    }

    /// Who asks, to start a sentence to a supplier: the organisation when
    /// it is configured, else "We".
    pub fn asking(&self) -> &str {
        self.organisation.unwrap_or("We")
    }

    /// The review's page in the console (which asks a stranger to sign in
    /// and then opens it).
    pub fn review_link(&self) -> String {
        review_page(self.public_url, self.review_id)
    }

    /// The stage, on the review's page.
    pub fn stage_link(&self, stage: &str) -> String {
        stage_page(self.public_url, self.review_id, stage)
    }
}

/// The console page of a review.
pub fn review_page(public_url: &str, review_id: &str) -> String {
    format!("{}/reviews/{review_id}", public_url.trim_end_matches('/'))
}

/// The console page of a provider (`provider`) or a model (`provider/model`).
pub fn subject_page(public_url: &str, subject: &str) -> String {
    let base = public_url.trim_end_matches('/');
    match subject.split_once('/') {
        Some((provider, model)) => format!("{base}/providers/{provider}/models/{model}"),
        None => format!("{base}/providers/{subject}"),
    }
}

/// A stage on the console page of its review.
pub fn stage_page(public_url: &str, review_id: &str, stage: &str) -> String {
    format!("{}#stage-{stage}", review_page(public_url, review_id))
}

/// A provider, or a model of it, by display names: `Orion 7 by Acme AI`.
pub fn named(provider: &str, model: Option<&str>) -> String {
    match model {
        Some(model) => format!("{model} by {provider}"),
        None => provider.to_owned(),
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
    /// The item's own link; empty when the email's one button opens it
    /// (a supplier's email carries its personal link once).
    pub link: String,
    pub overdue: bool,
}

/// A headed list of a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    pub heading: String,
    pub items: Vec<Item>,
}

/// The content of one email, before rendering.
#[derive(Debug, Clone, Default)]
pub struct Notice {
    pub title: String,
    pub greeting: String,
    pub paragraphs: Vec<String>,
    pub facts: Vec<(String, String)>,
    pub lists: Vec<List>,
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

impl Notice {
    /// A notice that greets its reader and ends with the `action` (label
    /// and link) to take; [`Notice::signed_by_clearance`] or
    /// [`Notice::signed_by_team`] signs it.
    fn hello(
        title: String,
        paragraphs: Vec<String>,
        facts: Vec<(String, String)>,
        (label, link): (&str, String),
    ) -> Notice {
        Notice {
            title,
            greeting: "Hello,".into(),
            paragraphs,
            facts,
            action: Some((label.to_owned(), link)),
            ..Notice::default()
        }
    }

    /// Signed by Clearance: to the people who work in it.
    fn signed_by_clearance(self) -> Notice {
        Notice {
            signature: CLEARANCE.into(),
            ..self
        }
    }

    /// Signed by the vendor management team (of the organisation, when
    /// configured): to a supplier's contact.
    fn signed_by_team(self, review: &ReviewContext<'_>) -> Notice {
        let team = match review.organisation {
            Some(organisation) => format!("{TEAM} at {organisation}"),
            None => TEAM.to_owned(),
        };
        Notice {
            signature: format!("Thank you,\n{team}"),
            ..self
        }
    }
}

/// The action of opening the review in the console.
fn open_review(review: &ReviewContext<'_>) -> (&'static str, String) {
    ("Open the review", review.review_link())
}

/// The action of opening a stage of the review in the console.
fn open_stage(review: &ReviewContext<'_>, stage_key: &str) -> (&'static str, String) {
    ("Open the stage", review.stage_link(stage_key))
}

/// `text` with its first letter in capitals: "our" starts a sentence as "Our".
fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The polite ask for a supplier's `what` (answers, changes) by when it is due.
fn grateful_by(what: &str, due_at: Option<DateTime<Utc>>) -> Option<String> {
    due_at.map(|due| format!("We would be grateful for your {what} by {}.", date(due)))
}

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

/// What an email to a supplier about one questionnaire names: the review,
/// the stage, when answers are due and until when the link works.
fn supplier_facts(
    review: &ReviewContext<'_>,
    stage_title: &str,
    due_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
) -> Vec<(String, String)> {
    let mut facts = review_facts(review, Some(stage_title));
    if let Some(due) = due_at {
        facts.push(("Answers due".into(), date(due)));
    }
    facts.push(("Link works until".into(), date(expires_at)));
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
    let mut facts = supplier_facts(review, stage_title, due_at, expires_at);
    facts.insert(2, ("Questions".into(), questions.to_string()));
    let mut paragraphs = vec![format!(
        "As part of {our} due-diligence review of {subject} ({workflow}), we would like you to answer \
         the {stage_title} questionnaire ({questions} questions).",
        our = review.our(),
        subject = review.subject,
        workflow = review.workflow_title,
    )];
    paragraphs.push(
        "You can save a draft and come back; submit when every required question is answered."
            .into(),
    );
    paragraphs.extend(grateful_by("answers", due_at));
    paragraphs.push(format!(
        "The link is personal to this questionnaire and works until {}.",
        date(expires_at)
    ));
    let title = format!("Questionnaire: {stage_title} for {}", review.subject);
    let action = ("Open the questionnaire", link.to_owned());
    Notice::hello(title, paragraphs, facts, action)
        .signed_by_team(review)
        .email(vec![to.to_owned()])
}

/// One questionnaire of an invitation to several.
#[derive(Debug, Clone)]
pub struct Questionnaire {
    pub title: String,
    pub questions: usize,
    /// Open to answers now (else it opens when the stages before it are approved).
    pub open: bool,
    pub due_at: Option<DateTime<Utc>>,
}

/// To a supplier contact: answer several questionnaires through one link.
pub fn invitation_to_all(
    review: &ReviewContext<'_>,
    to: &str,
    questionnaires: &[Questionnaire],
    link: &str,
    expires_at: DateTime<Utc>,
) -> Email {
    let mut facts = review_facts(review, None);
    facts.push(("Link works until".into(), date(expires_at)));
    let items = questionnaires
        .iter()
        .map(|q| Item {
            title: q.title.clone(),
            detail: match (q.open, q.due_at) {
                (true, Some(due)) => format!("{} questions; open now, answers due {}", q.questions, date(due)),
                (true, None) => format!("{} questions; open now", q.questions),
                (false, _) => format!(
                    "{} questions; opens when our earlier review steps are done (we will email you)",
                    q.questions
                ),
            },
            link: String::new(),
            overdue: false,
        })
        .collect();
    let paragraphs = vec![
        format!(
            "As part of {} due-diligence review of {} ({}), we would like you to answer the \
             questionnaires below. The button below opens them all; save drafts and come back \
             as often as you need.",
            review.our(),
            review.subject,
            review.workflow_title
        ),
        format!(
            "The link is personal to you and works until {}.",
            date(expires_at)
        ),
    ];
    let title = format!(
        "Questionnaires for {}: {} to answer",
        review.subject,
        questionnaires.len()
    );
    let action = ("Open the questionnaires", link.to_owned());
    Notice {
        lists: vec![List {
            heading: "Questionnaires".into(),
            items,
        }],
        ..Notice::hello(title, paragraphs, facts, action).signed_by_team(review)
    }
    .email(vec![to.to_owned()])
}

/// A questionnaire that opened for a contact invited before it did.
#[derive(Debug, Clone)]
pub struct Opened {
    pub title: String,
    pub due_at: Option<DateTime<Utc>>,
}

/// To a supplier contact invited before questionnaires opened: they are
/// open now. One message names every questionnaire that opened since the
/// contact was last emailed; `link` opens the one, or the list of them.
pub fn questionnaires_opened(
    review: &ReviewContext<'_>,
    to: &str,
    opened: &[Opened],
    link: &str,
    expires_at: DateTime<Utc>,
) -> Email {
    let asking = review.asking();
    let (title, paragraphs, facts, lists, label) = match opened {
        [one] => {
            let mut paragraphs = vec![format!(
                "{asking} would like your answers to the {} questionnaire about {}: it is open now.",
                one.title, review.subject
            )];
            paragraphs.extend(grateful_by("answers", one.due_at));
            (
                format!("Now open: {} for {}", one.title, review.subject),
                paragraphs,
                supplier_facts(review, &one.title, one.due_at, expires_at),
                Vec::new(),
                "Open the questionnaire",
            )
        }
        many => {
            let mut facts = review_facts(review, None);
            facts.push(("Link works until".into(), date(expires_at)));
            let items = many
                .iter()
                .map(|q| Item {
                    title: q.title.clone(),
                    detail: match q.due_at {
                        Some(due) => format!("open now, answers due {}", date(due)),
                        None => "open now".into(),
                    },
                    link: String::new(),
                    overdue: false,
                })
                .collect();
            (
                format!(
                    "Now open: {} questionnaires for {}",
                    many.len(),
                    review.subject
                ),
                vec![format!(
                    "{asking} would like your answers to {} questionnaires about {}: they are \
                     open now. The button below lists them; save drafts and come back as often \
                     as you need.",
                    many.len(),
                    review.subject
                )],
                facts,
                vec![List {
                    heading: "Open now".into(),
                    items,
                }],
                "Open the questionnaires",
            )
        }
    };
    Notice {
        lists,
        ..Notice::hello(title, paragraphs, facts, (label, link.to_owned())).signed_by_team(review)
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
    let decision = decision_words(decision);
    let mut paragraphs = vec![format!(
        "{by} decided on the {stage_title} stage of the review of {}: {decision}.",
        review.subject
    )];
    if let Some(comment) = comment {
        paragraphs.push(format!("Their comment: \"{comment}\""));
    }
    let mut facts = review_facts(review, Some(stage_title));
    facts.push(("Decision".into(), decision.to_owned()));
    let title = format!("{stage_title} of {}: {decision}", review.subject);
    Notice::hello(title, paragraphs, facts, open_review(review))
        .signed_by_clearance()
        .email(vec![to.to_owned()])
}

/// A stage's decision as a person reads it: `request_changes` is "changes
/// requested".
fn decision_words(decision: &str) -> &str {
    match decision {
        "approve" => "approved",
        "reject" => "rejected",
        "request_changes" => "changes requested",
        other => other,
    }
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
    let title = format!("Review of {} {outcome}", review.subject);
    Notice::hello(title, paragraphs, facts, open_review(review))
        .signed_by_clearance()
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
    let stage = OverdueStage {
        key: stage_key,
        title: stage_title,
        state: stage_state,
        due_at,
        level: 0,
        assignee: None,
    };
    overdue(review, to, &stage)
}

/// A stage past its due date, at a level of its ladder.
#[derive(Debug, Clone, Copy)]
pub struct OverdueStage<'a> {
    pub key: &'a str,
    pub title: &'a str,
    pub state: &'a str,
    pub due_at: DateTime<Utc>,
    /// 0 reminds whoever must act; a later level escalates to a role or
    /// an address.
    pub level: usize,
    pub assignee: Option<&'a str>,
}

/// The email of an overdue stage's level: at level 0 a reminder to whoever
/// must act, at a later level an escalation.
pub fn overdue(review: &ReviewContext<'_>, to: Vec<String>, stage: &OverdueStage<'_>) -> Email {
    let &OverdueStage {
        key: stage_key,
        title: stage_title,
        state: stage_state,
        due_at,
        level,
        assignee,
    } = stage;
    let mut facts = review_facts(review, Some(stage_title));
    facts.push(("Waiting for".into(), waiting_for(stage_state).into()));
    facts.push(("Was due".into(), date(due_at)));
    let late = format!(
        "The {stage_title} stage of the review of {} was due on {} and is still waiting for {}.",
        review.subject,
        date(due_at),
        waiting_for(stage_state)
    );
    let (title, paragraphs) = if level == 0 {
        (
            format!("Reminder: {stage_title} of {} is overdue", review.subject),
            vec![
                late,
                "Please take it forward, or reassign it if someone else should.".into(),
            ],
        )
    } else {
        facts.push(("Escalation level".into(), level.to_string()));
        facts.push((
            "Assignee".into(),
            assignee.unwrap_or("nobody is assigned").to_owned(),
        ));
        (
            format!(
                "Escalation {level}: {stage_title} of {} is overdue",
                review.subject
            ),
            vec![
                format!("{late} Reminders have not moved it, so it is escalated to you."),
                "Please make sure someone takes it forward: assign it, decide it, or chase the supplier.".into(),
            ],
        )
    };
    Notice::hello(title, paragraphs, facts, open_stage(review, stage_key))
        .signed_by_clearance()
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
    let paragraphs = vec![format!(
        "The approval of {} expires {}, so a re-review has opened. Last time's answers are \
         carried forward: please check them with the supplier and send the questionnaires again \
         where anything changed.",
        review.subject,
        valid_until
            .map(date)
            .map(|d| format!("on {d}"))
            .unwrap_or_else(|| "soon".into())
    )];
    let title = format!("Re-review opened for {}", review.subject);
    let action = ("Open the re-review", review.review_link());
    Notice::hello(title, paragraphs, facts, action)
        .signed_by_clearance()
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
        "The approval of {} expired on {}. Integrators asking for its status are now told it has \
         expired, and it is no longer allowed until a new decision.",
        review.subject,
        date(valid_until)
    )];
    paragraphs.push(match re_review {
        Some(_) => "A re-review is in progress; completing it restores the clearance.".into(),
        None => "No re-review is in progress: start one to restore the clearance.".into(),
    });
    let mut facts = review_facts(review, None);
    facts.push(("Expired".into(), date(valid_until)));
    let title = format!("Approval expired: {}", review.subject);
    Notice::hello(title, paragraphs, facts, open_review(review))
        .signed_by_clearance()
        .email(vec![to.to_owned()])
}

/// What the admin's switch did to a provider or model, for its notices.
#[derive(Debug, Clone, Copy)]
pub struct Switched<'a> {
    /// `provider` or `provider/model`: where its page is (never shown).
    pub slugs: &'a str,
    /// Its display names, as people read them.
    pub named: &'a str,
    /// Suspended (true) or resumed.
    pub suspended: bool,
    pub reason: Option<&'a str>,
}

impl Switched<'_> {
    /// Its page in the console.
    fn action(&self, public_url: &str) -> (&'static str, String) {
        ("See it in Clearance", subject_page(public_url, self.slugs))
    }

    /// The title, the effect in words, and the reason's sentence.
    fn words(&self) -> (String, &'static str, Option<String>) {
        let named = self.named;
        let reason = self.reason.map(|r| format!("The reason given: \"{r}\""));
        if self.suspended {
            (
                format!("Suspended: {named}"),
                "every status check now answers that it is suspended and denies its use",
                reason,
            )
        } else {
            (
                format!("Resumed: {named}"),
                "status checks answer from its reviews again, as before the suspension",
                reason,
            )
        }
    }
}

/// To vendor managers (the admins when none is known): a model or provider
/// was suspended or resumed by an admin.
pub fn switched(public_url: &str, to: Vec<String>, switch: &Switched<'_>, by: &str) -> Email {
    let (title, effect, reason) = switch.words();
    let verb = if switch.suspended {
        "suspended"
    } else {
        "resumed"
    };
    let mut paragraphs = vec![format!(
        "{by} {verb} {}, effective at once: {effect}.",
        switch.named
    )];
    paragraphs.extend(reason);
    let action = switch.action(public_url);
    let facts = vec![("Subject".into(), switch.named.to_owned())];
    Notice::hello(title, paragraphs, facts, action)
        .signed_by_clearance()
        .email(to)
}

/// To an integrator that asked about a provider or model lately (told of
/// its suspension, then of its resumption).
pub fn switched_for_integrator(
    public_url: &str,
    to: &str,
    switch: &Switched<'_>,
    integrator: Option<&crate::usage::Integrator>,
) -> Email {
    let (title, effect, reason) = switch.words();
    let named = switch.named;
    let mut facts = vec![("Subject".into(), named.to_owned())];
    let mut paragraphs = Vec::new();
    if switch.suspended {
        paragraphs.push(format!(
            "{named} was suspended, effective at once: {effect}. Calls through gateways that ask \
             Clearance are refused."
        ));
    } else {
        paragraphs.push(format!(
            "{named} was resumed, effective at once: {effect}. You are told because you were told \
             of its suspension."
        ));
    }
    if let Some(integrator) = integrator {
        let answers = integrator.allowed + integrator.denied;
        facts.push(("Asked as".into(), integrator.sub.clone()));
        facts.push((
            "Answers in the last 30 days".into(),
            format!("{answers} ({} allowed)", integrator.allowed),
        ));
        if !integrator.use_cases.is_empty() {
            facts.push(("Use cases".into(), integrator.use_cases.join(", ")));
        }
        paragraphs.push(format!(
            "You are told because {} asked about it in the last 30 days.",
            integrator.sub
        ));
    }
    paragraphs.extend(reason);
    let action = switch.action(public_url);
    Notice::hello(title, paragraphs, facts, action)
        .signed_by_clearance()
        .email(vec![to.to_owned()])
}

/// Once a day, to one person: the stages they may act on, overdue first,
/// then the supplier questionnaires they are accountable for chasing.
pub fn digest(
    to: &str,
    day: &str,
    (to_do, to_chase): (Vec<Item>, Vec<Item>),
    asked: Vec<Item>,
) -> Email {
    let overdue = to_do.iter().chain(&to_chase).filter(|i| i.overdue).count();
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut paragraphs = Vec::new();
    if !to_do.is_empty() {
        paragraphs.push(format!(
            "{} for you to act on{}.",
            plural(to_do.len(), "review stage waits", "review stages wait"),
            if to_do.iter().any(|i| i.overdue) {
                "; overdue ones first"
            } else {
                ""
            }
        ));
    }
    if !to_chase.is_empty() {
        paragraphs.push(format!(
            "{} of reviews you started still {} the supplier's answers.",
            plural(to_chase.len(), "questionnaire", "questionnaires"),
            if to_chase.len() == 1 {
                "waits for"
            } else {
                "wait for"
            }
        ));
    }
    if !asked.is_empty() {
        paragraphs.push(format!(
            "Integrators asked about {} nobody reviewed.",
            plural(asked.len(), "model", "models")
        ));
    }
    let mut lists = Vec::new();
    if !to_do.is_empty() {
        lists.push(List {
            heading: "For you to act on".into(),
            items: to_do,
        });
    }
    if !to_chase.is_empty() {
        lists.push(List {
            heading: "To chase with suppliers".into(),
            items: to_chase,
        });
    }
    let waiting: usize = lists.iter().map(|l| l.items.len()).sum();
    if !asked.is_empty() {
        lists.push(List {
            heading: "Asked for, not reviewed".into(),
            items: asked,
        });
    }
    Notice {
        title: format!("Your reviews for {day}: {waiting} waiting, {overdue} overdue"),
        greeting: "Good morning,".into(),
        paragraphs,
        lists,
        signature: CLEARANCE.into(),
        ..Notice::default()
    }
    .email(vec![to.to_owned()])
}

/// Why a person is told that work arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival<'a> {
    /// The supplier submitted the stage's questionnaire; it awaits review.
    SupplierSubmitted,
    /// The stage's answers were submitted and await a decision.
    ReadyForReview,
    /// The stage opened and its questionnaire awaits the person's answers.
    ToAnswer,
    /// A reviewer sent the stage's answers back to be changed.
    ChangesRequested { comment: &'a str },
    /// Someone assigned the person to answer or to decide the stage;
    /// `now`: it waits on that now.
    Assigned { by: &'a str, duty: Duty, now: bool },
    /// The stage has `have` of the `need` approvals it needs, and waits
    /// for another, from someone who has not approved it.
    AnotherApproval { have: usize, need: u32 },
    /// To the admins: everyone with the role that decides the stage is
    /// barred from deciding it.
    NobodyMayDecide { role: &'a str },
}

impl Arrival<'_> {
    /// The notice's name in the audit log.
    pub fn name(&self) -> &'static str {
        match self {
            Arrival::SupplierSubmitted => "supplier_submitted",
            Arrival::ReadyForReview => "ready_for_review",
            Arrival::ToAnswer => "to_answer",
            Arrival::ChangesRequested { .. } => "changes_requested",
            Arrival::Assigned { .. } => "assigned",
            Arrival::AnotherApproval { .. } => "another_approval",
            Arrival::NobodyMayDecide { .. } => "nobody_may_decide",
        }
    }
}

/// To the assignee, else the people of the role that acts next: a stage
/// waits for them now.
pub fn work_arrived(
    review: &ReviewContext<'_>,
    to: Vec<String>,
    stage_key: &str,
    stage_title: &str,
    arrival: Arrival<'_>,
    due_at: Option<DateTime<Utc>>,
) -> Email {
    let subject = review.subject;
    let (changes, approvals, nobody);
    let (title, opening, ask) = match arrival {
        Arrival::SupplierSubmitted => (
            format!("Ready for review: {stage_title} of {subject}"),
            format!(
                "The supplier has submitted the {stage_title} questionnaire of the review of {subject}."
            ),
            "Please review the answers and decide: approve, request changes or reject.",
        ),
        Arrival::ReadyForReview => (
            format!("Ready for review: {stage_title} of {subject}"),
            format!("The {stage_title} stage of the review of {subject} has been submitted."),
            "Please review the answers and decide: approve, request changes or reject.",
        ),
        Arrival::ToAnswer => (
            format!("To answer: {stage_title} of {subject}"),
            format!("The {stage_title} stage of the review of {subject} has opened."),
            "Please answer its questionnaire and submit it.",
        ),
        Arrival::ChangesRequested { comment } => {
            changes = format!(
                "Please change the answers as the comment asks, and submit again: \"{comment}\""
            );
            (
                format!("Changes requested: {stage_title} of {subject}"),
                format!(
                    "A reviewer sent the answers of the {stage_title} stage of the review of {subject} back."
                ),
                changes.as_str(),
            )
        }
        Arrival::Assigned { by, duty, now } => {
            let (verb, ask, later) = match duty {
                Duty::Answer => (
                    "answer",
                    "Please answer its questionnaire and submit it.",
                    "It does not wait for answers now; you will be told when it does.",
                ),
                Duty::Decide => (
                    "decide",
                    "Please review the answers and decide: approve, request changes or reject.",
                    "Its answers are not ready for a decision yet; you will be told when they are.",
                ),
            };
            (
                format!("To {verb}: {stage_title} of {subject}"),
                format!(
                    "{by} assigned you to {verb} the {stage_title} stage of the review of {subject}."
                ),
                if now { ask } else { later },
            )
        }
        Arrival::AnotherApproval { have, need } => {
            approvals = format!(
                "It has {have} of the {need} approvals it needs, each from a different person. \
                 Please review the answers and decide: approve, request changes or reject."
            );
            (
                format!("Another approval needed: {stage_title} of {subject}"),
                format!(
                    "The {stage_title} stage of the review of {subject} needs another approval."
                ),
                approvals.as_str(),
            )
        }
        Arrival::NobodyMayDecide { role } => {
            let role = role.replace('_', " ");
            nobody = format!(
                "Everyone known with the {role} role started this review, answered the stage or \
                 approved it already, so segregation of duties keeps each of them from deciding it."
            );
            (
                format!("Nobody may decide: {stage_title} of {subject}"),
                nobody,
                "Please give the role to someone else, or assign the stage to someone who may decide it.",
            )
        }
    };
    let mut facts = review_facts(review, Some(stage_title));
    let mut paragraphs = vec![opening, ask.to_owned()];
    if let Some(due) = due_at {
        facts.push(("Due".into(), date(due)));
        paragraphs.push(format!("It is due on {}.", date(due)));
    }
    Notice::hello(title, paragraphs, facts, open_stage(review, stage_key))
        .signed_by_clearance()
        .email(to)
}

/// To the supplier contact: the reviewer asks for changes to the answers.
pub fn changes_requested(
    review: &ReviewContext<'_>,
    to: &str,
    stage_title: &str,
    comment: &str,
    link: &str,
    due_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
) -> Email {
    let facts = supplier_facts(review, stage_title, due_at, expires_at);
    let mut paragraphs = vec![
        format!(
            "Thank you for your answers to the {stage_title} questionnaire about {}. {} reviewer \
             asks for some changes before they can decide:",
            review.subject,
            capitalised(&review.our())
        ),
        format!("\"{comment}\""),
        "Your answers are kept: change what the comment asks and submit again.".into(),
    ];
    paragraphs.extend(grateful_by("changes", due_at));
    let title = format!("Changes requested: {stage_title} for {}", review.subject);
    let action = ("Open the questionnaire", link.to_owned());
    Notice::hello(title, paragraphs, facts, action)
        .signed_by_team(review)
        .email(vec![to.to_owned()])
}

/// Why a supplier is reminded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupplierNudge {
    /// The answers are due soon.
    DueSoon,
    /// The answers were due and have not come.
    Overdue,
    /// The link stops working soon.
    LinkExpiring,
}

impl SupplierNudge {
    /// The reminder's name in the audit log.
    pub fn name(self) -> &'static str {
        match self {
            SupplierNudge::DueSoon => "due_soon",
            SupplierNudge::Overdue => "overdue",
            SupplierNudge::LinkExpiring => "link_expiring",
        }
    }
}

/// To the supplier contact: a questionnaire still waits for their answers.
pub fn supplier_reminder(
    review: &ReviewContext<'_>,
    to: &str,
    stage_title: &str,
    nudge: SupplierNudge,
    link: &str,
    due_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
) -> Email {
    let facts = supplier_facts(review, stage_title, due_at, expires_at);
    let (title, opening) = match nudge {
        SupplierNudge::DueSoon => (
            format!("Reminder: {stage_title} for {} is due soon", review.subject),
            format!(
                "A reminder that {} is waiting for your answers to the {stage_title} questionnaire \
                 about {}{}.",
                review.organisation.unwrap_or("our team"),
                review.subject,
                due_at
                    .map(|d| format!(", due on {}", date(d)))
                    .unwrap_or_default()
            ),
        ),
        SupplierNudge::Overdue => (
            format!("Overdue: {stage_title} for {}", review.subject),
            format!(
                "Your answers to {} {stage_title} questionnaire about {} were due{} and have not \
                 reached us yet. If something stops you, reply and tell us.",
                review.our(),
                review.subject,
                due_at
                    .map(|d| format!(" on {}", date(d)))
                    .unwrap_or_default()
            ),
        ),
        SupplierNudge::LinkExpiring => (
            format!(
                "Your link for {stage_title} ({}) stops working soon",
                review.subject
            ),
            format!(
                "The link to {} {stage_title} questionnaire about {} stops working on {}. Please \
                 submit your answers before then, or tell us if you need more time.",
                review.our(),
                review.subject,
                date(expires_at)
            ),
        ),
    };
    let paragraphs = vec![
        opening,
        "Drafts you saved are kept; submit when every required question is answered.".into(),
    ];
    let action = ("Open the questionnaire", link.to_owned());
    Notice::hello(title, paragraphs, facts, action)
        .signed_by_team(review)
        .email(vec![to.to_owned()])
}

/// To the vendor manager: a supplier's link expired before it was used.
pub fn link_expired_unused(
    review: &ReviewContext<'_>,
    to: Vec<String>,
    stage_key: &str,
    stage_title: &str,
    contact: &str,
    expired_at: DateTime<Utc>,
) -> Email {
    let mut facts = review_facts(review, Some(stage_title));
    facts.push(("Contact".into(), contact.to_owned()));
    facts.push(("Expired".into(), date(expired_at)));
    let paragraphs = vec![
        format!(
            "The link {contact} was sent to answer the {stage_title} questionnaire of the review \
             of {} expired on {} without a single answer saved.",
            review.subject,
            date(expired_at)
        ),
        "Check the contact is right, then invite them again from the stage.".into(),
    ];
    let title = format!("Link expired unused: {stage_title} of {}", review.subject);
    let action = open_stage(review, stage_key);
    Notice::hello(title, paragraphs, facts, action)
        .signed_by_clearance()
        .email(to)
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
            organisation: Some("Example Bank"),
        }
    }

    #[test]
    fn a_suppliers_invitation_names_the_organisation_asking() {
        let expires = DateTime::parse_from_rfc3339("2026-03-20T09:00:00Z")
            .unwrap()
            .to_utc();
        let email = invitation(
            &context(),
            "sec@supplier.example",
            "Security",
            12,
            "https://clearance.example/respond/t",
            None,
            expires,
        );
        assert!(
            email
                .text
                .contains("As part of Example Bank's due-diligence review of acme/model-a"),
            "{}",
            email.text
        );
        assert!(
            email
                .text
                .contains("The vendor management team at Example Bank"),
            "{}",
            email.text
        );
    }

    #[test]
    fn a_suppliers_email_carries_its_link_once_as_a_button() {
        let expires = DateTime::parse_from_rfc3339("2026-03-20T09:00:00Z")
            .unwrap()
            .to_utc();
        let link = format!("https://clearance.example/respond/{}", "t".repeat(450));
        let opened = |title: &str| Opened {
            title: title.into(),
            due_at: None,
        };
        let listed = Questionnaire {
            title: "Security".into(),
            questions: 12,
            open: false,
            due_at: None,
        };
        for (email, button) in [
            (
                invitation_to_all(
                    &context(),
                    "s@x.example",
                    &[listed.clone(), listed],
                    &link,
                    expires,
                ),
                "Open the questionnaires",
            ),
            (
                questionnaires_opened(
                    &context(),
                    "s@x.example",
                    &[opened("Security"), opened("Privacy")],
                    &link,
                    expires,
                ),
                "Open the questionnaires",
            ),
            (
                questionnaires_opened(
                    &context(),
                    "s@x.example",
                    &[opened("Security")],
                    &link,
                    expires,
                ),
                "Open the questionnaire",
            ),
        ] {
            let html = email.html.as_deref().unwrap();
            assert_eq!(email.text.matches(&link).count(), 1, "{}", email.text);
            assert!(email.text.lines().any(|l| l == link), "{}", email.text);
            assert_eq!(html.matches(&link).count(), 1, "{html}");
            assert!(html.contains(&format!(">{button}</a>")), "{html}");
            assert!(email.text.contains("Example Bank"), "{}", email.text);
        }
    }

    #[test]
    fn a_decision_is_told_in_words_not_its_code() {
        let email = decision_notice(
            &context(),
            "vm@x.example",
            "Security review",
            "request_changes",
            "sam",
            Some("Name the TLS versions."),
        );
        assert_eq!(
            email.subject,
            "Security review of acme/model-a: changes requested"
        );
        assert!(email.text.contains("sam decided on the Security review stage of the review of acme/model-a: changes requested."), "{}", email.text);
        assert!(!email.text.contains("request_changes"), "{}", email.text);
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
                body.contains("https://clearance.example/reviews/r1#stage-security"),
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
