//! The SLA sweep: every open stage past its due time climbs its workflow's
//! escalation ladder. Level `i` is due when `now >= due_at + ladder[i].after`;
//! only the highest level due is sent (a stage found several levels late
//! gets one email; the levels passed over are named in its audit event),
//! and each level is notified once, ever: its email is queued with the key
//! `escalation:<stage>:<level>` and the stage's `escalation_level` moves past
//! it in the same write transaction (which every instance serializes on), so
//! two sweeps, on one instance or several, never send a level twice.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::Scheduler;
use crate::audit::{self, Actor, Change};
use crate::ids::{ReviewId, StageId};
use crate::notify::{self, messages};
use crate::people;
use crate::reviews::ReviewError;
use crate::reviews::store as review_store;
use crate::unit::Tx;
use crate::workflow::Notify;

/// What one SLA sweep did.
#[derive(Debug, Default, Clone, Serialize, ToSchema)]
pub struct SlaReport {
    /// Open stages past their due time.
    pub overdue: usize,
    /// Reminders (level 0) queued.
    pub reminders: usize,
    /// Escalations (level 1 and up) queued.
    pub escalations: usize,
    /// Levels with nobody to tell (recorded in the audit log).
    pub undeliverable: usize,
    /// Reminders queued to supplier contacts (see [`super::suppliers`]).
    pub supplier_reminders: usize,
    /// Vendor managers told that a supplier's link expired unused.
    pub expired_links: usize,
    /// Supplier contacts told of questionnaires that opened while they
    /// were not to be emailed again yet.
    pub opening_notices: usize,
}

impl Scheduler {
    /// Runs the SLA sweep as of `now`.
    pub async fn sla_sweep(&self, now: DateTime<Utc>) -> Result<SlaReport, ReviewError> {
        let overdue = self
            .store
            .run(move |conn| review_store::overdue_stages(conn, now).map_err(ReviewError::from))
            .await?;
        let mut report = SlaReport {
            overdue: overdue.len(),
            ..SlaReport::default()
        };
        for (stage_id, review_id) in overdue {
            let jobs = self.clone_context();
            let done = self
                .work
                .run(Actor::system("sla-sweep"), now, move |tx| {
                    jobs.escalate(tx, &review_id, &stage_id)
                })
                .await?;
            report.reminders += done.reminders;
            report.escalations += done.escalations;
            report.undeliverable += done.undeliverable;
        }
        let chased = self.chase_suppliers(now).await?;
        report.supplier_reminders = chased.reminders;
        report.expired_links = chased.expired_links;
        report.opening_notices = self.announce_openings(now).await?;
        Ok(report)
    }
}

impl super::Context {
    /// Notifies the highest due level of one stage not yet notified; runs inside
    /// a write transaction and re-reads the stage there.
    fn escalate(
        &self,
        tx: &mut Tx<'_>,
        review_id: &ReviewId,
        stage_id: &StageId,
    ) -> Result<SlaReport, ReviewError> {
        let now = tx.now();
        let mut report = SlaReport::default();
        let loaded = review_store::load(tx.conn(), &self.reviews.catalog, review_id)?;
        let Some(row) = loaded.stages.iter().find(|s| s.id == *stage_id) else {
            return Ok(report);
        };
        let Some(due_at) = row.due_at.map(|d| d.and_utc()) else {
            return Ok(report);
        };
        if !row.state.is_open() {
            return Ok(report);
        }
        let Some(definition) = loaded.workflow.workflow.stage(&row.stage_key) else {
            return Ok(report);
        };
        let subject = loaded.named();
        let context = self.reviews.context(&loaded, &subject);
        let start = usize::try_from(row.escalation_level).unwrap_or(0);
        // Only the highest level now due is sent: a stage found several
        // levels late gets one email, and the levels passed over are recorded.
        let due_levels = definition
            .escalation
            .iter()
            .enumerate()
            .skip(start)
            .take_while(|(_, step)| now >= due_at + step.after.delta)
            .count();
        if due_levels == 0 {
            return Ok(report);
        }
        let level = start + due_levels - 1;
        let skipped: Vec<usize> = (start..level).collect();
        if let Some(step) = definition.escalation.get(level) {
            let intended = match &step.notify {
                Notify::Assignee => {
                    let assignee = match row.assignee() {
                        Some(who) => people::address_of(tx.conn(), who)?,
                        None => None,
                    };
                    match assignee {
                        Some(address) => vec![address],
                        None => people::role_addresses(
                            tx.conn(),
                            definition.approver_role,
                            &self.mailboxes,
                        )?,
                    }
                }
                Notify::Role(role) => people::role_addresses(tx.conn(), *role, &self.mailboxes)?,
                Notify::Email(address) => vec![address.clone()],
            };
            let recipients = people::or_admins(tx.conn(), intended, &self.mailboxes)?;
            let audience = serde_json::to_value(&step.notify).unwrap_or_default();
            if recipients.to.is_empty() {
                report.undeliverable += 1;
                self.metrics.undeliverable.inc();
                audit::append(
                    tx,
                    Change::review(crate::audit::Action::NotificationUndeliverable, review_id)
                        .after(json!({
                            "stage": row.stage_key, "level": level, "notify": audience,
                            "skipped_levels": skipped,
                            "reason": "nobody is known for this audience, and no admin either",
                        })),
                )?;
            } else {
                let stage = messages::OverdueStage {
                    key: &row.stage_key,
                    title: &definition.title,
                    state: row.state.as_str(),
                    due_at,
                    level,
                    assignee: row.assignee(),
                };
                let email = messages::overdue(&context, recipients.to.clone(), &stage);
                let queued = notify::enqueue_email(
                    tx,
                    &email,
                    Some(format!("escalation:{stage_id}:{level}")),
                )?;
                if queued {
                    if level == 0 {
                        report.reminders += 1;
                    } else {
                        report.escalations += 1;
                    }
                }
                audit::append(
                    tx,
                    Change::review(
                        if level == 0 {
                            crate::audit::Action::StageReminded
                        } else {
                            crate::audit::Action::StageEscalated
                        },
                        review_id,
                    )
                    .before(json!({"escalation_level": level}))
                    .after(json!({
                        "stage": row.stage_key, "escalation_level": level + 1,
                        "notify": audience, "to": recipients.to,
                        "to_admins_instead": recipients.fell_back_to_admins,
                        "due_at": due_at, "queued": queued, "skipped_levels": skipped,
                    })),
                )?;
            }
        }
        let level = level + 1;
        if level != start {
            let level = i32::try_from(level).unwrap_or(i32::MAX);
            review_store::set_escalation_level(tx.conn(), stage_id, level)?;
        }
        Ok(report)
    }
}
