//! What the jobs and the outbox tell `GET /metrics`: per job its last run,
//! duration and outcome; outbox depth by state; deliveries and failures;
//! notices nobody could be found for.

use prometheus::{GaugeVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};

#[derive(Debug, Clone)]
pub struct Metrics {
    pub job_last_run: GaugeVec,
    pub job_duration: GaugeVec,
    pub job_last_success: IntGaugeVec,
    pub job_runs: IntCounterVec,
    pub outbox_depth: IntGaugeVec,
    pub deliveries: IntCounterVec,
    pub undeliverable: IntCounter,
}

impl Metrics {
    /// Creates the collectors and registers them in `registry`, the one
    /// `/metrics` serves.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self {
            job_last_run: GaugeVec::new(
                Opts::new(
                    "clearance_job_last_run_timestamp_seconds",
                    "When each job last finished, by the application's clock",
                ),
                &["job"],
            )?,
            job_duration: GaugeVec::new(
                Opts::new(
                    "clearance_job_last_duration_seconds",
                    "How long each job's last run took",
                ),
                &["job"],
            )?,
            job_last_success: IntGaugeVec::new(
                Opts::new(
                    "clearance_job_last_success",
                    "1 when each job's last run succeeded, 0 when it failed",
                ),
                &["job"],
            )?,
            job_runs: IntCounterVec::new(
                Opts::new("clearance_job_runs_total", "Job runs, by outcome"),
                &["job", "outcome"],
            )?,
            outbox_depth: IntGaugeVec::new(
                Opts::new(
                    "clearance_outbox_messages",
                    "Messages in the outbox by state, as of the last outbox run",
                ),
                &["state"],
            )?,
            deliveries: IntCounterVec::new(
                Opts::new(
                    "clearance_outbox_deliveries_total",
                    "Delivery attempts by outcome (sent, failed, dead)",
                ),
                &["outcome"],
            )?,
            undeliverable: IntCounter::new(
                "clearance_notifications_undeliverable_total",
                "Notices for which nobody, not even an admin, could be found",
            )?,
        };
        registry.register(Box::new(metrics.job_last_run.clone()))?;
        registry.register(Box::new(metrics.job_duration.clone()))?;
        registry.register(Box::new(metrics.job_last_success.clone()))?;
        registry.register(Box::new(metrics.job_runs.clone()))?;
        registry.register(Box::new(metrics.outbox_depth.clone()))?;
        registry.register(Box::new(metrics.deliveries.clone()))?;
        registry.register(Box::new(metrics.undeliverable.clone()))?;
        Ok(metrics)
    }
}
