//! The review engine: a pure state machine. Given a workflow definition, a
//! review's state, an action by a caller and the time, [`apply`] returns the
//! new state and its effects, or a typed refusal. No I/O happens here.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::answers::{self, Answers};
use super::definition::{Answerer, Severity, Stage, Tier, Workflow};
use crate::auth::Role;
use crate::auth::roles::{MANAGERS, STAFF};
use crate::conditions::Conditions;
use crate::ids::StageKey;
use crate::validation::FieldError;

crate::names::stored_enum! {
    pub enum ReviewKind {
        Initial,
        ReReview,
    }
}

crate::names::stored_enum! {
    pub enum ReviewState {
        InProgress,
        Approved,
        ApprovedWithConditions,
        Rejected,
        Withdrawn,
    }
}

crate::names::stored_enum! {
    pub enum StageState {
        Blocked,
        AwaitingAnswers,
        InReview,
        Approved,
        Rejected,
        Skipped,
    }
}

impl ReviewState {
    /// The states of a decision that stands (a withdrawal decides nothing).
    pub const DECIDED: [ReviewState; 3] = [
        ReviewState::Approved,
        ReviewState::ApprovedWithConditions,
        ReviewState::Rejected,
    ];

    pub fn is_decided(self) -> bool {
        !matches!(self, ReviewState::InProgress)
    }
}

impl StageState {
    /// Approved or skipped: later stages may open.
    pub fn lets_others_open(self) -> bool {
        matches!(self, StageState::Approved | StageState::Skipped)
    }

    pub fn is_open(self) -> bool {
        matches!(self, StageState::AwaitingAnswers | StageState::InReview)
    }
}

crate::names::stored_enum! {
    /// A reviewer's decision on a stage.
    pub enum Decision {
        Approve,
        Reject,
        RequestChanges,
    }
}

crate::names::named_enum! {
    /// Which part of a stage an assignment gives a person: answering its
    /// questionnaire, or deciding it.
    pub enum Duty {
        Answer,
        Decide,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Approval {
    pub by: String,
    pub at: DateTime<Utc>,
    pub conditions: Option<Conditions>,
}

/// A review's instance of one workflow stage.
#[derive(Debug, Clone, PartialEq)]
pub struct StageRecord {
    pub key: StageKey,
    pub state: StageState,
    /// Who is assigned to answer its questionnaire.
    pub answer_assignee: Option<String>,
    /// Who is assigned to decide it.
    pub decide_assignee: Option<String>,
    pub due_at: Option<DateTime<Utc>>,
    pub escalation_level: i32,
    /// Increases at each submission; approvals count within one round.
    pub round: i32,
    pub answers: Answers,
    /// Everyone who saved answers in this stage, ever.
    pub answerers: BTreeSet<String>,
    /// Approvals of the current round.
    pub approvals: Vec<Approval>,
    pub opened_at: Option<DateTime<Utc>>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub submitted_by: Option<String>,
    pub closed_at: Option<DateTime<Utc>>,
}

impl Duty {
    /// The duty a stage in `state` waits on: deciding while in review,
    /// answering before.
    pub fn waited_on(state: StageState) -> Duty {
        if state == StageState::InReview {
            Duty::Decide
        } else {
            Duty::Answer
        }
    }

    /// Of a stage's `(answer, decide)` assignees, the one for this duty.
    pub fn pick<T>(self, (answer, decide): (T, T)) -> T {
        match self {
            Duty::Answer => answer,
            Duty::Decide => decide,
        }
    }
}

impl StageRecord {
    /// The duty the stage waits on now: see [`Duty::waited_on`].
    pub fn duty(&self) -> Duty {
        Duty::waited_on(self.state)
    }

    /// Who is assigned to `duty`.
    pub fn assigned(&self, duty: Duty) -> Option<&str> {
        duty.pick((
            self.answer_assignee.as_deref(),
            self.decide_assignee.as_deref(),
        ))
    }

    /// Who is assigned to what the stage waits on now.
    pub fn assignee(&self) -> Option<&str> {
        self.assigned(self.duty())
    }
}

/// The duty an assignment that names none gives: deciding a stage in
/// review or one the supplier answers, else answering.
pub fn default_duty(definition: &Stage, state: Option<StageState>) -> Duty {
    if state == Some(StageState::InReview) || definition.answered_by == Answerer::Supplier {
        Duty::Decide
    } else {
        Duty::Answer
    }
}

/// The role a duty on a stage needs: its answering role (a vendor
/// manager, on the supplier's behalf, for a stage the supplier answers),
/// or its approver role.
pub fn duty_role(definition: &Stage, duty: Duty) -> Role {
    match (duty, definition.answered_by) {
        (Duty::Answer, Answerer::Role(role)) => role,
        (Duty::Answer, Answerer::Supplier) => Role::VendorManager,
        (Duty::Decide, _) => definition.approver_role,
    }
}

/// The engine's view of a review.
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    pub kind: ReviewKind,
    pub state: ReviewState,
    pub tier: Tier,
    pub tier_reason: Option<String>,
    pub started_by: String,
    /// In workflow order.
    pub stages: Vec<StageRecord>,
    pub conditions: Option<Conditions>,
    pub decided_at: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    /// Risk rules that have opened a finding (`stage:question:rule`), so each opens one once.
    pub finding_sources: BTreeSet<String>,
}

impl Review {
    pub fn stage(&self, key: &str) -> Option<&StageRecord> {
        self.stages.iter().find(|s| s.key == key)
    }

    fn stage_mut(&mut self, key: &str) -> &mut StageRecord {
        self.stages
            .iter_mut()
            .find(|s| s.key == key)
            .expect("stage exists: checked by the caller")
    }
}

/// Who acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Person {
        id: String,
        roles: BTreeSet<Role>,
    },
    /// A supplier respondent holding an invitation to one stage.
    Respondent {
        id: String,
        stage: StageKey,
    },
}

impl Caller {
    pub fn id(&self) -> &str {
        match self {
            Caller::Person { id, .. } | Caller::Respondent { id, .. } => id,
        }
    }

    fn has(&self, role: Role) -> bool {
        matches!(self, Caller::Person { roles, .. } if roles.contains(&role))
    }

    fn has_any(&self, wanted: &[Role]) -> bool {
        wanted.iter().any(|r| self.has(*r))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    SaveAnswers {
        stage: StageKey,
        answers: BTreeMap<String, Value>,
    },
    Submit {
        stage: StageKey,
    },
    Decide {
        stage: StageKey,
        decision: Decision,
        comment: Option<String>,
        conditions: Option<Conditions>,
    },
    /// Assign answering or deciding (`None`: what a stage answered by a
    /// role waits on now; deciding a stage the supplier answers).
    Assign {
        stage: StageKey,
        duty: Option<Duty>,
        assignee: Option<String>,
    },
    RaiseTier {
        tier: Tier,
        reason: String,
    },
    Withdraw {
        reason: String,
    },
}

impl Action {
    /// The stage the action is about, if it is about one.
    pub fn stage(&self) -> Option<&StageKey> {
        match self {
            Action::SaveAnswers { stage, .. }
            | Action::Submit { stage }
            | Action::Decide { stage, .. }
            | Action::Assign { stage, .. } => Some(stage),
            Action::RaiseTier { .. } | Action::Withdraw { .. } => None,
        }
    }

    /// What kind of action it is, without its input.
    pub fn verb(&self) -> Verb {
        match self {
            Action::SaveAnswers { .. } => Verb::SaveAnswers,
            Action::Submit { .. } => Verb::Submit,
            Action::Decide { decision, .. } => Verb::Decide(*decision),
            Action::Assign { .. } => Verb::Assign,
            Action::RaiseTier { .. } => Verb::RaiseTier,
            Action::Withdraw { .. } => Verb::Withdraw,
        }
    }
}

/// An action's kind, without its input: what [`may`] and [`allowed`]
/// answer about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    SaveAnswers,
    Submit,
    Decide(Decision),
    Assign,
    RaiseTier,
    Withdraw,
}

impl Verb {
    /// The verbs about one stage.
    pub const OF_A_STAGE: [Verb; 6] = [
        Verb::SaveAnswers,
        Verb::Submit,
        Verb::Decide(Decision::Approve),
        Verb::Decide(Decision::Reject),
        Verb::Decide(Decision::RequestChanges),
        Verb::Assign,
    ];
    /// The verbs about the whole review.
    pub const OF_THE_REVIEW: [Verb; 2] = [Verb::RaiseTier, Verb::Withdraw];

    fn words(self) -> &'static str {
        match self {
            Verb::SaveAnswers => "save answers",
            Verb::Submit => "submit",
            Verb::Decide(_) => "decide",
            Verb::Assign => "assign",
            Verb::RaiseTier => "raise the tier",
            Verb::Withdraw => "withdraw",
        }
    }
}

/// What a caller may do to a review now, and why not where not: the one
/// answer both the API (which refuses with it) and the console (which shows
/// exactly the allowed actions) use.
#[derive(Debug, Clone, PartialEq)]
pub struct Allowed {
    /// Each verb of each stage, and each verb of the review (stage `None`),
    /// with `Ok` or the refusal the API would give.
    pub answers: Vec<(Option<StageKey>, Verb, Result<(), Refusal>)>,
    /// The stages on whose questions the caller may comment now (see
    /// [`may_comment`]).
    pub commentable: Vec<StageKey>,
}

impl Allowed {
    /// Whether `verb` is allowed on `stage` (`None`: on the review).
    pub fn allows(&self, stage: Option<&str>, verb: Verb) -> bool {
        self.refusal(stage, verb).is_none()
            && self
                .answers
                .iter()
                .any(|(s, v, _)| s.as_deref() == stage && *v == verb)
    }

    /// Why `verb` is refused on `stage`, if it is.
    pub fn refusal(&self, stage: Option<&str>, verb: Verb) -> Option<&Refusal> {
        self.answers
            .iter()
            .find(|(s, v, _)| s.as_deref() == stage && *v == verb)
            .and_then(|(_, _, answer)| answer.as_ref().err())
    }
}

/// Everything `caller` may do to `review` now: each verb of each stage and
/// of the review, with the refusal of those it may not.
pub fn allowed(workflow: &Workflow, review: &Review, caller: &Caller) -> Allowed {
    let mut answers = Vec::new();
    for record in &review.stages {
        for verb in Verb::OF_A_STAGE {
            let answer = may(workflow, review, caller, verb, Some(&record.key));
            answers.push((Some(record.key.clone()), verb, answer));
        }
    }
    for verb in Verb::OF_THE_REVIEW {
        answers.push((None, verb, may(workflow, review, caller, verb, None)));
    }
    let commentable = review
        .stages
        .iter()
        .filter(|r| may_comment(workflow, review, caller, &r.key).is_ok())
        .map(|r| r.key.clone())
        .collect();
    Allowed {
        answers,
        commentable,
    }
}

/// Whether `caller` may take an action of kind `verb` (on `stage`, for the
/// verbs of a stage) now, whatever its input: first the role (403, before
/// anything of the review's state is told), then the review's and the
/// stage's state (409), then segregation of duties. [`apply`] asks this
/// first and checks only the input after it.
pub fn may(
    workflow: &Workflow,
    review: &Review,
    caller: &Caller,
    verb: Verb,
    stage: Option<&str>,
) -> Result<(), Refusal> {
    let definition = match (verb, stage) {
        (Verb::RaiseTier | Verb::Withdraw, _) => None,
        (_, Some(key)) => Some(find_stage(workflow, key)?),
        (_, None) => return Err(Refusal::UnknownStage(String::new())),
    };
    authorize(definition, verb, caller)?;
    if review.state != ReviewState::InProgress {
        return Err(Refusal::NotAllowed {
            action: verb.words(),
            subject: "the review".into(),
            state: review.state.as_str(),
        });
    }
    let Some(definition) = definition else {
        return Ok(());
    };
    let key = definition.key.as_str();
    let record = review
        .stage(key)
        .ok_or_else(|| Refusal::UnknownStage(key.to_owned()))?;
    let open = match verb {
        Verb::SaveAnswers | Verb::Submit => record.state == StageState::AwaitingAnswers,
        Verb::Decide(_) => record.state == StageState::InReview,
        Verb::Assign => matches!(
            record.state,
            StageState::Blocked | StageState::AwaitingAnswers | StageState::InReview
        ),
        Verb::RaiseTier | Verb::Withdraw => true,
    };
    if !open {
        return Err(Refusal::NotAllowed {
            action: verb.words(),
            subject: format!("stage `{key}`"),
            state: record.state.as_str(),
        });
    }
    if let Verb::Decide(decision) = verb {
        segregation_of_duties(review, definition, record, caller.id(), decision)?;
    }
    Ok(())
}

/// Whether `caller` may comment on a question of `stage` now: whoever
/// decides the stage (or an admin), while it is in review or sent back
/// for changes (awaiting answers after a submission).
pub fn may_comment(
    workflow: &Workflow,
    review: &Review,
    caller: &Caller,
    stage: &str,
) -> Result<(), Refusal> {
    let definition = find_stage(workflow, stage)?;
    if !caller.has(definition.approver_role) && !caller.has(Role::Admin) {
        return Err(Refusal::Forbidden(format!(
            "questions of stage `{}` are commented on by the `{}` role or an admin",
            definition.key, definition.approver_role
        )));
    }
    if review.state != ReviewState::InProgress {
        return Err(Refusal::NotAllowed {
            action: "comment",
            subject: "the review".into(),
            state: review.state.as_str(),
        });
    }
    let record = review
        .stage(stage)
        .ok_or_else(|| Refusal::UnknownStage(stage.to_owned()))?;
    let sent_back = record.state == StageState::AwaitingAnswers && record.round > 0;
    if record.state != StageState::InReview && !sent_back {
        return Err(Refusal::NotAllowed {
            action: "comment",
            subject: format!("stage `{stage}`"),
            state: record.state.as_str(),
        });
    }
    Ok(())
}

/// Who may not give `record` its next approval, by segregation of duties
/// (see [`segregation_of_duties`]): whoever started the review, answered
/// the stage or approved it already.
pub fn barred_from_approving<'a>(
    review: &'a Review,
    record: &'a StageRecord,
) -> impl Iterator<Item = &'a str> {
    std::iter::once(review.started_by.as_str())
        .chain(record.answerers.iter().map(String::as_str))
        .chain(record.approvals.iter().map(|a| a.by.as_str()))
}

/// Segregation of duties on a decision: not by who started the review, not
/// by who answered the stage, and no second approval by the same person.
fn segregation_of_duties(
    review: &Review,
    definition: &Stage,
    record: &StageRecord,
    id: &str,
    decision: Decision,
) -> Result<(), Refusal> {
    let stage = &record.key;
    if id == review.started_by {
        return Err(Refusal::SegregationOfDuties(
            "you started this review, so you may not decide its stages".into(),
        ));
    }
    if record.answerers.contains(id) {
        return Err(Refusal::SegregationOfDuties(format!(
            "you answered the questionnaire of stage `{stage}`, so you may not decide it"
        )));
    }
    if decision == Decision::Approve && record.approvals.iter().any(|a| a.by == id) {
        let needed = definition.approvals_for(review.tier);
        return Err(Refusal::SegregationOfDuties(format!(
            "you have already approved stage `{stage}`; it needs {needed} approvals from different people"
        )));
    }
    Ok(())
}

/// What a change causes besides the new state.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    StageOpened {
        stage: StageKey,
    },
    FindingOpened {
        source: String,
        stage: StageKey,
        severity: Severity,
        text: String,
    },
    Decided {
        stage: StageKey,
        decision: Decision,
        by: String,
        comment: Option<String>,
        conditions: Option<Conditions>,
        round: i32,
    },
    TierRaised {
        from: Tier,
        to: Tier,
        reason: String,
    },
    ReviewDecided {
        state: ReviewState,
    },
    ReviewWithdrawn {
        reason: String,
    },
}

/// Why an action was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("no stage `{0}` in this review")]
    UnknownStage(String),
    #[error("cannot {action} while {subject} is `{state}`")]
    NotAllowed {
        action: &'static str,
        subject: String,
        state: &'static str,
    },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    SegregationOfDuties(String),
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("required questions are unanswered: {}", .0.join(", "))]
    MissingAnswers(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub review: Review,
    pub effects: Vec<Effect>,
}

/// Starts a review: its first stages open at once.
pub fn start(
    workflow: &Workflow,
    kind: ReviewKind,
    started_by: &str,
    now: DateTime<Utc>,
) -> Outcome {
    start_at(workflow, kind, started_by, now, workflow.default_tier, None)
}

/// Starts a review at `tier` (a re-review starts where the last one ended),
/// with the reason for that tier.
pub fn start_at(
    workflow: &Workflow,
    kind: ReviewKind,
    started_by: &str,
    now: DateTime<Utc>,
    tier: Tier,
    tier_reason: Option<String>,
) -> Outcome {
    let stages = workflow
        .stages
        .iter()
        .map(|stage| StageRecord {
            key: stage.key.clone(),
            state: StageState::Blocked,
            answer_assignee: None,
            decide_assignee: None,
            due_at: None,
            escalation_level: 0,
            round: 0,
            answers: Answers::new(),
            answerers: BTreeSet::new(),
            approvals: Vec::new(),
            opened_at: None,
            submitted_at: None,
            submitted_by: None,
            closed_at: None,
        })
        .collect();
    let mut review = Review {
        kind,
        state: ReviewState::InProgress,
        tier,
        tier_reason,
        started_by: started_by.to_owned(),
        stages,
        conditions: None,
        decided_at: None,
        valid_until: None,
        finding_sources: BTreeSet::new(),
    };
    let mut effects = Vec::new();
    settle(workflow, &mut review, now, &mut effects);
    Outcome { review, effects }
}

/// Applies one action.
pub fn apply(
    workflow: &Workflow,
    review: &Review,
    action: &Action,
    caller: &Caller,
    now: DateTime<Utc>,
) -> Result<Outcome, Refusal> {
    may(
        workflow,
        review,
        caller,
        action.verb(),
        action.stage().map(StageKey::as_str),
    )?;
    let mut step = Step {
        workflow,
        caller,
        now,
        review: review.clone(),
        effects: Vec::new(),
    };
    match action {
        Action::SaveAnswers { stage, answers } => step.save_answers(stage, answers)?,
        Action::Submit { stage } => step.submit(stage)?,
        Action::Decide {
            stage,
            decision,
            comment,
            conditions,
        } => step.decide(stage, *decision, comment.as_deref(), conditions.as_ref())?,
        Action::Assign {
            stage,
            duty,
            assignee,
        } => step.assign(stage, *duty, assignee.as_deref())?,
        Action::RaiseTier { tier, reason } => step.raise_tier(*tier, reason)?,
        Action::Withdraw { reason } => {
            step.withdraw(reason)?;
            return Ok(Outcome {
                review: step.review,
                effects: step.effects,
            });
        }
    }
    settle(workflow, &mut step.review, now, &mut step.effects);
    Ok(Outcome {
        review: step.review,
        effects: step.effects,
    })
}

/// Whether `caller` holds the role for `verb` (on the stage `definition`),
/// whatever the state of the review.
fn authorize(definition: Option<&Stage>, verb: Verb, caller: &Caller) -> Result<(), Refusal> {
    match (verb, definition) {
        (Verb::SaveAnswers | Verb::Submit, Some(definition)) => {
            let stage = &definition.key;
            let allowed = match (caller, definition.answered_by) {
                (Caller::Respondent { stage: own, .. }, Answerer::Supplier) => own == stage,
                (Caller::Respondent { .. }, Answerer::Role(_)) => false,
                (person, Answerer::Supplier) => person.has(Role::VendorManager),
                (person, Answerer::Role(role)) => person.has(role),
            };
            if !allowed {
                let who = match definition.answered_by {
                    Answerer::Supplier => {
                        "the supplier (by invitation) or a vendor_manager".to_owned()
                    }
                    Answerer::Role(role) => format!("the `{role}` role"),
                };
                return Err(Refusal::Forbidden(format!(
                    "the questionnaire of stage `{stage}` is answered by {who}"
                )));
            }
        }
        (Verb::Decide(_), Some(definition)) => {
            if !caller.has(definition.approver_role) {
                return Err(Refusal::Forbidden(format!(
                    "stage `{}` is decided by the `{}` role",
                    definition.key, definition.approver_role
                )));
            }
        }
        (Verb::Assign, _) => {
            if !caller.has_any(MANAGERS) {
                return Err(Refusal::Forbidden(
                    "stages are assigned by a vendor_manager or an admin".into(),
                ));
            }
        }
        (Verb::RaiseTier, _) => {
            if !caller.has_any(STAFF) {
                return Err(Refusal::Forbidden(
                    "the tier is raised by a reviewer, an approver, a vendor_manager or an admin"
                        .into(),
                ));
            }
        }
        (Verb::Withdraw, _) => {
            if !caller.has_any(MANAGERS) {
                return Err(Refusal::Forbidden(
                    "a review is withdrawn by a vendor_manager or an admin".into(),
                ));
            }
        }
        (Verb::SaveAnswers | Verb::Submit | Verb::Decide(_), None) => {
            return Err(Refusal::UnknownStage(String::new()));
        }
    }
    Ok(())
}

/// One action in progress: the review as it becomes, and what it causes.
struct Step<'a> {
    workflow: &'a Workflow,
    caller: &'a Caller,
    now: DateTime<Utc>,
    review: Review,
    effects: Vec<Effect>,
}

impl Step<'_> {
    /// Draft answers: checked against the questionnaire, `null` clears one.
    fn save_answers(
        &mut self,
        stage: &StageKey,
        draft: &BTreeMap<String, Value>,
    ) -> Result<(), Refusal> {
        let definition = find_stage(self.workflow, stage)?;
        let errors = answers::check_draft(&definition.questionnaire, draft);
        if !errors.is_empty() {
            return Err(Refusal::Invalid(errors));
        }
        let by = self.caller.id().to_owned();
        let record = self.review.stage_mut(stage);
        for (id, value) in draft {
            if value.is_null() {
                record.answers.remove(id);
            } else {
                record.answers.insert(id.clone(), value.clone());
            }
        }
        record.answerers.insert(by);
        Ok(())
    }

    /// The answers go to review: every required, shown question answered;
    /// the stage's risk rules then run.
    fn submit(&mut self, stage: &StageKey) -> Result<(), Refusal> {
        let definition = find_stage(self.workflow, stage)?;
        let (now, by) = (self.now, self.caller.id().to_owned());
        let record = self.review.stage_mut(stage);
        let missing = answers::missing_required(&definition.questionnaire, &record.answers);
        if !missing.is_empty() {
            return Err(Refusal::MissingAnswers(missing));
        }
        record.state = StageState::InReview;
        record.round += 1;
        record.approvals.clear();
        record.submitted_at = Some(now);
        record.submitted_by = Some(by.clone());
        record.answerers.insert(by);
        apply_risk_rules(
            self.workflow,
            &mut self.review,
            definition,
            &mut self.effects,
        );
        Ok(())
    }

    /// A reviewer's sign-off, after the segregation-of-duties checks.
    fn decide(
        &mut self,
        stage: &StageKey,
        decision: Decision,
        comment: Option<&str>,
        conditions: Option<&Conditions>,
    ) -> Result<(), Refusal> {
        let definition = find_stage(self.workflow, stage)?;
        let comment = comment
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        let mut errors = Vec::new();
        if decision != Decision::Approve && comment.is_none() {
            errors.push(FieldError::new(
                "comment",
                "is required to reject or request changes",
            ));
        }
        if decision != Decision::Approve && conditions.is_some() {
            errors.push(FieldError::new(
                "conditions",
                "only an approval carries conditions",
            ));
        }
        if !errors.is_empty() {
            return Err(Refusal::Invalid(errors));
        }
        let conditions = conditions.cloned().filter(|c| !c.is_empty());
        let (tier, now, by) = (self.review.tier, self.now, self.caller.id().to_owned());
        let record = self.review.stage_mut(stage);
        self.effects.push(Effect::Decided {
            stage: stage.clone(),
            decision,
            by: by.clone(),
            comment,
            conditions: conditions.clone(),
            round: record.round,
        });
        match decision {
            Decision::Approve => {
                record.approvals.push(Approval {
                    by,
                    at: now,
                    conditions,
                });
                if record.approvals.len() >= definition.approvals_for(tier) as usize {
                    record.state = StageState::Approved;
                    record.closed_at = Some(now);
                }
            }
            Decision::Reject => {
                record.state = StageState::Rejected;
                record.closed_at = Some(now);
            }
            Decision::RequestChanges => {
                record.state = StageState::AwaitingAnswers;
                record.approvals.clear();
                record.due_at = Some(now + definition.sla.delta);
                record.escalation_level = 0;
            }
        }
        Ok(())
    }

    /// Assigns a stage's answering or its deciding to a person (or to
    /// nobody). Deciding is never given to someone segregation of duties
    /// bars from it (who started the review, answered the stage or is
    /// assigned to answer it), nor answering to its decider.
    fn assign(
        &mut self,
        stage: &StageKey,
        duty: Option<Duty>,
        assignee: Option<&str>,
    ) -> Result<(), Refusal> {
        let definition = find_stage(self.workflow, stage)?;
        let duty = duty
            .unwrap_or_else(|| default_duty(definition, self.review.stage(stage).map(|r| r.state)));
        let started_by = self.review.started_by.clone();
        let record = self.review.stage_mut(stage);
        if let Some(who) = assignee {
            let barred = match duty {
                Duty::Decide if who == started_by => Some(format!(
                    "{who} started this review, so may not decide its stages"
                )),
                Duty::Decide if record.answerers.contains(who) => Some(format!(
                    "{who} answered the questionnaire of stage `{stage}`, so may not decide it"
                )),
                Duty::Decide if record.answer_assignee.as_deref() == Some(who) => Some(format!(
                    "{who} is assigned to answer stage `{stage}`, so may not decide it"
                )),
                Duty::Answer if record.decide_assignee.as_deref() == Some(who) => Some(format!(
                    "{who} is assigned to decide stage `{stage}`, so may not answer it"
                )),
                _ => None,
            };
            if let Some(why) = barred {
                return Err(Refusal::Invalid(vec![FieldError::new("assignee", why)]));
            }
        }
        let slot = duty.pick((&mut record.answer_assignee, &mut record.decide_assignee));
        *slot = assignee.map(str::to_owned);
        Ok(())
    }

    /// A person raises the tier, with a reason (never lowers it).
    fn raise_tier(&mut self, tier: Tier, reason: &str) -> Result<(), Refusal> {
        let mut errors = Vec::new();
        if tier <= self.review.tier {
            errors.push(FieldError::new(
                "tier",
                format!(
                    "can only be raised: the review is already `{}`",
                    self.review.tier
                ),
            ));
        }
        if reason.trim().is_empty() {
            errors.push(FieldError::new("reason", "is required"));
        }
        if !errors.is_empty() {
            return Err(Refusal::Invalid(errors));
        }
        raise_tier(
            self.workflow,
            &mut self.review,
            tier,
            reason.trim().to_owned(),
            &mut self.effects,
        );
        Ok(())
    }

    /// The review ends without a decision; its open stages close.
    fn withdraw(&mut self, reason: &str) -> Result<(), Refusal> {
        if reason.trim().is_empty() {
            return Err(Refusal::Invalid(vec![FieldError::new(
                "reason",
                "is required",
            )]));
        }
        self.review.state = ReviewState::Withdrawn;
        for record in &mut self.review.stages {
            if record.state.is_open() || record.state == StageState::Blocked {
                record.closed_at = Some(self.now);
            }
        }
        self.effects.push(Effect::ReviewWithdrawn {
            reason: reason.trim().to_owned(),
        });
        Ok(())
    }
}

fn find_stage<'w>(workflow: &'w Workflow, key: &str) -> Result<&'w Stage, Refusal> {
    workflow
        .stage(key)
        .ok_or_else(|| Refusal::UnknownStage(key.to_owned()))
}

/// Checks that `key` takes answers now (who may answer it is
/// [`authorize`]'s), and returns its definition.
/// Evaluates the submitted stage's risk rules: raise the tier, open findings.
fn apply_risk_rules(
    workflow: &Workflow,
    review: &mut Review,
    stage: &Stage,
    effects: &mut Vec<Effect>,
) {
    let answers = review
        .stage(&stage.key)
        .map(|s| s.answers.clone())
        .unwrap_or_default();
    let mut highest: Option<(Tier, String)> = None;
    for question in stage.questionnaire.questions() {
        if !answers::is_shown(question, &answers) {
            continue;
        }
        for (index, rule) in question.risk.iter().enumerate() {
            if !rule.when.matches(answers.get(&question.id)) {
                continue;
            }
            if let Some(tier) = rule.min_tier
                && tier > review.tier
                && highest.as_ref().is_none_or(|(h, _)| tier > *h)
            {
                highest = Some((
                    tier,
                    format!(
                        "the answer to \"{}\" in the {} stage",
                        question.text.trim_end_matches(['?', '.']),
                        stage.title
                    ),
                ));
            }
            if let Some(finding) = &rule.finding {
                let source = format!("{}:{}:{index}", stage.key, question.id);
                if review.finding_sources.insert(source.clone()) {
                    effects.push(Effect::FindingOpened {
                        source,
                        stage: stage.key.clone(),
                        severity: finding.severity,
                        text: finding.text.clone(),
                    });
                }
            }
        }
    }
    if let Some((tier, reason)) = highest {
        raise_tier(workflow, review, tier, reason, effects);
    }
}

/// Raises the tier: stages the new tier needs come back, and approved stages
/// that now need more approvals go back to review.
fn raise_tier(
    workflow: &Workflow,
    review: &mut Review,
    tier: Tier,
    reason: String,
    effects: &mut Vec<Effect>,
) {
    effects.push(Effect::TierRaised {
        from: review.tier,
        to: tier,
        reason: reason.clone(),
    });
    review.tier = tier;
    review.tier_reason = Some(reason);
    for record in &mut review.stages {
        let Some(definition) = workflow.stage(&record.key) else {
            continue;
        };
        match record.state {
            StageState::Skipped if definition.applies_to(tier) => {
                record.state = StageState::Blocked
            }
            StageState::Approved
                if record.approvals.len() < definition.approvals_for(tier) as usize =>
            {
                record.state = StageState::InReview;
                record.closed_at = None;
            }
            _ => {}
        }
    }
}

/// Opens stages whose dependencies are done (or skips them), then decides the
/// review when a stage is rejected or every stage is done.
fn settle(workflow: &Workflow, review: &mut Review, now: DateTime<Utc>, effects: &mut Vec<Effect>) {
    loop {
        let mut changed = false;
        for index in 0..review.stages.len() {
            if review.stages[index].state != StageState::Blocked {
                continue;
            }
            let Some(definition) = workflow.stage(&review.stages[index].key) else {
                continue;
            };
            let ready = definition.after.iter().all(|dep| {
                review
                    .stage(dep)
                    .is_some_and(|s| s.state.lets_others_open())
            });
            if !ready {
                continue;
            }
            let record = &mut review.stages[index];
            if definition.applies_to(review.tier) {
                record.state = StageState::AwaitingAnswers;
                record.opened_at = Some(now);
                record.due_at = Some(now + definition.sla.delta);
                record.escalation_level = 0;
                effects.push(Effect::StageOpened {
                    stage: record.key.clone(),
                });
            } else {
                record.state = StageState::Skipped;
            }
            changed = true;
        }
        if !changed {
            break;
        }
    }
    if review.state != ReviewState::InProgress {
        return;
    }
    if review
        .stages
        .iter()
        .any(|s| s.state == StageState::Rejected)
    {
        review.state = ReviewState::Rejected;
        review.decided_at = Some(now);
        effects.push(Effect::ReviewDecided {
            state: review.state,
        });
    } else if review.stages.iter().all(|s| s.state.lets_others_open()) {
        let conditions = review
            .stages
            .iter()
            .filter(|s| s.state == StageState::Approved)
            .flat_map(|s| s.approvals.iter().filter_map(|a| a.conditions.clone()))
            .reduce(|a, b| a.merge(&b));
        review.state = if conditions.is_some() {
            ReviewState::ApprovedWithConditions
        } else {
            ReviewState::Approved
        };
        review.conditions = conditions;
        review.decided_at = Some(now);
        review.valid_until = Some(now + workflow.policy(review.tier).re_review_every.delta);
        effects.push(Effect::ReviewDecided {
            state: review.state,
        });
    }
}

#[cfg(test)]
mod tests;
