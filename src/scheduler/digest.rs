//! The daily digest: one email to each person with work, listing exactly
//! the stages they may act on now (the same rule as their list in the
//! console: assigned to them, or awaiting a role of theirs, never a stage
//! segregation of duties bars them from deciding), overdue first; then the
//! supplier questionnaires of the reviews they started that still wait for
//! answers, which they are accountable for chasing. Keyed
//! `digest:<sub>:<date>`, so a second run that day queues nothing.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::Scheduler;
use crate::audit::{self, Actor, Change};
use crate::auth::{Principal, Role};
use crate::notify::{self, messages};
use crate::reviews::ReviewError;
use crate::reviews::store::{self as review_store, OpenStage, PendingInvitation, utc};
use crate::reviews::work::{self, Why};
use crate::workflow::engine::{Duty, StageState};
use crate::workflow::{Answerer, LoadedWorkflow};

/// What one digest run did.
#[derive(Debug, Default, Clone, Serialize, ToSchema)]
pub struct DigestReport {
    /// People with pending work.
    pub people: usize,
    /// Digests queued (a second run the same day queues none).
    pub sent: usize,
}

/// An open stage with its definition's title and answerer.
struct Open {
    stage: OpenStage,
    definition: crate::workflow::Stage,
}

/// One person's digest, ready to queue.
struct Digest {
    sub: String,
    email: crate::notify::Email,
    items: usize,
}

impl Scheduler {
    /// Runs the digest as of `now` (its date names the day).
    pub async fn digest(&self, now: DateTime<Utc>) -> Result<DigestReport, ReviewError> {
        let catalog = Arc::clone(&self.reviews.catalog);
        let public_url = self.reviews.public_url.clone();
        let day = now.format("%Y-%m-%d").to_string();
        let digests = {
            let day = day.clone();
            self.store
                .run(move |conn| {
                    let mut workflows: HashMap<String, Arc<LoadedWorkflow>> = HashMap::new();
                    let mut open = Vec::new();
                    for stage in review_store::open_stages(conn, None)? {
                        let workflow = match workflows.get(&stage.workflow_digest) {
                            Some(w) => Arc::clone(w),
                            None => {
                                let w = review_store::pinned_workflow(
                                    conn,
                                    &catalog,
                                    &stage.workflow_digest,
                                )?;
                                workflows.insert(stage.workflow_digest.clone(), Arc::clone(&w));
                                w
                            }
                        };
                        if let Some(definition) = workflow.workflow.stage(&stage.key) {
                            open.push(Open {
                                definition: definition.clone(),
                                stage,
                            });
                        }
                    }
                    let invited = review_store::pending_invitations(conn, None, now)?;
                    let asked = crate::intake::new_since(conn, now - chrono::TimeDelta::days(1))?;
                    let persons = crate::people::everyone(conn)?;
                    let digests = persons
                        .into_iter()
                        .filter_map(|person| {
                            let email = person.email?;
                            // Role names this version does not know are no roles here.
                            let roles: BTreeSet<Role> =
                                person.roles.iter().filter_map(|r| r.parse().ok()).collect();
                            let who = Principal::new(person.sub, Some(email), roles, None);
                            let none = crate::intake::NewRequests::default();
                            let asked = if who.has(Role::VendorManager) {
                                &asked
                            } else {
                                &none
                            };
                            digest_of(&who, (&open, &invited, asked), &public_url, &day, now)
                        })
                        .collect::<Vec<_>>();
                    Ok::<_, ReviewError>(digests)
                })
                .await?
        };

        let mut report = DigestReport::default();
        for digest in digests {
            report.people += 1;
            let Digest { sub, email, items } = digest;
            let key = format!("digest:{sub}:{day}");
            let queued = self
                .work
                .run(Actor::system("digest"), now, move |tx| {
                    let queued = notify::enqueue_email(tx, &email, Some(key))?;
                    if queued {
                        audit::append(
                            tx,
                            Change {
                                action: crate::audit::Action::DigestQueued,
                                subject: audit::Subject::person(&sub),
                                review_id: None,
                                before: None,
                                after: Some(json!({"to": email.to, "items": items})),
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

/// The digest of `who`, if they have anything to act on or to chase.
fn digest_of(
    who: &Principal,
    (open, invited, asked): (&[Open], &[PendingInvitation], &crate::intake::NewRequests),
    public_url: &str,
    day: &str,
    now: DateTime<Utc>,
) -> Option<Digest> {
    let mut to_do: Vec<(&Open, Why)> = open
        .iter()
        .filter_map(|o| work::why(&o.stage, &o.definition, who).map(|why| (o, why)))
        .collect();
    to_do.sort_by_key(|(o, _)| (!overdue(o.stage.due_at, now), o.stage.due_at));
    let mut to_chase: Vec<&Open> = open
        .iter()
        .filter(|o| {
            o.stage.started_by == who.sub
                && o.stage.state == StageState::AwaitingAnswers
                && o.definition.answered_by == Answerer::Supplier
                && !to_do.iter().any(|(t, _)| std::ptr::eq(*t, *o))
        })
        .collect();
    to_chase.sort_by_key(|o| (!overdue(o.stage.due_at, now), o.stage.due_at));
    if to_do.is_empty()
        && to_chase.is_empty()
        && asked.listed.is_empty()
        && asked.over_bound.is_empty()
    {
        return None;
    }
    let item = |o: &Open, detail: String| messages::Item {
        title: format!("{}: {}", o.stage.named(), o.definition.title),
        detail,
        link: messages::stage_page(public_url, o.stage.review_id.as_str(), &o.stage.key),
        overdue: overdue(o.stage.due_at, now),
    };
    let due = |at: Option<NaiveDateTime>| {
        at.map(|d| format!("due {}", messages::date(utc(d))))
            .unwrap_or_else(|| "no due date".into())
    };
    let to_do: Vec<_> = to_do
        .into_iter()
        .map(|(o, why)| {
            let ask = match why.duty {
                Duty::Decide => "your decision (approve, request changes or reject)",
                Duty::Answer => "answers to its questionnaire",
            };
            let assigned = if why.assigned {
                "assigned to you; "
            } else {
                ""
            };
            item(
                o,
                format!("{assigned}waiting for {ask}; {}", due(o.stage.due_at)),
            )
        })
        .collect();
    let to_chase: Vec<_> = to_chase
        .into_iter()
        .map(|o| {
            let links: Vec<&PendingInvitation> = invited
                .iter()
                .filter(|i| i.review_id == o.stage.review_id && i.stage_key == o.stage.key)
                .collect();
            let who_answers = match links.as_slice() {
                [] => "nobody is invited with a working link: invite the supplier's contact"
                    .to_owned(),
                links => {
                    let contacts: Vec<String> = links
                        .iter()
                        .map(|i| {
                            format!(
                                "{} (link works until {})",
                                i.email,
                                messages::date(utc(i.expires_at))
                            )
                        })
                        .collect();
                    format!("invited {}", contacts.join(", "))
                }
            };
            item(
                o,
                format!(
                    "waiting for the supplier's answers; {who_answers}; {}",
                    due(o.stage.due_at)
                ),
            )
        })
        .collect();
    let asked = intake_items(asked, public_url);
    let items = to_do.len() + to_chase.len() + asked.len();
    let email = messages::digest(who.email.as_deref()?, day, (to_do, to_chase), asked);
    Some(Digest {
        sub: who.sub.clone(),
        email,
        items,
    })
}

/// Names of askers or use cases a digest line shows; the rest are counted.
const NAMES_SHOWN: usize = 5;

/// `names`, at most [`NAMES_SHOWN`] of them, then how many more.
fn some_of<'a>(names: impl ExactSizeIterator<Item = &'a str>) -> String {
    let total = names.len();
    let mut shown: Vec<&str> = names.take(NAMES_SHOWN).collect();
    let more = total - shown.len();
    let more_text = format!("{more} more");
    if more > 0 {
        shown.push(&more_text);
    }
    shown.join(", ")
}

/// The intake's lines of a vendor manager's digest: the newest requests (at
/// most [`crate::intake::DIGEST_MAX`]), each linked to its place on the
/// console's intake page (where it is started or dismissed), one line for
/// the rest, and one line per asker past the bound.
fn intake_items(asked: &crate::intake::NewRequests, public_url: &str) -> Vec<messages::Item> {
    let listing = format!("{public_url}/intake");
    let mut items: Vec<messages::Item> = asked
        .listed
        .iter()
        .map(|request| {
            let use_cases = match request.use_cases.as_slice() {
                [] => String::new(),
                cases => format!(" for {}", some_of(cases.iter().map(String::as_str))),
            };
            let who_asked = some_of(request.requested_by.iter().map(|a| a.sub.as_str()));
            messages::Item {
                title: format!("{}/{}", request.provider, request.model),
                detail: format!(
                    "asked {} times{use_cases} by {who_asked}; first on {}. Start a review of it or dismiss it on the intake page",
                    request.asked,
                    messages::date(request.first_seen),
                ),
                link: format!(
                    "{listing}#intake-{}-{}",
                    request.provider, request.model
                ),
                overdue: false,
            }
        })
        .collect();
    if asked.more > 0 {
        items.push(messages::Item {
            title: format!("and {} more models asked for", asked.more),
            detail: "not listed here; the intake page lists every one".into(),
            link: listing.clone(),
            overdue: false,
        });
    }
    for over in &asked.over_bound {
        items.push(messages::Item {
            title: format!(
                "and {} more models asked for by {}",
                over.names, over.sub
            ),
            detail: format!(
                "{} asks on {}, past the number of new models one asker may add a day; counted, not listed",
                over.asked,
                over.day.format("%Y-%m-%d")
            ),
            link: listing.clone(),
            overdue: false,
        });
    }
    items
}

fn overdue(due_at: Option<NaiveDateTime>, now: DateTime<Utc>) -> bool {
    due_at.is_some_and(|d| utc(d) < now)
}
