//! Webhook subscriptions: systems that want to hear of status changes. A
//! change queues one delivery per subscription in the outbox, in the same
//! transaction; the outbox worker signs and delivers it with retries.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::{Validate, ValidationError};

use crate::db::DbConnection;
use crate::schema::{outbox_messages, webhooks};

pub mod routes;

/// Events a subscription can ask for.
pub const EVENTS: &[&str] = &["status.changed"];

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhooks)]
pub struct WebhookRow {
    pub id: String,
    pub url: String,
    pub secret: String,
    pub events: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
}

/// A subscription as listed (its secret is shown only when created).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl From<&WebhookRow> for Webhook {
    fn from(row: &WebhookRow) -> Self {
        Webhook {
            id: row.id.clone(),
            url: row.url.clone(),
            events: serde_json::from_str(&row.events).unwrap_or_default(),
            created_by: row.created_by.clone(),
            created_at: row.created_at.and_utc(),
        }
    }
}

/// `POST /v1/webhooks`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    #[validate(required, custom(function = "webhook_url"))]
    #[schema(required = true, example = "https://gateway.example/hooks/clearance")]
    pub url: Option<String>,
    /// The HMAC key for signatures, 16 to 200 characters; generated when omitted.
    #[validate(length(min = 16, max = 200))]
    pub secret: Option<String>,
    /// Default: every event.
    #[validate(custom(function = "known_events"))]
    pub events: Option<Vec<String>>,
}

/// The created subscription with its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    pub secret: String,
}

fn webhook_url(value: &str) -> Result<(), ValidationError> {
    let ok = url::Url::parse(value)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
    if ok && value.len() <= 2000 {
        Ok(())
    } else {
        Err(ValidationError::new("url").with_message("must be an http:// or https:// URL".into()))
    }
}

fn known_events(events: &[String]) -> Result<(), ValidationError> {
    if events.is_empty() || events.iter().any(|e| !EVENTS.contains(&e.as_str())) {
        return Err(ValidationError::new("events")
            .with_message(format!("must list some of: {}", EVENTS.join(", ")).into()));
    }
    Ok(())
}

/// What the outbox holds for one delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    pub webhook: String,
    pub url: String,
    pub event: String,
    pub body: serde_json::Value,
}

/// Queues `event` for every subscription that wants it. Returns how many.
pub fn enqueue(
    conn: &mut DbConnection,
    event: &str,
    body: &serde_json::Value,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    let subscriptions: Vec<WebhookRow> =
        webhooks::table.select(WebhookRow::as_select()).load(conn)?;
    let mut queued = 0;
    for subscription in subscriptions {
        let events: Vec<String> = serde_json::from_str(&subscription.events).unwrap_or_default();
        if !events.iter().any(|e| e == event) {
            continue;
        }
        let delivery = Delivery {
            webhook: subscription.id.clone(),
            url: subscription.url.clone(),
            event: event.to_owned(),
            body: body.clone(),
        };
        diesel::insert_into(outbox_messages::table)
            .values((
                outbox_messages::id.eq(uuid::Uuid::now_v7().to_string()),
                outbox_messages::kind.eq("webhook"),
                outbox_messages::payload.eq(serde_json::to_string(&delivery).unwrap_or_default()),
                outbox_messages::state.eq("pending"),
                outbox_messages::attempts.eq(0),
                outbox_messages::next_attempt_at.eq(now.naive_utc()),
                outbox_messages::created_at.eq(now.naive_utc()),
            ))
            .execute(conn)?;
        queued += 1;
    }
    Ok(queued)
}

/// The signature header of a delivery: `t=<unix time>,v1=<hex HMAC-SHA256>`
/// over `"<t>.<body>"` with the subscription's secret.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_time_and_body() {
        let sign = |secret: &str, t: i64, body: &[u8]| signature(secret, t, body).unwrap();
        let a = sign("secret-of-sixteen", 1_700_000_000, b"{\"x\":1}");
        assert!(a.starts_with("t=1700000000,v1="));
        assert_ne!(a, sign("secret-of-sixteen", 1_700_000_001, b"{\"x\":1}"));
        assert_ne!(a, sign("secret-of-sixteen", 1_700_000_000, b"{\"x\":2}"));
        assert_ne!(a, sign("another-secret-16", 1_700_000_000, b"{\"x\":1}"));
    }
}
