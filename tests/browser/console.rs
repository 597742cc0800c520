//! The console as its people use it, in a real browser.

use std::path::Path;

use clearance::auth::Role;
use fantoccini::Locator;
use serde_json::{Map, Value, json};

use crate::flow::fill;
use crate::harness::{Browser, Console, Provider, Tools, free_port, tools};
use crate::helpers::{Backend, SECRET, TestApp};

/// A folder with the shipped workflow, but two security approvals at every
/// tier: the scenario has two security reviewers sign off at a low tier.
pub(crate) fn workflows() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/model-provider.toml"),
    )
    .unwrap();
    let changed = shipped.replace(
        "approvals = { low = 1, medium = 1, high = 2, critical = 2 }",
        "approvals = { low = 2, medium = 2, high = 2, critical = 2 }",
    );
    assert_ne!(
        changed, shipped,
        "the shipped workflow still has its security approvals"
    );
    std::fs::write(dir.path().join("model-provider.toml"), changed).unwrap();
    dir
}

/// The server, configured to sign people in with `provider` (without one:
/// with development sign-in links).
pub(crate) async fn spawn(
    backend: Backend,
    provider: Option<&Provider>,
    workflows: &Path,
) -> Option<TestApp> {
    let port = free_port();
    let issuer = provider.map(|p| p.issuer.clone());
    let folder = workflows.to_string_lossy().into_owned();
    TestApp::spawn_with(backend, move |raw| {
        raw.bind = format!("127.0.0.1:{port}");
        raw.public_url = Some(format!("http://127.0.0.1:{port}"));
        if let Some(issuer) = issuer {
            raw.oidc_issuer = Some(issuer);
            raw.oidc_client_id = Some("clearance-console".into());
            raw.oidc_client_secret = Some("a-client-secret-for-tests".into());
        }
        raw.workflows = folder;
    })
    .await
}

/// The console in `browser`, keeping its screenshots per backend.
pub(crate) fn console_of<'a>(
    app: &'a TestApp,
    browser: &'a Browser,
    tools: &'a Tools,
    backend: Backend,
) -> Console<'a> {
    let backend_name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    Console {
        app,
        browser,
        axe: &tools.axe,
        shots: Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/screenshots")
            .join(backend_name),
    }
}

/// A stage of the workflow document.
pub(crate) fn stage<'w>(workflow: &'w Value, key: &str) -> &'w Value {
    workflow["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap()
}

/// The answers of `fill`, in questionnaire order (a conditional question's
/// field opens only once its condition is answered).
pub(crate) fn in_order(stage: &Value, answers: &Map<String, Value>) -> Vec<(String, Value)> {
    let mut ordered = Vec::new();
    for section in stage["questionnaire"]["sections"].as_array().unwrap() {
        for question in section["questions"].as_array().unwrap() {
            let id = question["id"].as_str().unwrap();
            if let Some(value) = answers.get(id) {
                ordered.push((id.to_owned(), value.clone()));
            }
        }
    }
    ordered
}

/// A question shown only when a yes/no question is answered yes: `(shown,
/// controlling)`.
fn conditional(stage: &Value) -> (String, String) {
    for section in stage["questionnaire"]["sections"].as_array().unwrap() {
        for question in section["questions"].as_array().unwrap() {
            if question["shown_when"]["equals"] == json!(true) {
                return (
                    question["id"].as_str().unwrap().to_owned(),
                    question["shown_when"]["question"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                );
            }
        }
    }
    panic!("the stage has a conditional question");
}

pub(crate) async fn notice(console: &Console<'_>) -> String {
    let notices = console
        .client()
        .find_all(Locator::Css(".notice"))
        .await
        .unwrap();
    let mut text = String::new();
    for n in notices {
        text.push_str(&n.text().await.unwrap());
        text.push('\n');
    }
    text
}

async fn decide(console: &Console<'_>, review: &str, stage: &str, decision: &str) {
    console.goto(review).await;
    let form = format!("#stage-{stage} form.decide");
    console.choose(&form, "decision", decision).await;
    console
        .click_button_in(Some(&form), "Record my decision")
        .await;
}

async fn a_review_runs_from_sign_in_to_suspension(backend: Backend, tools: &Tools) {
    let provider = Provider::start().await;
    let folder = workflows();
    let Some(app) = spawn(backend, Some(&provider), folder.path()).await else {
        crate::helpers::skip(crate::helpers::NO_DATABASE);
        return;
    };
    for (sub, name, roles) in [
        ("victor", "Victor Vendor", vec!["vendor_manager"]),
        ("vera", "Vera Vendor", vec!["vendor_manager"]),
        ("sam", "Sam Security", vec!["security_reviewer"]),
        ("sid", "Sid Security", vec!["security_reviewer"]),
        ("pia", "Pia Privacy", vec!["privacy_reviewer"]),
        ("ada", "Ada Admin", vec!["admin"]),
    ] {
        provider
            .person(sub, &format!("{sub}@example.com"), name, &roles)
            .await;
    }
    let browser = Browser::start(tools).await;
    let console = console_of(&app, &browser, tools, backend);
    let workflow: Value = app
        .get("/v1/workflows/model-provider", &app.admin())
        .await
        .json()
        .await
        .unwrap();

    // The sign-in page, before anyone signs in.
    console.goto("/signin").await;
    assert!(console.text().await.contains("Sign in with 127.0.0.1"));
    console.look("signin").await;

    // A vendor manager signs in, registers a provider and a model.
    console.sign_in("victor").await;
    console.look("home-empty").await;
    console.goto("/providers").await;
    console.click_link("Register a provider").await;
    console.fill("slug", "acme").await;
    console.fill("name", "Acme AI").await;
    console.fill("website", "https://acme.example").await;
    console
        .fill("contacts", "security@acme.example, Sam Supplier, security")
        .await;
    console.click_button("Register").await;
    assert!(notice(&console).await.contains("Registered."));
    console.click_link("Register a model").await;
    console.fill("slug", "claude").await;
    console.fill("name", "Claude").await;
    console
        .client()
        .find(Locator::Css("select[name=modality]"))
        .await
        .unwrap()
        .select_by_value("text")
        .await
        .unwrap();
    console.click_button("Register").await;
    let text = console.text().await;
    assert!(
        text.contains("Registered.") && text.contains("not reviewed"),
        "{text}"
    );

    // ... and starts a review of it, in one form: the provider's contact
    // is invited to every questionnaire, and Sam, who has not signed in
    // yet, is assigned by his address to decide the security review (the
    // stage is his once he signs in).
    let contact = console
        .client()
        .find(Locator::Css("form.launch input[name=email]"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(contact.as_deref(), Some("security@acme.example"));
    console
        .client()
        .execute(
            "document.querySelector('form.launch').scrollIntoView()",
            vec![],
        )
        .await
        .unwrap();
    console.look("model-launch").await;
    console.fill("decide.security", "sam@example.com").await;
    // (The field's list of suggestions closes as a person moves on.)
    console
        .client()
        .execute("document.activeElement.blur()", vec![])
        .await
        .unwrap();
    console.click_button("Start a review of Claude").await;
    let review = console.path().await;
    let review = review.split('?').next().unwrap().to_owned();
    assert!(
        review.starts_with("/reviews/"),
        "{review}: {}",
        console.text().await
    );
    assert!(notice(&console).await.contains("The review has started"));

    // Intake, answered by the vendor manager.
    let intake = stage(&workflow, "intake");
    let answers = in_order(intake, &fill(intake, &json!({})));
    console
        .answer("#stage-intake form[data-questionnaire]", &answers)
        .await;
    console
        .click_button_in(
            Some("#stage-intake form[data-questionnaire]"),
            "Submit for review",
        )
        .await;
    assert!(
        notice(&console).await.contains("Submitted"),
        "{}",
        console.text().await
    );

    // Who started the review may not confirm its intake: the page offers no
    // decision and says why.
    console.goto(&review).await;
    let intake = console.text_of("#stage-intake").await;
    assert!(
        intake.contains(
            "You started this review, so you may not decide its stages (segregation of duties)"
        ),
        "{intake}"
    );
    assert!(
        console
            .client()
            .find_all(Locator::Css("#stage-intake form.decide"))
            .await
            .unwrap()
            .is_empty(),
        "the starter is offered no decision on the intake"
    );
    console.shot("review-segregation-of-duties").await;
    console.sign_out().await;

    // A second vendor manager confirms it.
    console.sign_in("vera").await;
    decide(&console, &review, "intake", "approve").await;
    assert!(notice(&console).await.contains("Your decision is recorded"));
    console.sign_out().await;

    // The vendor manager invites the supplier to the security questionnaire.
    console.sign_in("victor").await;
    console.goto(&review).await;
    // A lifetime it cannot read comes back beside its field, the address
    // kept as typed.
    console
        .fill_in(Some("#stage-security"), "email", "security@acme.example")
        .await;
    console
        .fill_in(Some("#stage-security"), "expires_in", "a fortnight")
        .await;
    console
        .click_button_in(Some("#stage-security"), "Send the invitation")
        .await;
    let refused = console.text_of("#invite-security").await;
    assert!(refused.contains("a fortnight"), "{refused}");
    let kept = console
        .client()
        .find(Locator::Css("#invite-security input[name=email]"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some("security@acme.example"));
    console
        .fill_in(Some("#stage-security"), "expires_in", "14d")
        .await;
    console
        .click_button_in(Some("#stage-security"), "Send the invitation")
        .await;
    assert!(
        notice(&console)
            .await
            .contains("The invitation is on its way")
    );

    // The vendor manager assigns the privacy decision from the people who
    // hold the role: a name nobody holds is refused beside the field, as
    // typed. (Pia has signed in before, so the picker lists her.)
    let pia = app
        .get("/v1/reviews", &app.token("pia", &[Role::PrivacyReviewer]))
        .await;
    assert_eq!(pia.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    console.goto(&review).await;
    let assign = "#assign-decide-privacy";
    let offered = console
        .client()
        .find_all(Locator::Css(&format!("{assign} datalist option")))
        .await
        .unwrap();
    let mut names = Vec::new();
    for option in offered {
        names.push(option.attr("value").await.unwrap().unwrap_or_default());
    }
    assert_eq!(names, ["pia"], "the privacy reviewers");
    console
        .fill_in(Some(assign), "assignee", "nobody-here")
        .await;
    console.click_button_in(Some(assign), "Assign").await;
    let field = console
        .client()
        .find(Locator::Css(&format!("{assign} .error")))
        .await
        .expect("the reason beside the field")
        .text()
        .await
        .unwrap();
    assert!(
        field.contains("Nobody called nobody-here is known"),
        "{field}"
    );
    let kept = console
        .client()
        .find(Locator::Css(&format!("{assign} input[name=assignee]")))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some("nobody-here"));
    console.shot("review-assign-refused").await;
    console.fill_in(Some(assign), "assignee", "pia").await;
    console.click_button_in(Some(assign), "Assign").await;
    let privacy = console.text_of("#stage-privacy").await;
    assert!(privacy.contains("pia is assigned to decide"), "{privacy}");
    assert!(
        privacy.contains("waits for the supplier's answers"),
        "{privacy}"
    );

    // Answering the privacy questionnaire on the supplier's behalf: an
    // assignment elsewhere meanwhile is no conflict...
    let privacy_form = "#stage-privacy form[data-questionnaire]";
    let privacy = stage(&workflow, "privacy");
    let privacy_answers = in_order(privacy, &fill(privacy, &json!({})));
    console.answer(privacy_form, &privacy_answers).await;
    let vera = app.token("vera", &[Role::VendorManager]);
    let assigned = app
        .post(
            &format!("/v1{review}/stages/security/assign"),
            &vera,
            &json!({"assignee": "vera", "duty": "answer"}),
        )
        .await;
    assert_eq!(assigned.status(), 200);
    console
        .click_button_in(Some(privacy_form), "Save draft")
        .await;
    assert!(
        notice(&console).await.contains("Your answers are saved"),
        "{}",
        console.text().await
    );
    // ... but someone else saving the same answers is: the form comes back
    // saying what changed, with what was entered, to send again.
    let saved = app
        .put(
            &format!("/v1{review}/stages/privacy/answers"),
            &vera,
            &json!({"answers": fill(privacy, &json!({"retention_period": "up_to_30_days"}))}),
            None,
        )
        .await;
    assert_eq!(saved.status(), 200, "{}", saved.text().await.unwrap());
    console
        .click_button_in(Some(privacy_form), "Submit for review")
        .await;
    let stale = notice(&console).await;
    assert!(
        stale.contains("While this page was open, this changed: vera")
            && stale.contains("Privacy and data protection review"),
        "{stale}"
    );
    console.shot("review-stale-form").await;
    console
        .click_button_in(Some(privacy_form), "Submit for review")
        .await;
    assert!(
        notice(&console).await.contains("Submitted"),
        "{}",
        console.text().await
    );

    // The supplier opens the link of the security questionnaire's own
    // invitation (the first, from the start, lists every questionnaire).
    let link = app
        .sent_emails()
        .await
        .into_iter()
        .filter(|e| e["to"][0] == "security@acme.example")
        .filter(|e| {
            e["subject"]
                .as_str()
                .is_some_and(|s| s.starts_with("Questionnaire: Security"))
        })
        .find_map(|e| {
            let text = e["text"].as_str()?.to_owned();
            text.lines()
                .find(|l| l.contains("/respond/"))
                .map(|l| l.trim().to_owned())
        })
        .expect("the security questionnaire's invitation");
    console.sign_out().await;
    console.client().goto(&link).await.unwrap();
    let text = console.text().await;
    assert!(
        text.contains("Security") && text.contains("Claude by Acme AI"),
        "{text}"
    );
    console.look("respond").await;
    let security = stage(&workflow, "security");
    let (shown, controlling) = conditional(security);
    let question = format!("#question-{shown}");
    assert!(
        !console.is_displayed(&question).await,
        "hidden until answered"
    );
    console
        .choose(
            "form[data-questionnaire]",
            &format!("q_{controlling}"),
            "true",
        )
        .await;
    assert!(
        console.is_displayed(&question).await,
        "shown once its condition holds"
    );
    // Submitting too early names each question left unanswered.
    console.click_button("Submit answers").await;
    let text = console.text().await;
    assert!(
        text.contains("Some required questions are still unanswered"),
        "{text}"
    );
    assert!(text.contains("This answer is required."), "{text}");
    let mut overrides = Map::new();
    overrides.insert(controlling.clone(), json!(true));
    let security_answers = in_order(security, &fill(security, &Value::Object(overrides)));
    console
        .answer("form[data-questionnaire]", &security_answers)
        .await;
    console.click_button("Save draft").await;
    assert!(notice(&console).await.contains("Your answers are saved"));
    console.click_button("Submit answers").await;
    assert!(
        notice(&console).await.contains("Thank you"),
        "{}",
        console.text().await
    );

    // Two security reviewers and a privacy reviewer sign off.
    console.sign_in("sam").await;
    let home = console.text().await;
    assert!(
        home.contains("acme/claude") && home.contains("to decide"),
        "{home}"
    );
    console.look("home").await;
    decide(&console, &review, "security", "approve").await;
    assert!(notice(&console).await.contains("Your decision is recorded"));
    console.sign_out().await;
    // Sam, the one assigned, has approved: the second approval is anyone
    // else's with the role, and the page and Sid's work say so.
    console.sign_in("sid").await;
    let home = console.text().await;
    assert!(home.contains("Security review: to decide"), "{home}");
    console.goto(&review).await;
    let security = console.text_of("#stage-security [data-next]").await;
    assert!(
        security.contains("1 of 2 approvals — needs another security reviewer"),
        "{security}"
    );
    decide(&console, &review, "security", "approve").await;
    assert!(notice(&console).await.contains("Your decision is recorded"));
    console.sign_out().await;
    console.sign_in("pia").await;
    console.goto(&review).await;
    let form = "#stage-privacy form.decide";
    // A request for changes needs a comment: the form comes back with the
    // reason beside the comment and everything entered, the conditions open.
    console.choose(form, "decision", "request_changes").await;
    console
        .client()
        .find(Locator::Css(&format!("{form} details summary")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    console.choose(form, "data_classes", "public").await;
    console.choose(form, "regions", "eu").await;
    console
        .click_button_in(Some(form), "Record my decision")
        .await;
    let refused = console.text_of(form).await;
    assert!(
        refused.contains("A comment is required to reject or request changes."),
        "{refused}"
    );
    for checked in [
        "input[name=decision][value=request_changes]",
        "input[name=data_classes][value=public]",
        "input[name=regions][value=eu]",
    ] {
        let css = format!("{form} {checked}");
        let element = console.client().find(Locator::Css(&css)).await.unwrap();
        assert_eq!(
            element.prop("checked").await.unwrap().as_deref(),
            Some("true"),
            "{css}"
        );
    }
    assert!(
        console
            .is_displayed(&format!("{form} input[name=regions]"))
            .await
    );
    console.shot("review-decide-refused").await;
    console.choose(form, "decision", "approve").await;
    console.choose(form, "data_classes", "internal").await;
    console
        .client()
        .execute(
            "document.querySelector(arguments[0]).scrollIntoView({block: 'center'})",
            vec![json!(form)],
        )
        .await
        .unwrap();
    console.shot("review-decide").await;
    console
        .click_button_in(Some(form), "Record my decision")
        .await;
    let text = console.text().await;
    assert!(text.contains("approved with conditions"), "{text}");
    console.look("review").await;
    console.sign_out().await;

    // The model page shows the clearance and its conditions; the API agrees.
    console.sign_in("ada").await;
    console.goto("/providers/acme/models/claude").await;
    let text = console.text().await;
    assert!(text.contains("approved with conditions"), "{text}");
    assert!(text.contains("Only in these regions: eu"), "{text}");
    assert!(
        text.contains("Only with these data classes: public, internal"),
        "{text}"
    );
    let status: Value = app
        .get(
            "/v1/status/acme/claude",
            &app.token("ci", &[Role::Integrator]),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "approved_with_conditions");
    assert_eq!(status["conditions"]["regions"], json!(["eu"]));
    assert_eq!(
        status["conditions"]["data_classes"],
        json!(["public", "internal"])
    );
    // The integrator's lookup shows among those who ask for the model,
    // with their address once the directory has noted them (a write that
    // lands after the lookup's response).
    let mut askers = String::new();
    for _ in 0..30 {
        console.goto("/providers/acme/models/claude").await;
        askers = console
            .client()
            .find(Locator::Css("#askers"))
            .await
            .expect("the integrators of the last 30 days")
            .text()
            .await
            .unwrap();
        if askers.contains("ci@example.com") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        askers.contains("ci") && askers.contains("ci@example.com"),
        "{askers}"
    );
    console.look("model").await;

    // An admin suspends it, told first who will be refused; the page and
    // the API say so at once, and the integrator is emailed.
    console
        .fill_in(
            Some("form[action$='/switch']"),
            "reason",
            "Provider incident",
        )
        .await;
    console.press(None, "Suspend").await;
    let confirmation = console
        .client()
        .get_alert_text()
        .await
        .expect("a confirmation");
    assert!(
        confirmation.contains("1 asked for it in the last 30 days"),
        "{confirmation}"
    );
    console
        .client()
        .accept_alert()
        .await
        .expect("a confirmation");
    console
        .client()
        .wait()
        .for_element(Locator::Css("#clearance-status.suspended"))
        .await
        .expect("the page shows the suspension");
    let text = console.text().await;
    assert!(
        text.contains("Suspended: every integrator is now refused."),
        "{text}"
    );
    assert!(text.contains("Provider incident"), "{text}");
    let status: Value = app
        .get(
            "/v1/status/acme/claude",
            &app.token("ci", &[Role::Integrator]),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "suspended");
    let sent = app.sent_emails().await;
    assert!(
        sent.iter().any(|e| e["to"] == json!(["ci@example.com"])
            && e["subject"] == "Suspended: Claude by Acme AI"),
        "{sent:?}"
    );

    // The other main pages, checked and kept.
    for (path, name) in [
        ("/portfolio", "portfolio"),
        ("/providers", "providers"),
        ("/providers/acme", "provider"),
        ("/reviews", "reviews"),
        ("/admin", "admin"),
        ("/admin/audit", "audit"),
    ] {
        console.goto(path).await;
        console.look(name).await;
    }
    console.click_button("Verify the chain").await;
    assert!(notice(&console).await.contains("The chain verifies"));

    // A form without its CSRF token is refused.
    console.goto("/providers/acme/edit").await;
    console
        .client()
        .execute(
            "document.querySelectorAll('input[name=csrf]').forEach(e => e.remove());",
            vec![],
        )
        .await
        .unwrap();
    console.click_button("Save").await;
    let text = console.text().await;
    assert!(text.contains("This form has expired"), "{text}");

    // With an identity provider configured, a development link is refused.
    let links = clearance::console::links::Links::new(SECRET).unwrap();
    let token = links
        .issue(&clearance::console::session::SignedIn {
            sub: "mallory".into(),
            email: None,
            name: None,
            roles: [Role::Admin].into(),
        })
        .unwrap();
    console.goto(&format!("/signin/link/{token}")).await;
    let text = console.text().await;
    assert!(text.contains("Development sign-in is off"), "{text}");
    browser.close().await;
}

/// A supplier invited once to every questionnaire: the list page while they
/// wait for intake, then open; one answered; changes requested and shown.
async fn a_supplier_answers_every_questionnaire_through_one_link(backend: Backend, tools: &Tools) {
    let provider = Provider::start().await;
    let folder = workflows();
    let Some(app) = spawn(backend, Some(&provider), folder.path()).await else {
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
    let link = app.invitation_link("contact@acme.example").await;

    // Before intake is approved, the list says when each opens.
    console.client().goto(&link).await.unwrap();
    let text = console.text().await;
    assert!(
        text.contains("Questionnaires") && text.contains("Claude by ANTHROPIC"),
        "{text}"
    );
    assert_eq!(
        text.matches("opens when our earlier review steps are done")
            .count(),
        2,
        "{text}"
    );
    console.look("respond-all-waiting").await;

    flow.through_intake(json!({})).await;
    console.client().goto(&link).await.unwrap();
    let text = console.text().await;
    assert_eq!(text.matches("open for your answers").count(), 2, "{text}");
    console.look("respond-all").await;

    // The security questionnaire, from the list.
    console.click_link("Security review").await;
    let security = stage(&workflow, "security");
    let answers = in_order(security, &fill(security, &json!({})));
    console.answer("form[data-questionnaire]", &answers).await;
    console.click_button("Submit answers").await;
    let text = console.text().await;
    assert!(
        text.contains("these answers are with the reviewers"),
        "{text}"
    );
    console.client().goto(&link).await.unwrap();
    assert!(
        console
            .text()
            .await
            .contains("submitted, with our reviewers")
    );

    // The reviewer asks for a change: the questionnaire shows the comment.
    let asked = flow
        .decide(
            &app.token("sam", &[Role::SecurityReviewer]),
            "security",
            json!({"decision": "request_changes", "comment": "Please name the TLS versions you accept."}),
        )
        .await;
    assert_eq!(asked.status(), 200);
    console.client().goto(&link).await.unwrap();
    console.click_link("Security review").await;
    let text = console.text().await;
    assert!(text.contains("The reviewer asked for changes"), "{text}");
    assert!(
        text.contains("Please name the TLS versions you accept."),
        "{text}"
    );
    console.look("respond-changes-requested").await;
    browser.close().await;
}

macro_rules! browser_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let Some(tools) = tools() else { return };
                super::$name(Backend::Sqlite, &tools).await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some(tools) = tools() else { return };
                super::$name(Backend::Postgres, &tools).await;
            }
        }
    )*};
}

browser_tests!(
    a_review_runs_from_sign_in_to_suspension,
    a_supplier_answers_every_questionnaire_through_one_link,
);
