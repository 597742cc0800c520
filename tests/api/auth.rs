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
}
