//! Database code of the audit log: the filtered list, the head, the events
//! in `seq` order in batches, and verification over one consistent snapshot.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::AuditRow;
use super::verify::{ChainHead, Verification, verify};
use crate::db::{DbConnection, in_snapshot};
use crate::schema::{audit_events, audit_head};

/// How many events verification reads at a time, so that a large log is
/// never held in memory at once.
pub const VERIFY_BATCH: i64 = 1000;

/// Filters of `GET /v1/audit`, checked.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// One event, by its seq (to check a published head against the log).
    pub seq: Option<i64>,
    pub subject: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub review: Option<String>,
    /// Events at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Events before this time.
    pub to: Option<DateTime<Utc>>,
}

/// Where a page of events starts, and which way it reads.
#[derive(Debug, Clone, Copy)]
pub enum Cursor {
    /// In chain order, after this seq (from the first when `None`).
    After(Option<i64>),
    /// Newest first, before this seq (from the newest when `None`).
    Before(Option<i64>),
}

/// A page of events in chain order; `after` is the last seq of the previous
/// page. Returns up to `limit + 1` rows (the extra one says a page follows).
pub fn list(
    conn: &mut DbConnection,
    filter: &AuditFilter,
    after: Option<i64>,
    limit: u32,
) -> QueryResult<Vec<AuditRow>> {
    page(conn, filter, Cursor::After(after), limit)
}

/// A page of events from `cursor`, in its order. Returns up to `limit + 1`
/// rows (the extra one says a page follows).
pub fn page(
    conn: &mut DbConnection,
    filter: &AuditFilter,
    cursor: Cursor,
    limit: u32,
) -> QueryResult<Vec<AuditRow>> {
    let mut query = audit_events::table
        .select(AuditRow::as_select())
        .limit(i64::from(limit) + 1)
        .into_boxed();
    query = match cursor {
        Cursor::After(after) => {
            let query = query.order(audit_events::seq.asc());
            match after {
                Some(after) => query.filter(audit_events::seq.gt(after)),
                None => query,
            }
        }
        Cursor::Before(before) => {
            let query = query.order(audit_events::seq.desc());
            match before {
                Some(before) => query.filter(audit_events::seq.lt(before)),
                None => query,
            }
        }
    };
    if let Some(seq) = filter.seq {
        query = query.filter(audit_events::seq.eq(seq));
    }
    if let Some(subject) = &filter.subject {
        query = query.filter(audit_events::subject.eq(subject.clone()));
    }
    if let Some(actor) = &filter.actor {
        query = query.filter(audit_events::actor.eq(actor.clone()));
    }
    if let Some(action) = &filter.action {
        query = query.filter(audit_events::action.eq(action.clone()));
    }
    if let Some(review) = &filter.review {
        query = query.filter(audit_events::review_id.eq(review.clone()));
    }
    if let Some(from) = filter.from {
        query = query.filter(audit_events::occurred_at.ge(from.naive_utc()));
    }
    if let Some(to) = filter.to {
        query = query.filter(audit_events::occurred_at.lt(to.naive_utc()));
    }
    query.load(conn)
}

/// The head as `audit_head` records it.
pub fn head(conn: &mut DbConnection) -> QueryResult<ChainHead> {
    let (seq, hash) = audit_head::table
        .filter(audit_head::id.eq(1))
        .select((audit_head::seq, audit_head::hash))
        .first::<(i64, String)>(conn)?;
    Ok(ChainHead { seq, hash })
}

/// Every event in ascending `seq`, read `batch` at a time by keyset
/// (`seq > last`), so memory stays bounded however long the log is.
pub struct InSeqOrder<'a> {
    conn: &'a mut DbConnection,
    batch: i64,
    after: i64,
    buffer: VecDeque<AuditRow>,
    done: bool,
}

impl<'a> InSeqOrder<'a> {
    pub fn new(conn: &'a mut DbConnection, batch: i64) -> Self {
        Self {
            conn,
            batch: batch.max(1),
            after: i64::MIN,
            buffer: VecDeque::new(),
            done: false,
        }
    }

    fn fill(&mut self) -> QueryResult<()> {
        let rows: Vec<AuditRow> = audit_events::table
            .filter(audit_events::seq.gt(self.after))
            .order(audit_events::seq.asc())
            .limit(self.batch)
            .select(AuditRow::as_select())
            .load(self.conn)?;
        if (rows.len() as i64) < self.batch {
            self.done = true;
        }
        if let Some(last) = rows.last() {
            self.after = last.seq;
        }
        self.buffer.extend(rows);
        Ok(())
    }
}

impl Iterator for InSeqOrder<'_> {
    type Item = QueryResult<AuditRow>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buffer.is_empty()
            && !self.done
            && let Err(error) = self.fill()
        {
            self.done = true;
            return Some(Err(error));
        }
        self.buffer.pop_front().map(Ok)
    }
}

/// Recomputes the whole chain and compares it with the head, inside one
/// read-only snapshot: appends that commit meanwhile are neither half seen
/// nor blocked.
pub fn verify_chain(conn: &mut DbConnection) -> QueryResult<Verification> {
    in_snapshot(conn, |conn| {
        let head = head(conn)?;
        verify(InSeqOrder::new(conn, VERIFY_BATCH), &head)
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::audit::{Actor, Change, append};
    use crate::config::DatabaseUrl;
    use crate::db::Store;

    fn store_with_events(n: usize) -> (tempfile::TempDir, Store) {
        let folder = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::Sqlite(folder.path().join("audit.sqlite3"));
        let store = Store::open(&url, 1).unwrap();
        store.migrate().unwrap();
        let mut conn = store.get().unwrap();
        let now = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        for i in 0..n {
            let change = Change {
                action: crate::audit::Action::ProviderCreated,
                subject: crate::audit::Subject::provider(format!("p{i}")),
                review_id: None,
                before: None,
                after: Some(serde_json::json!({"i": i})),
            };
            crate::unit::test_tx(&mut conn, &Actor::system("test"), now, |tx| {
                append(tx, change).unwrap();
            });
        }
        drop(conn);
        (folder, store)
    }

    #[test]
    fn batches_cover_every_event_once_in_order() {
        let (_folder, store) = store_with_events(7);
        let mut conn = store.get().unwrap();
        for batch in [1, 2, 3, 7, 1000] {
            let seqs: Vec<i64> = InSeqOrder::new(&mut conn, batch)
                .map(|row| row.unwrap().seq)
                .collect();
            assert_eq!(seqs, [1, 2, 3, 4, 5, 6, 7], "batch {batch}");
        }
    }

    #[test]
    fn appended_events_verify() {
        let (_folder, store) = store_with_events(3);
        let mut conn = store.get().unwrap();
        let verification = verify_chain(&mut conn).unwrap();
        assert!(verification.ok, "{verification:?}");
        assert_eq!(verification.events, 3);
        assert_eq!(verification.head, Some(head(&mut conn).unwrap().hash));
    }
}
