//! The in-memory snapshot that answers integrator queries without touching
//! the database. Rebuilt at start-up, swapped atomically after each change in
//! this process, and kept current across instances by `LISTEN/NOTIFY` on
//! PostgreSQL plus a periodic check of the status version.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use hashbrown::HashTable;
use sha2::{Digest, Sha256};
use smallvec::SmallVec;

use super::derive::{self, Clearance, Facts, Status};
use super::store;
use crate::clock::SharedClock;
use crate::conditions::Conditions;
use crate::db::{Store, StoreError};

/// The strong entity tag's length: 32 hex digits in quotes.
const ETAG_LEN: usize = 34;

/// What a status lookup answers: the body and its strong entity tag (in
/// quotes, as the `ETag` header carries it), both slices of one buffer.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub etag: Bytes,
    pub body: Bytes,
    /// The status answered.
    pub status: Status,
    /// The model, when the catalogue holds it.
    pub model: Option<ModelKey>,
}

/// A catalogued model's number in this process: dense, from 0, and kept by
/// every rebuild (a new model gets the next). Usage is tallied by it (an
/// index, not the names), and [`Snapshot::name_of`] names it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelKey(pub u32);

/// Renders `clearance`: the entity tag, then the JSON body, in one buffer
/// that lookups hand out slices of.
fn render(clearance: &Clearance) -> Bytes {
    let body = serde_json::to_vec(clearance).unwrap_or_default();
    let mut buffer = Vec::with_capacity(ETAG_LEN + body.len());
    buffer.push(b'"');
    buffer.extend_from_slice(hex::encode(&Sha256::digest(&body)[..16]).as_bytes());
    buffer.push(b'"');
    buffer.extend_from_slice(&body);
    Bytes::from(buffer)
}

impl Rendered {
    fn from_buffer(buffer: &Bytes, status: Status, model: Option<ModelKey>) -> Rendered {
        Rendered {
            etag: buffer.slice(..ETAG_LEN),
            body: buffer.slice(ETAG_LEN..),
            status,
            model,
        }
    }
}

/// The bytes of a model's key and `valid_until` held in its entry itself.
const HEAD_INLINE: usize = 56;

/// One model's clearance, compact: 10,000 of them must fit in a few
/// megabytes. A check reads the head, the status, `valid_until` and the
/// conditions (which identical approvals share), all in the table itself at
/// usual lengths: a check of a hundred models would otherwise follow two
/// pointers, each to memory out of cache, for every one. A lookup hands out
/// slices of the rendered response.
#[derive(Debug, Clone)]
struct Entry {
    /// `provider/model` (slugs hold no `/`), then `valid_until` as RFC 3339
    /// text.
    head: SmallVec<[u8; HEAD_INLINE]>,
    key_len: u8,
    status: Status,
    /// The model's number.
    number: ModelKey,
    valid_until: Option<DateTime<Utc>>,
    conditions: Arc<Conditions>,
    /// The entity tag, then the JSON body.
    rendered: Bytes,
}

impl Entry {
    /// The entry of `key` with `clearance`, or `None` for a key longer than
    /// two slugs can be.
    fn new(
        key: &[u8],
        number: ModelKey,
        clearance: &Clearance,
        conditions: Arc<Conditions>,
    ) -> Option<Self> {
        let key_len = u8::try_from(key.len()).ok()?;
        let until = clearance
            .valid_until
            .map(|v| v.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            .unwrap_or_default();
        let mut head = SmallVec::with_capacity(key.len() + until.len());
        head.extend_from_slice(key);
        head.extend_from_slice(until.as_bytes());
        Some(Entry {
            head,
            key_len,
            number,
            status: clearance.status,
            valid_until: clearance.valid_until,
            conditions,
            rendered: render(clearance),
        })
    }

    fn key(&self) -> &[u8] {
        &self.head[..usize::from(self.key_len)]
    }

    fn body(&self) -> &[u8] {
        &self.rendered[ETAG_LEN..]
    }

    fn rendered(&self) -> Rendered {
        Rendered::from_buffer(&self.rendered, self.status, Some(self.number))
    }

    /// `valid_until` as RFC 3339 text.
    fn valid_until_text(&self) -> Option<&[u8]> {
        Some(&self.head[usize::from(self.key_len)..]).filter(|t| !t.is_empty())
    }

    /// The clearance it was rendered from.
    fn clearance(&self) -> Option<Clearance> {
        serde_json::from_slice(self.body()).ok()
    }

    /// Whether this entry already renders `clearance`.
    fn renders(&self, clearance: &Clearance) -> bool {
        serde_json::to_vec(clearance).is_ok_and(|body| body == self.body())
    }

    /// The status as of `now` (an approval lapses at `valid_until`).
    fn status_at(&self, now: DateTime<Utc>) -> Status {
        self.status.as_of(self.valid_until, now)
    }
}

/// What a check needs to know of a model's clearance.
#[derive(Debug)]
pub struct Decided<'s> {
    pub status: Status,
    pub conditions: &'s Conditions,
    /// `valid_until` as RFC 3339 text.
    pub valid_until: Option<&'s [u8]>,
    /// The model, when the catalogue holds it.
    pub model: Option<ModelKey>,
}

type Hasher = foldhash::fast::RandomState;

/// Every model's clearance at one status version.
#[derive(Default)]
pub struct Snapshot {
    pub version: i64,
    /// By the hash of `provider/model`: one probe per lookup.
    models: HashTable<Entry>,
    hasher: Hasher,
    /// `provider/model` by number.
    numbered: Vec<Arc<str>>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("version", &self.version)
            .field("models", &self.models.len())
            .finish()
    }
}

/// The earliest instant: deriving "as of" it never yields `expired`.
fn beginning() -> DateTime<Utc> {
    DateTime::<Utc>::MIN_UTC
}

static NO_CONDITIONS: std::sync::LazyLock<Conditions> =
    std::sync::LazyLock::new(Conditions::default);

impl Snapshot {
    /// Builds from facts at status version `version`; a model whose
    /// clearance did not change since `previous` keeps its rendering.
    pub fn build<P: AsRef<str>, M: AsRef<str>>(
        version: i64,
        facts: Vec<(P, M, Facts)>,
        previous: Option<&Snapshot>,
    ) -> Snapshot {
        let hasher = previous.map_or_else(Hasher::default, |p| p.hasher.clone());
        let mut models = HashTable::with_capacity(facts.len());
        let mut shared: HashMap<Conditions, Arc<Conditions>, Hasher> = HashMap::default();
        // Numbers stay with their models; a new model takes the next.
        let mut numbered = previous.map(|p| p.numbered.clone()).unwrap_or_default();
        for (provider, model, facts) in facts {
            let (provider, model) = (provider.as_ref(), model.as_ref());
            let clearance = derive::derive(provider, model, &facts, beginning());
            let key = key(provider, model);
            let old = previous.and_then(|p| p.find(key.as_bytes()));
            let entry = match old {
                Some(old) if old.renders(&clearance) => {
                    shared
                        .entry(clearance.conditions)
                        .or_insert_with(|| old.conditions.clone());
                    old.clone()
                }
                _ => {
                    let conditions = shared
                        .entry(clearance.conditions.clone())
                        .or_insert_with_key(|c| Arc::new(c.clone()))
                        .clone();
                    let number = match old {
                        Some(old) => old.number,
                        None => match u32::try_from(numbered.len()) {
                            Ok(next) => ModelKey(next),
                            Err(_) => continue,
                        },
                    };
                    match Entry::new(key.as_bytes(), number, &clearance, conditions) {
                        Some(entry) => {
                            if old.is_none() {
                                numbered.push(Arc::from(key.as_str()));
                            }
                            entry
                        }
                        None => continue,
                    }
                }
            };
            let hash = hasher.hash_one(key.as_bytes());
            models.insert_unique(hash, entry, |e: &Entry| hasher.hash_one(e.key()));
        }
        Snapshot {
            version,
            models,
            hasher,
            numbered,
        }
    }

    fn entry(&self, provider: &str, model: &str) -> Option<&Entry> {
        // The key, put together on the stack as `key` would: lookups allocate nothing.
        let mut stack = [0; 256];
        let len = provider.len() + 1 + model.len();
        let key = stack.get_mut(..len)?;
        key[..provider.len()].copy_from_slice(provider.as_bytes());
        key[provider.len()] = b'/';
        key[provider.len() + 1..].copy_from_slice(model.as_bytes());
        self.find(key)
    }

    /// The entry of `provider/model`.
    fn find(&self, key: &[u8]) -> Option<&Entry> {
        self.models
            .find(self.hasher.hash_one(key), |e| e.key() == key)
    }

    /// The provider and model numbered `number`.
    pub fn name_of(&self, number: ModelKey) -> Option<(&str, &str)> {
        let key = self.numbered.get(usize::try_from(number.0).ok()?)?;
        key.split_once('/')
    }

    /// The response to a status lookup as of `now`; unknown models are
    /// `not_reviewed`.
    pub fn lookup(&self, provider: &str, model: &str, now: DateTime<Utc>) -> Rendered {
        match self.entry(provider, model) {
            Some(entry) if entry.status_at(now) == entry.status => entry.rendered(),
            found => {
                let clearance = clearance_of(found, provider, model, now);
                Rendered::from_buffer(
                    &render(&clearance),
                    clearance.status,
                    found.map(|e| e.number),
                )
            }
        }
    }

    /// The clearance of a model as of `now`; unknown models are `not_reviewed`.
    pub fn clearance(&self, provider: &str, model: &str, now: DateTime<Utc>) -> Clearance {
        clearance_of(self.entry(provider, model), provider, model, now)
    }

    /// What a check needs of a model's clearance as of `now`, rendering nothing.
    pub fn for_check(&self, provider: &str, model: &str, now: DateTime<Utc>) -> Decided<'_> {
        match self.entry(provider, model) {
            Some(entry) => Decided {
                status: entry.status_at(now),
                conditions: &entry.conditions,
                valid_until: entry.valid_until_text(),
                model: Some(entry.number),
            },
            None => Decided {
                status: Status::NotReviewed,
                conditions: &NO_CONDITIONS,
                valid_until: None,
                model: None,
            },
        }
    }

    /// Every model's provider, model and what a check needs of its
    /// clearance as of `now`, in no order: what the exports list.
    pub fn each(&self, now: DateTime<Utc>) -> impl Iterator<Item = (&str, &str, Decided<'_>)> {
        self.models.iter().filter_map(move |entry| {
            let (provider, model) = std::str::from_utf8(entry.key()).ok()?.split_once('/')?;
            let decided = Decided {
                status: entry.status_at(now),
                conditions: &entry.conditions,
                valid_until: entry.valid_until_text(),
                model: Some(entry.number),
            };
            Some((provider, model, decided))
        })
    }

    pub fn len(&self) -> usize {
        self.models.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The key of a model in the snapshot (slugs hold no `/`).
fn key(provider: &str, model: &str) -> String {
    format!("{provider}/{model}")
}

/// The clearance `entry` holds, as of `now`; `not_reviewed` without one.
fn clearance_of(
    entry: Option<&Entry>,
    provider: &str,
    model: &str,
    now: DateTime<Utc>,
) -> Clearance {
    match entry.and_then(|e| Some((e, e.clearance()?))) {
        Some((entry, clearance)) => Clearance {
            status: entry.status_at(now),
            ..clearance
        },
        None => derive::derive(provider, model, &Facts::default(), now),
    }
}

/// Holds the current snapshot and keeps it fresh.
pub struct StatusService {
    current: ArcSwap<Snapshot>,
    store: Store,
    clock: SharedClock,
    rebuilding: tokio::sync::Mutex<()>,
    stopping: std::sync::atomic::AtomicBool,
    listener: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for StatusService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusService")
            .field("version", &self.current.load().version)
            .finish_non_exhaustive()
    }
}

/// After a change that moved clearances, this instance publishes them at once.
impl crate::unit::Publisher for StatusService {
    fn refresh(&self) -> futures_util::future::BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move { StatusService::refresh(self).await.map(drop) })
    }
}

impl StatusService {
    /// Builds the first snapshot from the database.
    pub async fn load(store: Store, clock: SharedClock) -> Result<Arc<Self>, StoreError> {
        let service = Arc::new(Self {
            current: ArcSwap::from_pointee(Snapshot::default()),
            store,
            clock,
            rebuilding: tokio::sync::Mutex::new(()),
            stopping: std::sync::atomic::AtomicBool::new(false),
            listener: std::sync::Mutex::new(None),
        });
        service.rebuild(None).await?;
        Ok(service)
    }

    pub fn snapshot(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.current.load()
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Rebuilds when the database's status version moved past the snapshot's.
    pub async fn refresh(&self) -> Result<bool, StoreError> {
        let seen = self.current.load().version;
        let version = self
            .store
            .run(|conn| store::version(conn).map_err(StoreError::from))
            .await?;
        if version <= seen {
            return Ok(false);
        }
        self.rebuild(Some(version)).await?;
        Ok(true)
    }

    /// Builds the snapshot from the database, unless (with `at_least`) the
    /// rebuild it waited behind already reached that version: decisions
    /// committed together then cost one rebuild, not one each.
    async fn rebuild(&self, at_least: Option<i64>) -> Result<(), StoreError> {
        let _one_at_a_time = self.rebuilding.lock().await;
        if at_least.is_some_and(|version| self.current.load().version >= version) {
            return Ok(());
        }
        let (version, facts) = self
            .store
            .run(|conn| {
                let version = store::version(conn)?;
                let facts = store::load_facts(conn, None)?;
                Ok::<_, StoreError>((version, facts))
            })
            .await?;
        let previous = self.current.load_full();
        if version < previous.version {
            return Ok(());
        }
        let snapshot =
            tokio::task::spawn_blocking(move || Snapshot::build(version, facts, Some(&previous)))
                .await
                .map_err(|_| StoreError::Cancelled)?;
        self.current.store(Arc::new(snapshot));
        Ok(())
    }

    /// Stops the listener and waits for it, so that no database client is
    /// still at work while the process exits.
    pub fn stop(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let thread = self
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    /// Keeps the snapshot current: a version check every `interval`, and on
    /// PostgreSQL a listener that refreshes as soon as another instance commits.
    pub fn spawn_background(self: &Arc<Self>, interval: Duration, postgres_url: Option<String>) {
        let service = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if let Err(error) = service.refresh().await {
                    tracing::warn!(%error, "status snapshot refresh failed");
                }
            }
        });
        if let Some(url) = postgres_url {
            let service = Arc::downgrade(self);
            let handle = tokio::runtime::Handle::current();
            match std::thread::Builder::new()
                .name("status-listener".into())
                .spawn(move || listen(url, service, handle))
            {
                Ok(thread) => {
                    *self.listener.lock().unwrap_or_else(|e| e.into_inner()) = Some(thread)
                }
                Err(error) => tracing::warn!(%error, "cannot start the status listener"),
            }
        }
    }
}

/// Waits for `NOTIFY clearance_status` and refreshes; reconnects on failure,
/// and ends when the service is gone or the database stays unreachable.
fn listen(url: String, service: std::sync::Weak<StatusService>, handle: tokio::runtime::Handle) {
    use diesel::{Connection, RunQueryDsl};
    let mut failures = 0;
    while failures < 5 && service.strong_count() > 0 {
        let connected = diesel::PgConnection::establish(&url).and_then(|mut conn| {
            diesel::sql_query(format!("LISTEN {}", store::CHANNEL))
                .execute(&mut conn)
                .map(|_| conn)
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))
        });
        let mut conn = match connected {
            Ok(conn) => {
                failures = 0;
                conn
            }
            Err(error) => {
                failures += 1;
                tracing::warn!(%error, "status listener cannot listen; retrying");
                std::thread::sleep(Duration::from_secs(2));
                continue;
            }
        };
        loop {
            if service
                .upgrade()
                .is_none_or(|s| s.stopping.load(std::sync::atomic::Ordering::Relaxed))
            {
                return;
            }
            let mut heard = false;
            let mut broken = false;
            for notification in conn.notifications_iter() {
                match notification {
                    Ok(_) => heard = true,
                    Err(_) => broken = true,
                }
                if broken {
                    break;
                }
            }
            let Some(service) = service.upgrade() else {
                return;
            };
            if broken {
                break;
            }
            if heard {
                handle.spawn(async move {
                    if let Err(error) = service.refresh().await {
                        tracing::warn!(%error, "status snapshot refresh failed");
                    }
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::status::derive::Decision;
    use crate::status::derive::tests::{decision, now};
    use crate::workflow::engine::ReviewState;

    fn approved(valid_until: DateTime<Utc>) -> Facts {
        Facts {
            model_decision: Some(Decision {
                valid_until: Some(valid_until),
                ..decision(ReviewState::Approved, 10, None)
            }),
            ..Facts::default()
        }
    }

    #[test]
    fn models_are_found_by_their_whole_key_at_every_length() {
        let until = now() + TimeDelta::days(30);
        let precise = until + TimeDelta::nanoseconds(123_456_789);
        let longest = "m".repeat(63);
        let models = [
            ("p", "m", until),
            ("p", "m1", precise),
            ("p1", "m", until),
            ("p", longest.as_str(), precise),
            (longest.as_str(), longest.as_str(), until),
        ];
        let facts = models
            .iter()
            .map(|(p, m, until)| (p.to_string(), m.to_string(), approved(*until)))
            .collect();
        let snapshot = Snapshot::build(3, facts, None);
        assert_eq!(snapshot.len(), models.len());
        for (provider, model, until) in models {
            let clearance = snapshot.clearance(provider, model, now());
            assert_eq!(
                (clearance.provider.as_str(), clearance.model.as_str()),
                (provider, model)
            );
            assert_eq!(clearance.status, Status::Approved);
            assert_eq!(clearance.valid_until, Some(until));
            let decided = snapshot.for_check(provider, model, now());
            let text = until.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
            assert_eq!(decided.valid_until, Some(text.as_bytes()));
            let looked_up: Clearance =
                serde_json::from_slice(&snapshot.lookup(provider, model, now()).body).unwrap();
            assert_eq!(looked_up, clearance);
        }
        for (provider, model) in [("p", "m2"), ("p/m", ""), ("", "p/m"), ("p", "")] {
            let decided = snapshot.for_check(provider, model, now());
            assert_eq!(decided.status, Status::NotReviewed, "{provider}/{model}");
            assert_eq!(decided.valid_until, None);
        }
        let past = snapshot.for_check("p", "m", until + TimeDelta::seconds(1));
        assert_eq!(past.status, Status::Expired);
    }
}
