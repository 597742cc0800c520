//! The hostile-input corpus (issue 15): every string field of every request
//! body, and every path and query parameter, of every operation the server's
//! own OpenAPI document lists, is sent control characters, NUL, overlong
//! values, huge and negative numbers, far-off durations and dates, invalid
//! UTF-8 and JSON of the wrong type — on seeded data, so that each request
//! reaches its handler. Never a 5xx, never a dropped connection, a problem
//! document on every 4xx, and nothing stored by a refused request.
//!
//! Where a control character makes no sense (slugs, names, addresses, ids,
//! assignees, reasons, URLs, query values) it is a 422 naming the field; free
//! text (notes, descriptions, comments, findings, text answers) keeps tab and
//! line breaks; the status check answers any name as a lookup.

use std::collections::{BTreeMap, BTreeSet};

use clearance::auth::Role;
use diesel::RunQueryDsl;
use serde_json::{Value, json};

use crate::flow::{Flow, fill};
use crate::helpers::{TestApp, assert_problem, error_fields};

/// Where webhooks deliver: a closed port of this machine, so that delivery
/// fails at once rather than going out to the network.
const HOOK: &str = "https://127.0.0.1:9/clearance";
/// A body longer than the 1 MiB limit once it holds the value.
const HUGE: usize = 1_100_000;
/// Longer than any field allows, well within every limit of the server.
const LONG: usize = 10 * 1024;
/// The longest request target reqwest sends (`http::Uri`'s limit); longer
/// ones go over a plain connection.
const MAX_URI: usize = 65_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Control,
    Nul,
    Overlong,
    Number,
    Time,
    InvalidUtf8,
    WrongType,
}

const CLASSES: [Class; 7] = [
    Class::Control,
    Class::Nul,
    Class::Overlong,
    Class::Number,
    Class::Time,
    Class::InvalidUtf8,
    Class::WrongType,
];

impl Class {
    /// How many of the class's values each field or parameter gets: all of a
    /// small class, a few of a large one, turning so that every value of the
    /// corpus is sent somewhere.
    fn take(self) -> usize {
        match self {
            Class::Control => 3,
            Class::Time | Class::Number => 3,
            Class::Nul | Class::Overlong | Class::InvalidUtf8 | Class::WrongType => 6,
        }
    }
}

/// U+0001..U+001F, DEL, NEL, the line separator and a bidi override.
fn control_characters() -> Vec<char> {
    (1u32..=0x1f)
        .chain([0x7f, 0x85, 0x2028, 0x202e])
        .filter_map(char::from_u32)
        .collect()
}

const TIMES: [&str; 11] = [
    "P300000Y",
    "99999999999d",
    "-5d",
    "0000-01-01",
    "+275760-09-13T00:00:00Z",
    "+262142-12-31T23:59:59Z",
    "-262143-01-01T00:00:00Z",
    "-0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "1e308d",
];

const NUMBERS: [&str; 6] = [
    "9223372036854775807",
    "-1",
    "1e308",
    "NaN",
    "-9223372036854775809",
    "18446744073709551616",
];

/// What a hostile value is, in a JSON body.
#[derive(Debug, Clone)]
enum InBody {
    /// Put in the middle of the field's usual text.
    Insert(char),
    Json(Value),
    /// Written where the field's value goes, as is: bytes JSON cannot carry,
    /// or a token serde cannot read.
    Raw(Vec<u8>),
}

#[derive(Debug, Clone)]
struct BodyValue {
    class: Class,
    label: String,
    value: InBody,
}

/// A hostile value for a path segment or a query parameter, percent-encoded.
#[derive(Debug, Clone)]
struct UrlValue {
    class: Class,
    label: String,
    encoded: String,
}

fn body_corpus() -> Vec<BodyValue> {
    let mut corpus = Vec::new();
    let mut add = |class, label: String, value| {
        corpus.push(BodyValue {
            class,
            label,
            value,
        })
    };
    for c in control_characters() {
        add(
            Class::Control,
            format!("U+{:04X}", c as u32),
            InBody::Insert(c),
        );
    }
    add(Class::Nul, "U+0000".into(), InBody::Insert('\0'));
    add(
        Class::Nul,
        "\\u0000 alone".into(),
        InBody::Json(json!("\0")),
    );
    add(
        Class::Overlong,
        "10 KB".into(),
        InBody::Json(json!("a".repeat(LONG))),
    );
    add(
        Class::Overlong,
        "4000 euro signs (12 KB)".into(),
        InBody::Json(json!("€".repeat(4000))),
    );
    add(
        Class::Overlong,
        "1 MB".into(),
        InBody::Json(json!("a".repeat(HUGE))),
    );
    add(
        Class::Number,
        "i64::MAX".into(),
        InBody::Json(json!(i64::MAX)),
    );
    add(Class::Number, "-1".into(), InBody::Json(json!(-1)));
    add(Class::Number, "1e308".into(), InBody::Json(json!(1e308)));
    add(
        Class::Number,
        "u64::MAX".into(),
        InBody::Json(json!(u64::MAX)),
    );
    add(
        Class::Number,
        "below i64::MIN".into(),
        InBody::Raw(b"-9223372036854775809".to_vec()),
    );
    add(
        Class::Number,
        "1e400".into(),
        InBody::Raw(b"1e400".to_vec()),
    );
    for text in NUMBERS {
        add(
            Class::Number,
            format!("\"{text}\""),
            InBody::Json(json!(text)),
        );
    }
    for text in TIMES {
        add(
            Class::Time,
            format!("\"{text}\""),
            InBody::Json(json!(text)),
        );
    }
    add(
        Class::InvalidUtf8,
        "\\xFF\\xFE".into(),
        InBody::Raw(b"\"\xFF\xFE\"".to_vec()),
    );
    add(
        Class::InvalidUtf8,
        "overlong NUL \\xC0\\x80".into(),
        InBody::Raw(b"\"a\xC0\x80b\"".to_vec()),
    );
    add(
        Class::InvalidUtf8,
        "surrogate \\xED\\xA0\\x80".into(),
        InBody::Raw(b"\"\xED\xA0\x80\"".to_vec()),
    );
    add(
        Class::InvalidUtf8,
        "lone surrogate \\ud800".into(),
        InBody::Raw(br#""\ud800""#.to_vec()),
    );
    add(Class::WrongType, "[]".into(), InBody::Json(json!([])));
    add(Class::WrongType, "{}".into(), InBody::Json(json!({})));
    add(Class::WrongType, "true".into(), InBody::Json(json!(true)));
    add(Class::WrongType, "null".into(), InBody::Json(Value::Null));
    add(
        Class::WrongType,
        "[\"a\"]".into(),
        InBody::Json(json!(["a"])),
    );
    add(Class::WrongType, "42".into(), InBody::Json(json!(42)));
    corpus
}

/// Every byte but the unreserved ones percent-encoded.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn url_corpus() -> Vec<UrlValue> {
    let mut corpus = Vec::new();
    let mut add = |class, label: String, encoded: String| {
        corpus.push(UrlValue {
            class,
            label,
            encoded,
        })
    };
    for c in control_characters() {
        add(
            Class::Control,
            format!("U+{:04X}", c as u32),
            encode(&format!("a{c}b")),
        );
    }
    add(Class::Nul, "a%00b".into(), "a%00b".into());
    add(Class::Nul, "%00".into(), "%00".into());
    add(Class::Overlong, "10 KB".into(), "a".repeat(LONG));
    add(Class::Overlong, "60 KB".into(), "a".repeat(60 * 1024));
    add(Class::Overlong, "1 MB".into(), "a".repeat(HUGE));
    for text in NUMBERS {
        add(Class::Number, text.into(), encode(text));
    }
    for text in TIMES {
        add(Class::Time, text.into(), encode(text));
    }
    for raw in ["%FF%FE", "a%C0%80b", "%ED%A0%80", "a%FFb"] {
        add(Class::InvalidUtf8, raw.into(), raw.into());
    }
    for text in ["[]", "{}", "true", "null", "%20"] {
        add(Class::WrongType, text.into(), encode(text));
    }
    corpus
}

/// A few values of `class` for the `turn`th field or parameter.
/// Tab, a line break and a bidi override go everywhere: free text keeps
/// the first two and refuses nothing of the third, one line refuses all.
const EVERYWHERE: [&str; 3] = ["U+0009", "U+000A", "U+202E"];

fn sample<T>(corpus: &[T], class: Class, turn: usize, of: impl Fn(&T) -> (Class, &str)) -> Vec<&T> {
    let (always, values): (Vec<&T>, Vec<&T>) = corpus
        .iter()
        .filter(|v| of(v).0 == class)
        .partition(|v| class == Class::Control && EVERYWHERE.contains(&of(v).1));
    let take = class.take();
    if values.len() <= take {
        return always.into_iter().chain(values).collect();
    }
    let turning = (0..take).map(|j| values[(turn * take + j) % values.len()]);
    always.into_iter().chain(turning).collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

fn show(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(key) if out.is_empty() => out.push_str(key),
            Step::Key(key) => {
                out.push('.');
                out.push_str(key);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The string fields of a schema of the document, as paths into a body.
fn string_fields(doc: &Value, schema: &Value, at: &[Step], out: &mut Vec<Vec<Step>>) {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap();
        return string_fields(doc, &doc["components"]["schemas"][name], at, out);
    }
    for alternatives in ["oneOf", "anyOf", "allOf"] {
        for alternative in schema[alternatives].as_array().into_iter().flatten() {
            string_fields(doc, alternative, at, out);
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if let Some(properties) = schema["properties"].as_object() {
        for (name, property) in properties {
            let mut inner = at.to_vec();
            inner.push(Step::Key(name.clone()));
            string_fields(doc, property, &inner, out);
        }
    }
    if types.contains(&"array") {
        let mut inner = at.to_vec();
        inner.push(Step::Index(0));
        string_fields(doc, &schema["items"], &inner, out);
    }
    let is_string = types.contains(&"string") || schema.get("enum").is_some();
    if is_string && !at.is_empty() && !out.iter().any(|p| p == at) {
        out.push(at.to_vec());
    }
}

/// Sets the value at `path`, making the objects and arrays on the way.
fn set_at(body: &mut Value, path: &[Step], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        *body = value;
        return;
    };
    let slot = match first {
        Step::Key(key) => {
            if !body.is_object() {
                *body = json!({});
            }
            body.as_object_mut()
                .unwrap()
                .entry(key.clone())
                .or_insert(Value::Null)
        }
        Step::Index(i) => {
            if !body.is_array() {
                *body = json!([]);
            }
            let items = body.as_array_mut().unwrap();
            while items.len() <= *i {
                items.push(Value::Null);
            }
            &mut items[*i]
        }
    };
    set_at(slot, rest, value);
}

fn get_at<'v>(body: &'v Value, path: &[Step]) -> Option<&'v Value> {
    path.iter().try_fold(body, |v, step| match step {
        Step::Key(key) => v.get(key),
        Step::Index(i) => v.get(i),
    })
}

/// Puts `value` in the middle of `text` (on a character boundary).
fn insert_middle(text: &str, value: char) -> String {
    let chars: Vec<char> = text.chars().collect();
    let middle = chars.len() / 2;
    chars[..middle]
        .iter()
        .chain(std::iter::once(&value))
        .chain(&chars[middle..])
        .collect()
}

/// The bytes of `body` with `value` at `path`.
fn body_with(body: &Value, path: &[Step], value: &InBody) -> Vec<u8> {
    let mut body = body.clone();
    match value {
        InBody::Insert(c) => {
            let usual = get_at(&body, path)
                .and_then(Value::as_str)
                .unwrap_or("ab")
                .to_owned();
            set_at(&mut body, path, json!(insert_middle(&usual, *c)));
            serde_json::to_vec(&body).unwrap()
        }
        InBody::Json(v) => {
            set_at(&mut body, path, v.clone());
            serde_json::to_vec(&body).unwrap()
        }
        InBody::Raw(raw) => {
            // A marker serde_json writes as is, replaced by the raw bytes.
            const MARK: &str = "\u{E000}hostile\u{E000}";
            set_at(&mut body, path, json!(MARK));
            let text = serde_json::to_string(&body).unwrap();
            let quoted = format!("\"{MARK}\"");
            let at = text.find(&quoted).unwrap();
            let mut bytes = text.as_bytes()[..at].to_vec();
            bytes.extend_from_slice(raw);
            bytes.extend_from_slice(&text.as_bytes()[at + quoted.len()..]);
            bytes
        }
    }
}

/// The ids the corpus runs against: a review in its supplier stage with a
/// finding and an invitation, a second review to withdraw, a webhook, an
/// email in the outbox.
struct Seed {
    review: String,
    spare_review: String,
    finding: String,
    invitation: String,
    webhook: String,
    message: String,
    /// A shown question of the security stage per type, and valid answers.
    questions: Vec<(String, String)>,
    answers: Value,
}

impl Seed {
    async fn plant(app: &TestApp) -> Seed {
        let flow = Flow::start(app).await;
        flow.through_intake(json!({})).await;
        let manager = app.manager();
        let invited = app
            .post(
                &flow.path("/stages/security/invite"),
                &manager,
                &json!({"email": "sec@supplier.example"}),
            )
            .await;
        assert_eq!(invited.status(), 201);
        let finding = app
            .post(
                &flow.path("/findings"),
                &manager,
                &json!({"severity": "low", "text": "TLS 1.0 is still accepted."}),
            )
            .await;
        assert_eq!(finding.status(), 201, "{}", finding.text().await.unwrap());
        let review = flow.review().await;
        app.create_provider("mistral").await;
        let spare = Flow::start_for(app, "mistral", None).await;
        let hook = app
            .post("/v1/webhooks", &app.admin(), &json!({"url": HOOK}))
            .await;
        assert_eq!(hook.status(), 201);
        let hook: Value = hook.json().await.unwrap();
        let outbox: Value = app
            .get("/v1/admin/outbox", &app.admin())
            .await
            .json()
            .await
            .unwrap();
        // An integrator asks about a model nobody reviewed: an intake request.
        let asked = app
            .post(
                "/v1/status/check",
                &app.token("ci", &[Role::Integrator]),
                &json!({"items": [{"provider": "openai", "model": "gpt-x"}]}),
            )
            .await;
        assert_eq!(asked.status(), 200);
        let intake = app.get("/v1/intake", &app.admin()).await;
        assert_eq!(intake.status(), 200, "{}", intake.text().await.unwrap());
        let stage = flow.stage("security");
        let answers = Value::Object(fill(stage, &json!({})));
        let mut questions = Vec::new();
        for section in stage["questionnaire"]["sections"].as_array().unwrap() {
            for question in section["questions"].as_array().unwrap() {
                let (id, kind) = (
                    question["id"].as_str().unwrap(),
                    question["type"].as_str().unwrap(),
                );
                let shown = answers.get(id).is_some();
                if shown && !questions.iter().any(|(_, k)| k == kind) {
                    questions.push((id.to_owned(), kind.to_owned()));
                }
            }
        }
        // The directory records who called the API a moment later.
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        Seed {
            review: flow.id.clone(),
            spare_review: spare.id.clone(),
            finding: review["findings"][0]["id"].as_str().unwrap().to_owned(),
            invitation: review["invitations"][0]["id"].as_str().unwrap().to_owned(),
            webhook: hook["id"].as_str().unwrap().to_owned(),
            message: outbox["items"][0]["id"].as_str().unwrap().to_owned(),
            questions,
            answers,
        }
    }

    /// The seeded value of a path parameter.
    fn path_value(&self, template: &str, name: &str) -> String {
        match name {
            "provider" if template.starts_with("/v1/intake/") => "openai".into(),
            "model" if template.starts_with("/v1/intake/") => "gpt-x".into(),
            "provider" => "anthropic".into(),
            "model" => "claude".into(),
            "stage" => "security".into(),
            "question" => "iso27001".into(),
            "finding" => self.finding.clone(),
            "invitation" => self.invitation.clone(),
            "job" => "digest".into(),
            "role" => "security_reviewer".into(),
            "id" if template.ends_with("/withdraw") => self.spare_review.clone(),
            "id" if template.starts_with("/v1/reviews/") => self.review.clone(),
            "id" if template.starts_with("/v1/webhooks/") => self.webhook.clone(),
            "id" if template.starts_with("/v1/workflows/") => "model-provider".into(),
            "id" if template.starts_with("/v1/admin/outbox/") => self.message.clone(),
            _ => panic!("no seeded value for `{name}` of {template}: seed one"),
        }
    }

    /// The query parameters the operation needs.
    fn query(&self, template: &str) -> Vec<(&'static str, &'static str)> {
        match template {
            "/v1/evidence" => vec![
                ("from", "2026-01-01T00:00:00Z"),
                ("to", "2027-01-01T00:00:00Z"),
            ],
            _ => Vec::new(),
        }
    }

    /// A body the operation accepts (or refuses only for the state it
    /// finds): `{n}` in it is made unique per request.
    fn body(&self, method: &str, template: &str) -> Value {
        let contact =
            json!({"email": "risk@hostile.example", "name": "Risk desk", "role": "security"});
        let conditions = json!({
            "use_cases": ["support-chat"], "data_classes": ["internal"],
            "regions": ["eu"], "features_off": ["web-grounding"],
        });
        match (method, template) {
            ("post", "/v1/admin/clock") => json!({"advance": "1h"}),
            ("post", "/v1/intake/{provider}/{model}/dismiss") => {
                json!({"reason": "Replaced by an approved model."})
            }
            ("post", "/v1/intake/{provider}/{model}/review") => {
                json!({"workflow": "model-provider"})
            }
            ("put", "/v1/admin/roles/{role}/mailbox") => {
                json!({"emails": ["sec-team@example.com"]})
            }
            ("post", t) if t.ends_with("/suspend") => {
                json!({"reason": "Incident under investigation", "dry_run": false})
            }
            ("post", t) if t.ends_with("/resume") => json!({"reason": "Incident closed"}),
            ("post", "/v1/providers") => json!({
                "slug": "hostile-{n}", "name": "Hostile Co", "website": "https://hostile.example/about",
                "contacts": [contact], "notes": "Met at the fair.\nFollow up in May.",
            }),
            ("patch", "/v1/providers/{provider}") => json!({
                "name": "Anthropic", "website": "https://www.anthropic.com/about",
                "contacts": [contact], "notes": "Renewal due.\tAsk legal.",
            }),
            ("post", "/v1/providers/{provider}/models") => json!({
                "slug": "model-{n}", "name": "Model {n}", "version": "2.1", "modality": "text",
                "hosting": "provider_api", "description": "A general model.\nText only.",
            }),
            ("patch", "/v1/providers/{provider}/models/{model}") => json!({
                "name": "Claude", "version": "4.5", "modality": "multimodal",
                "hosting": "cloud_marketplace", "description": "The assistant.",
            }),
            ("post", "/v1/reviews") => {
                json!({"provider": "anthropic", "model": "claude", "workflow": "model-provider"})
            }
            ("post", "/v1/reviews/{id}/findings") => json!({
                "severity": "low", "text": "Logs kept for a year.\nAsk why.", "stage": "security",
                "owner": "victor", "remediation_due": "2030-01-01T00:00:00Z",
            }),
            ("patch", "/v1/reviews/{id}/findings/{finding}") => json!({
                "state": "open", "severity": "medium", "owner": "victor",
                "remediation_due": "2030-01-01T00:00:00Z", "resolution": "Planned for 2.2.",
            }),
            ("post", "/v1/reviews/{id}/invite") => {
                json!({"email": "all@supplier.example", "expires_in": "14d", "stages": ["security"]})
            }
            ("post", "/v1/reviews/{id}/re-review") => {
                json!({"tier": "high", "reason": "New data classes."})
            }
            ("put", "/v1/reviews/{id}/stages/{stage}/answers") => json!({"answers": self.answers}),
            ("post", "/v1/reviews/{id}/stages/{stage}/assign") => json!({"assignee": "victor"}),
            ("post", "/v1/reviews/{id}/stages/{stage}/questions/{question}/comments") => {
                json!({"text": "Please name the certificate's scope."})
            }
            ("post", "/v1/reviews/{id}/stages/{stage}/decisions") => json!({
                "decision": "approve", "comment": "Looks right.\nShip it.", "conditions": conditions,
            }),
            ("post", "/v1/reviews/{id}/stages/{stage}/invite") => {
                json!({"email": "sec@supplier.example", "expires_in": "14d"})
            }
            ("post", "/v1/reviews/{id}/tier") => {
                json!({"tier": "high", "reason": "Handles personal data."})
            }
            ("post", "/v1/reviews/{id}/withdraw") => json!({"reason": "The vendor dropped out."}),
            ("post", "/v1/status/check") => json!({"items": [{
                "provider": "anthropic", "model": "claude", "use_case": "support-chat",
                "data_classes": ["internal"], "regions": ["eu"], "features": ["web-grounding"],
            }]}),
            ("post", "/v1/webhooks") => json!({
                "url": HOOK, "secret": "0123456789abcdef0123",
                "events": ["status.changed"],
            }),
            _ => panic!("no seeded body for {method} {template}: seed one"),
        }
    }
}

/// What a hostile value must get, besides never a 5xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Any answer but a server error.
    Any,
    /// 404, the answer to a path that names nothing.
    NotFound,
    /// 422 naming the field or parameter.
    Refused,
    /// 400: the body is not JSON.
    Malformed,
    /// 413 problem+json: the body is over the limit.
    TooLarge,
    /// 431 (empty): actix-http answers a request head over 128 KiB itself,
    /// before any service of ours runs, so it cannot be a problem document.
    HeadTooLarge,
}

/// Text where tab and line breaks are at home.
fn is_free_text(template: &str, path: &[Step], questions: &[(String, String)]) -> bool {
    let last = match path.last() {
        Some(Step::Key(key)) => key.as_str(),
        _ => return false,
    };
    if template.ends_with("/answers") {
        return questions
            .iter()
            .any(|(id, kind)| id == last && kind == "text");
    }
    matches!(
        last,
        "notes" | "description" | "comment" | "text" | "resolution"
    )
}

/// One operation of the document, with everything a request needs.
struct Operation {
    method: String,
    template: String,
    path_params: Vec<String>,
    query_params: Vec<String>,
    fields: Vec<Vec<Step>>,
    body: Option<Value>,
}

impl Operation {
    fn label(&self) -> String {
        format!("{} {}", self.method.to_uppercase(), self.template)
    }
}

/// A request to send: the path and query already encoded.
struct Request {
    method: reqwest::Method,
    path: String,
    query: Option<String>,
    body: Option<Vec<u8>>,
}

/// The corpus run on one app: the requests sent, and what the database held
/// after the last one that was allowed to change it.
struct Run<'a> {
    app: &'a TestApp,
    token: String,
    seed: Seed,
    db: clearance::db::DbConnection,
    fingerprint: String,
    sent: usize,
    by_class: BTreeMap<String, usize>,
    used: BTreeSet<String>,
    counter: usize,
    failures: Vec<String>,
}

/// Rows a request could add or change: counts of every table a change
/// writes, and the versions of what it updates. Every change is audited, so
/// the audit log's length alone would show most.
fn fingerprint_query() -> String {
    let counted = [
        "providers",
        "models",
        "reviews",
        "review_stages",
        "answers",
        "decisions",
        "findings",
        "respondent_tokens",
        "audit_events",
        "outbox_messages",
        "webhooks",
        "role_mailboxes",
    ];
    let mut parts: Vec<String> = counted
        .iter()
        .map(|t| format!("(SELECT COUNT(*) FROM {t})"))
        .collect();
    for t in ["providers", "models", "reviews"] {
        parts.push(format!("(SELECT COALESCE(SUM(version), 0) FROM {t})"));
    }
    parts
        .iter()
        .map(|p| format!("CAST({p} AS TEXT)"))
        .collect::<Vec<_>>()
        .join(" || ',' || ")
}

impl<'a> Run<'a> {
    async fn new(app: &'a TestApp) -> Run<'a> {
        let seed = Seed::plant(app).await;
        let db = clearance::db::ConnectionManager::new(app.database.clone())
            .connect()
            .expect("database");
        let mut run = Run {
            app,
            token: app.token("hal", Role::ALL),
            seed,
            db,
            fingerprint: String::new(),
            sent: 0,
            by_class: BTreeMap::new(),
            used: BTreeSet::new(),
            counter: 0,
            failures: Vec::new(),
        };
        run.fingerprint = run.read_fingerprint();
        run
    }

    fn read_fingerprint(&mut self) -> String {
        diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>(
            &fingerprint_query(),
        ))
        .get_result(&mut self.db)
        .expect("fingerprint")
    }

    /// Sends one request and checks what every answer must be: no server
    /// error, no dropped connection, a problem document on a 4xx, nothing
    /// changed by a refusal. Answers the status and the problem.
    async fn send(&mut self, request: Request, what: &str) -> (u16, Value) {
        let mut target = request.path.clone();
        if let Some(query) = &request.query {
            target.push('?');
            target.push_str(query);
        }
        let (status, content_type, bytes) = if target.len() > MAX_URI {
            self.send_raw(&request.method, &target, what)
        } else {
            let mut builder = self
                .app
                .client
                .request(request.method, self.app.url(&target))
                .bearer_auth(&self.token);
            if let Some(body) = request.body {
                builder = builder
                    .header("content-type", "application/json")
                    .body(body);
            }
            let response = match builder.send().await {
                Ok(response) => response,
                Err(e) => {
                    self.fail(format!(
                        "{what}: the connection dropped: {:?}",
                        e.without_url()
                    ));
                    return (0, Value::Null);
                }
            };
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap_or("").to_owned())
                .unwrap_or_default();
            let bytes = match response.bytes().await {
                Ok(bytes) => bytes,
                Err(e) => {
                    self.fail(format!(
                        "{what}: the answer was cut off: {:?}",
                        e.without_url()
                    ));
                    return (0, Value::Null);
                }
            };
            (status, content_type, bytes.to_vec())
        };
        let text: String = String::from_utf8_lossy(&bytes).chars().take(500).collect();
        self.sent += 1;
        if status >= 500 {
            self.fail(format!("{what}: {status} {text}"));
        }
        let mut problem = Value::Null;
        if (400..500).contains(&status) && status != 431 {
            problem = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if content_type != "application/problem+json" || problem["status"] != status {
                self.fail(format!(
                    "{what}: a {status} that is not a problem ({content_type}): {text}"
                ));
            }
        }
        let now = self.read_fingerprint();
        if status >= 400 && now != self.fingerprint {
            self.fail(format!(
                "{what}: refused with {status}, yet the database changed ({} to {now}): {text}",
                self.fingerprint
            ));
        }
        self.fingerprint = now;
        (status, problem)
    }

    /// Sends a request whose head is longer than an `http::Uri` may be (so
    /// reqwest cannot) over a plain connection, and reads the answer:
    /// status, content type and body.
    fn send_raw(
        &self,
        method: &reqwest::Method,
        target: &str,
        what: &str,
    ) -> (u16, String, Vec<u8>) {
        use std::io::{Read, Write};
        let address = self.app.address.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            self.token
        );
        // The server may answer and close before it has read the whole head;
        // what it answered is still there to read.
        let _ = stream.write_all(head.as_bytes());
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| {
            panic!(
                "{what}: the connection dropped without an answer ({} bytes)",
                answer.len()
            )
        });
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{what}: no status line in {head}"));
        let content_type = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-type")
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_default();
        (status, content_type, body.as_bytes().to_vec())
    }

    /// The document's operation at `template` and `method`.
    fn operation(&self, doc: &Value, template: &str, method: &str, spec: &Value) -> Operation {
        let mut path_params = Vec::new();
        let mut query_params = Vec::new();
        for param in spec["parameters"].as_array().into_iter().flatten() {
            let name = param["name"].as_str().unwrap().to_owned();
            match param["in"].as_str() {
                Some("path") => path_params.push(name),
                Some("query") => query_params.push(name),
                _ => {}
            }
        }
        let schema = &spec["requestBody"]["content"]["application/json"]["schema"];
        let (mut fields, body) = if schema.is_null() {
            (Vec::new(), None)
        } else {
            let mut fields = Vec::new();
            string_fields(doc, schema, &[], &mut fields);
            (fields, Some(self.seed.body(method, template)))
        };
        if template.ends_with("/answers") {
            // Answers are any JSON: their questions' types say what is a string.
            fields.retain(|f| f.len() > 1 || f[0] != Step::Key("answers".into()));
            for (id, _) in &self.seed.questions {
                fields.push(vec![Step::Key("answers".into()), Step::Key(id.clone())]);
            }
        }
        Operation {
            method: method.to_owned(),
            template: template.to_owned(),
            path_params,
            query_params,
            fields,
            body,
        }
    }

    /// The path of `op` with seeded ids, one of them perhaps replaced.
    fn path(&self, op: &Operation, replaced: Option<(&str, &str)>) -> String {
        let mut path = op.template.clone();
        for name in &op.path_params {
            let value = match replaced {
                Some((which, value)) if which == name => value.to_owned(),
                _ => encode(&self.seed.path_value(&op.template, name)),
            };
            path = path.replace(&format!("{{{name}}}"), &value);
        }
        path
    }

    /// The baseline body of `op`, made unique for this request.
    fn body(&mut self, op: &Operation) -> Option<Value> {
        self.counter += 1;
        let n = self.counter.to_string();
        op.body.as_ref().map(|body| {
            serde_json::from_str(&serde_json::to_string(body).unwrap().replace("{n}", &n)).unwrap()
        })
    }

    /// The seeded query of `op`, with `name` set to `encoded` when given.
    fn query(&self, op: &Operation, replaced: Option<(&str, &str)>) -> Option<String> {
        let mut pairs: Vec<String> = self
            .seed
            .query(&op.template)
            .into_iter()
            .filter(|(name, _)| replaced.is_none_or(|(which, _)| which != *name))
            .map(|(name, value)| format!("{name}={}", encode(value)))
            .collect();
        if let Some((name, encoded)) = replaced {
            pairs.push(format!("{}={encoded}", encode(name)));
        }
        (!pairs.is_empty()).then(|| pairs.join("&"))
    }

    fn request(
        &mut self,
        op: &Operation,
        path: String,
        query: Option<String>,
        body: Option<Vec<u8>>,
    ) -> Request {
        let body = body.or_else(|| self.body(op).map(|b| serde_json::to_vec(&b).unwrap()));
        let query = query.or_else(|| self.query(op, None));
        Request {
            method: op.method.to_uppercase().parse().unwrap(),
            path,
            query,
            body,
        }
    }

    /// Records a failure; the run goes on, to report every one at the end.
    fn fail(&mut self, failure: String) {
        eprintln!("FAILED: {failure}");
        self.failures.push(failure);
    }

    /// Records what `check` found wrong, if anything.
    fn expect(&mut self, what: &str, expect: Expect, status: u16, problem: &Value, field: &str) {
        if let Err(failure) = check(what, expect, status, problem, field) {
            self.fail(failure);
        }
    }

    fn tally(&mut self, class: Class, label: &str, kind: &str) {
        *self.by_class.entry(format!("{class:?}")).or_default() += 1;
        self.used.insert(format!("{kind} {class:?} {label}"));
    }

    /// Sends the operation as seeded: it must reach its handler (a success,
    /// or a refusal for the state of the review, not of the request).
    async fn baseline(&mut self, op: &Operation) {
        let path = self.path(op, None);
        let request = self.request(op, path, None, None);
        let what = format!("{} as seeded", op.label());
        let (status, problem) = self.send(request, &what).await;
        let reached = status < 400 || status == 409
            // Submitting a stage whose required answers are missing.
            || (status == 422 && op.template.ends_with("/submit"));
        if !reached {
            self.fail(format!(
                "{what} did not reach its handler: {status} {problem}"
            ));
        }
    }

    async fn path_params(&mut self, op: &Operation, corpus: &[UrlValue], turn: &mut usize) {
        for name in &op.path_params {
            *turn += 1;
            for class in CLASSES {
                for value in sample(corpus, class, *turn, |v| (v.class, v.label.as_str())) {
                    let path = self.path(op, Some((name, &value.encoded)));
                    let request = self.request(op, path, None, None);
                    let what = format!("{} with {name} = {class:?} {}", op.label(), value.label);
                    let (status, problem) = self.send(request, &what).await;
                    let expect = match class {
                        _ if value.label == "1 MB" => Expect::HeadTooLarge,
                        // A status lookup answers any name (`not_reviewed`).
                        _ if op.template.starts_with("/v1/status/") => Expect::Any,
                        // Numbers, dates and `true` may be slugs, of a
                        // provider the corpus registered.
                        Class::Number | Class::Time | Class::WrongType => Expect::Any,
                        _ => Expect::NotFound,
                    };
                    self.expect(&what, expect, status, &problem, name);
                    self.tally(class, &value.label, "url");
                }
            }
        }
    }

    async fn query_params(&mut self, op: &Operation, corpus: &[UrlValue], turn: &mut usize) {
        for name in &op.query_params {
            *turn += 1;
            for class in CLASSES {
                for value in sample(corpus, class, *turn, |v| (v.class, v.label.as_str())) {
                    let path = self.path(op, None);
                    let query = self.query(op, Some((name, &value.encoded)));
                    let request = self.request(op, path, query, None);
                    let what = format!("{} with ?{name} = {class:?} {}", op.label(), value.label);
                    let (status, problem) = self.send(request, &what).await;
                    let expect = match class {
                        _ if value.label == "1 MB" => Expect::HeadTooLarge,
                        Class::Control | Class::Nul | Class::InvalidUtf8 => Expect::Refused,
                        _ => Expect::Any,
                    };
                    self.expect(&what, expect, status, &problem, name);
                    self.tally(class, &value.label, "url");
                }
            }
        }
    }

    async fn fields(&mut self, op: &Operation, corpus: &[BodyValue], turn: &mut usize) {
        for field in op.fields.clone() {
            *turn += 1;
            let name = show(&field);
            let free_text = is_free_text(&op.template, &field, &self.seed.questions);
            let lookup = op.template == "/v1/status/check";
            for class in CLASSES {
                for value in sample(corpus, class, *turn, |v| (v.class, v.label.as_str())) {
                    let body = self.body(op).unwrap();
                    let bytes = body_with(&body, &field, &value.value);
                    let path = self.path(op, None);
                    let request = self.request(op, path, None, Some(bytes));
                    let what = format!("{} with {name} = {class:?} {}", op.label(), value.label);
                    let (status, problem) = self.send(request, &what).await;
                    // What free text holds: tab, line breaks, separators, bidi.
                    let text = matches!(
                        value.value,
                        InBody::Insert('\t' | '\n' | '\r' | '\u{2028}' | '\u{202E}')
                    );
                    let expect = match class {
                        _ if value.label == "1 MB" => Expect::TooLarge,
                        Class::InvalidUtf8 => Expect::Malformed,
                        Class::Number if value.label == "1e400" => Expect::Malformed,
                        Class::Control | Class::Nul if lookup => Expect::Any,
                        Class::Control if free_text && text => Expect::Any,
                        Class::Control | Class::Nul => Expect::Refused,
                        _ => Expect::Any,
                    };
                    self.expect(&what, expect, status, &problem, &name);
                    self.tally(class, &value.label, "body");
                }
            }
        }
    }

    /// What the corpus stored is read, listed, packed and swept as usual:
    /// every job runs, and every listing and the evidence pack answer 200.
    async fn aftermath(&mut self) {
        let review = self.seed.review.clone();
        let mut paths: Vec<(reqwest::Method, String)> =
            ["sla-sweep", "re-review-sweep", "digest", "outbox"]
                .iter()
                .map(|job| (reqwest::Method::POST, format!("/v1/admin/jobs/{job}/run")))
                .collect();
        for path in [
            format!("/v1/reviews/{review}"),
            format!("/v1/reviews/{review}/stages/security"),
            format!("/v1/reviews/{review}/evidence"),
            "/v1/reviews?limit=200".into(),
            "/v1/providers?limit=200".into(),
            "/v1/providers/anthropic/models?limit=200".into(),
            "/v1/audit?limit=200".into(),
            "/v1/admin/outbox?limit=200".into(),
            "/v1/admin/people".into(),
            // The status checks' asks about unreviewed models, written now.
            "/v1/intake?state=all".into(),
            "/v1/webhooks".into(),
            "/v1/status/anthropic/claude".into(),
            "/v1/evidence?from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z".into(),
        ] {
            paths.push((reqwest::Method::GET, path));
        }
        for (method, path) in paths {
            let what = format!("afterwards, {method} {path}");
            let body = (method == reqwest::Method::POST).then(|| b"{}".to_vec());
            let request = Request {
                method,
                path,
                query: None,
                body,
            };
            let (status, problem) = self.send(request, &what).await;
            if status != 200 {
                self.fail(format!("{what}: {status} {problem}"));
            }
        }
    }

    /// Bodies that are not the object the operation reads at all.
    async fn whole_bodies(&mut self, op: &Operation) {
        let bodies: [(&str, &[u8], u16); 8] = [
            ("an array where an object belongs", b"[]", 422),
            ("a string where an object belongs", b"\"x\"", 422),
            ("a number where an object belongs", b"42", 422),
            ("null", b"null", 422),
            ("truncated JSON", b"{", 400),
            ("invalid UTF-8", b"\xFF\xFE", 400),
            ("invalid UTF-8 in a key", b"{\"\xFF\": 1}", 400),
            ("an unknown field", b"{\"hostile\": 1}", 422),
        ];
        let deep = "[".repeat(5000);
        let nested = [("5000 nested arrays", deep.as_bytes(), 400)];
        for (label, bytes, expected) in bodies.iter().chain(&nested) {
            let path = self.path(op, None);
            let request = self.request(op, path, None, Some(bytes.to_vec()));
            let what = format!("{} with a body of {label}", op.label());
            let (status, problem) = self.send(request, &what).await;
            if status != *expected {
                self.fail(format!("{what}: {status}, not {expected}: {problem}"));
            }
            self.tally(Class::WrongType, label, "whole body");
        }
    }
}

/// Checks one answer against what its value must get.
fn check(
    what: &str,
    expect: Expect,
    status: u16,
    problem: &Value,
    field: &str,
) -> Result<(), String> {
    let wanted = match expect {
        Expect::Any => return Ok(()),
        Expect::NotFound => 404,
        Expect::Malformed => 400,
        Expect::TooLarge => 413,
        Expect::HeadTooLarge => 431,
        Expect::Refused => 422,
    };
    if status != wanted {
        return Err(format!("{what}: {status}, not {wanted}: {problem}"));
    }
    if expect != Expect::Refused {
        return Ok(());
    }
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["field"].as_str())
        .collect();
    // The field itself, its list, or (an answer) its question id.
    let named = fields.iter().any(|f| {
        *f == field
            || field.starts_with(&format!("{f}["))
            || field.starts_with(&format!("{f}."))
            || field.ends_with(&format!(".{f}"))
    });
    if named {
        Ok(())
    } else {
        Err(format!(
            "{what}: the problem does not name `{field}`: {problem}"
        ))
    }
}

/// Every operation of the document, every parameter and string field, every
/// class of the corpus.
async fn run_corpus(app: &TestApp) {
    let doc = app.openapi().await;
    let mut run = Run::new(app).await;
    let body_corpus = body_corpus();
    let url_corpus = url_corpus();
    let mut turn = 0;
    let mut operations = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, spec) in item.as_object().unwrap() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let op = run.operation(&doc, template, method, spec);
            operations += 1;
            run.baseline(&op).await;
            run.path_params(&op, &url_corpus, &mut turn).await;
            run.query_params(&op, &url_corpus, &mut turn).await;
            if op.body.is_some() {
                run.fields(&op, &body_corpus, &mut turn).await;
                run.whole_bodies(&op).await;
            }
        }
    }
    run.aftermath().await;
    assert!(
        run.failures.is_empty(),
        "{} of {} requests failed:\n{}",
        run.failures.len(),
        run.sent,
        run.failures.join("\n")
    );
    // Every value of the corpus was sent somewhere.
    for value in &body_corpus {
        let key = format!("body {:?} {}", value.class, value.label);
        assert!(run.used.contains(&key), "never sent: {key}");
    }
    for value in &url_corpus {
        let key = format!("url {:?} {}", value.class, value.label);
        assert!(run.used.contains(&key), "never sent: {key}");
    }
    assert!(
        operations >= 40,
        "only {operations} operations in the document"
    );
    // The server still answers, and the audit chain holds.
    let verified: Value = app
        .get("/v1/audit/verify", &app.admin())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(verified["ok"], true, "{verified}");
    println!(
        "hostile corpus ({}): {} requests to {operations} operations, by class {:?}",
        if app.database.is_postgres() {
            "postgres"
        } else {
            "sqlite"
        },
        run.sent,
        run.by_class
    );
}

backend_tests! {
    async fn the_hostile_corpus_gets_no_server_error_and_stores_nothing_it_refuses(app) {
        run_corpus(&app).await;
    }

    // Found by the corpus: chrono reads years to 262,143 either side of
    // zero, PostgreSQL stores none before 4713 BC (a 500) and SQLite stored it.
    async fn a_time_no_database_holds_is_422_on_both_backends(app) {
        let flow = Flow::start(&app).await;
        let manager = app.manager();
        for due in ["-262143-01-01T00:00:00Z", "+262142-12-31T23:59:59Z", "0000-06-01T00:00:00Z"] {
            let raised = app
                .post(&flow.path("/findings"), &manager, &json!({"severity": "low", "text": "x", "remediation_due": due}))
                .await;
            assert_eq!(error_fields(&assert_problem(raised, 422).await), ["remediation_due"], "{due}");
        }
        assert_eq!(flow.review().await["findings"], json!([]), "nothing stored");
        let raised = app.post(&flow.path("/findings"), &manager, &json!({"severity": "low", "text": "x"})).await;
        let finding: Value = raised.json().await.unwrap();
        let path = flow.path(&format!("/findings/{}", finding["id"].as_str().unwrap()));
        let moved = app.patch(&path, &manager, &json!({"remediation_due": "-262143-01-01T00:00:00Z"}), None).await;
        assert_eq!(error_fields(&assert_problem(moved, 422).await), ["remediation_due"]);
        let kept = app.patch(&path, &manager, &json!({"remediation_due": "9999-12-31T23:59:59Z"}), None).await;
        assert_eq!(kept.status(), 200);
    }

    // Found by the corpus: control characters were stored in names, owners,
    // reasons, URLs and secrets, read in durations and compared in filters.
    async fn control_characters_are_refused_where_text_is_one_line(app) {
        let manager = app.manager();
        for (field, value) in [("name", "Ac\u{1}me"), ("name", "Ac\nme"), ("name", "\u{202E}emcA"), ("notes", "Ring \u{1b}[31m")] {
            let created = app.post("/v1/providers", &manager, &json!({"slug": "acme", "name": "Acme", field: value})).await;
            assert_eq!(error_fields(&assert_problem(created, 422).await), [field], "{value:?}");
        }
        assert_eq!(app.get("/v1/providers/acme", &manager).await.status(), 404, "nothing stored");
        let notes = "Met at the fair.\n\tFollow up in May.\r\n";
        let created = app.post("/v1/providers", &manager, &json!({"slug": "acme", "name": "Acme", "notes": notes})).await;
        assert_eq!(created.status(), 201, "free text keeps tabs and line breaks");
        for query in ["assignee=victor%0A", "assignee=%E2%80%AEvictor", "provider=a%1Bb", "model=%FF%FE"] {
            let listed = app.get(&format!("/v1/reviews?{query}"), &manager).await;
            let field = query.split('=').next().unwrap();
            assert_eq!(error_fields(&assert_problem(listed, 422).await), [field], "{query}");
        }
        let flow = Flow::start(&app).await;
        let invite = app.post(&flow.path("/stages/security/invite"), &manager, &json!({"email": "a@b.example", "expires_in": "1\n4d"})).await;
        assert_eq!(error_fields(&assert_problem(invite, 422).await), ["expires_in"]);
        let owner = app.post(&flow.path("/findings"), &manager, &json!({"severity": "low", "text": "x", "owner": "vic\ttor"})).await;
        assert_eq!(error_fields(&assert_problem(owner, 422).await), ["owner"]);
        let suspend = app.post("/v1/models/anthropic/claude/suspend", &app.admin(), &json!({"reason": "Incident\nunder way"})).await;
        assert_eq!(error_fields(&assert_problem(suspend, 422).await), ["reason"]);
        let hook = app.post("/v1/webhooks", &app.admin(), &json!({"url": "https://127.0.0.1:9/ho\u{2028}ok"})).await;
        assert_eq!(error_fields(&assert_problem(hook, 422).await), ["url"]);
    }
}
