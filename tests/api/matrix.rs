//! The authorisation matrix: every operation of the server's own OpenAPI
//! document, called by every role, anonymously and with a supplier's
//! invitation (to its own stage, another stage of its review, another
//! review), on seeded ids so that the calls reach their handlers. What each
//! caller should hear comes from [`MATRIX`], which mirrors the README's API
//! table; an operation the table does not cover fails the test, so a new
//! route cannot escape the matrix.

use std::collections::BTreeSet;

use clearance::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::flow::Flow;
use crate::helpers::TestApp;

/// Who an operation admits, as the README's API table says.
#[derive(Debug, Clone, Copy)]
enum Admits {
    /// Anybody, with or without a token.
    Anyone,
    /// A token holding one of these roles.
    Roles(&'static [Role]),
    /// These roles, or a supplier's invitation to the stage in the path.
    RolesOrInvitation(&'static [Role]),
}

use Admits::{Anyone, Roles, RolesOrInvitation};

const EVERY_ROLE: &[Role] = Role::ALL;
/// "review roles" of the README: every role but `integrator`.
const REVIEW_ROLES: &[Role] = &[
    Role::VendorManager,
    Role::SecurityReviewer,
    Role::PrivacyReviewer,
    Role::RaiReviewer,
    Role::Approver,
    Role::Admin,
];
const MANAGERS: &[Role] = &[Role::VendorManager, Role::Admin];
const ADMIN: &[Role] = &[Role::Admin];
/// `answered_by = "supplier"`: the invitation, or a vendor manager on the
/// supplier's behalf.
const SUPPLIER_ANSWERER: &[Role] = &[Role::VendorManager];

/// One row of the README's table: the operation as the OpenAPI document
/// names it, the request made (placeholders in braces are seeded ids; the
/// `{stage}` is the supplier's own stage, `security`), its body, and who
/// may make it.
struct Row {
    operation: &'static str,
    call: &'static str,
    body: Option<fn() -> Value>,
    admits: Admits,
}

const fn row(
    operation: &'static str,
    call: &'static str,
    body: Option<fn() -> Value>,
    admits: Admits,
) -> Row {
    Row {
        operation,
        call,
        body,
        admits,
    }
}

/// The README's API table, in its order. Stage routes are called on a
/// supplier stage (`security`: answered by the supplier, decided by
/// `security_reviewer`) and on `final-approval` (answered by a
/// `vendor_manager`, decided by `approver`).
const MATRIX: &[Row] = &[
    row("GET /healthz", "/healthz", None, Anyone),
    row("GET /readyz", "/readyz", None, Anyone),
    row(
        "POST /v1/providers",
        "/v1/providers",
        Some(|| json!({"slug": "matrix-new", "name": "Matrix"})),
        Roles(MANAGERS),
    ),
    row(
        "GET /v1/providers",
        "/v1/providers",
        None,
        Roles(EVERY_ROLE),
    ),
    row(
        "GET /v1/providers/{provider}",
        "/v1/providers/{provider}",
        None,
        Roles(EVERY_ROLE),
    ),
    row(
        "PATCH /v1/providers/{provider}",
        "/v1/providers/{provider}",
        Some(|| json!({"notes": "Seen by the matrix."})),
        Roles(MANAGERS),
    ),
    row(
        "POST /v1/providers/{provider}/models",
        "/v1/providers/{provider}/models",
        Some(|| json!({"slug": "matrix-model", "name": "Matrix model"})),
        Roles(MANAGERS),
    ),
    row(
        "GET /v1/providers/{provider}/models",
        "/v1/providers/{provider}/models",
        None,
        Roles(EVERY_ROLE),
    ),
    row(
        "GET /v1/providers/{provider}/models/{model}",
        "/v1/providers/{provider}/models/{model}",
        None,
        Roles(EVERY_ROLE),
    ),
    row(
        "PATCH /v1/providers/{provider}/models/{model}",
        "/v1/providers/{provider}/models/{model}",
        Some(|| json!({"description": "Seen by the matrix."})),
        Roles(MANAGERS),
    ),
    row(
        "GET /v1/workflows",
        "/v1/workflows",
        None,
        Roles(REVIEW_ROLES),
    ),
    row(
        "GET /v1/workflows/{id}",
        "/v1/workflows/model-provider",
        None,
        Roles(REVIEW_ROLES),
    ),
    row(
        "POST /v1/reviews",
        "/v1/reviews",
        Some(|| json!({"provider": "{provider}", "model": "{model}"})),
        Roles(MANAGERS),
    ),
    row("GET /v1/reviews", "/v1/reviews", None, Roles(REVIEW_ROLES)),
    row(
        "GET /v1/reviews/{id}",
        "/v1/reviews/{review}",
        None,
        Roles(REVIEW_ROLES),
    ),
    row(
        "GET /v1/reviews/{id}/stages/{stage}",
        "/v1/reviews/{review}/stages/{stage}",
        None,
        RolesOrInvitation(REVIEW_ROLES),
    ),
    row(
        "GET /v1/reviews/{id}/stages/{stage}",
        "/v1/reviews/{review}/stages/final-approval",
        None,
        Roles(REVIEW_ROLES),
    ),
    row(
        "PUT /v1/reviews/{id}/stages/{stage}/answers",
        "/v1/reviews/{review}/stages/{stage}/answers",
        Some(|| json!({"answers": {}})),
        RolesOrInvitation(SUPPLIER_ANSWERER),
    ),
    row(
        "PUT /v1/reviews/{id}/stages/{stage}/answers",
        "/v1/reviews/{review}/stages/final-approval/answers",
        Some(|| json!({"answers": {}})),
        Roles(&[Role::VendorManager]),
    ),
    row(
        "POST /v1/reviews/{id}/stages/{stage}/submit",
        "/v1/reviews/{review}/stages/{stage}/submit",
        None,
        RolesOrInvitation(SUPPLIER_ANSWERER),
    ),
    row(
        "POST /v1/reviews/{id}/stages/{stage}/submit",
        "/v1/reviews/{review}/stages/final-approval/submit",
        None,
        Roles(&[Role::VendorManager]),
    ),
    row(
        "POST /v1/reviews/{id}/stages/{stage}/invite",
        "/v1/reviews/{review}/stages/{stage}/invite",
        Some(|| json!({"email": "more@supplier.example"})),
        Roles(MANAGERS),
    ),
    row(
        "POST /v1/reviews/{id}/invite",
        "/v1/reviews/{review}/invite",
        Some(|| json!({"email": "all@supplier.example"})),
        Roles(MANAGERS),
    ),
    row(
        "DELETE /v1/reviews/{id}/invitations/{invitation}",
        "/v1/reviews/{review}/invitations/{invitation}",
        None,
        Roles(MANAGERS),
    ),
    row(
        "POST /v1/reviews/{id}/stages/{stage}/assign",
        "/v1/reviews/{review}/stages/{stage}/assign",
        Some(|| json!({"assignee": "sam"})),
        Roles(MANAGERS),
    ),
    row(
        "POST /v1/reviews/{id}/stages/{stage}/decisions",
        "/v1/reviews/{review}/stages/{stage}/decisions",
        Some(|| json!({"decision": "approve"})),
        Roles(&[Role::SecurityReviewer]),
    ),
    row(
        "POST /v1/reviews/{id}/stages/{stage}/decisions",
        "/v1/reviews/{review}/stages/final-approval/decisions",
        Some(|| json!({"decision": "approve"})),
        Roles(&[Role::Approver]),
    ),
    row(
        "POST /v1/reviews/{id}/stages/{stage}/questions/{question}/comments",
        "/v1/reviews/{review}/stages/{stage}/questions/encryption_in_transit/comments",
        Some(|| json!({"text": "Commented by the matrix."})),
        Roles(&[Role::SecurityReviewer, Role::Admin]),
    ),
    row(
        "POST /v1/reviews/{id}/tier",
        "/v1/reviews/{review}/tier",
        Some(|| json!({"tier": "high", "reason": "The matrix raises it."})),
        Roles(REVIEW_ROLES),
    ),
    row(
        "POST /v1/reviews/{id}/withdraw",
        "/v1/reviews/{spare}/withdraw",
        Some(|| json!({"reason": "The matrix withdraws it."})),
        Roles(MANAGERS),
    ),
    row(
        "POST /v1/reviews/{id}/re-review",
        "/v1/reviews/{approved}/re-review",
        None,
        Roles(MANAGERS),
    ),
    row(
        "POST /v1/reviews/{id}/findings",
        "/v1/reviews/{review}/findings",
        Some(|| json!({"severity": "low", "text": "Raised by the matrix."})),
        Roles(REVIEW_ROLES),
    ),
    row(
        "PATCH /v1/reviews/{id}/findings/{finding}",
        "/v1/reviews/{review}/findings/{finding}",
        Some(|| json!({"owner": "victor"})),
        Roles(REVIEW_ROLES),
    ),
    row(
        "GET /v1/status/{provider}/{model}",
        "/v1/status/{provider}/{model}",
        None,
        Roles(EVERY_ROLE),
    ),
    row(
        "POST /v1/status/check",
        "/v1/status/check",
        Some(|| json!({"items": [{"provider": "{provider}", "model": "{model}"}]})),
        Roles(EVERY_ROLE),
    ),
    row(
        "GET /v1/status/{provider}/{model}/attestation",
        "/v1/status/{provider}/{model}/attestation",
        None,
        Roles(EVERY_ROLE),
    ),
    row(
        "GET /v1/models/{provider}/{model}/usage",
        "/v1/models/{provider}/{model}/usage",
        None,
        Roles(MANAGERS),
    ),
    row(
        "GET /v1/intake",
        "/v1/intake?state=all",
        None,
        Roles(MANAGERS),
    ),
    row(
        "POST /v1/intake/{provider}/{model}/review",
        "/v1/intake/unreviewed/asked-about/review",
        Some(|| json!({})),
        Roles(MANAGERS),
    ),
    row(
        "POST /v1/intake/{provider}/{model}/dismiss",
        "/v1/intake/unreviewed/asked-about/dismiss",
        Some(|| json!({"reason": "The matrix dismisses it."})),
        Roles(MANAGERS),
    ),
    // Not in the README's table yet: the roles its handlers document.
    row(
        "GET /v1/exports/opa/bundle.tar.gz",
        "/v1/exports/opa/bundle.tar.gz",
        None,
        Roles(&[Role::Integrator, Role::Admin]),
    ),
    row(
        "GET /v1/exports/allowlist",
        "/v1/exports/allowlist",
        None,
        Roles(&[Role::Integrator, Role::Admin]),
    ),
    row(
        "GET /.well-known/jwks.json",
        "/.well-known/jwks.json",
        None,
        Anyone,
    ),
    row(
        "POST /v1/models/{provider}/{model}/suspend",
        "/v1/models/{provider}/{model}/suspend",
        Some(|| json!({"reason": "The matrix suspends it."})),
        Roles(ADMIN),
    ),
    row(
        "POST /v1/models/{provider}/{model}/resume",
        "/v1/models/{provider}/{model}/resume",
        Some(|| json!({"reason": "The matrix resumes it."})),
        Roles(ADMIN),
    ),
    row(
        "POST /v1/providers/{provider}/suspend",
        "/v1/providers/{provider}/suspend",
        Some(|| json!({"reason": "The matrix suspends it."})),
        Roles(ADMIN),
    ),
    row(
        "POST /v1/providers/{provider}/resume",
        "/v1/providers/{provider}/resume",
        Some(|| json!({"reason": "The matrix resumes it."})),
        Roles(ADMIN),
    ),
    row(
        "POST /v1/webhooks",
        "/v1/webhooks",
        Some(|| json!({"url": "http://127.0.0.1:9/matrix"})),
        Roles(ADMIN),
    ),
    row("GET /v1/webhooks", "/v1/webhooks", None, Roles(ADMIN)),
    row(
        "DELETE /v1/webhooks/{id}",
        "/v1/webhooks/{webhook}",
        None,
        Roles(ADMIN),
    ),
    row(
        "GET /v1/admin/outbox",
        "/v1/admin/outbox",
        None,
        Roles(ADMIN),
    ),
    row(
        "POST /v1/admin/outbox/{id}/retry",
        "/v1/admin/outbox/{message}/retry",
        None,
        Roles(ADMIN),
    ),
    row(
        "POST /v1/admin/jobs/{job}/run",
        "/v1/admin/jobs/sla-sweep/run",
        None,
        Roles(ADMIN),
    ),
    row(
        "POST /v1/admin/clock",
        "/v1/admin/clock",
        Some(|| json!({"advance": "1m"})),
        Roles(ADMIN),
    ),
    row(
        "GET /v1/admin/people",
        "/v1/admin/people",
        None,
        Roles(ADMIN),
    ),
    row(
        "GET /v1/admin/roles/{role}/mailbox",
        "/v1/admin/roles/security_reviewer/mailbox",
        None,
        Roles(ADMIN),
    ),
    row(
        "PUT /v1/admin/roles/{role}/mailbox",
        "/v1/admin/roles/security_reviewer/mailbox",
        Some(|| json!({"emails": ["sec-team@example.com"]})),
        Roles(ADMIN),
    ),
    row(
        "GET /v1/reviews/{id}/evidence",
        "/v1/reviews/{review}/evidence",
        None,
        Roles(REVIEW_ROLES),
    ),
    row(
        "GET /v1/evidence",
        "/v1/evidence?from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z",
        None,
        Roles(ADMIN),
    ),
    row("GET /v1/audit", "/v1/audit", None, Roles(ADMIN)),
    row(
        "GET /v1/audit",
        "/v1/audit?review={review}",
        None,
        Roles(REVIEW_ROLES),
    ),
    row(
        "GET /v1/audit/verify",
        "/v1/audit/verify",
        None,
        Roles(ADMIN),
    ),
];

/// Routes of the README's table that the OpenAPI document does not list
/// (it describes the JSON API); anybody may call them.
const OUTSIDE_THE_DOCUMENT: &[&str] = &["/metrics", "/openapi.json", "/docs/"];

/// Who makes a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    Role(Role),
    /// The supplier's invitation to `security` of the seeded review, on
    /// the stage it was issued for...
    OwnStage,
    /// ...on another stage (`privacy`) of that review...
    OtherStage,
    /// ...and on the same stage of another review.
    OtherReview,
}

fn callers() -> Vec<Caller> {
    let mut all = vec![
        Caller::Anonymous,
        Caller::OwnStage,
        Caller::OtherStage,
        Caller::OtherReview,
    ];
    all.extend(Role::ALL.iter().map(|&role| Caller::Role(role)));
    all
}

/// What a caller should hear from an operation.
#[derive(Debug, PartialEq, Eq)]
enum Expected {
    /// 401: no token.
    Unauthenticated,
    /// 403: the token does not admit the call.
    Forbidden,
    /// Anything but 401, 403 or a 5xx: the handler had its say.
    Admitted,
}

fn expected(admits: Admits, caller: Caller) -> Expected {
    let roles = match admits {
        Anyone => return Expected::Admitted,
        Roles(roles) | RolesOrInvitation(roles) => roles,
    };
    match caller {
        Caller::Anonymous => Expected::Unauthenticated,
        Caller::Role(role) if roles.contains(&role) => Expected::Admitted,
        Caller::OwnStage if matches!(admits, RolesOrInvitation(_)) => Expected::Admitted,
        _ => Expected::Forbidden,
    }
}

/// The ids the calls name, made by a short review process.
struct Seeded {
    provider: String,
    model: String,
    /// The review the supplier is invited to (`security`), intake approved.
    review: String,
    /// Another review, its intake approved too.
    other_review: String,
    /// A review for withdrawing.
    spare: String,
    /// An approved review, for a re-review.
    approved: String,
    /// An invitation (to `privacy` of `review`) for revoking.
    invitation: String,
    finding: String,
    webhook: String,
    message: String,
    /// The link token of the supplier's invitation to `security` of `review`.
    supplier: String,
}

impl Seeded {
    async fn new(app: &TestApp) -> Seeded {
        let admin = app.admin();
        let manager = app.manager();
        let approved = crate::status::approve(app, "approved-model", None).await;
        let flow = Flow::start(app).await;
        flow.through_intake(json!({})).await;
        let model = app
            .post(
                "/v1/providers/anthropic/models",
                &manager,
                &json!({"slug": "other", "name": "Other"}),
            )
            .await;
        assert_eq!(model.status(), 201);
        let other = Flow::start_for(app, "anthropic", Some("other")).await;
        other.through_intake(json!({})).await;
        let spare = Flow::start_for(app, "anthropic", None).await;
        // An integrator asks about a model nobody reviewed: the intake.
        let asked = app
            .get(
                "/v1/status/unreviewed/asked-about",
                &app.token("ci", &[Role::Integrator]),
            )
            .await;
        assert_eq!(asked.status(), 200);

        let invited = created(
            app.post(
                &flow.path("/stages/security/invite"),
                &manager,
                &json!({"email": "sec@supplier.example"}),
            )
            .await,
        )
        .await;
        assert_eq!(invited["stage"], "security");
        let invitation = created(
            app.post(
                &flow.path("/stages/privacy/invite"),
                &manager,
                &json!({"email": "priv@supplier.example"}),
            )
            .await,
        )
        .await;
        let finding = created(
            app.post(
                &flow.path("/findings"),
                &admin,
                &json!({"severity": "low", "text": "Seeded."}),
            )
            .await,
        )
        .await;
        let webhook = created(
            app.post(
                "/v1/webhooks",
                &admin,
                &json!({"url": "http://127.0.0.1:9/seeded"}),
            )
            .await,
        )
        .await;
        let supplier = app
            .invitation_link("sec@supplier.example")
            .await
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        let outbox: Value = app
            .get("/v1/admin/outbox", &admin)
            .await
            .json()
            .await
            .unwrap();
        Seeded {
            provider: "anthropic".into(),
            model: "claude".into(),
            review: flow.id.clone(),
            other_review: other.id.clone(),
            spare: spare.id.clone(),
            approved,
            invitation: id_of(&invitation),
            finding: id_of(&finding),
            webhook: id_of(&webhook),
            message: id_of(&outbox["items"][0]),
            supplier,
        }
    }

    /// `template` with the seeded ids, as `caller` calls it.
    fn fill(&self, template: &str, caller: Caller) -> String {
        let (review, stage) = match caller {
            Caller::OtherStage => (&self.review, "privacy"),
            Caller::OtherReview => (&self.other_review, "security"),
            _ => (&self.review, "security"),
        };
        template
            .replace("{provider}", &self.provider)
            .replace("{model}", &self.model)
            .replace("{review}", review)
            .replace("{stage}", stage)
            .replace("{spare}", &self.spare)
            .replace("{approved}", &self.approved)
            .replace("{invitation}", &self.invitation)
            .replace("{finding}", &self.finding)
            .replace("{webhook}", &self.webhook)
            .replace("{message}", &self.message)
    }

    fn token(&self, app: &TestApp, caller: Caller) -> Option<String> {
        match caller {
            Caller::Anonymous => None,
            // A person of their own, who started and answered nothing.
            Caller::Role(role) => Some(app.token(&format!("matrix-{role}"), &[role])),
            Caller::OwnStage | Caller::OtherStage | Caller::OtherReview => {
                Some(self.supplier.clone())
            }
        }
    }
}

async fn created(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

fn id_of(resource: &Value) -> String {
    resource["id"]
        .as_str()
        .unwrap_or_else(|| panic!("an id in {resource}"))
        .to_owned()
}

/// The operations of the OpenAPI document, as `METHOD /path`.
fn operations(document: &Value) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            if matches!(
                method.as_str(),
                "get" | "put" | "post" | "delete" | "patch" | "head" | "options" | "trace"
            ) {
                found.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    found
}

backend_tests! {
    async fn every_operation_admits_exactly_the_callers_the_readme_names(app) {
        let documented = operations(&app.openapi().await);
        let covered: BTreeSet<String> = MATRIX.iter().map(|r| r.operation.to_owned()).collect();
        let uncovered: Vec<_> = documented.difference(&covered).collect();
        assert!(uncovered.is_empty(), "operations the matrix does not cover: {uncovered:?}");
        let stale: Vec<_> = covered.difference(&documented).collect();
        assert!(stale.is_empty(), "rows of the matrix the OpenAPI document lacks: {stale:?}");

        let seeded = Seeded::new(&app).await;
        let mut calls = 0;
        let mut wrong = Vec::new();
        let rows = MATRIX
            .iter()
            .map(|r| (r.operation.split_once(' ').unwrap().0, r.call, r.body, r.admits))
            .chain(OUTSIDE_THE_DOCUMENT.iter().map(|&path| ("GET", path, None, Anyone)));
        for (method, call, body, admits) in rows {
            for caller in callers() {
                let path = seeded.fill(call, caller);
                let mut request = app
                    .client
                    .request(Method::from_bytes(method.as_bytes()).unwrap(), app.url(&path));
                if let Some(token) = seeded.token(&app, caller) {
                    request = request.bearer_auth(token);
                }
                if let Some(body) = body {
                    let text = seeded.fill(&body().to_string(), caller);
                    request = request.header("content-type", "application/json").body(text);
                }
                let response = request.send().await.expect("an answer, not a dropped connection");
                calls += 1;
                let status = response.status().as_u16();
                let problem = response
                    .headers()
                    .get("content-type")
                    .is_some_and(|t| t.as_bytes() == b"application/problem+json");
                let wanted = expected(admits, caller);
                let right = match wanted {
                    Expected::Unauthenticated => status == 401 && problem,
                    Expected::Forbidden => status == 403 && problem,
                    Expected::Admitted => !matches!(status, 401 | 403 | 500..),
                };
                if !right {
                    let text = response.text().await.unwrap_or_default();
                    wrong.push(format!("{method} {path} as {caller:?}: {status}, wanted {wanted:?}: {text}"));
                }
            }
        }
        println!("authorisation matrix: {calls} calls, {} operations, {} rows", documented.len(), MATRIX.len());
        assert!(wrong.is_empty(), "{} of {calls} calls answered wrongly:\n{}", wrong.len(), wrong.join("\n"));
        assert_eq!(calls, (MATRIX.len() + OUTSIDE_THE_DOCUMENT.len()) * callers().len());
    }
}

backend_tests! {
    async fn integrators_read_providers_by_name_never_their_people(app) {
        let made = app
            .post(
                "/v1/providers",
                &app.manager(),
                &json!({
                    "slug": "acme", "name": "Acme", "website": "https://acme.example",
                    "contacts": [{"name": "Pat Doe", "email": "pat@acme.example"}],
                    "notes": "Pat prefers calls before noon.",
                }),
            )
            .await;
        assert_eq!(made.status(), 201);
        let integrator = app.token("gateway", &[Role::Integrator]);
        let one: Value = app.get("/v1/providers/acme", &integrator).await.json().await.unwrap();
        assert_eq!(one, json!({"slug": "acme", "name": "Acme", "suspended": false}));
        let page: Value = app.get("/v1/providers", &integrator).await.json().await.unwrap();
        assert_eq!(page["items"], json!([{"slug": "acme", "name": "Acme", "suspended": false}]));
        // A token with a staff role beside `integrator` reads the provider whole.
        let both = app.token("ops", &[Role::Integrator, Role::SecurityReviewer]);
        let whole: Value = app.get("/v1/providers/acme", &both).await.json().await.unwrap();
        assert_eq!(whole["contacts"][0]["email"], "pat@acme.example");
        assert_eq!(whole["notes"], "Pat prefers calls before noon.");
    }
}
