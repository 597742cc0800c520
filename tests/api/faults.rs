//! Crash and fault tests (issue 15), against real processes: the `clearance`
//! binary killed with SIGKILL again and again while it delivers thousands of
//! emails to a real SMTP server (`tests/smtp_sink.py`), the SMTP server down
//! and back, and two instances on one PostgreSQL database deciding the same
//! stages and sweeping the same overdue ones at once. Each test prints its
//! counts (`cargo nextest run --test api faults:: --no-capture`). Skipped with
//! a message when python3 with aiosmtpd is missing, or for PostgreSQL when
//! `TEST_DATABASE_URL` is unset, except in CI (`CI` set), where that fails.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use clearance::auth::Role;
use clearance::config::DatabaseUrl;
use clearance::db::{ConnectionManager, DbConnection};
use clearance::outbox::MessageKind;
use clearance::schema::outbox_messages;
use diesel::prelude::*;
use serde_json::{Value, json};

use crate::flow::fill;
use crate::helpers::{Backend, SECRET, TestApp, token};
use crate::smtp::{available as sink_available, free_port};

// ---------------------------------------------------------------------------
// The SMTP server and the server processes.

/// The database of a test: a fresh one, migrated, owned (and dropped) by an
/// idle in-process `TestApp`; `None` (the test is skipped) for PostgreSQL
/// without `TEST_DATABASE_URL`.
async fn fresh_database(backend: Backend) -> Option<TestApp> {
    let app = TestApp::spawn(backend).await;
    if app.is_none() {
        crate::helpers::skip(crate::helpers::NO_DATABASE);
    }
    app
}

/// A running `tests/smtp_sink.py`, storing what it receives in `folder`;
/// stopped when dropped.
struct Sink {
    child: Child,
}

impl Sink {
    fn start(port: u16, folder: &Path) -> Sink {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(folder)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP sink started");
        Sink { child }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many messages SMTP sinks have stored in `folder`.
fn received_count(folder: &Path) -> usize {
    std::fs::read_dir(folder).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .count()
    })
}

/// Every message stored in `folder`, grouped by its `Message-ID`.
fn received_by_message_id(folder: &Path) -> BTreeMap<String, Vec<Value>> {
    let mut by_id: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for entry in std::fs::read_dir(folder).unwrap().filter_map(Result::ok) {
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "json") {
            let message: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let id = message["message_id"].as_str().unwrap().to_owned();
            by_id.entry(id).or_default().push(message);
        }
    }
    by_id
}

/// Asserts that no message arrived twice (when nothing excuses it).
fn assert_each_once(received: &BTreeMap<String, Vec<Value>>, context: &str) {
    let twice: Vec<&String> = received
        .iter()
        .filter(|(_, copies)| copies.len() > 1)
        .map(|(id, _)| id)
        .collect();
    assert!(
        twice.is_empty(),
        "{context}, yet {} messages arrived twice, e.g. {:?}",
        twice.len(),
        twice.first()
    );
}

/// The `Message-ID` the outbox gives message `id`.
fn message_id(id: &str) -> String {
    format!("<{id}@clearance>")
}

/// How instances of one test are started: their database, their SMTP
/// server, and settings beyond those every instance gets.
struct Setup {
    database: String,
    smtp_port: u16,
    folder: PathBuf,
    settings: Vec<(&'static str, String)>,
}

impl Setup {
    fn new(database: &DatabaseUrl, smtp_port: u16, folder: &Path) -> Setup {
        let database = match database {
            DatabaseUrl::Postgres(url) => url.clone(),
            DatabaseUrl::Sqlite(path) => path.to_string_lossy().into_owned(),
        };
        Setup {
            database,
            smtp_port,
            folder: folder.to_owned(),
            settings: Vec::new(),
        }
    }

    fn with(mut self, variable: &'static str, value: &str) -> Setup {
        self.settings.push((variable, value.to_owned()));
        self
    }

    /// Starts `clearance serve` as `name` (its data folder and log) and waits
    /// until it is ready.
    async fn start(&self, name: &str) -> Instance {
        let port = free_port();
        let data = self.folder.join(name);
        std::fs::create_dir_all(&data).unwrap();
        let log = self.folder.join(format!("{name}.log"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_clearance"));
        command
            .arg("serve")
            .env_clear()
            .current_dir(&data)
            .env("CLEARANCE_BIND", format!("127.0.0.1:{port}"))
            .env("CLEARANCE_DATA_DIR", &data)
            .env("DATABASE_URL", &self.database)
            .env("SMTP_URL", format!("smtp://127.0.0.1:{}", self.smtp_port))
            .env("CLEARANCE_JWT_SECRET", SECRET)
            .env(
                "CLEARANCE_WORKFLOWS",
                concat!(env!("CARGO_MANIFEST_DIR"), "/workflows"),
            )
            .env("CLEARANCE_FAILED_AUTH_PER_MINUTE", "0")
            .env("CLEARANCE_SUPPLIER_REQUESTS_PER_MINUTE", "0")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (variable, value) in &self.settings {
            command.env(variable, value);
        }
        let mut child = command.spawn().expect("the server binary starts");
        let address = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "{name} exited ({status}): {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            let ready = client.get(format!("{address}/readyz")).send().await;
            if ready.is_ok_and(|r| r.status() == 200) {
                break;
            }
            assert!(Instant::now() < deadline, "{name} did not become ready");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Instance {
            child,
            address,
            client,
        }
    }
}

/// One `clearance serve` process; killed when dropped.
struct Instance {
    child: Child,
    address: String,
    client: reqwest::Client,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Instance {
    /// SIGKILL: the process gets no chance to finish anything.
    fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().unwrap();
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(tag) = if_match {
            request = request.header("if-match", tag);
        }
        request.send().await.expect("request")
    }

    async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.send(reqwest::Method::GET, path, token, None, None)
            .await
    }

    /// A request that must succeed with `status`; answers its JSON body.
    async fn expect(
        &self,
        status: u16,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: &Value,
    ) -> Value {
        let response = self
            .send(method.clone(), path, token, Some(body), None)
            .await;
        let code = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(code, status, "{method} {path}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Runs a job through the admin route and answers its `result`.
    async fn run_job(&self, job: &str) -> Value {
        let path = format!("/v1/admin/jobs/{job}/run");
        let report = self
            .expect(200, reqwest::Method::POST, &path, &admin(), &json!({}))
            .await;
        report["result"].clone()
    }

    /// Runs the outbox until a pass finds nothing due; answers the passes'
    /// reports added up.
    async fn deliver_all_due(&self) -> BTreeMap<&'static str, u64> {
        let mut total = BTreeMap::new();
        loop {
            let report = self.run_job("outbox").await;
            for key in ["claimed", "sent", "retrying", "dead"] {
                *total.entry(key).or_default() += report[key].as_u64().unwrap();
            }
            if report["claimed"] == 0 {
                return total;
            }
        }
    }

    async fn advance(&self, by: &str) {
        self.expect(
            200,
            reqwest::Method::POST,
            "/v1/admin/clock",
            &admin(),
            &json!({"advance": by}),
        )
        .await;
    }
}

fn admin() -> String {
    token("ada", &[Role::Admin])
}

fn manager(sub: &str) -> String {
    token(sub, &[Role::VendorManager])
}

/// Waits until `done` holds, checking every 20 ms; panics after `limit`.
async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------
// The outbox, as the database holds it.

fn connect(database: &DatabaseUrl) -> DbConnection {
    ConnectionManager::new(database.clone())
        .connect()
        .expect("database")
}

/// Queues `n` emails, as a burst of notices would (through the outbox's own
/// `queue`, in one transaction); answers their outbox ids.
fn queue_emails(database: &DatabaseUrl, n: usize) -> Vec<String> {
    let mut conn = connect(database);
    let now = Utc::now() - TimeDelta::seconds(1);
    conn.transaction::<_, diesel::result::Error, _>(|conn| {
        for i in 0..n {
            let email = clearance::notify::Email {
                to: vec![format!("person-{i}@example.test")],
                subject: format!("Load {i:05}: Security of ACME is overdue"),
                text: format!("Message {i}.\n{}", "A line of the body.\n".repeat(20)),
                html: Some(format!(
                    "<p>Message {i}.</p>{}",
                    "<p>A line.</p>".repeat(20)
                )),
            };
            let payload = serde_json::to_string(&email).unwrap();
            clearance::outbox::store::queue(conn, MessageKind::Email, &payload, None, now)?;
        }
        Ok(())
    })
    .unwrap();
    ids_where(database, None)
}

/// Outbox ids of email messages, in one state or all.
fn ids_where(database: &DatabaseUrl, state: Option<&str>) -> Vec<String> {
    let mut conn = connect(database);
    let mut query = outbox_messages::table
        .filter(outbox_messages::kind.eq("email"))
        .select(outbox_messages::id)
        .into_boxed();
    if let Some(state) = state {
        query = query.filter(outbox_messages::state.eq(state.to_owned()));
    }
    query.load::<String>(&mut conn).unwrap()
}

/// Outbox ids of messages claimed by a worker whose lease still runs.
fn claimed_ids(database: &DatabaseUrl) -> Vec<String> {
    let now = Utc::now().naive_utc();
    outbox_messages::table
        .filter(outbox_messages::state.eq("sending"))
        .filter(outbox_messages::locked_until.gt(now))
        .select(outbox_messages::id)
        .load(&mut connect(database))
        .unwrap()
}

/// How many messages are in each state.
fn states(database: &DatabaseUrl) -> BTreeMap<String, i64> {
    clearance::outbox::store::depth(&mut connect(database))
        .unwrap()
        .into_iter()
        .map(|(state, n)| (state.as_str().to_owned(), n))
        .collect()
}

/// Ends every claim now, as its five-minute lease running out would.
fn lapse_leases(database: &DatabaseUrl) -> usize {
    let past = (Utc::now() - TimeDelta::seconds(1)).naive_utc();
    diesel::update(outbox_messages::table.filter(outbox_messages::state.eq("sending")))
        .set(outbox_messages::locked_until.eq(Some(past)))
        .execute(&mut connect(database))
        .unwrap()
}

// ---------------------------------------------------------------------------
// 1. kill -9 while delivering.

const QUEUED: usize = 2000;
const KILLS: usize = 5;

/// Thousands of emails queued; an instance with SMTP configured is killed
/// with SIGKILL at a random moment of its delivery, again and again, and
/// restarted on the same database (the claims of the dead one lapse, as
/// their lease running out would make them), until the outbox is empty.
/// Every message arrives; a message arrives again only if it was being sent
/// when a process died, at most once more per such death, and every copy
/// carries its original's `Message-ID`.
async fn nothing_is_lost_when_killed_while_delivering(backend: Backend) {
    if !sink_available() {
        return;
    }
    let Some(db) = fresh_database(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("mail");
    let smtp_port = free_port();
    let _sink = Sink::start(smtp_port, &mail);
    let ids = queue_emails(&db.database, QUEUED);
    assert_eq!(ids.len(), QUEUED);
    let setup = Setup::new(&db.database, smtp_port, dir.path());

    let started = Instant::now();
    // How many deaths each message was being sent at.
    let mut in_flight: BTreeMap<String, usize> = BTreeMap::new();
    let (mut kills, mut mid_batch) = (0, 0);
    while kills < KILLS {
        let before = received_count(&mail);
        let instance = setup.start(&format!("run-{kills}")).await;
        // A bound on liveness, wide enough for a machine busy with the
        // other tests (30 s was passed once under the whole suite).
        wait_until("delivery is under way", Duration::from_secs(90), || {
            received_count(&mail) > before
        })
        .await;
        tokio::time::sleep(Duration::from_millis(rand::random_range(0..4000))).await;
        instance.kill_9();
        kills += 1;
        let claimed = claimed_ids(&db.database);
        mid_batch += usize::from(!claimed.is_empty());
        for id in claimed {
            *in_flight.entry(id).or_default() += 1;
        }
        lapse_leases(&db.database);
    }
    let left_at_last_kill = QUEUED - ids_where(&db.database, Some("sent")).len();
    let last = setup.start("last").await;
    let deadline = Instant::now() + Duration::from_secs(90);
    while ids_where(&db.database, Some("sent")).len() < QUEUED {
        assert!(
            Instant::now() < deadline,
            "not all sent: {:?}, {} received; the instance's log:\n{}",
            states(&db.database),
            received_count(&mail),
            std::fs::read_to_string(dir.path().join("last.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(last);
    let elapsed = started.elapsed();

    let received = received_by_message_id(&mail);
    let expected: BTreeSet<String> = ids.iter().map(|id| message_id(id)).collect();
    let missing: Vec<&String> = expected
        .iter()
        .filter(|m| !received.contains_key(*m))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {QUEUED} never arrived, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    let strangers: Vec<&String> = received.keys().filter(|m| !expected.contains(*m)).collect();
    assert!(strangers.is_empty(), "unknown Message-IDs: {strangers:?}");
    let mut duplicates = 0;
    for (id, copies) in &received {
        let outbox_id = &id[1..id.len() - "@clearance>".len()];
        let deaths = in_flight.get(outbox_id).copied().unwrap_or(0);
        assert!(
            copies.len() <= 1 + deaths,
            "{id} arrived {} times, but was being sent at {deaths} deaths",
            copies.len()
        );
        for copy in copies {
            for field in ["to", "subject", "text"] {
                assert_eq!(copy[field], copies[0][field], "{id}: copies differ");
            }
        }
        duplicates += copies.len() - 1;
    }
    // Each email has its own subject: no copy came under another Message-ID.
    let mut ids_by_subject: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (id, copies) in &received {
        for copy in copies {
            ids_by_subject
                .entry(copy["subject"].as_str().unwrap())
                .or_default()
                .insert(id);
        }
    }
    assert_eq!(ids_by_subject.len(), QUEUED);
    assert!(ids_by_subject.values().all(|ids| ids.len() == 1));
    assert_eq!(
        states(&db.database),
        BTreeMap::from([("sent".to_owned(), QUEUED as i64)])
    );
    assert!(
        left_at_last_kill > 0 && mid_batch > 0,
        "no kill came in the middle of a delivery: queue more"
    );
    let total: usize = received.values().map(Vec::len).sum();
    println!(
        "kill -9 while delivering ({backend:?}): queued {QUEUED}, received {total} \
         ({} distinct), duplicates {duplicates}, kills {kills} ({mid_batch} in the middle of \
         a batch), messages in flight at the kills {}, left after the last kill {left_at_last_kill}, {:.1} s",
        received.len(),
        in_flight.values().sum::<usize>(),
        elapsed.as_secs_f64()
    );
}

#[tokio::test]
async fn nothing_is_lost_when_killed_while_delivering_sqlite() {
    nothing_is_lost_when_killed_while_delivering(Backend::Sqlite).await;
}

#[tokio::test]
async fn nothing_is_lost_when_killed_while_delivering_postgres() {
    nothing_is_lost_when_killed_while_delivering(Backend::Postgres).await;
}

// ---------------------------------------------------------------------------
// 2. The SMTP server down for a while.

/// A review's notices and a hundred supplier invitations are queued while
/// the SMTP server is down; three passes fail (each retry made due by
/// moving the manual clock past its backoff, and run at once through
/// `POST /v1/admin/jobs/outbox/run`), with one attempt left of
/// `CLEARANCE_OUTBOX_MAX_ATTEMPTS=4`; the server comes up, and every
/// message arrives, once.
async fn mail_queued_while_smtp_is_down_arrives_after(backend: Backend) {
    if !sink_available() {
        return;
    }
    let Some(db) = fresh_database(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("mail");
    let smtp_port = free_port();
    let setup = Setup::new(&db.database, smtp_port, dir.path())
        .with("CLEARANCE_CLOCK", "manual")
        .with("CLEARANCE_SCHEDULER", "false")
        .with("CLEARANCE_OUTBOX_INTERVAL_MS", "0")
        .with("CLEARANCE_OUTBOX_MAX_ATTEMPTS", "4");
    let server = setup.start("server").await;
    let review = start_reviews(&server, &["claude"]).await.remove(0);
    let workflow = workflow(&server).await;
    let victor = token("victor", &[Role::VendorManager]);
    answer_and_submit(&server, &workflow, &review, "intake", &victor, json!({})).await;
    let approved = decide(
        &server,
        &review,
        "intake",
        &manager("vera"),
        "approve",
        None,
    )
    .await;
    assert_eq!(approved.status(), 200);
    for i in 0..100 {
        let stage = ["security", "privacy"][i % 2];
        server
            .expect(
                201,
                reqwest::Method::POST,
                &format!("/v1/reviews/{review}/stages/{stage}/invite"),
                &victor,
                &json!({"email": format!("contact-{i}@supplier.example")}),
            )
            .await;
    }
    let queued = ids_where(&db.database, None);
    assert!(queued.len() > 100, "{}", queued.len());

    let started = Instant::now();
    for attempt in 1..=3 {
        let report = server.deliver_all_due().await;
        assert_eq!(report["sent"], 0, "attempt {attempt}: {report:?}");
        assert_eq!(report["dead"], 0, "attempt {attempt}: {report:?}");
        assert_eq!(report["retrying"], queued.len() as u64, "attempt {attempt}");
        // Not due again before its backoff (a minute, doubling, ±20 %).
        assert_eq!(server.run_job("outbox").await["claimed"], 0);
        server.advance("10m").await;
    }
    assert_eq!(
        states(&db.database),
        BTreeMap::from([("pending".to_owned(), queued.len() as i64)])
    );

    let _sink = Sink::start(smtp_port, &mail);
    let report = server.deliver_all_due().await;
    assert_eq!(report["sent"], queued.len() as u64, "{report:?}");
    assert_eq!(report["dead"], 0, "{report:?}");
    let received = received_by_message_id(&mail);
    let expected: BTreeSet<String> = queued.iter().map(|id| message_id(id)).collect();
    assert_eq!(received.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert_each_once(&received, "no process died");
    assert_eq!(
        states(&db.database),
        BTreeMap::from([("sent".to_owned(), queued.len() as i64)])
    );
    println!(
        "SMTP down ({backend:?}): queued {}, failed attempts {}, then received {} \
         (duplicates 0, dead 0), {:.1} s",
        queued.len(),
        3 * queued.len(),
        received.len(),
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test]
async fn mail_queued_while_smtp_is_down_arrives_after_sqlite() {
    mail_queued_while_smtp_is_down_arrives_after(Backend::Sqlite).await;
}

#[tokio::test]
async fn mail_queued_while_smtp_is_down_arrives_after_postgres() {
    mail_queued_while_smtp_is_down_arrives_after(Backend::Postgres).await;
}

// ---------------------------------------------------------------------------
// Reviews through the HTTP contract, on an instance.

async fn workflow(server: &Instance) -> Value {
    server
        .get("/v1/workflows/model-provider", &admin())
        .await
        .json()
        .await
        .unwrap()
}

/// Registers `acme` and `models`, and starts a review (by `victor`) of
/// each; answers the reviews' ids.
async fn start_reviews(server: &Instance, models: &[&str]) -> Vec<String> {
    let victor = token("victor", &[Role::VendorManager]);
    let post = reqwest::Method::POST;
    server
        .expect(
            201,
            post.clone(),
            "/v1/providers",
            &victor,
            &json!({"slug": "acme", "name": "ACME"}),
        )
        .await;
    let mut reviews = Vec::new();
    for model in models {
        server
            .expect(
                201,
                post.clone(),
                "/v1/providers/acme/models",
                &victor,
                &json!({"slug": model, "name": model.to_uppercase()}),
            )
            .await;
        let review = server
            .expect(
                201,
                post.clone(),
                "/v1/reviews",
                &victor,
                &json!({"provider": "acme", "model": model}),
            )
            .await;
        reviews.push(review["id"].as_str().unwrap().to_owned());
    }
    reviews
}

async fn answer_and_submit(
    server: &Instance,
    workflow: &Value,
    review: &str,
    stage: &str,
    token: &str,
    overrides: Value,
) {
    let definition = workflow["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == stage)
        .unwrap();
    let answers = json!({"answers": fill(definition, &overrides)});
    let path = format!("/v1/reviews/{review}/stages/{stage}");
    server
        .expect(
            200,
            reqwest::Method::PUT,
            &format!("{path}/answers"),
            token,
            &answers,
        )
        .await;
    server
        .expect(
            200,
            reqwest::Method::POST,
            &format!("{path}/submit"),
            token,
            &json!({}),
        )
        .await;
}

/// The holder of `token` decides `stage`, with `If-Match` when given.
async fn decide(
    server: &Instance,
    review: &str,
    stage: &str,
    token: &str,
    decision: &str,
    if_match: Option<&str>,
) -> reqwest::Response {
    let body = json!({"decision": decision, "comment": "Decided in a race."});
    let path = format!("/v1/reviews/{review}/stages/{stage}/decisions");
    server
        .send(reqwest::Method::POST, &path, token, Some(&body), if_match)
        .await
}

async fn review_of(server: &Instance, review: &str) -> (Value, String) {
    let response = server.get(&format!("/v1/reviews/{review}"), &admin()).await;
    assert_eq!(response.status(), 200);
    let tag = response.headers()["etag"].to_str().unwrap().to_owned();
    (response.json().await.unwrap(), tag)
}

/// The decisions recorded on `stage`, as `(by, decision)`.
fn decisions_on(review: &Value, stage: &str) -> Vec<(String, String)> {
    review["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["stage"] == stage)
        .map(|d| {
            (
                d["by"].as_str().unwrap().to_owned(),
                d["decision"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// What an instance publishes for each of `models` of `acme`: `(ETag, body)`.
async fn clearances(server: &Instance, models: &[&str]) -> Vec<(String, Value)> {
    let integrator = token("gateway", &[Role::Integrator]);
    let mut seen = Vec::new();
    for model in models {
        let response = server
            .get(&format!("/v1/status/acme/{model}"), &integrator)
            .await;
        assert_eq!(response.status(), 200);
        let tag = response.headers()["etag"].to_str().unwrap().to_owned();
        seen.push((tag, response.json::<Value>().await.unwrap()));
    }
    seen
}

fn stage_state(review: &Value, stage: &str) -> String {
    review["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == stage)
        .unwrap()["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

// ---------------------------------------------------------------------------
// 3. Two instances on one PostgreSQL database.

/// Two instances on one PostgreSQL database: the same stages decided on both
/// at once (with and without `If-Match`), a stage that needs two approvals
/// approved by two people at once, and the SLA sweep and the outbox run on
/// both at once while overdue stages climb their ladders. Exactly one winner
/// per contested decision and no approval lost; each reminder and escalation
/// queued and received once; the audit chain verifies; both instances
/// publish the same clearances.
#[tokio::test]
async fn two_instances_on_postgres_decide_and_sweep_without_lost_or_doubled_work() {
    if !sink_available() {
        return;
    }
    let Some(db) = fresh_database(Backend::Postgres).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("mail");
    let smtp_port = free_port();
    let _sink = Sink::start(smtp_port, &mail);
    let setup = Setup::new(&db.database, smtp_port, dir.path())
        .with("CLEARANCE_CLOCK", "manual")
        .with("CLEARANCE_SCHEDULER", "false")
        .with("CLEARANCE_OUTBOX_INTERVAL_MS", "0")
        .with("CLEARANCE_STATUS_REFRESH_MS", "500");
    let a = setup.start("a").await;
    let b = setup.start("b").await;
    let both = [&a, &b];
    for (role, address) in [
        ("vendor_manager", "vendor-risk@example.test"),
        ("admin", "it-admins@example.test"),
    ] {
        a.expect(
            200,
            reqwest::Method::PUT,
            &format!("/v1/admin/roles/{role}/mailbox"),
            &admin(),
            &json!({"emails": [address]}),
        )
        .await;
    }
    let names: Vec<String> = (0..16).map(|i| format!("m{i:02}")).collect();
    let models: Vec<&str> = names.iter().map(String::as_str).collect();
    let reviews = start_reviews(&a, &models).await;
    let workflow = workflow(&b).await;
    let victor = token("victor", &[Role::VendorManager]);
    let started = Instant::now();

    // m00, m01: intake never answered (they go overdue). m02 to m13: four
    // vendor managers decide the intake at once, two on each instance;
    // m02 to m07 without If-Match, m08 to m13 all with the same one. The one
    // told 200 is the decision recorded; the others get 409 (or 412).
    let deciders = [
        ("vera", &a, "approve"),
        ("vince", &b, "reject"),
        ("val", &a, "request_changes"),
        ("vic", &b, "approve"),
    ];
    let mut outcomes = BTreeMap::<String, usize>::new();
    for (i, review) in reviews.iter().enumerate().take(14).skip(2) {
        answer_and_submit(&a, &workflow, review, "intake", &victor, json!({})).await;
        let tag = match i {
            8.. => Some(review_of(&b, review).await.1),
            _ => None,
        };
        // Each round, another decider's request leaves first.
        let round: Vec<_> = (0..deciders.len())
            .map(|k| deciders[(i + k) % deciders.len()])
            .collect();
        let responses = futures_util::future::join_all(round.iter().map(|(who, server, what)| {
            let token = manager(who);
            let tag = tag.clone();
            async move { decide(server, review, "intake", &token, what, tag.as_deref()).await }
        }))
        .await;
        let codes: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
        let winners: Vec<usize> = (0..codes.len()).filter(|k| codes[*k] == 200).collect();
        let losing: &[u16] = if tag.is_some() { &[409, 412] } else { &[409] };
        assert!(
            winners.len() == 1 && codes.iter().all(|c| *c == 200 || losing.contains(c)),
            "{review}, If-Match {tag:?}: {codes:?}"
        );
        let (who, _, what) = round[winners[0]];
        let (after, _) = review_of(&a, review).await;
        assert_eq!(
            decisions_on(&after, "intake"),
            [(who.to_owned(), what.to_owned())],
            "{review}: the decision recorded is the one that won"
        );
        *outcomes.entry(what.to_owned()).or_default() += 1;
    }

    // m14, m15: high tier, so security needs two different approvers; sam
    // and sue approve m14 at once on both instances (both count), sam
    // approves m15 on both at once (once counts), then sue.
    let high = json!({"data_classes": ["internal", "personal"], "affects_people": true});
    for review in &reviews[14..] {
        answer_and_submit(&a, &workflow, review, "intake", &victor, high.clone()).await;
        let approved = decide(&b, review, "intake", &manager("vera"), "approve", None).await;
        assert_eq!(approved.status(), 200);
        answer_and_submit(&b, &workflow, review, "security", &victor, json!({})).await;
    }
    let sam = token("sam", &[Role::SecurityReviewer]);
    let sue = token("sue", &[Role::SecurityReviewer]);
    let (m14, m15) = (&reviews[14], &reviews[15]);
    let (first, second) = tokio::join!(
        decide(&a, m14, "security", &sam, "approve", None),
        decide(&b, m14, "security", &sue, "approve", None),
    );
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let (first, second) = tokio::join!(
        decide(&a, m15, "security", &sam, "approve", None),
        decide(&b, m15, "security", &sam, "approve", None),
    );
    let mut codes = [first.status().as_u16(), second.status().as_u16()];
    codes.sort_unstable();
    assert_eq!(codes, [200, 403], "the same person approves once");
    assert_eq!(
        stage_state(&review_of(&b, m15).await.0, "security"),
        "in_review"
    );
    let last = decide(&a, m15, "security", &sue, "approve", None).await;
    assert_eq!(last.status(), 200);
    for review in &reviews[14..] {
        let (after, _) = review_of(&a, review).await;
        assert_eq!(stage_state(&after, "security"), "approved", "{review}");
        let mut by: Vec<String> = decisions_on(&after, "security")
            .into_iter()
            .map(|(who, _)| who)
            .collect();
        by.sort();
        assert_eq!(by, ["sam", "sue"], "{review}: no approval lost or doubled");
    }

    // The ladders: both clocks move alike; each step, three sweeps and then
    // three outbox passes on each instance at once.
    let mut swept = BTreeMap::<&str, u64>::new();
    for step in ["5d 1m", "2d", "5d", "4d", "4d"] {
        for server in both {
            server.advance(step).await;
        }
        let sweeps =
            futures_util::future::join_all((0..6).map(|i| both[i % 2].run_job("sla-sweep"))).await;
        for report in sweeps {
            for key in ["reminders", "escalations", "undeliverable"] {
                *swept.entry(key).or_default() += report[key].as_u64().unwrap();
            }
        }
        let passes =
            futures_util::future::join_all((0..6).map(|i| both[i % 2].run_job("outbox"))).await;
        assert!(passes.iter().all(|p| p["dead"] == 0), "{passes:?}");
    }
    for server in both {
        server.deliver_all_due().await;
    }

    // Each level of each stage's ladder notified once, in the audit log, the
    // outbox and the SMTP server alike.
    let mut levels = BTreeSet::new();
    let mut notified = 0;
    for action in ["stage.reminded", "stage.escalated"] {
        let page: Value = a
            .get(&format!("/v1/audit?action={action}&limit=200"), &admin())
            .await
            .json()
            .await
            .unwrap();
        for event in page["items"].as_array().unwrap() {
            let after = &event["after"];
            let level = (
                event["review_id"].as_str().unwrap_or_default().to_owned(),
                after["stage"].as_str().unwrap().to_owned(),
                after["escalation_level"].as_i64().unwrap(),
            );
            assert!(levels.insert(level.clone()), "{level:?} notified twice");
            if after["queued"] == true {
                notified += 1;
            }
        }
    }
    assert_eq!(swept["reminders"] + swept["escalations"], notified);
    assert_eq!(swept["undeliverable"], 0);
    for review in &reviews[..2] {
        for level in 1..=3 {
            let key = (review.clone(), "intake".to_owned(), level);
            assert!(levels.contains(&key), "{key:?} never notified");
        }
    }
    let received = received_by_message_id(&mail);
    assert_each_once(&received, "two instances delivered and none died");
    let sent: BTreeSet<String> = ids_where(&db.database, Some("sent"))
        .iter()
        .map(|id| message_id(id))
        .collect();
    assert_eq!(received.keys().cloned().collect::<BTreeSet<_>>(), sent);
    let ladder_emails: Vec<(String, String)> = received
        .values()
        .map(|copies| &copies[0])
        .filter(|m| {
            let subject = m["subject"].as_str().unwrap();
            subject.starts_with("Reminder: ") || subject.starts_with("Escalation ")
        })
        .map(|m| {
            (
                m["subject"].as_str().unwrap().to_owned(),
                m["to"].to_string(),
            )
        })
        .collect();
    let distinct: BTreeSet<&(String, String)> = ladder_emails.iter().collect();
    assert_eq!(distinct.len(), ladder_emails.len(), "{ladder_emails:?}");
    assert_eq!(ladder_emails.len() as u64, notified);

    // The audit chain verifies, read from either instance.
    let mut heads = Vec::new();
    for server in both {
        let verified: Value = server
            .get("/v1/audit/verify", &admin())
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(verified["ok"], true, "{verified}");
        heads.push((verified["events"].clone(), verified["head"].clone()));
    }
    assert_eq!(heads[0], heads[1]);

    // A suspension on one instance; then both publish the same clearances.
    a.expect(
        200,
        reqwest::Method::POST,
        "/v1/models/acme/m00/suspend",
        &admin(),
        &json!({"reason": "Incident at the provider"}),
    )
    .await;
    let suspended = Instant::now();
    let deadline = suspended + Duration::from_secs(10);
    let (from_a, from_b) = loop {
        let (from_a, from_b) = tokio::join!(clearances(&a, &models), clearances(&b, &models));
        if from_a == from_b || Instant::now() > deadline {
            break (from_a, from_b);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let converged = suspended.elapsed();
    assert_eq!(from_a, from_b, "both instances publish the same clearances");
    assert_eq!(from_b[0].1["status"], "suspended");
    let statuses: BTreeMap<String, usize> =
        from_a.iter().fold(BTreeMap::new(), |mut counts, (_, c)| {
            *counts
                .entry(c["status"].as_str().unwrap().to_owned())
                .or_default() += 1;
            counts
        });
    println!(
        "two instances on PostgreSQL: 12 stages decided by 4 people at once (one winner \
         each, the decision recorded: {outcomes:?}), 2 double approvals at once (none \
         lost, none doubled), sweeps 30 and outbox passes 30 across \
         both; ladder notices {notified} queued and {} received, none twice; {} emails in \
         all, each once; audit chain ok ({} events); clearances equal on both \
         {:.1} s after a suspension: {statuses:?}; {:.1} s",
        ladder_emails.len(),
        received.len(),
        heads[0].0,
        converged.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------
// One integrator token flooding checks about made-up models with made-up use
// cases (issue 22): the intake, the usage answer and the digest stay small,
// and lookups go on answering. Bounded: a few thousand items, on the test's
// own server; sizes are asserted, timings only printed.

async fn a_flood_of_made_up_names_leaves_the_intake_usage_and_digest_small(backend: Backend) {
    let Some(app) = fresh_database(backend).await else {
        return;
    };
    crate::status::approve(&app, "open", None).await;
    // The vendor manager is known to the directory, with an address.
    assert_eq!(app.get("/v1/providers", &app.manager()).await.status(), 200);
    let flood = token("flood-bot", &[Role::Integrator]);
    let ci = token("ci-pipeline", &[Role::Integrator]);
    const WORKERS: usize = 3;
    const REQUESTS: usize = 8;
    let started = Instant::now();
    let floods: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (client, url, flood) = (app.client.clone(), app.url("/v1/status/check"), flood.clone());
            tokio::spawn(async move {
                for r in 0..REQUESTS {
                    let items: Vec<Value> = (0..1000)
                        .map(|i| {
                            let model = if i % 10 == 0 { "open".to_owned() } else { format!("made-up-{w}-{r}-{i}") };
                            json!({"provider": "acme", "model": model, "use_case": format!("case-{w}-{r}-{i}")})
                        })
                        .collect();
                    let response = client.post(&url).bearer_auth(&flood).json(&json!({"items": items})).send().await.unwrap();
                    assert_eq!(response.status(), 200);
                }
            })
        })
        .collect();
    let mut lookups = 0;
    while floods.iter().any(|f| !f.is_finished()) {
        assert_eq!(
            app.get("/v1/status/acme/open", &ci).await.status(),
            200,
            "a lookup during the flood"
        );
        lookups += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for flood in floods {
        flood.await.unwrap();
    }
    println!(
        "{} items in {:?}; {lookups} lookups answered meanwhile",
        WORKERS * REQUESTS * 1000,
        started.elapsed()
    );

    let timed = Instant::now();
    assert_eq!(app.get("/healthz", &ci).await.status(), 200);
    assert_eq!(app.get("/v1/status/acme/open", &ci).await.status(), 200);
    let check = json!({"items": [{"provider": "acme", "model": "open"}]});
    assert_eq!(
        app.post("/v1/status/check", &ci, &check).await.status(),
        200
    );
    println!(
        "after the flood: health, lookup and check in {:?}",
        timed.elapsed()
    );

    let intake = app.get("/v1/intake?limit=200", &app.manager()).await;
    assert_eq!(intake.status(), 200);
    let intake = intake.bytes().await.unwrap();
    let page: Value = serde_json::from_slice(&intake).unwrap();
    let mut requests = page["items"].as_array().unwrap().len();
    let mut cursor = page["next_cursor"].as_str().map(str::to_owned);
    while let Some(next) = cursor {
        let more: Value = app
            .get(
                &format!("/v1/intake?limit=200&cursor={next}"),
                &app.manager(),
            )
            .await
            .json()
            .await
            .unwrap();
        requests += more["items"].as_array().unwrap().len();
        cursor = more["next_cursor"].as_str().map(str::to_owned);
    }
    println!(
        "intake: {requests} requests, first page {} bytes",
        intake.len()
    );
    assert_eq!(
        requests, 100,
        "the default bound of new models per asker a day"
    );
    assert!(
        intake.len() < 200_000,
        "the intake's page is {} bytes",
        intake.len()
    );
    assert_eq!(
        page["over_bound"][0]["sub"], "flood-bot",
        "{}",
        page["over_bound"]
    );

    let usage = app.get("/v1/models/acme/open/usage", &app.manager()).await;
    assert_eq!(usage.status(), 200);
    let usage = usage.bytes().await.unwrap();
    let report: Value = serde_json::from_slice(&usage).unwrap();
    println!("usage: {} bytes", usage.len());
    assert_eq!(report["hours"].as_array().unwrap().len(), 50, "a page");
    assert!(
        usage.len() < 50_000,
        "the usage answer is {} bytes",
        usage.len()
    );
    let cases = report["integrators"][0]["use_cases"]
        .as_array()
        .unwrap()
        .len();
    assert!(cases <= 51, "{cases} use cases counted for the flood");

    let timed = Instant::now();
    let ran = app
        .post("/v1/admin/jobs/digest/run", &app.admin(), &json!({}))
        .await;
    assert_eq!(ran.status(), 200);
    let emails = app.sent_emails().await;
    let digest = emails
        .iter()
        .find(|e| {
            e["to"][0] == "victor@example.com"
                && e["subject"]
                    .as_str()
                    .unwrap()
                    .starts_with("Your reviews for")
        })
        .expect("the manager's digest");
    assert!(
        digest["text"]
            .as_str()
            .unwrap()
            .contains("more models asked for by flood-bot"),
        "{digest}"
    );
    let size = digest["text"].as_str().unwrap().len();
    println!(
        "digest: {size} bytes of text, queued and sent in {:?}",
        timed.elapsed()
    );
    assert!(size < 20_000, "the digest is {size} bytes");
}

#[tokio::test]
async fn a_flood_of_made_up_names_leaves_the_intake_usage_and_digest_small_sqlite() {
    a_flood_of_made_up_names_leaves_the_intake_usage_and_digest_small(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_flood_of_made_up_names_leaves_the_intake_usage_and_digest_small_postgres() {
    a_flood_of_made_up_names_leaves_the_intake_usage_and_digest_small(Backend::Postgres).await;
}
