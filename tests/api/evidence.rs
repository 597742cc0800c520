//! Evidence for auditors over HTTP: a review's evidence pack (unzipped and
//! read back) and the summary of reviews over a period.

use std::collections::BTreeSet;
use std::io::Read;

use chrono::TimeDelta;
use clearance::auth::Role;
use serde_json::{Value, json};

use crate::flow::Flow;
use crate::helpers::{TestApp, assert_problem, error_fields};

/// The files of a zip, by name.
fn unzip(bytes: Vec<u8>) -> std::collections::BTreeMap<String, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    let mut files = std::collections::BTreeMap::new();
    for index in 0..archive.len() {
        let mut file = archive.by_index(index).unwrap();
        let name = file.name().unwrap().into_owned();
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        files.insert(name, text);
    }
    files
}

/// Rows of a CSV file, by column name.
fn csv_rows(text: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|record| {
            headers
                .iter()
                .zip(record.unwrap().iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// A review approved with conditions, with a finding raised and resolved
/// and one opened by a risky answer: something of everything.
async fn decided_review(app: &TestApp) -> Flow<'_> {
    let flow = Flow::start(app).await;
    flow.through_intake(json!({"use_case": "Support <chat> & \"triage\""}))
        .await;
    let victor = app.token("victor", &[Role::VendorManager]);
    flow.answer_and_submit(&victor, "security", json!({"encryption_in_transit": false}))
        .await;
    flow.answer_and_submit(&victor, "privacy", json!({})).await;
    let sam = app.token("sam", &[Role::SecurityReviewer]);
    let finding: Value = app
        .post(
            &flow.path("/findings"),
            &sam,
            &json!({"severity": "high", "text": "No SBOM for the model server.", "stage": "security"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let resolved = app
        .patch(
            &flow.path(&format!("/findings/{}", finding["id"].as_str().unwrap())),
            &sam,
            &json!({"state": "resolved", "resolution": "SBOM received on 2026-03-03."}),
            None,
        )
        .await;
    assert_eq!(resolved.status(), 200);
    let approved = flow
        .decide(
            &sam,
            "security",
            json!({"decision": "approve", "comment": "Meets the baseline.", "conditions": {"regions": ["eu"]}}),
        )
        .await;
    assert_eq!(approved.status(), 200);
    flow.own_open_findings(&sam).await;
    flow.approve(&app.token("pia", &[Role::PrivacyReviewer]), "privacy")
        .await;
    flow
}

backend_tests! {
    async fn an_evidence_pack_holds_every_answer_decision_and_finding(app) {
        let flow = decided_review(&app).await;
        let review = flow.review().await;
        assert_eq!(review["state"], "approved_with_conditions");
        // The review as it reads before the download (which is itself audited).
        let body: Value = app.get(&flow.path(""), &app.admin()).await.json().await.unwrap();

        let response = app.get(&flow.path("/evidence"), &app.token("sam", &[Role::SecurityReviewer])).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/zip");
        assert_eq!(
            response.headers()["content-disposition"].to_str().unwrap(),
            format!("attachment; filename=\"evidence-anthropic-claude-{}.zip\"", flow.id)
        );
        let files = unzip(response.bytes().await.unwrap().to_vec());
        assert_eq!(files.keys().collect::<Vec<_>>(), ["answers.csv", "controls.csv", "report.html", "review.json"]);

        let packed: Value = serde_json::from_str(&files["review.json"]).expect("review.json parses");
        assert_eq!(packed, body, "review.json is GET /v1/reviews/{{id}}");

        let report = &files["report.html"];
        let answers = csv_rows(&files["answers.csv"]);
        let mut answered = 0;
        for (stage, questions) in body["answers"].as_object().unwrap() {
            for question in questions.as_object().unwrap().keys() {
                answered += 1;
                assert!(
                    answers.iter().any(|row| &row["stage"] == stage && &row["question_id"] == question),
                    "{stage}/{question} in answers.csv"
                );
                assert!(report.contains(&format!("<code>{question}</code>")), "{question} in the report");
            }
        }
        assert_eq!(answers.len(), answered, "one row per answer");
        let use_case = answers.iter().find(|r| r["question_id"] == "use_case").unwrap();
        assert_eq!(use_case["answer"], "Support <chat> & \"triage\"");
        assert_eq!(use_case["answered_by"], "victor");
        assert_eq!(use_case["stage"], "intake");
        assert!(!use_case["section"].is_empty() && !use_case["question"].is_empty());
        assert!(!report.contains("<chat>"), "answers are escaped");
        assert!(report.contains("Support &#60;chat&#62; &#38; &#34;triage&#34;"));

        for decision in body["decisions"].as_array().unwrap() {
            let by = decision["by"].as_str().unwrap();
            assert!(report.contains(&format!("<td>{by}</td>")), "{by}'s decision in the report");
        }
        assert!(report.contains("Meets the baseline."));
        assert!(report.contains("regions: eu"));
        let findings = body["findings"].as_array().unwrap();
        assert_eq!(findings.len(), 2, "one raised by sam, one by a risk rule");
        for finding in findings {
            let text = finding["text"].as_str().unwrap();
            let shown = text.replace('&', "&#38;").replace('<', "&#60;").replace('>', "&#62;").replace('"', "&#34;").replace('\'', "&#39;");
            assert!(report.contains(&shown), "{text} in the report");
        }
        assert!(report.contains("SBOM received on 2026-03-03."));
        assert!(report.contains(&review["workflow"]["digest"].as_str().unwrap().to_owned()));
        assert!(report.contains("stage.decided"), "the timeline");

        let controls = csv_rows(&files["controls.csv"]);
        let row = controls
            .iter()
            .find(|r| r["control"] == "iso42001:A.10.3" && r["question_id"] == "iso27001")
            .expect("the supplier-relationship control lists the ISO 27001 question");
        assert_eq!(row["stage"], "security");
        assert_eq!(row["answer"], "yes");
        assert!(row["stage_decisions"].contains("approve by sam"), "{row:?}");
        assert!(report.contains("iso42001:A.10.3"));
        let controls_named: BTreeSet<&str> = controls.iter().map(|r| r["control"].as_str()).collect();
        assert!(controls_named.len() > 20, "every control of the workflow: {controls_named:?}");
    }

    async fn each_download_of_a_pack_is_audited(app) {
        let flow = decided_review(&app).await;
        let response = app.get(&flow.path("/evidence"), &app.token("sam", &[Role::SecurityReviewer])).await;
        assert_eq!(response.status(), 200);
        let file = response.headers()["content-disposition"].to_str().unwrap().to_owned();
        let page: Value = app.get(&format!("/v1/audit?review={}&limit=200", flow.id), &app.admin()).await.json().await.unwrap();
        let events = page["items"].as_array().unwrap();
        let exported: Vec<&Value> = events.iter().filter(|e| e["action"] == "evidence.exported").collect();
        assert_eq!(exported.len(), 1, "{events:?}");
        let event = exported[0];
        assert_eq!(event["actor"], "sam", "{event}");
        assert_eq!(event["actor_roles"], json!(["security_reviewer"]), "{event}");
        assert!(file.contains(event["after"]["file"].as_str().unwrap()), "{event}");
        // The pack names the chain's head before its own export event.
        assert_eq!(event["after"]["audit_head"].as_i64().unwrap() + 1, event["seq"].as_i64().unwrap(), "{event}");
        let verified: Value = app.get("/v1/audit/verify", &app.admin()).await.json().await.unwrap();
        assert_eq!(verified["ok"], true, "{verified}");
    }

    async fn a_provider_wide_pack_is_named_for_the_provider(app) {
        app.create_provider("mistral").await;
        let review: Value = app.post("/v1/reviews", &app.manager(), &json!({"provider": "mistral"})).await.json().await.unwrap();
        let id = review["id"].as_str().unwrap();
        let response = app.get(&format!("/v1/reviews/{id}/evidence"), &app.manager()).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-disposition"].to_str().unwrap(),
            format!("attachment; filename=\"evidence-mistral-mistral-{id}.zip\"")
        );
        let files = unzip(response.bytes().await.unwrap().to_vec());
        assert!(files["report.html"].contains("No decisions yet."));
        assert_eq!(csv_rows(&files["answers.csv"]).len(), 0);
    }

    async fn evidence_packs_are_for_people_who_work_on_reviews(app) {
        let flow = Flow::start(&app).await;
        for role in [Role::VendorManager, Role::SecurityReviewer, Role::PrivacyReviewer, Role::RaiReviewer, Role::Approver, Role::Admin] {
            let response = app.get(&flow.path("/evidence"), &app.token("someone", &[role])).await;
            assert_eq!(response.status(), 200, "{role:?}");
        }
        assert_problem(app.get(&flow.path("/evidence"), &app.token("ci", &[Role::Integrator])).await, 403).await;
        assert_problem(app.client.get(app.url(&flow.path("/evidence"))).send().await.unwrap(), 401).await;
        assert_problem(app.get("/v1/reviews/nope/evidence", &app.admin()).await, 404).await;
    }

    async fn the_period_summary_counts_reviews_by_outcome_and_tier(app) {
        // A low-tier review approved with conditions on the first day.
        decided_review(&app).await;
        // A high-tier review of another model, left with intake overdue.
        let victor = app.token("victor", &[Role::VendorManager]);
        app.post("/v1/providers/anthropic/models", &victor, &json!({"slug": "haiku", "name": "Haiku"})).await;
        let high: Value = app.post("/v1/reviews", &victor, &json!({"provider": "anthropic", "model": "haiku"})).await.json().await.unwrap();
        app.post(&format!("/v1/reviews/{}/tier", high["id"].as_str().unwrap()), &victor, &json!({"tier": "high", "reason": "Used for HR screening"})).await;
        // A third, withdrawn the next day.
        app.create_provider("mistral").await;
        let withdrawn: Value = app.post("/v1/reviews", &victor, &json!({"provider": "mistral"})).await.json().await.unwrap();
        app.clock.advance(TimeDelta::days(1));
        let response = app.post(&format!("/v1/reviews/{}/withdraw", withdrawn["id"].as_str().unwrap()), &victor, &json!({"reason": "Project cancelled"})).await;
        assert_eq!(response.status(), 200);
        app.clock.advance(TimeDelta::days(5));

        let admin = app.admin();
        let summary: Value = app.get("/v1/evidence?from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z", &admin).await.json().await.unwrap();
        assert_eq!(summary["from"], "2026-03-01T00:00:00Z");
        assert_eq!(summary["generated_at"], "2026-03-08T09:00:00Z");
        assert_eq!(summary["started"], json!({"total": 3, "by_tier": {"low": 2, "medium": 0, "high": 1, "critical": 0}}));
        assert_eq!(summary["decided"]["total"], 2);
        assert_eq!(summary["decided"]["by_tier"], json!({"low": 2, "medium": 0, "high": 0, "critical": 0}));
        let outcomes = &summary["decided"]["by_outcome"];
        assert_eq!(outcomes["approved_with_conditions"]["total"], 1);
        assert_eq!(outcomes["withdrawn"]["by_tier"]["low"], 1);
        assert_eq!(outcomes["approved"]["total"], 0);
        assert_eq!(outcomes["rejected"]["total"], 0);
        assert_eq!(summary["overdue"], json!({"total": 1, "by_tier": {"low": 0, "medium": 0, "high": 1, "critical": 0}}), "haiku's intake is past its 5-day SLA");
        assert_eq!(summary["expired"]["total"], 0);

        let before: Value = app.get("/v1/evidence?from=2026-03-03T00:00:00Z&to=2026-03-04T00:00:00Z", &admin).await.json().await.unwrap();
        assert_eq!(before["started"]["total"], 0);
        assert_eq!(before["decided"]["total"], 1, "only the withdrawal fell on the 3rd");
        assert_eq!(before["decided"]["by_outcome"]["withdrawn"]["total"], 1);
        assert_eq!(before["overdue"]["total"], 1, "overdue is as of now, whatever the period");

        // The approval (low tier: valid 730 days) lapses with no re-review.
        app.clock.advance(TimeDelta::days(740));
        let lapsed: Value = app.get("/v1/evidence?from=2028-01-01T00:00:00Z&to=2029-01-01T00:00:00Z", &admin).await.json().await.unwrap();
        assert_eq!(lapsed["expired"], json!({"total": 1, "by_tier": {"low": 1, "medium": 0, "high": 0, "critical": 0}}));
        assert_eq!(lapsed["started"]["total"], 0);
        let future: Value = app.get("/v1/evidence?from=2029-01-01T00:00:00Z&to=2030-01-01T00:00:00Z", &admin).await.json().await.unwrap();
        assert_eq!(future["expired"]["total"], 0);
    }

    async fn an_approval_renewed_in_time_does_not_expire(app) {
        let first = decided_review(&app).await;
        // 700 days later, inside the 730-day validity, a new review approves again.
        app.clock.advance(TimeDelta::days(700));
        let victor = app.token("victor", &[Role::VendorManager]);
        let again: Value = app.post("/v1/reviews", &victor, &json!({"provider": "anthropic", "model": "claude"})).await.json().await.unwrap();
        let second = Flow { app: &app, workflow: first.workflow.clone(), id: again["id"].as_str().unwrap().to_owned() };
        second.through_intake(json!({})).await;
        second.answer_and_submit(&victor, "security", json!({})).await;
        second.answer_and_submit(&victor, "privacy", json!({})).await;
        second.approve(&app.token("sam", &[Role::SecurityReviewer]), "security").await;
        second.approve(&app.token("pia", &[Role::PrivacyReviewer]), "privacy").await;
        assert_eq!(second.review().await["state"], "approved");
        app.clock.advance(TimeDelta::days(60));

        let summary: Value = app.get("/v1/evidence?from=2028-01-01T00:00:00Z&to=2029-01-01T00:00:00Z", &app.admin()).await.json().await.unwrap();
        assert_eq!(summary["expired"]["total"], 0, "the first approval's end passed, but it was renewed: {summary}");
        assert_eq!(summary["decided"]["by_outcome"]["approved"]["total"], 1);
    }

    async fn the_period_summary_is_for_admins_and_needs_a_period(app) {
        let period = "/v1/evidence?from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z";
        assert_problem(app.get(period, &app.manager()).await, 403).await;
        assert_problem(app.get(period, &app.token("alex", &[Role::Approver])).await, 403).await;
        let admin = app.admin();
        assert_eq!(error_fields(&assert_problem(app.get("/v1/evidence", &admin).await, 422).await), ["from", "to"]);
        assert_eq!(error_fields(&assert_problem(app.get("/v1/evidence?from=march&to=2026-04-01T00:00:00Z", &admin).await, 422).await), ["from"]);
        assert_eq!(error_fields(&assert_problem(app.get("/v1/evidence?from=2026-04-01T00:00:00Z&to=2026-03-01T00:00:00Z", &admin).await, 422).await), ["to"]);
        let empty: Value = app.get(period, &admin).await.json().await.unwrap();
        assert_eq!(empty["started"]["total"], 0);
        assert_eq!(empty["decided"]["by_outcome"]["rejected"]["by_tier"]["critical"], 0);
    }
}

#[tokio::test]
async fn the_evidence_routes_are_documented_with_their_roles() {
    let app = TestApp::spawn(crate::helpers::Backend::Sqlite)
        .await
        .unwrap();
    let doc = app.openapi().await;
    let pack = &doc["paths"]["/v1/reviews/{id}/evidence"]["get"];
    assert!(
        pack["responses"]["200"]["content"]["application/zip"].is_object(),
        "{pack}"
    );
    assert!(
        pack["description"]
            .as_str()
            .unwrap()
            .contains("vendor_manager"),
        "{pack}"
    );
    let summary = &doc["paths"]["/v1/evidence"]["get"];
    assert!(
        summary["description"].as_str().unwrap().contains("admin"),
        "{summary}"
    );
    assert!(doc["components"]["schemas"]["PeriodSummary"].is_object());
}
