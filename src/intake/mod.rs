//! Intake of models nobody reviewed. When an integrator asks about a model
//! whose status is `not_reviewed` — a lookup or an item of a check — the ask
//! is tallied in memory (per model, asker and use case; bounded), off the
//! answer's path, and written to the database every
//! `CLEARANCE_INTAKE_FLUSH_MS` and before each listing. Vendor managers list
//! the requests, start a review from one (registering the provider and model
//! when they are new) or dismiss one with a reason; new ones are in the
//! daily digest. This is how "shadow" model use turns into reviews.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::{DbConnection, Store, StoreError};
use crate::ids::{ModelSlug, ProviderSlug};
use crate::schema::{intake_askers, intake_outcomes};

pub mod routes;

/// Distinct (model, asker, use case) tallies kept between writes; asks
/// beyond are counted as dropped ([`Intake::dropped`]) until the next write.
const PENDING_MAX: usize = 10_000;

/// Longest asker (`sub`) or use case kept; longer ones are cut.
const TEXT_MAX: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Asked {
    provider: String,
    model: String,
    sub: String,
    use_case: String,
}

#[derive(Debug, Clone, Copy)]
struct Tally {
    asked: i64,
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
}

/// This instance's tallies of asks not yet written.
#[derive(Debug, Default)]
pub struct Intake {
    pending: Mutex<HashMap<Asked, Tally>>,
    dropped: AtomicU64,
}

impl Intake {
    /// Notes that `sub` asked about `provider/model`, found `not_reviewed`,
    /// for `use_case`. Names that are not slugs (no model could have them)
    /// are not requests.
    pub fn asked(
        &self,
        provider: &str,
        model: &str,
        sub: &str,
        use_case: Option<&str>,
        now: DateTime<Utc>,
    ) {
        if !crate::providers::is_slug(provider) || !crate::providers::is_slug(model) {
            return;
        }
        let key = Asked {
            provider: provider.to_owned(),
            model: model.to_owned(),
            sub: cut(sub),
            use_case: use_case.map(cut).unwrap_or_default(),
        };
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tally) = pending.get_mut(&key) {
            tally.asked += 1;
            tally.last_seen = tally.last_seen.max(now);
            return;
        }
        if pending.len() >= PENDING_MAX {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        pending.insert(
            key,
            Tally {
                asked: 1,
                first_seen: now,
                last_seen: now,
            },
        );
    }

    /// Asks dropped because the tallies were full, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Writes the tallies (taken out first; put back if the write fails).
    pub async fn flush(&self, store: &Store) -> Result<usize, StoreError> {
        let taken = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if taken.is_empty() {
            return Ok(0);
        }
        let rows: Vec<(Asked, Tally)> = taken.into_iter().collect();
        let written = rows.clone();
        // A write transaction (the shared write lock first): on SQLite a
        // transaction that reads, then writes, fails at once under contention.
        let result = store
            .write(move |conn| {
                for (asked, tally) in &written {
                    add(conn, asked, tally)?;
                }
                Ok::<_, StoreError>(written.len())
            })
            .await;
        if result.is_err() {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            for (asked, tally) in rows {
                let kept = pending.entry(asked).or_insert(Tally { asked: 0, ..tally });
                kept.asked += tally.asked;
                kept.first_seen = kept.first_seen.min(tally.first_seen);
                kept.last_seen = kept.last_seen.max(tally.last_seen);
            }
        }
        result
    }
}

fn cut(text: &str) -> String {
    let mut end = text.len().min(TEXT_MAX);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Adds one tally to the database's (an update first: the common case).
fn add(conn: &mut DbConnection, asked: &Asked, tally: &Tally) -> QueryResult<()> {
    use intake_askers::dsl as a;
    let key = a::provider
        .eq(&asked.provider)
        .and(a::model.eq(&asked.model))
        .and(a::sub.eq(&asked.sub))
        .and(a::use_case.eq(&asked.use_case));
    for _ in 0..2 {
        let existing: Option<(NaiveDateTime, NaiveDateTime)> = intake_askers::table
            .filter(key)
            .select((a::first_seen, a::last_seen))
            .first(conn)
            .optional()?;
        if let Some((first, last)) = existing {
            diesel::update(intake_askers::table.filter(key))
                .set((
                    a::asked.eq(a::asked + tally.asked),
                    a::first_seen.eq(first.min(tally.first_seen.naive_utc())),
                    a::last_seen.eq(last.max(tally.last_seen.naive_utc())),
                ))
                .execute(conn)?;
            return Ok(());
        }
        let inserted = diesel::insert_into(intake_askers::table)
            .values((
                a::provider.eq(&asked.provider),
                a::model.eq(&asked.model),
                a::sub.eq(&asked.sub),
                a::use_case.eq(&asked.use_case),
                a::asked.eq(tally.asked),
                a::first_seen.eq(tally.first_seen.naive_utc()),
                a::last_seen.eq(tally.last_seen.naive_utc()),
            ))
            .execute(conn);
        match inserted {
            // Another instance wrote it first: add to theirs.
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => continue,
            other => return other.map(drop),
        }
    }
    Ok(())
}

/// What became of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, strum::EnumString)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum IntakeState {
    /// Nobody has acted on it yet.
    Open,
    /// A review of the model was started from it.
    Started,
    /// A vendor manager dismissed it, with a reason.
    Dismissed,
}

impl IntakeState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Started => "started",
            Self::Dismissed => "dismissed",
        }
    }
}

/// Who asked, how often.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Asker {
    /// The token's `sub`.
    pub sub: String,
    pub asked: i64,
    pub last_seen: DateTime<Utc>,
}

/// A model integrators asked about that nobody reviewed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IntakeRequest {
    #[schema(value_type = String)]
    pub provider: ProviderSlug,
    #[schema(value_type = String)]
    pub model: ModelSlug,
    pub state: IntakeState,
    /// How many asks in all.
    pub asked: i64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Most frequent first.
    pub requested_by: Vec<Asker>,
    /// The use cases named in checks, sorted.
    pub use_cases: Vec<String>,
    /// Why it was dismissed.
    pub reason: Option<String>,
    /// The review started from it.
    pub review_id: Option<String>,
    /// Who started the review or dismissed the request, and when.
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
}

type AskerRow = (
    String,
    String,
    String,
    String,
    i64,
    NaiveDateTime,
    NaiveDateTime,
);
type OutcomeRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    NaiveDateTime,
);

/// The requests in `state` (every one when `None`), most recently asked
/// first; or only that of `subject`.
pub fn list(
    conn: &mut DbConnection,
    state: Option<IntakeState>,
    subject: Option<(&ProviderSlug, &ModelSlug)>,
) -> QueryResult<Vec<IntakeRequest>> {
    let mut askers = intake_askers::table
        .select((
            intake_askers::provider,
            intake_askers::model,
            intake_askers::sub,
            intake_askers::use_case,
            intake_askers::asked,
            intake_askers::first_seen,
            intake_askers::last_seen,
        ))
        .into_boxed();
    let mut outcomes = intake_outcomes::table
        .select((
            intake_outcomes::provider,
            intake_outcomes::model,
            intake_outcomes::state,
            intake_outcomes::reason,
            intake_outcomes::review_id,
            intake_outcomes::decided_by,
            intake_outcomes::decided_at,
        ))
        .into_boxed();
    if let Some((provider, model)) = subject {
        askers = askers
            .filter(intake_askers::provider.eq(provider.as_str().to_owned()))
            .filter(intake_askers::model.eq(model.as_str().to_owned()));
        outcomes = outcomes
            .filter(intake_outcomes::provider.eq(provider.as_str().to_owned()))
            .filter(intake_outcomes::model.eq(model.as_str().to_owned()));
    }
    let askers: Vec<AskerRow> = askers.load(conn)?;
    let outcomes: HashMap<(String, String), OutcomeRow> = outcomes
        .load::<OutcomeRow>(conn)?
        .into_iter()
        .map(|row| ((row.0.clone(), row.1.clone()), row))
        .collect();
    let mut by_model: HashMap<(String, String), Vec<AskerRow>> = HashMap::new();
    for row in askers {
        by_model
            .entry((row.0.clone(), row.1.clone()))
            .or_default()
            .push(row);
    }
    let mut requests: Vec<IntakeRequest> = by_model
        .into_iter()
        .filter_map(|(key, rows)| request(&rows, outcomes.get(&key)))
        .filter(|r| state.is_none_or(|s| r.state == s))
        .collect();
    requests.sort_by(|a, b| {
        b.last_seen
            .cmp(&a.last_seen)
            .then_with(|| (&a.provider, &a.model).cmp(&(&b.provider, &b.model)))
    });
    Ok(requests)
}

/// One request from its askers' rows and its outcome.
fn request(rows: &[AskerRow], outcome: Option<&OutcomeRow>) -> Option<IntakeRequest> {
    let first = rows.first()?;
    let provider = ProviderSlug::parse(&first.0).ok()?;
    let model = ModelSlug::parse(&first.1).ok()?;
    let mut subs: HashMap<&str, Asker> = HashMap::new();
    let mut use_cases: Vec<String> = Vec::new();
    for (_, _, sub, use_case, asked, _, last) in rows {
        let entry = subs.entry(sub).or_insert_with(|| Asker {
            sub: sub.clone(),
            asked: 0,
            last_seen: last.and_utc(),
        });
        entry.asked += asked;
        entry.last_seen = entry.last_seen.max(last.and_utc());
        if !use_case.is_empty() && !use_cases.contains(use_case) {
            use_cases.push(use_case.clone());
        }
    }
    use_cases.sort();
    let mut requested_by: Vec<Asker> = subs.into_values().collect();
    requested_by.sort_by(|a, b| b.asked.cmp(&a.asked).then_with(|| a.sub.cmp(&b.sub)));
    let state = outcome
        .and_then(|o| o.2.parse().ok())
        .unwrap_or(IntakeState::Open);
    Some(IntakeRequest {
        provider,
        model,
        state,
        asked: rows.iter().map(|r| r.4).sum(),
        first_seen: rows.iter().map(|r| r.5).min()?.and_utc(),
        last_seen: rows.iter().map(|r| r.6).max()?.and_utc(),
        requested_by,
        use_cases,
        reason: outcome.and_then(|o| o.3.clone()),
        review_id: outcome.and_then(|o| o.4.clone()),
        decided_by: outcome.map(|o| o.5.clone()),
        decided_at: outcome.map(|o| o.6.and_utc()),
    })
}

/// Records what became of the request for `provider/model`.
pub fn decide(
    conn: &mut DbConnection,
    (provider, model): (&ProviderSlug, &ModelSlug),
    state: IntakeState,
    reason: Option<&str>,
    review_id: Option<&str>,
    (by, at): (&str, DateTime<Utc>),
) -> QueryResult<()> {
    use intake_outcomes::dsl as o;
    let key = o::provider
        .eq(provider.as_str().to_owned())
        .and(o::model.eq(model.as_str().to_owned()));
    diesel::delete(intake_outcomes::table.filter(key)).execute(conn)?;
    diesel::insert_into(intake_outcomes::table)
        .values((
            o::provider.eq(provider.as_str()),
            o::model.eq(model.as_str()),
            o::state.eq(state.as_str()),
            o::reason.eq(reason),
            o::review_id.eq(review_id),
            o::decided_by.eq(by),
            o::decided_at.eq(at.naive_utc()),
        ))
        .execute(conn)
        .map(drop)
}

/// Open requests first asked at or after `since` (for the digest).
pub fn new_since(conn: &mut DbConnection, since: DateTime<Utc>) -> QueryResult<Vec<IntakeRequest>> {
    Ok(list(conn, Some(IntakeState::Open), None)?
        .into_iter()
        .filter(|r| r.first_seen >= since)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_are_tallied_bounded_and_only_for_slugs() {
        let intake = Intake::default();
        let now = Utc::now();
        intake.asked("acme", "m1", "ci", Some("chat"), now);
        intake.asked(
            "acme",
            "m1",
            "ci",
            Some("chat"),
            now + chrono::TimeDelta::seconds(5),
        );
        intake.asked("acme", "m1", "ci", None, now);
        intake.asked("Not A Slug", "m1", "ci", None, now);
        intake.asked("acme", "a\u{0}b", "ci", None, now);
        let pending = intake.pending.lock().unwrap();
        assert_eq!(pending.len(), 2);
        let chat = pending
            .iter()
            .find(|(k, _)| k.use_case == "chat")
            .map(|(_, t)| *t)
            .unwrap();
        assert_eq!(chat.asked, 2);
        assert_eq!(chat.last_seen, now + chrono::TimeDelta::seconds(5));
        drop(pending);
        for i in 0..PENDING_MAX + 5 {
            intake.asked("acme", "m2", &format!("sub{i}"), None, now);
        }
        assert_eq!(intake.pending.lock().unwrap().len(), PENDING_MAX);
        assert_eq!(intake.dropped(), 7);
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let text = "é".repeat(150);
        let cut = cut(&text);
        assert!(cut.len() <= TEXT_MAX && text.starts_with(&cut));
    }
}
