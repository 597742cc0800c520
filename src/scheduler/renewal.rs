//! The re-review sweep: opens a re-review of every approval whose
//! `valid_until` minus its tier's lead time has passed (when the approval is
//! still the latest decision on its subject and no review of that subject is
//! in progress), and, once an approval reaches `valid_until` without a newer
//! decision, records `status.expired`, tells the vendor manager and
//! announces the changed clearance (the status already reads `expired` from
//! the clock; this makes it heard). Both are safe to run twice: the first is
//! guarded by "a review is in progress", the second by its audit event.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{Context, Scheduler};
use crate::audit::{self, Actor, Change};
use crate::auth::Role;
use crate::db::DbConnection;
use crate::notify::{self, messages};
use crate::people;
use crate::reviews::ReviewError;
use crate::reviews::store as review_store;
use crate::schema::{audit_events, reviews};
use crate::status::store as status_store;
use crate::workflow::Tier;
use crate::workflow::engine::ReviewState;

const APPROVALS: [&str; 2] = ["approved", "approved_with_conditions"];
const DECIDED: [&str; 3] = ["approved", "approved_with_conditions", "rejected"];

/// What one re-review sweep did.
#[derive(Debug, Default, Clone, Serialize, ToSchema)]
pub struct RenewalReport {
    /// Current approvals looked at.
    pub approvals: usize,
    /// Ids of the re-reviews opened.
    pub opened: Vec<String>,
    /// Ids of the approvals newly recorded as expired.
    pub expired: Vec<String>,
}

type Approval = (
    String,
    String,
    Option<String>,
    String,
    String,
    NaiveDateTime,
    Option<NaiveDateTime>,
);

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
        for id in due.to_open {
            let ctx = self.clone_context();
            if let Some(opened) = self
                .store
                .write(move |conn| ctx.open_re_review(conn, &id, now))
                .await?
            {
                report.opened.push(opened);
            }
        }
        for id in due.to_expire {
            let ctx = self.clone_context();
            let expired = self
                .store
                .write(move |conn| ctx.expire(conn, &id, now))
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
    to_open: Vec<String>,
    to_expire: Vec<String>,
}

impl Context {
    /// Which current approvals need a re-review opened, and which lapsed.
    fn renewals_due(
        &self,
        conn: &mut DbConnection,
        now: DateTime<Utc>,
    ) -> Result<Due, ReviewError> {
        let approvals: Vec<Approval> = reviews::table
            .filter(reviews::state.eq_any(APPROVALS))
            .filter(reviews::valid_until.is_not_null())
            .select((
                reviews::id,
                reviews::provider_id,
                reviews::model_id,
                reviews::workflow_digest,
                reviews::tier,
                reviews::valid_until.assume_not_null(),
                reviews::decided_at,
            ))
            .load(conn)?;
        // The latest decision per subject, and the subjects under review.
        let decided: Vec<(String, String, Option<String>, Option<NaiveDateTime>)> = reviews::table
            .filter(reviews::state.eq_any(DECIDED))
            .select((
                reviews::id,
                reviews::provider_id,
                reviews::model_id,
                reviews::decided_at,
            ))
            .load(conn)?;
        let mut latest: HashMap<(String, Option<String>), (Option<NaiveDateTime>, String)> =
            HashMap::new();
        for (id, provider, model, at) in decided {
            let entry = latest.entry((provider, model)).or_insert((at, id.clone()));
            if (at, &id) > (entry.0, &entry.1) {
                *entry = (at, id);
            }
        }
        let in_progress: HashSet<(String, Option<String>)> = reviews::table
            .filter(reviews::state.eq(ReviewState::InProgress.as_str()))
            .select((reviews::provider_id, reviews::model_id))
            .load(conn)?
            .into_iter()
            .collect();
        let expired_already: HashSet<String> = audit_events::table
            .filter(audit_events::action.eq("status.expired"))
            .filter(audit_events::review_id.is_not_null())
            .select(audit_events::review_id.assume_not_null())
            .load(conn)?
            .into_iter()
            .collect();

        let mut leads: HashMap<(String, String), TimeDelta> = HashMap::new();
        let mut due = Due {
            approvals: 0,
            to_open: Vec::new(),
            to_expire: Vec::new(),
        };
        for (id, provider, model, digest, tier, valid_until, _) in approvals {
            let subject = (provider, model);
            if latest.get(&subject).is_none_or(|(_, latest)| *latest != id) {
                continue;
            }
            due.approvals += 1;
            let valid_until = valid_until.and_utc();
            let lead = match leads.get(&(digest.clone(), tier.clone())) {
                Some(lead) => *lead,
                None => {
                    let workflow =
                        review_store::pinned_workflow(conn, &self.reviews.catalog, &digest)?;
                    let lead = workflow
                        .workflow
                        .policy(Tier::parse(&tier).unwrap_or(Tier::Low))
                        .re_review_lead
                        .delta;
                    leads.insert((digest, tier), lead);
                    lead
                }
            };
            if now >= valid_until - lead && !in_progress.contains(&subject) {
                due.to_open.push(id.clone());
            }
            if now >= valid_until && !expired_already.contains(&id) {
                due.to_expire.push(id);
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
        conn: &mut DbConnection,
        previous: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, ReviewError> {
        let loaded = review_store::load(conn, &self.reviews.catalog, previous)?;
        if review_store::open_review_of(
            conn,
            &loaded.row.provider_id,
            loaded.row.model_id.as_deref(),
        )?
        .is_some()
        {
            return Ok(None);
        }
        let actor = Actor::system("re-review-sweep");
        let summary = self.reviews.start_re_review(conn, previous, &actor, now)?;
        let subject = loaded.subject();
        let context = messages::ReviewContext {
            review_id: &summary.id,
            subject: &subject,
            workflow_title: &summary.workflow.title,
            public_url: &self.reviews.public_url,
        };
        let first_due = summary.stages.iter().filter_map(|s| s.due_at).min();
        let to = self.vendor_manager(
            conn,
            &loaded.row.started_by,
            loaded.row.started_by_email.as_deref(),
        )?;
        if to.is_empty() {
            self.metrics.undeliverable.inc();
            undeliverable(conn, &actor, &summary.id, "re-review opened", now)?;
        }
        for address in &to {
            let email = messages::re_review_opened(
                &context,
                address,
                loaded.row.valid_until.map(|v| v.and_utc()),
                first_due,
            );
            notify::enqueue_email(
                conn,
                &email,
                Some(format!("re-review:{previous}:{address}")),
                now,
            )?;
        }
        Ok(Some(summary.id))
    }

    /// Records that an approval lapsed, once: audit event, email to the
    /// vendor manager, and a `status.changed` announcement.
    fn expire(
        &self,
        conn: &mut DbConnection,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, ReviewError> {
        let recorded = audit_events::table
            .filter(audit_events::review_id.eq(id))
            .filter(audit_events::action.eq("status.expired"))
            .count()
            .get_result::<i64>(conn)?
            > 0;
        if recorded {
            return Ok(None);
        }
        let loaded = review_store::load(conn, &self.reviews.catalog, id)?;
        let Some(valid_until) = loaded.row.valid_until.map(|v| v.and_utc()) else {
            return Ok(None);
        };
        let provider = loaded.row.provider_id.clone();
        let model = loaded.model.clone();
        let before = status_store::statuses_of(
            conn,
            &provider,
            model.as_deref(),
            valid_until - TimeDelta::microseconds(1),
        )?;
        let mut after = status_store::statuses_of(conn, &provider, model.as_deref(), now)?;
        status_store::announce_changes(conn, &before, &mut after, now)?;
        let actor = Actor::system("re-review-sweep");
        let subject = loaded.subject();
        let re_review =
            review_store::open_review_of(conn, &provider, loaded.row.model_id.as_deref())?;
        let to = self.vendor_manager(
            conn,
            &loaded.row.started_by,
            loaded.row.started_by_email.as_deref(),
        )?;
        audit::append(
            conn,
            &actor,
            Change {
                action: "status.expired",
                subject: format!("review/{id}"),
                review_id: Some(id),
                before: Some(json!({"status": loaded.row.state, "valid_until": valid_until})),
                after: Some(
                    json!({"status": "expired", "subject": subject, "to": to, "re_review": re_review}),
                ),
            },
            now,
        )?;
        if to.is_empty() {
            self.metrics.undeliverable.inc();
            undeliverable(conn, &actor, id, "approval expired", now)?;
        } else {
            let context = messages::ReviewContext {
                review_id: id,
                subject: &subject,
                workflow_title: &loaded.workflow.workflow.title,
                public_url: &self.reviews.public_url,
            };
            let mut email =
                messages::approval_expired(&context, "", valid_until, re_review.as_deref());
            email.to = to;
            notify::enqueue_email(conn, &email, Some(format!("expired:{id}")), now)?;
        }
        Ok(Some(id.to_owned()))
    }
}

/// Records, never silently, that nobody could be told.
pub fn undeliverable(
    conn: &mut DbConnection,
    actor: &Actor,
    review_id: &str,
    notice: &str,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    audit::append(
        conn,
        actor,
        Change {
            action: "notification.undeliverable",
            subject: format!("review/{review_id}"),
            review_id: Some(review_id),
            before: None,
            after: Some(
                json!({"notice": notice, "reason": "nobody is known to tell, and no admin either"}),
            ),
        },
        now,
    )?;
    Ok(())
}
