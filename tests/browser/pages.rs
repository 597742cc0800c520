//! The console's smaller pages (issue 24): the intake, the audit log's
//! filter, the workflow drawn, the admin forms that keep what was typed,
//! the supplier's way back to their list of questionnaires, and signing
//! in that ends on the page asked for.

use std::path::Path;

use clearance::auth::Role;
use fantoccini::Locator;
use serde_json::{Value, json};

use crate::console::{console_of, in_order, notice, spawn, stage};
use crate::flow::fill;
use crate::harness::{Browser, Console, Provider, Tools, tools};
use crate::helpers::{Backend, SECRET};

/// The value of the field `css` as the browser holds it.
async fn value_of(console: &Console<'_>, css: &str) -> String {
    console
        .client()
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// A vendor manager and an admin at the intake, the admin page, a
/// workflow's page and the audit log.
async fn staff_pages_from_intake_to_the_audit_log(backend: Backend, tools: &Tools) {
    let provider = Provider::start().await;
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    let Some(app) = spawn(backend, Some(&provider), &folder).await else {
        crate::helpers::skip(crate::helpers::NO_DATABASE);
        return;
    };
    provider
        .person(
            "victor",
            "victor@example.com",
            "Victor Vendor",
            &["vendor_manager"],
        )
        .await;
    provider
        .person("ada", "ada@example.com", "Ada Admin", &["admin"])
        .await;
    // Integrators ask about models nobody reviewed.
    let ci = app.token("ci-pipeline", &[Role::Integrator]);
    let bot = app.token("chat-bot", &[Role::Integrator]);
    for _ in 0..2 {
        let asked = app.get("/v1/status/newco/shadow-1", &ci).await;
        assert_eq!(asked.status(), 200);
    }
    let check = json!({"items": [
        {"provider": "newco", "model": "shadow-1", "use_case": "support-chat"},
        {"provider": "newco", "model": "shadow-2"},
    ]});
    assert_eq!(
        app.post("/v1/status/check", &bot, &check).await.status(),
        200
    );
    let browser = Browser::start(tools).await;
    let console = console_of(&app, &browser, tools, backend);

    // Signed out, the intake page sends the vendor manager to sign in, and
    // back to it after.
    console.goto("/intake").await;
    assert!(console.path().await.starts_with("/signin"));
    console.authorize("victor").await;
    assert_eq!(console.path().await, "/intake");
    let text = console.text().await;
    for said in [
        "newco/shadow-1",
        "3 times",
        "ci-pipeline (twice), chat-bot (once)",
        "support chat",
        "newco/shadow-2",
    ] {
        assert!(text.contains(said), "{said}: {text}");
    }
    assert!(
        console
            .text_of("nav[aria-label=Main]")
            .await
            .contains("Intake")
    );
    console.look("intake").await;

    // The digest leads to this page, not to the API.
    let ran = app
        .post("/v1/admin/jobs/digest/run", &app.admin(), &json!({}))
        .await;
    assert_eq!(ran.status(), 200);
    app.post("/v1/admin/jobs/outbox/run", &app.admin(), &json!({}))
        .await;
    let emails = app.sent_emails().await;
    let digest = emails
        .iter()
        .find(|e| e["to"][0] == "victor@example.com")
        .unwrap_or_else(|| panic!("a digest for victor in {emails:?}"));
    let said = digest["text"].as_str().unwrap();
    assert!(
        said.contains(&app.url("/intake#intake-newco-shadow-1")),
        "{said}"
    );
    assert!(!said.contains("POST") && !said.contains("/v1/"), "{said}");

    // A dismissal needs a reason: said beside the request.
    let shadow_2 = "#intake-newco-shadow-2";
    console.click_button_in(Some(shadow_2), "Dismiss").await;
    let beside = console.text_of(shadow_2).await;
    assert!(beside.contains("Say why it is dismissed"), "{beside}");
    console
        .fill_in(Some(shadow_2), "reason", "Use the approved model instead")
        .await;
    console.click_button_in(Some(shadow_2), "Dismiss").await;
    assert!(notice(&console).await.contains("Dismissed."));
    assert!(!console.text().await.contains("newco/shadow-2"));

    // Starting a review leads to the review.
    console
        .click_button("Start a review of newco/shadow-1")
        .await;
    assert!(console.path().await.starts_with("/reviews/"));
    assert!(notice(&console).await.contains("The review has started"));
    console.goto("/intake?state=all").await;
    let text = console.text().await;
    assert!(
        text.contains("Use the approved model instead")
            && text.contains("The review started from this request"),
        "{text}"
    );
    console.sign_out().await;

    // The admin's forms keep what was typed and say what is wrong beside it.
    console.sign_in("ada").await;
    console.goto("/admin").await;
    let mailbox = "form[action='/admin/mailboxes/security_reviewer']";
    let typed = "sec@example.com, not-an-address";
    console.fill_in(Some(mailbox), "emails", typed).await;
    console.click_button_in(Some(mailbox), "Save").await;
    let beside = console.text_of(mailbox).await;
    assert!(
        beside.contains("“not-an-address” is not an email address."),
        "{beside}"
    );
    assert_eq!(
        value_of(&console, &format!("{mailbox} [name=emails]")).await,
        typed
    );
    let webhook = "form[action='/admin/webhooks']";
    console
        .fill_in(Some(webhook), "url", "ftp://hooks.example/x")
        .await;
    console.fill_in(Some(webhook), "secret", "too short").await;
    console.click_button_in(Some(webhook), "Subscribe").await;
    let beside = console.text_of(webhook).await;
    assert!(
        beside.contains("The URL must be an http:// or https:// URL")
            && beside.contains("The signing secret"),
        "{beside}"
    );
    assert_eq!(
        value_of(&console, &format!("{webhook} [name=url]")).await,
        "ftp://hooks.example/x"
    );
    assert_eq!(
        value_of(&console, &format!("{webhook} [name=secret]")).await,
        "too short"
    );
    console.look("admin-refused").await;

    // The workflow, drawn: the three reviews after intake side by side.
    console.click_link("AI model provider due diligence").await;
    assert_eq!(console.path().await, "/workflows/model-provider");
    let text = console.text().await;
    assert!(
        text.contains("Step 2 · 3 stages at the same time"),
        "{text}"
    );
    assert!(
        text.contains("the supplier's contact")
            && text.contains("a security reviewer")
            && text.contains("1 at low and medium, 2 at high and critical")
            && text.contains("an approver"),
        "{text}"
    );
    let tops = console
        .client()
        .execute(
            "return [...document.querySelectorAll('ol.workflow > li:nth-child(2) .stage')]\
               .map(e => Math.round(e.getBoundingClientRect().top));",
            vec![],
        )
        .await
        .unwrap();
    let tops: Vec<i64> = serde_json::from_value(tops).unwrap();
    assert_eq!(tops.len(), 3, "{tops:?}");
    assert!(tops.iter().all(|t| *t == tops[0]), "one row: {tops:?}");
    console.look("workflow").await;

    // The audit log: an action from the list, newest first, and the next
    // page keeps the filter.
    console.goto("/admin/audit?limit=1").await;
    console
        .client()
        .find(Locator::Css("select[name=action]"))
        .await
        .unwrap()
        .select_by_value("session.signed_in")
        .await
        .unwrap();
    console.click_button("Filter").await;
    let newest = console.text_of("tbody").await;
    assert!(
        newest.contains("session signed in") && newest.contains("ada"),
        "{newest}"
    );
    console.look("audit-filtered").await;
    console.click_link("Earlier events").await;
    assert!(console.path().await.contains("action=session.signed_in"));
    let earlier = console.text_of("tbody").await;
    assert!(
        earlier.contains("session signed in") && earlier.contains("victor"),
        "{earlier}"
    );
    browser.close().await;
}

/// The `href` of the name at the top of the page, if it is a link.
async fn brand(console: &Console<'_>) -> Option<String> {
    let href = console
        .client()
        .execute(
            "const a = document.querySelector('a.brand'); return a && a.getAttribute('href');",
            vec![],
        )
        .await
        .unwrap();
    href.as_str().map(str::to_owned)
}

/// The line of the questionnaire `title` on the supplier's list.
async fn listed(console: &Console<'_>, title: &str) -> String {
    // The list may still be loading on a busy machine.
    console
        .client()
        .wait()
        .for_element(Locator::Css("ul.questionnaires"))
        .await
        .expect("the list of questionnaires");
    let lines = console
        .client()
        .find_all(Locator::Css("ul.questionnaires li"))
        .await
        .unwrap();
    for line in lines {
        let text = line.text().await.unwrap();
        if text.starts_with(title) {
            return text;
        }
    }
    panic!(
        "no questionnaire {title} listed at {}: {}",
        console.path().await,
        console.text().await
    );
}

/// A supplier goes from their list to a questionnaire and back, seeing
/// how far each is; someone signed out follows a link to a page and,
/// signed in with a development link, lands on it.
async fn the_supplier_finds_the_way_back_and_sign_in_returns_to_the_page(
    backend: Backend,
    tools: &Tools,
) {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    let Some(app) = spawn(backend, None, &folder).await else {
        crate::helpers::skip(crate::helpers::NO_DATABASE);
        return;
    };
    let browser = Browser::start(tools).await;
    let console = console_of(&app, &browser, tools, backend);
    let workflow: Value = app
        .get("/v1/workflows/model-provider", &app.admin())
        .await
        .json()
        .await
        .unwrap();
    let flow = crate::flow::Flow::start(&app).await;
    flow.invite_all("contact@acme.example").await;
    flow.through_intake(json!({})).await;
    let link = app.invitation_link("contact@acme.example").await;
    let hub = url::Url::parse(&link).unwrap().path().to_owned();

    // The list says how far each questionnaire is.
    console.client().goto(&link).await.unwrap();
    let security = listed(&console, "Security review").await;
    assert!(
        security.contains("open for your answers · 0 of ")
            && security.contains(" questions answered"),
        "{security}"
    );
    assert_eq!(brand(&console).await.as_deref(), Some(hub.as_str()));
    console.look("respond-all-progress").await;
    let from_list = console
        .client()
        .find(Locator::LinkText("Security review"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let alone = url::Url::parse(&from_list).unwrap().path().to_owned();

    // A draft of one answer: the saved page leads back, the list counts it.
    console.click_link("Security review").await;
    assert_eq!(brand(&console).await.as_deref(), Some(hub.as_str()));
    let answers = in_order(
        stage(&workflow, "security"),
        &fill(stage(&workflow, "security"), &json!({})),
    );
    console
        .answer("form[data-questionnaire]", &answers[..1])
        .await;
    console.click_button("Save draft").await;
    assert!(notice(&console).await.contains("Your answers are saved"));
    console.click_link("Back to all your questionnaires").await;
    assert_eq!(console.path().await, hub);
    let security = listed(&console, "Security review").await;
    assert!(security.contains("· 1 of "), "{security}");

    // Submitted: the thank-you page leads back too.
    console.click_link("Security review").await;
    console.answer("form[data-questionnaire]", &answers).await;
    console.click_button("Submit answers").await;
    let thanks = notice(&console).await;
    assert!(
        thanks.contains("these answers are with the reviewers")
            && thanks.contains("Back to all your questionnaires"),
        "{thanks}"
    );
    console.look("respond-submitted").await;
    console.click_link("Back to all your questionnaires").await;
    let security = listed(&console, "Security review").await;
    assert!(
        security.contains("submitted, with our reviewers"),
        "{security}"
    );

    // Without its list, a questionnaire's name at the top leads nowhere
    // (never to the staff's sign-in).
    console.goto(&alone).await;
    assert_eq!(brand(&console).await, None);
    console.goto("/respond/not-a-link").await;
    let text = console.text().await;
    assert!(
        text.contains("This link does not work") && !text.contains("Go to your work"),
        "{text}"
    );
    assert_eq!(brand(&console).await, None);

    // Signed out, a link to a page leads to sign in; the development link
    // then ends on that page.
    console.goto("/reviews?state=in_progress").await;
    assert!(console.path().await.starts_with("/signin?next="));
    assert!(
        console
            .text()
            .await
            .contains("after signing in you go on to the page you asked for")
    );
    let links = clearance::console::links::Links::new(SECRET).unwrap();
    let token = links
        .issue(&clearance::console::session::SignedIn {
            sub: "victor".into(),
            email: Some("victor@example.com".into()),
            name: Some("Victor Vendor".into()),
            roles: [Role::VendorManager].into(),
        })
        .unwrap();
    console.goto(&format!("/signin/link/{token}")).await;
    console.click_button("Sign in as victor").await;
    assert_eq!(console.path().await, "/reviews?state=in_progress");
    assert!(console.text().await.contains("Victor Vendor"));
    browser.close().await;
}

browser_tests!(
    staff_pages_from_intake_to_the_audit_log,
    the_supplier_finds_the_way_back_and_sign_in_returns_to_the_page,
);
