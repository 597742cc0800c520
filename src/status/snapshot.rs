//! The in-memory snapshot that answers integrator queries without touching
//! the database. Rebuilt at start-up, swapped atomically after each change in
//! this process, and kept current across instances by `LISTEN/NOTIFY` on
//! PostgreSQL plus a periodic check of the status version.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::derive::{self, Clearance, Facts};
use super::store;
use crate::clock::SharedClock;
use crate::db::{Store, StoreError};

/// A clearance with its response body and strong entity tag, ready to send.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub clearance: Clearance,
    /// `valid_until` as RFC 3339 text, for check results.
    pub valid_until: Option<Box<str>>,
    pub body: Bytes,
    /// The strong entity tag, ready to send.
    pub etag: actix_web::http::header::HeaderValue,
}

impl Rendered {
    fn new(clearance: Clearance) -> Self {
        let body = Bytes::from(serde_json::to_vec(&clearance).unwrap_or_default());
        let tag = format!("\"{}\"", &hex::encode(Sha256::digest(&body))[..32]);
        let etag = actix_web::http::header::HeaderValue::from_str(&tag)
            .unwrap_or_else(|_| actix_web::http::header::HeaderValue::from_static("\"0\""));
        let valid_until = clearance.valid_until.map(|v| {
            v.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                .into_boxed_str()
        });
        Self {
            clearance,
            valid_until,
            body,
            etag,
        }
    }
}

/// One model's clearance, rendered. Once an approval's `valid_until` has
/// passed it reads `expired`, rendered at lookup (rare, and small).
#[derive(Debug, Clone)]
struct Entry {
    current: Rendered,
}

/// Every model's clearance at one status version.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub version: i64,
    models: HashMap<String, HashMap<String, Entry>>,
}

/// The earliest instant: deriving "as of" it never yields `expired`.
fn beginning() -> DateTime<Utc> {
    DateTime::<Utc>::MIN_UTC
}

impl Snapshot {
    /// Builds from facts; a model whose clearance did not change since
    /// `previous` keeps its version.
    pub fn build(
        version: i64,
        facts: Vec<(String, String, Facts)>,
        previous: Option<&Snapshot>,
    ) -> Snapshot {
        let mut models: HashMap<String, HashMap<String, Entry>> = HashMap::new();
        for (provider, model, facts) in facts {
            let mut clearance = derive::derive(&provider, &model, &facts, version, beginning());
            if let Some(old) = previous
                .and_then(|p| p.models.get(&provider))
                .and_then(|m| m.get(&model))
            {
                let mut same = clearance.clone();
                same.version = old.current.clearance.version;
                if same == old.current.clearance {
                    clearance.version = same.version;
                }
            }
            let entry = Entry {
                current: Rendered::new(clearance),
            };
            models.entry(provider).or_default().insert(model, entry);
        }
        Snapshot { version, models }
    }

    /// The clearance of a model as of `now`; unknown models are `not_reviewed`.
    pub fn lookup(
        &self,
        provider: &str,
        model: &str,
        now: DateTime<Utc>,
    ) -> std::borrow::Cow<'_, Rendered> {
        match self.models.get(provider).and_then(|m| m.get(model)) {
            Some(entry) => match lapsed(&entry.current.clearance, now) {
                Some(expired) => std::borrow::Cow::Owned(Rendered::new(expired)),
                None => std::borrow::Cow::Borrowed(&entry.current),
            },
            None => std::borrow::Cow::Owned(Rendered::new(derive::derive(
                provider,
                model,
                &Facts::default(),
                0,
                now,
            ))),
        }
    }

    /// The clearance of a model as of `now` with its `valid_until` as text,
    /// without rendering a body (for checks).
    pub fn for_check(
        &self,
        provider: &str,
        model: &str,
        now: DateTime<Utc>,
    ) -> (std::borrow::Cow<'_, Clearance>, Option<&str>) {
        match self.models.get(provider).and_then(|m| m.get(model)) {
            Some(entry) => {
                let until = entry.current.valid_until.as_deref();
                match lapsed(&entry.current.clearance, now) {
                    Some(expired) => (std::borrow::Cow::Owned(expired), until),
                    None => (std::borrow::Cow::Borrowed(&entry.current.clearance), until),
                }
            }
            None => (
                std::borrow::Cow::Owned(derive::derive(provider, model, &Facts::default(), 0, now)),
                None,
            ),
        }
    }

    pub fn len(&self) -> usize {
        self.models.values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The clearance as it reads once an approval's `valid_until` has passed.
fn lapsed(clearance: &Clearance, now: DateTime<Utc>) -> Option<Clearance> {
    let expired =
        clearance.status.is_approval() && clearance.valid_until.is_some_and(|until| until <= now);
    expired.then(|| Clearance {
        status: derive::Status::Expired,
        ..clearance.clone()
    })
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
