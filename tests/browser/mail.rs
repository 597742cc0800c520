//! Emails as a phone shows them: the HTML of a supplier's email, opened in
//! the browser at 1,280 and 390 px, never scrolls sideways (its long link
//! sits behind one button) and passes axe.

use crate::harness::{Browser, Tools, tools};
use crate::helpers::{Backend, TestApp};

async fn a_suppliers_email_fits_a_phone(backend: Backend, tools: &Tools) {
    let Some(app) = TestApp::spawn_with(backend, |raw| {
        raw.organisation = Some("Example Bank".into());
    })
    .await
    else {
        crate::helpers::skip(crate::helpers::NO_DATABASE);
        return;
    };
    let flow = crate::flow::Flow::start(&app).await;
    flow.invite_all("contact@acme.example").await;
    let html = app
        .outbox_emails()
        .into_iter()
        .find(|e| e["to"][0] == "contact@acme.example")
        .and_then(|e| e["html"].as_str().map(str::to_owned))
        .expect("the invitation, with its HTML");
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("invitation.html");
    std::fs::write(&file, html).unwrap();

    let browser = Browser::start(tools).await;
    let console = crate::console::console_of(&app, &browser, tools, backend);
    console
        .client()
        .goto(&format!("file://{}", file.display()))
        .await
        .unwrap();
    let text = console.text().await;
    assert!(text.contains("Open the questionnaires"), "{text}");
    assert!(
        !text.contains("/respond/"),
        "the link shows only as a button: {text}"
    );
    console.look("email-invitation").await;
    browser.close().await;
}

browser_tests!(a_suppliers_email_fits_a_phone);
