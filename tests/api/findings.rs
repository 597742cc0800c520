//! A reviewer's comment on one question, what a resubmission changed since
//! changes were requested, and the finding whose raising answer changed.

use clearance::auth::Role;
use serde_json::{Value, json};

use crate::flow::Flow;
use crate::helpers::{TestApp, assert_problem, error_fields};

const QUESTION: &str = "encryption_in_transit";

/// The security stage answered by victor without encryption in transit (a
/// risk rule raises a high finding) and submitted.
async fn security_submitted(flow: &Flow<'_>) {
    flow.through_intake(json!({})).await;
    let victor = flow.app.manager();
    flow.answer_and_submit(&victor, "security", json!({QUESTION: false}))
        .await;
}

async fn comment(
    app: &TestApp,
    flow: &Flow<'_>,
    token: &str,
    stage: &str,
    question: &str,
    body: Value,
) -> reqwest::Response {
    let path = flow.path(&format!("/stages/{stage}/questions/{question}/comments"));
    app.post(&path, token, &body).await
}

backend_tests! {
    async fn a_comment_on_a_question_reaches_whoever_answers(app) {
        let flow = Flow::start(&app).await;
        security_submitted(&flow).await;
        let sam = app.token("sam", &[Role::SecurityReviewer]);

        let response = comment(&app, &flow, &sam, "security", QUESTION, json!({"text": "  Which TLS versions exactly?  "})).await;
        assert_eq!(response.status(), 201);
        let made: Value = response.json().await.unwrap();
        assert_eq!(made["text"], "Which TLS versions exactly?");
        assert!(made["question_text"].as_str().unwrap().starts_with("Is customer data encrypted in transit"));

        let review = flow.review().await;
        assert_eq!(review["comments"][0]["question"], QUESTION);
        assert_eq!(review["comments"][0]["by"], "sam");
        let stage: Value = app.get(&flow.path("/stages/security"), &app.manager()).await.json().await.unwrap();
        assert_eq!(stage["comments"][0]["text"], "Which TLS versions exactly?");

        let events = crate::scheduler::audit_events(&app, "question.commented").await;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["actor"], "sam");

        let openapi = app.openapi().await;
        assert!(openapi["paths"]["/v1/reviews/{id}/stages/{stage}/questions/{question}/comments"]["post"].is_object());
    }

    async fn a_comment_is_refused_in_plain_problems(app) {
        let flow = Flow::start(&app).await;
        security_submitted(&flow).await;
        let sam = app.token("sam", &[Role::SecurityReviewer]);

        let empty = comment(&app, &flow, &sam, "security", QUESTION, json!({"text": "   "})).await;
        assert_eq!(error_fields(&assert_problem(empty, 422).await), ["text"]);
        let missing = comment(&app, &flow, &sam, "security", QUESTION, json!({})).await;
        assert_eq!(error_fields(&assert_problem(missing, 422).await), ["text"]);
        let unknown = comment(&app, &flow, &sam, "security", "no_such_question", json!({"text": "?"})).await;
        assert_problem(unknown, 404).await;
        let no_stage = comment(&app, &flow, &sam, "no-such-stage", QUESTION, json!({"text": "?"})).await;
        assert_problem(no_stage, 404).await;

        // Only who decides the stage (or an admin) comments on it.
        let pia = app.token("pia", &[Role::PrivacyReviewer]);
        let other = comment(&app, &flow, &pia, "security", QUESTION, json!({"text": "?"})).await;
        assert_problem(other, 403).await;
        let admin = comment(&app, &flow, &app.admin(), "security", QUESTION, json!({"text": "From the admin."})).await;
        assert_eq!(admin.status(), 201);

        // Not on a questionnaire nobody has submitted yet.
        let privacy = comment(&app, &flow, &pia, "privacy", "retention_period", json!({"text": "?"})).await;
        assert_problem(privacy, 409).await;
    }

    async fn a_resubmission_shows_what_changed_and_the_finding_it_answers(app) {
        let flow = Flow::start(&app).await;
        security_submitted(&flow).await;
        let sam = app.token("sam", &[Role::SecurityReviewer]);
        let finding = flow.review().await["findings"][0].clone();
        assert_eq!(finding["severity"], "high");
        assert!(finding.get("answer_changed").is_none(), "{finding}");

        let asked = flow.decide(&sam, "security", json!({"decision": "request_changes", "comment": "See the comment on encryption."})).await;
        assert_eq!(asked.status(), 200);
        // A stage sent back still takes comments.
        let sent_back = comment(&app, &flow, &sam, "security", QUESTION, json!({"text": "Is it end to end?"})).await;
        assert_eq!(sent_back.status(), 201);

        let victor = app.manager();
        flow.answer_and_submit(&victor, "security", json!({QUESTION: true})).await;

        let review = flow.review().await;
        let changed = review["changed_since_request"]["security"].as_array().unwrap();
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert_eq!(changed[0]["question"], QUESTION);
        assert_eq!((&changed[0]["before"], &changed[0]["after"]), (&json!(false), &json!(true)));
        let stage: Value = app.get(&flow.path("/stages/security"), &victor).await.json().await.unwrap();
        assert_eq!(stage["changed_since_request"][0]["question"], QUESTION);

        let finding = &review["findings"][0];
        assert_eq!(finding["state"], "open");
        assert_eq!(finding["answer_changed"]["before"], false);
        assert_eq!(finding["answer_changed"]["after"], true);
    }
}
