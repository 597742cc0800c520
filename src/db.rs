//! The store: one connection type over PostgreSQL and SQLite, a sized pool,
//! embedded migrations per backend, and the helpers that run diesel (which is
//! synchronous) off the async executor.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::DatabaseUrl;

const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// A connection to either backend; queries written against [`crate::schema`]
/// run on both.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

pub type Pool = r2d2::Pool<ConnectionManager>;
pub type PooledConnection = r2d2::PooledConnection<ConnectionManager>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database connection: {0}")]
    Connection(#[from] diesel::ConnectionError),
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("database query: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("database migration: {0}")]
    Migration(String),
    #[error("database task was cancelled")]
    Cancelled,
}

/// Opens connections of the backend the URL names (never by trial: SQLite
/// would accept any string as a file name), with SQLite's pragmas set on each.
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    url: DatabaseUrl,
}

impl ConnectionManager {
    pub fn new(url: DatabaseUrl) -> Self {
        Self { url }
    }

    pub fn connect(&self) -> Result<DbConnection, diesel::r2d2::Error> {
        use diesel::r2d2::Error;
        match &self.url {
            DatabaseUrl::Postgres(url) => diesel::PgConnection::establish(url)
                .map(DbConnection::Postgresql)
                .map_err(Error::ConnectionError),
            DatabaseUrl::Sqlite(path) => {
                let mut conn = diesel::SqliteConnection::establish(&path.to_string_lossy())
                    .map_err(Error::ConnectionError)?;
                conn.batch_execute(
                    "PRAGMA busy_timeout = 10000;
                     PRAGMA journal_mode = WAL;
                     PRAGMA synchronous = NORMAL;
                     PRAGMA foreign_keys = ON;",
                )
                .map_err(Error::QueryError)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        ConnectionManager::connect(self)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

/// Reads and writes a type through a Text column: `$to` gives the text to
/// write of `$this`, `$from` the value (or the error) of the `$text` read.
/// A generic type names its parameters and their bounds first:
/// `text_column!(impl<T> Json<T> where [T: Bound], ...)`.
macro_rules! text_column {
    (
        impl<$($param:ident),*> $ty:ty where [$($bounds:tt)*],
        |$this:ident| $to:expr,
        |$text:ident| $from:expr
    ) => {
        impl<DB, $($param),*> diesel::serialize::ToSql<diesel::sql_types::Text, DB> for $ty
        where
            DB: diesel::backend::Backend,
            str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
            $($bounds)*
        {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, DB>,
            ) -> diesel::serialize::Result {
                let $this = self;
                let text: &str = $to;
                text.to_sql(out)
            }
        }

        impl<DB, $($param),*> diesel::deserialize::FromSql<diesel::sql_types::Text, DB> for $ty
        where
            DB: diesel::backend::Backend,
            String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
            $($bounds)*
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                let $text = String::from_sql(bytes)?;
                $from
            }
        }
    };
    ($ty:ty, |$this:ident| $to:expr, |$text:ident| $from:expr) => {
        $crate::db::text_column!(impl<> $ty where [], |$this| $to, |$text| $from);
    };
}

pub(crate) use text_column;

/// A JSON document in a Text column. The text is kept beside the value, so
/// that writing it borrows what it writes; text that is not the expected JSON
/// fails the read (a column edited by hand is never read as a default).
#[derive(Debug, Clone, PartialEq, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub struct Json<T> {
    value: T,
    text: String,
}

impl<T: serde::Serialize> Json<T> {
    pub fn new(value: T) -> Self {
        // Plain data (strings, numbers, maps with string keys) always serializes.
        let text = serde_json::to_string(&value).unwrap_or_else(|_| "null".into());
        Self { value, text }
    }
}

impl<T> Json<T> {
    pub fn get(&self) -> &T {
        &self.value
    }

    pub fn into_inner(self) -> T {
        self.value
    }

    /// The stored text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

text_column!(
    impl<T> Json<T> where [T: std::fmt::Debug + serde::de::DeserializeOwned],
    |this| this.text.as_str(),
    |text| {
        let value = serde_json::from_str(&text)
            .map_err(|e| format!("a stored JSON column does not read back: {e}"))?;
        Ok(Self { value, text })
    }
);

/// A checked page request of a list: how many rows, and the key after which
/// to start (the HTTP edge reads it from `limit` and `cursor`).
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<String>,
}

/// The database, shared by every request handler and job.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    postgres: bool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("postgres", &self.postgres)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens a pool; for SQLite it creates the file's folder first.
    pub fn open(url: &DatabaseUrl, pool_size: u32) -> Result<Self, StoreError> {
        if let DatabaseUrl::Sqlite(path) = url
            && let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Migration(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let manager = ConnectionManager::new(url.clone());
        // Fail fast with the real reason (r2d2 would only report a time-out).
        manager.connect().map_err(|e| match e {
            diesel::r2d2::Error::ConnectionError(e) => StoreError::Connection(e),
            diesel::r2d2::Error::QueryError(e) => StoreError::Query(e),
        })?;
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            // Connections open as load needs them (each SQLite one holds a page cache).
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .build(manager)?;
        Ok(Self {
            pool,
            postgres: url.is_postgres(),
        })
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres
    }

    pub fn get(&self) -> Result<PooledConnection, StoreError> {
        Ok(self.pool.get()?)
    }

    /// Runs pending migrations; returns how many ran.
    pub fn migrate(&self) -> Result<usize, StoreError> {
        let mut conn = self.get()?;
        let applied = match &mut *conn {
            DbConnection::Postgresql(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS),
            DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
        }
        .map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(applied.len())
    }

    /// True when the database answers and every migration has been applied.
    pub fn ready(&self) -> Result<bool, StoreError> {
        let mut conn = self.get()?;
        let pending = match &mut *conn {
            DbConnection::Postgresql(c) => c.has_pending_migration(POSTGRES_MIGRATIONS),
            DbConnection::Sqlite(c) => c.has_pending_migration(SQLITE_MIGRATIONS),
        }
        .map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(!pending)
    }

    /// Runs blocking database work on the blocking pool.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = store.get()?;
            f(&mut conn)
        })
        .await
        .map_err(|_| StoreError::Cancelled)?
    }

    /// Runs `f` in one write transaction. Its first statement takes the write
    /// lock every change shares (the audit chain's head), so on SQLite no
    /// transaction upgrades from reading to writing (which fails at once under
    /// contention instead of waiting), and on PostgreSQL audit events are
    /// appended in commit order.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + From<diesel::result::Error> + Send + 'static,
    {
        self.run(move |conn| {
            conn.transaction(|conn| {
                lock_for_write(conn)?;
                f(conn)
            })
        })
        .await
    }
}

/// Runs `f` in one read-only snapshot of the database, so that what it reads
/// in several queries fits together (a review and its audit head, a whole
/// audit chain) while writers carry on unblocked.
pub fn in_snapshot<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    conn.transaction(|conn| {
        // SQLite (WAL) keeps one snapshot from a transaction's first read;
        // PostgreSQL must be asked for one before the transaction's first query.
        if let DbConnection::Postgresql(pg) = conn {
            pg.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
        }
        f(conn)
    })
}

/// Takes the shared write lock (see [`Store::write`]).
fn lock_for_write(conn: &mut DbConnection) -> QueryResult<()> {
    use crate::schema::audit_head::dsl::*;
    match conn {
        DbConnection::Postgresql(pg) => {
            audit_head
                .filter(id.eq(1))
                .select(seq)
                .for_update()
                .first::<i64>(pg)?;
        }
        DbConnection::Sqlite(_) => {
            diesel::update(audit_head.filter(id.eq(1)))
                .set(id.eq(1))
                .execute(conn)?;
        }
    }
    Ok(())
}
