//! Chasing suppliers: the contact invited to answer a questionnaire is
//! reminded before its answers are due, once more when they are overdue,
//! and before the link stops working, each once (keys
//! `supplier-due:<invitation>:<due>`, `supplier-overdue:<invitation>:<due>`,
//! `supplier-expiry:<invitation>`); when a link expires before any answer
//! was saved through it, and no newer link to the stage works, the vendor
//! manager who started the review is told (`invitation-expired:<invitation>`).
//! The notices of questionnaires that opened while their contact's quiet
//! day ran ([`crate::reviews::openings`]) are sent here too. Part of the SLA
//! sweep (reported as `supplier_reminders`, `expired_links` and
//! `opening_notices`).

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use super::Scheduler;
use crate::audit::{self, Actor, Change};
use crate::notify::{self, messages};
use crate::people;
use crate::reviews::store::{self as review_store, ChasedInvitation, utc};
use crate::reviews::{ReviewError, openings};
use crate::unit::Tx;
use crate::workflow::engine::{ReviewState, StageState};

/// A supplier is reminded this long before their answers are due.
pub const DUE_SOON: TimeDelta = TimeDelta::days(2);
/// A supplier is reminded this long before their link stops working.
pub const EXPIRES_SOON: TimeDelta = TimeDelta::days(3);

/// What to do about one invitation now, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chase {
    Remind(messages::SupplierNudge),
    /// Tell the vendor manager the link expired unused.
    ExpiredUnused,
}

/// Decides what one invitation calls for at `now`, and the key that makes
/// it happen once; `live_sibling` says a newer link to the same stage still
/// works. One email at a time: whichever deadline comes first.
pub fn chase(
    invitation: &ChasedInvitation,
    live_sibling: bool,
    now: DateTime<Utc>,
) -> Option<(Chase, String)> {
    use messages::SupplierNudge::{DueSoon, LinkExpiring, Overdue};
    let expires_at = utc(invitation.expires_at);
    let id = &invitation.id;
    if expires_at <= now {
        let unused = !invitation
            .answerers
            .get()
            .contains(&format!("respondent:{id}"));
        return (unused && !live_sibling)
            .then(|| (Chase::ExpiredUnused, format!("invitation-expired:{id}")));
    }
    let due_at = invitation.due_at.map(utc);
    let expiring = expires_at - now <= EXPIRES_SOON;
    let link_first = due_at.is_none_or(|due| expires_at <= due || due <= now);
    if expiring && link_first {
        return Some((Chase::Remind(LinkExpiring), format!("supplier-expiry:{id}")));
    }
    let due = due_at?;
    if due <= now {
        Some((
            Chase::Remind(Overdue),
            format!("supplier-overdue:{id}:{}", due.timestamp()),
        ))
    } else if due - now <= DUE_SOON {
        Some((
            Chase::Remind(DueSoon),
            format!("supplier-due:{id}:{}", due.timestamp()),
        ))
    } else {
        None
    }
}

/// What chasing did, for the sweep's report.
#[derive(Debug, Default, Clone, Copy)]
pub struct Chased {
    pub reminders: usize,
    pub expired_links: usize,
}

impl Scheduler {
    /// Reminds suppliers and reports expired links, as of `now`.
    pub async fn chase_suppliers(&self, now: DateTime<Utc>) -> Result<Chased, ReviewError> {
        let invitations = self
            .store
            .run(|conn| review_store::invitations_to_chase(conn).map_err(ReviewError::from))
            .await?;
        let mut chased = Chased::default();
        for invitation in &invitations {
            let live_sibling = invitations.iter().any(|other| {
                other.stage_id == invitation.stage_id
                    && other.id != invitation.id
                    && utc(other.expires_at) > now
            });
            let Some((what, key)) = chase(invitation, live_sibling, now) else {
                continue;
            };
            let context = self.clone_context();
            let invitation = invitation.clone();
            let queued = self
                .work
                .run(Actor::system("sla-sweep"), now, move |tx| {
                    context.chase(tx, &invitation, what, key)
                })
                .await?;
            if queued {
                match what {
                    Chase::Remind(_) => chased.reminders += 1,
                    Chase::ExpiredUnused => chased.expired_links += 1,
                }
            }
        }
        Ok(chased)
    }
}

impl Scheduler {
    /// Sends the notices of opened questionnaires that waited for their
    /// contact's quiet day to pass (see [`crate::reviews::openings`]);
    /// answers how many were sent.
    pub async fn announce_openings(&self, now: DateTime<Utc>) -> Result<usize, ReviewError> {
        let waiting = self
            .store
            .run(|conn| openings::waiting(conn).map_err(ReviewError::from))
            .await?;
        let mut sent = 0;
        for (review, contact) in waiting {
            let reviews = self.reviews.clone();
            let queued = self
                .work
                .run(Actor::system("sla-sweep"), now, move |tx| {
                    let loaded = review_store::load(tx.conn(), &reviews.catalog, &review)?;
                    reviews.announce_openings(tx, &loaded, &loaded.engine_review(), &contact)
                })
                .await?;
            sent += usize::from(queued);
        }
        Ok(sent)
    }
}

impl super::Context {
    /// Queues one chase in a write transaction, re-reading the stage there;
    /// answers whether an email was queued (not already sent).
    fn chase(
        &self,
        tx: &mut Tx<'_>,
        invitation: &ChasedInvitation,
        what: Chase,
        key: String,
    ) -> Result<bool, ReviewError> {
        let now = tx.now();
        let loaded = review_store::load(tx.conn(), &self.reviews.catalog, &invitation.review_id)?;
        let Some(stage) = loaded.stages.iter().find(|s| s.id == invitation.stage_id) else {
            return Ok(false);
        };
        if stage.state != StageState::AwaitingAnswers || loaded.row.state != ReviewState::InProgress
        {
            return Ok(false);
        }
        let Some(definition) = loaded.workflow.workflow.stage(&stage.stage_key) else {
            return Ok(false);
        };
        let subject = loaded.named();
        let context = self.reviews.context(&loaded, &subject);
        let expires_at = utc(invitation.expires_at);
        let due_at = stage.due_at.map(utc);
        let (email, action, to) = match what {
            Chase::Remind(nudge) => {
                let link = self.reviews.respondent_link(
                    &invitation.id,
                    &loaded.row.id,
                    &stage.stage_key,
                    &invitation.email,
                    expires_at,
                    now,
                )?;
                let email = messages::supplier_reminder(
                    &context,
                    &invitation.email,
                    &definition.title,
                    nudge,
                    &link,
                    due_at,
                    expires_at,
                );
                (
                    email,
                    crate::audit::Action::SupplierReminded,
                    json!(nudge.name()),
                )
            }
            Chase::ExpiredUnused => {
                let manager = match &loaded.row.started_by_email {
                    Some(address) => Some(address.clone()),
                    None => people::address_of(tx.conn(), &loaded.row.started_by)?,
                };
                let recipients =
                    people::or_admins(tx.conn(), manager.into_iter().collect(), &self.mailboxes)?;
                if recipients.to.is_empty() {
                    return Ok(false);
                }
                let email = messages::link_expired_unused(
                    &context,
                    recipients.to,
                    &stage.stage_key,
                    &definition.title,
                    &invitation.email,
                    expires_at,
                );
                (
                    email,
                    crate::audit::Action::InvitationExpiredUnused,
                    json!(null),
                )
            }
        };
        let queued = notify::enqueue_email(tx, &email, Some(key))?;
        if queued {
            audit::append(
                tx,
                Change::review(action, &loaded.row.id).after(json!({
                    "stage": stage.stage_key, "invitation": invitation.id,
                    "contact": invitation.email, "nudge": to, "to": email.to,
                    "due_at": due_at, "expires_at": expires_at,
                })),
            )?;
        }
        Ok(queued)
    }
}
