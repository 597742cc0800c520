//! Database code of the outbox: queueing a message (inside the change that
//! causes it), claiming due ones with a lease, recording what delivery did,
//! and the admin's list and retry.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;

use super::{MessageKind, MessageState, OutboxRow, backoff};
use crate::db::{DbConnection, PageRequest, StoreError};
use crate::ids::MessageId;
use crate::schema::outbox_messages;

/// How long a claim lasts before another worker may take the message over.
const LEASE: TimeDelta = TimeDelta::minutes(5);
/// How many messages one claim takes (and delivers at once).
pub const BATCH: usize = 50;

/// Queues a message. With a `dedup_key`, a second message with the same key
/// is not queued (so a retried or repeated job never doubles a message);
/// returns whether it was queued. Called by [`crate::notify`] and
/// [`crate::webhooks`] within a change.
pub fn queue(
    conn: &mut DbConnection,
    kind: MessageKind,
    payload: &str,
    dedup_key: Option<String>,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
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
            outbox_messages::id.eq(MessageId::generate()),
            outbox_messages::kind.eq(kind),
            outbox_messages::dedup_key.eq(dedup_key),
            outbox_messages::payload.eq(payload),
            outbox_messages::state.eq(MessageState::Pending),
            outbox_messages::attempts.eq(0),
            outbox_messages::next_attempt_at.eq(now.naive_utc()),
            outbox_messages::created_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    Ok(true)
}

/// Takes up to a batch of due messages (and those whose claim lapsed).
pub fn claim(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<Vec<OutboxRow>, StoreError> {
    let now_naive = now.naive_utc();
    let due: Vec<OutboxRow> = outbox_messages::table
        .filter(
            outbox_messages::state
                .eq(MessageState::Pending)
                .and(outbox_messages::next_attempt_at.le(now_naive))
                .or(outbox_messages::state
                    .eq(MessageState::Sending)
                    .and(outbox_messages::locked_until.lt(now_naive))),
        )
        .order(outbox_messages::next_attempt_at.asc())
        .limit(BATCH as i64)
        .select(OutboxRow::as_select())
        .load(conn)?;
    let ids: Vec<&str> = due.iter().map(|r| r.id.as_str()).collect();
    diesel::update(outbox_messages::table.filter(outbox_messages::id.eq_any(&ids)))
        .set((
            outbox_messages::state.eq(MessageState::Sending),
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
pub fn record(
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
                    outbox_messages::state.eq(MessageState::Sent),
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
                    outbox_messages::state.eq(if dead {
                        MessageState::Dead
                    } else {
                        MessageState::Pending
                    }),
                    outbox_messages::next_attempt_at.eq((now + backoff(row.attempts)).naive_utc()),
                    outbox_messages::locked_until.eq(None::<chrono::NaiveDateTime>),
                    outbox_messages::last_error.eq(Some(error.clone())),
                ))
                .execute(conn)?;
            Ok(dead)
        }
    }
}

/// A page of messages, oldest first, optionally in one state.
pub fn list(
    conn: &mut DbConnection,
    state: Option<MessageState>,
    page: &PageRequest,
) -> QueryResult<Vec<OutboxRow>> {
    let mut query = outbox_messages::table
        .select(OutboxRow::as_select())
        .order(outbox_messages::id.asc())
        .limit(i64::from(page.limit) + 1)
        .into_boxed();
    if let Some(state) = state {
        query = query.filter(outbox_messages::state.eq(state));
    }
    if let Some(after) = &page.after {
        query = query.filter(outbox_messages::id.gt(after.clone()));
    }
    query.load(conn)
}

pub fn find(conn: &mut DbConnection, id: &MessageId) -> QueryResult<Option<OutboxRow>> {
    outbox_messages::table
        .filter(outbox_messages::id.eq(id))
        .select(OutboxRow::as_select())
        .first(conn)
        .optional()
}

/// Makes a message due now with a fresh count of attempts.
pub fn requeue(conn: &mut DbConnection, id: &MessageId, now: DateTime<Utc>) -> QueryResult<()> {
    diesel::update(outbox_messages::table.filter(outbox_messages::id.eq(id)))
        .set((
            outbox_messages::state.eq(MessageState::Pending),
            outbox_messages::attempts.eq(0),
            outbox_messages::next_attempt_at.eq(now.naive_utc()),
            outbox_messages::locked_until.eq(None::<chrono::NaiveDateTime>),
        ))
        .execute(conn)?;
    Ok(())
}

/// How many messages are in each state.
pub fn depth(conn: &mut DbConnection) -> QueryResult<Vec<(MessageState, i64)>> {
    outbox_messages::table
        .group_by(outbox_messages::state)
        .select((outbox_messages::state, diesel::dsl::count_star()))
        .load(conn)
}
