//! The scheduler: jobs that run on cron expressions from the configuration
//! (`CLEARANCE_SCHEDULE_*`), read time from the application's clock, and are
//! plain async functions that tests and `POST /v1/admin/jobs/{job}/run` call
//! directly. Each job is safe to run twice, or on several instances at once:
//! its messages carry dedup keys and its changes happen in write
//! transactions that re-check what they change.
//!
//! Jobs: [`sla`] (reminders and escalations of overdue stages), [`renewal`]
//! (re-reviews before approvals lapse, and the notice when one does),
//! [`digest`] (one daily email per person with pending work) and the outbox
//! worker. Their metrics live in [`metrics`], their routes in [`routes`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Role;
use crate::clock::SharedClock;
use crate::config::Schedules;
use crate::db::Store;
use crate::outbox::MessageState;
use crate::outbox::Outbox;
use crate::reviews::ReviewError;
use crate::reviews::service::Reviews;
use crate::unit::UnitOfWork;

pub mod digest;
pub mod metrics;
pub mod renewal;
pub mod routes;
pub mod sla;
pub mod suppliers;

pub use metrics::Metrics;

crate::names::strum_enum! {
    "kebab-case",
    /// A job the scheduler knows.
    #[derive(PartialOrd, Ord)]
    pub enum Job {
        SlaSweep,
        ReReviewSweep,
        Digest,
        Outbox,
    }
}

impl Job {
    fn schedule(self, schedules: &Schedules) -> Option<&cron::Schedule> {
        match self {
            Job::SlaSweep => schedules.sla_sweep.as_ref(),
            Job::ReReviewSweep => schedules.re_review_sweep.as_ref(),
            Job::Digest => schedules.digest.as_ref(),
            Job::Outbox => schedules.outbox.as_ref(),
        }
    }
}

/// What a job run did.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobReport {
    pub job: String,
    /// The application's time the job ran as of.
    pub ran_at: DateTime<Utc>,
    pub duration_ms: u64,
    /// The job's own account (counts of what it queued or opened).
    pub result: serde_json::Value,
}

/// What a job's work in a transaction needs; cheap to clone into one.
#[derive(Clone)]
pub struct Context {
    pub store: Store,
    pub work: UnitOfWork,
    pub reviews: Reviews,
    pub mailboxes: Arc<BTreeMap<Role, Vec<String>>>,
    pub metrics: Metrics,
}

/// Runs the jobs, on demand and on their schedules.
pub struct Scheduler {
    pub store: Store,
    pub work: UnitOfWork,
    pub clock: SharedClock,
    pub reviews: Reviews,
    pub mailboxes: Arc<BTreeMap<Role, Vec<String>>>,
    pub outbox: Arc<Outbox>,
    pub metrics: Metrics,
    pub schedules: Schedules,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler").finish_non_exhaustive()
    }
}

impl Scheduler {
    fn clone_context(&self) -> Context {
        Context {
            store: self.store.clone(),
            work: self.work.clone(),
            reviews: self.reviews.clone(),
            mailboxes: Arc::clone(&self.mailboxes),
            metrics: self.metrics.clone(),
        }
    }

    /// Runs `job` now, as of the application's clock, and records its metrics.
    pub async fn run(&self, job: Job) -> Result<JobReport, ReviewError> {
        let now = self.clock.now();
        let started = Instant::now();
        let result = match job {
            Job::SlaSweep => self.sla_sweep(now).await.map(to_json),
            Job::ReReviewSweep => self.re_review_sweep(now).await.map(to_json),
            Job::Digest => self.digest(now).await.map(to_json),
            Job::Outbox => self.deliver().await.map(to_json),
        };
        let elapsed = started.elapsed();
        let name = job.as_str();
        let m = &self.metrics;
        m.job_last_run
            .with_label_values(&[name])
            .set(self.clock.now().timestamp() as f64);
        m.job_duration
            .with_label_values(&[name])
            .set(elapsed.as_secs_f64());
        m.job_last_success
            .with_label_values(&[name])
            .set(i64::from(result.is_ok()));
        m.job_runs
            .with_label_values(&[name, if result.is_ok() { "ok" } else { "error" }])
            .inc();
        match &result {
            Ok(value) => tracing::debug!(job = name, %value, "job ran"),
            Err(error) => tracing::warn!(job = name, %error, "job failed"),
        }
        Ok(JobReport {
            job: name.to_owned(),
            ran_at: now,
            duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            result: result?,
        })
    }

    /// One pass of the outbox worker, with its delivery metrics.
    async fn deliver(&self) -> Result<crate::outbox::DeliveryReport, ReviewError> {
        let report = self.outbox.run_once().await?;
        let d = &self.metrics.deliveries;
        d.with_label_values(&["sent"]).inc_by(report.sent as u64);
        d.with_label_values(&["failed"])
            .inc_by((report.retrying + report.dead) as u64);
        d.with_label_values(&["dead"]).inc_by(report.dead as u64);
        let depth: Vec<(MessageState, i64)> = self
            .store
            .run(|conn| crate::outbox::store::depth(conn).map_err(ReviewError::from))
            .await?;
        for state in MessageState::ALL {
            let n = depth
                .iter()
                .find(|(s, _)| s == state)
                .map_or(0, |(_, n)| *n);
            self.metrics
                .outbox_depth
                .with_label_values(&[state.as_str()])
                .set(n);
        }
        Ok(report)
    }

    /// Runs each scheduled job when the application's clock passes its next
    /// time (checked twice a second, so a manual clock moved forward
    /// triggers one catch-up run, not one per missed tick); the outbox
    /// worker follows the system clock.
    pub fn spawn(self: &Arc<Self>) {
        for &job in Job::ALL {
            let Some(schedule) = job.schedule(&self.schedules).cloned() else {
                continue;
            };
            let scheduler = Arc::clone(self);
            // Delivery is I/O, not business time: the outbox runs on the
            // system clock, so a manual clock standing still never holds
            // email back. The other jobs follow the application's clock.
            let clock = scheduler.clock.clone();
            let now = move || match job {
                Job::Outbox => chrono::Utc::now(),
                _ => clock.now(),
            };
            tokio::spawn(async move {
                let mut next = schedule.after(&now()).next();
                let mut ticker = tokio::time::interval(Duration::from_millis(500));
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                while let Some(due) = next {
                    ticker.tick().await;
                    if now() < due {
                        continue;
                    }
                    // Errors are logged and counted by `run`; the next time still comes.
                    let _ = scheduler.run(job).await;
                    next = schedule.after(&now()).next();
                }
            });
        }
    }
}

fn to_json<T: Serialize>(value: T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}
