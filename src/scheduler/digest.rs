//! The daily digest: each person with pending work (stages assigned to them,
//! or waiting for a decision of a role they hold) gets one email listing it,
//! overdue first. Keyed `digest:<sub>:<date>`, so a second run that day
//! queues nothing.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::Scheduler;
use crate::audit::{self, Actor, Change};
use crate::auth::Role;
use crate::notify::{self, messages};
use crate::reviews::ReviewError;
use crate::reviews::store as review_store;
use crate::workflow::engine::StageState;
use crate::workflow::{Answerer, LoadedWorkflow};

/// What one digest run did.
#[derive(Debug, Default, Clone, Serialize, ToSchema)]
pub struct DigestReport {
    /// People with pending work.
    pub people: usize,
    /// Digests queued (a second run the same day queues none).
    pub sent: usize,
}

/// An open stage, as the digest lists it.
struct Pending {
    assignee: Option<String>,
    /// The role whose people must act: the approvers of a stage in review,
    /// the answering role of one awaiting answers (none for suppliers).
    acting_role: Option<Role>,
    item: messages::Item,
    due_at: Option<NaiveDateTime>,
}

impl Scheduler {
    /// Runs the digest as of `now` (its date names the day).
    pub async fn digest(&self, now: DateTime<Utc>) -> Result<DigestReport, ReviewError> {
        let ctx = self.clone_context();
        let (pending, persons) = self
            .store
            .run(move |conn| {
                let rows = review_store::open_stages(conn, None)?;
                let mut workflows: HashMap<String, Arc<LoadedWorkflow>> = HashMap::new();
                let mut pending = Vec::with_capacity(rows.len());
                for open in rows {
                    let subject = open.subject();
                    let (key, state, review_id, assignee, due_at, digest) = (
                        open.key,
                        open.state,
                        open.review_id,
                        open.assignee,
                        open.due_at,
                        open.workflow_digest,
                    );
                    let workflow = match workflows.get(&digest) {
                        Some(w) => Arc::clone(w),
                        None => {
                            let w =
                                review_store::pinned_workflow(conn, &ctx.reviews.catalog, &digest)?;
                            workflows.insert(digest, Arc::clone(&w));
                            w
                        }
                    };
                    let Some(stage) = workflow.workflow.stage(&key) else {
                        continue;
                    };
                    let overdue = due_at.is_some_and(|d| d.and_utc() < now);
                    let due = due_at
                        .map(|d| format!("due {}", messages::date(d.and_utc())))
                        .unwrap_or_else(|| "no due date".into());
                    pending.push(Pending {
                        assignee,
                        acting_role: if state == StageState::InReview {
                            Some(stage.approver_role)
                        } else {
                            match stage.answered_by {
                                Answerer::Role(role) => Some(role),
                                Answerer::Supplier => None,
                            }
                        },
                        item: messages::Item {
                            title: format!("{subject}: {}", stage.title),
                            detail: format!(
                                "Waiting for {}; {due}",
                                messages::waiting_for(state.as_str())
                            ),
                            link: format!(
                                "{}/v1/reviews/{review_id}/stages/{key}",
                                ctx.reviews.public_url.trim_end_matches('/')
                            ),
                            overdue,
                        },
                        due_at,
                    });
                }
                let persons = crate::people::everyone(conn)?;
                Ok::<_, ReviewError>((pending, persons))
            })
            .await?;

        let day = now.format("%Y-%m-%d").to_string();
        let mut report = DigestReport::default();
        for person in persons {
            let Some(email) = person.email else { continue };
            let sub = person.sub;
            // Role names this version does not know are no roles here.
            let roles: Vec<Role> = person.roles.iter().filter_map(|r| r.parse().ok()).collect();
            let mut mine: Vec<&Pending> = pending
                .iter()
                .filter(|p| match &p.assignee {
                    Some(who) => *who == sub || *who == email,
                    None => p.acting_role.is_some_and(|r| roles.contains(&r)),
                })
                .collect();
            if mine.is_empty() {
                continue;
            }
            report.people += 1;
            mine.sort_by_key(|p| (!p.item.overdue, p.due_at));
            let items = mine.iter().map(|p| p.item.clone()).collect();
            let message = messages::digest(&email, &day, items);
            let key = format!("digest:{sub}:{day}");
            let count = mine.len();
            let queued = self
                .work
                .run(Actor::system("digest"), now, move |tx| {
                    let queued = notify::enqueue_email(tx, &message, Some(key))?;
                    if queued {
                        audit::append(
                            tx,
                            Change {
                                action: "digest.queued",
                                subject: format!("person/{sub}"),
                                review_id: None,
                                before: None,
                                after: Some(json!({"to": message.to, "items": count})),
                            },
                        )?;
                    }
                    Ok::<_, ReviewError>(queued)
                })
                .await?;
            if queued {
                report.sent += 1;
            }
        }
        Ok(report)
    }
}
