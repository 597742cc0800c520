//! A review driven through the HTTP contract alone: the client reads the
//! workflow document, answers each questionnaire and signs stages off. Shared
//! by the tests of reviews, the audit log and evidence packs.

use clearance::auth::Role;
use serde_json::{Map, Value, json};

use crate::helpers::TestApp;

/// Whether an answer meets a condition of the workflow document.
fn meets(condition: &Value, answer: &Value) -> bool {
    let contains = |wanted: &Value| match answer {
        Value::Array(items) => items.contains(wanted),
        other => other == wanted,
    };
    if let Some(v) = condition.get("equals") {
        return contains(v);
    }
    if let Some(vs) = condition.get("any_of").and_then(Value::as_array) {
        return vs.iter().any(contains);
    }
    if let Some(limit) = condition.get("above").and_then(Value::as_f64) {
        return answer.as_f64().is_some_and(|n| n > limit);
    }
    if let Some(limit) = condition.get("below").and_then(Value::as_f64) {
        return answer.as_f64().is_some_and(|n| n < limit);
    }
    false
}

/// Candidate answers for a question of the workflow document.
fn candidates(question: &Value) -> Vec<Value> {
    let options: Vec<Value> = question["options"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|o| o["value"].clone())
        .collect();
    match question["type"].as_str().unwrap() {
        "yes_no" => vec![json!(true), json!(false)],
        "single_choice" => options,
        "multi_choice" => options.into_iter().map(|o| json!([o])).collect(),
        "text" => vec![json!("Documented in the supplier's trust centre.")],
        "number" => vec![
            question
                .get("min")
                .cloned()
                .filter(|m| !m.is_null())
                .unwrap_or(json!(1)),
        ],
        "date" => vec![json!("2026-06-01")],
        "url" => vec![json!("https://trust.supplier.example/evidence.pdf")],
        other => panic!("unknown type {other}"),
    }
}

/// Answers every shown question of a stage, avoiding risk rules, except
/// where `overrides` says otherwise.
pub fn fill(stage: &Value, overrides: &Value) -> Map<String, Value> {
    let mut answers = Map::new();
    for section in stage["questionnaire"]["sections"].as_array().unwrap() {
        for question in section["questions"].as_array().unwrap() {
            let id = question["id"].as_str().unwrap();
            if let Some(shown) = question.get("shown_when") {
                let target = shown["question"].as_str().unwrap();
                if !answers.get(target).is_some_and(|a| meets(shown, a)) {
                    continue;
                }
            }
            let value = match overrides.get(id) {
                Some(value) => value.clone(),
                None => {
                    let rules = question["risk"].as_array().cloned().unwrap_or_default();
                    let all = candidates(question);
                    all.iter()
                        .find(|c| !rules.iter().any(|r| meets(&r["when"], c)))
                        .cloned()
                        .unwrap_or_else(|| all[0].clone())
                }
            };
            answers.insert(id.to_owned(), value);
        }
    }
    answers
}

pub struct Flow<'a> {
    pub app: &'a TestApp,
    pub workflow: Value,
    pub id: String,
}

impl<'a> Flow<'a> {
    /// A model registered and a review of it started by `victor`.
    pub async fn start(app: &'a TestApp) -> Flow<'a> {
        let victor = app.token("victor", &[Role::VendorManager]);
        app.create_provider("anthropic").await;
        app.post(
            "/v1/providers/anthropic/models",
            &victor,
            &json!({"slug": "claude", "name": "Claude"}),
        )
        .await;
        Flow::start_for(app, "anthropic", Some("claude")).await
    }

    /// A review started by `victor` of a registered provider or model.
    pub async fn start_for(app: &'a TestApp, provider: &str, model: Option<&str>) -> Flow<'a> {
        let victor = app.token("victor", &[Role::VendorManager]);
        let workflow: Value = app
            .get("/v1/workflows/model-provider", &victor)
            .await
            .json()
            .await
            .unwrap();
        let body = match model {
            Some(model) => json!({"provider": provider, "model": model}),
            None => json!({"provider": provider}),
        };
        let response = app.post("/v1/reviews", &victor, &body).await;
        assert_eq!(response.status(), 201);
        let review: Value = response.json().await.unwrap();
        Flow {
            app,
            workflow,
            id: review["id"].as_str().unwrap().to_owned(),
        }
    }

    pub fn stage(&self, key: &str) -> &Value {
        self.workflow["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .unwrap()
    }

    pub fn path(&self, rest: &str) -> String {
        format!("/v1/reviews/{}{rest}", self.id)
    }

    pub async fn review(&self) -> Value {
        self.app
            .get(&self.path(""), &self.app.admin())
            .await
            .json()
            .await
            .unwrap()
    }

    /// Gives each open high or critical finding an owner and a remediation
    /// due date, as approving the review requires.
    pub async fn own_open_findings(&self, token: &str) {
        let review = self.review().await;
        for finding in review["findings"].as_array().unwrap() {
            let serious = matches!(finding["severity"].as_str(), Some("high" | "critical"));
            if finding["state"] != "open" || !serious {
                continue;
            }
            let path = self.path(&format!("/findings/{}", finding["id"].as_str().unwrap()));
            let owned = self
                .app
                .patch(
                    &path,
                    token,
                    &json!({"owner": "victor", "remediation_due": "2030-01-01T00:00:00Z"}),
                    None,
                )
                .await;
            assert_eq!(owned.status(), 200, "{}", owned.text().await.unwrap());
        }
    }

    pub async fn answer(&self, token: &str, stage: &str, overrides: Value) -> reqwest::Response {
        let answers = fill(self.stage(stage), &overrides);
        self.app
            .put(
                &self.path(&format!("/stages/{stage}/answers")),
                token,
                &json!({"answers": answers}),
                None,
            )
            .await
    }

    pub async fn answer_and_submit(&self, token: &str, stage: &str, overrides: Value) {
        let saved = self.answer(token, stage, overrides).await;
        assert_eq!(
            saved.status(),
            200,
            "{stage}: {}",
            saved.text().await.unwrap()
        );
        let submitted = self
            .app
            .post(
                &self.path(&format!("/stages/{stage}/submit")),
                token,
                &json!({}),
            )
            .await;
        assert_eq!(
            submitted.status(),
            200,
            "{stage}: {}",
            submitted.text().await.unwrap()
        );
    }

    pub async fn decide(&self, token: &str, stage: &str, body: Value) -> reqwest::Response {
        self.app
            .post(
                &self.path(&format!("/stages/{stage}/decisions")),
                token,
                &body,
            )
            .await
    }

    pub async fn approve(&self, token: &str, stage: &str) {
        let response = self
            .decide(token, stage, json!({"decision": "approve"}))
            .await;
        assert_eq!(
            response.status(),
            200,
            "{stage}: {}",
            response.text().await.unwrap()
        );
    }

    /// Victor invites `email` to every supplier questionnaire of the
    /// review, with one link, before or after they open.
    pub async fn invite_all(&self, email: &str) {
        let invited = self
            .app
            .post(
                &self.path("/invite"),
                &self.app.manager(),
                &json!({"email": email, "expires_in": "30d"}),
            )
            .await;
        assert_eq!(invited.status(), 201, "{}", invited.text().await.unwrap());
    }

    /// Intake answered by the starter (victor) and confirmed by vera.
    pub async fn through_intake(&self, overrides: Value) {
        let victor = self.app.token("victor", &[Role::VendorManager]);
        self.answer_and_submit(&victor, "intake", overrides).await;
        self.approve(&self.app.token("vera", &[Role::VendorManager]), "intake")
            .await;
    }
}
