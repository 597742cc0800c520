//! The intake of models nobody reviewed (issue 14): integrators' asks are
//! recorded, vendor managers list them, start reviews from them or dismiss
//! them, and new ones are in the daily digest.

use clearance::auth::Role;
use serde_json::{Value, json};

use crate::flow::Flow;
use crate::helpers::{assert_problem, error_fields};

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
}
