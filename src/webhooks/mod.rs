//! Webhook subscriptions: systems that want to hear of status changes. A
//! change queues one delivery per subscription in the outbox, in the same
//! transaction; the outbox worker signs and delivers it with retries.

use base64::Engine as _;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use validator::{Validate, ValidationError};

use crate::audit::{self, Actor, Change};
use crate::db::{Json, StoreError};
use crate::ids::WebhookId;
use crate::outbox::{self, MessageKind};
use crate::schema::webhooks;
use crate::unit::{Tx, UnitOfWork};

pub mod guard;
pub mod routes;
pub mod store;

/// Events a subscription can ask for.
pub const EVENTS: &[&str] = &["status.changed"];

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhooks)]
pub struct WebhookRow {
    pub id: WebhookId,
    pub url: String,
    pub secret: String,
    pub events: Json<Vec<String>>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
}

/// A subscription as listed (its secret is shown only when created).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Webhook {
    pub id: WebhookId,
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
            events: row.events.get().clone(),
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
    #[schema(value_type = String, example = "https://gateway.example/hooks/clearance")]
    pub url: Option<String>,
    /// The HMAC key for signatures, 16 to 200 characters; generated when omitted.
    #[validate(
        length(min = 16, max = 200),
        custom(function = "crate::validation::one_line")
    )]
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
    // `url` drops tabs and line breaks: the text as sent is checked too.
    if ok && value.len() <= 2000 && crate::validation::line_fault(value).is_none() {
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
    pub webhook: WebhookId,
    pub url: String,
    pub event: String,
    pub body: serde_json::Value,
}

/// Queues `event` for every subscription that wants it, within a change
/// (its announcement of changed clearances). Returns how many.
pub fn enqueue(tx: &mut Tx<'_>, event: &str, body: &serde_json::Value) -> QueryResult<usize> {
    let now = tx.now();
    let conn = tx.conn();
    let subscriptions = store::all(conn)?;
    let mut queued = 0;
    for subscription in subscriptions {
        if !subscription.events.get().iter().any(|e| e == event) {
            continue;
        }
        let delivery = Delivery {
            webhook: subscription.id.clone(),
            url: subscription.url.clone(),
            event: event.to_owned(),
            body: body.clone(),
        };
        let payload = serde_json::to_string(&delivery).unwrap_or_default();
        outbox::store::queue(conn, MessageKind::Webhook, &payload, None, now)?;
        queued += 1;
    }
    Ok(queued)
}

/// Why a subscription change failed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("no webhook `{0}`")]
    NotFound(String),
    /// The URL's receiver is one the address policy refuses (why, in words).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for WebhookError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Store(StoreError::Query(error))
    }
}

/// Subscribes a URL (a validated [`NewWebhook`]) whose receiver `targets`
/// admits (see [`guard`]); the secret, generated when none is given, is
/// answered this once.
pub async fn subscribe(
    work: &UnitOfWork,
    actor: Actor,
    input: NewWebhook,
    targets: guard::Targets,
    now: DateTime<Utc>,
) -> Result<CreatedWebhook, WebhookError> {
    guard::check_url(input.url.as_deref().unwrap_or_default(), targets)
        .await
        .map_err(WebhookError::Refused)?;
    let secret = input.secret.unwrap_or_else(|| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
    });
    let events = input
        .events
        .unwrap_or_else(|| EVENTS.iter().map(|e| (*e).to_owned()).collect());
    let row = WebhookRow {
        id: WebhookId::generate(),
        url: input.url.unwrap_or_default(),
        secret: secret.clone(),
        events: Json::new(events),
        created_by: actor.id(),
        created_at: now.naive_utc(),
    };
    let webhook = Webhook::from(&row);
    let logged = serde_json::to_value(&webhook).unwrap_or_default();
    work.run(actor, now, move |tx| {
        store::insert(tx.conn(), &row)?;
        audit::append(
            tx,
            Change {
                action: crate::audit::Action::WebhookCreated,
                subject: audit::Subject::webhook(&row.id),
                review_id: None,
                before: None,
                after: Some(logged),
            },
        )?;
        Ok::<_, WebhookError>(())
    })
    .await?;
    Ok(CreatedWebhook { webhook, secret })
}

/// Deletes a subscription; its queued deliveries fail and are not retried.
pub async fn unsubscribe(
    work: &UnitOfWork,
    actor: Actor,
    id: String,
    now: DateTime<Utc>,
) -> Result<(), WebhookError> {
    let id = WebhookId::parse(&id).map_err(|_| WebhookError::NotFound(id))?;
    work.run(actor, now, move |tx| {
        let before =
            store::find(tx.conn(), &id)?.ok_or_else(|| WebhookError::NotFound(id.to_string()))?;
        store::delete(tx.conn(), &id)?;
        audit::append(
            tx,
            Change {
                action: crate::audit::Action::WebhookDeleted,
                subject: audit::Subject::webhook(&id),
                review_id: None,
                before: Some(json!({"url": before.url, "events": before.events.get()})),
                after: None,
            },
        )?;
        Ok(())
    })
    .await
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
