//! Bearer tokens and roles at the HTTP edge.

use chrono::{TimeDelta, Utc};
use clearance::auth::{Role, TokenIssuer};
use serde_json::json;

use crate::helpers::{SECRET, assert_problem};

backend_tests! {
    async fn a_request_without_a_token_is_401(app) {
        let response = app.client.get(app.url("/v1/providers")).send().await.unwrap();
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let problem = assert_problem(response, 401).await;
        assert_eq!(problem["type"], "/problems/unauthorized");
    }

    async fn a_garbage_or_foreign_token_is_401(app) {
        let foreign = TokenIssuer::new("some-other-secret-entirely", &Default::default()).unwrap()
            .issue("mallory", None, &[Role::Admin], Utc::now(), TimeDelta::hours(1)).unwrap();
        for token in ["garbage", "a.b.c", foreign.as_str()] {
            assert_problem(app.get("/v1/providers", token).await, 401).await;
        }
        let basic = app.client.get(app.url("/v1/providers")).header("authorization", "Basic YTpi").send().await.unwrap();
        assert_problem(basic, 401).await;
    }

    async fn an_expired_token_is_401(app) {
        let expired = TokenIssuer::new(SECRET, &Default::default()).unwrap()
            .issue("ada", None, &[Role::Admin], Utc::now() - TimeDelta::hours(2), TimeDelta::hours(1)).unwrap();
        let problem = assert_problem(app.get("/v1/providers", &expired).await, 401).await;
        assert!(problem["detail"].as_str().unwrap().contains("expired"), "{problem}");
    }

    async fn a_token_without_the_role_is_403(app) {
        let integrator = app.token("ci", &[Role::Integrator]);
        let response = app.post("/v1/providers", &integrator, &json!({"slug": "acme", "name": "Acme"})).await;
        let problem = assert_problem(response, 403).await;
        assert!(problem["detail"].as_str().unwrap().contains("vendor_manager"), "{problem}");
        assert_eq!(app.get("/v1/providers/acme", &app.admin()).await.status(), 404, "nothing was created");
    }

    async fn every_role_may_read_the_catalogue(app) {
        app.create_provider("acme").await;
        for &role in Role::ALL {
            let token = app.token("reader", &[role]);
            assert_eq!(app.get("/v1/providers/acme", &token).await.status(), 200, "{role}");
        }
        let no_roles = app.token("nobody", &[]);
        assert_problem(app.get("/v1/providers/acme", &no_roles).await, 403).await;
    }

    async fn callers_of_the_api_and_of_the_status_lane_are_in_the_directory(app) {
        // A status lookup is answered by the fast lane; a catalogue read by the application.
        let lookup = app.token("lane-caller", &[Role::Integrator]);
        assert_eq!(app.get("/v1/status/acme/widget", &lookup).await.status(), 200);
        let reader = app.token("api-caller", &[Role::SecurityReviewer]);
        assert_eq!(app.get("/v1/providers", &reader).await.status(), 200);

        let mut people = json!([]);
        for _ in 0..50 {
            people = app.get("/v1/admin/people", &app.admin()).await.json().await.unwrap();
            let subs: Vec<_> = people.as_array().unwrap().iter().map(|p| p["sub"].clone()).collect();
            if subs.contains(&json!("lane-caller")) && subs.contains(&json!("api-caller")) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let person = |sub: &str| {
            people.as_array().unwrap().iter().find(|p| p["sub"] == sub).cloned()
                .unwrap_or_else(|| panic!("{sub} is not in the directory: {people}"))
        };
        assert_eq!(person("lane-caller")["email"], "lane-caller@example.com");
        assert_eq!(person("lane-caller")["roles"], json!(["integrator"]));
        assert_eq!(person("api-caller")["roles"], json!(["security_reviewer"]));
    }
}
