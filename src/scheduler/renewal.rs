//! The re-review sweep: opens a re-review of every approval whose
//! `valid_until` minus its tier's lead time has passed (when the approval is
//! still the latest decision on its subject and no review of that subject is
//! in progress), and, once an approval reaches `valid_until` without a newer
//! decision, records `status.expired`, tells the vendor manager and
//! announces the changed clearance (the status already reads `expired` from
//! the clock; this makes it heard). Both are safe to run twice: the first is
//! guarded by "a review is in progress", the second by the review's
//! `expired_at`, set once.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{Context, Scheduler};
use crate::audit::{self, Actor, Change};
use crate::auth::Role;
use crate::db::DbConnection;
use crate::ids::{ModelId, ProviderId, ReviewId};
use crate::notify::{self, messages};
use crate::people;
use crate::reviews::ReviewError;
use crate::reviews::store as review_store;
use crate::unit::Tx;
use crate::workflow::Tier;
use diesel::QueryResult;

/// What one re-review sweep did.
#[derive(Debug, Default, Clone, Serialize, ToSchema)]
pub struct RenewalReport {
    /// Current approvals looked at.
    pub approvals: usize,
    /// Ids of the re-reviews opened.
    pub opened: Vec<ReviewId>,
    /// Ids of the approvals newly recorded as expired.
    pub expired: Vec<ReviewId>,
}

impl Scheduler {
    /// Runs the re-review sweep as of `now`.
    pub async fn re_review_sweep(&self, now: DateTime<Utc>) -> Result<RenewalReport, ReviewError> {
        let ctx = self.clone_context();
        let due = self
            .store
            .run(move |conn| ctx.renewals_due(conn, now))
            .await?;
        let mut report = RenewalReport {
            approvals: due.approvals,
            ..RenewalReport::default()
        };
        let actor = Actor::system("re-review-sweep");
        for id in due.to_open {
            let ctx = self.clone_context();
            if let Some(opened) = self
                .work
                .run(actor.clone(), now, move |tx| ctx.open_re_review(tx, &id))
                .await?
            {
                report.opened.push(opened);
            }
        }
        for id in due.to_expire {
            let ctx = self.clone_context();
            let expired = self
                .work
                .run(actor.clone(), now, move |tx| ctx.expire(tx, &id))
                .await?;
            if let Some(id) = expired {
                report.expired.push(id);
            }
        }
        Ok(report)
    }
}

struct Due {
    approvals: usize,
    to_open: Vec<ReviewId>,
    to_expire: Vec<ReviewId>,
}

impl Context {
    /// Which current approvals need a re-review opened, and which lapsed.
    fn renewals_due(
        &self,
        conn: &mut DbConnection,
        now: DateTime<Utc>,
    ) -> Result<Due, ReviewError> {
        let approvals = review_store::approvals_with_expiry(conn)?;
        // The latest decision per subject, and the subjects under review.
        let mut latest: HashMap<(ProviderId, Option<ModelId>), (Option<NaiveDateTime>, ReviewId)> =
            HashMap::new();
        for (id, provider, model, at) in review_store::decisions_by_subject(conn)? {
            let entry = latest.entry((provider, model)).or_insert((at, id.clone()));
            if (at, &id) > (entry.0, &entry.1) {
                *entry = (at, id);
            }
        }
        let in_progress: HashSet<(ProviderId, Option<ModelId>)> =
            review_store::subjects_in_progress(conn)?
                .into_iter()
                .collect();

        let mut leads: HashMap<(String, Tier), TimeDelta> = HashMap::new();
        let mut due = Due {
            approvals: 0,
            to_open: Vec::new(),
            to_expire: Vec::new(),
        };
        for approval in approvals {
            let subject = (approval.provider_id, approval.model_id);
            if latest
                .get(&subject)
                .is_none_or(|(_, latest)| *latest != approval.id)
            {
                continue;
            }
            due.approvals += 1;
            let valid_until = approval.valid_until.and_utc();
            let key = (approval.workflow_digest, approval.tier);
            let lead = match leads.get(&key) {
                Some(lead) => *lead,
                None => {
                    let workflow =
                        review_store::pinned_workflow(conn, &self.reviews.catalog, &key.0)?;
                    let lead = workflow.workflow.policy(approval.tier).re_review_lead.delta;
                    leads.insert(key, lead);
                    lead
                }
            };
            if now >= valid_until - lead && !in_progress.contains(&subject) {
                due.to_open.push(approval.id.clone());
            }
            if now >= valid_until && approval.expired_at.is_none() {
                due.to_expire.push(approval.id);
            }
        }
        Ok(due)
    }

    /// The vendor manager of a review: who started it, else the role, else the admins.
    fn vendor_manager(
        &self,
        conn: &mut DbConnection,
        started_by: &str,
        started_by_email: Option<&str>,
    ) -> Result<Vec<String>, ReviewError> {
        let intended = match started_by_email {
            Some(email) => vec![email.to_owned()],
            None => match people::address_of(conn, started_by)? {
                Some(email) => vec![email],
                None => people::role_addresses(conn, Role::VendorManager, &self.mailboxes)?,
            },
        };
        Ok(people::or_admins(conn, intended, &self.mailboxes)?.to)
    }

    /// Opens the re-review of `previous` unless a review of its subject is
    /// already in progress; returns the new review's id.
    fn open_re_review(
        &self,
        tx: &mut Tx<'_>,
        previous: &ReviewId,
    ) -> Result<Option<ReviewId>, ReviewError> {
        let loaded = review_store::load(tx.conn(), &self.reviews.catalog, previous)?;
        let open = review_store::open_review_of(
            tx.conn(),
            &loaded.row.provider_id,
            loaded.row.model_id.as_ref(),
        )?;
        if open.is_some() {
            return Ok(None);
        }
        let summary = self.reviews.re_review_in(tx, previous, None)?;
        let subject = loaded.named();
        let context = messages::ReviewContext {
            review_id: summary.id.as_str(),
            subject: &subject,
            workflow_title: &summary.workflow.title,
            public_url: &self.reviews.public_url,
            organisation: self.reviews.organisation.as_deref(),
        };
        let first_due = summary.stages.iter().filter_map(|s| s.due_at).min();
        let to = self.vendor_manager(
            tx.conn(),
            &loaded.row.started_by,
            loaded.row.started_by_email.as_deref(),
        )?;
        if to.is_empty() {
            self.metrics.undeliverable.inc();
            undeliverable(tx, &summary.id, "re-review opened")?;
        }
        for address in &to {
            let email = messages::re_review_opened(
                &context,
                address,
                loaded.row.valid_until.map(|v| v.and_utc()),
                first_due,
            );
            notify::enqueue_email(tx, &email, Some(format!("re-review:{previous}:{address}")))?;
        }
        Ok(Some(summary.id))
    }

    /// Records that an approval lapsed, once: audit event, email to the
    /// vendor manager, and a `status.changed` announcement.
    fn expire(&self, tx: &mut Tx<'_>, id: &ReviewId) -> Result<Option<ReviewId>, ReviewError> {
        let loaded = review_store::load(tx.conn(), &self.reviews.catalog, id)?;
        let Some(valid_until) = loaded.row.valid_until.map(|v| v.and_utc()) else {
            return Ok(None);
        };
        let now = tx.now().naive_utc();
        if !review_store::record_expiry(tx.conn(), id, now)? {
            return Ok(None);
        }
        // The clearance changed at `valid_until`: announced now, as of then.
        tx.watch_as_of(
            &loaded.row.provider_id,
            loaded.model.as_ref(),
            valid_until - TimeDelta::microseconds(1),
        )?;
        let subject = loaded.named();
        let re_review = review_store::open_review_of(
            tx.conn(),
            &loaded.row.provider_id,
            loaded.row.model_id.as_ref(),
        )?;
        let to = self.vendor_manager(
            tx.conn(),
            &loaded.row.started_by,
            loaded.row.started_by_email.as_deref(),
        )?;
        audit::append(
            tx,
            Change::review(crate::audit::Action::StatusExpired, id).before(json!({"status": loaded.row.state, "valid_until": valid_until})).after(
                    json!({"status": "expired", "subject": loaded.subject(), "to": to, "re_review": re_review}),
                ),
        )?;
        if to.is_empty() {
            self.metrics.undeliverable.inc();
            undeliverable(tx, id, "approval expired")?;
        } else {
            let context = self.reviews.context(&loaded, &subject);
            let re_review = re_review.map(String::from);
            let mut email =
                messages::approval_expired(&context, "", valid_until, re_review.as_deref());
            email.to = to;
            notify::enqueue_email(tx, &email, Some(format!("expired:{id}")))?;
        }
        Ok(Some(id.clone()))
    }
}

/// Records, never silently, that nobody could be told.
pub fn undeliverable(tx: &mut Tx<'_>, review_id: &ReviewId, notice: &str) -> QueryResult<()> {
    audit::append(
        tx,
        Change::review(crate::audit::Action::NotificationUndeliverable, review_id).after(
            json!({"notice": notice, "reason": "nobody is known to tell, and no admin either"}),
        ),
    )?;
    Ok(())
}
