//! The outbox worker: delivers what changes queued (emails and webhooks),
//! with retries, exponential backoff and jitter. Messages are claimed with a
//! lease, so several instances never send one message twice at once, and a
//! worker that dies mid-delivery leaves its claim to expire and the message
//! to be sent again (at-least-once: a receiver may see a delivery twice within
//! the lease window, and de-duplicates by its id).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use lettre::address::Envelope;
use lettre::message::{Mailbox, MultiPart, header::ContentType};
use lettre::transport::stub::AsyncStubTransport;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Serialize;
use utoipa::ToSchema;

use crate::clock::SharedClock;
use crate::db::{Store, StoreError};
use crate::ids::MessageId;
use crate::notify::Email;
use crate::schema::outbox_messages;
use crate::webhooks::{self, Delivery};

pub mod routes;
pub mod store;

/// Where emails go: lettre's transports.
pub enum Mailer {
    /// An SMTP server, with its URL (whose host is logged as it is used).
    Smtp(AsyncSmtpTransport<Tokio1Executor>, url::Url),
    /// `.eml` files in a folder: the first-run default, without an SMTP server.
    Files(AsyncFileTransport<Tokio1Executor>),
    /// Kept in memory (what a test reads back from its clone of the stub).
    Memory(AsyncStubTransport),
}

impl Mailer {
    /// SMTP when `SMTP_URL` is set, else files in `<data>/mail` (the folder
    /// is created here).
    pub fn from_config(
        smtp_url: Option<&url::Url>,
        data_dir: &std::path::Path,
    ) -> Result<Self, String> {
        match smtp_url {
            Some(url) => AsyncSmtpTransport::<Tokio1Executor>::from_url(url.as_str())
                .map(|builder| {
                    Mailer::Smtp(
                        builder.timeout(Some(Duration::from_secs(20))).build(),
                        url.clone(),
                    )
                })
                .map_err(|e| format!("SMTP_URL: {e}")),
            None => {
                let folder = data_dir.join("mail");
                std::fs::create_dir_all(&folder)
                    .and_then(|()| crate::startup::private_folder(&folder))
                    .map_err(|e| format!("{}: {e}", folder.display()))?;
                Ok(Mailer::Files(AsyncFileTransport::new(folder)))
            }
        }
    }

    /// Sends a message already put into its wire form (see
    /// [`Outbox::send_email`]): only I/O happens on the async runtime.
    async fn send(&self, envelope: &Envelope, raw: &[u8]) -> Result<(), String> {
        match self {
            Mailer::Smtp(transport, url) => {
                crate::telemetry::egress_url("smtp", url, 25);
                transport
                    .send_raw(envelope, raw)
                    .await
                    .map(drop)
                    .map_err(|e| format!("SMTP: {e}"))
            }
            Mailer::Files(transport) => transport
                .send_raw(envelope, raw)
                .await
                .map(drop)
                .map_err(|e| format!("writing the email: {e}")),
            Mailer::Memory(transport) => transport
                .send_raw(envelope, raw)
                .await
                .map(drop)
                .map_err(|e| format!("the in-memory transport refused: {e}")),
        }
    }
}

crate::names::stored_enum! {
    /// Where a message is in its delivery.
    pub enum MessageState {
        /// Waiting for its next attempt.
        Pending,
        /// Claimed by a worker, whose lease runs until `locked_until`.
        Sending,
        Sent,
        /// Out of attempts; an admin may retry it.
        Dead,
    }
}

crate::names::stored_enum! {
    /// What a message is.
    pub enum MessageKind {
        Email,
        Webhook,
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox_messages)]
pub struct OutboxRow {
    pub id: MessageId,
    pub kind: MessageKind,
    pub dedup_key: Option<String>,
    pub payload: String,
    pub state: MessageState,
    pub attempts: i32,
    pub next_attempt_at: chrono::NaiveDateTime,
    pub locked_until: Option<chrono::NaiveDateTime>,
    pub last_error: Option<String>,
    pub created_at: chrono::NaiveDateTime,
    pub sent_at: Option<chrono::NaiveDateTime>,
}

/// What one pass of the worker did.
#[derive(Debug, Default, Clone, Serialize, ToSchema)]
pub struct DeliveryReport {
    pub claimed: usize,
    pub sent: usize,
    pub retrying: usize,
    pub dead: usize,
}

/// The most batches of [`store::BATCH`] messages one pass delivers.
const MAX_BATCHES_PER_PASS: usize = 20;

pub struct Outbox {
    store: Store,
    clock: SharedClock,
    mailer: Mailer,
    from: Mailbox,
    http: reqwest::Client,
    /// Which receivers deliveries may reach.
    webhook_targets: webhooks::guard::Targets,
    max_attempts: i32,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

/// Why a retry was refused.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error("no outbox message `{0}`")]
    NotFound(String),
    #[error("message `{0}` was already sent")]
    AlreadySent(MessageId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for RetryError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Store(StoreError::Query(error))
    }
}

/// Makes a dead (or failing) message due again, from a fresh count of
/// attempts; audited as `outbox.retried`. Answers the message as it is now.
pub async fn retry(
    work: &crate::unit::UnitOfWork,
    actor: crate::audit::Actor,
    id: String,
    now: DateTime<Utc>,
) -> Result<OutboxRow, RetryError> {
    let id = MessageId::parse(&id).map_err(|_| RetryError::NotFound(id))?;
    work.run(actor, now, move |tx| {
        let row =
            store::find(tx.conn(), &id)?.ok_or_else(|| RetryError::NotFound(id.to_string()))?;
        if row.state == MessageState::Sent {
            return Err(RetryError::AlreadySent(id));
        }
        let now = tx.now();
        store::requeue(tx.conn(), &id, now)?;
        crate::audit::append(
            tx,
            crate::audit::Change {
                action: crate::audit::Action::OutboxRetried,
                subject: crate::audit::Subject::outbox(&id),
                review_id: None,
                before: Some(serde_json::json!({"state": row.state, "attempts": row.attempts})),
                after: Some(serde_json::json!({"state": MessageState::Pending, "attempts": 0})),
            },
        )?;
        store::find(tx.conn(), &id)?.ok_or_else(|| RetryError::NotFound(id.to_string()))
    })
    .await
}

/// An email's envelope and its bytes as sent (MIME, encoded).
fn wire_form(from: &Mailbox, id: &str, email: Email) -> Result<(Envelope, Vec<u8>), String> {
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(email.subject)
        .message_id(Some(format!("<{id}@clearance>")));
    for to in &email.to {
        builder = builder.to(to
            .parse::<Mailbox>()
            .map_err(|e| format!("bad address {to}: {e}"))?);
    }
    let message = match email.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(email.text, html)),
        None => builder.header(ContentType::TEXT_PLAIN).body(email.text),
    }
    .map_err(|e| e.to_string())?;
    Ok((message.envelope().clone(), message.formatted()))
}

/// The delay before attempt `attempts + 1`: 30 s doubling to at most an hour, ±20 %.
pub fn backoff(attempts: i32) -> TimeDelta {
    let base = 30_i64
        .saturating_mul(1_i64 << attempts.clamp(0, 7))
        .min(3600);
    let jitter = 0.8 + rand::random::<f64>() * 0.4;
    TimeDelta::milliseconds((base as f64 * 1000.0 * jitter) as i64)
}

impl Outbox {
    pub fn new(
        store: Store,
        clock: SharedClock,
        mailer: Mailer,
        from: Mailbox,
        max_attempts: i32,
        webhook_targets: webhooks::guard::Targets,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .dns_resolver(Arc::new(webhooks::guard::Resolver(webhook_targets)))
            .timeout(Duration::from_secs(10))
            // A receiver that answers with a redirect does not send
            // deliveries on to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("clearance/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            store,
            clock,
            mailer,
            from,
            http,
            max_attempts: max_attempts.max(1),
            webhook_targets,
        })
    }

    /// Delivers what is due, a batch at a time: a full batch is followed at
    /// once by the next (so a backlog drains at the SMTP server's pace, not
    /// a batch per scheduled pass), up to [`MAX_BATCHES_PER_PASS`] so that a
    /// pass still ends and reports. Returns what happened.
    pub async fn run_once(&self) -> Result<DeliveryReport, StoreError> {
        let mut report = DeliveryReport::default();
        for _ in 0..MAX_BATCHES_PER_PASS {
            let batch = self.deliver_batch().await?;
            report.claimed += batch.claimed;
            report.sent += batch.sent;
            report.retrying += batch.retrying;
            report.dead += batch.dead;
            if batch.claimed < store::BATCH {
                break;
            }
        }
        Ok(report)
    }

    /// Claims one batch of due messages and delivers them.
    async fn deliver_batch(&self) -> Result<DeliveryReport, StoreError> {
        let now = self.clock.now();
        let claimed = self
            .store
            .write(move |conn| store::claim(conn, now))
            .await?;
        let mut report = DeliveryReport {
            claimed: claimed.len(),
            ..Default::default()
        };
        let outcomes =
            futures_util::future::join_all(claimed.iter().map(|row| self.deliver(row))).await;
        let now = self.clock.now();
        let max = self.max_attempts;
        let results: Vec<(OutboxRow, Result<(), String>)> =
            claimed.into_iter().zip(outcomes).collect();
        for (_, outcome) in &results {
            match outcome {
                Ok(()) => report.sent += 1,
                Err(_) => report.retrying += 1,
            }
        }
        let dead = self
            .store
            .write(move |conn| {
                let mut dead = 0;
                for (row, outcome) in &results {
                    if store::record(conn, row, outcome, max, now)? {
                        dead += 1;
                    }
                }
                Ok::<_, StoreError>(dead)
            })
            .await?;
        report.retrying -= dead;
        report.dead = dead;
        Ok(report)
    }

    async fn deliver(&self, row: &OutboxRow) -> Result<(), String> {
        match row.kind {
            MessageKind::Email => self.send_email(&row.id, row.payload.clone()).await,
            MessageKind::Webhook => {
                let delivery: Delivery = serde_json::from_str(&row.payload)
                    .map_err(|e| format!("unreadable delivery: {e}"))?;
                self.send_webhook(&row.id, &delivery).await
            }
        }
    }

    /// Reads, builds and encodes the email on the blocking pool (a large one costs
    /// seconds of CPU that must not stall the HTTP workers or the runtime),
    /// then sends it.
    async fn send_email(&self, id: &str, payload: String) -> Result<(), String> {
        let from = self.from.clone();
        let id = id.to_owned();
        let (envelope, raw) = tokio::task::spawn_blocking(move || {
            let email: Email =
                serde_json::from_str(&payload).map_err(|e| format!("unreadable email: {e}"))?;
            wire_form(&from, &id, email)
        })
        .await
        .map_err(|e| format!("building the email failed: {e}"))??;
        self.mailer.send(&envelope, &raw).await
    }

    async fn send_webhook(&self, id: &str, delivery: &Delivery) -> Result<(), String> {
        let webhook = delivery.webhook.clone();
        let secret = self
            .store
            .run(move |conn| {
                crate::webhooks::store::find(conn, &webhook)
                    .map(|found| found.map(|w| w.secret))
                    .map_err(StoreError::from)
            })
            .await
            .map_err(|e| e.to_string())?;
        let Some(secret) = secret else {
            return Err("the subscription was deleted".into());
        };
        // Checked again now, as the connection is made: the name may
        // resolve elsewhere than when the subscription was made.
        let url = url::Url::parse(&delivery.url).map_err(|e| format!("not a URL: {e}"))?;
        webhooks::guard::check_delivery(&url, self.webhook_targets)?;
        let body = serde_json::to_vec(&delivery.body).map_err(|e| e.to_string())?;
        let timestamp = Utc::now().timestamp();
        let signature = webhooks::signature(&secret, timestamp, &body).ok_or("cannot sign")?;
        let response = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("clearance-event", &delivery.event)
            .header("clearance-delivery", id)
            .header("clearance-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| format!("request failed: {}", causes(&e)))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered {}", response.status()))
        }
    }

    /// Runs [`Outbox::run_once`] every `interval` until the process ends.
    pub fn spawn(self: &Arc<Self>, interval: Duration) {
        let outbox = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match outbox.run_once().await {
                    Ok(report) if report.claimed > 0 => tracing::info!(?report, "outbox delivered"),
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "outbox pass failed"),
                }
            }
        });
    }
}

/// An error and what caused it, innermost last: a refusal by the address
/// policy reaches the delivery's `last_error` through the HTTP client's.
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_an_hour() {
        for _ in 0..50 {
            let first = backoff(1).num_milliseconds();
            assert!((48_000..=72_000).contains(&first), "{first}");
            let late = backoff(30).num_milliseconds();
            assert!((2_880_000..=4_320_000).contains(&late), "{late}");
        }
    }
}
