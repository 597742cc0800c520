//! What people receive, through a real SMTP server on both backends: an
//! invitation is one email, questionnaires opening soon after it are
//! announced in one message at most once a day (kept in the database across
//! a restart), every email carries its link once, as a button, and names
//! the organisation asking and the model by name; resuming a model tells
//! whoever was told of its suspension; nobody is emailed about their own
//! action.

use clearance::auth::Role;
use clearance::config::RawConfig;
use serde_json::{Value, json};

use crate::flow::Flow;
use crate::helpers::{Backend, TestApp};
use crate::process::known;
use crate::scheduler::{advance, audit_events, run_job};
use crate::smtp::{SmtpSink, available, free_port};
use crate::status::approve;

const CONTACT: &str = "contact@supplier.example";
const ORGANISATION: &str = "Example Bank";
/// How the test model is named: its display names, never `anthropic/claude`.
const NAMED: &str = "Claude by ANTHROPIC";

/// The SMTP server a test's instances send to.
struct Inbox {
    sink: SmtpSink,
    port: u16,
}

impl Inbox {
    /// What an instance needs to send here, as the organisation.
    fn configure(&self, raw: &mut RawConfig) {
        raw.smtp_url = Some(format!("smtp://127.0.0.1:{}", self.port));
        raw.organisation = Some(ORGANISATION.into());
    }

    /// The messages received for `address`, oldest first.
    fn to(&self, address: &str) -> Vec<Value> {
        self.sink
            .received()
            .into_iter()
            .filter(|m| m["to"].as_array().unwrap().iter().any(|t| t == address))
            .collect()
    }
}

/// An SMTP server and an app on `backend` sending to it; `None` (with the
/// reason printed) when either cannot run here.
async fn with_smtp(backend: Backend) -> Option<(Inbox, TestApp)> {
    if !available() {
        return None;
    }
    let port = free_port();
    let inbox = Inbox {
        sink: SmtpSink::start(port),
        port,
    };
    let Some(app) = TestApp::spawn_with(backend, |raw| inbox.configure(raw)).await else {
        crate::helpers::skip(crate::helpers::NO_DATABASE);
        return None;
    };
    Some((inbox, app))
}

/// Each test on SQLite and on PostgreSQL, with its own SMTP server.
macro_rules! smtp_tests {
    ($(async fn $name:ident($inbox:ident, $app:ident) $body:block)*) => {$(
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let Some(($inbox, $app)) = with_smtp(Backend::Sqlite).await else { return };
                $body
            }

            #[tokio::test]
            async fn postgres() {
                let Some(($inbox, $app)) = with_smtp(Backend::Postgres).await else { return };
                $body
            }
        }
    )*};
}

fn subjects(messages: &[Value]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m["subject"].as_str().unwrap())
        .collect()
}

/// The subjects starting with one of `prefixes`, sorted (messages
/// delivered together may arrive in any order).
fn subjects_of<'m>(messages: &'m [Value], prefixes: &[&str]) -> Vec<&'m str> {
    let mut found: Vec<&str> = subjects(messages)
        .into_iter()
        .filter(|s| prefixes.iter().any(|p| s.starts_with(p)))
        .collect();
    found.sort_unstable();
    found
}

/// Checks what every email to a supplier must do, and answers its one
/// link: the link appears once in each part (a button in the HTML, a line
/// of its own in the text), the organisation asking and the model are
/// named, and no slug or id shows.
fn one_link_and_names(message: &Value, review_id: &str, button: &str) -> String {
    let text = message["text"].as_str().unwrap();
    let html = message["html"].as_str().unwrap();
    assert_eq!(text.matches("/respond/").count(), 1, "{text}");
    assert_eq!(html.matches("/respond/").count(), 1, "{html}");
    let link = text
        .lines()
        .find(|l| l.contains("/respond/"))
        .unwrap()
        .to_owned();
    assert!(
        link.starts_with("http"),
        "the link is on a line of its own: {text}"
    );
    assert!(
        html.contains(&format!("href=\"{link}\"")) && html.contains(&format!(">{button}</a>")),
        "the link is the button {button:?}: {html}"
    );
    for body in [text, html] {
        assert!(body.contains(ORGANISATION), "{body}");
        assert!(body.contains(NAMED), "{body}");
        assert!(!body.contains("anthropic/claude"), "{body}");
        assert!(!body.contains(review_id), "{body}");
    }
    let subject = message["subject"].as_str().unwrap();
    assert!(
        subject.contains(NAMED) && !subject.contains("anthropic/claude"),
        "{subject}"
    );
    // Nothing long is shown: a phone's screen wraps what there is.
    assert!(html.contains("name=\"viewport\""), "{html}");
    assert!(html.contains("overflow-wrap: anywhere"), "{html}");
    link
}

/// Keeps the HTML of an email where the screenshots go, to be looked at
/// in a browser at 390 px.
fn keep_html(name: &str, message: &Value) {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join(format!("email-{name}.html")),
        message["html"].as_str().unwrap(),
    )
    .unwrap();
}

smtp_tests! {
    async fn questionnaires_opening_soon_after_an_invitation_are_announced_once_a_day_later(inbox, app) {
        let flow = Flow::start(&app).await;
        flow.invite_all(CONTACT).await;
        // Both questionnaires open minutes after the invitation.
        flow.through_intake(json!({})).await;
        run_job(&app, "outbox").await;
        let mail = inbox.to(CONTACT);
        assert_eq!(subjects(&mail), [format!("Questionnaires for {NAMED}: 2 to answer")]);
        one_link_and_names(&mail[0], &flow.id, "Open the questionnaires");
        advance(&app, "PT23H").await;
        assert_eq!(run_job(&app, "sla-sweep").await["opening_notices"], 0, "not within the day");

        // Another instance (as after a restart) finds the waiting notice in
        // the database once the day has passed since the invitation.
        let restarted = app.spawn_beside(|raw| inbox.configure(raw)).await;
        advance(&restarted, "P1DT1M").await;
        assert_eq!(run_job(&restarted, "sla-sweep").await["opening_notices"], 1);
        assert_eq!(run_job(&restarted, "sla-sweep").await["opening_notices"], 0, "once");
        run_job(&restarted, "outbox").await;
        let mail = inbox.to(CONTACT);
        assert_eq!(mail.len(), 2, "{:?}", subjects(&mail));
        let opened = &mail[1];
        assert_eq!(opened["subject"], format!("Now open: 2 questionnaires for {NAMED}"));
        let text = opened["text"].as_str().unwrap();
        assert!(text.contains("Security review") && text.contains("Privacy and data protection review"), "{text}");
        let link = one_link_and_names(opened, &flow.id, "Open the questionnaires");
        keep_html("opened-several", opened);
        let path = &link[link.find("/respond/").unwrap()..];
        let page = app.client.get(app.url(path)).send().await.unwrap().text().await.unwrap();
        assert_eq!(page.matches("open for your answers").count(), 2, "{page}");

        let notified = audit_events(&app, "supplier.notified").await;
        assert_eq!(notified.len(), 1, "{notified:?}");
        assert_eq!(notified[0]["after"]["contact"], CONTACT);
        advance(&restarted, "P2D").await;
        assert_eq!(run_job(&restarted, "sla-sweep").await["opening_notices"], 0);
    }

    async fn a_questionnaire_opening_a_day_after_the_invitation_is_told_at_once(inbox, app) {
        let flow = Flow::start(&app).await;
        let invited = app
            .post(&flow.path("/stages/security/invite"), &app.manager(), &json!({"email": CONTACT, "expires_in": "30d"}))
            .await;
        assert_eq!(invited.status(), 201);
        advance(&app, "P1DT1M").await;
        flow.through_intake(json!({})).await;
        run_job(&app, "outbox").await;
        let mail = inbox.to(CONTACT);
        let invitation = format!("Questionnaire: Security review for {NAMED}");
        let opened = format!("Now open: Security review for {NAMED}");
        assert_eq!(subjects_of(&mail, &[""]), [opened.as_str(), invitation.as_str()]);
        let about = |subject: &str| mail.iter().find(|m| m["subject"] == subject).unwrap();
        one_link_and_names(about(&invitation), &flow.id, "Open the questionnaire");
        let link = one_link_and_names(about(&opened), &flow.id, "Open the questionnaire");
        keep_html("opened-one", about(&opened));
        let token = link.rsplit('/').next().unwrap();
        assert_eq!(app.get(&flow.path("/stages/security"), token).await.status(), 200);
    }

    async fn resuming_a_model_tells_those_told_of_its_suspension(inbox, app) {
        approve(&app, "m", None).await;
        let gateway = app.token("gateway", &[Role::Integrator]);
        assert_eq!(app.get("/v1/status/acme/m", &gateway).await.status(), 200);
        known(&app, &[("victor", Role::VendorManager)]).await;
        let reason = json!({"reason": "Provider incident"});
        assert_eq!(app.post("/v1/models/acme/m/suspend", &app.admin(), &reason).await.status(), 200);
        // The integrator asks no more; it is still told of the resumption.
        advance(&app, "P40D").await;
        assert_eq!(app.post("/v1/models/acme/m/resume", &app.admin(), &json!({})).await.status(), 200);
        run_job(&app, "outbox").await;
        for who in ["gateway@example.com", "victor@example.com"] {
            let mail = inbox.to(who);
            let told = subjects_of(&mail, &["Suspended:", "Resumed:"]);
            assert_eq!(told, ["Resumed: m by ACME", "Suspended: m by ACME"], "{who}");
        }
        let resumed = inbox
            .to("gateway@example.com")
            .into_iter()
            .find(|m| m["subject"] == "Resumed: m by ACME")
            .unwrap();
        let text = resumed["text"].as_str().unwrap();
        assert!(text.contains("were told of its suspension"), "{text}");
        let words = text.lines().filter(|l| !l.starts_with("http"));
        assert!(words.clone().all(|l| !l.contains("acme/m")), "slugs only in the link: {text}");
    }

    async fn nobody_is_emailed_about_their_own_action(inbox, app) {
        approve(&app, "m", None).await;
        // Ada is an admin and a vendor manager: the vendor managers are
        // told of a suspension, but not the one who suspended.
        let ada = app.token("ada", &[Role::Admin, Role::VendorManager]);
        assert_eq!(app.get("/v1/reviews", &ada).await.status(), 200);
        known(&app, &[("victor", Role::VendorManager)]).await;
        let reason = json!({"reason": "Provider incident"});
        assert_eq!(app.post("/v1/models/acme/m/suspend", &ada, &reason).await.status(), 200);
        assert_eq!(app.post("/v1/models/acme/m/resume", &ada, &json!({})).await.status(), 200);
        run_job(&app, "outbox").await;
        let victors = inbox.to("victor@example.com");
        assert_eq!(subjects_of(&victors, &["Suspended:", "Resumed:"]), ["Resumed: m by ACME", "Suspended: m by ACME"]);
        let hers = inbox.to("ada@example.com");
        assert!(hers.is_empty(), "{:?}", subjects(&hers));
    }
}
