//! Usage: the answers integrators got about each catalogued model, per hour,
//! asker (the token's `sub`) and use case — how many allowed its use and how
//! many denied it. This is what shows who a suspension would cut off.
//!
//! Every answered lookup and every item of a check is tallied, so the
//! tallies sit on the integrators' hot path and cost little there: each
//! thread counts in its own shard (a lock nobody else takes but the writer),
//! under the model's number in the snapshot and a number for the asker and
//! use case, without allocating. Every `CLEARANCE_INTAKE_FLUSH_MS` (and
//! before usage is read or a suspension previewed) the shards are taken,
//! named and added to the database's hourly rows. Both the shards and the
//! rows kept after a failed write are bounded; what does not fit is counted
//! as dropped. Without a catalogue of use cases (`CLEARANCE_USE_CASES`),
//! each asker's distinct use cases in an hour are bounded too
//! (`CLEARANCE_USAGE_USE_CASES_PER_ASKER`, per instance): later ones are
//! counted as [`OTHER`].

use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, NaiveDateTime, TimeDelta, Timelike, Utc};
use diesel::prelude::*;
use hashbrown::{HashMap, HashTable};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::{DbConnection, Store, StoreError};
use crate::schema::model_usage;
use crate::status::snapshot::{ModelKey, Snapshot, StatusService};

pub mod routes;

/// Distinct (model, hour, asker and use case) tallies one shard keeps
/// between writes; answers beyond are dropped (and counted).
const CELLS_MAX: usize = 25_000;

/// Models one shard tallies in its dense array (by number); later ones go
/// to its table.
const DENSE_MAX: usize = 1 << 17;

/// Askers whose tallies a dense word holds (numbers below; the tag is the
/// number + 1 in 8 bits).
const DENSE_ASKERS: u32 = 255;

/// A dense word's tag bits, and one count's.
const TAG: u32 = 0xFF00_0000;
const COUNT: u32 = 0xFFF;

/// Distinct askers and use cases one shard keeps between writes.
const ASKERS_MAX: usize = 5_000;

/// Rows kept after a failed write, for the next one.
const UNWRITTEN_MAX: usize = 100_000;

/// Longest asker (`sub`) or use case kept; longer ones are cut.
const TEXT_MAX: usize = 200;

/// Rows per statement when writing to PostgreSQL (7 parameters each).
const BATCH: usize = 1_000;

/// The default of `CLEARANCE_USAGE_USE_CASES_PER_ASKER`.
pub const USE_CASES_PER_ASKER_DEFAULT: usize = 50;

/// The use case answers past an asker's bound of use cases are counted as.
pub const OTHER: &str = "other";

/// Askers (per hour) whose use cases are remembered for the bound; past
/// it, a new asker's use cases are all [`OTHER`] until the hour turns.
const SEEN_MAX: usize = 10_000;

/// The use cases counted per asker and hour.
type Seen = std::collections::HashMap<(Box<str>, i64), std::collections::HashSet<Box<str>>>;

/// How long hourly rows are kept.
pub const RETENTION: TimeDelta = TimeDelta::days(90);

type Hasher = foldhash::fast::FixedState;

/// One tally: a model, an hour (since the epoch) and an asker with a use case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Cell {
    model: ModelKey,
    hour: i64,
    asker: u32,
}

/// One thread's tallies.
#[derive(Default)]
struct Shard {
    /// Each asker's `sub` and use case ('' for none), by number.
    askers: Vec<(Box<str>, Box<str>)>,
    /// Numbers of `askers`, by the hash of the pair.
    numbers: HashTable<u32>,
    /// The hour of `dense`.
    dense_hour: i64,
    /// By model number, the tally of the first asker in `dense_hour`, in
    /// one word: its number + 1 (0: none yet) in the top 8 bits, then 12
    /// bits each of answers allowed and denied. An array of words a check's
    /// items index into: a hash table, or wider tallies, take cache the
    /// snapshot's entries need.
    dense: Vec<u32>,
    /// Every other tally: answers allowed and denied.
    cells: HashMap<Cell, [u32; 2], Hasher>,
    /// The answers of the request being tallied, counted once it is answered.
    pending: Vec<(Cell, bool)>,
    /// Answers dropped since the last write.
    dropped: u64,
}

impl Shard {
    /// The number of `sub` asking for `use_case`; `None` when the shard
    /// holds as many askers as it may.
    fn asker(&mut self, sub: &str, use_case: &str) -> Option<u32> {
        let hasher = Hasher::default();
        let hash = hasher.hash_one((sub, use_case));
        let askers = &self.askers;
        if let Some(&number) = self.numbers.find(hash, |&n| {
            let (s, u) = &askers[n as usize];
            same(s, sub) && same(u, use_case)
        }) {
            return Some(number);
        }
        if askers.len() >= ASKERS_MAX {
            return None;
        }
        let number = u32::try_from(askers.len()).ok()?;
        self.askers.push((cut(sub).into(), cut(use_case).into()));
        let askers = &self.askers;
        self.numbers.insert_unique(hash, number, |&n| {
            let (s, u) = &askers[n as usize];
            hasher.hash_one((&**s, &**u))
        });
        Some(number)
    }

    /// Counts one answer; `false` when the shard is full.
    fn count(&mut self, cell: Cell, allowed: bool) -> bool {
        if cell.hour != self.dense_hour {
            self.dropped += self.fold_dense();
            self.dense_hour = cell.hour;
        }
        let number = cell.model.0 as usize;
        if cell.asker < DENSE_ASKERS && number < DENSE_MAX {
            if number >= self.dense.len() {
                self.dense.resize(number + 1, 0);
            }
            let tag = (cell.asker + 1) << 24;
            let word = self.dense[number];
            if word == 0 || word & TAG == tag {
                let shift = if allowed { 12 } else { 0 };
                if (word >> shift) & COUNT == COUNT {
                    // Full: the counts go to the table, the word starts again.
                    self.dense[number] = tag | (1 << shift);
                    for (is_allowed, n) in [(true, (word >> 12) & COUNT), (false, word & COUNT)] {
                        if n > 0 && !self.count_cell(cell, is_allowed, n) {
                            self.dropped += u64::from(n);
                        }
                    }
                    return true;
                }
                self.dense[number] = (word | tag) + (1 << shift);
                return true;
            }
        }
        self.count_cell(cell, allowed, 1)
    }

    /// Counts `n` answers in `cells`; `false` when it is full.
    fn count_cell(&mut self, cell: Cell, allowed: bool, n: u32) -> bool {
        let slot = usize::from(!allowed);
        if let Some(counts) = self.cells.get_mut(&cell) {
            counts[slot] = counts[slot].saturating_add(n);
            return true;
        }
        if self.cells.len() >= CELLS_MAX {
            return false;
        }
        let mut counts = [0, 0];
        counts[slot] = n;
        self.cells.insert(cell, counts);
        true
    }

    /// Moves the dense tallies into `cells`; answers that do not fit are
    /// answered as dropped.
    fn fold_dense(&mut self) -> u64 {
        let mut dense = std::mem::take(&mut self.dense);
        let mut dropped = 0;
        for (number, word) in dense.iter_mut().enumerate() {
            let word = std::mem::take(word);
            if word == 0 {
                continue;
            }
            let (allowed, denied) = ((word >> 12) & COUNT, word & COUNT);
            let cell = Cell {
                model: ModelKey(number as u32),
                hour: self.dense_hour,
                asker: (word >> 24) - 1,
            };
            for (n, is_allowed) in [(allowed, true), (denied, false)] {
                if n > 0 && !self.count_cell(cell, is_allowed, n) {
                    dropped += u64::from(n);
                }
            }
        }
        // The memory stays for the next tallies.
        self.dense = dense;
        dropped
    }
}

/// Each thread's shard: threads take numbers in turn.
fn shard_number() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static NUMBER: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    NUMBER.with(|n| *n)
}

/// The hour of `at`, in hours since the epoch.
fn hour_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(3600)
}

/// The start of the hour `hour` (hours since the epoch).
fn hour_start(hour: i64) -> NaiveDateTime {
    DateTime::from_timestamp(hour.saturating_mul(3600), 0)
        .unwrap_or_default()
        .naive_utc()
}

/// The start of the hour `at` falls in.
pub fn floor_hour(at: DateTime<Utc>) -> DateTime<Utc> {
    at.with_nanosecond(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_minute(0))
        .unwrap_or(at)
}

/// Whether `a` and `b` are the same text. Empty texts are compared by
/// length alone: an empty `Box<str>` points nowhere, and the C library's
/// comparison of no bytes there costs a fault-suppression assist on some
/// processors (a tenth of a check, measured).
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && (a.is_empty() || a == b)
}

fn cut(text: &str) -> &str {
    let mut end = text.len().min(TEXT_MAX);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A row of `model_usage`, as written and read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RowKey {
    provider: String,
    model: String,
    hour: i64,
    sub: String,
    use_case: String,
}

#[derive(Insertable)]
#[diesel(table_name = model_usage)]
struct NewRow<'a> {
    provider: &'a str,
    model: &'a str,
    hour: NaiveDateTime,
    sub: &'a str,
    use_case: &'a str,
    allowed: i64,
    denied: i64,
}

/// This instance's usage tallies not yet written.
pub struct Usage {
    shards: Box<[Mutex<Shard>]>,
    dropped: AtomicU64,
    /// Rows of writes that failed, added to the next.
    unwritten: Mutex<BTreeMap<RowKey, [i64; 2]>>,
    /// When rows past the retention were last deleted (seconds since the epoch).
    pruned: AtomicU64,
    /// Distinct use cases counted per asker and hour; `None`: unbounded.
    use_cases_per_asker: Option<usize>,
    /// The use cases counted so far, per asker and hour (the recent hours).
    seen: Mutex<Seen>,
}

impl std::fmt::Debug for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Usage")
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl Default for Usage {
    fn default() -> Self {
        Self::new(Some(USE_CASES_PER_ASKER_DEFAULT))
    }
}

impl Usage {
    /// Usage tallies counting at most `use_cases_per_asker` distinct use
    /// cases per asker and hour (`None`: a catalogue bounds them).
    pub fn new(use_cases_per_asker: Option<usize>) -> Self {
        // Twice as many shards as cores: the HTTP workers, one per core,
        // rarely share one.
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            shards: (0..cores * 2).map(|_| Mutex::default()).collect(),
            dropped: AtomicU64::new(0),
            unwritten: Mutex::default(),
            pruned: AtomicU64::new(0),
            use_cases_per_asker,
            seen: Mutex::default(),
        }
    }

    /// `use_case` as counted for `sub` in `hour`: itself while the asker
    /// has fewer distinct ones than the bound in that hour, else [`OTHER`].
    fn fold<'a>(&self, seen: &mut Seen, (sub, hour): (&str, i64), use_case: &'a str) -> &'a str {
        let Some(bound) = self.use_cases_per_asker else {
            return use_case;
        };
        if use_case.is_empty() || use_case == OTHER {
            return use_case;
        }
        let key = (Box::<str>::from(sub), hour);
        if !seen.contains_key(&key) && seen.len() >= SEEN_MAX {
            return OTHER;
        }
        let cases = seen.entry(key).or_default();
        if cases.contains(use_case) {
            return use_case;
        }
        if cases.len() >= bound {
            return OTHER;
        }
        cases.insert(use_case.into());
        use_case
    }

    fn shard(&self) -> MutexGuard<'_, Shard> {
        self.shards[shard_number() % self.shards.len()]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Notes one answer about `model` to `sub`, at `now`.
    pub fn answered(
        &self,
        model: ModelKey,
        sub: &str,
        use_case: Option<&str>,
        allowed: bool,
        now: DateTime<Utc>,
    ) {
        let mut tally = self.tally(sub, now);
        tally.answered(model, use_case, allowed);
        tally.commit();
    }

    /// A tally of the answers of one request by `sub` at `now` (a check's
    /// items), counted by [`Tally::commit`] once the request is answered
    /// (a refused one counts nothing): it holds this thread's shard until
    /// dropped.
    pub fn tally<'u>(&'u self, sub: &'u str, now: DateTime<Utc>) -> Tally<'u> {
        let mut shard = self.shard();
        shard.pending.clear();
        Tally {
            usage: self,
            shard,
            sub,
            hour: hour_of(now),
            last: None,
        }
    }

    /// Answers dropped because the tallies were full, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Takes every shard's tallies, named by `snapshot`, with the rows a
    /// failed write left.
    fn take(&self, snapshot: &Snapshot) -> BTreeMap<RowKey, [i64; 2]> {
        let mut rows =
            std::mem::take(&mut *self.unwritten.lock().unwrap_or_else(|e| e.into_inner()));
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        // Only the last hours' askers are remembered: older hours are done.
        let latest = seen.keys().map(|k| k.1).max().unwrap_or_default();
        seen.retain(|k, _| k.1 + 2 >= latest);
        for shard in &self.shards {
            let (askers, cells) = {
                let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
                let dropped = shard.fold_dense() + std::mem::take(&mut shard.dropped);
                self.dropped.fetch_add(dropped, Ordering::Relaxed);
                shard.numbers.clear();
                (
                    std::mem::take(&mut shard.askers),
                    std::mem::take(&mut shard.cells),
                )
            };
            for (cell, [allowed, denied]) in cells {
                let (Some((provider, model)), Some((sub, use_case))) = (
                    snapshot.name_of(cell.model),
                    askers.get(cell.asker as usize),
                ) else {
                    continue;
                };
                let use_case = self.fold(&mut seen, (&**sub, cell.hour), use_case);
                let key = RowKey {
                    provider: provider.to_owned(),
                    model: model.to_owned(),
                    hour: cell.hour,
                    sub: sub.to_string(),
                    use_case: use_case.to_owned(),
                };
                let counts = rows.entry(key).or_default();
                counts[0] += i64::from(allowed);
                counts[1] += i64::from(denied);
            }
        }
        rows
    }

    /// Writes the tallies (named by the status snapshot), adding them to the hourly
    /// rows; rows of a failed write are kept for the next (bounded). Once an
    /// hour, rows older than [`RETENTION`] are deleted.
    pub async fn flush(&self, store: &Store, status: &StatusService) -> Result<usize, StoreError> {
        let now = status.now();
        let rows = self.take(&status.snapshot());
        let prune = {
            let at = u64::try_from(now.timestamp()).unwrap_or_default();
            let last = self.pruned.load(Ordering::Relaxed);
            (at >= last + 3600
                && self
                    .pruned
                    .compare_exchange(last, at, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok())
            .then(|| (now - RETENTION).naive_utc())
        };
        if rows.is_empty() && prune.is_none() {
            return Ok(0);
        }
        let written = std::sync::Arc::new(rows);
        let to_write = written.clone();
        let result = store
            .write(move |conn| {
                if let Some(before) = prune {
                    diesel::delete(model_usage::table.filter(model_usage::hour.lt(before)))
                        .execute(conn)?;
                }
                add(conn, &to_write)?;
                Ok::<_, StoreError>(to_write.len())
            })
            .await;
        if result.is_err() {
            let rows = std::sync::Arc::try_unwrap(written).unwrap_or_else(|a| (*a).clone());
            let mut unwritten = self.unwritten.lock().unwrap_or_else(|e| e.into_inner());
            for (key, [allowed, denied]) in rows {
                if unwritten.len() >= UNWRITTEN_MAX && !unwritten.contains_key(&key) {
                    let lost = allowed.saturating_add(denied);
                    self.dropped
                        .fetch_add(u64::try_from(lost).unwrap_or_default(), Ordering::Relaxed);
                    continue;
                }
                let counts = unwritten.entry(key).or_default();
                counts[0] += allowed;
                counts[1] += denied;
            }
        }
        result
    }
}

/// The tally of one request's answers, holding its thread's shard.
pub struct Tally<'u> {
    usage: &'u Usage,
    shard: MutexGuard<'u, Shard>,
    sub: &'u str,
    hour: i64,
    /// The asker number of the last use case, which the next item most
    /// likely names again.
    last: Option<u32>,
}

impl Tally<'_> {
    /// Notes one answer about `model` for `use_case`.
    pub fn answered(&mut self, model: ModelKey, use_case: Option<&str>, allowed: bool) {
        let use_case = use_case.unwrap_or_default();
        let asker = match self.last {
            Some(n) if same(&self.shard.askers[n as usize].1, use_case) => Some(n),
            _ => self.shard.asker(self.sub, use_case),
        };
        self.last = asker;
        match asker {
            Some(asker) => {
                let cell = Cell {
                    model,
                    hour: self.hour,
                    asker,
                };
                self.shard.pending.push((cell, allowed));
            }
            None => {
                self.usage.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Counts the answers noted: the request was answered.
    pub fn commit(mut self) {
        let shard = &mut *self.shard;
        let mut dropped = 0;
        // The buffer goes back: the next request reuses its memory.
        let mut pending = std::mem::take(&mut shard.pending);
        for (cell, allowed) in pending.drain(..) {
            if !shard.count(cell, allowed) {
                dropped += 1;
            }
        }
        shard.pending = pending;
        if dropped > 0 {
            self.usage.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
    }
}

/// Adds `rows` to the database's: one upsert per row, in batches on
/// PostgreSQL (the same statement on both; diesel builds it per backend).
fn add(conn: &mut DbConnection, rows: &BTreeMap<RowKey, [i64; 2]>) -> QueryResult<()> {
    use diesel::upsert::excluded;
    use model_usage::dsl as u;
    let new: Vec<NewRow<'_>> = rows
        .iter()
        .map(|(key, [allowed, denied])| NewRow {
            provider: &key.provider,
            model: &key.model,
            hour: hour_start(key.hour),
            sub: &key.sub,
            use_case: &key.use_case,
            allowed: *allowed,
            denied: *denied,
        })
        .collect();
    macro_rules! upsert {
        ($conn:expr, $values:expr) => {
            diesel::insert_into(model_usage::table)
                .values($values)
                .on_conflict((u::provider, u::model, u::hour, u::sub, u::use_case))
                .do_update()
                .set((
                    u::allowed.eq(u::allowed + excluded(u::allowed)),
                    u::denied.eq(u::denied + excluded(u::denied)),
                ))
                .execute($conn)
        };
    }
    match conn {
        DbConnection::Postgresql(conn) => {
            for batch in new.chunks(BATCH) {
                upsert!(conn, batch)?;
            }
        }
        DbConnection::Sqlite(conn) => {
            for row in &new {
                upsert!(conn, row)?;
            }
        }
    }
    Ok(())
}

/// One row of usage, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub provider: String,
    pub model: String,
    pub hour: DateTime<Utc>,
    pub sub: String,
    pub use_case: String,
    pub allowed: i64,
    pub denied: i64,
}

type RawRow = (String, String, NaiveDateTime, String, String, i64, i64);

/// The rows of `provider` (and `model`, when given) in hours from `from`
/// (inclusive) to `to` (exclusive), by hour, asker and use case.
pub fn rows(
    conn: &mut DbConnection,
    provider: &str,
    model: Option<&str>,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
) -> QueryResult<Vec<Row>> {
    use model_usage::dsl as u;
    let mut query = model_usage::table
        .filter(u::provider.eq(provider.to_owned()))
        .filter(u::hour.ge(floor_hour(from).naive_utc()))
        .filter(u::hour.lt(to.naive_utc()))
        .select((
            u::provider,
            u::model,
            u::hour,
            u::sub,
            u::use_case,
            u::allowed,
            u::denied,
        ))
        .order((
            u::hour.asc(),
            u::model.asc(),
            u::sub.asc(),
            u::use_case.asc(),
        ))
        .into_boxed();
    if let Some(model) = model {
        query = query.filter(u::model.eq(model.to_owned()));
    }
    Ok(query
        .load::<RawRow>(conn)?
        .into_iter()
        .map(
            |(provider, model, hour, sub, use_case, allowed, denied)| Row {
                provider,
                model,
                hour: hour.and_utc(),
                sub,
                use_case,
                allowed,
                denied,
            },
        )
        .collect())
}

/// This instance's tallies, written now; when they cannot be, they are
/// kept for the next write and the caller goes on without them.
pub async fn write_now(state: &crate::http::AppState) {
    if let Err(error) = state.usage.flush(&state.store, &state.status).await {
        tracing::warn!(%error, "cannot write the usage tallies; kept for the next try");
    }
}

/// How far back a suspension looks for the integrators it cuts off.
pub const IMPACT_WINDOW: TimeDelta = TimeDelta::days(30);

/// An integrator that asked, with what it was answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Integrator {
    /// The token's `sub`.
    pub sub: String,
    /// Its address in the directory (from its tokens' `email`), if known.
    pub email: Option<String>,
    /// Answers that allowed the use, and that denied it.
    pub allowed: i64,
    pub denied: i64,
    /// The models it asked about (of a provider's, for a provider).
    pub models: Vec<String>,
    /// The use cases it named, sorted.
    pub use_cases: Vec<String>,
    /// The first and last hour (its start) it asked in.
    pub first_hour: DateTime<Utc>,
    pub last_hour: DateTime<Utc>,
}

/// The integrators in `rows`, most answers first, with their directory
/// addresses.
pub fn integrators(conn: &mut DbConnection, rows: &[Row]) -> QueryResult<Vec<Integrator>> {
    let mut by_sub: BTreeMap<&str, Integrator> = BTreeMap::new();
    for row in rows {
        let integrator = by_sub.entry(&row.sub).or_insert_with(|| Integrator {
            sub: row.sub.clone(),
            email: None,
            allowed: 0,
            denied: 0,
            models: Vec::new(),
            use_cases: Vec::new(),
            first_hour: row.hour,
            last_hour: row.hour,
        });
        integrator.allowed += row.allowed;
        integrator.denied += row.denied;
        integrator.first_hour = integrator.first_hour.min(row.hour);
        integrator.last_hour = integrator.last_hour.max(row.hour);
        if !integrator.models.contains(&row.model) {
            integrator.models.push(row.model.clone());
        }
        if !row.use_case.is_empty() && !integrator.use_cases.contains(&row.use_case) {
            integrator.use_cases.push(row.use_case.clone());
        }
    }
    let mut found: Vec<Integrator> = by_sub.into_values().collect();
    for integrator in &mut found {
        integrator.models.sort();
        integrator.use_cases.sort();
        integrator.email = crate::people::address_of(conn, &integrator.sub)?;
    }
    found.sort_by(|a, b| {
        (b.allowed + b.denied)
            .cmp(&(a.allowed + a.denied))
            .then_with(|| a.sub.cmp(&b.sub))
    });
    Ok(found)
}

/// The integrators that asked about `provider` (or its `model`) in the
/// [`IMPACT_WINDOW`] before `now`: a suspension would deny each of them.
pub fn impact(
    conn: &mut DbConnection,
    provider: &str,
    model: Option<&str>,
    now: DateTime<Utc>,
) -> QueryResult<(DateTime<Utc>, Vec<Integrator>)> {
    let since = floor_hour(now - IMPACT_WINDOW);
    let rows = rows(conn, provider, model, (since, now + TimeDelta::hours(1)))?;
    Ok((since, integrators(conn, &rows)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::derive::Facts;

    fn snapshot() -> Snapshot {
        let facts = vec![
            ("acme".to_owned(), "m1".to_owned(), Facts::default()),
            ("acme".to_owned(), "m2".to_owned(), Facts::default()),
        ];
        Snapshot::build(1, facts, None)
    }

    fn key(snapshot: &Snapshot, model: &str) -> ModelKey {
        snapshot.for_check("acme", model, Utc::now()).model.unwrap()
    }

    #[test]
    fn answers_are_tallied_per_model_hour_asker_and_use_case() {
        let snapshot = snapshot();
        let (m1, m2) = (key(&snapshot, "m1"), key(&snapshot, "m2"));
        assert_eq!(snapshot.name_of(m1), Some(("acme", "m1")));
        let usage = Usage::default();
        let now = DateTime::parse_from_rfc3339("2026-03-02T09:59:00Z")
            .unwrap()
            .to_utc();
        usage.answered(m1, "ci", None, true, now);
        usage.answered(m1, "ci", None, false, now);
        {
            let mut tally = usage.tally("bot", now);
            tally.answered(m1, Some("chat"), true);
            tally.answered(m2, Some("chat"), false);
            tally.answered(m1, Some("search"), true);
            tally.answered(m1, Some("chat"), true);
            tally.commit();
        }
        {
            // A refused request counts nothing.
            let mut tally = usage.tally("bot", now);
            tally.answered(m1, Some("chat"), true);
        }
        usage.answered(m1, "ci", None, true, now + TimeDelta::minutes(2));
        let rows = usage.take(&snapshot);
        let found: Vec<(&str, i64, &str, &str, [i64; 2])> = rows
            .iter()
            .map(|(k, c)| {
                (
                    k.model.as_str(),
                    k.hour - hour_of(now),
                    k.sub.as_str(),
                    k.use_case.as_str(),
                    *c,
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                ("m1", 0, "bot", "chat", [2, 0]),
                ("m1", 0, "bot", "search", [1, 0]),
                ("m1", 0, "ci", "", [1, 1]),
                ("m1", 1, "ci", "", [1, 0]),
                ("m2", 0, "bot", "chat", [0, 1]),
            ]
        );
        assert!(usage.take(&snapshot).is_empty(), "taken once");
    }

    /// Tallies in one shard, whichever thread answers.
    fn one_shard() -> Usage {
        Usage {
            shards: vec![Mutex::default()].into_boxed_slice(),
            ..Usage::default()
        }
    }

    #[test]
    fn tallies_are_bounded_and_the_overflow_counted() {
        let snapshot = snapshot();
        let m1 = key(&snapshot, "m1");
        let usage = one_shard();
        let now = Utc::now();
        for i in 0..ASKERS_MAX + 3 {
            usage.answered(m1, &format!("sub-{i}"), None, true, now);
        }
        assert_eq!(usage.dropped(), 3);
        for hour in 0..CELLS_MAX as i64 {
            usage.answered(m1, "sub-0", None, true, now + TimeDelta::hours(hour));
        }
        // ASKERS_MAX tallies in the first hour, one more each later hour.
        assert_eq!(usage.take(&snapshot).len(), CELLS_MAX);
        assert_eq!(usage.dropped(), 3 + ASKERS_MAX as u64 - 1);
    }

    #[test]
    fn counts_past_a_dense_word_are_kept_and_many_askers_share_a_model() {
        let snapshot = snapshot();
        let m1 = key(&snapshot, "m1");
        let usage = one_shard();
        let now = Utc::now();
        for i in 0..10_000 {
            usage.answered(m1, "ci", None, i % 3 != 0, now);
        }
        for i in 0..300 {
            usage.answered(m1, &format!("sub-{i}"), Some("chat"), false, now);
        }
        let rows = usage.take(&snapshot);
        let ci = rows.iter().find(|(k, _)| k.sub == "ci").map(|(_, c)| *c);
        assert_eq!(ci, Some([6_666, 3_334]));
        assert_eq!(rows.len(), 301);
        assert!(
            rows.iter()
                .filter(|(k, _)| k.sub != "ci")
                .all(|(_, c)| *c == [0, 1])
        );
        assert_eq!(usage.dropped(), 0);
    }

    #[test]
    fn an_asker_is_numbered_once() {
        let usage = Usage::default();
        let now = Utc::now();
        for _ in 0..50 {
            let mut tally = usage.tally("bench", now);
            for m in 0..100 {
                tally.answered(ModelKey(m), None, true);
            }
            tally.commit();
        }
        let shard = usage.shard();
        assert_eq!(shard.askers.len(), 1);
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let text = "é".repeat(150);
        let cut = cut(&text);
        assert!(cut.len() <= TEXT_MAX && text.starts_with(cut));
    }

    #[test]
    fn hours_start_on_the_hour() {
        let at = DateTime::parse_from_rfc3339("2026-03-02T09:59:59.5Z")
            .unwrap()
            .to_utc();
        assert_eq!(hour_start(hour_of(at)).and_utc(), floor_hour(at));
        assert_eq!(floor_hour(at).to_rfc3339(), "2026-03-02T09:00:00+00:00");
    }
}
