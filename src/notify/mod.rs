//! Notifications: messages are written to the outbox in the same transaction
//! as the change that causes them, and delivered later by a worker. The texts
//! of the messages live in [`messages`].

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::DbConnection;
use crate::schema::outbox_messages;

pub mod messages;

/// An email waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email {
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    /// The same content as HTML; when present the email is sent as
    /// multipart/alternative (text first, for clients that show only text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
}

/// Queues an email. With a `dedup_key`, a second email with the same key is
/// not queued (so a retried or repeated job never doubles a message).
pub fn enqueue_email(
    conn: &mut DbConnection,
    email: &Email,
    dedup_key: Option<String>,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    if email.to.is_empty() {
        return Ok(false);
    }
    if let Some(key) = &dedup_key {
        let exists = outbox_messages::table
            .filter(outbox_messages::dedup_key.eq(key))
            .count()
            .get_result::<i64>(conn)?
            > 0;
        if exists {
            return Ok(false);
        }
    }
    diesel::insert_into(outbox_messages::table)
        .values((
            outbox_messages::id.eq(uuid::Uuid::now_v7().to_string()),
            outbox_messages::kind.eq("email"),
            outbox_messages::dedup_key.eq(dedup_key),
            outbox_messages::payload.eq(serde_json::to_string(email).unwrap_or_default()),
            outbox_messages::state.eq("pending"),
            outbox_messages::attempts.eq(0),
            outbox_messages::next_attempt_at.eq(now.naive_utc()),
            outbox_messages::created_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    Ok(true)
}
