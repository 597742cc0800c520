//! Who is told what a change asks of them, in the change's own transaction:
//! whoever started the review hears of each decision and of the outcome; the
//! person a stage now waits for — its assignee, else the people of the role
//! that acts next — hears that it arrived (submitted, ready for review, open
//! to answer, sent back with changes, assigned to them); the supplier
//! contact hears that the reviewer asked for changes, with a working link,
//! and that questionnaires opened (through [`super::openings`]).
//! A stage nobody can be told about is recorded in the audit log.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::ReviewError;
use super::service::Reviews;
use super::store::{self, Loaded, utc};
use crate::audit::{self, Change};
use crate::auth::RespondentScope;
use crate::ids::{InvitationId, ReviewId, StageKey};
use crate::notify;
use crate::notify::messages::{self, Arrival};
use crate::people;
use crate::unit::Tx;
use crate::workflow::engine::{
    self, Caller, Decision, Duty, Effect, Outcome, StageRecord, StageState,
};
use crate::workflow::{Answerer, Stage};

impl Reviews {
    /// Queues every email a change calls for.
    pub(super) fn tell(
        &self,
        tx: &mut Tx<'_>,
        loaded: &Loaded,
        before: &engine::Review,
        outcome: &Outcome,
        caller: &Caller,
    ) -> Result<(), ReviewError> {
        self.tell_starter(tx, loaded, outcome)?;
        for stage in &outcome.review.stages {
            let Some(definition) = loaded.workflow.workflow.stage(&stage.key) else {
                continue;
            };
            let was = before.stage(&stage.key);
            if let Some(arrival) = arrival(was, stage, definition, outcome, caller) {
                self.tell_arrival(tx, loaded, &outcome.review, stage, definition, arrival)?;
            }
            for (duty, who) in newly_assigned(was, stage) {
                self.tell_assigned(tx, loaded, stage, definition, duty, who, caller)?;
            }
        }
        let opened: Vec<&StageKey> = outcome
            .effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::StageOpened { stage } => Some(stage),
                _ => None,
            })
            .filter(|stage| {
                loaded
                    .workflow
                    .workflow
                    .stage(stage)
                    .is_some_and(|d| d.answered_by == Answerer::Supplier)
            })
            .collect();
        if !opened.is_empty() {
            self.tell_suppliers_of_openings(tx, loaded, &outcome.review, &opened)?;
        }
        for effect in &outcome.effects {
            if let Effect::Decided {
                stage,
                decision: Decision::RequestChanges,
                comment: Some(comment),
                round,
                ..
            } = effect
            {
                self.tell_supplier_of_changes(tx, loaded, &outcome.review, stage, comment, *round)?;
            }
        }
        Ok(())
    }

    /// Whoever started the review: each decision, and the outcome.
    fn tell_starter(
        &self,
        tx: &mut Tx<'_>,
        loaded: &Loaded,
        outcome: &Outcome,
    ) -> Result<(), ReviewError> {
        let Some(to) = loaded.row.started_by_email.clone() else {
            return Ok(());
        };
        let subject = loaded.named();
        let context = self.context(loaded, &subject);
        for effect in &outcome.effects {
            let email = match effect {
                Effect::Decided {
                    stage,
                    decision,
                    by,
                    comment,
                    ..
                } => {
                    let title = loaded
                        .workflow
                        .workflow
                        .stage(stage)
                        .map_or(stage.as_str(), |s| s.title.as_str());
                    messages::decision_notice(
                        &context,
                        &to,
                        title,
                        decision.as_str(),
                        by,
                        comment.as_deref(),
                    )
                }
                Effect::ReviewDecided { state } => {
                    let label = state.as_str().replace('_', " ");
                    messages::review_decided(&context, &to, &label, outcome.review.valid_until)
                }
                _ => continue,
            };
            notify::enqueue_email(tx, &email, None)?;
        }
        Ok(())
    }

    /// The person a stage now waits for: its assignee (unless segregation of
    /// duties bars them from deciding it), else the role that acts next.
    fn tell_arrival(
        &self,
        tx: &mut Tx<'_>,
        loaded: &Loaded,
        review: &engine::Review,
        stage: &StageRecord,
        definition: &Stage,
        arrival: Arrival<'_>,
    ) -> Result<(), ReviewError> {
        let deciding = stage.state == StageState::InReview;
        // Nobody is asked for an approval they gave already or may not give
        // (segregation of duties): an assignee who may not leaves the stage
        // to the approver role.
        let cannot: Vec<&str> = if deciding {
            engine::barred_from_approving(review, stage).collect()
        } else {
            Vec::new()
        };
        let assignee = stage.assignee().filter(|who| !cannot.contains(who));
        let (to, audience) = match assignee {
            Some(who) => (
                people::address_of(tx.conn(), who)?.into_iter().collect(),
                json!({"assignee": who}),
            ),
            None => {
                let role = match (deciding, definition.answered_by) {
                    (false, Answerer::Role(role)) => role,
                    _ => definition.approver_role,
                };
                (
                    people::role_addresses(tx.conn(), role, &self.mailboxes)?,
                    json!({"role": role}),
                )
            }
        };
        let mut cannot_addresses = Vec::new();
        for who in &cannot {
            cannot_addresses.extend(people::address_of(tx.conn(), who)?);
        }
        // Nobody is told of what they did themselves: `notify::enqueue_email`
        // leaves the actor out.
        let eligible: Vec<String> = to
            .iter()
            .filter(|a| !cannot_addresses.contains(a))
            .cloned()
            .collect();
        if to.is_empty() {
            return undeliverable(tx, loaded, stage, arrival.name(), &audience, NO_ADDRESS);
        }
        if eligible.is_empty() {
            // Everyone who holds the role is barred from deciding it: the
            // admins are told, so that someone else is given the role.
            undeliverable(
                tx,
                loaded,
                stage,
                arrival.name(),
                &audience,
                "everyone who may decide it started the review, answered the stage or approved it already",
            )?;
            let admins =
                people::role_addresses(tx.conn(), crate::auth::Role::Admin, &self.mailboxes)?;
            if !admins.is_empty() {
                let role = definition.approver_role.as_str();
                let arrival = Arrival::NobodyMayDecide { role };
                self.work_arrived(tx, loaded, admins, stage, definition, arrival)?;
            }
            return Ok(());
        }
        self.work_arrived(tx, loaded, eligible, stage, definition, arrival)
    }

    /// Queues the email telling `to` that `stage` waits for them, as
    /// `arrival` says.
    fn work_arrived(
        &self,
        tx: &mut Tx<'_>,
        loaded: &Loaded,
        to: Vec<String>,
        stage: &StageRecord,
        definition: &Stage,
        arrival: Arrival<'_>,
    ) -> Result<(), ReviewError> {
        let subject = loaded.named();
        let email = messages::work_arrived(
            &self.context(loaded, &subject),
            to,
            &stage.key,
            &definition.title,
            arrival,
            stage.due_at,
        );
        notify::enqueue_email(tx, &email, None)?;
        Ok(())
    }

    /// The person newly assigned to answer or to decide a stage (unless
    /// they assigned themselves), by the address the directory knows, or
    /// the one they were assigned by before they ever signed in.
    #[expect(clippy::too_many_arguments, reason = "one notice's facts")]
    fn tell_assigned(
        &self,
        tx: &mut Tx<'_>,
        loaded: &Loaded,
        stage: &StageRecord,
        definition: &Stage,
        duty: Duty,
        who: &str,
        caller: &Caller,
    ) -> Result<(), ReviewError> {
        if who == caller.id() {
            return Ok(());
        }
        let Some(to) = people::address_of(tx.conn(), who)? else {
            let audience = json!({"assignee": who});
            return undeliverable(tx, loaded, stage, "assigned", &audience, NO_ADDRESS);
        };
        let arrival = Arrival::Assigned {
            by: caller.id(),
            duty,
            now: stage.duty() == duty && stage.state.is_open(),
        };
        self.work_arrived(tx, loaded, vec![to], stage, definition, arrival)
    }

    /// The supplier contact whose answers a reviewer sent back: the comment
    /// and a fresh link to the same invitation (the one they had still
    /// works too).
    fn tell_supplier_of_changes(
        &self,
        tx: &mut Tx<'_>,
        loaded: &Loaded,
        review: &engine::Review,
        stage: &StageKey,
        comment: &str,
        round: i32,
    ) -> Result<(), ReviewError> {
        let Some(definition) = loaded.workflow.workflow.stage(stage) else {
            return Ok(());
        };
        if definition.answered_by != Answerer::Supplier {
            return Ok(());
        }
        let now = tx.now();
        let Some(invitation) = live_invitations(tx, loaded, stage)?
            .into_iter()
            .max_by_key(|i| i.created_at)
        else {
            return Ok(());
        };
        let expires_at = utc(invitation.expires_at);
        let link = self.respondent_link(
            &invitation.id,
            &loaded.row.id,
            stage,
            &invitation.email,
            expires_at,
            now,
        )?;
        let subject = loaded.named();
        let due_at = review.stage(stage).and_then(|s| s.due_at);
        let email = messages::changes_requested(
            &self.context(loaded, &subject),
            &invitation.email,
            &definition.title,
            comment,
            &link,
            due_at,
            expires_at,
        );
        notify::enqueue_email(
            tx,
            &email,
            Some(format!("changes:{}:{round}", invitation.id)),
        )?;
        Ok(())
    }

    /// A link that admits the holder of `invitation` to its stage until the
    /// invitation expires (by the application's clock, which tests move; the
    /// token's own `exp` follows the system clock).
    pub(crate) fn respondent_link(
        &self,
        invitation: &InvitationId,
        review: &ReviewId,
        stage: &StageKey,
        email: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<String, ReviewError> {
        let scope = RespondentScope {
            invitation: invitation.to_string(),
            review: review.to_string(),
            stage: stage.to_string(),
        };
        self.scoped_link(&scope, email, expires_at, now)
    }

    /// A link admitting what `scope` names until `expires_at`.
    pub(crate) fn scoped_link(
        &self,
        scope: &RespondentScope,
        email: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<String, ReviewError> {
        let system_now = Utc::now();
        let token = self
            .tokens
            .issue_respondent(scope, email, system_now, system_now + (expires_at - now))
            .map_err(|e| ReviewError::Internal(e.to_string()))?;
        Ok(format!(
            "{}/respond/{token}",
            self.public_url.trim_end_matches('/')
        ))
    }
}

/// The unrevoked, unexpired invitations to `stage`.
pub(super) fn live_invitations(
    tx: &mut Tx<'_>,
    loaded: &Loaded,
    stage: &StageKey,
) -> Result<Vec<store::InvitationRow>, ReviewError> {
    let now = tx.now();
    let Some(row) = loaded.stage_row(stage) else {
        return Ok(Vec::new());
    };
    Ok(store::invitations(tx.conn(), loaded)?
        .into_iter()
        .filter(|i| i.stage_id == row.id && i.revoked_at.is_none() && utc(i.expires_at) > now)
        .collect())
}

/// Why a notice reached nobody: nobody it is for has an address.
const NO_ADDRESS: &str = "nobody with an address is known for this audience";

/// Records that nobody could be told `notice` about `stage` (meant for
/// `audience`), and why.
fn undeliverable(
    tx: &mut Tx<'_>,
    loaded: &Loaded,
    stage: &StageRecord,
    notice: &str,
    audience: &serde_json::Value,
    reason: &str,
) -> Result<(), ReviewError> {
    audit::append(
        tx,
        Change::review(
            crate::audit::Action::NotificationUndeliverable,
            &loaded.row.id,
        )
        .after(json!({"stage": stage.key, "notice": notice, "notify": audience, "reason": reason})),
    )?;
    Ok(())
}

/// What a stage's change means for whoever acts on it next, if anything.
fn arrival<'a>(
    was: Option<&StageRecord>,
    now: &StageRecord,
    definition: &Stage,
    outcome: &'a Outcome,
    caller: &'a Caller,
) -> Option<Arrival<'a>> {
    let before = was.map(|s| s.state);
    let approvals_before = was.map_or(0, |s| s.approvals.len());
    match now.state {
        StageState::InReview
            if before == Some(StageState::InReview) && now.approvals.len() > approvals_before =>
        {
            Some(Arrival::AnotherApproval {
                have: now.approvals.len(),
                need: definition.approvals_for(outcome.review.tier),
            })
        }
        StageState::InReview if before != Some(StageState::InReview) => Some(match caller {
            Caller::Respondent { .. } => Arrival::SupplierSubmitted,
            _ => Arrival::ReadyForReview,
        }),
        StageState::AwaitingAnswers if definition.answered_by != Answerer::Supplier => match before
        {
            Some(StageState::InReview) => {
                let comment = outcome.effects.iter().find_map(|e| match e {
                    Effect::Decided {
                        stage,
                        comment: Some(comment),
                        ..
                    } if *stage == now.key => Some(comment.as_str()),
                    _ => None,
                });
                Some(Arrival::ChangesRequested {
                    comment: comment.unwrap_or_default(),
                })
            }
            Some(StageState::AwaitingAnswers) => None,
            _ => Some(Arrival::ToAnswer),
        },
        _ => None,
    }
}

/// Who was newly assigned to which duty of a stage (not on its creation).
fn newly_assigned<'a>(
    was: Option<&StageRecord>,
    now: &'a StageRecord,
) -> impl Iterator<Item = (Duty, &'a str)> {
    [Duty::Answer, Duty::Decide]
        .into_iter()
        .filter_map(move |duty| {
            let who = now.assigned(duty)?;
            let before = was?.assigned(duty);
            (before != Some(who)).then_some((duty, who))
        })
}
