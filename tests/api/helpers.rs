//! `TestApp`: one server per test, on its own database, and the
//! `backend_tests!` macro that runs a test body on both backends.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use clearance::auth::{Role, TokenIssuer};
use clearance::clock::ManualClock;
use clearance::config::{Config, DatabaseUrl, RawConfig};
use clearance::outbox::Mailer;
use clearance::startup::{Application, Parts};
use diesel::{Connection, PgConnection, RunQueryDsl};
use lettre::transport::stub::AsyncStubTransport;
use serde_json::Value;

pub const SECRET: &str = "integration-test-secret-0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh PostgreSQL database, dropped when the test ends.
struct PgDatabase {
    admin_url: String,
    name: String,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Dropped from a plain thread: the test's runtime may be shutting down.
        let _ = std::thread::spawn(move || {
            if let Ok(mut conn) = PgConnection::establish(&admin_url) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn);
            }
        })
        .join();
    }
}

pub struct TestApp {
    pub address: String,
    /// Every email the server sent (lettre's in-memory transport).
    pub mail: AsyncStubTransport,
    pub database: DatabaseUrl,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    _data_dir: tempfile::TempDir,
    _database: Option<PgDatabase>,
}

/// A token for `sub` holding `roles`, signed with the secret every test
/// server (in process or not) is given.
pub fn token(sub: &str, roles: &[Role]) -> String {
    TokenIssuer::new(SECRET, &Default::default())
        .unwrap()
        .issue(
            sub,
            Some(&format!("{sub}@example.com")),
            roles,
            Utc::now(),
            TimeDelta::hours(1),
        )
        .unwrap()
}

/// Writes every connection the servers of this test process open to
/// another system (the `clearance::egress` log lines) to
/// `target/egress/<process>.log`, where CI checks that each went to this
/// machine.
fn log_egress() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let folder = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("../egress");
        let path = folder.join(format!(
            "{}-{}.log",
            env!("CARGO_CRATE_NAME"),
            std::process::id()
        ));
        // Opened at each line, so a process that connects nowhere leaves
        // no file behind.
        let writer = move || {
            std::fs::create_dir_all(&folder)
                .and_then(|()| {
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)
                })
                .expect("the egress log can be written")
        };
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(format!(
                "{}=info",
                clearance::telemetry::EGRESS
            )))
            .with_ansi(false)
            .with_writer(writer)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other subscriber in the tests");
    });
}

pub fn test_start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
        .unwrap()
        .to_utc()
}

impl TestApp {
    /// Starts a server on `backend`; `None` when PostgreSQL is not configured.
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut RawConfig)) -> Option<Self> {
        log_egress();
        let data_dir = tempfile::tempdir().expect("temp dir");
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(create_pg_database()?),
        };
        let mut raw = RawConfig {
            bind: "127.0.0.1:0".into(),
            data_dir: data_dir.path().to_string_lossy().into_owned(),
            database_url: database.as_ref().map(|db| db_url(&db.admin_url, &db.name)),
            database_pool_size: 5,
            jwt_secret: Some(SECRET.into()),
            clock: "manual".into(),
            // Tests run the outbox worker on demand (POST /v1/admin/jobs/outbox/run).
            outbox_interval_ms: 0,
            // ...and every other job too: tests call them when they mean to.
            scheduler: false,
            // Tests send traffic only to this machine: a webhook to any
            // other address is refused, and no other name is looked up.
            webhook_targets: "loopback".into(),
            // Tests make many refused calls from one address; the limits
            // have tests of their own.
            failed_auth_per_minute: 0,
            supplier_requests_per_minute: 0,
            ..RawConfig::default()
        };
        adjust(&mut raw);
        if raw.workflows == RawConfig::default().workflows {
            raw.workflows = concat!(env!("CARGO_MANIFEST_DIR"), "/workflows").into();
        }
        let smtp = raw.smtp_url.is_some();
        let config = Config::from_raw(raw).expect("valid test configuration");
        let database_url = config.database.clone();
        let clock = Arc::new(ManualClock::new(test_start()));
        let mail = AsyncStubTransport::new_ok();
        let app = Application::build_with(
            config,
            Parts {
                clock: clock.clone(),
                manual_clock: Some(clock.clone()),
                // A test that configures SMTP talks to its SMTP server.
                mailer: (!smtp).then(|| Mailer::Memory(mail.clone())),
            },
        )
        .await
        .expect("application starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        Some(Self {
            address,
            mail,
            database: database_url,
            client: reqwest::Client::new(),
            clock,
            _data_dir: data_dir,
            _database: database,
        })
    }

    /// A second instance on this app's database (as when scaling out or
    /// restarting with other files), configured by `adjust`.
    pub async fn spawn_beside(&self, adjust: impl FnOnce(&mut RawConfig)) -> TestApp {
        let url = match &self.database {
            DatabaseUrl::Postgres(url) => url.clone(),
            DatabaseUrl::Sqlite(path) => path.to_string_lossy().into_owned(),
        };
        let backend = if self.database.is_postgres() {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        let mut other = Self::spawn_with(backend, |raw| {
            raw.database_url = Some(url);
            adjust(raw);
        })
        .await
        .expect("second instance");
        // The first instance owns (and drops) the database.
        other._database = None;
        other
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A token for `sub` holding `roles`, signed with the server's secret.
    pub fn token(&self, sub: &str, roles: &[Role]) -> String {
        token(sub, roles)
    }

    pub fn admin(&self) -> String {
        self.token("ada", &[Role::Admin])
    }

    pub fn manager(&self) -> String {
        self.token("victor", &[Role::VendorManager])
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn patch(
        &self,
        path: &str,
        token: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> reqwest::Response {
        self.send_json(self.client.patch(self.url(path)), token, body, if_match)
            .await
    }

    pub async fn put(
        &self,
        path: &str,
        token: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> reqwest::Response {
        self.send_json(self.client.put(self.url(path)), token, body, if_match)
            .await
    }

    /// Sends a JSON body with the token and, when given, `If-Match`.
    async fn send_json(
        &self,
        request: reqwest::RequestBuilder,
        token: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> reqwest::Response {
        let mut request = request.bearer_auth(token).json(body);
        if let Some(tag) = if_match {
            request = request.header("if-match", tag);
        }
        request.send().await.expect("request")
    }

    /// Runs SQL on the app's database directly, as someone with access to the
    /// database (not to the service) could; returns the rows it changed.
    pub fn sql(&self, statement: &str) -> usize {
        let mut conn = clearance::db::ConnectionManager::new(self.database.clone())
            .connect()
            .expect("database");
        diesel::sql_query(statement)
            .execute(&mut conn)
            .unwrap_or_else(|e| panic!("{statement}: {e}"))
    }

    /// Emails waiting in the outbox, oldest first, as the worker would send them.
    pub fn outbox_emails(&self) -> Vec<Value> {
        use clearance::schema::outbox_messages::dsl::*;
        use diesel::prelude::*;
        let mut conn = clearance::db::ConnectionManager::new(self.database.clone())
            .connect()
            .expect("database");
        let payloads: Vec<String> = outbox_messages
            .filter(kind.eq("email"))
            .order((created_at.asc(), id.asc()))
            .select(payload)
            .load(&mut conn)
            .expect("outbox");
        payloads
            .iter()
            .map(|p| serde_json::from_str(p).unwrap())
            .collect()
    }

    /// Delivers what the outbox holds (the admin's "run now") and answers
    /// every email sent so far, oldest first: `{to, subject, text}`.
    pub async fn sent_emails(&self) -> Vec<Value> {
        let delivered = self
            .post(
                "/v1/admin/jobs/outbox/run",
                &self.admin(),
                &serde_json::json!({}),
            )
            .await;
        assert_eq!(delivered.status(), 200, "the outbox runs");
        let mut sent = Vec::new();
        for (envelope, raw) in self.mail.messages().await {
            let parsed = mailparse::parse_mail(raw.as_bytes()).expect("a well-formed email");
            let subject = parsed
                .headers
                .iter()
                .find(|h| h.get_key().eq_ignore_ascii_case("subject"))
                .map(|h| h.get_value())
                .unwrap_or_default();
            let text = match parsed.subparts.first() {
                Some(plain) => plain.get_body().unwrap_or_default(),
                None => parsed.get_body().unwrap_or_default(),
            };
            let to: Vec<String> = envelope.to().iter().map(ToString::to_string).collect();
            sent.push(serde_json::json!({"to": to, "subject": subject, "text": text}));
        }
        sent
    }

    /// The `/respond/` link of the first email sent to `to` (the outbox run).
    pub async fn invitation_link(&self, to: &str) -> String {
        let email = self
            .sent_emails()
            .await
            .into_iter()
            .find(|e| e["to"][0] == to)
            .unwrap_or_else(|| panic!("an email to {to}"));
        email["text"]
            .as_str()
            .unwrap()
            .lines()
            .find(|l| l.contains("/respond/"))
            .expect("a link")
            .trim()
            .to_owned()
    }

    /// The OpenAPI document the server publishes.
    pub async fn openapi(&self) -> Value {
        let response = self
            .client
            .get(self.url("/openapi.json"))
            .send()
            .await
            .expect("request");
        response.json().await.expect("the OpenAPI document is JSON")
    }

    /// Registers a provider and returns its JSON.
    pub async fn create_provider(&self, slug: &str) -> Value {
        let response = self
            .post(
                "/v1/providers",
                &self.manager(),
                &serde_json::json!({"slug": slug, "name": slug.to_uppercase()}),
            )
            .await;
        assert_eq!(response.status(), 201, "creating provider {slug}");
        response.json().await.unwrap()
    }
}

fn db_url(admin_url: &str, name: &str) -> String {
    let mut url = url::Url::parse(admin_url).expect("TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

fn create_pg_database() -> Option<PgDatabase> {
    let admin_url = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())?;
    let name = format!("clearance_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::establish(&admin_url).expect("TEST_DATABASE_URL is reachable");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .expect("create test database");
    Some(PgDatabase { admin_url, name })
}

/// Asserts a problem document with `status`, and returns it.
pub async fn assert_problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(
        body["type"].as_str().unwrap().starts_with("/problems/"),
        "{body}"
    );
    assert!(!body["detail"].as_str().unwrap().is_empty(), "{body}");
    body
}

/// The fields named by a validation problem, sorted.
pub fn error_fields(problem: &Value) -> Vec<String> {
    let mut fields: Vec<String> = problem["errors"]
        .as_array()
        .expect("validation problem has errors")
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    fields.sort();
    fields
}

/// Why a PostgreSQL test is skipped.
pub const NO_DATABASE: &str = "TEST_DATABASE_URL is not set";

/// Whether this is CI (`CI` set, and not empty, `0` or `false`): there a
/// test whose tools are missing fails instead of being skipped, so a green
/// CI run means every test ran.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// Where skipped tests are recorded: a folder per `cargo test` run (named by
/// cargo's process id), a file per test binary, a line per skip. The last
/// test binary, `tests/skipped.rs`, reads the run's folder and says what was
/// skipped and why.
pub fn skipped_folder(run: u32) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("skipped")
        .join(run.to_string())
}

/// Reports the running test skipped because `why` (it then returns without
/// testing anything); under CI, fails it instead. The skip is recorded for
/// the summary at the end of `cargo test`, and said once per reason past the
/// harness's output capture, so a run of one test binary shows it too.
pub fn skip(why: &str) {
    use std::io::Write;
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

    assert!(!in_ci(), "CI must not skip a test: {why}");
    eprintln!("skipped: {why}");
    let exe = std::env::current_exe().unwrap_or_default();
    let stem = exe.file_stem().unwrap_or_default().to_string_lossy();
    // Cargo names test binaries `<target>-<hash>`.
    let binary = stem.rsplit_once('-').map_or(&*stem, |(name, _)| name);
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    let folder = skipped_folder(std::os::unix::process::parent_id());
    let record = std::fs::create_dir_all(&folder).and_then(|()| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(folder.join(format!("{binary}-{}", std::process::id())))?
            .write_all(format!("{binary}\t{test}\t{why}\n").as_bytes())
    });
    if let Err(error) = record {
        eprintln!("cannot record the skip in {}: {error}", folder.display());
    }
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if !said.iter().any(|w| w == why) {
        said.push(why.to_owned());
        // `std::io::stderr()` itself is not captured, unlike `eprintln!`.
        let _ = writeln!(
            std::io::stderr(),
            "note: {binary}: skipping tests: {why}; the summary at the end of `cargo test` counts them"
        );
    }
}

/// Defines each test twice: `<name>::sqlite` and `<name>::postgres` (which
/// reports itself skipped when `TEST_DATABASE_URL` is unset).
macro_rules! backend_tests {
    ($(async fn $name:ident($app:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use crate::helpers::{Backend, TestApp};

            #[tokio::test]
            async fn sqlite() {
                let $app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite app");
                $body
            }

            #[tokio::test]
            async fn postgres() {
                let Some($app) = TestApp::spawn(Backend::Postgres).await else {
                    crate::helpers::skip(crate::helpers::NO_DATABASE);
                    return;
                };
                $body
            }
        }
    )*};
}
