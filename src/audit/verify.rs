//! Verification of the audit chain: a plain function over the events in
//! `seq` order and the recorded head, with no database, so it is tested alone
//! and serves both `GET /v1/audit/verify` and `clearance audit verify`.

use serde::Serialize;
use utoipa::ToSchema;

use super::{AuditRow, GENESIS_HASH};

/// The chain's head as `audit_head` records it: the last event's seq and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
}

impl ChainHead {
    /// The head of an empty log.
    pub fn genesis() -> Self {
        Self {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
        }
    }
}

/// The first event that does not fit the chain, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct BadEvent {
    /// The event's seq; for a truncated tail, the first seq that is missing.
    pub seq: i64,
    /// The event's id; `null` when the event is missing (truncated tail) or
    /// when the head itself disagrees with the last event.
    pub id: Option<String>,
    /// What does not match, in words, with what it suggests (edited, deleted,
    /// reordered or truncated).
    pub problem: String,
}

/// The outcome of recomputing the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Verification {
    pub ok: bool,
    /// How many events the log holds.
    pub events: u64,
    /// The last event's hash (the genesis hash for an empty log); only when `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// Only when not `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad: Option<BadEvent>,
}

/// Recomputes the chain from `rows` (which must come in ascending `seq`
/// order) and compares its end with `head`.
///
/// Checks, per event, in this order, so that the problem names the likeliest
/// tampering: its seq follows the previous one (a gap means deleted events),
/// its `prev_hash` is the previous event's hash (otherwise an event before it
/// was deleted, reordered, or edited and re-hashed), and its own hash matches
/// its content (otherwise it was edited). Finally the head must name the last
/// event (otherwise the tail was truncated, or events were added outside the
/// service). Every row is read, so `events` counts the whole log even when an
/// early event is bad; only the first problem is reported.
///
/// Rows come as results so that a caller streaming them from a database can
/// stop at its first error.
pub fn verify<E>(
    rows: impl IntoIterator<Item = Result<AuditRow, E>>,
    head: &ChainHead,
) -> Result<Verification, E> {
    let mut events: u64 = 0;
    let mut last_seq: i64 = 0;
    let mut last_hash = GENESIS_HASH.to_owned();
    let mut first_bad: Option<BadEvent> = None;
    // The first event past the recorded head, in case the head falls short.
    let mut beyond_head: Option<String> = None;
    for row in rows {
        let row = row?;
        events += 1;
        if first_bad.is_none() {
            first_bad = check(&row, last_seq, &last_hash);
        }
        if row.seq > head.seq && beyond_head.is_none() {
            beyond_head = Some(row.id.clone());
        }
        last_seq = row.seq;
        last_hash = row.hash;
    }
    if first_bad.is_none() {
        first_bad = check_head(head, last_seq, &last_hash, beyond_head);
    }
    Ok(match first_bad {
        None => Verification {
            ok: true,
            events,
            head: Some(last_hash),
            first_bad: None,
        },
        Some(bad) => Verification {
            ok: false,
            events,
            head: None,
            first_bad: Some(bad),
        },
    })
}

/// The problem with `row`, given the event before it, if any.
fn check(row: &AuditRow, previous_seq: i64, previous_hash: &str) -> Option<BadEvent> {
    let bad = |problem: String| {
        Some(BadEvent {
            seq: row.seq,
            id: Some(row.id.clone()),
            problem,
        })
    };
    let expected_seq = previous_seq + 1;
    if row.seq != expected_seq {
        let missing = if row.seq > expected_seq {
            format!(
                "events {expected_seq} to {} are missing (deleted)",
                row.seq - 1
            )
        } else {
            "the sequence goes backwards".to_owned()
        };
        return bad(format!(
            "seq gap: expected seq {expected_seq} after seq {previous_seq}, found seq {}; {missing}",
            row.seq
        ));
    }
    if row.prev_hash != previous_hash {
        let before = if previous_seq == 0 {
            "the genesis hash".to_owned()
        } else {
            format!("the hash of event seq {previous_seq}")
        };
        return bad(format!(
            "prev_hash does not equal {before}: an event before it was deleted or \
             reordered (or edited and re-hashed)"
        ));
    }
    let computed = row.compute_hash();
    if row.hash != computed {
        return bad(format!(
            "hash mismatch: the stored hash is {} but the content hashes to {computed}; \
             the event was edited",
            row.hash
        ));
    }
    None
}

/// The problem with the recorded head, given the last event read and the
/// first event past the head.
fn check_head(
    head: &ChainHead,
    last_seq: i64,
    last_hash: &str,
    beyond_head: Option<String>,
) -> Option<BadEvent> {
    if head.seq > last_seq {
        return Some(BadEvent {
            seq: last_seq + 1,
            id: None,
            problem: format!(
                "truncated tail: the head records seq {} but the log ends at seq {last_seq}; \
                 the last events were deleted",
                head.seq
            ),
        });
    }
    if head.seq < last_seq {
        return Some(BadEvent {
            seq: head.seq + 1,
            id: beyond_head,
            problem: format!(
                "the head records seq {} but the log goes on to seq {last_seq}; \
                 events were added outside the service",
                head.seq
            ),
        });
    }
    if head.hash != last_hash {
        return Some(BadEvent {
            seq: last_seq,
            id: None,
            problem: format!(
                "the head records hash {} but the last event's hash is {last_hash}; \
                 the head or the last event was rewritten",
                head.hash
            ),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use chrono::NaiveDate;

    use super::*;

    /// A well-formed chain of `n` events.
    fn chain(n: i64) -> Vec<AuditRow> {
        let mut rows: Vec<AuditRow> = Vec::new();
        for seq in 1..=n {
            let prev_hash = rows
                .last()
                .map_or(GENESIS_HASH.to_owned(), |r| r.hash.clone());
            let mut row = AuditRow {
                seq,
                id: format!("event-{seq}"),
                occurred_at: NaiveDate::from_ymd_opt(2026, 3, 2)
                    .and_then(|d| d.and_hms_micro_opt(9, 0, 0, 123_456))
                    .unwrap(),
                actor: "ada".into(),
                actor_roles: r#"["admin"]"#.into(),
                action: "provider.created".into(),
                subject: format!("provider/p{seq}"),
                review_id: None,
                request_id: Some("req".into()),
                before_data: None,
                after_data: Some(format!(r#"{{"n":{seq}}}"#)),
                prev_hash,
                hash: String::new(),
            };
            row.hash = row.compute_hash();
            rows.push(row);
        }
        rows
    }

    fn head_of(rows: &[AuditRow]) -> ChainHead {
        rows.last().map_or(ChainHead::genesis(), |r| ChainHead {
            seq: r.seq,
            hash: r.hash.clone(),
        })
    }

    fn run(rows: Vec<AuditRow>, head: &ChainHead) -> Verification {
        verify(rows.into_iter().map(Ok::<_, Infallible>), head).unwrap()
    }

    fn first_bad(verification: &Verification) -> &BadEvent {
        assert!(!verification.ok, "{verification:?}");
        assert!(verification.head.is_none());
        verification.first_bad.as_ref().unwrap()
    }

    #[test]
    fn an_empty_log_verifies_to_the_genesis_hash() {
        let result = run(Vec::new(), &ChainHead::genesis());
        assert_eq!(
            result,
            Verification {
                ok: true,
                events: 0,
                head: Some(GENESIS_HASH.into()),
                first_bad: None
            }
        );
    }

    #[test]
    fn an_untouched_chain_verifies_to_its_last_hash() {
        let rows = chain(5);
        let head = head_of(&rows);
        let result = run(rows, &head);
        assert!(result.ok);
        assert_eq!(result.events, 5);
        assert_eq!(result.head.as_deref(), Some(head.hash.as_str()));
        assert!(result.first_bad.is_none());
    }

    #[test]
    fn an_edited_event_is_a_hash_mismatch() {
        let mut rows = chain(5);
        let head = head_of(&rows);
        rows[2].after_data = Some(r#"{"n":999}"#.into());
        let result = run(rows, &head);
        let bad = first_bad(&result);
        assert_eq!((bad.seq, bad.id.as_deref()), (3, Some("event-3")));
        assert!(bad.problem.starts_with("hash mismatch"), "{}", bad.problem);
        assert_eq!(result.events, 5, "the whole log is still counted");
    }

    #[test]
    fn each_hashed_field_counts() {
        let edits: [fn(&mut AuditRow); 6] = [
            |r| r.actor = "mallory".into(),
            |r| r.actor_roles = "[]".into(),
            |r| r.action = "provider.deleted".into(),
            |r| r.occurred_at += chrono::TimeDelta::microseconds(1),
            |r| r.request_id = None,
            |r| r.before_data = Some("{}".into()),
        ];
        for edit in edits {
            let mut rows = chain(3);
            let head = head_of(&rows);
            edit(&mut rows[1]);
            assert_eq!(first_bad(&run(rows, &head)).seq, 2);
        }
    }

    #[test]
    fn a_deleted_middle_event_is_a_seq_gap() {
        let mut rows = chain(5);
        let head = head_of(&rows);
        rows.remove(2);
        let result = run(rows, &head);
        let bad = first_bad(&result);
        assert_eq!((bad.seq, bad.id.as_deref()), (4, Some("event-4")));
        assert!(bad.problem.starts_with("seq gap"), "{}", bad.problem);
        assert!(bad.problem.contains("events 3 to 3"), "{}", bad.problem);
        assert_eq!(result.events, 4);
    }

    #[test]
    fn a_deleted_event_renumbered_to_hide_the_gap_breaks_the_links() {
        let mut rows = chain(5);
        let head = head_of(&rows);
        rows.remove(2);
        for row in rows.iter_mut().skip(2) {
            row.seq -= 1;
        }
        let bad = run(rows, &head).first_bad.unwrap();
        assert_eq!((bad.seq, bad.id.as_deref()), (3, Some("event-4")));
        assert!(bad.problem.starts_with("prev_hash"), "{}", bad.problem);
    }

    #[test]
    fn swapped_events_break_the_links_at_the_first_of_them() {
        let mut rows = chain(5);
        let head = head_of(&rows);
        rows[1].seq = 3;
        rows[2].seq = 2;
        rows.swap(1, 2);
        let bad = run(rows, &head).first_bad.unwrap();
        assert_eq!((bad.seq, bad.id.as_deref()), (2, Some("event-3")));
        assert!(bad.problem.starts_with("prev_hash"), "{}", bad.problem);
    }

    #[test]
    fn an_edited_and_rehashed_event_breaks_the_next_link() {
        let mut rows = chain(4);
        let head = head_of(&rows);
        rows[1].action = "nothing.happened".into();
        rows[1].hash = rows[1].compute_hash();
        let bad = run(rows, &head).first_bad.unwrap();
        assert_eq!(bad.seq, 3);
        assert!(bad.problem.contains("seq 2"), "{}", bad.problem);
    }

    #[test]
    fn a_truncated_tail_disagrees_with_the_head() {
        let mut rows = chain(5);
        let head = head_of(&rows);
        rows.truncate(3);
        let result = run(rows, &head);
        let bad = first_bad(&result);
        assert_eq!((bad.seq, bad.id.as_deref()), (4, None));
        assert!(bad.problem.starts_with("truncated tail"), "{}", bad.problem);
        assert_eq!(result.events, 3);
    }

    #[test]
    fn a_rewritten_last_event_disagrees_with_the_head() {
        let mut rows = chain(3);
        let head = head_of(&rows);
        rows[2].after_data = None;
        rows[2].hash = rows[2].compute_hash();
        let bad = run(rows, &head).first_bad.unwrap();
        assert_eq!(bad.seq, 3);
        assert!(bad.problem.contains("head"), "{}", bad.problem);
    }

    #[test]
    fn events_beyond_the_head_are_reported() {
        let rows = chain(3);
        let head = head_of(&rows[..2]);
        let bad = run(rows, &head).first_bad.unwrap();
        assert_eq!((bad.seq, bad.id.as_deref()), (3, Some("event-3")));
        assert!(bad.problem.contains("outside"), "{}", bad.problem);
    }

    #[test]
    fn a_read_error_stops_verification() {
        let rows = chain(3).into_iter().map(Ok).chain([Err("disk on fire")]);
        assert_eq!(
            verify(rows, &ChainHead::genesis()).unwrap_err(),
            "disk on fire"
        );
    }

    #[test]
    fn the_report_serializes_as_documented() {
        let rows = chain(1);
        let head = head_of(&rows);
        let ok = serde_json::to_value(run(rows, &head)).unwrap();
        assert_eq!(
            ok,
            serde_json::json!({"ok": true, "events": 1, "head": head.hash})
        );
        let broken = serde_json::to_value(run(Vec::new(), &head)).unwrap();
        assert_eq!(broken["ok"], false);
        assert_eq!(broken["first_bad"]["seq"], 1);
        assert!(broken["first_bad"]["id"].is_null());
        assert!(broken.get("head").is_none());
    }
}
