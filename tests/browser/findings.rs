//! Findings and questions as a reviewer and a supplier work through them
//! (issue 24, point 10): a comment beside one question, the answers changed
//! since changes were requested, a finding closed in one step because the
//! answer that raised it changed, and a finding given an owner and a due
//! date in the console.

use clearance::auth::Role;
use fantoccini::Locator;
use serde_json::{Value, json};

use crate::console::{console_of, notice, spawn};
use crate::harness::{Browser, Console, Provider, Tools, tools};
use crate::helpers::Backend;

const QUESTION: &str = "encryption_in_transit";

/// Clicks `css` (a summary that opens its section, a link within the page).
async fn open(console: &Console<'_>, css: &str) {
    console
        .client()
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Sets the date field `css` (typing a date depends on the locale).
async fn set_date(console: &Console<'_>, css: &str, date: &str) {
    console
        .client()
        .execute(
            "document.querySelector(arguments[0]).value = arguments[1];",
            vec![json!(css), json!(date)],
        )
        .await
        .unwrap();
}

async fn a_reviewer_comments_and_closes_a_finding_the_changed_answer_answers(
    backend: Backend,
    tools: &Tools,
) {
    let provider = Provider::start().await;
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    let Some(app) = spawn(backend, Some(&provider), &shipped).await else {
        crate::helpers::skip(crate::helpers::NO_DATABASE);
        return;
    };
    provider
        .person(
            "sam",
            "sam@example.com",
            "Sam Security",
            &["security_reviewer"],
        )
        .await;
    let browser = Browser::start(tools).await;
    let console = console_of(&app, &browser, tools, backend);

    // The supplier is invited to the security questionnaire; it comes back
    // without encryption in transit, which raises a high finding; the
    // reviewer raises another.
    let flow = crate::flow::Flow::start(&app).await;
    flow.through_intake(json!({})).await;
    let victor = app.manager();
    let invited = app
        .post(
            &flow.path("/stages/security/invite"),
            &victor,
            &json!({"email": "security@acme.example"}),
        )
        .await;
    assert_eq!(invited.status(), 201);
    flow.answer_and_submit(&victor, "security", json!({QUESTION: false}))
        .await;
    let sam = app.token("sam", &[Role::SecurityReviewer]);
    let raised = app
        .post(
            &flow.path("/findings"),
            &sam,
            &json!({"severity": "high", "text": "No penetration test this year.", "stage": "security"}),
        )
        .await;
    assert_eq!(raised.status(), 201);
    let findings = flow.review().await["findings"].clone();
    let id_of = |text: &str| {
        findings
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["text"].as_str().unwrap().starts_with(text))
            .map(|f| f["id"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let (auto, pentest) = (
        id_of("Customer data is not encrypted"),
        id_of("No penetration"),
    );
    let review = format!("/reviews/{}", flow.id);

    // The reviewer comments on the question, then asks for changes.
    console.sign_in("sam").await;
    console.goto(&review).await;
    open(&console, "#stage-security details > summary").await;
    let comment_form = format!("#comment-security-{QUESTION}");
    open(&console, &format!("{comment_form} > summary")).await;
    console
        .fill_in(
            Some(&comment_form),
            "text",
            "Name the TLS versions between your internal services.",
        )
        .await;
    console
        .click_button_in(Some(&comment_form), "Add the comment")
        .await;
    assert!(
        notice(&console)
            .await
            .contains("Your comment is beside the question")
    );
    let decide = "#stage-security form.decide";
    console.choose(decide, "decision", "request_changes").await;
    console
        .fill_in(Some(decide), "comment", "See my comment on encryption.")
        .await;
    console
        .click_button_in(Some(decide), "Record my decision")
        .await;
    assert!(notice(&console).await.contains("Your decision is recorded"));
    console.sign_out().await;

    // The supplier sees the comment beside the question and changes it.
    let link = app.invitation_link("security@acme.example").await;
    console.client().goto(&link).await.unwrap();
    let beside = console.text_of(&format!("#question-{QUESTION}")).await;
    assert!(
        beside.contains("Reviewer's comment")
            && beside.contains("Name the TLS versions between your internal services."),
        "{beside}"
    );
    let listed = console.text_of("#commented").await;
    assert!(
        listed.contains("A reviewer commented on one question"),
        "{listed}"
    );
    // Its link leads to the question, on the same page.
    open(&console, "#commented a").await;
    console.look("respond-question-comment").await;
    console
        .choose("form[data-questionnaire]", &format!("q_{QUESTION}"), "true")
        .await;
    console.click_button("Submit answers").await;
    assert!(
        notice(&console).await.contains("Thank you"),
        "{}",
        console.text().await
    );

    // The reviewer sees what changed, and the finding the old answer raised.
    console.sign_in("sam").await;
    console.goto(&review).await;
    let changed = console.text_of("#stage-security .changes").await;
    assert!(
        changed.contains("Changed since changes were requested")
            && changed.contains("Is customer data encrypted in transit")
            && changed.contains("no → yes"),
        "{changed}"
    );
    let finding = console.text_of(&format!("#finding-{auto}")).await;
    assert!(
        finding.contains("The answer that raised this, to “Is customer data encrypted in transit")
            && finding.contains("no → yes"),
        "{finding}"
    );
    console
        .client()
        .execute(
            "document.querySelector(arguments[0]).scrollIntoView();",
            vec![json!(format!("#finding-{auto}"))],
        )
        .await
        .unwrap();
    console.look("review-answer-changed").await;
    console
        .click_button_in(
            Some(&format!("#finding-{auto}-actions")),
            "Close: the answer changed",
        )
        .await;
    assert!(notice(&console).await.contains("The finding is closed"));
    let finding = console.text_of(&format!("#finding-{auto}")).await;
    assert!(
        finding.contains("resolved") && finding.contains("Resolution: Closed: the answer to"),
        "{finding}"
    );

    // The other finding gets an owner and a due date; a refusal keeps both.
    let actions = format!("#finding-{pentest}-actions");
    let too_long = "v".repeat(300);
    console.fill_in(Some(&actions), "owner", &too_long).await;
    set_date(&console, &format!("#due-{pentest}"), "2030-03-01").await;
    console
        .click_button_in(Some(&actions), "Save owner and due date")
        .await;
    let refused = console.text_of(&format!("{actions} .error")).await;
    assert_eq!(refused, "Owner must be 1 to 254 characters long");
    let kept: Value = console
        .client()
        .execute(
            "return [document.querySelector(arguments[0]).value, document.querySelector(arguments[1]).value];",
            vec![json!(format!("#owner-{pentest}")), json!(format!("#due-{pentest}"))],
        )
        .await
        .unwrap();
    assert_eq!(kept, json!([too_long, "2030-03-01"]));
    console
        .fill_in(Some(&actions), "owner", "Victor Vendor")
        .await;
    console
        .click_button_in(Some(&actions), "Save owner and due date")
        .await;
    let row = console.text_of(&format!("#finding-{pentest}")).await;
    assert!(
        row.contains("Victor Vendor") && row.contains("1 Mar 2030"),
        "{row}"
    );
    console.look("review-finding-owned").await;
    browser.close().await;
}

browser_tests!(a_reviewer_comments_and_closes_a_finding_the_changed_answer_answers);
