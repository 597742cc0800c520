//! The intake of models nobody reviewed (issue 14): integrators' asks are
//! recorded, vendor managers list them, start reviews from them or dismiss
//! them, and new ones are in the daily digest. One asker cannot grow it
//! without bound (issue 22): past its daily bound of new models its asks
//! are one counted line naming it, and lists and digest stay small.

use clearance::auth::Role;
use serde_json::{Value, json};

use crate::flow::Flow;
use crate::helpers::{assert_problem, error_fields};

/// Every request `state` lists, page after page of `limit`, as the vendor
/// manager sees them, and the last page.
async fn every_page(
    app: &crate::helpers::TestApp,
    state: &str,
    limit: usize,
) -> (Vec<Value>, Value) {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/intake?state={state}&limit={limit}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let response = app.get(&path, &app.manager()).await;
        assert_eq!(response.status(), 200, "{path}");
        let page: Value = response.json().await.unwrap();
        let got = page["items"].as_array().unwrap();
        assert!(got.len() <= limit, "a page holds at most `limit` items");
        items.extend(got.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (items, page),
        }
    }
}

/// A check of one made-up model per item, `n` of them from `first`.
fn made_up(first: usize, n: usize) -> Value {
    let items: Vec<Value> = (first..first + n)
        .map(|i| json!({"provider": "shadowco", "model": format!("made-up-{i}")}))
        .collect();
    json!({"items": items})
}

/// The requests `state` lists, as the vendor manager sees them.
async fn listed(app: &crate::helpers::TestApp, state: &str) -> Vec<Value> {
    let page: Value = app
        .get(&format!("/v1/intake?state={state}"), &app.manager())
        .await
        .json()
        .await
        .unwrap();
    page["items"].as_array().unwrap().clone()
}

backend_tests! {
    async fn asks_about_unreviewed_models_become_intake_requests(app) {
        let ci = app.token("ci-pipeline", &[Role::Integrator]);
        let bot = app.token("chat-bot", &[Role::Integrator]);
        assert_eq!(app.get("/v1/status/newco/shadow-1", &ci).await.status(), 200);
        assert_eq!(app.get("/v1/status/newco/shadow-1", &ci).await.status(), 200);
        let check = json!({"items": [
            {"provider": "newco", "model": "shadow-1", "use_case": "support-chat"},
            {"provider": "newco", "model": "Not A Slug"},
        ]});
        let checked: Value = app.post("/v1/status/check", &bot, &check).await.json().await.unwrap();
        assert_eq!(checked["results"][0]["status"], "not_reviewed");
        // A reviewed model is no request.
        Flow::start(&app).await;
        assert_eq!(app.get("/v1/status/anthropic/claude", &ci).await.status(), 200);

        let items = listed(&app, "open").await;
        assert_eq!(items.len(), 1, "{items:?}");
        let request = &items[0];
        assert_eq!((request["provider"].as_str(), request["model"].as_str()), (Some("newco"), Some("shadow-1")));
        assert_eq!(request["state"], "open");
        assert_eq!(request["asked"], 3);
        assert_eq!(request["use_cases"], json!(["support-chat"]));
        let by: Vec<(&str, i64)> = request["requested_by"].as_array().unwrap().iter()
            .map(|a| (a["sub"].as_str().unwrap(), a["asked"].as_i64().unwrap())).collect();
        assert_eq!(by, [("ci-pipeline", 2), ("chat-bot", 1)]);
        assert_eq!(request["first_seen"].as_str().unwrap(), request["last_seen"].as_str().unwrap(), "manual clock");

        // Integrators and reviewers do not see the intake.
        assert_problem(app.get("/v1/intake", &ci).await, 403).await;
        let reviewer = app.token("sam", &[Role::SecurityReviewer]);
        assert_problem(app.get("/v1/intake", &reviewer).await, 403).await;
        let bad = assert_problem(app.get("/v1/intake?state=closed", &app.manager()).await, 422).await;
        assert_eq!(error_fields(&bad), ["state"]);
    }

    async fn a_review_started_from_a_request_registers_the_provider_and_model(app) {
        let ci = app.token("ci-pipeline", &[Role::Integrator]);
        app.get("/v1/status/newco/shadow-1", &ci).await;
        let manager = app.manager();
        let started = app.post("/v1/intake/newco/shadow-1/review", &manager, &json!({})).await;
        assert_eq!(started.status(), 201);
        let location = started.headers()["location"].to_str().unwrap().to_owned();
        let review: Value = started.json().await.unwrap();
        assert_eq!(location, format!("/v1/reviews/{}", review["id"].as_str().unwrap()));
        assert_eq!((review["provider"].as_str(), review["model"].as_str()), (Some("newco"), Some("shadow-1")));
        let model: Value = app.get("/v1/providers/newco/models/shadow-1", &manager).await.json().await.unwrap();
        assert_eq!(model["name"], "shadow-1");
        let status: Value = app.get("/v1/status/newco/shadow-1", &ci).await.json().await.unwrap();
        assert_ne!(status["status"], "not_reviewed", "{status}");

        let started = listed(&app, "started").await;
        assert_eq!(started.len(), 1);
        assert_eq!(started[0]["review_id"], review["id"]);
        assert_eq!(started[0]["decided_by"], "victor");
        assert!(listed(&app, "open").await.is_empty());
        // Once is enough: the review is in progress.
        assert_problem(app.post("/v1/intake/newco/shadow-1/review", &manager, &json!({})).await, 409).await;
        // The audit log says who did it.
        let audit: Value = app.get("/v1/audit?action=intake.started", &app.admin()).await.json().await.unwrap();
        assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
        let created: Value = app.get("/v1/audit?action=model.created", &app.admin()).await.json().await.unwrap();
        assert_eq!(created["items"][0]["subject"], "model/newco/shadow-1");
        // A model nobody asked about has no request.
        assert_problem(app.post("/v1/intake/newco/other/review", &manager, &json!({})).await, 404).await;
        let unknown = app.post("/v1/intake/newco/nobody-asked/review", &manager, &json!({"workflow": "nope"})).await;
        assert_problem(unknown, 404).await;
    }

    async fn a_request_is_dismissed_with_a_reason_and_still_counts_asks(app) {
        let ci = app.token("ci-pipeline", &[Role::Integrator]);
        app.get("/v1/status/newco/shadow-1", &ci).await;
        let manager = app.manager();
        let missing = app.post("/v1/intake/newco/shadow-1/dismiss", &manager, &json!({})).await;
        assert_eq!(error_fields(&assert_problem(missing, 422).await), ["reason"]);
        let dismissed = app
            .post("/v1/intake/newco/shadow-1/dismiss", &manager, &json!({"reason": "use the approved model instead"}))
            .await;
        assert_eq!(dismissed.status(), 200);
        let request: Value = dismissed.json().await.unwrap();
        assert_eq!(request["state"], "dismissed");
        assert_eq!(request["reason"], "use the approved model instead");
        app.get("/v1/status/newco/shadow-1", &ci).await;
        let items = listed(&app, "dismissed").await;
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["asked"], 2, "later asks still count");
        assert!(listed(&app, "open").await.is_empty());
        assert_eq!(listed(&app, "all").await.len(), 1);
        assert_problem(app.post("/v1/intake/newco/never/dismiss", &manager, &json!({"reason": "x"})).await, 404).await;
        let integrator = app.post("/v1/intake/newco/shadow-1/dismiss", &ci, &json!({"reason": "x"})).await;
        assert_problem(integrator, 403).await;
    }

    async fn new_requests_are_in_the_vendor_managers_digest(app) {
        // The manager is known to the directory with an address.
        assert_eq!(app.get("/v1/providers", &app.manager()).await.status(), 200);
        let ci = app.token("ci-pipeline", &[Role::Integrator]);
        let check = json!({"items": [{"provider": "newco", "model": "shadow-1", "use_case": "support-chat"}]});
        assert_eq!(app.post("/v1/status/check", &ci, &check).await.status(), 200);
        // Written by the listing (or the periodic flush).
        assert_eq!(listed(&app, "open").await.len(), 1);
        let ran = app.post("/v1/admin/jobs/digest/run", &app.admin(), &json!({})).await;
        assert_eq!(ran.status(), 200);
        app.post("/v1/admin/jobs/outbox/run", &app.admin(), &json!({})).await;
        let emails = app.sent_emails().await;
        let digest = emails
            .iter()
            .find(|e| e["to"][0] == "victor@example.com")
            .unwrap_or_else(|| panic!("no digest for the manager in {emails:?}"));
        let text = digest["text"].as_str().unwrap();
        assert!(text.contains("Asked for, not reviewed"), "{text}");
        assert!(text.contains("newco/shadow-1"), "{text}");
        assert!(text.contains("for support-chat by ci-pipeline"), "{text}");
        assert!(!emails.iter().any(|e| e["to"][0] == "ci-pipeline@example.com"), "integrators get no digest");
    }

    async fn the_intake_is_paginated_with_limit_and_cursor(app) {
        let ci = app.token("ci-pipeline", &[Role::Integrator]);
        for i in 0..7 {
            assert_eq!(app.get(&format!("/v1/status/newco/shadow-{i}"), &ci).await.status(), 200);
            app.clock.advance(chrono::TimeDelta::seconds(1));
        }
        let first: Value = app.get("/v1/intake?limit=3", &app.manager()).await.json().await.unwrap();
        let names: Vec<&str> = first["items"].as_array().unwrap().iter()
            .map(|r| r["model"].as_str().unwrap()).collect();
        assert_eq!(names, ["shadow-6", "shadow-5", "shadow-4"], "most recently asked first");
        assert!(first["next_cursor"].is_string(), "{first}");
        let (all, last) = every_page(&app, "open", 3).await;
        let mut models: Vec<&str> = all.iter().map(|r| r["model"].as_str().unwrap()).collect();
        assert_eq!(models.len(), 7);
        models.sort();
        models.dedup();
        assert_eq!(models.len(), 7, "each request once");
        assert!(last["next_cursor"].is_null());

        for (query, field) in [("limit=0", "limit"), ("limit=201", "limit"), ("limit=ten", "limit"), ("cursor=bm90LWEtY3Vyc29y", "cursor"), ("cursor=%2A%2A", "cursor")] {
            let bad = assert_problem(app.get(&format!("/v1/intake?{query}"), &app.manager()).await, 422).await;
            assert_eq!(error_fields(&bad), [field], "{query}");
        }
    }

    async fn one_asker_adds_at_most_its_bound_of_new_models_a_day_and_is_named_for_the_rest(app) {
        let flood = app.token("flood-bot", &[Role::Integrator]);
        let ci = app.token("ci-pipeline", &[Role::Integrator]);
        assert_eq!(app.post("/v1/status/check", &flood, &made_up(0, 1000)).await.status(), 200);
        assert_eq!(app.get("/v1/status/newco/shadow-1", &ci).await.status(), 200);

        let (open, last) = every_page(&app, "open", 200).await;
        // The default bound: 100 new models per asker a day.
        let flooded = open.iter().filter(|r| r["requested_by"][0]["sub"] == "flood-bot").count();
        assert_eq!(flooded, 100, "{} requests", open.len());
        assert!(open.iter().any(|r| r["model"] == "shadow-1"), "another asker's request is still recorded");
        assert_eq!(open.len(), 101);
        let over = last["over_bound"].as_array().unwrap();
        assert_eq!(over.len(), 1, "{over:?}");
        assert_eq!(over[0]["sub"], "flood-bot");
        assert_eq!((over[0]["names"].as_i64(), over[0]["asked"].as_i64()), (Some(900), Some(900)));

        // Models it already asked about keep counting; the bound is per day.
        let again = json!({"items": [{"provider": "shadowco", "model": "made-up-0"}]});
        assert_eq!(app.post("/v1/status/check", &flood, &again).await.status(), 200);
        app.clock.advance(chrono::TimeDelta::days(1));
        assert_eq!(app.post("/v1/status/check", &flood, &made_up(5000, 3)).await.status(), 200);
        let (open, _) = every_page(&app, "open", 200).await;
        assert_eq!(open.len(), 104);
        let zero = open.iter().find(|r| r["model"] == "made-up-0").unwrap();
        assert_eq!(zero["asked"], 2);
    }

    async fn use_cases_past_the_bound_of_a_model_and_asker_are_counted_as_other(app) {
        let bot = app.token("chat-bot", &[Role::Integrator]);
        let items: Vec<Value> = (0..30)
            .map(|i| json!({"provider": "newco", "model": "shadow-1", "use_case": format!("case-{i:02}")}))
            .collect();
        assert_eq!(app.post("/v1/status/check", &bot, &json!({"items": items})).await.status(), 200);
        let open = listed(&app, "open").await;
        assert_eq!(open[0]["asked"], 30);
        let cases: Vec<&str> = open[0]["use_cases"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
        assert_eq!(cases.len(), 21, "{cases:?}");
        assert!(cases.contains(&"other"), "{cases:?}");
    }

    async fn the_digest_lists_at_most_twenty_intake_requests_and_links_to_the_rest(app) {
        assert_eq!(app.get("/v1/providers", &app.manager()).await.status(), 200);
        let flood = app.token("flood-bot", &[Role::Integrator]);
        assert_eq!(app.post("/v1/status/check", &flood, &made_up(0, 1000)).await.status(), 200);
        assert_eq!(listed(&app, "open").await.len(), 50, "a page");
        let ran = app.post("/v1/admin/jobs/digest/run", &app.admin(), &json!({})).await;
        assert_eq!(ran.status(), 200);
        let emails = app.sent_emails().await;
        let digest = emails
            .iter()
            .find(|e| e["to"][0] == "victor@example.com")
            .unwrap_or_else(|| panic!("no digest for the manager in {emails:?}"));
        let text = digest["text"].as_str().unwrap();
        let listed_models = text.matches("on the intake page").count();
        assert_eq!(listed_models, 20, "{text}");
        assert!(text.contains("and 80 more models asked for"), "{text}");
        assert!(text.contains("and 900 more models asked for by flood-bot"), "{text}");
        assert!(text.contains("/intake#intake-shadowco-made-up-"), "{text}");
        assert!(!text.contains("POST"), "no API calls to make: {text}");
        assert!(text.len() < 20_000, "the digest is {} bytes", text.len());
    }
}
