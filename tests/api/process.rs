//! The review process as people live it: who receives which email when work
//! arrives, suppliers chased, the daily digest, one email for a stage found
//! several levels late, approvals that cannot contradict open findings,
//! re-reviews that keep the tier and the assignees. Emails are read as the
//! outbox worker sent them.

use clearance::auth::Role;
use serde_json::{Value, json};

use crate::flow::Flow;
use crate::helpers::{Backend, TestApp, assert_problem, error_fields};
use crate::scheduler::{advance, run_job};
use crate::status::approve;

/// Lets the directory record the people who just made requests.
async fn settle() {
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
}

/// Makes each person known to the directory (they have called the API).
pub(crate) async fn known(app: &TestApp, people: &[(&str, Role)]) {
    for (sub, role) in people {
        let response = app.get("/v1/reviews", &app.token(sub, &[*role])).await;
        assert_eq!(response.status(), 200, "{sub} lists reviews");
    }
    settle().await;
}

/// The emails sent so far whose subject starts with `prefix`.
async fn sent(app: &TestApp, prefix: &str) -> Vec<Value> {
    app.sent_emails()
        .await
        .into_iter()
        .filter(|e| e["subject"].as_str().unwrap().starts_with(prefix))
        .collect()
}

fn recipients(email: &Value) -> Vec<String> {
    serde_json::from_value(email["to"].clone()).unwrap()
}

/// The respondent token in the first `/respond/` link of an email.
fn link_token(email: &Value) -> String {
    let text = email["text"].as_str().unwrap();
    let link = text
        .lines()
        .find(|l| l.contains("/respond/"))
        .unwrap_or_else(|| panic!("a link in {text}"));
    link.trim().rsplit('/').next().unwrap().to_owned()
}

async fn invite(app: &TestApp, flow: &Flow<'_>, stage: &str, email: &str, expires_in: &str) {
    let response = app
        .post(
            &flow.path(&format!("/stages/{stage}/invite")),
            &app.manager(),
            &json!({"email": email, "expires_in": expires_in}),
        )
        .await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

/// The vendor manager assigns a duty of `stage` (as `body` says).
async fn assign(app: &TestApp, flow: &Flow<'_>, stage: &str, body: Value) -> reqwest::Response {
    app.post(
        &flow.path(&format!("/stages/{stage}/assign")),
        &app.manager(),
        &body,
    )
    .await
}

async fn audit_after(app: &TestApp, action: &str) -> Vec<Value> {
    crate::scheduler::audit_events(app, action)
        .await
        .iter()
        .map(|e| e["after"].clone())
        .collect()
}

backend_tests! {
    async fn the_person_a_stage_waits_for_is_told_and_nobody_else(app) {
        known(&app, &[("vera", Role::VendorManager), ("sam", Role::SecurityReviewer), ("pia", Role::PrivacyReviewer)]).await;
        let flow = Flow::start(&app).await;
        let victor = app.manager();

        // Victor submits the intake: the other vendor manager decides it, not he.
        flow.answer_and_submit(&victor, "intake", json!({})).await;
        let ready = sent(&app, "Ready for review: Intake").await;
        assert_eq!(ready.len(), 1, "{ready:?}");
        assert_eq!(recipients(&ready[0]), ["vera@example.com"]);
        let text = ready[0]["text"].as_str().unwrap();
        assert!(text.contains("has been submitted"), "{text}");
        assert!(text.contains(&format!("/reviews/{}#stage-intake", flow.id)), "a console link: {text}");
        assert!(!text.contains("/v1/"), "no API links: {text}");
        flow.approve(&app.token("vera", &[Role::VendorManager]), "intake").await;

        // An assignee is told; somebody Clearance never saw is refused.
        let unknown = app.post(&flow.path("/stages/privacy/assign"), &victor, &json!({"assignee": "pat"})).await;
        let problem = assert_problem(unknown, 422).await;
        assert_eq!(error_fields(&problem), ["assignee"]);
        assert!(problem["errors"][0]["message"].as_str().unwrap().contains("pia"), "{problem}");
        let assigned = app.post(&flow.path("/stages/privacy/assign"), &victor, &json!({"assignee": "pia"})).await;
        assert_eq!(assigned.status(), 200);
        // Pia reviews privacy: she is assigned to decide it, and told it
        // waits on the supplier's answers first.
        let told = sent(&app, "To decide: Privacy").await;
        assert_eq!(told.len(), 1, "{told:?}");
        assert_eq!(recipients(&told[0]), ["pia@example.com"]);
        let text = told[0]["text"].as_str().unwrap();
        assert!(text.contains("victor assigned you to decide the Privacy"), "{text}");
        assert!(text.contains("not ready for a decision yet"), "{text}");
        let review = flow.review().await;
        let privacy = review["stages"].as_array().unwrap().iter().find(|s| s["key"] == "privacy").unwrap().clone();
        assert_eq!(privacy["assignees"], json!({"answer": null, "decide": "pia"}));
        assert!(privacy["assignee"].is_null(), "it waits on the supplier now: {privacy}");

        // The supplier submits: the security reviewers hear of it.
        invite(&app, &flow, "security", "sec@supplier.example", "20d").await;
        let invitation = sent(&app, "Questionnaire: Security").await;
        let supplier = link_token(&invitation[0]);
        flow.answer_and_submit(&supplier, "security", json!({})).await;
        // The answers are credited to the contact, with the invitation.
        let answers = flow.review().await["answers"]["security"].clone();
        let credit = answers.as_object().unwrap().values().next().unwrap()["answered_by"].as_str().unwrap().to_owned();
        assert!(credit.starts_with("sec@supplier.example (invitation "), "{credit}");
        let submitted = sent(&app, "Ready for review: Security").await;
        assert_eq!(submitted.len(), 1, "{submitted:?}");
        assert_eq!(recipients(&submitted[0]), ["sam@example.com"]);
        assert!(submitted[0]["text"].as_str().unwrap().contains("The supplier has submitted"));

        // Sam asks for changes: the supplier is told, with the comment and a link
        // that opens the questionnaire with the comment on it.
        let asked = flow
            .decide(&app.token("sam", &[Role::SecurityReviewer]), "security",
                json!({"decision": "request_changes", "comment": "Name the TLS versions you accept."}))
            .await;
        assert_eq!(asked.status(), 200);
        let changes = sent(&app, "Changes requested: Security").await;
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(recipients(&changes[0]), ["sec@supplier.example"]);
        assert!(changes[0]["text"].as_str().unwrap().contains("Name the TLS versions you accept."));
        let again = link_token(&changes[0]);
        let stage: Value = app.get(&flow.path("/stages/security"), &again).await.json().await.unwrap();
        assert_eq!(stage["state"], "awaiting_answers");
        assert_eq!(stage["changes_requested"], "Name the TLS versions you accept.");
        let page = app.client.get(app.url(&format!("/respond/{again}"))).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("The reviewer asked for changes"), "{page}");
        assert!(page.contains("Name the TLS versions you accept."));
    }

    async fn a_stage_that_needs_two_approvals_asks_for_the_second_and_says_so(app) {
        known(&app, &[("sam", Role::SecurityReviewer), ("sue", Role::SecurityReviewer), ("vera", Role::VendorManager)]).await;
        let flow = Flow::start(&app).await;
        flow.through_intake(json!({"data_classes": ["internal", "personal"], "affects_people": true})).await;
        assert_eq!(flow.review().await["tier"], "high");
        let victor = app.manager();
        flow.answer_and_submit(&victor, "security", json!({})).await;
        let ready = sent(&app, "Ready for review: Security").await;
        assert_eq!(ready.len(), 1, "{ready:?}");
        let mut both = recipients(&ready[0]);
        both.sort();
        assert_eq!(both, ["sam@example.com", "sue@example.com"]);
        let assigned = app.post(&flow.path("/stages/security/assign"), &victor, &json!({"assignee": "sam"})).await;
        assert_eq!(assigned.status(), 200);

        // Sam approves: Sue, who may give the second approval, is asked for
        // it, and nobody else; the stage is on her list, no longer on his.
        flow.approve(&app.token("sam", &[Role::SecurityReviewer]), "security").await;
        let another = sent(&app, "Another approval needed: Security").await;
        assert_eq!(another.len(), 1, "{another:?}");
        assert_eq!(recipients(&another[0]), ["sue@example.com"]);
        let text = another[0]["text"].as_str().unwrap();
        assert!(text.contains("It has 1 of the 2 approvals it needs"), "{text}");
        let sam = crate::console::sign_in(&app, "sam", &[Role::SecurityReviewer]).await;
        let home = crate::console::page(&app, "/", &sam).await.text().await.unwrap();
        assert!(!home.contains("Security review"), "Sam has approved it: {home}");
        let sue = crate::console::sign_in(&app, "sue", &[Role::SecurityReviewer]).await;
        let home = crate::console::page(&app, "/", &sue).await.text().await.unwrap();
        assert!(home.contains("Security review: to decide"), "{home}");
        let manager = crate::console::sign_in(&app, "victor", &[Role::VendorManager]).await;
        let review = crate::console::page(&app, &format!("/reviews/{}", flow.id), &manager).await.text().await.unwrap();
        assert!(review.contains("1 of 2 approvals — needs another security reviewer"), "{review}");
        flow.approve(&app.token("sue", &[Role::SecurityReviewer]), "security").await;
        let review = flow.review().await;
        let security = review["stages"].as_array().unwrap().iter().find(|s| s["key"] == "security").unwrap().clone();
        assert_eq!(security["state"], "approved");
    }

    async fn a_stage_nobody_may_decide_is_brought_to_the_admins(app) {
        known(&app, &[("ada", Role::Admin), ("victor", Role::VendorManager)]).await;
        let flow = Flow::start(&app).await;
        // The only vendor manager answered the intake: segregation of duties
        // keeps him from deciding it, and nobody else holds the role.
        flow.answer_and_submit(&app.manager(), "intake", json!({})).await;
        assert!(sent(&app, "Ready for review: Intake").await.is_empty());
        let told = sent(&app, "Nobody may decide: Intake").await;
        assert_eq!(told.len(), 1, "{told:?}");
        assert_eq!(recipients(&told[0]), ["ada@example.com"]);
        let text = told[0]["text"].as_str().unwrap();
        assert!(text.contains("segregation of duties"), "{text}");
        let events = audit_after(&app, "notification.undeliverable").await;
        assert!(
            events.iter().any(|e| e["stage"] == "intake" && e["reason"].as_str().unwrap().contains("started the review, answered the stage")),
            "{events:?}"
        );
        // The review's page says so where it says who acts next.
        let cookie = crate::console::sign_in(&app, "ada", &[Role::Admin]).await;
        let page = crate::console::page(&app, &format!("/reviews/{}", flow.id), &cookie).await.text().await.unwrap();
        assert!(
            page.contains("nobody known to Clearance may decide it: everyone with the vendor manager role started the review"),
            "{page}"
        );
    }

    async fn an_assignment_names_answering_or_deciding_and_reaches_who_has_not_signed_in(app) {
        known(&app, &[("vera", Role::VendorManager), ("sam", Role::SecurityReviewer), ("pia", Role::PrivacyReviewer)]).await;
        let flow = Flow::start(&app).await;
        let stage_of = |review: &Value, key: &str| {
            review["stages"].as_array().unwrap().iter().find(|s| s["key"] == key).unwrap().clone()
        };

        // Vera answers the intake: she is told to answer it, now.
        assert_eq!(assign(&app, &flow, "intake", json!({"assignee": "vera", "duty": "answer"})).await.status(), 200);
        let told = sent(&app, "To answer: Intake").await;
        assert_eq!(told.len(), 1, "{told:?}");
        assert_eq!(recipients(&told[0]), ["vera@example.com"]);
        assert!(told[0]["text"].as_str().unwrap().contains("Please answer its questionnaire"), "{}", told[0]["text"]);
        // Victor started the review: he may not be its decider; nor may Vera,
        // who answers it; and Pia does not hold the vendor manager role.
        for (who, why) in [("victor", "started this review"), ("vera", "is assigned to answer"), ("pia", "does not hold the `vendor_manager` role")] {
            let refused = assert_problem(assign(&app, &flow, "intake", json!({"assignee": who, "duty": "decide"})).await, 422).await;
            assert_eq!(error_fields(&refused), ["assignee"]);
            assert!(refused["errors"][0]["message"].as_str().unwrap().contains(why), "{refused}");
        }

        // Sam reviews security: with no duty named, his role says deciding.
        assert_eq!(assign(&app, &flow, "security", json!({"assignee": "sam"})).await.status(), 200);
        let review = flow.review().await;
        assert_eq!(stage_of(&review, "security")["assignees"], json!({"answer": null, "decide": "sam"}));
        assert_eq!(sent(&app, "To decide: Security").await.len(), 1);

        // Nina has not signed in yet: she is assigned by her address, told by
        // email, and the stage is hers by name once she signs in.
        assert_eq!(assign(&app, &flow, "privacy", json!({"assignee": "Nina@Example.com", "duty": "decide"})).await.status(), 200);
        let told = sent(&app, "To decide: Privacy").await;
        assert_eq!(told.len(), 1, "{told:?}");
        assert_eq!(recipients(&told[0]), ["nina@example.com"]);
        let review = flow.review().await;
        assert_eq!(stage_of(&review, "privacy")["assignees"]["decide"], "nina@example.com");
        known(&app, &[("nina", Role::PrivacyReviewer)]).await;
        let review = flow.review().await;
        assert_eq!(stage_of(&review, "privacy")["assignees"]["decide"], "nina");
        // Somebody neither known nor an address is refused, naming who may.
        let unknown = assert_problem(assign(&app, &flow, "privacy", json!({"assignee": "pat", "duty": "decide"})).await, 422).await;
        let message = unknown["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("nina") && message.contains("pia"), "{message}");
    }

    async fn suppliers_are_reminded_before_their_deadlines_and_an_unused_link_is_reported(app) {
        let flow = Flow::start(&app).await;
        flow.through_intake(json!({})).await;
        // Security is due ten days after intake; the link works for twelve.
        invite(&app, &flow, "security", "sec@supplier.example", "12d").await;
        run_job(&app, "sla-sweep").await;
        assert!(sent(&app, "Reminder: Security").await.is_empty());

        advance(&app, "P8DT1H").await;
        let report = run_job(&app, "sla-sweep").await;
        assert_eq!(report["supplier_reminders"], 1, "{report}");
        assert_eq!(run_job(&app, "sla-sweep").await["supplier_reminders"], 0, "once only");
        let due = sent(&app, "Reminder: Security review for Claude by ANTHROPIC is due soon").await;
        assert_eq!(due.len(), 1);
        assert_eq!(recipients(&due[0]), ["sec@supplier.example"]);
        // The reminder's link works.
        let stage = app.get(&flow.path("/stages/security"), &link_token(&due[0])).await;
        assert_eq!(stage.status(), 200);

        // The answers are now late and the link ends in under three days: one
        // email, about the link.
        advance(&app, "P2D").await;
        run_job(&app, "sla-sweep").await;
        let expiring = sent(&app, "Your link for Security review").await;
        assert_eq!(expiring.len(), 1);
        assert!(sent(&app, "Overdue: Security").await.is_empty());

        advance(&app, "P2D").await;
        let report = run_job(&app, "sla-sweep").await;
        assert_eq!(report["expired_links"], 1, "{report}");
        run_job(&app, "sla-sweep").await;
        let expired = sent(&app, "Link expired unused: Security").await;
        assert_eq!(expired.len(), 1);
        assert_eq!(recipients(&expired[0]), ["victor@example.com"]);
        assert!(expired[0]["text"].as_str().unwrap().contains("sec@supplier.example"));
        assert_eq!(audit_after(&app, "invitation.expired_unused").await.len(), 1);
        assert_eq!(audit_after(&app, "supplier.reminded").await.len(), 2);
    }

    async fn the_digest_lists_what_each_person_may_act_on_and_what_they_must_chase(app) {
        known(&app, &[("vera", Role::VendorManager), ("sam", Role::SecurityReviewer), ("pia", Role::PrivacyReviewer)]).await;
        let flow = Flow::start(&app).await;
        let victor = app.manager();
        flow.answer_and_submit(&victor, "intake", json!({})).await;

        run_job(&app, "digest").await;
        let digests = sent(&app, "Your reviews for").await;
        let to: Vec<Vec<String>> = digests.iter().map(recipients).collect();
        // Victor started the review, so the intake is vera's to decide, not his.
        assert_eq!(to, [vec!["vera@example.com".to_owned()]], "{digests:?}");
        let text = digests[0]["text"].as_str().unwrap();
        assert!(text.contains("For you to act on"), "{text}");
        assert!(text.contains("Claude by ANTHROPIC: Intake and risk tiering"), "{text}");

        flow.approve(&app.token("vera", &[Role::VendorManager]), "intake").await;
        let assigned = app.post(&flow.path("/stages/privacy/assign"), &victor, &json!({"assignee": "pia"})).await;
        assert_eq!(assigned.status(), 200);
        invite(&app, &flow, "security", "sec@supplier.example", "20d").await;
        advance(&app, "P1D").await;
        run_job(&app, "digest").await;
        let digests = sent(&app, "Your reviews for").await;
        let of = |who: &str| {
            digests
                .iter()
                .filter(|d| recipients(d) == [format!("{who}@example.com")])
                .map(|d| d["text"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        let victors = of("victor");
        assert_eq!(victors.len(), 1, "{digests:?}");
        let chase = victors[0].split("To chase with suppliers").nth(1).expect("a list to chase");
        assert!(chase.contains("Security review") && chase.contains("invited sec@supplier.example"), "{chase}");
        assert!(chase.contains("Privacy and data protection review") && chase.contains("nobody is invited"), "{chase}");
        assert!(!victors[0].contains("For you to act on"), "{}", victors[0]);
        // Pia decides privacy once the supplier has answered: nothing waits
        // for her yet.
        assert!(of("pia").is_empty(), "{digests:?}");
        assert!(of("sam").is_empty(), "nothing waits for the security reviewer yet");
        assert_eq!(of("vera").len(), 1, "vera's first digest only");
    }

    async fn a_stage_found_several_levels_late_sends_one_email(app) {
        Flow::start(&app).await;
        app.get("/v1/admin/people", &app.admin()).await;
        settle().await;
        // Intake: due after 5d; ladder 0h, 2d, 7d. Twelve days on, all three are due.
        advance(&app, "P12DT1M").await;
        let report = run_job(&app, "sla-sweep").await;
        assert_eq!((report["reminders"].as_u64(), report["escalations"].as_u64()), (Some(0), Some(1)), "{report}");
        run_job(&app, "sla-sweep").await;
        let emails = sent(&app, "").await;
        let about_intake: Vec<_> = emails
            .iter()
            .filter(|e| e["subject"].as_str().unwrap().contains("Intake and risk tiering of Claude by ANTHROPIC is overdue"))
            .collect();
        assert_eq!(about_intake.len(), 1, "{about_intake:?}");
        assert!(about_intake[0]["subject"].as_str().unwrap().starts_with("Escalation 2:"));
        let escalated = audit_after(&app, "stage.escalated").await;
        assert_eq!(escalated.len(), 1);
        assert_eq!(escalated[0]["skipped_levels"], json!([0, 1]));
    }

    async fn an_approval_is_refused_while_a_high_finding_has_no_owner(app) {
        let flow = Flow::start(&app).await;
        flow.through_intake(json!({})).await;
        let victor = app.manager();
        flow.answer_and_submit(&victor, "security", json!({"encryption_in_transit": false})).await;
        flow.answer_and_submit(&victor, "privacy", json!({})).await;
        let sam = app.token("sam", &[Role::SecurityReviewer]);
        flow.approve(&sam, "security").await;
        let pia = app.token("pia", &[Role::PrivacyReviewer]);
        let refused = flow.decide(&pia, "privacy", json!({"decision": "approve"})).await;
        let problem = assert_problem(refused, 409).await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains("high") && detail.contains("no owner"), "{detail}");
        assert_eq!(flow.review().await["state"], "in_progress", "nothing changed");

        // Accepting the finding, with a reason, is the other way; it records who.
        let finding = flow.review().await["findings"][0].clone();
        let accepted = app
            .patch(&flow.path(&format!("/findings/{}", finding["id"].as_str().unwrap())), &sam,
                &json!({"state": "accepted", "resolution": "Internal traffic only; accepted by the CISO."}), None)
            .await;
        assert_eq!(accepted.status(), 200);
        let accepted: Value = accepted.json().await.unwrap();
        assert_eq!(accepted["resolved_by"], "sam");
        flow.approve(&pia, "privacy").await;
        assert_eq!(flow.review().await["state"], "approved");
    }

    async fn a_re_review_starts_at_the_previous_tier_with_the_previous_assignees(app) {
        known(&app, &[("sam", Role::SecurityReviewer), ("pia", Role::PrivacyReviewer)]).await;
        let flow = Flow::start(&app).await;
        let victor = app.manager();
        let raised = app.post(&flow.path("/tier"), &victor, &json!({"tier": "medium", "reason": "Customer chats."})).await;
        assert_eq!(raised.status(), 200, "{}", raised.text().await.unwrap());
        flow.through_intake(json!({})).await;
        for (stage, who) in [("security", "sam"), ("privacy", "pia")] {
            let assigned = app.post(&flow.path(&format!("/stages/{stage}/assign")), &victor, &json!({"assignee": who})).await;
            assert_eq!(assigned.status(), 200);
        }
        flow.answer_and_submit(&victor, "security", json!({})).await;
        flow.answer_and_submit(&victor, "privacy", json!({})).await;
        flow.approve(&app.token("sam", &[Role::SecurityReviewer]), "security").await;
        flow.approve(&app.token("pia", &[Role::PrivacyReviewer]), "privacy").await;
        assert_eq!(flow.review().await["tier"], "medium");

        let lower = app.post(&flow.path("/re-review"), &victor, &json!({"tier": "low"})).await;
        assert_eq!(error_fields(&assert_problem(lower, 422).await), ["reason"]);
        let response = app.post(&flow.path("/re-review"), &victor, &json!({})).await;
        assert_eq!(response.status(), 201);
        let re_review: Value = response.json().await.unwrap();
        assert_eq!(re_review["tier"], "medium");
        let assignees = |key: &str| {
            re_review["stages"].as_array().unwrap().iter().find(|s| s["key"] == key).unwrap()["assignees"].clone()
        };
        assert_eq!(assignees("security"), json!({"answer": null, "decide": "sam"}));
        assert_eq!(assignees("privacy"), json!({"answer": null, "decide": "pia"}));
        assert_eq!(assignees("intake"), json!({"answer": null, "decide": null}));
    }

    async fn regions_are_codes_compared_whatever_their_case(app) {
        approve(&app, "gpt", Some(json!({"regions": ["EU"], "data_classes": ["internal"]}))).await;
        let integrator = app.token("ci", &[Role::Integrator]);
        let check = |regions: Value| {
            json!({"items": [{"provider": "acme", "model": "gpt", "data_classes": ["internal"], "regions": regions}]})
        };
        for regions in [json!(["eu"]), json!(["EU"]), json!(["Eu"])] {
            let answer: Value = app.post("/v1/status/check", &integrator, &check(regions.clone())).await.json().await.unwrap();
            assert_eq!(answer["results"][0]["allow"], true, "{regions}: {answer}");
        }
        let denied: Value = app.post("/v1/status/check", &integrator, &check(json!(["US"]))).await.json().await.unwrap();
        assert_eq!(denied["results"][0]["reasons"], json!(["region_not_allowed:US"]));
        let unknown = assert_problem(app.post("/v1/status/check", &integrator, &check(json!(["mars"]))).await, 422).await;
        assert_eq!(error_fields(&unknown), ["items[0].regions"]);
        let message = unknown["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("unknown region `mars`") && message.contains("eu, fr"), "{message}");

        // A condition naming an unknown region is refused when decided.
        let flow = Flow::start(&app).await;
        flow.through_intake(json!({})).await;
        let victor = app.manager();
        flow.answer_and_submit(&victor, "security", json!({})).await;
        let refused = flow
            .decide(&app.token("sam", &[Role::SecurityReviewer]), "security",
                json!({"decision": "approve", "conditions": {"regions": ["atlantis"]}}))
            .await;
        assert_eq!(error_fields(&assert_problem(refused, 422).await), ["conditions.regions"]);
    }

    async fn an_approver_is_warned_when_the_conditions_exclude_the_declared_use(app) {
        let flow = Flow::start(&app).await;
        flow.through_intake(json!({"data_classes": ["personal", "special_category"], "processing_regions": ["eu"]})).await;
        let victor = app.manager();
        flow.answer_and_submit(&victor, "security", json!({})).await;
        flow.answer_and_submit(&victor, "privacy", json!({})).await;
        let response = flow
            .decide(&app.token("sam", &[Role::SecurityReviewer]), "security",
                json!({"decision": "approve", "conditions": {"data_classes": ["internal", "personal"], "regions": ["eu"]}}))
            .await;
        assert_eq!(response.status(), 200);
        let review = flow.review().await;
        let warnings = review["warnings"].as_array().expect("a warning");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let warning = warnings[0].as_str().unwrap();
        assert!(warning.contains("special_category") && warning.contains("internal, personal"), "{warning}");
    }
    async fn one_link_invites_a_contact_to_every_supplier_questionnaire(app) {
        let flow = Flow::start(&app).await;
        // Before intake is approved: the questionnaires open later, to the same link.
        let response = app.post(&flow.path("/invite"), &app.manager(), &json!({"email": "contact@supplier.example", "expires_in": "30d"})).await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        let invited: Value = response.json().await.unwrap();
        let stages: Vec<&str> = invited["invitations"].as_array().unwrap().iter().map(|i| i["stage"].as_str().unwrap()).collect();
        assert_eq!(stages, ["security", "privacy"]);
        let emails = sent(&app, "Questionnaires for Claude by ANTHROPIC").await;
        assert_eq!(emails.len(), 1, "one email for both");
        assert_eq!(recipients(&emails[0]), ["contact@supplier.example"]);
        let bundle = link_token(&emails[0]);
        let list = |token: String| {
            let app = &app;
            async move { app.client.get(app.url(&format!("/respond/{token}"))).send().await.unwrap().text().await.unwrap() }
        };
        let page = list(bundle.clone()).await;
        assert!(page.contains("Security review") && page.contains("Privacy and data protection review"), "{page}");
        assert!(page.contains("opens when our earlier review steps are done"), "{page}");
        assert!(!page.contains("?hub="), "no questionnaire opens yet: {page}");
        // The list's link admits no answers through the API.
        let refused = app.get(&flow.path("/stages/security"), &bundle).await;
        assert!(matches!(refused.status().as_u16(), 401 | 403), "{}", refused.status());

        flow.through_intake(json!({})).await;
        // The contact was invited minutes ago: both openings wait for one
        // message the next day.
        assert!(sent(&app, "Now open:").await.is_empty());
        advance(&app, "P1D").await;
        run_job(&app, "sla-sweep").await;
        let opened = sent(&app, "Now open:").await;
        assert_eq!(opened.len(), 1, "{opened:?}");
        assert_eq!(opened[0]["subject"], "Now open: 2 questionnaires for Claude by ANTHROPIC");
        assert_eq!(recipients(&opened[0]), ["contact@supplier.example"]);
        let page = list(bundle).await;
        assert_eq!(page.matches("open for your answers").count(), 2, "{page}");
        let link = page.split("href=\"").filter(|p| p.contains("?hub=")).map(|p| p.split('"').next().unwrap().to_owned()).next().expect("a questionnaire link");
        let token = link.split('?').next().unwrap().rsplit('/').next().unwrap();
        flow.answer_and_submit(token, "security", json!({})).await;
        let review = flow.review().await;
        let security = review["stages"].as_array().unwrap().iter().find(|s| s["key"] == "security").unwrap().clone();
        assert_eq!(security["state"], "in_review");
    }
}

#[tokio::test]
async fn use_cases_come_from_the_organisations_catalogue() {
    let app = TestApp::spawn_with(Backend::Sqlite, |raw| {
        raw.use_cases = Some("support-chat, coding".into());
    })
    .await
    .unwrap();
    approve(&app, "gpt", Some(json!({"use_cases": ["Support-Chat"]}))).await;
    let integrator = app.token("ci", &[Role::Integrator]);
    let check = |use_case: &str| json!({"items": [{"provider": "acme", "model": "gpt", "use_case": use_case}]});
    let allowed: Value = app
        .post("/v1/status/check", &integrator, &check("support-chat"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(allowed["results"][0]["allow"], true, "{allowed}");
    let denied: Value = app
        .post("/v1/status/check", &integrator, &check("CODING"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        denied["results"][0]["reasons"],
        json!(["use_case_not_allowed:CODING"])
    );
    let unknown = assert_problem(
        app.post("/v1/status/check", &integrator, &check("fraud-scoring"))
            .await,
        422,
    )
    .await;
    assert_eq!(error_fields(&unknown), ["items[0].use_case"]);
    let message = unknown["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("coding, support-chat"), "{message}");
}
