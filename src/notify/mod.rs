//! Notifications: messages are written to the outbox in the same transaction
//! as the change that causes them, and delivered later by a worker. The texts
//! of the messages live in [`messages`].

use diesel::QueryResult;
use serde::{Deserialize, Serialize};

use crate::outbox::{self, MessageKind};
use crate::people;
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
/// message). Nobody is emailed about their own action: the person whose
/// change this is is left out of the recipients (the one rule every notice
/// follows). Returns whether it was queued (an email to nobody is not).
pub fn enqueue_email(
    tx: &mut Tx<'_>,
    email: &Email,
    dedup_key: Option<String>,
) -> QueryResult<bool> {
    enqueue(tx, email, dedup_key).map(|to| !to.is_empty())
}

/// As [`enqueue_email`], answering whom the email was queued to (nobody
/// when it was not): for a change that remembers who was told.
pub fn enqueue(
    tx: &mut Tx<'_>,
    email: &Email,
    dedup_key: Option<String>,
) -> QueryResult<Vec<String>> {
    let actor = tx.actor().id();
    let own = people::address_of(tx.conn(), &actor)?;
    let to = not_to_the_actor(&email.to, own.as_deref());
    if to.is_empty() {
        return Ok(to);
    }
    let email = Email {
        to,
        ..email.clone()
    };
    let payload = serde_json::to_string(&email).unwrap_or_default();
    let now = tx.now();
    let queued = outbox::store::queue(tx.conn(), MessageKind::Email, &payload, dedup_key, now)?;
    Ok(if queued { email.to } else { Vec::new() })
}

/// The recipients of a notice, without the person who acted (`own`, their
/// address when the directory knows one).
pub fn not_to_the_actor(to: &[String], own: Option<&str>) -> Vec<String> {
    to.iter()
        .filter(|address| !own.is_some_and(|own| own.eq_ignore_ascii_case(address)))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_actor_is_left_out_whatever_the_case_of_the_address() {
        let to = vec!["Ada@Example.com".to_owned(), "ben@example.com".to_owned()];
        assert_eq!(
            not_to_the_actor(&to, Some("ada@example.com")),
            vec!["ben@example.com".to_owned()]
        );
        assert_eq!(not_to_the_actor(&to, None), to);
    }
}
