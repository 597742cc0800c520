//! Health, readiness, metrics, the OpenAPI document and the docs UI, and the
//! problem documents that bad requests get anywhere.

use serde_json::{Value, json};

use crate::helpers::{assert_problem, error_fields};

backend_tests! {
    async fn health_and_readiness_answer(app) {
        let health = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200);
        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200);
        assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ok");
    }

    async fn metrics_count_requests_by_route_and_status(app) {
        app.get("/v1/providers/nobody", &app.admin()).await;
        let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(text.contains(r#"clearance_http_requests_total{endpoint="/v1/providers/{provider}",method="GET",status="404"} 1"#), "{text}");
        assert!(text.contains("clearance_http_requests_duration_seconds_bucket"), "{text}");
    }

    async fn openapi_documents_every_route_with_roles_and_problems(app) {
        let doc = app.openapi().await;
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let post = &doc["paths"]["/v1/providers"]["post"];
        assert!(post["description"].as_str().unwrap().contains("vendor_manager"), "{post}");
        assert!(post["responses"]["422"]["content"]["application/problem+json"].is_object(), "{post}");
        for path in ["/v1/providers/{provider}", "/v1/providers/{provider}/models", "/v1/providers/{provider}/models/{model}", "/healthz", "/readyz", "/v1/providers/{provider}/suspend", "/v1/providers/{provider}/resume"] {
            assert!(doc["paths"][path].is_object(), "{path} is documented");
        }
        // Every operation that needs a token documents 401 and 403, every
        // one that reads a body 400, 413 and 415; each a problem document.
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let responses = &operation["responses"];
                let secured = operation["security"].as_array().is_some_and(|s| !s.is_empty());
                let statuses: &[&str] = match (secured, operation["requestBody"].is_object()) {
                    (true, true) => &["400", "401", "403", "413", "415", "500"],
                    (true, false) => &["401", "403", "500"],
                    (false, true) => &["400", "413", "415", "500"],
                    (false, false) => &["500"],
                };
                for status in statuses {
                    assert!(responses[*status].is_object(), "{method} {path} lists {status}");
                }
            }
        }
        assert!(doc["paths"]["/healthz"]["get"]["responses"]["401"].is_null());
        let unauthenticated = &doc["components"]["responses"]["Unauthenticated"];
        assert!(unauthenticated["content"]["application/problem+json"]["schema"]["$ref"].as_str().unwrap().ends_with("/Problem"), "{unauthenticated}");
        let provider_suspend = &doc["paths"]["/v1/providers/{provider}/suspend"]["post"];
        assert_eq!(provider_suspend["operationId"], "suspend_provider");
        assert!(provider_suspend["parameters"].as_array().unwrap().iter().all(|p| p["name"] != "model"), "{provider_suspend}");
    }

    async fn docs_ui_is_served_without_a_cdn(app) {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::limited(3)).build().unwrap();
        let page = client.get(app.url("/docs")).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("swagger-ui"), "{html}");
        assert!(!html.contains("src=\"http"), "assets are local: {html}");
        let initializer = client.get(app.url("/docs/swagger-initializer.js")).send().await.unwrap().text().await.unwrap();
        assert!(initializer.contains("/openapi.json"), "{initializer}");
    }

    async fn unknown_routes_are_problem_documents(app) {
        let body = assert_problem(app.get("/v1/nothing-here", &app.admin()).await, 404).await;
        assert_eq!(body["type"], "/problems/not-found");
        assert!(body["detail"].as_str().unwrap().contains("/v1/nothing-here"));
    }

    async fn a_method_the_route_lacks_is_405(app) {
        let response = app.client.delete(app.url("/v1/providers")).bearer_auth(app.admin()).send().await.unwrap();
        assert_eq!(response.headers()["allow"], "GET, POST");
        assert_problem(response, 405).await;
    }

    async fn malformed_json_is_400(app) {
        for body in ["{\"slug\": ", "not json", "", "{\"slug\": \"a\",}"] {
            let response = app.client.post(app.url("/v1/providers")).bearer_auth(app.manager())
                .header("content-type", "application/json").body(body).send().await.unwrap();
            let problem = assert_problem(response, 400).await;
            assert_eq!(problem["type"], "/problems/malformed-json", "{body:?}");
        }
    }

    async fn a_body_that_is_not_an_object_is_422(app) {
        let problem = assert_problem(app.post("/v1/providers", &app.manager(), &json!([1, 2])).await, 422).await;
        assert!(problem["detail"].as_str().unwrap().contains("JSON object"), "{problem}");
    }

    async fn an_oversized_body_is_413(app) {
        let notes = "x".repeat(2 * 1024 * 1024);
        let response = app.post("/v1/providers", &app.manager(), &json!({"slug": "big", "name": "Big", "notes": notes})).await;
        assert_problem(response, 413).await;
        let after = app.get("/v1/providers/big", &app.manager()).await;
        assert_eq!(after.status(), 404, "nothing was stored");
    }

    async fn a_body_that_is_not_json_is_415(app) {
        let response = app.client.post(app.url("/v1/providers")).bearer_auth(app.manager())
            .header("content-type", "application/x-www-form-urlencoded").body("slug=a&name=b").send().await.unwrap();
        assert_problem(response, 415).await;
    }

    async fn a_bad_limit_is_named(app) {
        for limit in ["0", "201", "ten", "-1"] {
            let problem = assert_problem(app.get(&format!("/v1/providers?limit={limit}"), &app.admin()).await, 422).await;
            assert_eq!(error_fields(&problem), ["limit"], "limit={limit}");
        }
        let problem = assert_problem(app.get("/v1/providers?cursor=%%%", &app.admin()).await, 422).await;
        assert_eq!(error_fields(&problem), ["cursor"]);
    }

    async fn a_link_that_is_not_an_invitation_opens_a_page_that_says_so(app) {
        let page = app.client.get(app.url("/respond/some.token.value")).send().await.unwrap();
        assert_eq!(page.status(), 403);
        assert_eq!(page.headers()["referrer-policy"], "no-referrer");
        assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
        let html = page.text().await.unwrap();
        assert!(html.contains("This link does not work"), "{html}");
    }

    async fn responses_carry_a_request_id(app) {
        let response = app.client.get(app.url("/healthz")).send().await.unwrap();
        let id = response.headers()["x-request-id"].to_str().unwrap();
        assert_eq!(id.len(), 36, "{id}");
    }
}
