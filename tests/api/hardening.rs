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

/// Special-purpose addresses of IANA's registries, and addresses that
/// carry one, that a webhook may not target by default.
pub const SPECIAL_PURPOSE_URLS: &[&str] = &[
    "http://127.0.0.1:9/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.5/hook",
    "http://[::1]/hook",
    "http://localhost/hook",
    "http://[64:ff9b::7f00:1]/",
    "http://[2002:7f00:1::]/",
    "http://198.18.0.1/hook",
    "http://192.0.0.8/hook",
    "https://203.0.113.10/clearance",
    "http://[2001:db8::1]/hook",
    "http://[::ffff:10.0.0.1]/hook",
];

#[tokio::test]
async fn webhooks_may_not_target_special_purpose_addresses() {
    // Delivery is off in this test (the outbox runs only when a test asks,
    // and this one never does): the address accepted below is never sent
    // anything, and its subscription is deleted before the test ends.
    let app = TestApp::spawn_with(Backend::Sqlite, |raw| raw.webhook_targets = "public".into())
        .await
        .unwrap();
    for special in SPECIAL_PURPOSE_URLS {
        let refused = app
            .post("/v1/webhooks", &app.admin(), &json!({"url": special}))
            .await;
        let problem = assert_problem(refused, 422).await;
        assert_eq!(error_fields(&problem), ["url"], "{special}: {problem}");
        assert!(
            problem["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("special-purpose address"),
            "{special}: {problem}"
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
    let id = public.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deleted = reqwest::Client::new()
        .delete(app.url(&format!("/v1/webhooks/{id}")))
        .bearer_auth(app.admin())
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
}

#[tokio::test]
async fn loopback_targets_refuse_other_hosts_without_looking_them_up() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    for elsewhere in [
        "https://93.184.216.34/hook",
        "https://receiver.invalid/hook",
    ] {
        let refused = app
            .post("/v1/webhooks", &app.admin(), &json!({"url": elsewhere}))
            .await;
        let problem = assert_problem(refused, 422).await;
        assert!(
            problem["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("only to this host"),
            "{elsewhere}: {problem}"
        );
    }
    let local = app
        .post(
            "/v1/webhooks",
            &app.admin(),
            &json!({"url": "http://localhost:9/hook"}),
        )
        .await;
    assert_eq!(local.status(), 201);
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

use crate::console::{form_token, link, link_form, no_redirects, page, sign_in, use_link};

/// Posts `body` (already form-encoded) to a console path as `cookie`.
async fn post_form(app: &TestApp, path: &str, cookie: &str, body: String) -> reqwest::Response {
    no_redirects()
        .post(app.url(path))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Asserts a console page (HTML, not a problem document) with `status`
/// whose text holds `words`, and answers the text.
async fn assert_page(response: reqwest::Response, status: u16, words: &str) -> String {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let html = response.text().await.unwrap();
    assert!(html.contains(words), "{html}");
    html
}

backend_tests! {
    async fn console_forms_refuse_control_characters_as_the_api_does(app) {
        let victor = sign_in(&app, "victor", &[Role::VendorManager]).await;
        let token = crate::console::csrf(&app, &victor).await;
        for (notes, code) in [("a%07b", "U+0007"), ("a%00b", "U+0000"), ("a%C2%85b", "U+0085")] {
            let refused = post_form(&app, "/providers", &victor, format!("csrf={token}&slug=acme&name=Acme&notes={notes}")).await;
            let html = assert_page(refused, 422, code).await;
            assert!(html.contains("notes"), "{html}");
        }
        assert_eq!(app.get("/v1/providers/acme", &app.admin()).await.status(), 404, "nothing stored");
        // Tabs and line breaks are text; a name is one line, as in the API.
        let broken = post_form(&app, "/providers", &victor, format!("csrf={token}&slug=acme&name=Ac%0Ame")).await;
        assert_eq!(broken.status(), 422);
        let made = post_form(&app, "/providers", &victor, format!("csrf={token}&slug=acme&name=Acme&notes=one%09two%0D%0Athree")).await;
        assert_eq!(made.status(), 303);
        let acme: Value = app.get("/v1/providers/acme", &app.admin()).await.json().await.unwrap();
        assert_eq!(acme["notes"], "one\ttwo\r\nthree");

        // A finding's text with a terminal escape.
        let flow = Flow::start(&app).await;
        let path = format!("/reviews/{}/findings", flow.id);
        let escaped = post_form(&app, &path, &victor, format!("csrf={token}&severity=high&text=red%1B%5B31m")).await;
        assert_page(escaped, 422, "U+001B").await;
        assert_eq!(flow.review().await["findings"], json!([]), "no finding raised");

        // The supplier's questionnaire form.
        let supplier = invite_security_supplier(&app, &flow).await;
        let respond = format!("/respond/{supplier}");
        let shown = app.client.get(app.url(&respond)).send().await.unwrap().text().await.unwrap();
        let revision = shown.split(r#"name="revision" value=""#).nth(1).unwrap().split('"').next().unwrap().to_owned();
        let escaped = app
            .client
            .post(app.url(&respond))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("action=save&revision={revision}&q_tenant_isolation=Isolated%1B%5B2J"))
            .send()
            .await
            .unwrap();
        assert_page(escaped, 422, "U+001B").await;
        let stage: Value = app.get(&flow.path("/stages/security"), &supplier).await.json().await.unwrap();
        assert!(stage["answers"]["tenant_isolation"].is_null(), "{stage}");
    }

    async fn console_forms_that_cannot_be_read_are_400(app) {
        let victor = sign_in(&app, "victor", &[Role::VendorManager]).await;
        let token = crate::console::csrf(&app, &victor).await;
        let garbled = post_form(&app, "/providers", &victor, format!("csrf={token}&slug=acme&name=Acme&notes=caf%E9")).await;
        assert_page(garbled, 400, "not UTF-8").await;
        let raw = no_redirects()
            .post(app.url("/providers"))
            .header("cookie", &victor)
            .header("content-type", "application/x-www-form-urlencoded")
            .body([format!("csrf={token}&slug=acme&name=Ac").into_bytes(), vec![0xff, 0xfe]].concat())
            .send()
            .await
            .unwrap();
        assert_page(raw, 400, "not UTF-8").await;
        assert_eq!(app.get("/v1/providers/acme", &app.admin()).await.status(), 404, "nothing stored");
    }

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

    async fn a_sign_in_link_signs_in_only_the_browser_shown_its_page(app) {
        let path = link("mallory", &[Role::Admin]);
        // Another site's form: no sign-in cookie, no token (its browser
        // sends its own origin).
        let forged = no_redirects().post(app.url(&path)).header("origin", "http://127.0.0.2:9").send().await.unwrap();
        assert_page(forged, 403, "did not come from this site").await;
        let tokenless = no_redirects().post(app.url(&path)).send().await.unwrap();
        assert_page(tokenless, 403, "did not come from this site").await;
        // The cookie and token of the page, but posted from elsewhere.
        let (cookie, token) = link_form(&app, &path).await;
        let elsewhere = no_redirects()
            .post(app.url(&path))
            .header("cookie", &cookie)
            .header("origin", "http://localhost.example")
            .form(&[("csrf", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_page(elsewhere, 403, "did not come from this site").await;
        let wrong = no_redirects()
            .post(app.url(&path))
            .header("cookie", &cookie)
            .form(&[("csrf", "not-the-token")])
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 403);
        // None of it spent the link: from its page and this site it works.
        let html = page(&app, &path, "").await.text().await.unwrap();
        assert!(!form_token(&html).is_empty(), "the page's form carries a token");
        let used = no_redirects()
            .post(app.url(&path))
            .header("cookie", &cookie)
            .header("origin", &app.address)
            .form(&[("csrf", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(used.status(), 303);
        let cookies: Vec<&str> = used.headers().get_all("set-cookie").iter().map(|c| c.to_str().unwrap()).collect();
        assert!(cookies.iter().any(|c| c.starts_with("clearance_session=")), "{cookies:?}");
        assert!(cookies.iter().any(|c| c.starts_with("clearance_sign_in=") && c.contains("Max-Age=0")), "{cookies:?}");
        assert_eq!(use_link(&app, &path).await.status(), 403, "once only");
    }

    async fn a_suppliers_draft_keeps_every_valid_answer_and_marks_the_malformed_one(app) {
        let flow = Flow::start(&app).await;
        let supplier = invite_security_supplier(&app, &flow).await;
        let post = |action: &'static str, certificate: &'static str| {
            app.client.post(app.url(&format!("/respond/{supplier}"))).form(&[
                ("action", action),
                ("q_tenant_isolation", "Separate clusters per tenant"),
                ("q_iso27001", "true"),
                ("q_iso27001_certificate", certificate),
            ])
        };
        let html = assert_page(post("save", "certs.acme.example/iso27001").send().await.unwrap(), 422, "Your other answers are saved").await;
        assert!(html.contains("One answer could not be saved"), "{html}");
        assert!(html.contains("value=\"certs.acme.example/iso27001\""), "what was typed stays in its field: {html}");
        assert!(html.contains("http:// or https:// URL"), "the problem is named: {html}");
        assert!(html.contains("Separate clusters per tenant"), "{html}");
        // At the top: the problem, linked to its question, and how far the
        // questionnaire is (the malformed answer does not count).
        assert!(html.contains("One answer needs correcting"), "{html}");
        assert!(html.contains("<a href=\"#question-iso27001_certificate\">Link to the ISO/IEC 27001 certificate: this answer expects an http:// or https:// URL</a>"), "{html}");
        assert!(html.contains("<strong>2 of "), "two of the shown questions are answered: {html}");
        assert!(html.contains("href=\"#section-2\""), "the sections are listed: {html}");
        let stage: Value = app.get(&flow.path("/stages/security"), &supplier).await.json().await.unwrap();
        assert_eq!(stage["answers"]["tenant_isolation"], "Separate clusters per tenant", "{stage}");
        assert_eq!(stage["answers"]["iso27001"], true, "{stage}");
        assert!(stage["answers"].get("iso27001_certificate").is_none(), "the malformed answer is not saved: {stage}");

        // Submitting still needs every answer valid: nothing is submitted.
        let submitted = post("submit", "ftp://certs.acme.example").send().await.unwrap();
        assert_page(submitted, 422, "could not be saved").await;
        let stage: Value = app.get(&flow.path("/stages/security"), &supplier).await.json().await.unwrap();
        assert_eq!(stage["state"], "awaiting_answers", "{stage}");
        assert_eq!(stage["answers"]["tenant_isolation"], "Separate clusters per tenant", "{stage}");

        // Corrected, the draft saves whole.
        let saved = post("save", "https://certs.acme.example/iso27001").send().await.unwrap();
        let html = assert_page(saved, 200, "Your answers are saved").await;
        assert!(!html.contains("could not be saved"), "{html}");

        // The review's timeline names the supplier by the address invited.
        let victor = crate::console::sign_in(&app, "victor", &[Role::VendorManager]).await;
        let review = crate::console::page(&app, &format!("/reviews/{}", flow.id), &victor).await.text().await.unwrap();
        assert!(review.contains("sec@supplier.example (supplier)"), "{review}");
        assert!(!review.contains("respondent:"), "{review}");
    }

    async fn a_supplier_link_to_a_withdrawn_review_says_so_and_shows_nothing_else(app) {
        let flow = Flow::start(&app).await;
        let supplier = invite_security_supplier(&app, &flow).await;
        let saved = app
            .put(&flow.path("/stages/security/answers"), &supplier, &json!({"answers": {"tenant_isolation": "Separate clusters per tenant"}}), None)
            .await;
        assert_eq!(saved.status(), 200, "{}", saved.text().await.unwrap());
        let everything = app
            .post(&flow.path("/invite"), &app.manager(), &json!({"email": "all@supplier.example"}))
            .await;
        assert_eq!(everything.status(), 201);
        let outbox = app.outbox_emails();
        let all = outbox.iter().find(|e| e["to"][0] == "all@supplier.example").unwrap()["text"].as_str().unwrap().to_owned();
        let all = all.lines().find(|l| l.contains("/respond/")).unwrap().trim().rsplit('/').next().unwrap().to_owned();

        let withdrawn = app.post(&flow.path("/withdraw"), &app.manager(), &json!({"reason": "Project cancelled"})).await;
        assert_eq!(withdrawn.status(), 200);

        for token in [&supplier, &all] {
            let shown = app.client.get(app.url(&format!("/respond/{token}"))).send().await.unwrap();
            let html = assert_page(shown, 410, "This review was withdrawn").await;
            for hidden in ["anthropic", "Separate clusters", "tenants", "Security review", "Project cancelled", "<form"] {
                assert!(!html.to_lowercase().contains(&hidden.to_lowercase()), "{hidden}: {html}");
            }
        }
        let posted = app
            .client
            .post(app.url(&format!("/respond/{supplier}")))
            .form(&[("action", "save"), ("q_tenant_isolation", "x")])
            .send()
            .await
            .unwrap();
        assert_page(posted, 410, "This review was withdrawn").await;
        let problem = assert_problem(app.get(&flow.path("/stages/security"), &supplier).await, 401).await;
        assert!(problem["detail"].as_str().unwrap().contains("withdrawn"), "{problem}");
        let answer = app
            .put(&flow.path("/stages/security/answers"), &supplier, &json!({"answers": {"tenant_isolation": "y"}}), None)
            .await;
        assert_problem(answer, 401).await;
        // The people who run the review still see it all.
        assert_eq!(app.get(&flow.path("/stages/security"), &app.manager()).await.status(), 200);
    }
}

/// A server whose bodies may be at most 2 KiB, on `backend`.
async fn small_bodies(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |raw| raw.max_body_bytes = 2048).await
}

async fn a_console_form_over_the_body_limit_is_413(app: TestApp) {
    let victor = sign_in(&app, "victor", &[Role::VendorManager]).await;
    let token = crate::console::csrf(&app, &victor).await;
    let notes = "n".repeat(4096);
    let big = post_form(
        &app,
        "/providers",
        &victor,
        format!("csrf={token}&slug=acme&name=Acme&notes={notes}"),
    )
    .await;
    assert_page(big, 413, "2048 bytes at most").await;
    assert_eq!(
        app.get("/v1/providers/acme", &app.admin()).await.status(),
        404
    );
}

#[tokio::test]
async fn a_console_form_over_the_body_limit_is_413_on_sqlite() {
    let app = small_bodies(Backend::Sqlite).await.expect("sqlite app");
    a_console_form_over_the_body_limit_is_413(app).await;
}

#[tokio::test]
async fn a_console_form_over_the_body_limit_is_413_on_postgres() {
    let Some(app) = small_bodies(Backend::Postgres).await else {
        crate::helpers::skip(crate::helpers::NO_DATABASE);
        return;
    };
    a_console_form_over_the_body_limit_is_413(app).await;
}
