//! The console over plain HTTP: sign-in by development link, sessions and
//! their timeouts, CSRF, headers, and who may see which page. (The browser
//! tests in `tests/browser/` drive the pages as people do.)

use clearance::auth::Role;
use clearance::console::links::Links;
use clearance::console::session::SignedIn;
use serde_json::{Value, json};

use crate::flow::Flow;
use crate::helpers::{SECRET, TestApp};

/// A one-time development sign-in link's path for `sub`.
pub fn link(sub: &str, roles: &[Role]) -> String {
    let token = Links::new(SECRET)
        .unwrap()
        .issue(&SignedIn {
            sub: sub.into(),
            email: Some(format!("{sub}@example.com")),
            name: None,
            roles: roles.iter().copied().collect(),
        })
        .unwrap();
    format!("/signin/link/{token}")
}

pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Opens a sign-in link's page as a browser does: answers the sign-in
/// cookie (`name=value`) it sets and the token of its form.
pub async fn link_form(app: &TestApp, path: &str) -> (String, String) {
    let shown = no_redirects().get(app.url(path)).send().await.unwrap();
    assert_eq!(shown.status(), 200, "the link's page");
    let cookie = shown.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/signin/link"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let html = shown.text().await.unwrap();
    (cookie, form_token(&html))
}

/// The value of the `csrf` field of the first form of `html`.
pub fn form_token(html: &str) -> String {
    let start = html
        .find(r#"name="csrf" value=""#)
        .expect("a form with a token")
        + 19;
    html[start..].split('"').next().unwrap().to_owned()
}

/// Uses a sign-in link as the browser that opened its page does.
pub async fn use_link(app: &TestApp, path: &str) -> reqwest::Response {
    let (cookie, token) = link_form(app, path).await;
    no_redirects()
        .post(app.url(path))
        .header("cookie", &cookie)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap()
}

/// Signs `sub` in; answers the session cookie (`name=value`).
pub async fn sign_in(app: &TestApp, sub: &str, roles: &[Role]) -> String {
    let response = use_link(app, &link(sub, roles)).await;
    assert_eq!(response.status(), 303);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "the public URL is http: {cookie}"
    );
    cookie.split(';').next().unwrap().to_owned()
}

pub async fn page(app: &TestApp, path: &str, cookie: &str) -> reqwest::Response {
    no_redirects()
        .get(app.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

/// The CSRF token of the page's forms.
pub async fn csrf(app: &TestApp, cookie: &str) -> String {
    form_token(&page(app, "/", cookie).await.text().await.unwrap())
}

backend_tests! {
    async fn pages_send_strangers_to_sign_in_and_carry_strict_headers(app) {
        let response = page(&app, "/reviews?state=approved", "").await;
        assert_eq!(response.status(), 303);
        assert_eq!(response.headers()["location"], "/signin?next=%2Freviews%3Fstate%3Dapproved");
        let signin = no_redirects().get(app.url("/signin")).send().await.unwrap();
        assert_eq!(signin.status(), 200);
        let headers = signin.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        for rule in ["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'self'"] {
            assert!(csp.contains(rule), "{csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        let html = signin.text().await.unwrap();
        assert!(html.contains("No identity provider is configured"), "{html}");
        assert!(!html.contains("<script>"), "no inline script");
        let style = html.find("<link rel=\"stylesheet\" href=\"").map(|i| &html[i + 29..]).unwrap();
        let css_path = style.split('"').next().unwrap();
        let css = app.client.get(app.url(css_path)).send().await.unwrap();
        assert_eq!(css.status(), 200);
        assert!(css.headers()["cache-control"].to_str().unwrap().contains("immutable"));
    }

    async fn a_development_link_signs_in_once_and_sign_out_ends_the_session(app) {
        let path = link("victor", &[Role::VendorManager]);
        let shown = no_redirects().get(app.url(&path)).send().await.unwrap();
        assert_eq!(shown.status(), 200, "the link asks before it is spent");
        assert!(shown.text().await.unwrap().contains("Sign in as victor"));
        let (sign_in_cookie, token) = link_form(&app, &path).await;
        let post = || {
            no_redirects()
                .post(app.url(&path))
                .header("cookie", &sign_in_cookie)
                .form(&[("csrf", token.as_str())])
                .send()
        };
        let first = post().await.unwrap();
        assert_eq!(first.status(), 303);
        let cookie = first.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
        let again = post().await.unwrap();
        assert_eq!(again.status(), 403);
        assert!(again.text().await.unwrap().contains("was used already"));

        let home = page(&app, "/", &cookie).await;
        assert_eq!(home.status(), 200);
        assert!(home.text().await.unwrap().contains("My work"));
        // Signed in, the person is in the directory as API callers are.
        let people: Value = app.get("/v1/admin/people", &app.admin()).await.json().await.unwrap();
        assert!(people.as_array().unwrap().iter().any(|p| p["sub"] == "victor"), "{people}");
        let signed_in: Value = app.get("/v1/audit?action=session.signed_in", &app.admin()).await.json().await.unwrap();
        assert_eq!(signed_in["items"][0]["actor"], "victor");

        let token = csrf(&app, &cookie).await;
        let out = no_redirects()
            .post(app.url("/signout"))
            .header("cookie", &cookie)
            .form(&[("csrf", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(out.status(), 303);
        assert!(out.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
        assert_eq!(page(&app, "/", &cookie).await.status(), 303, "the session is gone");
    }

    async fn sessions_end_after_their_idle_and_absolute_lifetimes(app) {
        let idle = sign_in(&app, "ida", &[Role::Approver]).await;
        let lasting = sign_in(&app, "abe", &[Role::Approver]).await;
        assert_eq!(page(&app, "/", &idle).await.status(), 200);
        // An hour without a request (the default idle time) ends one...
        app.sql("UPDATE sessions SET last_seen_at = '2000-01-01 00:00:00' WHERE sub = 'ida'");
        assert_eq!(page(&app, "/", &idle).await.status(), 303);
        // ... and its absolute lifetime ends the other, however active.
        app.sql("UPDATE sessions SET expires_at = '2000-01-01 00:00:00' WHERE sub = 'abe'");
        assert_eq!(page(&app, "/", &lasting).await.status(), 303);
    }

    async fn a_form_without_its_csrf_token_changes_nothing(app) {
        let cookie = sign_in(&app, "victor", &[Role::VendorManager]).await;
        let forged = no_redirects()
            .post(app.url("/providers"))
            .header("cookie", &cookie)
            .form(&[("slug", "acme"), ("name", "Acme")])
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 403);
        assert!(forged.text().await.unwrap().contains("This form has expired"));
        assert_eq!(app.get("/v1/providers/acme", &app.admin()).await.status(), 404);
        let token = csrf(&app, &cookie).await;
        let made = no_redirects()
            .post(app.url("/providers"))
            .header("cookie", &cookie)
            .form(&[("csrf", token.as_str()), ("slug", "acme"), ("name", "Acme")])
            .send()
            .await
            .unwrap();
        assert_eq!(made.status(), 303);
        assert_eq!(made.headers()["location"], "/providers/acme?done=created");
        let invalid = no_redirects()
            .post(app.url("/providers"))
            .header("cookie", &cookie)
            .form(&[("csrf", token.as_str()), ("slug", "Not A Slug"), ("name", "")])
            .send()
            .await
            .unwrap();
        assert_eq!(invalid.status(), 422);
        let html = invalid.text().await.unwrap();
        assert!(html.contains("Slug must be 1 to 63 lower-case letters"), "{html}");
    }

    async fn pages_refuse_people_without_the_role_in_plain_words(app) {
        let integrator = sign_in(&app, "ci", &[Role::Integrator]).await;
        let reviews = page(&app, "/reviews", &integrator).await;
        assert_eq!(reviews.status(), 403);
        assert!(reviews.text().await.unwrap().contains("Reviews are for vendor managers"));
        let admin = page(&app, "/admin", &integrator).await;
        assert_eq!(admin.status(), 403);
        assert!(admin.text().await.unwrap().contains("These pages are for admins"));
        let missing = page(&app, "/reviews/0190f3b4-5d6e-7f80-9a1b-2c3d4e5f6a7b", &sign_in(&app, "ada", &[Role::Admin]).await).await;
        assert_eq!(missing.status(), 404);
        assert_eq!(missing.headers()["content-type"], "text/html; charset=utf-8");
    }

    async fn my_work_lists_the_stages_each_person_acts_on_and_no_others(app) {
        let flow = Flow::start(&app).await;
        let home = |sub: &'static str, roles: &'static [Role]| {
            let app = &app;
            async move {
                let cookie = sign_in(app, sub, roles).await;
                page(app, "/", &cookie).await.text().await.unwrap()
            }
        };
        const MANAGER: &[Role] = &[Role::VendorManager];
        const SECURITY: &[Role] = &[Role::SecurityReviewer];
        const PRIVACY: &[Role] = &[Role::PrivacyReviewer];
        let victor = home("victor", MANAGER).await;
        assert!(victor.contains("Intake and risk tiering: to answer"), "{victor}");
        assert!(victor.contains("anthropic/claude"), "{victor}");
        let sam = home("sam", SECURITY).await;
        assert!(sam.contains("Nothing waits for you."), "{sam}");
        assert!(sam.contains("you get an email and it appears here") && sam.contains("href=\"/reviews\""), "the next step: {sam}");
        let ada = home("ada", &[Role::Admin]).await;
        assert!(ada.contains("register its provider and the model") && ada.contains("href=\"/providers/new\""), "the next step: {ada}");
        assert!(!victor.contains("register its provider"), "victor has a review: {victor}");

        // Intake answered by its starter: another vendor manager decides it.
        let victor_token = app.token("victor", MANAGER);
        flow.answer_and_submit(&victor_token, "intake", json!({})).await;
        let victor = home("victor", MANAGER).await;
        assert!(!victor.contains("Intake and risk tiering: to decide"), "segregation of duties: {victor}");
        assert!(victor.contains("Reviews you started"), "{victor}");
        let vera = home("vera", MANAGER).await;
        assert!(vera.contains("Intake and risk tiering: to decide"), "{vera}");
        flow.approve(&app.token("vera", MANAGER), "intake").await;

        // Security answered: the security reviewers decide it, nobody else.
        flow.answer_and_submit(&victor_token, "security", json!({})).await;
        let sam = home("sam", SECURITY).await;
        assert!(sam.contains("Security review: to decide"), "{sam}");
        assert!(sam.contains("1 stage waits for you"), "{sam}");
        assert!(home("pia", PRIVACY).await.contains("Nothing waits for you."));

        // Pia is assigned to decide privacy (she is in the directory once
        // the write of her sign-in above has landed): while it awaits the
        // supplier's answers nothing waits for her; once they are in, it
        // waits for her decision, as the one assigned.
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        let assigned = app
            .post(&flow.path("/stages/privacy/assign"), &app.manager(), &json!({"assignee": "pia"}))
            .await;
        assert_eq!(assigned.status(), 200);
        assert!(home("pia", PRIVACY).await.contains("Nothing waits for you."));
        flow.answer_and_submit(&victor_token, "privacy", json!({})).await;
        let pia = home("pia", PRIVACY).await;
        assert!(pia.contains("Privacy and data protection review: to decide, assigned to you"), "{pia}");
        let sam = home("sam", SECURITY).await;
        assert!(!sam.contains("Privacy"), "{sam}");
    }

    async fn the_review_page_warns_before_an_approval_contradicts_the_review(app) {
        let flow = Flow::start(&app).await;
        flow.through_intake(json!({"data_classes": ["personal", "special_category"]})).await;
        let victor = app.manager();
        flow.answer_and_submit(&victor, "security", json!({"encryption_in_transit": false})).await;
        flow.answer_and_submit(&victor, "privacy", json!({})).await;
        let approved = flow
            .decide(&app.token("sam", &[Role::SecurityReviewer]), "security",
                json!({"decision": "approve", "conditions": {"data_classes": ["internal", "personal"]}}))
            .await;
        assert_eq!(approved.status(), 200);

        let cookie = sign_in(&app, "pia", &[Role::PrivacyReviewer]).await;
        let html = page(&app, &format!("/reviews/{}", flow.id), &cookie).await.text().await.unwrap();
        assert!(html.contains("The conditions exclude data the review declared it will send: special_category"), "{html}");
        let privacy = html.split("id=\"stage-privacy\"").nth(1).unwrap();
        assert!(privacy.contains("cannot be approved while these high or critical findings are open"), "{privacy}");
        assert!(privacy.contains("not encrypted in transit"), "{privacy}");
    }

    async fn an_action_on_an_unknown_stage_is_not_found_on_the_page_as_in_the_api(app) {
        let flow = Flow::start(&app).await;
        let api = app
            .post(&flow.path("/stages/nope/assign"), &app.manager(), &json!({"assignee": "pia"}))
            .await;
        assert_eq!(api.status(), 404);
        let cookie = sign_in(&app, "victor", &[Role::VendorManager]).await;
        let token = csrf(&app, &cookie).await;
        let posted = no_redirects()
            .post(app.url(&format!("/reviews/{}/stages/nope/assign", flow.id)))
            .header("cookie", &cookie)
            .form(&[("csrf", token.as_str()), ("assignee", "pia")])
            .send()
            .await
            .unwrap();
        assert_eq!(posted.status(), 404);
        assert!(posted.text().await.unwrap().contains("nope"));
    }

    async fn a_change_made_on_a_page_is_audited_under_its_request_id(app) {
        let cookie = sign_in(&app, "victor", &[Role::VendorManager]).await;
        let token = csrf(&app, &cookie).await;
        let made = no_redirects()
            .post(app.url("/providers"))
            .header("cookie", &cookie)
            .header("x-request-id", "console-change-1")
            .form(&[("csrf", token.as_str()), ("slug", "acme"), ("name", "Acme")])
            .send()
            .await
            .unwrap();
        assert_eq!(made.status(), 303);
        let created: Value = app.get("/v1/audit?action=provider.created", &app.admin()).await.json().await.unwrap();
        assert_eq!(created["items"][0]["actor"], "victor");
        assert_eq!(created["items"][0]["request_id"], "console-change-1", "{created}");
    }

    async fn a_vendor_manager_invites_one_contact_to_every_questionnaire_from_the_page(app) {
        let flow = Flow::start(&app).await;
        let cookie = sign_in(&app, "victor", &[Role::VendorManager]).await;
        let html = page(&app, &format!("/reviews/{}", flow.id), &cookie).await.text().await.unwrap();
        assert!(html.contains("Invite one contact to every supplier questionnaire"), "{html}");
        let token = csrf(&app, &cookie).await;
        let sent = no_redirects()
            .post(app.url(&format!("/reviews/{}/invite", flow.id)))
            .header("cookie", &cookie)
            .form(&[("csrf", token.as_str()), ("email", "contact@supplier.example"), ("expires_in", "")])
            .send()
            .await
            .unwrap();
        assert_eq!(sent.status(), 303);
        let review: Value = app.get(&flow.path(""), &app.admin()).await.json().await.unwrap();
        let invited: Vec<&str> = review["invitations"].as_array().unwrap().iter().map(|i| i["stage"].as_str().unwrap()).collect();
        assert_eq!(invited, ["security", "privacy"]);
        let bad = no_redirects()
            .post(app.url(&format!("/reviews/{}/invite", flow.id)))
            .header("cookie", &cookie)
            .form(&[("csrf", token.as_str()), ("email", "not an address")])
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 422);
        assert!(bad.text().await.unwrap().contains("Email "));
    }

    async fn the_providers_list_shows_a_few_models_each_and_counts_the_rest(app) {
        app.create_provider("acme").await;
        for n in 0..10 {
            let made = app
                .post("/v1/providers/acme/models", &app.manager(), &json!({"slug": format!("m{n}"), "name": format!("Model {n}")}))
                .await;
            assert_eq!(made.status(), 201);
        }
        let cookie = sign_in(&app, "ada", &[Role::Admin]).await;
        let list = page(&app, "/providers", &cookie).await.text().await.unwrap();
        assert!(list.contains("Model 7"), "{list}");
        assert!(!list.contains("Model 8"), "{list}");
        assert!(list.contains("2 more: 2 not reviewed"), "{list}");
        let found = page(&app, "/providers?q=model+9", &cookie).await.text().await.unwrap();
        assert!(found.contains("Model 9"), "a match is listed first: {found}");
    }
}

/// The console's webhook form refuses what the API refuses (one address
/// policy). Delivery is off in these tests: nothing is ever sent.
async fn the_webhook_form_refuses_special_purpose_addresses(app: TestApp) {
    let cookie = sign_in(&app, "ada", &[Role::Admin]).await;
    let token = csrf(&app, &cookie).await;
    for special in crate::hardening::SPECIAL_PURPOSE_URLS
        .iter()
        .chain(&["http://127.0.0.1:9999/hook"])
    {
        let refused = no_redirects()
            .post(app.url("/admin/webhooks"))
            .header("cookie", &cookie)
            .form(&[("csrf", token.as_str()), ("url", special)])
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 409, "{special}");
        let html = refused.text().await.unwrap();
        assert!(
            html.contains("The subscription was not made"),
            "{special}: {html}"
        );
        assert!(
            html.contains("special-purpose address"),
            "{special}: {html}"
        );
    }
    let listed = app.get("/v1/webhooks", &app.admin()).await;
    assert_eq!(listed.json::<Value>().await.unwrap()["items"], json!([]));
}

mod the_webhook_form_refuses_special_purpose_addresses {
    use crate::helpers::{Backend, TestApp};

    fn public(raw: &mut clearance::config::RawConfig) {
        raw.webhook_targets = "public".into();
    }

    #[tokio::test]
    async fn sqlite() {
        let app = TestApp::spawn_with(Backend::Sqlite, public).await.unwrap();
        super::the_webhook_form_refuses_special_purpose_addresses(app).await;
    }

    #[tokio::test]
    async fn postgres() {
        let Some(app) = TestApp::spawn_with(Backend::Postgres, public).await else {
            crate::helpers::skip(crate::helpers::NO_DATABASE);
            return;
        };
        super::the_webhook_form_refuses_special_purpose_addresses(app).await;
    }
}

/// Whether the review page shows `selector`.
async fn shows(app: &TestApp, path: &str, cookie: &str, selector: &str) -> (bool, String) {
    let html = page(app, path, cookie).await.text().await.unwrap();
    (html.contains(selector), html)
}

backend_tests! {
    async fn the_review_page_offers_exactly_what_the_api_lets_each_person_do(app) {
        let flow = Flow::start(&app).await;
        let victor = app.token("victor", &[Role::VendorManager]);
        flow.answer_and_submit(&victor, "intake", json!({})).await;
        let path = format!("/reviews/{}", flow.id);
        let form = format!(r#"action="/reviews/{}/stages/intake/decide""#, flow.id);

        // The starter is offered no decision, is told why, and the API
        // refuses the decision the page did not offer.
        let starter = sign_in(&app, "victor", &[Role::VendorManager]).await;
        let (offered, html) = shows(&app, &path, &starter, &form).await;
        assert!(!offered, "the starter is offered the intake's decision");
        assert!(html.contains("You started this review, so you may not decide its stages"), "{html}");
        assert!(html.contains(r#"id="withdraw""#), "a vendor manager may withdraw");
        let refused = flow.decide(&victor, "intake", json!({"decision": "approve"})).await;
        assert_eq!(refused.status(), 403);

        // A reviewer without the role sees neither the form nor the switch
        // to withdraw, and the API refuses both.
        let reviewer = sign_in(&app, "sam", &[Role::SecurityReviewer]).await;
        let (offered, html) = shows(&app, &path, &reviewer, &form).await;
        assert!(!offered && !html.contains(r#"id="withdraw""#), "{html}");
        let sam = app.token("sam", &[Role::SecurityReviewer]);
        assert_eq!(flow.decide(&sam, "intake", json!({"decision": "approve"})).await.status(), 403);
        let withdraw = app.post(&flow.path("/withdraw"), &sam, &json!({"reason": "No."})).await;
        assert_eq!(withdraw.status(), 403);

        // Another vendor manager is offered the decision, and the API takes it.
        let other = sign_in(&app, "vera", &[Role::VendorManager]).await;
        let (offered, _) = shows(&app, &path, &other, &form).await;
        assert!(offered, "another vendor manager is offered the intake's decision");
        flow.approve(&app.token("vera", &[Role::VendorManager]), "intake").await;
    }
}
