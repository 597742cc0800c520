//! The defects found when Clearance was attacked and loaded (issue 15),
//! each kept found by a test: NUL characters, durations that overflow, links
//! that leak into listings, formulas in spreadsheets, token claims, headers.

use chrono::Utc;
use clearance::auth::Role;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

use crate::flow::Flow;
use crate::helpers::{Backend, SECRET, TestApp, assert_problem, error_fields};

/// A token signed with the server's secret, with exactly `claims`.
fn signed(claims: Value) -> String {
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
    .unwrap()
}

backend_tests! {
    async fn a_nul_character_is_refused_the_same_on_both_backends(app) {
        let manager = app.manager();
        let created = app.post("/v1/providers", &manager, &json!({"slug": "acme", "name": "Ac\u{0}me"})).await;
        let problem = assert_problem(created, 422).await;
        assert_eq!(error_fields(&problem), ["name"], "{problem}");
        assert_eq!(app.get("/v1/providers/acme", &manager).await.status(), 404, "nothing stored");
        let listed = app.get("/v1/reviews?assignee=a%00b", &manager).await;
        assert_eq!(error_fields(&assert_problem(listed, 422).await), ["assignee"]);
        let path = app.get("/v1/providers/a%00b", &manager).await;
        assert_eq!(path.status(), 404);
        let integrator = app.token("ci", &[Role::Integrator]);
        let check = app.post("/v1/status/check", &integrator, &json!({"items": [{"provider": "a\u{0}", "model": "m"}]})).await;
        assert_eq!(check.status(), 200, "a lookup of a name that cannot exist is `not_reviewed`");
    }

    async fn durations_and_dates_out_of_range_are_422_not_a_dropped_connection(app) {
        let admin = app.admin();
        let far = app.get("/v1/reviews?expiring_within=99999999999d", &admin).await;
        assert_eq!(error_fields(&assert_problem(far, 422).await), ["expiring_within"]);
        let clock = app.post("/v1/admin/clock", &admin, &json!({"advance": "P300000Y"})).await;
        assert_eq!(error_fields(&assert_problem(clock, 422).await), ["advance"]);
        let flow = Flow::start(&app).await;
        let invite = app
            .post(&flow.path("/stages/security/invite"), &app.manager(), &json!({"email": "a@b.example", "expires_in": "99999999999d"}))
            .await;
        assert_eq!(error_fields(&assert_problem(invite, 422).await), ["expires_in"]);
        // The server still answers.
        assert_eq!(app.get("/healthz", &admin).await.status(), 200);
    }

    async fn a_token_not_yet_valid_or_living_for_ever_is_401(app) {
        let now = Utc::now().timestamp();
        let early = signed(json!({"sub": "ada", "roles": ["admin"], "exp": now + 3600, "nbf": now + 600}));
        let problem = assert_problem(app.get("/v1/providers", &early).await, 401).await;
        assert!(problem["detail"].as_str().unwrap().contains("not valid yet"), "{problem}");
        let forever = signed(json!({"sub": "ada", "roles": ["admin"], "exp": i64::MAX}));
        let problem = assert_problem(app.get("/v1/providers", &forever).await, 401).await;
        assert!(problem["detail"].as_str().unwrap().contains("lifetime"), "{problem}");
        let fine = signed(json!({"sub": "ada", "roles": ["admin"], "iat": now, "exp": now + 3600, "nbf": now - 5}));
        assert_eq!(app.get("/v1/providers", &fine).await.status(), 200);
    }

    async fn responses_do_not_sniff_and_review_data_is_not_cached(app) {
        let flow = Flow::start(&app).await;
        let review = app.get(&flow.path(""), &app.admin()).await;
        assert_eq!(review.headers()["x-content-type-options"], "nosniff");
        assert_eq!(review.headers()["cache-control"], "no-store");
        let docs = app.client.get(app.url("/docs/")).send().await.unwrap();
        assert_eq!(docs.headers()["x-content-type-options"], "nosniff");
        let csp = docs.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    }

    async fn the_supplier_sees_neither_assignee_nor_approvers(app) {
        let flow = Flow::start(&app).await;
        let token = invite_security_supplier(&app, &flow).await;
        let stage: Value = app.get(&flow.path("/stages/security"), &token).await.json().await.unwrap();
        assert_eq!(stage["key"], "security");
        for internal in ["assignee", "approvals", "approver_role"] {
            assert!(stage.get(internal).is_none(), "{internal} shown to the supplier: {stage}");
        }
        // And the admin's outbox listing does not show a working link.
        let outbox: Value = app.get("/v1/admin/outbox", &app.admin()).await.json().await.unwrap();
        let listed = outbox.to_string();
        assert!(!listed.contains(&token), "the invitation token is listed: {listed}");
        assert!(listed.contains("/respond/"), "the link is there, redacted: {listed}");
    }

    async fn spreadsheet_formulas_in_answers_are_neutralised(app) {
        let flow = Flow::start(&app).await;
        flow.through_intake(json!({"use_case": "=HYPERLINK(\"http://evil.example\",\"x\")"})).await;
        let pack = app.get(&flow.path("/evidence"), &app.admin()).await.bytes().await.unwrap();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(pack.to_vec())).unwrap();
        let mut answers = String::new();
        std::io::Read::read_to_string(&mut archive.by_name("answers.csv").unwrap(), &mut answers).unwrap();
        assert!(answers.contains("'=HYPERLINK"), "{answers}");
        assert!(!answers.contains(",=HYPERLINK") && !answers.contains("\"=HYPERLINK"), "{answers}");
    }
}

#[tokio::test]
async fn an_audience_given_as_a_list_is_accepted() {
    let app = TestApp::spawn_with(Backend::Sqlite, |raw| {
        raw.jwt_audience = Some("clearance".into());
    })
    .await
    .unwrap();
    let now = Utc::now().timestamp();
    let listed = signed(
        json!({"sub": "ada", "roles": ["admin"], "exp": now + 600, "aud": ["other", "clearance"]}),
    );
    assert_eq!(app.get("/v1/providers", &listed).await.status(), 200);
    let elsewhere =
        signed(json!({"sub": "ada", "roles": ["admin"], "exp": now + 600, "aud": ["other"]}));
    let problem = assert_problem(app.get("/v1/providers", &elsewhere).await, 401).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("audience"),
        "{problem}"
    );
}

#[tokio::test]
async fn email_leaves_promptly_while_the_clock_stands_still() {
    // Time-skipping mode, with the outbox worker on its schedule: an
    // invitation is delivered without anyone moving the clock.
    let app = TestApp::spawn_with(Backend::Sqlite, |raw| {
        raw.scheduler = true;
        raw.outbox_interval_ms = 200;
        raw.schedule_outbox = "* * * * * *".into();
        raw.schedule_sla_sweep = "off".into();
        raw.schedule_re_review_sweep = "off".into();
        raw.schedule_digest = "off".into();
    })
    .await
    .unwrap();
    let flow = Flow::start(&app).await;
    invite_security_supplier(&app, &flow).await;
    let mut delivered = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if app.mail.messages().await.iter().any(|(envelope, _)| {
            envelope
                .to()
                .iter()
                .any(|to| to.to_string() == "sec@supplier.example")
        }) {
            delivered = true;
            break;
        }
    }
    assert!(
        delivered,
        "the invitation left within five seconds of a standing clock"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_folder_is_its_owners_alone() {
    use std::os::unix::fs::PermissionsExt;
    let folder = tempfile::tempdir().unwrap();
    let data = folder.path().join("data");
    let path = data.to_string_lossy().into_owned();
    let _app = TestApp::spawn_with(Backend::Sqlite, |raw| raw.data_dir = path)
        .await
        .unwrap();
    let mode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the data folder is {mode:o}");
}

#[tokio::test]
async fn webhooks_may_not_target_internal_addresses() {
    let app = TestApp::spawn_with(Backend::Sqlite, |raw| raw.webhook_allow_private = false)
        .await
        .unwrap();
    for internal in [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/hook",
        "http://[::1]/hook",
        "http://localhost/hook",
    ] {
        let refused = app
            .post("/v1/webhooks", &app.admin(), &json!({"url": internal}))
            .await;
        let problem = assert_problem(refused, 422).await;
        assert_eq!(error_fields(&problem), ["url"], "{internal}: {problem}");
        assert!(
            problem["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("internal address"),
            "{internal}: {problem}"
        );
    }
    let public = app
        .post(
            "/v1/webhooks",
            &app.admin(),
            &json!({"url": "https://93.184.216.34/hook"}),
        )
        .await;
    assert_eq!(public.status(), 201);
}

/// Invites the supplier's contact to the security stage (after the intake)
/// and answers the token of the link the email carries.
async fn invite_security_supplier(app: &TestApp, flow: &Flow<'_>) -> String {
    flow.through_intake(json!({})).await;
    let invited = app
        .post(
            &flow.path("/stages/security/invite"),
            &app.manager(),
            &json!({"email": "sec@supplier.example"}),
        )
        .await;
    assert_eq!(invited.status(), 201);
    let outbox = app.outbox_emails();
    let email = outbox
        .iter()
        .find(|e| e["to"][0] == "sec@supplier.example")
        .expect("the invitation is queued");
    let text = email["text"].as_str().unwrap();
    let link = text.lines().find(|l| l.contains("/respond/")).unwrap();
    link.trim().rsplit('/').next().unwrap().to_owned()
}

/// A server with the given limits per minute on failed authentication and
/// on supplier links (the rest of the suite runs without them).
async fn limited(failed_auth: u32, supplier: u32) -> TestApp {
    TestApp::spawn_with(Backend::Sqlite, |raw| {
        raw.failed_auth_per_minute = failed_auth;
        raw.supplier_requests_per_minute = supplier;
    })
    .await
    .expect("sqlite app")
}

#[tokio::test]
async fn failed_authentication_is_limited_per_client_and_answered_requests_never_are() {
    let app = limited(5, 0).await;
    let forged = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
    for _ in 0..5 {
        assert_eq!(app.get("/v1/providers", forged).await.status(), 401);
    }
    // Over the limit, on any route, the fast status lane included.
    for path in ["/v1/providers", "/v1/status/acme/m1", "/v1/reviews"] {
        let refused = app.get(path, forged).await;
        assert!(
            refused.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
                >= 1
        );
        let problem = assert_problem(refused, 429).await;
        assert_eq!(problem["type"], "/problems/too-many-requests", "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains("try again in"),
            "{problem}"
        );
    }
    let anonymous = app
        .client
        .get(app.url("/v1/providers"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        anonymous.status(),
        429,
        "no token at all is a failed authentication too"
    );
    // A valid token is never counted nor refused, however many calls it makes.
    let integrator = app.token("ci", &[Role::Integrator]);
    for _ in 0..20 {
        assert_eq!(
            app.get("/v1/status/acme/m1", &integrator).await.status(),
            200
        );
        assert_eq!(app.get("/v1/providers", &integrator).await.status(), 200);
    }
    // Open endpoints stay open.
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn a_sign_in_link_that_does_not_work_counts_as_a_failed_sign_in() {
    let app = limited(2, 0).await;
    for _ in 0..2 {
        let page = app
            .client
            .get(app.url("/signin/link/not.a.link"))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 403);
    }
    let page = app
        .client
        .post(app.url("/signin/link/not.a.link"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 429);
    assert!(page.headers().contains_key("retry-after"));
    let html = page.text().await.unwrap();
    assert!(html.contains("Too many tries"), "{html}");
}

#[tokio::test]
async fn supplier_links_are_limited_per_client() {
    let app = limited(0, 4).await;
    let flow = Flow::start(&app).await;
    let token = invite_security_supplier(&app, &flow).await;
    // Pages and API calls with the link share one allowance.
    for _ in 0..2 {
        let page = app
            .client
            .get(app.url(&format!("/respond/{token}")))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert_eq!(
            app.get(&flow.path("/stages/security"), &token)
                .await
                .status(),
            200
        );
    }
    let page = app
        .client
        .get(app.url(&format!("/respond/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 429);
    assert!(page.text().await.unwrap().contains("Too many tries"));
    assert_problem(app.get(&flow.path("/stages/security"), &token).await, 429).await;
    // People with their own tokens are not suppliers: not counted.
    assert_eq!(
        app.get(&flow.path("/stages/security"), &app.manager())
            .await
            .status(),
        200
    );
}

// ---------------------------------------------------------------------------
// Issue 22 (defects 2, 3, 4 and 7): console forms read by the API's rules,
// console methods answered 405, development sign-in links used only from
// their own page, supplier links to a withdrawn review.
// ---------------------------------------------------------------------------

use crate::console::no_redirects;

backend_tests! {
    async fn wrong_methods_on_console_pages_are_405_with_allow(app) {
        let flow = Flow::start(&app).await;
        let review = format!("/reviews/{}", flow.id);
        let withdraw = format!("/reviews/{}/withdraw", flow.id);
        for (method, path, allow) in [
            (reqwest::Method::DELETE, "/providers", "GET, POST"),
            (reqwest::Method::PUT, "/", "GET"),
            (reqwest::Method::POST, review.as_str(), "GET"),
            (reqwest::Method::GET, withdraw.as_str(), "POST"),
            (reqwest::Method::GET, "/signout", "POST"),
            (reqwest::Method::PATCH, "/signin/link/x", "GET, POST"),
            (reqwest::Method::DELETE, "/respond/x", "GET, POST"),
        ] {
            let response = no_redirects().request(method.clone(), app.url(path)).send().await.unwrap();
            let mut allowed: Vec<String> = response.headers()["allow"].to_str().unwrap().split(',').map(|m| m.trim().to_owned()).collect();
            allowed.sort();
            assert_eq!(allowed.join(", "), allow, "{method} {path}");
            let problem = assert_problem(response, 405).await;
            assert!(problem["detail"].as_str().unwrap().contains(path), "{problem}");
        }
        assert_problem(no_redirects().get(app.url("/nowhere")).send().await.unwrap(), 404).await;
    }
}
