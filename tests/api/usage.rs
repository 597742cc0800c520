//! Usage and impact (issue 14): every answered lookup and check item about a
//! catalogued model is counted per hour, asker and use case; a suspension
//! previews who it would deny (the integrators of the last 30 days) and
//! emails them when it happens.

use chrono::TimeDelta;
use clearance::auth::Role;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, error_fields};
use crate::status::approve;

async fn usage(app: &TestApp, path: &str) -> Value {
    let response = app.get(path, &app.manager()).await;
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

/// The `hours` of a usage report as (hour offset from `start`, sub, use
/// case, allowed, denied).
fn hours(report: &Value, start: &str) -> Vec<(i64, String, Option<String>, i64, i64)> {
    let start = chrono::DateTime::parse_from_rfc3339(start).unwrap();
    report["hours"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let hour = chrono::DateTime::parse_from_rfc3339(h["hour"].as_str().unwrap()).unwrap();
            (
                (hour - start).num_hours(),
                h["sub"].as_str().unwrap().to_owned(),
                h["use_case"].as_str().map(str::to_owned),
                h["allowed"].as_i64().unwrap(),
                h["denied"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn subs(integrators: &Value) -> Vec<&str> {
    integrators
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["sub"].as_str().unwrap())
        .collect()
}

backend_tests! {
    async fn lookups_and_checks_are_counted_per_hour_asker_and_use_case(app) {
        approve(&app, "open", None).await;
        approve(&app, "scoped", Some(json!({"use_cases": ["support-chat"]}))).await;
        let start = hour_of(&app);
        let ci = app.token("ci-pipeline", &[Role::Integrator]);
        let bot = app.token("chat-bot", &[Role::Integrator]);
        for _ in 0..2 {
            assert_eq!(app.get("/v1/status/acme/open", &ci).await.status(), 200);
        }
        assert_eq!(app.get("/v1/status/acme/scoped", &ci).await.status(), 200);
        let check = json!({"items": [
            {"provider": "acme", "model": "scoped", "use_case": "support-chat"},
            {"provider": "acme", "model": "scoped", "use_case": "hr-screening"},
            {"provider": "acme", "model": "open"},
            {"provider": "newco", "model": "ghost"},
        ]});
        let checked: Value = app.post("/v1/status/check", &bot, &check).await.json().await.unwrap();
        let allowed: Vec<bool> = checked["results"].as_array().unwrap().iter()
            .map(|r| r["allow"].as_bool().unwrap()).collect();
        assert_eq!(allowed, [true, false, true, false]);
        // A refused check was answered nothing, and counts nothing.
        let refused = json!({"items": [{"provider": "acme", "model": "open"}, {"provider": 5}]});
        assert_problem(app.post("/v1/status/check", &bot, &refused).await, 422).await;
        app.clock.advance(TimeDelta::hours(1));
        assert_eq!(app.get("/v1/status/acme/scoped", &ci).await.status(), 200);

        let report = usage(&app, "/v1/models/acme/scoped/usage").await;
        assert_eq!((report["allowed"].as_i64(), report["denied"].as_i64()), (Some(3), Some(1)));
        let s = |t: &str| t.to_owned();
        assert_eq!(hours(&report, &start), [
            (0, s("chat-bot"), Some(s("hr-screening")), 0, 1),
            (0, s("chat-bot"), Some(s("support-chat")), 1, 0),
            (0, s("ci-pipeline"), None, 1, 0),
            (1, s("ci-pipeline"), None, 1, 0),
        ]);
        assert_eq!(subs(&report["integrators"]), ["chat-bot", "ci-pipeline"]);
        let bot_usage = &report["integrators"][0];
        assert_eq!(bot_usage["use_cases"], json!(["hr-screening", "support-chat"]));
        assert_eq!(bot_usage["email"], "chat-bot@example.com");
        assert_eq!(report["integrators"][1]["last_hour"], report["hours"][3]["hour"]);

        let open = usage(&app, "/v1/models/acme/open/usage").await;
        assert_eq!(hours(&open, &start), [
            (0, s("chat-bot"), None, 1, 0),
            (0, s("ci-pipeline"), None, 2, 0),
        ]);
        // A period: the second hour only.
        let from = report["hours"][3]["hour"].as_str().unwrap();
        let later = usage(&app, &format!("/v1/models/acme/scoped/usage?from={}", from.replace('+', "%2B"))).await;
        assert_eq!(hours(&later, &start), [(1, s("ci-pipeline"), None, 1, 0)]);
        assert_eq!(later["allowed"], 1);

        // Vendor managers and admins read it; nobody else.
        assert_eq!(app.get("/v1/models/acme/scoped/usage", &app.admin()).await.status(), 200);
        assert_problem(app.get("/v1/models/acme/scoped/usage", &ci).await, 403).await;
        let reviewer = app.token("sam", &[Role::SecurityReviewer]);
        assert_problem(app.get("/v1/models/acme/scoped/usage", &reviewer).await, 403).await;
        assert_problem(app.get("/v1/models/acme/ghost/usage", &app.manager()).await, 404).await;
        let bad = assert_problem(app.get("/v1/models/acme/open/usage?from=yesterday", &app.manager()).await, 422).await;
        assert_eq!(error_fields(&bad), ["from"]);
        let long = "/v1/models/acme/open/usage?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z";
        let bad = assert_problem(app.get(long, &app.manager()).await, 422).await;
        assert_eq!(error_fields(&bad), ["to"]);
        let far = "/v1/models/acme/open/usage?to=0001-01-01T00:00:00Z";
        assert_eq!(app.get(far, &app.manager()).await.status(), 200, "a period at the start of time");
    }

    async fn usage_hours_are_paginated_with_limit_and_cursor(app) {
        approve(&app, "open", None).await;
        let bot = app.token("chat-bot", &[Role::Integrator]);
        let items: Vec<Value> = ["a", "b", "c", "d", "e"].iter()
            .map(|u| json!({"provider": "acme", "model": "open", "use_case": format!("case-{u}")}))
            .collect();
        assert_eq!(app.post("/v1/status/check", &bot, &json!({"items": items})).await.status(), 200);
        let first = usage(&app, "/v1/models/acme/open/usage?limit=2").await;
        assert_eq!(first["hours"].as_array().unwrap().len(), 2);
        assert_eq!(first["allowed"], 5, "totals cover the whole period");
        let mut cases: Vec<String> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/models/acme/open/usage?limit=2&cursor={c}"),
                None => "/v1/models/acme/open/usage?limit=2".to_owned(),
            };
            let page = usage(&app, &path).await;
            cases.extend(page["hours"].as_array().unwrap().iter().map(|h| h["use_case"].as_str().unwrap().to_owned()));
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(cases, ["case-a", "case-b", "case-c", "case-d", "case-e"]);
        for (query, field) in [("limit=0", "limit"), ("limit=500", "limit"), ("cursor=bm9wZQ", "cursor")] {
            let bad = assert_problem(app.get(&format!("/v1/models/acme/open/usage?{query}"), &app.manager()).await, 422).await;
            assert_eq!(error_fields(&bad), [field], "{query}");
        }
    }

    async fn without_a_use_case_catalogue_use_cases_past_the_bound_count_as_other(app) {
        approve(&app, "open", None).await;
        let bot = app.token("chat-bot", &[Role::Integrator]);
        let items: Vec<Value> = (0..1000)
            .map(|i| json!({"provider": "acme", "model": "open", "use_case": format!("made-up-{i}")}))
            .collect();
        assert_eq!(app.post("/v1/status/check", &bot, &json!({"items": items})).await.status(), 200);
        let mut rows: Vec<(String, i64)> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/models/acme/open/usage?limit=200&cursor={c}"),
                None => "/v1/models/acme/open/usage?limit=200".to_owned(),
            };
            let page = usage(&app, &path).await;
            assert_eq!(page["allowed"], 1000);
            rows.extend(page["hours"].as_array().unwrap().iter()
                .map(|h| (h["use_case"].as_str().unwrap().to_owned(), h["allowed"].as_i64().unwrap())));
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        // The default bound: 50 use cases per asker and hour, then `other`.
        assert_eq!(rows.len(), 51, "{rows:?}");
        let other = rows.iter().find(|(u, _)| u == "other").map(|(_, n)| *n);
        assert_eq!(other, Some(950));
    }

    async fn a_suspension_previews_and_emails_the_integrators_of_the_last_30_days(app) {
        approve(&app, "open", None).await;
        approve(&app, "other", None).await;
        let old = app.token("old-batch", &[Role::Integrator]);
        let gateway = app.token("gateway", &[Role::Integrator]);
        let bystander = app.token("bystander", &[Role::Integrator]);
        assert_eq!(app.get("/v1/status/acme/open", &old).await.status(), 200);
        app.clock.advance(TimeDelta::days(2));
        let check = json!({"items": [{"provider": "acme", "model": "open", "use_case": "support-chat"}]});
        assert_eq!(app.post("/v1/status/check", &gateway, &check).await.status(), 200);
        assert_eq!(app.get("/v1/status/acme/open", &gateway).await.status(), 200);
        assert_eq!(app.get("/v1/status/acme/other", &bystander).await.status(), 200);
        // `old-batch` asked 31 days ago, `gateway` 29 days ago.
        app.clock.advance(TimeDelta::days(29));
        let emails_before = app.outbox_emails().len();

        let preview = app.post("/v1/models/acme/open/suspend", &app.admin(), &json!({"dry_run": true})).await;
        assert_eq!(preview.status(), 200);
        let preview: Value = preview.json().await.unwrap();
        assert_eq!(preview["dry_run"], true);
        assert_eq!(preview["subject"], "acme/open");
        assert_eq!(subs(&preview["would_be_denied"]), ["gateway"]);
        let denied = &preview["would_be_denied"][0];
        assert_eq!(denied["email"], "gateway@example.com");
        assert_eq!((denied["allowed"].as_i64(), denied["denied"].as_i64()), (Some(2), Some(0)));
        assert_eq!(denied["use_cases"], json!(["support-chat"]));
        assert_eq!(denied["models"], json!(["open"]));
        assert_eq!(preview["clearances"][0]["status"], "approved");
        // Nothing changed: still approved, nobody told.
        let status: Value = app.get("/v1/status/acme/open", &gateway).await.json().await.unwrap();
        assert_eq!(status["status"], "approved");
        assert_eq!(app.outbox_emails().len(), emails_before);
        // A provider's preview covers its models' integrators.
        let wide: Value = app.post("/v1/providers/acme/suspend", &app.admin(), &json!({"dry_run": true}))
            .await.json().await.unwrap();
        assert_eq!(subs(&wide["would_be_denied"]), ["gateway", "bystander"]);
        assert_eq!(wide["clearances"].as_array().unwrap().len(), 2);

        // Without `dry_run` a reason is needed.
        let bad = assert_problem(app.post("/v1/models/acme/open/suspend", &app.admin(), &json!({})).await, 422).await;
        assert_eq!(error_fields(&bad), ["reason"]);
        let bad = assert_problem(app.post("/v1/models/acme/open/suspend", &app.admin(), &json!({"dry_run": "yes"})).await, 422).await;
        assert_eq!(error_fields(&bad), ["dry_run"]);
        assert_problem(app.post("/v1/models/acme/open/suspend", &gateway, &json!({"dry_run": true})).await, 403).await;
        assert_problem(app.post("/v1/models/acme/ghost/suspend", &app.admin(), &json!({"dry_run": true})).await, 404).await;

        let suspended = app.post("/v1/models/acme/open/suspend", &app.admin(),
            &json!({"reason": "Provider incident under investigation"})).await;
        assert_eq!(suspended.status(), 200);
        let suspended: Value = suspended.json().await.unwrap();
        assert_eq!(suspended[0]["status"], "suspended");
        let sent = app.sent_emails().await;
        let to = |address: &str| -> Vec<&Value> {
            sent.iter().filter(|e| e["to"].as_array().unwrap().iter().any(|t| t == address)).collect()
        };
        let told = to("gateway@example.com");
        assert_eq!(told.len(), 1, "{sent:?}");
        assert_eq!(told[0]["subject"], "Suspended: open by ACME");
        let text = told[0]["text"].as_str().unwrap();
        assert!(text.contains("Provider incident under investigation") && text.contains("gateway"), "{text}");
        assert_eq!(told[0]["to"].as_array().unwrap().len(), 1, "each integrator is told alone");
        assert!(to("old-batch@example.com").is_empty() && to("bystander@example.com").is_empty());
        let events: Value = app.get("/v1/audit?action=status.suspended", &app.admin()).await.json().await.unwrap();
        assert_eq!(events["items"][0]["after"]["integrators_notified"], json!(["gateway"]));
        // Now it is suspended, there is nothing to preview.
        assert_problem(app.post("/v1/models/acme/open/suspend", &app.admin(), &json!({"dry_run": true})).await, 409).await;
    }
}

/// The start of the current hour of `app`'s clock, as RFC 3339.
pub fn hour_of(app: &TestApp) -> String {
    use clearance::clock::Clock;
    clearance::usage::floor_hour(app.clock.now()).to_rfc3339()
}
