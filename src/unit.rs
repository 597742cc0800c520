//! One unit of work for every change. A change — from the API, a console
//! page or a scheduled job — runs as a closure over a [`Tx`] inside one
//! write transaction. Through the `Tx` it appends its audit event(s)
//! ([`crate::audit::append`]), queues its emails
//! ([`crate::notify::enqueue_email`]) and names the subjects whose published
//! clearance it may move ([`Tx::watch`]). When the closure succeeds, the unit
//! compares those clearances before and after and announces every change
//! (status version bump, the model's version, `status.changed` webhooks) in
//! the same transaction, then commits.
//!
//! A `Tx` exists only inside [`UnitOfWork::run`], and the audit log, the
//! email queue and the webhook queue take one, so no change can write its
//! audit event, an email or an announcement any other way.
//!
//! After the commit, this instance's status snapshot is refreshed when a
//! clearance moved. That is best-effort: a failure is logged and healed by
//! the periodic version check, and never turns a committed change into an
//! error for the caller.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use diesel::QueryResult;
use futures_util::future::BoxFuture;

use crate::audit::Actor;
use crate::db::{DbConnection, Store, StoreError};
use crate::ids::{ModelSlug, ProviderId};
use crate::status::Clearance;
use crate::status::store as status_store;

/// What refreshes this instance's published statuses after a change that
/// moved them has committed (the status snapshot; a test may fail on purpose).
pub trait Publisher: Send + Sync + std::fmt::Debug {
    fn refresh(&self) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// Runs changes: see the module documentation.
#[derive(Debug, Clone)]
pub struct UnitOfWork {
    store: Store,
    publisher: Arc<dyn Publisher>,
}

impl UnitOfWork {
    pub fn new(store: Store, publisher: Arc<dyn Publisher>) -> Self {
        Self { store, publisher }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs `change` by `actor` as of `now` in one write transaction, with
    /// its audit events, emails and announcements; see the module
    /// documentation.
    pub async fn run<T, E, F>(&self, actor: Actor, now: DateTime<Utc>, change: F) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + From<diesel::result::Error> + Send + 'static,
    {
        self.run_published(actor, now, change)
            .await
            .map(|(value, _)| value)
    }

    /// As [`UnitOfWork::run`], also answering the clearances of the watched
    /// subjects after the change (each with the version it is published at).
    pub async fn run_published<T, E, F>(
        &self,
        actor: Actor,
        now: DateTime<Utc>,
        change: F,
    ) -> Result<(T, Vec<Clearance>), E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + From<diesel::result::Error> + Send + 'static,
    {
        let (value, published) = self
            .store
            .write(move |conn| {
                let mut tx = Tx {
                    conn,
                    actor: &actor,
                    now,
                    watched: Vec::new(),
                };
                let value = change(&mut tx)?;
                let published = tx.announce()?;
                Ok::<_, E>((value, published))
            })
            .await?;
        if published.changed > 0
            && let Err(error) = self.publisher.refresh().await
        {
            // Committed all the same: the periodic version check heals it.
            tracing::warn!(%error, "the status snapshot was not refreshed after a change");
        }
        Ok((value, published.clearances))
    }
}

/// A subject whose clearances a change may move, as they were before it.
struct Watched {
    provider: ProviderId,
    model: Option<ModelSlug>,
    before: Vec<Clearance>,
}

/// What the announcement of a change found.
struct Published {
    changed: usize,
    clearances: Vec<Clearance>,
}

/// A change in progress: the write transaction, who acts and when. See the
/// module documentation.
pub struct Tx<'c> {
    conn: &'c mut DbConnection,
    actor: &'c Actor,
    now: DateTime<Utc>,
    watched: Vec<Watched>,
}

impl Tx<'_> {
    /// The transaction's connection, for the store functions of the change.
    pub fn conn(&mut self) -> &mut DbConnection {
        self.conn
    }

    pub fn actor(&self) -> &Actor {
        self.actor
    }

    /// The time the change happens at.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Notes the published clearances of a model (or, with `None`, of every
    /// model of a provider) before the change, so that the unit announces
    /// those that it moves. Call it before changing anything they derive from.
    pub fn watch(&mut self, provider: &ProviderId, model: Option<&ModelSlug>) -> QueryResult<()> {
        self.watch_as_of(provider, model, self.now)
    }

    /// As [`Tx::watch`], with the clearances as they read at `at` (an
    /// approval that lapsed at `at` changed then, not now).
    pub fn watch_as_of(
        &mut self,
        provider: &ProviderId,
        model: Option<&ModelSlug>,
        at: DateTime<Utc>,
    ) -> QueryResult<()> {
        let covered = self
            .watched
            .iter()
            .any(|w| w.provider == *provider && (w.model.is_none() || w.model.as_ref() == model));
        if covered {
            return Ok(());
        }
        let before = status_store::statuses_of(self.conn, provider, model, at)?;
        self.watched.push(Watched {
            provider: provider.clone(),
            model: model.cloned(),
            before,
        });
        Ok(())
    }

    /// Announces every watched clearance the change moved.
    fn announce(mut self) -> QueryResult<Published> {
        let watched = std::mem::take(&mut self.watched);
        let mut changes = Vec::new();
        let mut clearances = Vec::new();
        for subject in &watched {
            let after = status_store::statuses_of(
                self.conn,
                &subject.provider,
                subject.model.as_ref(),
                self.now,
            )?;
            for current in after {
                let previous = subject
                    .before
                    .iter()
                    .find(|b| b.provider == current.provider && b.model == current.model);
                changes.push((previous.cloned(), current));
            }
        }
        let changed = status_store::announce_changes(&mut self, &mut changes)?;
        clearances.extend(changes.into_iter().map(|(_, current)| current));
        Ok(Published {
            changed,
            clearances,
        })
    }
}

/// A change for a unit test of what runs inside one (no transaction, no
/// announcement).
#[cfg(test)]
pub(crate) fn test_tx<T>(
    conn: &mut DbConnection,
    actor: &Actor,
    now: DateTime<Utc>,
    f: impl FnOnce(&mut Tx<'_>) -> T,
) -> T {
    f(&mut Tx {
        conn,
        actor,
        now,
        watched: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Change;
    use crate::config::DatabaseUrl;

    #[derive(Debug)]
    struct Failing;

    impl Publisher for Failing {
        fn refresh(&self) -> BoxFuture<'_, Result<(), StoreError>> {
            Box::pin(async { Err(StoreError::Migration("refresh refused on purpose".into())) })
        }
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::Sqlite(dir.path().join("unit.sqlite3"));
        let store = Store::open(&url, 2).unwrap();
        store.migrate().unwrap();
        (dir, store)
    }

    /// A change whose snapshot refresh fails after commit answers success,
    /// and what it changed is in the database.
    #[tokio::test]
    async fn a_failed_refresh_after_commit_is_not_an_error() {
        use diesel::prelude::*;
        let (_dir, store) = store();
        let work = UnitOfWork::new(store.clone(), Arc::new(Failing));
        let now = Utc::now();
        let provider = ProviderId::generate();
        let actor = Actor::system("test");
        let answer = work
            .run(actor, now, {
                let provider = provider.clone();
                move |tx| {
                    tx.watch(&provider, None)?;
                    let row = crate::providers::store::ProviderRow::new(
                        provider.clone(),
                        crate::ids::ProviderSlug::parse("acme").unwrap(),
                        "Acme".into(),
                        now,
                    );
                    crate::providers::store::insert_provider(tx.conn(), &row)?;
                    crate::providers::store::insert_model(
                        tx.conn(),
                        &crate::providers::store::ModelRow::new(
                            crate::ids::ModelId::generate(),
                            provider.clone(),
                            ModelSlug::parse("m").unwrap(),
                            "M".into(),
                            now,
                        ),
                    )?;
                    crate::providers::store::set_suspension(
                        tx.conn(),
                        &provider,
                        None,
                        Some((now, "test")),
                    )?;
                    crate::audit::append(
                        tx,
                        Change {
                            action: crate::audit::Action::ProviderCreated,
                            subject: crate::audit::Subject::provider("acme"),
                            review_id: None,
                            before: None,
                            after: None,
                        },
                    )?;
                    Ok::<_, StoreError>("done")
                }
            })
            .await;
        assert_eq!(answer.unwrap(), "done");
        let mut conn = store.get().unwrap();
        let events: i64 = crate::schema::audit_events::table
            .count()
            .get_result(&mut *conn)
            .unwrap();
        assert_eq!(events, 1);
        let version = status_store::version(&mut conn).unwrap();
        assert!(version > 0, "the suspension was announced");
    }
}
