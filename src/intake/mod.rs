//! Intake of models nobody reviewed. When an integrator asks about a model
//! whose status is `not_reviewed` — a lookup or an item of a check — the ask
//! is tallied in memory (per model, asker and use case; bounded), off the
//! answer's path, and written to the database every
//! `CLEARANCE_INTAKE_FLUSH_MS` and before each listing. Vendor managers list
//! the requests, start a review from one (registering the provider and model
//! when they are new) or dismiss one with a reason; new ones are in the
//! daily digest. This is how "shadow" model use turns into reviews.
//!
//! One token must not be able to grow the intake without bound: each asker
//! gets at most `CLEARANCE_INTAKE_PER_ASKER` new names a day (UTC), and at
//! most [`USE_CASES_PER_NAME`] use cases per name. Asks past the bound are
//! counted per asker and day ([`OverBound`]), listed beside the requests
//! and in the digest as one "and N more" line naming the asker.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::{DbConnection, Store, StoreError};
use crate::ids::{ModelSlug, ProviderSlug};
use crate::schema::{intake_askers, intake_outcomes, intake_overflow};

pub mod routes;
pub mod service;

/// Distinct askers kept between writes; asks of further askers are counted
/// as dropped ([`Intake::dropped`]) until the next write.
const ASKERS_MAX: usize = 1_000;

/// Use cases recorded per name and asker; later ones are counted as
/// [`OTHER`].
pub const USE_CASES_PER_NAME: usize = 20;

/// The use case asks past [`USE_CASES_PER_NAME`] are counted under.
pub const OTHER: &str = "other";

/// Names past the bound one asker's pending tallies tell apart (by hash)
/// between writes; further ones count as asks only.
const OVER_NAMES_MAX: usize = 10_000;

/// The default of `CLEARANCE_INTAKE_PER_ASKER`.
pub const PER_ASKER_DEFAULT: usize = 100;

/// Open requests one digest lists; the rest are behind its link.
pub const DIGEST_MAX: usize = 20;

/// Askers past the bound one listing or digest names.
const OVER_LISTED: i64 = 50;

/// How far back askers past the bound are listed.
const OVER_SHOWN: TimeDelta = TimeDelta::days(7);

/// Longest asker (`sub`) or use case kept; longer ones are cut.
const TEXT_MAX: usize = 200;

type Hasher = foldhash::fast::FixedState;

#[derive(Debug, Clone, Copy)]
struct Tally {
    asked: i64,
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
}

impl Tally {
    fn new(asked: i64, at: DateTime<Utc>) -> Self {
        Self {
            asked,
            first_seen: at,
            last_seen: at,
        }
    }

    fn add(&mut self, other: &Tally) {
        self.asked += other.asked;
        self.first_seen = self.first_seen.min(other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
    }
}

/// A model, by its provider's and its own slug.
type Name = (String, String);

/// One asker's tallies not yet written.
#[derive(Debug, Default)]
struct AskerTallies {
    /// Per name, per use case ('' for none).
    names: HashMap<Name, HashMap<String, Tally>>,
    /// Asks about names past what one asker may have pending.
    over: Over,
}

/// Asks past an asker's bound.
#[derive(Debug, Default)]
struct Over {
    asked: i64,
    /// The names' hashes (at most [`OVER_NAMES_MAX`]).
    names: HashSet<u64>,
    last_seen: Option<DateTime<Utc>>,
}

impl Over {
    fn add(&mut self, hash: u64, asked: i64, at: DateTime<Utc>) {
        self.asked += asked;
        if self.names.len() < OVER_NAMES_MAX {
            self.names.insert(hash);
        }
        self.last_seen = self.last_seen.max(Some(at));
    }

    fn merge(&mut self, other: Over) {
        self.asked += other.asked;
        for hash in other.names {
            if self.names.len() >= OVER_NAMES_MAX {
                break;
            }
            self.names.insert(hash);
        }
        self.last_seen = self.last_seen.max(other.last_seen);
    }
}

fn name_hash(provider: &str, model: &str) -> u64 {
    Hasher::default().hash_one((provider, model))
}

/// This instance's tallies of asks not yet written.
#[derive(Debug)]
pub struct Intake {
    pending: Mutex<HashMap<String, AskerTallies>>,
    dropped: AtomicU64,
    /// New names one asker may add a day.
    per_asker: usize,
}

impl Default for Intake {
    fn default() -> Self {
        Self::new(PER_ASKER_DEFAULT)
    }
}

impl Intake {
    /// An intake that records at most `per_asker` new names per asker a day.
    pub fn new(per_asker: usize) -> Self {
        Self {
            pending: Mutex::default(),
            dropped: AtomicU64::new(0),
            per_asker: per_asker.max(1),
        }
    }

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
        let sub = cut(sub);
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if !pending.contains_key(sub) && pending.len() >= ASKERS_MAX {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let asker = pending.entry(sub.to_owned()).or_default();
        let name = (provider.to_owned(), model.to_owned());
        // Names the asker already has in the database count too, so twice
        // the daily bound may wait to be written; the write applies it.
        if !asker.names.contains_key(&name) && asker.names.len() >= self.per_asker.saturating_mul(2)
        {
            asker.over.add(name_hash(provider, model), 1, now);
            return;
        }
        let use_cases = asker.names.entry(name).or_default();
        let use_case = cut(use_case.unwrap_or_default());
        let named = use_cases.len() - usize::from(use_cases.contains_key(OTHER));
        let use_case = if use_case == OTHER
            || use_cases.contains_key(use_case)
            || named < USE_CASES_PER_NAME
        {
            use_case
        } else {
            OTHER
        };
        match use_cases.get_mut(use_case) {
            Some(tally) => tally.add(&Tally::new(1, now)),
            None => {
                use_cases.insert(use_case.to_owned(), Tally::new(1, now));
            }
        }
    }

    /// Asks dropped because the tallies were full, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Writes the tallies (taken out first; put back if the write fails),
    /// each asker's new names up to the day's bound (the day of `now`), the
    /// rest as asks past it.
    pub async fn flush(&self, store: &Store, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let taken = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if taken.is_empty() {
            return Ok(0);
        }
        let shared = std::sync::Arc::new(taken);
        let written = shared.clone();
        let per_asker = self.per_asker;
        // A write transaction (the shared write lock first): on SQLite a
        // transaction that reads, then writes, fails at once under contention.
        let result = store
            .write(move |conn| {
                let mut rows = 0;
                for (sub, tallies) in written.iter() {
                    rows += write_asker(conn, sub, tallies, per_asker, now)?;
                }
                Ok::<_, StoreError>(rows)
            })
            .await;
        if result.is_err() {
            let taken = std::sync::Arc::try_unwrap(shared).unwrap_or_default();
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            for (sub, tallies) in taken {
                let kept = pending.entry(sub).or_default();
                for (name, use_cases) in tallies.names {
                    let kept_cases = kept.names.entry(name).or_default();
                    for (use_case, tally) in use_cases {
                        match kept_cases.get_mut(&use_case) {
                            Some(kept) => kept.add(&tally),
                            None => {
                                kept_cases.insert(use_case, tally);
                            }
                        }
                    }
                }
                kept.over.merge(tallies.over);
            }
        }
        result
    }
}

fn cut(text: &str) -> &str {
    let mut end = text.len().min(TEXT_MAX);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The start of the day (UTC) of `at`: the window of the per-asker bound.
fn day_start(at: DateTime<Utc>) -> NaiveDateTime {
    at.date_naive().and_time(chrono::NaiveTime::MIN)
}

/// Writes one asker's tallies: the names it already asked about, new names
/// up to the bound of the day of `now`, and what is past it as one count.
/// Answers the rows written.
fn write_asker(
    conn: &mut DbConnection,
    sub: &str,
    tallies: &AskerTallies,
    per_asker: usize,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    use intake_askers::dsl as a;
    let day = day_start(now);
    // What the asker asked before: per name, when first and which use cases.
    let mut known: HashMap<Name, (NaiveDateTime, HashSet<String>)> = HashMap::new();
    let before: Vec<(String, String, String, NaiveDateTime)> = intake_askers::table
        .filter(a::sub.eq(sub))
        .select((a::provider, a::model, a::use_case, a::first_seen))
        .load(conn)?;
    for (provider, model, use_case, first) in before {
        let entry = known
            .entry((provider, model))
            .or_insert_with(|| (first, HashSet::new()));
        entry.0 = entry.0.min(first);
        entry.1.insert(use_case);
    }
    let mut added_today = known.values().filter(|(first, _)| *first >= day).count();
    // The most asked names first: they are the ones worth a review.
    let mut names: Vec<(&Name, &HashMap<String, Tally>, i64)> = tallies
        .names
        .iter()
        .map(|(name, cases)| (name, cases, cases.values().map(|t| t.asked).sum()))
        .collect();
    names.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(b.0)));
    let mut over = Over::default();
    let mut rows = 0;
    for (name, use_cases, asked) in names {
        let cases = match known.get_mut(name) {
            Some((_, cases)) => cases,
            None if added_today < per_asker => {
                added_today += 1;
                &mut known.entry(name.clone()).or_default().1
            }
            None => {
                let last = use_cases.values().map(|t| t.last_seen).max();
                over.add(name_hash(&name.0, &name.1), asked, last.unwrap_or(now));
                continue;
            }
        };
        let mut folded: HashMap<&str, Tally> = HashMap::new();
        for (use_case, tally) in use_cases {
            // `other` itself is no use case of the bound's.
            let named = cases.len() - usize::from(cases.contains(OTHER));
            let use_case =
                if use_case == OTHER || cases.contains(use_case) || named < USE_CASES_PER_NAME {
                    use_case.as_str()
                } else {
                    OTHER
                };
            cases.insert(use_case.to_owned());
            folded
                .entry(use_case)
                .and_modify(|t| t.add(tally))
                .or_insert(*tally);
        }
        for (use_case, tally) in folded {
            add(conn, (&name.0, &name.1, sub, use_case), &tally)?;
            rows += 1;
        }
    }
    over.merge(Over {
        asked: tallies.over.asked,
        names: tallies.over.names.clone(),
        last_seen: tallies.over.last_seen,
    });
    if over.asked > 0 {
        add_over(conn, sub, day, &over, now)?;
        rows += 1;
    }
    Ok(rows)
}

/// Adds one tally to the database's (an update first: the common case).
fn add(
    conn: &mut DbConnection,
    (provider, model, sub, use_case): (&str, &str, &str, &str),
    tally: &Tally,
) -> QueryResult<()> {
    use intake_askers::dsl as a;
    let key = a::provider
        .eq(provider)
        .and(a::model.eq(model))
        .and(a::sub.eq(sub))
        .and(a::use_case.eq(use_case));
    add_or_insert(
        conn,
        |conn| {
            let existing: Option<(NaiveDateTime, NaiveDateTime)> = intake_askers::table
                .filter(key)
                .select((a::first_seen, a::last_seen))
                .first(conn)
                .optional()?;
            let Some((first, last)) = existing else {
                return Ok(false);
            };
            diesel::update(intake_askers::table.filter(key))
                .set((
                    a::asked.eq(a::asked + tally.asked),
                    a::first_seen.eq(first.min(tally.first_seen.naive_utc())),
                    a::last_seen.eq(last.max(tally.last_seen.naive_utc())),
                ))
                .execute(conn)?;
            Ok(true)
        },
        |conn| {
            diesel::insert_into(intake_askers::table)
                .values((
                    a::provider.eq(provider),
                    a::model.eq(model),
                    a::sub.eq(sub),
                    a::use_case.eq(use_case),
                    a::asked.eq(tally.asked),
                    a::first_seen.eq(tally.first_seen.naive_utc()),
                    a::last_seen.eq(tally.last_seen.naive_utc()),
                ))
                .execute(conn)
        },
    )
}

/// Adds asks past the bound to the asker's count of the day `day`.
fn add_over(
    conn: &mut DbConnection,
    sub: &str,
    day: NaiveDateTime,
    over: &Over,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    use intake_overflow::dsl as o;
    let key = o::sub.eq(sub).and(o::day.eq(day));
    let names = i64::try_from(over.names.len()).unwrap_or(i64::MAX);
    let last_seen = over.last_seen.unwrap_or(now).naive_utc();
    add_or_insert(
        conn,
        |conn| {
            let existing: Option<NaiveDateTime> = intake_overflow::table
                .filter(key)
                .select(o::last_seen)
                .first(conn)
                .optional()?;
            let Some(last) = existing else {
                return Ok(false);
            };
            diesel::update(intake_overflow::table.filter(key))
                .set((
                    o::names.eq(o::names + names),
                    o::asked.eq(o::asked + over.asked),
                    o::last_seen.eq(last.max(last_seen)),
                ))
                .execute(conn)?;
            Ok(true)
        },
        |conn| {
            diesel::insert_into(intake_overflow::table)
                .values((
                    o::sub.eq(sub),
                    o::day.eq(day),
                    o::names.eq(names),
                    o::asked.eq(over.asked),
                    o::last_seen.eq(last_seen),
                ))
                .execute(conn)
        },
    )
}

/// Adds to a row when there is one (`add` answers whether it found it),
/// else inserts it; when another instance inserted it in between, adds to
/// theirs.
fn add_or_insert(
    conn: &mut DbConnection,
    mut add: impl FnMut(&mut DbConnection) -> QueryResult<bool>,
    mut insert: impl FnMut(&mut DbConnection) -> QueryResult<usize>,
) -> QueryResult<()> {
    for _ in 0..2 {
        if add(conn)? {
            return Ok(());
        }
        match insert(conn) {
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => continue,
            other => return other.map(drop),
        }
    }
    Ok(())
}

/// An asker that asked about more new names in a day than the bound
/// (`CLEARANCE_INTAKE_PER_ASKER`): those asks are counted here, not listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OverBound {
    /// The token's `sub`.
    pub sub: String,
    /// The day (its start, UTC).
    pub day: DateTime<Utc>,
    /// Names past the bound, counted per write (a name asked again after
    /// a write may count again).
    pub names: i64,
    /// Asks about them.
    pub asked: i64,
    pub last_seen: DateTime<Utc>,
}

/// The askers past the bound in the week before `now`, most names first.
pub fn over_bound(conn: &mut DbConnection, now: DateTime<Utc>) -> QueryResult<Vec<OverBound>> {
    over_bound_since(conn, day_start(now - OVER_SHOWN))
}

fn over_bound_since(conn: &mut DbConnection, since: NaiveDateTime) -> QueryResult<Vec<OverBound>> {
    use intake_overflow::dsl as o;
    let rows: Vec<(String, NaiveDateTime, i64, i64, NaiveDateTime)> = intake_overflow::table
        .filter(o::day.ge(since))
        .select((o::sub, o::day, o::names, o::asked, o::last_seen))
        .order((o::names.desc(), o::day.desc(), o::sub.asc()))
        .limit(OVER_LISTED)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(sub, day, names, asked, last_seen)| OverBound {
            sub,
            day: day.and_utc(),
            names,
            asked,
            last_seen: last_seen.and_utc(),
        })
        .collect())
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

/// Where a listing goes on from: the last request of the previous page, by
/// its last ask and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct After {
    last_seen: NaiveDateTime,
    provider: String,
    model: String,
}

impl After {
    /// The cursor's text for `request`.
    pub fn key(request: &IntakeRequest) -> String {
        format!(
            "{}/{}/{}",
            request.last_seen.timestamp_micros(),
            request.provider,
            request.model
        )
    }

    /// Reads a cursor's text; `None` when no listing made it.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, '/');
        let micros: i64 = parts.next()?.parse().ok()?;
        let last_seen = DateTime::from_timestamp_micros(micros)?.naive_utc();
        let provider = parts.next()?.to_owned();
        let model = parts.next()?.to_owned();
        Some(Self {
            last_seen,
            provider,
            model,
        })
    }
}

/// The order of a listing: most recently asked first, then by name.
fn listing_order(
    a: &(NaiveDateTime, &str, &str),
    b: &(NaiveDateTime, &str, &str),
) -> std::cmp::Ordering {
    b.0.cmp(&a.0).then_with(|| (a.1, a.2).cmp(&(b.1, b.2)))
}

/// Up to `limit + 1` requests in `state` (every one when `None`) after
/// `after`, most recently asked first; or only that of `subject`.
pub fn list(
    conn: &mut DbConnection,
    state: Option<IntakeState>,
    subject: Option<(&ProviderSlug, &ModelSlug)>,
    (after, limit): (Option<&After>, u32),
) -> QueryResult<Vec<IntakeRequest>> {
    use diesel::dsl::max;
    let mut names = intake_askers::table
        .group_by((intake_askers::provider, intake_askers::model))
        .select((
            intake_askers::provider,
            intake_askers::model,
            max(intake_askers::last_seen),
        ))
        .into_boxed();
    if let Some((provider, model)) = subject {
        names = names
            .filter(intake_askers::provider.eq(provider.as_str().to_owned()))
            .filter(intake_askers::model.eq(model.as_str().to_owned()));
    }
    let names: Vec<(String, String, Option<NaiveDateTime>)> = names.load(conn)?;
    let outcomes = outcomes(conn, subject)?;
    let mut chosen: Vec<(NaiveDateTime, &str, &str)> = names
        .iter()
        .filter_map(|(p, m, last)| Some(((*last)?, p.as_str(), m.as_str())))
        .filter(|(_, p, m)| {
            let found = outcomes
                .get(&((*p).to_owned(), (*m).to_owned()))
                .and_then(|o| o.2.parse().ok())
                .unwrap_or(IntakeState::Open);
            state.is_none_or(|s| s == found)
        })
        .filter(|key| {
            after.is_none_or(|a| listing_order(&(a.last_seen, &a.provider, &a.model), key).is_lt())
        })
        .collect();
    chosen.sort_by(listing_order);
    chosen.truncate(limit as usize + 1);
    requests(conn, &chosen, &outcomes)
}

/// The outcomes of every request (or only of `subject`'s), by name.
fn outcomes(
    conn: &mut DbConnection,
    subject: Option<(&ProviderSlug, &ModelSlug)>,
) -> QueryResult<HashMap<Name, OutcomeRow>> {
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
        outcomes = outcomes
            .filter(intake_outcomes::provider.eq(provider.as_str().to_owned()))
            .filter(intake_outcomes::model.eq(model.as_str().to_owned()));
    }
    Ok(outcomes
        .load::<OutcomeRow>(conn)?
        .into_iter()
        .map(|row| ((row.0.clone(), row.1.clone()), row))
        .collect())
}

/// The requests of `chosen` names, in their order, from their askers' rows.
fn requests(
    conn: &mut DbConnection,
    chosen: &[(NaiveDateTime, &str, &str)],
    outcomes: &HashMap<Name, OutcomeRow>,
) -> QueryResult<Vec<IntakeRequest>> {
    // Each chosen name's place; its rows are gathered there.
    let places: HashMap<(&str, &str), usize> = chosen
        .iter()
        .enumerate()
        .map(|(i, (_, provider, model))| ((*provider, *model), i))
        .collect();
    let mut gathered: Vec<Vec<AskerRow>> = vec![Vec::new(); chosen.len()];
    if !chosen.is_empty() {
        let providers: HashSet<&str> = chosen.iter().map(|c| c.1).collect();
        let models: HashSet<&str> = chosen.iter().map(|c| c.2).collect();
        let rows: Vec<AskerRow> = intake_askers::table
            .filter(intake_askers::provider.eq_any(providers))
            .filter(intake_askers::model.eq_any(models))
            .select((
                intake_askers::provider,
                intake_askers::model,
                intake_askers::sub,
                intake_askers::use_case,
                intake_askers::asked,
                intake_askers::first_seen,
                intake_askers::last_seen,
            ))
            .load(conn)?;
        for row in rows {
            if let Some(&place) = places.get(&(row.0.as_str(), row.1.as_str())) {
                gathered[place].push(row);
            }
        }
    }
    Ok(chosen
        .iter()
        .zip(&gathered)
        .filter_map(|((_, provider, model), rows)| {
            request(
                rows,
                outcomes.get(&((*provider).to_owned(), (*model).to_owned())),
            )
        })
        .collect())
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

/// The request for `provider/model`, if anybody asked about it.
pub fn find(
    conn: &mut DbConnection,
    provider: &ProviderSlug,
    model: &ModelSlug,
) -> QueryResult<Option<IntakeRequest>> {
    Ok(list(conn, None, Some((provider, model)), (None, 1))?.pop())
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

/// What the digest says of the intake.
#[derive(Debug, Clone, Default)]
pub struct NewRequests {
    /// Open requests first asked since, most recently asked first (at most
    /// [`DIGEST_MAX`]).
    pub listed: Vec<IntakeRequest>,
    /// Further ones, not listed.
    pub more: usize,
    /// The askers past the bound since.
    pub over_bound: Vec<OverBound>,
}

/// Open requests first asked at or after `since` (for the digest): the
/// most recent [`DIGEST_MAX`], how many more, and who went past the bound.
pub fn new_since(conn: &mut DbConnection, since: DateTime<Utc>) -> QueryResult<NewRequests> {
    use diesel::dsl::{max, min};
    let names: Vec<(String, String, Option<NaiveDateTime>, Option<NaiveDateTime>)> =
        intake_askers::table
            .group_by((intake_askers::provider, intake_askers::model))
            .select((
                intake_askers::provider,
                intake_askers::model,
                min(intake_askers::first_seen),
                max(intake_askers::last_seen),
            ))
            .load(conn)?;
    let decided: HashSet<Name> = intake_outcomes::table
        .select((intake_outcomes::provider, intake_outcomes::model))
        .load::<Name>(conn)?
        .into_iter()
        .collect();
    let since_naive = since.naive_utc();
    let mut fresh: Vec<(NaiveDateTime, &str, &str)> = names
        .iter()
        .filter(|(_, _, first, _)| first.is_some_and(|f| f >= since_naive))
        .filter(|(p, m, _, _)| !decided.contains(&(p.clone(), m.clone())))
        .filter_map(|(p, m, _, last)| Some(((*last)?, p.as_str(), m.as_str())))
        .collect();
    fresh.sort_by(listing_order);
    let more = fresh.len().saturating_sub(DIGEST_MAX);
    fresh.truncate(DIGEST_MAX);
    let listed = requests(conn, &fresh, &HashMap::new())?;
    let over_bound = over_bound_since(conn, day_start(since))?;
    Ok(NewRequests {
        listed,
        more,
        over_bound,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_are_tallied_bounded_and_only_for_slugs() {
        let intake = Intake::new(3);
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
        {
            let pending = intake.pending.lock().unwrap();
            let cases = &pending["ci"].names[&("acme".to_owned(), "m1".to_owned())];
            assert_eq!(cases.len(), 2);
            assert_eq!(cases["chat"].asked, 2);
            assert_eq!(cases["chat"].last_seen, now + chrono::TimeDelta::seconds(5));
        }
        // Use cases past the bound are `other`; names past twice the
        // daily bound are asks past it.
        for i in 0..USE_CASES_PER_NAME + 5 {
            intake.asked("acme", "m1", "ci", Some(&format!("case-{i}")), now);
        }
        for i in 0..10 {
            intake.asked("acme", &format!("m-{i}"), "ci", None, now);
        }
        {
            let pending = intake.pending.lock().unwrap();
            let ci = &pending["ci"];
            let cases = &ci.names[&("acme".to_owned(), "m1".to_owned())];
            assert_eq!(cases.len(), USE_CASES_PER_NAME + 1);
            assert_eq!(cases[OTHER].asked, 7);
            assert_eq!(ci.names.len(), 6);
            assert_eq!((ci.over.asked, ci.over.names.len()), (5, 5));
        }
        for i in 0..ASKERS_MAX + 5 {
            intake.asked("acme", "m2", &format!("sub{i}"), None, now);
        }
        assert_eq!(intake.pending.lock().unwrap().len(), ASKERS_MAX);
        assert_eq!(intake.dropped(), 6);
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let text = "é".repeat(150);
        let cut = cut(&text);
        assert!(cut.len() <= TEXT_MAX && text.starts_with(cut));
    }
}
