//! Providers and models: the catalogue API.

use serde_json::{Value, json};

use crate::helpers::{assert_problem, error_fields};

backend_tests! {
    async fn a_manager_registers_a_provider_and_a_model(app) {
        let token = app.manager();
        let response = app.post("/v1/providers", &token, &json!({
            "slug": "anthropic", "name": "Anthropic", "website": "https://www.anthropic.com",
            "contacts": [{"name": "Security team", "email": "security@anthropic.com", "role": "security"}],
            "notes": "Primary LLM supplier"
        })).await;
        assert_eq!(response.status(), 201);
        assert_eq!(response.headers()["location"], "/v1/providers/anthropic");
        assert_eq!(response.headers()["etag"], "\"1\"");
        let provider: Value = response.json().await.unwrap();
        assert_eq!(provider["name"], "Anthropic");
        assert_eq!(provider["contacts"][0]["email"], "security@anthropic.com");
        assert_eq!(provider["created_at"], "2026-03-02T09:00:00Z");

        let response = app.post("/v1/providers/anthropic/models", &token, &json!({
            "slug": "claude-sonnet-4-5", "name": "Claude Sonnet 4.5", "version": "20250929",
            "modality": "multimodal", "hosting": "provider_api"
        })).await;
        assert_eq!(response.status(), 201);
        assert_eq!(response.headers()["location"], "/v1/providers/anthropic/models/claude-sonnet-4-5");

        let model: Value = app.get("/v1/providers/anthropic/models/claude-sonnet-4-5", &token).await.json().await.unwrap();
        assert_eq!(model["provider"], "anthropic");
        assert_eq!(model["version"], "20250929");
        assert_eq!(model["hosting"], "provider_api");
        assert_eq!(model["suspended"], false);
    }

    async fn a_taken_slug_is_409(app) {
        app.create_provider("acme").await;
        let problem = assert_problem(app.post("/v1/providers", &app.manager(), &json!({"slug": "acme", "name": "Again"})).await, 409).await;
        assert!(problem["detail"].as_str().unwrap().contains("acme"));

        app.post("/v1/providers/acme/models", &app.manager(), &json!({"slug": "m1", "name": "M1"})).await;
        assert_problem(app.post("/v1/providers/acme/models", &app.manager(), &json!({"slug": "m1", "name": "M1"})).await, 409).await;
        // The same model slug under another provider is a different model.
        app.create_provider("other").await;
        assert_eq!(app.post("/v1/providers/other/models", &app.manager(), &json!({"slug": "m1", "name": "M1"})).await.status(), 201);
    }

    async fn concurrent_registrations_of_one_slug_create_it_once(app) {
        let token = app.manager();
        let attempts = (0..8).map(|i| {
            let request = app.client.post(app.url("/v1/providers")).bearer_auth(&token).json(&json!({"slug": "racy", "name": format!("Racy {i}")}));
            async move { request.send().await.unwrap().status().as_u16() }
        });
        let mut statuses = futures_util::future::join_all(attempts).await;
        statuses.sort();
        assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409]);
    }

    async fn every_invalid_field_is_named(app) {
        let problem = assert_problem(app.post("/v1/providers", &app.manager(), &json!({
            "slug": "Not A Slug", "name": " ", "website": "ftp://files.example", "contacts": [{"email": "ok@example.com"}, {"email": "not-an-email"}]
        })).await, 422).await;
        assert_eq!(problem["type"], "/problems/validation");
        assert_eq!(error_fields(&problem), ["contacts[1].email", "name", "slug", "website"]);

        let problem = assert_problem(app.post("/v1/providers", &app.manager(), &json!({})).await, 422).await;
        assert_eq!(error_fields(&problem), ["name", "slug"]);

        let problem = assert_problem(app.post("/v1/providers", &app.manager(), &json!({"slug": "a", "name": ["x"]})).await, 422).await;
        assert_eq!(error_fields(&problem), ["name"]);

        let problem = assert_problem(app.post("/v1/providers", &app.manager(), &json!({"slug": "a", "name": "A", "colour": "red"})).await, 422).await;
        assert_eq!(error_fields(&problem), ["colour"]);

        let long = "x".repeat(201);
        let problem = assert_problem(app.post("/v1/providers", &app.manager(), &json!({"slug": "a".repeat(64), "name": long})).await, 422).await;
        assert_eq!(error_fields(&problem), ["name", "slug"]);
    }

    async fn invalid_models_are_named(app) {
        app.create_provider("acme").await;
        let problem = assert_problem(app.post("/v1/providers/acme/models", &app.manager(), &json!({"slug": "ok", "name": "Ok", "modality": "telepathy"})).await, 422).await;
        assert_eq!(error_fields(&problem), ["modality"]);
        assert!(problem["errors"][0]["message"].as_str().unwrap().contains("multimodal"), "{problem}");
        let problem = assert_problem(app.post("/v1/providers/acme/models", &app.manager(), &json!({"slug": "-x", "name": ""})).await, 422).await;
        assert_eq!(error_fields(&problem), ["name", "slug"]);
    }

    async fn unknown_providers_and_models_are_404(app) {
        assert_problem(app.get("/v1/providers/nobody", &app.admin()).await, 404).await;
        assert_problem(app.get("/v1/providers/nobody/models", &app.admin()).await, 404).await;
        assert_problem(app.post("/v1/providers/nobody/models", &app.manager(), &json!({"slug": "m", "name": "M"})).await, 404).await;
        app.create_provider("acme").await;
        assert_problem(app.get("/v1/providers/acme/models/nothing", &app.admin()).await, 404).await;
        assert_problem(app.patch("/v1/providers/acme/models/nothing", &app.manager(), &json!({"name": "X"}), None).await, 404).await;
    }

    async fn lists_page_through_every_item_once(app) {
        for i in 0..7 {
            app.create_provider(&format!("p{i}")).await;
        }
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/providers?limit=3&cursor={c}"),
                None => "/v1/providers?limit=3".to_owned(),
            };
            let page: Value = app.get(&path, &app.admin()).await.json().await.unwrap();
            pages += 1;
            seen.extend(page["items"].as_array().unwrap().iter().map(|p| p["slug"].as_str().unwrap().to_owned()));
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, ["p0", "p1", "p2", "p3", "p4", "p5", "p6"]);
    }

    async fn models_are_listed_per_provider(app) {
        app.create_provider("acme").await;
        app.create_provider("other").await;
        for slug in ["b", "a"] {
            app.post("/v1/providers/acme/models", &app.manager(), &json!({"slug": slug, "name": slug})).await;
        }
        app.post("/v1/providers/other/models", &app.manager(), &json!({"slug": "c", "name": "c"})).await;
        let page: Value = app.get("/v1/providers/acme/models", &app.admin()).await.json().await.unwrap();
        let slugs: Vec<_> = page["items"].as_array().unwrap().iter().map(|m| m["slug"].as_str().unwrap()).collect();
        assert_eq!(slugs, ["a", "b"]);
        assert_eq!(page["next_cursor"], Value::Null);
    }

    async fn a_patch_changes_only_what_it_names(app) {
        let token = app.manager();
        app.post("/v1/providers", &token, &json!({"slug": "acme", "name": "Acme", "website": "https://acme.example", "notes": "n"})).await;
        app.clock.advance(chrono::TimeDelta::hours(1));
        let response = app.patch("/v1/providers/acme", &token, &json!({"name": "Acme Corp", "website": null}), Some("\"1\"")).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["etag"], "\"2\"");
        let provider: Value = response.json().await.unwrap();
        assert_eq!(provider["name"], "Acme Corp");
        assert_eq!(provider["website"], Value::Null);
        assert_eq!(provider["notes"], "n");
        assert_eq!(provider["updated_at"], "2026-03-02T10:00:00Z");

        let stored: Value = app.get("/v1/providers/acme", &token).await.json().await.unwrap();
        assert_eq!(stored, provider);
    }

    async fn a_stale_if_match_is_412_and_changes_nothing(app) {
        let token = app.manager();
        app.create_provider("acme").await;
        assert_eq!(app.patch("/v1/providers/acme", &token, &json!({"name": "First"}), Some("\"1\"")).await.status(), 200);
        let problem = assert_problem(app.patch("/v1/providers/acme", &token, &json!({"name": "Second"}), Some("\"1\"")).await, 412).await;
        assert_eq!(problem["type"], "/problems/precondition-failed");
        let stored: Value = app.get("/v1/providers/acme", &token).await.json().await.unwrap();
        assert_eq!(stored["name"], "First");
    }

    async fn concurrent_patches_with_one_etag_apply_once(app) {
        let token = app.manager();
        app.create_provider("acme").await;
        let attempts = (0..6).map(|i| {
            let request = app.client.patch(app.url("/v1/providers/acme")).bearer_auth(&token)
                .header("if-match", "\"1\"").json(&json!({"name": format!("Name {i}")}));
            async move { request.send().await.unwrap().status().as_u16() }
        });
        let mut statuses = futures_util::future::join_all(attempts).await;
        statuses.sort();
        assert_eq!(statuses, [200, 412, 412, 412, 412, 412]);
        let stored: Value = app.get("/v1/providers/acme", &token).await.json().await.unwrap();
        assert_eq!(stored["revision"], 2);
    }

    async fn a_model_patch_can_clear_and_set_fields(app) {
        let token = app.manager();
        app.create_provider("acme").await;
        app.post("/v1/providers/acme/models", &token, &json!({"slug": "m", "name": "M", "version": "1", "modality": "text"})).await;
        let response = app.patch("/v1/providers/acme/models/m", &token, &json!({"version": null, "hosting": "self_hosted"}), Some("\"1\"")).await;
        assert_eq!(response.status(), 200);
        let model: Value = response.json().await.unwrap();
        assert_eq!(model["version"], Value::Null);
        assert_eq!(model["modality"], "text");
        assert_eq!(model["hosting"], "self_hosted");
        assert_eq!(model["revision"], 2);
        assert_problem(app.patch("/v1/providers/acme/models/m", &token, &json!({"hosting": "moon"}), None).await, 422).await;
    }
}
