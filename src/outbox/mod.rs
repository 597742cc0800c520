//! The outbox worker: delivers what changes queued (emails and webhooks),
//! with retries, exponential backoff and jitter. Messages are claimed with a
//! lease, so several instances never send one message twice at once, and a
//! worker that dies mid-delivery leaves its claim to expire and the message
//! to be sent again (at-least-once: a receiver may see a delivery twice within
//! the lease window, and de-duplicates by its id).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use lettre::message::{Mailbox, MultiPart, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Serialize;
use utoipa::ToSchema;

use crate::clock::SharedClock;
use crate::db::{DbConnection, Store, StoreError};
use crate::notify::Email;
use crate::schema::{outbox_messages, webhooks as webhook_table};
use crate::webhooks::{self, Delivery};

pub mod routes;

/// How long a claim lasts before another worker may take the message over.
const LEASE: TimeDelta = TimeDelta::minutes(5);
const BATCH: i64 = 50;

/// Where emails go.
pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// `.eml` files in a folder: the first-run default, without an SMTP server.
    Files(PathBuf),
}

impl Mailer {
    pub fn from_config(
        smtp_url: Option<&url::Url>,
        data_dir: &std::path::Path,
    ) -> Result<Self, String> {
        match smtp_url {
            Some(url) => AsyncSmtpTransport::<Tokio1Executor>::from_url(url.as_str())
                .map(|builder| Mailer::Smtp(builder.timeout(Some(Duration::from_secs(20))).build()))
                .map_err(|e| format!("SMTP_URL: {e}")),
            None => Ok(Mailer::Files(data_dir.join("mail"))),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox_messages)]
pub struct OutboxRow {
    pub id: String,
    pub kind: String,
    pub dedup_key: Option<String>,
    pub payload: String,
    pub state: String,
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

pub struct Outbox {
    store: Store,
    clock: SharedClock,
    mailer: Mailer,
    from: Mailbox,
    http: reqwest::Client,
    max_attempts: i32,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
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
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
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
        })
    }

    /// Claims due messages and delivers them; returns what happened.
    pub async fn run_once(&self) -> Result<DeliveryReport, StoreError> {
        let now = self.clock.now();
        let claimed = self.store.write(move |conn| claim(conn, now)).await?;
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
                    if record(conn, row, outcome, max, now)? {
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
        match row.kind.as_str() {
            "email" => {
                let email: Email = serde_json::from_str(&row.payload)
                    .map_err(|e| format!("unreadable email: {e}"))?;
                self.send_email(&row.id, &email).await
            }
            "webhook" => {
                let delivery: Delivery = serde_json::from_str(&row.payload)
                    .map_err(|e| format!("unreadable delivery: {e}"))?;
                self.send_webhook(&row.id, &delivery).await
            }
            other => Err(format!("unknown message kind `{other}`")),
        }
    }

    async fn send_email(&self, id: &str, email: &Email) -> Result<(), String> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(email.subject.clone())
            .message_id(Some(format!("<{id}@clearance>")));
        for to in &email.to {
            builder = builder.to(to
                .parse::<Mailbox>()
                .map_err(|e| format!("bad address {to}: {e}"))?);
        }
        let message = match &email.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                html.clone(),
            )),
            None => builder
                .header(ContentType::TEXT_PLAIN)
                .body(email.text.clone()),
        }
        .map_err(|e| e.to_string())?;
        match &self.mailer {
            Mailer::Smtp(transport) => transport
                .send(message)
                .await
                .map(drop)
                .map_err(|e| format!("SMTP: {e}")),
            Mailer::Files(dir) => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::fs::write(dir.join(format!("{id}.eml")), message.formatted())
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    }

    async fn send_webhook(&self, id: &str, delivery: &Delivery) -> Result<(), String> {
        let webhook = delivery.webhook.clone();
        let secret: Option<String> = self
            .store
            .run(move |conn| {
                webhook_table::table
                    .filter(webhook_table::id.eq(&webhook))
                    .select(webhook_table::secret)
                    .first(conn)
                    .optional()
                    .map_err(StoreError::from)
            })
            .await
            .map_err(|e| e.to_string())?;
        let Some(secret) = secret else {
            return Err("the subscription was deleted".into());
        };
        let body = serde_json::to_vec(&delivery.body).map_err(|e| e.to_string())?;
        let timestamp = Utc::now().timestamp();
        let signature = webhooks::signature(&secret, timestamp, &body).ok_or("cannot sign")?;
        let response = self
            .http
            .post(&delivery.url)
            .header("content-type", "application/json")
            .header("clearance-event", &delivery.event)
            .header("clearance-delivery", id)
            .header("clearance-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
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

/// Takes up to a batch of due messages (and those whose claim lapsed).
fn claim(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<Vec<OutboxRow>, StoreError> {
    let now_naive = now.naive_utc();
    let due: Vec<OutboxRow> = outbox_messages::table
        .filter(
            outbox_messages::state
                .eq("pending")
                .and(outbox_messages::next_attempt_at.le(now_naive))
                .or(outbox_messages::state
                    .eq("sending")
                    .and(outbox_messages::locked_until.lt(now_naive))),
        )
        .order(outbox_messages::next_attempt_at.asc())
        .limit(BATCH)
        .select(OutboxRow::as_select())
        .load(conn)?;
    let ids: Vec<&str> = due.iter().map(|r| r.id.as_str()).collect();
    diesel::update(outbox_messages::table.filter(outbox_messages::id.eq_any(&ids)))
        .set((
            outbox_messages::state.eq("sending"),
            outbox_messages::locked_until.eq((now + LEASE).naive_utc()),
            outbox_messages::attempts.eq(outbox_messages::attempts + 1),
        ))
        .execute(conn)?;
    Ok(due
        .into_iter()
        .map(|mut r| {
            r.attempts += 1;
            r
        })
        .collect())
}

/// Records a delivery's outcome; returns true when the message is now dead.
fn record(
    conn: &mut DbConnection,
    row: &OutboxRow,
    outcome: &Result<(), String>,
    max_attempts: i32,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let target = outbox_messages::table.filter(outbox_messages::id.eq(&row.id));
    match outcome {
        Ok(()) => {
            diesel::update(target)
                .set((
                    outbox_messages::state.eq("sent"),
                    outbox_messages::sent_at.eq(Some(now.naive_utc())),
                    outbox_messages::locked_until.eq(None::<chrono::NaiveDateTime>),
                    outbox_messages::last_error.eq(None::<String>),
                ))
                .execute(conn)?;
            Ok(false)
        }
        Err(error) => {
            let dead = row.attempts >= max_attempts;
            tracing::warn!(id = %row.id, kind = %row.kind, attempts = row.attempts, dead, %error, "delivery failed");
            diesel::update(target)
                .set((
                    outbox_messages::state.eq(if dead { "dead" } else { "pending" }),
                    outbox_messages::next_attempt_at.eq((now + backoff(row.attempts)).naive_utc()),
                    outbox_messages::locked_until.eq(None::<chrono::NaiveDateTime>),
                    outbox_messages::last_error.eq(Some(error.clone())),
                ))
                .execute(conn)?;
            Ok(dead)
        }
    }
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
