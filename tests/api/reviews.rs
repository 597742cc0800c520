//! Reviews driven through the HTTP contract alone: the client reads the
//! workflow document, answers each questionnaire and signs stages off.

use clearance::auth::Role;
use serde_json::{Value, json};

use crate::flow::{Flow, fill};
use crate::helpers::{TestApp, assert_problem, error_fields};

fn stage_state(review: &Value, key: &str) -> String {
    review["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap()["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

backend_tests! {
    async fn the_workflow_document_has_every_question_inline(app) {
        let token = app.token("sam", &[Role::SecurityReviewer]);
        let list: Value = app.get("/v1/workflows", &token).await.json().await.unwrap();
        assert_eq!(list["items"][0]["id"], "model-provider");
        let doc: Value = app.get("/v1/workflows/model-provider", &token).await.json().await.unwrap();
        assert_eq!(doc["digest"].as_str().unwrap().len(), 64);
        let security = doc["stages"].as_array().unwrap().iter().find(|s| s["key"] == "security").unwrap();
        assert_eq!(security["after"], json!(["intake"]));
        assert_eq!(security["answered_by"], "supplier");
        assert_eq!(security["approvals"]["high"], 2);
        assert_eq!(security["sla"], "10d");
        let question = &security["questionnaire"]["sections"][0]["questions"][0];
        for key in ["id", "text", "type", "required", "controls"] {
            assert!(!question[key].is_null(), "{key} in {question}");
        }
        let rai = doc["stages"].as_array().unwrap().iter().find(|s| s["key"] == "responsible-ai").unwrap();
        assert_eq!(rai["tiers"], json!(["high", "critical"]));
        assert_problem(app.get("/v1/workflows/nope", &token).await, 404).await;
        assert_problem(app.get("/v1/workflows", &app.token("ci", &[Role::Integrator])).await, 403).await;
    }

    async fn a_low_tier_review_runs_from_intake_to_approved(app) {
        let flow = Flow::start(&app).await;
        let review = flow.review().await;
        assert_eq!(review["tier"], "low");
        assert_eq!(review["workflow"]["id"], "model-provider");
        assert_eq!(stage_state(&review, "intake"), "awaiting_answers");
        assert_eq!(stage_state(&review, "security"), "blocked");

        flow.through_intake(json!({})).await;
        let review = flow.review().await;
        assert_eq!(review["tier"], "low");
        assert_eq!(stage_state(&review, "security"), "awaiting_answers");
        assert_eq!(stage_state(&review, "privacy"), "awaiting_answers", "security and privacy run in parallel");
        assert_eq!(stage_state(&review, "responsible-ai"), "skipped");

        let victor = app.token("victor", &[Role::VendorManager]);
        flow.answer_and_submit(&victor, "security", json!({})).await;
        flow.answer_and_submit(&victor, "privacy", json!({})).await;
        flow.approve(&app.token("sam", &[Role::SecurityReviewer]), "security").await;
        flow.approve(&app.token("pia", &[Role::PrivacyReviewer]), "privacy").await;

        let review = flow.review().await;
        assert_eq!(review["state"], "approved");
        assert_eq!(stage_state(&review, "final-approval"), "skipped");
        assert_eq!(review["valid_until"], "2028-03-01T09:00:00Z", "decision time + 730 days");
        assert_eq!(review["answers"]["security"]["iso27001"]["value"], true);
        let decisions = review["decisions"].as_array().unwrap();
        assert_eq!(decisions.len(), 3);
        let actions: Vec<&str> = review["timeline"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions.first(), Some(&"review.started"));
        assert_eq!(actions.iter().filter(|a| **a == "stage.decided").count(), 3);
        let emails = app.sent_emails().await;
        assert!(emails.iter().any(|e| e["subject"].as_str().unwrap().contains("approved") && e["to"][0] == "victor@example.com"), "{emails:?}");
    }

    async fn a_high_tier_review_needs_responsible_ai_two_security_approvers_and_the_approver(app) {
        let flow = Flow::start(&app).await;
        flow.through_intake(json!({"data_classes": ["internal", "personal"], "affects_people": true})).await;
        let review = flow.review().await;
        assert_eq!(review["tier"], "high");
        let reason = review["tier_reason"].as_str().unwrap();
        assert!(reason.starts_with("the answer to \"") && reason.ends_with("in the Intake and risk tiering stage"), "{reason}");
        assert_eq!(stage_state(&review, "responsible-ai"), "awaiting_answers");

        let victor = app.token("victor", &[Role::VendorManager]);
        for stage in ["security", "privacy", "responsible-ai"] {
            flow.answer_and_submit(&victor, stage, json!({})).await;
        }
        let sam = app.token("sam", &[Role::SecurityReviewer]);
        flow.approve(&sam, "security").await;
        let again = flow.decide(&sam, "security", json!({"decision": "approve"})).await;
        let problem = assert_problem(again, 403).await;
        assert!(problem["type"].as_str().unwrap().ends_with("segregation-of-duties"), "{problem}");
        let review = flow.review().await;
        let security = review["stages"].as_array().unwrap().iter().find(|s| s["key"] == "security").unwrap().clone();
        assert_eq!(security["approvals_required"], 2);
        assert_eq!(security["state"], "in_review");
        flow.approve(&app.token("sue", &[Role::SecurityReviewer]), "security").await;
        flow.approve(&app.token("pia", &[Role::PrivacyReviewer]), "privacy").await;

        let review = flow.review().await;
        assert_eq!(review["state"], "in_progress", "not approved without the responsible-AI stage");
        assert_eq!(stage_state(&review, "final-approval"), "blocked");
        flow.approve(&app.token("rae", &[Role::RaiReviewer]), "responsible-ai").await;
        let review = flow.review().await;
        assert_eq!(review["state"], "in_progress", "not approved without the final approver");
        assert_eq!(stage_state(&review, "final-approval"), "awaiting_answers");

        flow.answer_and_submit(&app.token("vera", &[Role::VendorManager]), "final-approval", json!({})).await;
        let not_an_approver = flow.decide(&sam, "final-approval", json!({"decision": "approve"})).await;
        assert_problem(not_an_approver, 403).await;
        flow.approve(&app.token("alex", &[Role::Approver]), "final-approval").await;
        let review = flow.review().await;
        assert_eq!(review["state"], "approved");
        assert_eq!(review["valid_until"], "2026-08-29T09:00:00Z", "decision time + 180 days at high");
    }

    async fn conditions_make_an_approval_conditional(app) {
        let flow = Flow::start(&app).await;
        flow.through_intake(json!({})).await;
        let victor = app.token("victor", &[Role::VendorManager]);
        flow.answer_and_submit(&victor, "security", json!({})).await;
        flow.answer_and_submit(&victor, "privacy", json!({})).await;
        let sam = app.token("sam", &[Role::SecurityReviewer]);
        let response = flow.decide(&sam, "security", json!({"decision": "approve", "conditions": {"regions": ["eu", "uk"], "features_off": ["web_grounding"]}})).await;
        assert_eq!(response.status(), 200);
        let response = flow.decide(&app.token("pia", &[Role::PrivacyReviewer]), "privacy", json!({"decision": "approve", "conditions": {"regions": ["eu"], "data_classes": ["public", "internal"]}})).await;
        let review: Value = response.json().await.unwrap();
        assert_eq!(review["state"], "approved_with_conditions");
        assert_eq!(review["conditions"], json!({"regions": ["eu"], "data_classes": ["public", "internal"], "features_off": ["web_grounding"]}));
    }

    async fn whoever_started_the_review_may_not_approve_it(app) {
        let flow = Flow::start(&app).await;
        let vera = app.token("vera", &[Role::VendorManager]);
        flow.answer_and_submit(&vera, "intake", json!({})).await;
        let victor = app.token("victor", &[Role::VendorManager]);
        let problem = assert_problem(flow.decide(&victor, "intake", json!({"decision": "approve"})).await, 403).await;
        assert_eq!(problem["type"], "/problems/segregation-of-duties");
        let problem = assert_problem(flow.decide(&vera, "intake", json!({"decision": "approve"})).await, 403).await;
        assert!(problem["detail"].as_str().unwrap().contains("answered"), "{problem}");
    }

    async fn a_stale_if_match_is_412(app) {
        let flow = Flow::start(&app).await;
        let victor = app.token("victor", &[Role::VendorManager]);
        let response = app.get(&flow.path(""), &victor).await;
        let tag = response.headers()["etag"].to_str().unwrap().to_owned();
        assert_eq!(tag, "\"1\"");
        let answers = json!({"answers": {"use_case": "Support chat"}});
        let first = app.put(&flow.path("/stages/intake/answers"), &victor, &answers, Some(&tag)).await;
        assert_eq!(first.status(), 200);
        assert_eq!(first.headers()["etag"], "\"2\"");
        let second = app.put(&flow.path("/stages/intake/answers"), &victor, &json!({"answers": {"use_case": "Overwrite"}}), Some(&tag)).await;
        assert_problem(second, 412).await;
        let review = flow.review().await;
        assert_eq!(review["answers"]["intake"]["use_case"]["value"], "Support chat");
    }

    async fn answers_of_the_wrong_type_are_refused_per_question(app) {
        let flow = Flow::start(&app).await;
        let victor = app.token("victor", &[Role::VendorManager]);
        let body = json!({"answers": {"affects_people": "yes", "data_classes": ["public", "telepathic"], "go_live_date": "next week", "no_such_question": 1, "use_case": "ok"}});
        let problem = assert_problem(app.put(&flow.path("/stages/intake/answers"), &victor, &body, None).await, 422).await;
        assert_eq!(error_fields(&problem), ["affects_people", "data_classes", "go_live_date", "no_such_question"]);
        let review = flow.review().await;
        assert!(review["answers"]["intake"].is_null(), "nothing was saved: {}", review["answers"]);
    }

    async fn submitting_with_required_answers_missing_lists_them(app) {
        let flow = Flow::start(&app).await;
        let victor = app.token("victor", &[Role::VendorManager]);
        app.put(&flow.path("/stages/intake/answers"), &victor, &json!({"answers": {"use_case": "Support chat"}}), None).await;
        let problem = assert_problem(app.post(&flow.path("/stages/intake/submit"), &victor, &json!({})).await, 422).await;
        let fields = error_fields(&problem);
        assert!(fields.contains(&"data_classes".to_owned()) && !fields.contains(&"use_case".to_owned()), "{fields:?}");
        assert_eq!(stage_state(&flow.review().await, "intake"), "awaiting_answers");
    }

    async fn an_action_the_state_does_not_allow_is_409(app) {
        let flow = Flow::start(&app).await;
        let problem = assert_problem(flow.decide(&app.token("vera", &[Role::VendorManager]), "intake", json!({"decision": "approve"})).await, 409).await;
        assert!(problem["detail"].as_str().unwrap().contains("awaiting_answers"), "{problem}");
        let victor = app.token("victor", &[Role::VendorManager]);
        let problem = assert_problem(app.put(&flow.path("/stages/security/answers"), &victor, &json!({"answers": {}}), None).await, 409).await;
        assert!(problem["detail"].as_str().unwrap().contains("blocked"), "{problem}");
        assert_problem(app.post(&flow.path("/stages/nope/submit"), &victor, &json!({})).await, 404).await;
        assert_problem(app.get("/v1/reviews/00000000-0000-0000-0000-000000000000", &victor).await, 404).await;
    }

    async fn changes_requested_send_a_stage_back(app) {
        let flow = Flow::start(&app).await;
        let victor = app.token("victor", &[Role::VendorManager]);
        flow.answer_and_submit(&victor, "intake", json!({})).await;
        let vera = app.token("vera", &[Role::VendorManager]);
        let no_comment = flow.decide(&vera, "intake", json!({"decision": "request_changes"})).await;
        assert_eq!(error_fields(&assert_problem(no_comment, 422).await), ["comment"]);
        let response = flow.decide(&vera, "intake", json!({"decision": "request_changes", "comment": "Name the business owner."})).await;
        assert_eq!(response.status(), 200);
        assert_eq!(stage_state(&flow.review().await, "intake"), "awaiting_answers");
    }

    async fn a_rejected_stage_rejects_the_review(app) {
        let flow = Flow::start(&app).await;
        flow.answer_and_submit(&app.token("victor", &[Role::VendorManager]), "intake", json!({})).await;
        let response = flow.decide(&app.token("vera", &[Role::VendorManager]), "intake", json!({"decision": "reject", "comment": "Out of policy."})).await;
        let review: Value = response.json().await.unwrap();
        assert_eq!(review["state"], "rejected");
        assert!(review["decided_at"].is_string());
    }

    async fn the_tier_is_raised_with_a_reason_and_never_lowered(app) {
        let flow = Flow::start(&app).await;
        flow.through_intake(json!({})).await;
        let sam = app.token("sam", &[Role::SecurityReviewer]);
        let lower = app.post(&flow.path("/tier"), &sam, &json!({"tier": "low", "reason": "x"})).await;
        assert_eq!(error_fields(&assert_problem(lower, 422).await), ["tier"]);
        let no_reason = app.post(&flow.path("/tier"), &sam, &json!({"tier": "high"})).await;
        assert_eq!(error_fields(&assert_problem(no_reason, 422).await), ["reason"]);
        let raised: Value = app.post(&flow.path("/tier"), &sam, &json!({"tier": "high", "reason": "Used for HR screening"})).await.json().await.unwrap();
        assert_eq!(raised["tier"], "high");
        assert_eq!(raised["tier_reason"], "Used for HR screening");
        assert_eq!(stage_state(&raised, "responsible-ai"), "awaiting_answers");
        assert_problem(app.post(&flow.path("/tier"), &app.token("ci", &[Role::Integrator]), &json!({"tier": "critical", "reason": "x"})).await, 403).await;
    }

    async fn a_risky_answer_opens_a_finding(app) {
        let flow = Flow::start(&app).await;
        flow.through_intake(json!({})).await;
        flow.answer_and_submit(&app.token("victor", &[Role::VendorManager]), "security", json!({"encryption_at_rest": false})).await;
        let review = flow.review().await;
        let findings = review["findings"].as_array().unwrap();
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0]["severity"], "critical");
        assert_eq!(findings[0]["state"], "open");
        assert!(findings[0]["source"].as_str().unwrap().contains("encryption_at_rest"));
    }

    async fn findings_are_raised_and_resolved_with_a_resolution(app) {
        let flow = Flow::start(&app).await;
        let sam = app.token("sam", &[Role::SecurityReviewer]);
        let response = app.post(&flow.path("/findings"), &sam, &json!({"severity": "high", "text": "No SBOM for the model server.", "owner": "victor"})).await;
        assert_eq!(response.status(), 201);
        let finding: Value = response.json().await.unwrap();
        let path = flow.path(&format!("/findings/{}", finding["id"].as_str().unwrap()));
        let no_resolution = app.patch(&path, &sam, &json!({"state": "resolved"}), None).await;
        assert_eq!(error_fields(&assert_problem(no_resolution, 422).await), ["resolution"]);
        let resolved: Value = app.patch(&path, &sam, &json!({"state": "resolved", "resolution": "SBOM received."}), None).await.json().await.unwrap();
        assert_eq!(resolved["state"], "resolved");
        let bad = app.post(&flow.path("/findings"), &sam, &json!({"severity": "apocalyptic", "text": "x"})).await;
        assert_eq!(error_fields(&assert_problem(bad, 422).await), ["severity"]);
    }

    async fn a_second_review_of_a_subject_in_progress_is_409(app) {
        let flow = Flow::start(&app).await;
        let again = app.post("/v1/reviews", &app.manager(), &json!({"provider": "anthropic", "model": "claude"})).await;
        let problem = assert_problem(again, 409).await;
        assert!(problem["detail"].as_str().unwrap().contains(&flow.id));
        let whole_provider = app.post("/v1/reviews", &app.manager(), &json!({"provider": "anthropic"})).await;
        assert_eq!(whole_provider.status(), 201, "a provider-wide review is another subject");
        let unknown = app.post("/v1/reviews", &app.manager(), &json!({"provider": "anthropic", "model": "nope", "workflow": "nope"})).await;
        assert_eq!(error_fields(&assert_problem(unknown, 422).await), ["model"]);
    }

    async fn a_withdrawn_review_stops(app) {
        let flow = Flow::start(&app).await;
        let victor = app.token("victor", &[Role::VendorManager]);
        let review: Value = app.post(&flow.path("/withdraw"), &victor, &json!({"reason": "Project cancelled"})).await.json().await.unwrap();
        assert_eq!(review["state"], "withdrawn");
        assert_problem(app.put(&flow.path("/stages/intake/answers"), &victor, &json!({"answers": {}}), None).await, 409).await;
    }

    async fn lists_filter_by_state_stage_assignee_and_overdue(app) {
        let flow = Flow::start(&app).await;
        let victor = app.token("victor", &[Role::VendorManager]);
        app.post(&flow.path("/stages/intake/assign"), &victor, &json!({"assignee": "victor"})).await;
        app.post("/v1/providers/anthropic/models", &victor, &json!({"slug": "haiku", "name": "Haiku"})).await;
        app.post("/v1/reviews", &victor, &json!({"provider": "anthropic", "model": "haiku"})).await;

        let count = |query: &'static str| {
            let token = victor.clone();
            let app = &app;
            async move {
                let page: Value = app.get(&format!("/v1/reviews{query}"), &token).await.json().await.unwrap();
                page["items"].as_array().unwrap().len()
            }
        };
        assert_eq!(count("").await, 2);
        assert_eq!(count("?model=claude").await, 1);
        assert_eq!(count("?state=in_progress&stage=intake").await, 2);
        assert_eq!(count("?stage=security").await, 0);
        assert_eq!(count("?assignee=victor").await, 1);
        assert_eq!(count("?overdue=true").await, 0);
        app.clock.advance(chrono::TimeDelta::days(6));
        assert_eq!(count("?overdue=true").await, 2, "intake's 5-day SLA has passed");
        assert_eq!(count("?state=approved").await, 0);
        assert_eq!(count("?limit=1").await, 1);
        let problem = assert_problem(app.get("/v1/reviews?state=sideways&overdue=maybe&expiring_within=soon", &victor).await, 422).await;
        assert_eq!(error_fields(&problem), ["expiring_within", "overdue", "state"]);
    }

    async fn a_supplier_answers_through_the_invitation_link_and_nothing_else(app) {
        let flow = Flow::start(&app).await;
        flow.through_intake(json!({})).await;
        let victor = app.token("victor", &[Role::VendorManager]);
        let response = app.post(&flow.path("/stages/security/invite"), &victor, &json!({"email": "security@supplier.example", "expires_in": "14d"})).await;
        assert_eq!(response.status(), 201);
        let invitation: Value = response.json().await.unwrap();
        let email = app.sent_emails().await.into_iter().find(|e| e["to"][0] == "security@supplier.example").expect("invitation queued");
        let text = email["text"].as_str().unwrap();
        let link = text.lines().find(|l| l.contains("/respond/")).expect("a link").trim();
        assert!(link.starts_with("http://127.0.0.1:"), "{link}");
        let token = link.rsplit('/').next().unwrap();

        let stage: Value = app.get(&flow.path("/stages/security"), token).await.json().await.unwrap();
        assert_eq!(stage["key"], "security");
        assert!(stage["questionnaire"]["sections"].as_array().unwrap().len() > 1);
        let answers = fill(flow.stage("security"), &json!({}));
        assert_eq!(app.put(&flow.path("/stages/security/answers"), token, &json!({"answers": answers}), None).await.status(), 200);

        assert_problem(app.get(&flow.path(""), token).await, 403).await;
        assert_problem(app.get(&flow.path("/stages/privacy"), token).await, 403).await;
        assert_problem(app.get("/v1/providers", token).await, 403).await;
        assert_problem(flow.decide(token, "security", json!({"decision": "approve"})).await, 403).await;

        let submitted = app.post(&flow.path("/stages/security/submit"), token, &json!({})).await;
        assert_eq!(submitted.status(), 200);
        let review = flow.review().await;
        assert_eq!(stage_state(&review, "security"), "in_review");
        let answered_by = review["answers"]["security"]["iso27001"]["answered_by"].as_str().unwrap();
        let credit = format!("security@supplier.example (invitation {})", invitation["id"].as_str().unwrap());
        assert_eq!(answered_by, credit, "credited to the invited contact");
        // The audit log names the supplier by the invitation, as the console does.
        let actor = format!("respondent:{}", invitation["id"].as_str().unwrap());
        let events: Value = app.get(&format!("/v1/audit?actor={actor}"), &app.admin()).await.json().await.unwrap();
        let actions: Vec<&str> = events["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions[..2], ["stage.answers_saved", "stage.submitted"], "{events}");

        let revoke = app.client.delete(app.url(&flow.path(&format!("/invitations/{}", invitation["id"].as_str().unwrap())))).bearer_auth(&victor).send().await.unwrap();
        assert_eq!(revoke.status(), 204);
        let problem = assert_problem(app.get(&flow.path("/stages/security"), token).await, 401).await;
        assert!(problem["detail"].as_str().unwrap().contains("revoked"));
    }

    async fn an_invitation_stops_working_when_it_expires(app) {
        let flow = Flow::start(&app).await;
        flow.through_intake(json!({})).await;
        app.post(&flow.path("/stages/privacy/invite"), &app.manager(), &json!({"email": "dpo@supplier.example", "expires_in": "2d"})).await;
        let email = app.sent_emails().await.into_iter().find(|e| e["to"][0] == "dpo@supplier.example").unwrap();
        let text = email["text"].as_str().unwrap().to_owned();
        let token = text.lines().find(|l| l.contains("/respond/")).unwrap().trim().rsplit('/').next().unwrap().to_owned();
        assert_eq!(app.get(&flow.path("/stages/privacy"), &token).await.status(), 200);
        app.clock.advance(chrono::TimeDelta::days(3));
        let problem = assert_problem(app.get(&flow.path("/stages/privacy"), &token).await, 401).await;
        assert!(problem["detail"].as_str().unwrap().contains("expired"));
        let bad = app.post(&flow.path("/stages/intake/invite"), &app.manager(), &json!({"email": "x@y.example"})).await;
        assert_eq!(error_fields(&assert_problem(bad, 422).await), ["stage"], "intake is answered by vendor managers");
        let bad = app.post(&flow.path("/stages/privacy/invite"), &app.manager(), &json!({"email": "not-an-email", "expires_in": "1y"})).await;
        assert_eq!(error_fields(&assert_problem(bad, 422).await), ["email"]);
    }
}

/// Editing a workflow file never changes a review already started: a server
/// started on the edited files still shows the running review as it began.
mod editing_a_workflow_never_changes_a_running_review {
    use super::*;
    use crate::helpers::Backend;

    async fn run(backend: Backend) {
        let files = tempfile::tempdir().unwrap();
        let path = files.path().join("model-provider.toml");
        let original = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/workflows/model-provider.toml"
        ))
        .unwrap();
        std::fs::write(&path, &original).unwrap();
        let folder = files.path().to_string_lossy().into_owned();
        let Some(app) = TestApp::spawn_with(backend, |raw| raw.workflows = folder.clone()).await
        else {
            crate::helpers::skip(crate::helpers::NO_DATABASE);
            return;
        };
        let flow = Flow::start(&app).await;

        let edited = original.replacen("version = 2", "version = 3", 1).replacen(
            "title = \"Security review\"",
            "title = \"Security and resilience review\"",
            1,
        );
        assert_ne!(edited, original);
        std::fs::write(&path, &edited).unwrap();
        let restarted = app.spawn_beside(|raw| raw.workflows = folder.clone()).await;

        let review: Value = restarted
            .get(&flow.path(""), &restarted.admin())
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(review["workflow"]["version"], 2);
        let security = review["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == "security")
            .unwrap();
        assert_eq!(security["title"], "Security review");

        let victor = restarted.token("victor", &[Role::VendorManager]);
        restarted
            .post(
                "/v1/providers/anthropic/models",
                &victor,
                &json!({"slug": "haiku", "name": "Haiku"}),
            )
            .await;
        let fresh: Value = restarted
            .post(
                "/v1/reviews",
                &victor,
                &json!({"provider": "anthropic", "model": "haiku"}),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(fresh["workflow"]["version"], 3);
        assert_ne!(fresh["workflow"]["digest"], review["workflow"]["digest"]);
        let security = fresh["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == "security")
            .unwrap();
        assert_eq!(security["title"], "Security and resilience review");
    }

    #[tokio::test]
    async fn sqlite() {
        run(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn postgres() {
        run(Backend::Postgres).await;
    }
}

backend_tests! {
    async fn a_re_review_carries_answers_forward_and_shows_what_changed(app) {
        let flow = Flow::start(&app).await;
        flow.through_intake(json!({})).await;
        let victor = app.token("victor", &[Role::VendorManager]);
        flow.answer_and_submit(&victor, "security", json!({})).await;
        flow.answer_and_submit(&victor, "privacy", json!({})).await;
        flow.approve(&app.token("sam", &[Role::SecurityReviewer]), "security").await;
        flow.approve(&app.token("pia", &[Role::PrivacyReviewer]), "privacy").await;
        let approved = flow.review().await;
        let previous_iso = approved["answers"]["security"]["iso27001"]["value"].clone();

        let response = app.post(&flow.path("/re-review"), &victor, &json!({})).await;
        assert_eq!(response.status(), 201);
        let re_review: Value = response.json().await.unwrap();
        assert_eq!(re_review["kind"], "re_review");
        // Nobody was assigned last time, so nobody is now; the tier is the approval's.
        assert!(re_review["stages"].as_array().unwrap().iter().all(|s| s["assignee"].is_null()));
        assert_eq!(re_review["tier"], approved["tier"]);
        let again = app.post(&flow.path("/re-review"), &victor, &json!({})).await;
        assert_problem(again, 409).await;

        let path = format!("/v1/reviews/{}", re_review["id"].as_str().unwrap());
        let detail: Value = app.get(&path, &victor).await.json().await.unwrap();
        let carried = &detail["answers"]["security"]["iso27001"];
        assert_eq!(carried["carried_forward"], true);
        assert_eq!(carried["value"], previous_iso);
        assert!(carried.get("previous_value").is_none(), "unchanged answers show no previous value");
        assert_eq!(detail["answers"]["intake"]["use_case"]["carried_forward"], true);

        // The vendor manager confirms intake with one change; the approval stays in force meanwhile.
        let changed = json!({"answers": {"use_case": "Now also used for claims triage"}});
        assert_eq!(app.put(&format!("{path}/stages/intake/answers"), &victor, &changed, None).await.status(), 200);
        let submit = app.post(&format!("{path}/stages/intake/submit"), &victor, &json!({})).await;
        assert_eq!(submit.status(), 200, "carried answers satisfy the required questions");
        let detail: Value = app.get(&path, &victor).await.json().await.unwrap();
        let use_case = &detail["answers"]["intake"]["use_case"];
        assert_eq!(use_case["carried_forward"], false);
        assert_eq!(use_case["value"], "Now also used for claims triage");
        assert_eq!(use_case["previous_value"], approved["answers"]["intake"]["use_case"]["value"]);
        let status: Value = app.get("/v1/status/anthropic/claude", &victor).await.json().await.unwrap();
        assert_eq!(status["status"], "approved");
    }

    async fn a_stored_value_the_code_does_not_know_fails_the_read_loudly(app) {
        let flow = Flow::start(&app).await;
        let victor = app.token("victor", &[Role::VendorManager]);
        assert_eq!(flow.review().await["tier"], "low");

        // A future version, or someone with the database, wrote a tier this version does not know.
        assert_eq!(app.sql(&format!("UPDATE reviews SET tier = 'extreme' WHERE id = '{}'", flow.id)), 1);
        let problem = assert_problem(app.get(&flow.path(""), &victor).await, 500).await;
        assert_eq!(problem["type"], "/problems/internal");
        assert_problem(app.get("/v1/reviews", &victor).await, 500).await;
        let change = json!({"tier": "high", "reason": "read as low, raised by accident"});
        assert_problem(app.post(&flow.path("/tier"), &victor, &change).await, 500).await;

        // So is a stage state, and a JSON column that no longer reads.
        app.sql(&format!("UPDATE reviews SET tier = 'low' WHERE id = '{}'", flow.id));
        assert_eq!(app.get(&flow.path(""), &victor).await.status(), 200);
        app.sql(&format!("UPDATE review_stages SET state = 'paused' WHERE review_id = '{}' AND stage_key = 'intake'", flow.id));
        assert_problem(app.get(&flow.path(""), &victor).await, 500).await;
        app.sql(&format!("UPDATE review_stages SET state = 'awaiting_answers', answerers = 'not json' WHERE review_id = '{}' AND stage_key = 'intake'", flow.id));
        assert_problem(app.get(&flow.path(""), &victor).await, 500).await;
    }
}
