//! The in-memory snapshot that answers integrator queries without touching
//! the database. Rebuilt at start-up, swapped atomically after each change in
//! this process, and kept current across instances by `LISTEN/NOTIFY` on
//! PostgreSQL plus a periodic check of the status version.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::HeaderValue;
use actix_web::web::Bytes;
use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::derive::{self, Clearance, Facts, Status};
use super::store;
use crate::clock::SharedClock;
use crate::conditions::Conditions;
use crate::db::{Store, StoreError};

/// The strong entity tag's length: 32 hex digits in quotes.
const ETAG_LEN: usize = 34;

/// What a status lookup answers: the body and its strong entity tag.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub etag: HeaderValue,
    pub body: Bytes,
}

/// One model's clearance, compact: 10,000 of them must fit in a few
/// megabytes. The response is rendered once, into one buffer that holds the
/// entity tag, `valid_until` as text (for check results) and the JSON body;
/// a lookup hands out slices of it. Checks read `status`, `valid_until` and
/// the conditions, which identical approvals share.
#[derive(Debug, Clone)]
struct Entry {
    buffer: Bytes,
    valid_until_len: u8,
    status: Status,
    valid_until: Option<DateTime<Utc>>,
    conditions: Arc<Conditions>,
    version: i64,
}

impl Entry {
    fn new(clearance: &Clearance, conditions: Arc<Conditions>) -> Self {
        let body = serde_json::to_vec(clearance).unwrap_or_default();
        let until = clearance
            .valid_until
            .map(|v| v.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            .unwrap_or_default();
        let mut buffer = Vec::with_capacity(ETAG_LEN + until.len() + body.len());
        buffer.push(b'"');
        buffer.extend_from_slice(hex::encode(&Sha256::digest(&body)[..16]).as_bytes());
        buffer.push(b'"');
        buffer.extend_from_slice(until.as_bytes());
        buffer.extend_from_slice(&body);
        Entry {
            buffer: Bytes::from(buffer),
            valid_until_len: until.len() as u8,
            status: clearance.status,
            valid_until: clearance.valid_until,
            conditions,
            version: clearance.version,
        }
    }

    /// Where the JSON body starts in the buffer.
    fn body_start(&self) -> usize {
        ETAG_LEN + usize::from(self.valid_until_len)
    }

    fn body(&self) -> &[u8] {
        &self.buffer[self.body_start()..]
    }

    fn rendered(&self) -> Rendered {
        let etag = HeaderValue::from_maybe_shared(self.buffer.slice(..ETAG_LEN))
            .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
        Rendered {
            etag,
            body: self.buffer.slice(self.body_start()..),
        }
    }

    fn valid_until_text(&self) -> Option<&str> {
        let text = &self.buffer[ETAG_LEN..self.body_start()];
        std::str::from_utf8(text).ok().filter(|t| !t.is_empty())
    }

    /// The clearance it was rendered from.
    fn clearance(&self) -> Option<Clearance> {
        serde_json::from_slice(self.body()).ok()
    }

    /// Whether this entry already renders `clearance` at this entry's version.
    fn renders(&self, clearance: &Clearance) -> bool {
        let same = Clearance {
            version: self.version,
            ..clearance.clone()
        };
        serde_json::to_vec(&same).is_ok_and(|body| body == self.body())
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
    pub valid_until: Option<&'s str>,
}

type Hasher = foldhash::fast::RandomState;

/// Every model's clearance at one status version.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub version: i64,
    /// By `provider/model` (slugs hold no `/`): one probe per lookup.
    models: HashMap<Box<str>, Entry, Hasher>,
}

/// The earliest instant: deriving "as of" it never yields `expired`.
fn beginning() -> DateTime<Utc> {
    DateTime::<Utc>::MIN_UTC
}

static NO_CONDITIONS: std::sync::LazyLock<Conditions> =
    std::sync::LazyLock::new(Conditions::default);

impl Snapshot {
    /// Builds from facts; a model whose clearance did not change since
    /// `previous` keeps its version (and its rendering).
    pub fn build(
        version: i64,
        facts: Vec<(String, String, Facts)>,
        previous: Option<&Snapshot>,
    ) -> Snapshot {
        let mut models: HashMap<Box<str>, Entry, Hasher> =
            HashMap::with_capacity_and_hasher(facts.len(), Hasher::default());
        let mut shared: HashMap<Conditions, Arc<Conditions>, Hasher> = HashMap::default();
        for (provider, model, facts) in facts {
            let clearance = derive::derive(&provider, &model, &facts, version, beginning());
            let old = previous.and_then(|p| p.entry(&provider, &model));
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
                    Entry::new(&clearance, conditions)
                }
            };
            models.insert(key(&provider, &model).into_boxed_str(), entry);
        }
        Snapshot { version, models }
    }

    fn entry(&self, provider: &str, model: &str) -> Option<&Entry> {
        // The key, put together on the stack as `key` would: lookups allocate nothing.
        let mut stack = [0; 192];
        let len = provider.len() + 1 + model.len();
        let Some(buffer) = stack.get_mut(..len) else {
            return self.models.get(key(provider, model).as_str());
        };
        buffer[..provider.len()].copy_from_slice(provider.as_bytes());
        buffer[provider.len()] = b'/';
        buffer[provider.len() + 1..].copy_from_slice(model.as_bytes());
        self.models.get(std::str::from_utf8(buffer).ok()?)
    }

    /// The response to a status lookup as of `now`; unknown models are
    /// `not_reviewed`.
    pub fn lookup(&self, provider: &str, model: &str, now: DateTime<Utc>) -> Rendered {
        match self.entry(provider, model) {
            Some(entry) if entry.status_at(now) == entry.status => entry.rendered(),
            entry => render(&clearance_of(entry, provider, model, now)),
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
            },
            None => Decided {
                status: Status::NotReviewed,
                conditions: &NO_CONDITIONS,
                valid_until: None,
            },
        }
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
        None => derive::derive(provider, model, &Facts::default(), 0, now),
    }
}

/// Renders a clearance not held in the snapshot (unknown, or lapsed since).
fn render(clearance: &Clearance) -> Rendered {
    let entry = Entry::new(clearance, Arc::default());
    entry.rendered()
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
        service.rebuild().await?;
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
        self.rebuild().await?;
        Ok(true)
    }

    async fn rebuild(&self) -> Result<(), StoreError> {
        let _one_at_a_time = self.rebuilding.lock().await;
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
