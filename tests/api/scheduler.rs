//! The scheduler's jobs, run through `POST /v1/admin/jobs/{job}/run` with
//! the manual clock moved by `POST /v1/admin/clock`: reminders and each
//! escalation level exactly once, re-reviews and expiry, the daily digest.

use chrono::{DateTime, TimeDelta, Utc};
use clearance::auth::Role;
use clearance::clock::Clock;
use serde_json::{Value, json};

use crate::flow::Flow;
use crate::helpers::{Backend, TestApp, assert_problem};
use crate::status::approve;

pub async fn run_job(app: &TestApp, job: &str) -> Value {
    let response = app
        .post(
            &format!("/v1/admin/jobs/{job}/run"),
            &app.admin(),
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), 200, "running {job}");
    response.json::<Value>().await.unwrap()["result"].clone()
}

pub async fn advance(app: &TestApp, by: &str) -> DateTime<Utc> {
    let response = app
        .post("/v1/admin/clock", &app.admin(), &json!({"advance": by}))
        .await;
    assert_eq!(response.status(), 200, "moving the clock by {by}");
    let body: Value = response.json().await.unwrap();
    body["now"].as_str().unwrap().parse().unwrap()
}

/// Emails in the outbox whose subject starts with `prefix`, as (subject, to).
pub fn emails_starting(app: &TestApp, prefix: &str) -> Vec<(String, Vec<String>)> {
    app.outbox_emails()
        .into_iter()
        .filter(|e| e["subject"].as_str().unwrap().starts_with(prefix))
        .map(|e| {
            (
                e["subject"].as_str().unwrap().to_owned(),
                serde_json::from_value(e["to"].clone()).unwrap(),
            )
        })
        .collect()
}

/// The audit events of `action`, oldest first (at most a hundred).
pub async fn audit_events(app: &TestApp, action: &str) -> Vec<Value> {
    let page: Value = app
        .get(
            &format!("/v1/audit?action={action}&limit=100"),
            &app.admin(),
        )
        .await
        .json()
        .await
        .unwrap();
    page["items"].as_array().cloned().unwrap_or_default()
}

async fn audit_actions(app: &TestApp, action: &str) -> usize {
    audit_events(app, action).await.len()
}

/// Lets the directory record the people who just made requests.
async fn settle() {
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
}

backend_tests! {
    async fn an_overdue_stage_is_reminded_then_escalated_once_per_level(app) {
        let flow = Flow::start(&app).await;
        // The admins are known to the directory; the vendor managers get a mailbox.
        app.get("/v1/admin/people", &app.admin()).await;
        let response = app
            .put(
                "/v1/admin/roles/vendor_manager/mailbox",
                &app.admin(),
                &json!({"emails": ["vendor-managers@example.com"]}),
                None,
            )
            .await;
        assert_eq!(response.status(), 200);
        settle().await;

        // Intake: due after 5d; ladder 0h assignee, 2d role:vendor_manager, 7d role:admin.
        assert_eq!(run_job(&app, "sla-sweep").await["reminders"], 0);
        advance(&app, "P5DT1M").await;
        assert_eq!(run_job(&app, "sla-sweep").await["reminders"], 1);
        assert_eq!(run_job(&app, "sla-sweep").await["reminders"], 0);
        let reminders = emails_starting(&app, "Reminder:");
        assert_eq!(reminders.len(), 1, "{reminders:?}");
        // No assignee: the approver role's mailbox.
        assert_eq!(reminders[0].1, ["vendor-managers@example.com"]);

        advance(&app, "P2D").await;
        run_job(&app, "sla-sweep").await;
        run_job(&app, "sla-sweep").await;
        let first = emails_starting(&app, "Escalation 1:");
        assert_eq!(first.len(), 1, "{first:?}");
        assert_eq!(first[0].1, ["vendor-managers@example.com"]);

        advance(&app, "P5D").await;
        let report = run_job(&app, "sla-sweep").await;
        assert_eq!(report["escalations"], 1, "{report}");
        run_job(&app, "sla-sweep").await;
        let second = emails_starting(&app, "Escalation 2:");
        assert_eq!(second.len(), 1, "{second:?}");
        assert_eq!(second[0].1, ["ada@example.com"]);

        assert_eq!(audit_actions(&app, "stage.reminded").await, 1);
        assert_eq!(audit_actions(&app, "stage.escalated").await, 2);
        let review = flow.review().await;
        assert_eq!(review["state"], "in_progress");
    }

    async fn a_re_review_opens_before_expiry_and_expiry_is_announced_once(app) {
        let id = approve(&app, "model-a", None).await;
        let status: Value = app
            .get("/v1/status/acme/model-a", &app.token("ivan", &[Role::Integrator]))
            .await
            .json()
            .await
            .unwrap();
        let valid_until: DateTime<Utc> = status["valid_until"].as_str().unwrap().parse().unwrap();
        let tier = status["tier"].as_str().unwrap().to_owned();
        let lead = match tier.as_str() {
            "low" => 60,
            "medium" => 45,
            "high" => 30,
            _ => 21,
        };
        let now = app.clock.now();
        let to_lead = valid_until - TimeDelta::days(lead) - now + TimeDelta::minutes(1);
        assert_eq!(run_job(&app, "re-review-sweep").await["opened"], json!([]));
        advance(&app, &format!("PT{}S", to_lead.num_seconds())).await;
        let report = run_job(&app, "re-review-sweep").await;
        assert_eq!(report["opened"].as_array().unwrap().len(), 1, "{report}");
        let again = run_job(&app, "re-review-sweep").await;
        assert_eq!(again["opened"], json!([]), "{again}");
        let opened = emails_starting(&app, "Re-review opened");
        assert_eq!(opened.len(), 1, "{opened:?}");
        assert_eq!(opened[0].1, ["victor@example.com"]);
        let re_review: Value = app
            .get(
                &format!("/v1/reviews/{}", report["opened"][0].as_str().unwrap()),
                &app.manager(),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(re_review["kind"], "re_review");
        let carried = &re_review["answers"]["security"]["iso27001"];
        assert_eq!(carried["carried_forward"], true, "answers are carried forward: {carried}");
        assert_eq!(re_review["answers"]["intake"]["use_case"]["carried_forward"], true);

        advance(&app, &format!("PT{}S", (lead * 86_400))).await;
        let status: Value = app
            .get("/v1/status/acme/model-a", &app.token("ivan", &[Role::Integrator]))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(status["status"], "expired");
        let report = run_job(&app, "re-review-sweep").await;
        assert_eq!(report["expired"], json!([id]), "{report}");
        assert_eq!(run_job(&app, "re-review-sweep").await["expired"], json!([]));
        assert_eq!(emails_starting(&app, "Approval expired").len(), 1);
        assert_eq!(audit_actions(&app, "status.expired").await, 1);
    }

    async fn the_digest_lists_pending_work_once_a_day(app) {
        let _flow = Flow::start(&app).await;
        settle().await;
        let report = run_job(&app, "digest").await;
        assert_eq!(report["sent"], 1, "{report}");
        assert_eq!(run_job(&app, "digest").await["sent"], 0);
        let digests = emails_starting(&app, "Your reviews for");
        assert_eq!(digests.len(), 1);
        assert_eq!(digests[0].1, ["victor@example.com"]);
        advance(&app, "P6D").await;
        assert_eq!(run_job(&app, "digest").await["sent"], 1);
        let latest = app.outbox_emails().pop().unwrap();
        assert!(latest["subject"].as_str().unwrap().contains("1 overdue"), "{latest}");
        assert!(latest["html"].as_str().unwrap().contains("overdue"));
    }

    async fn jobs_and_the_clock_are_admin_only_and_measured(app) {
        let victor = app.manager();
        let response = app.post("/v1/admin/jobs/sla-sweep/run", &victor, &json!({})).await;
        assert_problem(response, 403).await;
        let response = app.post("/v1/admin/jobs/tidy-up/run", &app.admin(), &json!({})).await;
        assert_problem(response, 404).await;
        let response = app.post("/v1/admin/clock", &app.admin(), &json!({"advance": "three days"})).await;
        assert_problem(response, 422).await;
        let before = app.clock.now();
        let now = advance(&app, "P3D").await;
        assert_eq!(now - before, TimeDelta::days(3));
        run_job(&app, "sla-sweep").await;
        run_job(&app, "outbox").await;
        let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains("clearance_job_last_run_timestamp_seconds{job=\"sla-sweep\"}"), "{metrics}");
        assert!(metrics.contains("clearance_job_runs_total{job=\"outbox\",outcome=\"ok\"} 1"), "{metrics}");
        assert!(metrics.contains("clearance_outbox_messages{state=\"pending\"}"), "{metrics}");
    }
}

#[tokio::test]
async fn the_clock_cannot_be_moved_without_time_skipping_mode() {
    let app = TestApp::spawn_with(Backend::Sqlite, |raw| raw.clock = "system".into())
        .await
        .unwrap();
    let response = app
        .post("/v1/admin/clock", &app.admin(), &json!({"advance": "P1D"}))
        .await;
    assert_problem(response, 404).await;
}

#[tokio::test]
async fn two_instances_sweeping_at_once_send_each_email_once() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        crate::helpers::skip(crate::helpers::NO_DATABASE);
        return;
    };
    let other = app.spawn_beside(|_| {}).await;
    for i in 0..4 {
        let provider = format!("p{i}");
        app.create_provider(&provider).await;
        Flow::start_for(&app, &provider, None).await;
    }
    app.get("/v1/admin/people", &app.admin()).await;
    settle().await;
    for step in ["P5DT1M", "P2D", "P5D"] {
        advance(&app, step).await;
        other.clock.advance(app.clock.now() - other.clock.now());
        let runs = (0..3).flat_map(|_| [run_job(&app, "sla-sweep"), run_job(&other, "sla-sweep")]);
        futures_util::future::join_all(runs).await;
    }
    assert_eq!(emails_starting(&app, "Reminder:").len(), 4);
    assert_eq!(emails_starting(&app, "Escalation 1:").len(), 4);
    assert_eq!(emails_starting(&app, "Escalation 2:").len(), 4);
}

/// Two instances running every job at once on one PostgreSQL: one re-review,
/// one expiry notice, and each webhook delivery exactly once.
#[tokio::test]
async fn two_instances_running_every_job_at_once_do_each_thing_once() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        crate::helpers::skip(crate::helpers::NO_DATABASE);
        return;
    };
    let other = app.spawn_beside(|_| {}).await;
    let receiver = crate::status::Receiver::start(0);
    app.post("/v1/webhooks", &app.admin(), &json!({"url": receiver.url}))
        .await;
    approve(&app, "shared", None).await;
    for step in ["P700D", "P40D"] {
        advance(&app, step).await;
        other.clock.advance(app.clock.now() - other.clock.now());
        let jobs = ["sla-sweep", "re-review-sweep", "digest", "outbox"];
        let runs = (0..3).flat_map(|_| {
            jobs.iter()
                .flat_map(|job| [run_job(&app, job), run_job(&other, job)])
        });
        futures_util::future::join_all(runs).await;
    }
    assert_eq!(emails_starting(&app, "Re-review opened").len(), 1);
    assert_eq!(emails_starting(&app, "Approval expired").len(), 1);
    let page: Value = app
        .get("/v1/reviews?model=shared", &app.admin())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        2,
        "the approval and one re-review"
    );
    let ids: Vec<String> = receiver
        .deliveries()
        .iter()
        .map(|(headers, _)| {
            headers
                .get("clearance-delivery")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert!(!ids.is_empty());
    assert_eq!(
        distinct.len(),
        ids.len(),
        "each delivery exactly once: {ids:?}"
    );
}

backend_tests! {
    async fn a_message_claimed_by_a_worker_that_died_is_delivered_after_its_lease(app) {
        ensure_queued_email(&app).await;
        // A worker claimed everything and died mid-delivery.
        app.sql("UPDATE outbox_messages SET state = 'sending', attempts = 1");
        app.sql(&format!(
            "UPDATE outbox_messages SET locked_until = '{}'",
            (app.clock.now() + TimeDelta::minutes(5)).format("%Y-%m-%d %H:%M:%S")
        ));
        assert_eq!(run_job(&app, "outbox").await["claimed"], 0, "its lease still holds");
        advance(&app, "PT6M").await;
        let report = run_job(&app, "outbox").await;
        assert!(report["sent"].as_i64().unwrap() >= 1, "{report}");
        let pending: Value = app.get("/v1/admin/outbox?state=sending", &app.admin()).await.json().await.unwrap();
        assert_eq!(pending["items"], json!([]));
    }
}

async fn ensure_queued_email(app: &TestApp) {
    let flow = Flow::start(app).await;
    flow.through_intake(json!({})).await;
    assert!(
        !app.outbox_emails().is_empty(),
        "decision notices are queued"
    );
}
