//! Evidence for auditors over HTTP: a review's evidence pack, unzipped and
//! read back.

use std::collections::BTreeSet;
use std::io::Read;

use clearance::auth::Role;
use serde_json::{Value, json};

use crate::flow::Flow;
use crate::helpers::{TestApp, assert_problem};

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
    flow.approve(&app.token("pia", &[Role::PrivacyReviewer]), "privacy")
        .await;
    flow
}

backend_tests! {
    async fn an_evidence_pack_holds_every_answer_decision_and_finding(app) {
        let flow = decided_review(&app).await;
        let review = flow.review().await;
        assert_eq!(review["state"], "approved_with_conditions");

        let response = app.get(&flow.path("/evidence"), &app.token("sam", &[Role::SecurityReviewer])).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/zip");
        assert_eq!(
            response.headers()["content-disposition"].to_str().unwrap(),
            format!("attachment; filename=\"evidence-anthropic-claude-{}.zip\"", flow.id)
        );
        let files = unzip(response.bytes().await.unwrap().to_vec());
        assert_eq!(files.keys().collect::<Vec<_>>(), ["answers.csv", "controls.csv", "report.html", "review.json"]);

        let body: Value = app.get(&flow.path(""), &app.admin()).await.json().await.unwrap();
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
}
