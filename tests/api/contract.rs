//! The OpenAPI document agrees with the server (issue 15, defect 9): answer
//! values are any JSON value, required fields are not nullable, `limit` has
//! the server's bounds, every operation lists the problems it can answer,
//! and a method a known path does not take is 405 with `Allow`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::flow::Flow;
use crate::helpers::{assert_problem, error_fields};

/// Every operation of the document: (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if ["get", "put", "post", "delete", "patch", "head"].contains(&method.as_str()) {
                found.push((method.clone(), path.clone(), operation.clone()));
            }
        }
    }
    assert!(
        found.len() > 40,
        "the document lists the API: {}",
        found.len()
    );
    found
}

/// The schema a `$ref` names, or the schema itself.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.rsplit('/').next().unwrap();
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

fn takes(operation: &Value, place: &str) -> bool {
    operation["parameters"]
        .as_array()
        .is_some_and(|ps| ps.iter().any(|p| p["in"] == place))
}

/// A documented path with its parameters filled in with `value`.
fn filled(path: &str, value: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').unwrap() + open;
        out.push_str(value);
        rest = &rest[close + 1..];
    }
    out + rest
}

/// Whether a schema admits JSON `null`.
fn nullable(schema: &Value) -> bool {
    schema["type"] == "null"
        || schema["type"]
            .as_array()
            .is_some_and(|types| types.contains(&json!("null")))
        || ["oneOf", "anyOf"].iter().any(|k| {
            schema[k]
                .as_array()
                .is_some_and(|alternatives| alternatives.iter().any(nullable))
        })
}

backend_tests! {
    async fn answers_of_any_json_type_are_accepted_and_documented_as_any_value(app) {
        let flow = Flow::start(&app).await;
        let manager = app.manager();
        let answers = json!({"affects_people": false, "use_case": "Support chat", "data_classes": ["personal", "internal"], "expected_volume": 1200});
        let saved = app
            .put(&flow.path("/stages/intake/answers"), &manager, &json!({"answers": answers}), None)
            .await;
        assert_eq!(saved.status(), 200, "{}", saved.text().await.unwrap());
        let review = flow.review().await;
        for (question, value) in answers.as_object().unwrap() {
            assert_eq!(&review["answers"]["intake"][question]["value"], value, "{question}");
        }

        let doc = app.openapi().await;
        let schemas = &doc["components"]["schemas"];
        // The stage view flattens its summary in: an `allOf` of two.
        let stage_view = schemas["StageView"]["allOf"]
            .as_array()
            .and_then(|parts| parts.iter().find(|p| p["properties"]["answers"].is_object()))
            .expect("the stage view lists its answers");
        let any = [
            &schemas["AnswersInput"]["properties"]["answers"]["additionalProperties"],
            &stage_view["properties"]["answers"]["additionalProperties"],
            &schemas["AnswerView"]["properties"]["value"],
            &schemas["AnswerView"]["properties"]["previous_value"],
        ];
        for schema in any {
            assert!(schema.is_object() && schema.get("type").is_none(), "an answer is any JSON value, not {schema}");
        }
    }

    async fn required_fields_of_request_bodies_are_not_nullable_and_null_is_refused(app) {
        let doc = app.openapi().await;
        let mut checked = 0;
        for (method, path, operation) in operations(&doc) {
            let body = &operation["requestBody"]["content"]["application/json"]["schema"];
            if body.is_null() {
                continue;
            }
            let schema = resolve(&doc, body);
            for field in schema["required"].as_array().into_iter().flatten() {
                let property = resolve(&doc, &schema["properties"][field.as_str().unwrap()]);
                assert!(!nullable(property), "{method} {path}: required `{field}` is declared nullable: {property}");
                checked += 1;
            }
        }
        assert!(checked >= 10, "required fields checked: {checked}");

        let manager = app.manager();
        let refused = app.post("/v1/providers", &manager, &json!({"slug": null, "name": "Acme"})).await;
        assert_eq!(error_fields(&assert_problem(refused, 422).await), ["slug"]);
        let refused = app.post("/v1/reviews", &manager, &json!({"provider": null})).await;
        assert_eq!(error_fields(&assert_problem(refused, 422).await), ["provider"]);
    }

    async fn every_operation_documents_the_problems_of_its_kind(app) {
        let doc = app.openapi().await;
        for (method, path, operation) in operations(&doc) {
            let responses = operation["responses"].as_object().unwrap();
            let mut expected = vec!["500"];
            if operation["security"].as_array().is_some_and(|s| !s.is_empty()) {
                expected.extend(["401", "403", "429"]);
            }
            if operation.get("requestBody").is_some() {
                expected.extend(["400", "413", "415", "422"]);
            }
            if takes(&operation, "query") {
                expected.extend(["400", "422"]);
            }
            if takes(&operation, "path") {
                expected.push("404");
            }
            for status in expected {
                assert!(responses.contains_key(status), "{method} {path} does not document {status}");
            }
        }
    }

    async fn the_documented_problems_are_what_the_server_answers(app) {
        let flow = Flow::start(&app).await;
        let manager = app.manager();
        // 400: malformed JSON on a body-taking operation.
        let malformed = app
            .client
            .post(app.url(&flow.path("/withdraw")))
            .bearer_auth(&manager)
            .header("content-type", "application/json")
            .body("{\"reason\": ")
            .send()
            .await
            .unwrap();
        assert_problem(malformed, 400).await;
        // 401 on an admin route, without a token.
        let anonymous = app.client.get(app.url("/v1/admin/outbox")).send().await.unwrap();
        assert_problem(anonymous, 401).await;
        // 404 on a stage route of a review that does not exist.
        let nowhere = "/v1/reviews/01900000-0000-7000-8000-000000000000/stages/security/assign";
        let missing = app.post(nowhere, &manager, &json!({"assignee": "victor"})).await;
        assert_problem(missing, 404).await;
        let unknown_stage = app.post(&flow.path("/stages/no-such-stage/submit"), &manager, &json!({})).await;
        assert_problem(unknown_stage, 404).await;
    }

    async fn limit_is_bounded_in_the_document_as_the_server_bounds_it(app) {
        app.create_provider("acme").await;
        // Paths name `acme` for every parameter: a model's lists need `acme/acme`.
        let model = app.post("/v1/providers/acme/models", &app.manager(), &serde_json::json!({"slug": "acme", "name": "Acme"})).await;
        assert_eq!(model.status(), 201);
        let admin = app.admin();
        let doc = app.openapi().await;
        let mut lists = 0;
        for (method, path, operation) in operations(&doc) {
            let Some(limit) = operation["parameters"].as_array().into_iter().flatten().find(|p| p["name"] == "limit") else {
                continue;
            };
            assert_eq!(limit["schema"]["minimum"], 1, "{method} {path}: {limit}");
            assert_eq!(limit["schema"]["maximum"], 200, "{method} {path}: {limit}");
            let url = filled(&path, "acme");
            for (value, status) in [("1", 200), ("200", 200), ("0", 422), ("201", 422), ("", 422), ("ten", 422)] {
                let response = app.get(&format!("{url}?limit={value}"), &admin).await;
                assert_eq!(response.status(), status, "{method} {url}?limit={value}");
            }
            lists += 1;
        }
        assert!(lists >= 4, "lists with a limit: {lists}");
    }

    async fn an_unsupported_method_on_a_known_path_is_405_with_allow(app) {
        let doc = app.openapi().await;
        let mut paths: Vec<(String, Vec<String>)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(path, item)| (filled(path, "acme"), item.as_object().unwrap().keys().map(|m| m.to_uppercase()).collect()))
            .collect();
        paths.push(("/openapi.json".into(), vec!["GET".into()]));
        paths.push(("/docs/".into(), vec!["GET".into()]));
        paths.push(("/metrics".into(), vec!["GET".into()]));
        for (path, documented) in paths {
            for method in [Method::TRACE, Method::from_bytes(b"PROPFIND").unwrap()] {
                let response = app.client.request(method.clone(), app.url(&path)).send().await.unwrap();
                assert_eq!(response.status(), 405, "{method} {path}");
                let allow = response
                    .headers()
                    .get("allow")
                    .unwrap_or_else(|| panic!("{method} {path}: 405 without Allow"))
                    .to_str()
                    .unwrap()
                    .to_owned();
                let allowed: Vec<&str> = allow.split(',').map(str::trim).collect();
                for m in &documented {
                    assert!(allowed.contains(&m.as_str()), "{path}: Allow `{allow}` lacks documented {m}");
                }
                for m in &allowed {
                    assert!(*m == "HEAD" || documented.iter().any(|d| d == m), "{path}: Allow `{allow}` names undocumented {m}");
                }
                assert_eq!(response.headers()["content-type"], "application/problem+json", "{method} {path}");
            }
        }
    }
}
