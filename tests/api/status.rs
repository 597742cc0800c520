//! The integrators' contract: status lookups, contextual checks with reason
//! codes, attestations, the suspend switch and webhooks.

use std::sync::{Arc, Mutex};

use chrono::{TimeDelta, Utc};
use clearance::auth::{Role, TokenIssuer};
use serde_json::{Value, json};

use crate::flow::Flow;
use crate::helpers::{SECRET, TestApp, assert_problem, error_fields};

/// Registers `acme` (once) and `model`, and approves a low-tier review of it,
/// with `conditions` on the security approval.
pub async fn approve(app: &TestApp, model: &str, conditions: Option<Value>) -> String {
    ensure_model(app, model).await;
    let flow = Flow::start_for(app, "acme", Some(model)).await;
    flow.through_intake(json!({})).await;
    let victor = app.token("victor", &[Role::VendorManager]);
    flow.answer_and_submit(&victor, "security", json!({})).await;
    flow.answer_and_submit(&victor, "privacy", json!({})).await;
    let mut decision = json!({"decision": "approve"});
    if let Some(conditions) = conditions {
        decision["conditions"] = conditions;
    }
    let response = flow
        .decide(
            &app.token("sam", &[Role::SecurityReviewer]),
            "security",
            decision,
        )
        .await;
    assert_eq!(response.status(), 200);
    flow.approve(&app.token("pia", &[Role::PrivacyReviewer]), "privacy")
        .await;
    flow.id.clone()
}

async fn ensure_model(app: &TestApp, model: &str) {
    let manager = app.manager();
    if app.get("/v1/providers/acme", &manager).await.status() == 404 {
        app.create_provider("acme").await;
    }
    if app
        .get(&format!("/v1/providers/acme/models/{model}"), &manager)
        .await
        .status()
        == 404
    {
        let created = app
            .post(
                "/v1/providers/acme/models",
                &manager,
                &json!({"slug": model, "name": model}),
            )
            .await;
        assert_eq!(created.status(), 201);
    }
}

async fn reject(app: &TestApp, model: &str) {
    ensure_model(app, model).await;
    let flow = Flow::start_for(app, "acme", Some(model)).await;
    flow.answer_and_submit(
        &app.token("victor", &[Role::VendorManager]),
        "intake",
        json!({}),
    )
    .await;
    let response = flow
        .decide(
            &app.token("vera", &[Role::VendorManager]),
            "intake",
            json!({"decision": "reject", "comment": "Out of policy"}),
        )
        .await;
    assert_eq!(response.status(), 200);
}

async fn status(app: &TestApp, model: &str) -> Value {
    let response = app
        .get(
            &format!("/v1/status/acme/{model}"),
            &app.token("ci", &[Role::Integrator]),
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn check(app: &TestApp, items: Value) -> Vec<Value> {
    let response = app
        .post(
            "/v1/status/check",
            &app.token("ci", &[Role::Integrator]),
            &json!({"items": items}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["results"].as_array().unwrap().clone()
}

/// A webhook receiver on loopback that records deliveries and fails the first `failures`.
pub struct Receiver {
    pub url: String,
    seen: Arc<Mutex<Vec<(actix_web::http::header::HeaderMap, String)>>>,
}

impl Receiver {
    pub fn start(failures: usize) -> Receiver {
        use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
        let seen: Arc<Mutex<Vec<(actix_web::http::header::HeaderMap, String)>>> = Arc::default();
        let remaining = Arc::new(Mutex::new(failures));
        let recorded = seen.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            let recorded = recorded.clone();
            let remaining = remaining.clone();
            App::new().default_service(web::to(move |req: HttpRequest, body: String| {
                let recorded = recorded.clone();
                let remaining = remaining.clone();
                async move {
                    recorded.lock().unwrap().push((req.headers().clone(), body));
                    let mut left = remaining.lock().unwrap();
                    if *left > 0 {
                        *left -= 1;
                        return HttpResponse::InternalServerError().finish();
                    }
                    HttpResponse::NoContent().finish()
                }
            }))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Receiver {
            url: format!("http://127.0.0.1:{port}/hooks"),
            seen,
        }
    }

    pub fn deliveries(&self) -> Vec<(actix_web::http::header::HeaderMap, String)> {
        self.seen.lock().unwrap().clone()
    }
}

async fn run_outbox(app: &TestApp) -> Value {
    let response = app
        .post("/v1/admin/jobs/outbox/run", &app.admin(), &json!({}))
        .await;
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["result"].clone()
}

backend_tests! {
    async fn an_unknown_model_is_not_reviewed_never_404(app) {
        let body = status(&app, "ghost").await;
        assert_eq!(body["status"], "not_reviewed");
        assert_eq!(body["provider"], "acme");
        assert_eq!(body["review_id"], Value::Null);
        let results = check(&app, json!([{"provider": "nobody", "model": "nothing"}])).await;
        assert_eq!(results[0]["allow"], false);
        assert_eq!(results[0]["reasons"], json!(["not_reviewed"]));
    }

    async fn status_paths_refuse_other_shapes_and_methods_as_problems(app) {
        approve(&app, "m-1", None).await;
        let ci = app.token("ci", &[Role::Integrator]);
        // A percent-encoded slug is the slug.
        let response = app.get("/v1/status/acme/m%2D1", &ci).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.json::<Value>().await.unwrap()["status"], "approved");
        for path in ["/v1/status/acme", "/v1/status/acme/m-1/", "/v1/status/acme//x", "/v1/status/acme/m-1/other", "/v1/status/acme/m-1/attestation/x"] {
            let problem = assert_problem(app.get(path, &ci).await, 404).await;
            assert!(problem["detail"].as_str().unwrap().contains(path), "{problem}");
        }
        let head = app.client.head(app.url("/v1/status/acme/m-1")).bearer_auth(&ci).send().await.unwrap();
        assert_eq!(head.status(), 200);
        let etag = head.headers()["etag"].clone();
        assert_eq!(head.headers()["content-length"], app.get("/v1/status/acme/m-1", &ci).await.bytes().await.unwrap().len().to_string().as_str());
        assert!(head.bytes().await.unwrap().is_empty(), "HEAD answers no body");
        let unchanged = app.client.head(app.url("/v1/status/acme/m-1")).bearer_auth(&ci).header("if-none-match", etag).send().await.unwrap();
        assert_eq!(unchanged.status(), 304);
        let problem = assert_problem(app.post("/v1/status/acme/m-1", &ci, &json!({})).await, 405).await;
        assert!(problem["detail"].as_str().unwrap().contains("POST"), "{problem}");
        assert_problem(app.client.get(app.url("/v1/status/acme/m-1")).send().await.unwrap(), 401).await;
        assert_eq!(app.get("/v1/status/acme/m-1/attestation", &ci).await.status(), 200);
        let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        for line in [
            r#"clearance_http_requests_total{endpoint="/v1/status/{provider}/{model}",method="GET",status="200"} 2"#,
            r#"clearance_http_requests_total{endpoint="/v1/status/{provider}/{model}",method="HEAD",status="200"} 1"#,
            r#"clearance_http_requests_total{endpoint="/v1/status/{provider}/{model}",method="HEAD",status="304"} 1"#,
            r#"clearance_http_requests_total{endpoint="/v1/status/{provider}/{model}",method="POST",status="405"} 1"#,
            r#"clearance_http_requests_total{endpoint="/v1/status/{provider}/{model}/attestation",method="GET",status="200"} 1"#,
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }

    async fn lookups_carry_request_ids_etags_and_problems_like_every_route(app) {
        approve(&app, "m-1", None).await;
        let ci = app.token("ci", &[Role::Integrator]);
        let url = app.url("/v1/status/acme/m-1");
        let first = app.client.get(&url).bearer_auth(&ci).send().await.unwrap();
        assert_eq!(first.status(), 200);
        assert_eq!(first.headers()["x-request-id"].to_str().unwrap().len(), 36);
        assert_eq!(first.headers()["cache-control"], "no-cache");
        assert_eq!(first.headers()["content-type"], "application/json");
        let etag = first.headers()["etag"].clone();
        let again = app.client.get(&url).bearer_auth(&ci).header("if-none-match", etag.clone())
            .header("x-request-id", "trace-42").send().await.unwrap();
        assert_eq!(again.status(), 304);
        assert_eq!(again.headers()["etag"], etag);
        assert_eq!(again.headers()["x-request-id"], "trace-42");
        let expired = TokenIssuer::new(SECRET, &Default::default()).unwrap()
            .issue("ci", None, &[Role::Integrator], Utc::now() - TimeDelta::hours(2), TimeDelta::hours(1)).unwrap();
        let refused = app.client.get(&url).bearer_auth(expired).send().await.unwrap();
        assert_eq!(refused.headers()["x-request-id"].to_str().unwrap().len(), 36);
        let problem = assert_problem(refused, 401).await;
        assert!(problem["detail"].as_str().unwrap().contains("expired"), "{problem}");
        let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        for line in [
            r#"clearance_http_requests_total{endpoint="/v1/status/{provider}/{model}",method="GET",status="200"} 1"#,
            r#"clearance_http_requests_total{endpoint="/v1/status/{provider}/{model}",method="GET",status="304"} 1"#,
            r#"clearance_http_requests_total{endpoint="/v1/status/{provider}/{model}",method="GET",status="401"} 1"#,
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }

    async fn checks_read_escaped_strings(app) {
        approve(&app, "m-1", Some(json!({"regions": ["eu"]}))).await;
        // Escapes, as a client may send them: the item names `acme`, `m-1`, `eu` and `us`.
        let body = r#"{"items": [{"provider": "ac\u006de", "model": "m\u002d1", "regions": ["\u0065u", "u\u0073"]}]}"#;
        let response = app.client.post(app.url("/v1/status/check"))
            .bearer_auth(app.token("ci", &[Role::Integrator]))
            .header("content-type", "application/json")
            .body(body)
            .send().await.unwrap();
        assert_eq!(response.status(), 200);
        let results: Value = response.json().await.unwrap();
        let result = &results["results"][0];
        assert_eq!(result["provider"], "acme");
        assert_eq!(result["model"], "m-1");
        assert_eq!(result["status"], "approved_with_conditions");
        assert_eq!(result["reasons"], json!(["region_not_allowed:us"]));
    }

    async fn every_status_is_published(app) {
        ensure_model(&app, "fresh").await;
        assert_eq!(status(&app, "fresh").await["status"], "not_reviewed");
        let flow = Flow::start_for(&app, "acme", Some("fresh")).await;
        let body = status(&app, "fresh").await;
        assert_eq!(body["status"], "in_review");
        assert_eq!(body["review_id"], flow.id.as_str());

        let review_id = approve(&app, "good", None).await;
        let body = status(&app, "good").await;
        assert_eq!(body["status"], "approved");
        assert_eq!(body["tier"], "low");
        assert_eq!(body["review_id"], review_id.as_str());
        assert_eq!(body["decided_at"], "2026-03-02T09:00:00Z");
        assert_eq!(body["valid_until"], "2028-03-01T09:00:00Z");
        assert_eq!(body["conditions"], json!({}));

        approve(&app, "limited", Some(json!({"regions": ["eu"]}))).await;
        let body = status(&app, "limited").await;
        assert_eq!(body["status"], "approved_with_conditions");
        assert_eq!(body["conditions"], json!({"regions": ["eu"]}));

        reject(&app, "bad").await;
        assert_eq!(status(&app, "bad").await["status"], "rejected");

        let suspended = app.post("/v1/models/acme/good/suspend", &app.admin(), &json!({"reason": "Provider incident"})).await;
        assert_eq!(suspended.status(), 200);
        let body = status(&app, "good").await;
        assert_eq!(body["status"], "suspended");
        assert_eq!(body["suspended_reason"], "Provider incident");
        assert_eq!(app.post("/v1/models/acme/good/resume", &app.admin(), &json!({})).await.status(), 200);
        assert_eq!(status(&app, "good").await["status"], "approved");

        app.clock.advance(TimeDelta::days(731));
        let body = status(&app, "good").await;
        assert_eq!(body["status"], "expired", "computed from the clock at query time");
        assert_eq!(body["valid_until"], "2028-03-01T09:00:00Z");
    }

    async fn an_approval_stays_in_force_while_its_re_review_runs(app) {
        approve(&app, "steady", None).await;
        Flow::start_for(&app, "acme", Some("steady")).await;
        assert_eq!(status(&app, "steady").await["status"], "approved");
    }

    async fn a_provider_wide_review_covers_every_model(app) {
        ensure_model(&app, "one").await;
        ensure_model(&app, "two").await;
        let flow = Flow::start_for(&app, "acme", None).await;
        flow.through_intake(json!({})).await;
        let victor = app.token("victor", &[Role::VendorManager]);
        flow.answer_and_submit(&victor, "security", json!({})).await;
        flow.answer_and_submit(&victor, "privacy", json!({})).await;
        flow.approve(&app.token("sam", &[Role::SecurityReviewer]), "security").await;
        flow.approve(&app.token("pia", &[Role::PrivacyReviewer]), "privacy").await;
        assert_eq!(status(&app, "one").await["status"], "approved");
        assert_eq!(status(&app, "two").await["review_id"], flow.id.as_str());
        reject(&app, "two").await;
        assert_eq!(status(&app, "two").await["status"], "rejected", "a newer model-level decision governs");
        assert_eq!(status(&app, "one").await["status"], "approved");
        ensure_model(&app, "three").await;
        let later = status(&app, "three").await;
        assert_eq!((&later["status"], &later["review_id"]), (&json!("approved"), &json!(flow.id)), "a model registered later is covered at once");
        assert_eq!(check(&app, json!([{"provider": "acme", "model": "three"}])).await[0]["allow"], true);
    }

    async fn etags_are_strong_and_answer_304(app) {
        approve(&app, "cached", None).await;
        let token = app.token("ci", &[Role::Integrator]);
        let first = app.get("/v1/status/acme/cached", &token).await;
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"') && !etag.starts_with("W/"), "{etag}");
        let again = app.client.get(app.url("/v1/status/acme/cached")).bearer_auth(&token).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(again.status(), 304);
        app.post("/v1/models/acme/cached/suspend", &app.admin(), &json!({"reason": "x"})).await;
        let changed = app.client.get(app.url("/v1/status/acme/cached")).bearer_auth(&token).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(changed.status(), 200);
        assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag);
        let body: Value = changed.json().await.unwrap();
        assert!(body["version"].as_i64().unwrap() > 0);
    }

    async fn versions_and_etags_are_the_same_on_every_instance_and_after_a_restart(app) {
        approve(&app, "early", None).await;
        approve(&app, "late", None).await;
        let suspended: Value = app.post("/v1/models/acme/late/suspend", &app.admin(), &json!({"reason": "x"})).await.json().await.unwrap();
        assert_eq!(suspended[0], status(&app, "late").await, "the switch answers the clearance as published");
        let restarted = app.spawn_beside(|_| {}).await;
        let token = app.token("ci", &[Role::Integrator]);
        let mut versions = Vec::new();
        for model in ["early", "late"] {
            let path = format!("/v1/status/acme/{model}");
            let (here, there) = (app.get(&path, &token).await, restarted.get(&path, &token).await);
            assert_eq!(here.headers()["etag"], there.headers()["etag"], "{model}");
            let (here, there): (Value, Value) = (here.json().await.unwrap(), there.json().await.unwrap());
            assert_eq!(here, there);
            versions.push(here["version"].as_i64().unwrap());
        }
        assert!(0 < versions[0] && versions[0] < versions[1], "each model keeps the version of its own last change: {versions:?}");
    }

    async fn checks_allow_only_what_conditions_admit_with_reason_codes(app) {
        approve(&app, "open", None).await;
        approve(&app, "scoped", Some(json!({"use_cases": ["support-chat"], "data_classes": ["public", "internal"], "regions": ["eu"], "features_off": ["web_grounding"]}))).await;
        reject(&app, "bad").await;
        ensure_model(&app, "pending").await;
        Flow::start_for(&app, "acme", Some("pending")).await;
        approve(&app, "paused", None).await;
        app.post("/v1/models/acme/paused/suspend", &app.admin(), &json!({"reason": "incident"})).await;

        let results = check(&app, json!([
            {"provider": "acme", "model": "open"},
            {"provider": "acme", "model": "scoped", "use_case": "support-chat", "data_classes": ["internal"], "regions": ["eu"], "features": ["tools"]},
            {"provider": "acme", "model": "scoped", "use_case": "hr-screening", "data_classes": ["personal", "internal"], "regions": ["us"], "features": ["web_grounding"]},
            {"provider": "acme", "model": "scoped"},
            {"provider": "acme", "model": "bad"},
            {"provider": "acme", "model": "pending"},
            {"provider": "acme", "model": "paused"},
            {"provider": "acme", "model": "ghost"},
        ])).await;
        let reasons: Vec<Value> = results.iter().map(|r| r["reasons"].clone()).collect();
        assert_eq!(results[0]["allow"], true);
        assert_eq!(results[1]["allow"], true);
        assert_eq!(results[2]["allow"], false);
        assert_eq!(reasons[2], json!(["use_case_not_allowed:hr-screening", "data_class_not_allowed:personal", "region_not_allowed:us", "feature_must_be_off:web_grounding"]));
        assert_eq!(reasons[3], json!(["use_case_not_stated", "data_classes_not_stated", "regions_not_stated"]));
        assert_eq!(reasons[4], json!(["rejected"]));
        assert_eq!(reasons[5], json!(["in_review"]));
        assert_eq!(reasons[6], json!(["suspended"]));
        assert_eq!(reasons[7], json!(["not_reviewed"]));

        app.clock.advance(TimeDelta::days(800));
        let results = check(&app, json!([{"provider": "acme", "model": "open"}])).await;
        assert_eq!(results[0]["allow"], false, "never past valid_until");
        assert_eq!(results[0]["reasons"], json!(["expired"]));
    }

    async fn a_check_takes_at_most_1000_items(app) {
        let item = json!({"provider": "acme", "model": "m"});
        let thousand: Vec<Value> = (0..1000).map(|_| item.clone()).collect();
        assert_eq!(check(&app, json!(thousand)).await.len(), 1000);
        let too_many: Vec<Value> = (0..1001).map(|_| item.clone()).collect();
        let problem = assert_problem(app.post("/v1/status/check", &app.admin(), &json!({"items": too_many})).await, 422).await;
        assert_eq!(error_fields(&problem), ["items"]);
        let problem = assert_problem(app.post("/v1/status/check", &app.admin(), &json!({"items": []})).await, 422).await;
        assert_eq!(error_fields(&problem), ["items"]);
        let bad = json!({"items": [item, {"provider": "acme", "model": "m", "data_classes": ["secret"]}]});
        let problem = assert_problem(app.post("/v1/status/check", &app.admin(), &bad).await, 422).await;
        assert_eq!(error_fields(&problem), ["items[1].data_classes[0]"]);
        let missing = json!({"items": [{"provider": "acme"}]});
        let problem = assert_problem(app.post("/v1/status/check", &app.admin(), &missing).await, 422).await;
        assert_eq!(error_fields(&problem), ["items[0].model"]);
    }

    async fn every_role_reads_status_but_a_supplier_link_does_not(app) {
        for &role in Role::ALL {
            assert_eq!(app.get("/v1/status/acme/m", &app.token("x", &[role])).await.status(), 200, "{role}");
        }
        assert_problem(app.client.get(app.url("/v1/status/acme/m")).send().await.unwrap(), 401).await;
        assert_problem(app.get("/v1/status/acme/m", &app.token("nobody", &[])).await, 403).await;
    }

    async fn an_attestation_verifies_offline_and_fails_when_tampered(app) {
        approve(&app, "attested", Some(json!({"regions": ["eu"]}))).await;
        let response = app.get("/v1/status/acme/attested/attestation", &app.token("ci", &[Role::Integrator])).await;
        assert_eq!(response.headers()["content-type"], "application/jwt");
        let token = response.text().await.unwrap();
        let jwks = app.client.get(app.url("/.well-known/jwks.json")).send().await.unwrap().text().await.unwrap();

        let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&jwks).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
        let key = jsonwebtoken::DecodingKey::from_jwk(set.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
        validation.set_required_spec_claims(&["exp", "sub"]);
        let claims = jsonwebtoken::decode::<Value>(&token, &key, &validation).unwrap().claims;
        assert_eq!(claims["sub"], "acme/attested");
        assert_eq!(claims["status"], "approved_with_conditions");
        assert_eq!(claims["conditions"], json!({"regions": ["eu"]}));
        // Valid for hours (the default lifetime, 12 h of the system clock), not
        // until the approval's end, which stays a claim.
        let twelve_hours = (chrono::Utc::now() + chrono::TimeDelta::hours(12)).timestamp();
        let exp = claims["exp"].as_i64().unwrap();
        assert!((twelve_hours - 60..=twelve_hours + 1).contains(&exp), "exp {exp}, expected about {twelve_hours}");
        assert_eq!(claims["valid_until"], "2028-03-01T09:00:00Z");

        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut forged = claims.clone();
        forged["status"] = json!("approved");
        forged["conditions"] = json!({});
        use base64::Engine as _;
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged.to_string());
        assert!(jsonwebtoken::decode::<Value>(&parts.join("."), &key, &validation).is_err());
        assert!(clearance::status::attestation::verify(&token, &jwks, chrono::Utc::now()).is_ok());
        assert!(clearance::status::attestation::verify(&parts.join("."), &jwks, chrono::Utc::now()).is_err());
    }

    async fn suspension_is_admin_only_and_reasoned(app) {
        approve(&app, "m", None).await;
        assert_problem(app.post("/v1/models/acme/m/suspend", &app.manager(), &json!({"reason": "x"})).await, 403).await;
        let problem = assert_problem(app.post("/v1/models/acme/m/suspend", &app.admin(), &json!({})).await, 422).await;
        assert_eq!(error_fields(&problem), ["reason"]);
        assert_problem(app.post("/v1/models/acme/nope/suspend", &app.admin(), &json!({"reason": "x"})).await, 404).await;
        assert_eq!(app.post("/v1/providers/acme/suspend", &app.admin(), &json!({"reason": "Breach"})).await.status(), 200);
        assert_eq!(status(&app, "m").await["status"], "suspended");
        let notices: Vec<Value> = app.sent_emails().await.into_iter().filter(|e| e["subject"] == "Suspended: ACME").collect();
        assert_eq!(notices.len(), 1, "the vendor managers (or admins) are told");
        assert!(notices[0]["text"].as_str().unwrap().contains("Breach"), "{}", notices[0]);
        assert_problem(app.post("/v1/providers/acme/suspend", &app.admin(), &json!({"reason": "again"})).await, 409).await;
        ensure_model(&app, "late").await;
        assert_eq!(status(&app, "late").await["status"], "suspended", "a model registered while its provider is suspended");
        app.post("/v1/providers/acme/resume", &app.admin(), &json!({})).await;
        assert_eq!(status(&app, "m").await["status"], "approved");
        assert_eq!(status(&app, "late").await["status"], "not_reviewed");
    }

    async fn of_two_concurrent_suspensions_one_takes_effect(app) {
        approve(&app, "m", None).await;
        for (switch, body) in [("suspend", json!({"reason": "incident"})), ("resume", json!({}))] {
            let path = format!("/v1/models/acme/m/{switch}");
            let admin = app.admin();
            let (one, other) = tokio::join!(app.post(&path, &admin, &body), app.post(&path, &admin, &body));
            let mut statuses = [one.status().as_u16(), other.status().as_u16()];
            statuses.sort();
            assert_eq!(statuses, [200, 409], "{switch}");
        }
        let notices = app.sent_emails().await.into_iter().filter(|e| e["subject"] == "Suspended: m by ACME").count();
        assert_eq!(notices, 1, "one suspension, told once");
        assert_eq!(status(&app, "m").await["status"], "approved");
    }

    async fn webhooks_are_signed_retried_and_delivered_once(app) {
        let receiver = Receiver::start(1);
        let created = app.post("/v1/webhooks", &app.admin(), &json!({"url": receiver.url, "secret": "a-shared-secret-of-some-length"})).await;
        assert_eq!(created.status(), 201);
        let webhook: Value = created.json().await.unwrap();
        assert_eq!(webhook["events"], json!(["status.changed"]));
        approve(&app, "hooked", None).await;

        // Two changes (in review, then approved): one delivery fails once.
        let first = run_outbox(&app).await;
        assert_eq!(first["retrying"], 1, "{first}");
        let again = run_outbox(&app).await;
        assert_eq!(again["claimed"], 0, "the failed one waits for its backoff");
        app.clock.advance(TimeDelta::minutes(5));
        let second = run_outbox(&app).await;
        assert_eq!((second["sent"].as_i64(), second["retrying"].as_i64()), (Some(1), Some(0)), "{second}");
        assert_eq!(run_outbox(&app).await["claimed"], 0, "each delivered once");

        let deliveries = receiver.deliveries();
        assert_eq!(deliveries.len(), 3, "two deliveries and one retry");
        let (headers, body) = deliveries.last().unwrap().clone();
        let delivery_ids: Vec<String> = deliveries.iter().map(|(h, _)| h.get("clearance-delivery").unwrap().to_str().unwrap().to_owned()).collect();
        assert_eq!(delivery_ids.iter().collect::<std::collections::BTreeSet<_>>().len(), 2, "a retry keeps its delivery id");
        assert_eq!(headers.get("clearance-event").unwrap(), "status.changed");
        let signature = headers.get("clearance-signature").unwrap().to_str().unwrap();
        let timestamp: i64 = signature.split(',').next().unwrap().trim_start_matches("t=").parse().unwrap();
        assert_eq!(signature, clearance::webhooks::signature("a-shared-secret-of-some-length", timestamp, body.as_bytes()).unwrap());
        let event: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(event["model"], "hooked");
        let statuses: Vec<String> = deliveries.iter().map(|(_, b)| serde_json::from_str::<Value>(b).unwrap()["clearance"]["status"].as_str().unwrap().to_owned()).collect();
        assert!(statuses.contains(&"in_review".to_owned()) && statuses.contains(&"approved".to_owned()), "{statuses:?}");
        let approved = deliveries.iter().map(|(_, b)| serde_json::from_str::<Value>(b).unwrap()).find(|e| e["clearance"]["status"] == "approved").unwrap();
        assert_eq!(approved["clearance"], status(&app, "hooked").await, "a delivery carries the clearance as lookups publish it");

        let list: Value = app.get("/v1/webhooks", &app.admin()).await.json().await.unwrap();
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
        assert!(list["items"][0].get("secret").is_none(), "the secret is shown only once");
        assert_problem(app.post("/v1/webhooks", &app.admin(), &json!({"url": "ftp://x", "events": ["nope"]})).await, 422).await;
    }

    async fn a_failing_message_dies_after_its_attempts_and_can_be_retried(app) {
        let receiver = Receiver::start(100);
        app.post("/v1/webhooks", &app.admin(), &json!({"url": receiver.url})).await;
        ensure_model(&app, "m").await;
        Flow::start_for(&app, "acme", Some("m")).await;
        for _ in 0..8 {
            run_outbox(&app).await;
            app.clock.advance(TimeDelta::hours(2));
        }
        let dead: Value = app.get("/v1/admin/outbox?state=dead", &app.admin()).await.json().await.unwrap();
        let items = dead["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{dead}");
        assert_eq!(items[0]["attempts"], 8);
        assert!(items[0]["last_error"].as_str().unwrap().contains("500"));
        let id = items[0]["id"].as_str().unwrap();
        let retried = app.post(&format!("/v1/admin/outbox/{id}/retry"), &app.admin(), &json!({})).await;
        assert_eq!(retried.status(), 200);
        let pending: Value = app.get("/v1/admin/outbox?state=pending", &app.admin()).await.json().await.unwrap();
        assert_eq!(pending["items"].as_array().unwrap().len(), 1);
        assert_problem(app.get("/v1/admin/outbox?state=lost", &app.admin()).await, 422).await;
    }
}

/// Two instances on one PostgreSQL: a suspension on one is denied on the
/// other within a second (NOTIFY), without any request to refresh it.
mod suspension_reaches_every_instance {
    use super::*;
    use crate::helpers::Backend;

    #[tokio::test]
    async fn postgres() {
        let Some(first) = TestApp::spawn(Backend::Postgres).await else {
            crate::helpers::skip(crate::helpers::NO_DATABASE);
            return;
        };
        let second = first
            .spawn_beside(|raw| raw.status_refresh_ms = 60_000)
            .await;
        approve(&first, "shared", None).await;
        let started = std::time::Instant::now();
        while status(&second, "shared").await["status"] != "approved" {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(2),
                "the approval reached the second instance"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        first
            .post(
                "/v1/models/acme/shared/suspend",
                &first.admin(),
                &json!({"reason": "incident"}),
            )
            .await;
        let started = std::time::Instant::now();
        loop {
            let results = check(&second, json!([{"provider": "acme", "model": "shared"}])).await;
            if results[0]["reasons"] == json!(["suspended"]) {
                break;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(1),
                "suspended on the second instance within a second"
            );
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }
}
