//! Notifications: messages are written to the outbox in the same transaction
//! as the change that causes them, and delivered later by a worker. The texts
//! of the messages live in [`messages`].

use diesel::QueryResult;
use serde::{Deserialize, Serialize};

use crate::outbox::{self, MessageKind};
use crate::unit::Tx;

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

/// Queues an email within a change. With a `dedup_key`, a second email with
/// the same key is not queued (so a retried or repeated job never doubles a
/// message). Returns whether it was queued (an email to nobody is not).
pub fn enqueue_email(
    tx: &mut Tx<'_>,
    email: &Email,
    dedup_key: Option<String>,
) -> QueryResult<bool> {
    if email.to.is_empty() {
        return Ok(false);
    }
    let payload = serde_json::to_string(email).unwrap_or_default();
    let now = tx.now();
    outbox::store::queue(tx.conn(), MessageKind::Email, &payload, dedup_key, now)
}
