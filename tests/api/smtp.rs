//! Email through a real SMTP server (Python's aiosmtpd, started per test by
//! `tests/smtp_sink.py`): what arrives, that it arrives once, that it waits
//! and retries while the server is down, and that a dead message can be
//! sent again. Skipped with a message when python3 or aiosmtpd is missing,
//! except in CI (`CI` set), where that is a failure.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::flow::Flow;
use crate::helpers::{Backend, TestApp};
use crate::scheduler::{advance, run_job};

/// A running aiosmtpd; stopped when dropped.
pub(crate) struct SmtpSink {
    child: Child,
    folder: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether the sink can run here; panics in CI when it cannot.
pub(crate) fn available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        crate::helpers::skip("python3 with aiosmtpd is not installed (pip install aiosmtpd)");
    }
    ok
}

impl SmtpSink {
    pub(crate) fn start(port: u16) -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("mail");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(&folder)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP sink started");
        SmtpSink {
            child,
            folder,
            _dir: dir,
        }
    }

    /// Every message received so far, oldest first.
    pub(crate) fn received(&self) -> Vec<Value> {
        read_folder(&self.folder)
    }
}

fn read_folder(folder: &Path) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut names: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

fn subjects_starting(messages: &[Value], prefix: &str) -> usize {
    messages
        .iter()
        .filter(|m| m["subject"].as_str().unwrap().starts_with(prefix))
        .count()
}

async fn app_with_smtp(port: u16, max_attempts: u32) -> TestApp {
    TestApp::spawn_with(Backend::Sqlite, |raw| {
        raw.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        raw.outbox_max_attempts = max_attempts;
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn an_invitation_arrives_as_text_and_html_with_a_working_link() {
    if !available() {
        return;
    }
    let port = free_port();
    let sink = SmtpSink::start(port);
    let app = app_with_smtp(port, 8).await;
    let flow = Flow::start(&app).await;
    flow.through_intake(json!({})).await;
    let response = app
        .post(
            &flow.path("/stages/security/invite"),
            &app.manager(),
            &json!({"email": "security@supplier.example"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let report = run_job(&app, "outbox").await;
    assert!(report["sent"].as_u64().unwrap() >= 1, "{report}");

    let received = sink.received();
    let invitation = received
        .iter()
        .find(|m| m["to"] == json!(["security@supplier.example"]))
        .expect("the invitation arrived");
    assert_eq!(invitation["content_type"], "multipart/alternative");
    assert!(
        invitation["message_id"]
            .as_str()
            .unwrap()
            .ends_with("@clearance>")
    );
    let text = invitation["text"].as_str().unwrap();
    let html = invitation["html"].as_str().unwrap();
    for body in [text, html] {
        assert!(body.contains("Claude by ANTHROPIC"), "{body}");
        assert!(body.contains("questionnaire"), "{body}");
    }
    let link = text
        .lines()
        .find(|l| l.contains("/respond/"))
        .expect("a link")
        .trim();
    assert!(html.contains(link), "the HTML carries the same link");
    let token = link.rsplit('/').next().unwrap();
    let stage: Value = app
        .get(&flow.path("/stages/security"), token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stage["key"], "security");
}

#[tokio::test]
async fn reminders_and_escalations_arrive_once_each_by_smtp() {
    if !available() {
        return;
    }
    let port = free_port();
    let sink = SmtpSink::start(port);
    let app = app_with_smtp(port, 8).await;
    Flow::start(&app).await;
    app.get("/v1/admin/people", &app.admin()).await;
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    for (step, subject) in [
        ("P5DT1M", "Reminder:"),
        ("P2D", "Escalation 1:"),
        ("P5D", "Escalation 2:"),
    ] {
        advance(&app, step).await;
        run_job(&app, "sla-sweep").await;
        run_job(&app, "sla-sweep").await;
        run_job(&app, "outbox").await;
        run_job(&app, "outbox").await;
        assert_eq!(subjects_starting(&sink.received(), subject), 1, "{subject}");
    }
    let received = sink.received();
    assert_eq!(subjects_starting(&received, "Reminder:"), 1);
    assert_eq!(subjects_starting(&received, "Escalation"), 2);
}

#[tokio::test]
async fn messages_wait_while_the_server_is_down_and_arrive_once_it_is_back() {
    if !available() {
        return;
    }
    let port = free_port();
    let app = app_with_smtp(port, 8).await;
    Flow::start(&app).await;
    advance(&app, "P5DT1M").await;
    run_job(&app, "sla-sweep").await;
    let report = run_job(&app, "outbox").await;
    assert_eq!(report["retrying"], 1, "{report}");

    let sink = SmtpSink::start(port);
    // Not yet due again: nothing is tried.
    assert_eq!(run_job(&app, "outbox").await["claimed"], 0);
    advance(&app, "PT2M").await;
    let report = run_job(&app, "outbox").await;
    assert_eq!(report["sent"], 1, "{report}");
    advance(&app, "PT2H").await;
    assert_eq!(run_job(&app, "outbox").await["claimed"], 0);
    assert_eq!(subjects_starting(&sink.received(), "Reminder:"), 1);
}

#[tokio::test]
async fn after_the_attempt_limit_a_message_is_dead_and_can_be_retried() {
    if !available() {
        return;
    }
    let port = free_port();
    let app = app_with_smtp(port, 2).await;
    Flow::start(&app).await;
    advance(&app, "P5DT1M").await;
    run_job(&app, "sla-sweep").await;
    assert_eq!(run_job(&app, "outbox").await["retrying"], 1);
    advance(&app, "PT5M").await;
    assert_eq!(run_job(&app, "outbox").await["dead"], 1);
    let dead: Value = app
        .get("/v1/admin/outbox?state=dead", &app.admin())
        .await
        .json()
        .await
        .unwrap();
    let id = dead["items"][0]["id"].as_str().unwrap().to_owned();

    let sink = SmtpSink::start(port);
    advance(&app, "P1D").await;
    assert_eq!(
        run_job(&app, "outbox").await["claimed"],
        0,
        "dead stays dead"
    );
    let response = app
        .post(
            &format!("/v1/admin/outbox/{id}/retry"),
            &app.admin(),
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(run_job(&app, "outbox").await["sent"], 1);
    assert_eq!(subjects_starting(&sink.received(), "Reminder:"), 1);
}

#[tokio::test]
async fn work_arriving_and_changes_requested_arrive_by_smtp() {
    if !available() {
        return;
    }
    let port = free_port();
    let sink = SmtpSink::start(port);
    let app = app_with_smtp(port, 8).await;
    let vera = app.token("vera", &[clearance::auth::Role::VendorManager]);
    assert_eq!(app.get("/v1/reviews", &vera).await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let flow = Flow::start(&app).await;
    let victor = app.manager();
    flow.answer_and_submit(&victor, "intake", json!({})).await;
    run_job(&app, "outbox").await;
    let received = sink.received();
    let ready = received
        .iter()
        .find(|m| {
            m["subject"]
                .as_str()
                .unwrap()
                .starts_with("Ready for review: Intake")
        })
        .expect("the intake's reviewer was told");
    assert_eq!(ready["to"], json!(["vera@example.com"]));
    assert!(
        ready["html"]
            .as_str()
            .unwrap()
            .contains(&format!("/reviews/{}#stage-intake", flow.id))
    );

    flow.approve(&vera, "intake").await;
    let invited = app
        .post(
            &flow.path("/stages/security/invite"),
            &victor,
            &json!({"email": "sec@supplier.example"}),
        )
        .await;
    assert_eq!(invited.status(), 201);
    run_job(&app, "outbox").await;
    let token = |message: &Value| {
        let text = message["text"].as_str().unwrap();
        let link = text
            .lines()
            .find(|l| l.contains("/respond/"))
            .unwrap()
            .trim();
        link.rsplit('/').next().unwrap().to_owned()
    };
    let invitation = sink
        .received()
        .into_iter()
        .find(|m| m["to"] == json!(["sec@supplier.example"]))
        .unwrap();
    flow.answer_and_submit(&token(&invitation), "security", json!({}))
        .await;
    let sam = app.token("sam", &[clearance::auth::Role::SecurityReviewer]);
    let asked = flow
        .decide(
            &sam,
            "security",
            json!({"decision": "request_changes", "comment": "Which TLS versions?"}),
        )
        .await;
    assert_eq!(asked.status(), 200);
    run_job(&app, "outbox").await;
    let changes = sink
        .received()
        .into_iter()
        .find(|m| {
            m["subject"]
                .as_str()
                .unwrap()
                .starts_with("Changes requested: Security")
        })
        .expect("the supplier was told");
    assert_eq!(changes["to"], json!(["sec@supplier.example"]));
    assert!(
        changes["text"]
            .as_str()
            .unwrap()
            .contains("Which TLS versions?")
    );
    let stage: Value = app
        .get(&flow.path("/stages/security"), &token(&changes))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stage["changes_requested"], "Which TLS versions?");
}
