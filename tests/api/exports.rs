//! The exports for gateways: the OPA bundle, whose policy a real Rego engine
//! (regorus) evaluates to the same decisions as `POST /v1/status/check`,
//! and the allowlists in each format, from HTTP and from the command line.

use std::io::Read;

use chrono::TimeDelta;
use clearance::auth::Role;
use clearance::clock::Clock;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Map, Value, json};

use crate::flow::Flow;
use crate::helpers::{TestApp, assert_problem, error_fields};
use crate::status::approve;

const BUNDLE: &str = "/v1/exports/opa/bundle.tar.gz";

/// Conditions of `scoped`: one of each kind.
fn scoped() -> Value {
    json!({
        "use_cases": ["support-chat"],
        "data_classes": ["public", "internal"],
        "regions": ["eu", "uk"],
        "features_off": ["web_grounding"],
    })
}

fn integrator(app: &TestApp) -> String {
    app.token("gateway", &[Role::Integrator])
}

/// Registers `acme/model` under the provider `approve` registered.
async fn register(app: &TestApp, model: &str) {
    let created = app
        .post(
            "/v1/providers/acme/models",
            &app.manager(),
            &json!({"slug": model, "name": model}),
        )
        .await;
    assert_eq!(created.status(), 201, "registering {model}");
}

/// Models of every status: `lapsed` (approved, then past `valid_until`),
/// `open` (approved without conditions), `scoped` and `narrow` (approved
/// with conditions), `paused` (suspended), `refused` (rejected), `pending`
/// (in review); `ghost` is nobody's.
async fn seed(app: &TestApp) {
    approve(app, "lapsed", None).await;
    app.clock.advance(TimeDelta::days(800));
    approve(app, "open", None).await;
    approve(app, "scoped", Some(scoped())).await;
    approve(app, "narrow", Some(json!({"regions": ["eu"]}))).await;
    approve(app, "paused", None).await;
    let suspended = app
        .post(
            "/v1/models/acme/paused/suspend",
            &app.admin(),
            &json!({"reason": "incident"}),
        )
        .await;
    assert_eq!(suspended.status(), 200);
    register(app, "refused").await;
    let flow = Flow::start_for(app, "acme", Some("refused")).await;
    flow.answer_and_submit(&app.manager(), "intake", json!({}))
        .await;
    let rejected = flow
        .decide(
            &app.token("vera", &[Role::VendorManager]),
            "intake",
            json!({"decision": "reject", "comment": "Out of policy"}),
        )
        .await;
    assert_eq!(rejected.status(), 200);
    register(app, "pending").await;
    Flow::start_for(app, "acme", Some("pending")).await;
}

/// The files of a gzipped tar, by path.
fn unpack(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut files = std::collections::BTreeMap::new();
    for entry in archive.entries().expect("a tar") {
        let mut entry = entry.expect("an entry");
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        files.insert(path, content);
    }
    files
}

/// The bundle as OPA downloads it: its entity tag and files.
async fn bundle(app: &TestApp) -> (String, std::collections::BTreeMap<String, Vec<u8>>) {
    let response = app.get(BUNDLE, &integrator(app)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/gzip");
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let files = unpack(&response.bytes().await.unwrap());
    (etag, files)
}

/// A Rego engine loaded with the bundle's policy and data, as OPA would be.
fn engine(files: &std::collections::BTreeMap<String, Vec<u8>>, data: &Value) -> regorus::Engine {
    let mut engine = regorus::Engine::new();
    let policy = String::from_utf8(files["clearance/policy.rego"].clone()).unwrap();
    engine
        .add_policy("clearance/policy.rego".into(), policy)
        .expect("the policy compiles");
    engine
        .add_data_json(&data.to_string())
        .expect("the data loads");
    engine
}

/// The policy's decision for `input`.
fn decide(engine: &mut regorus::Engine, input: &Value) -> Value {
    engine.set_input_json(&input.to_string()).expect("an input");
    let decision = engine
        .eval_rule("data.clearance.decision".into())
        .expect("the policy decides");
    serde_json::to_value(&decision).unwrap()
}

async fn check(app: &TestApp, items: &[Value]) -> Vec<Value> {
    let response = app
        .post(
            "/v1/status/check",
            &integrator(app),
            &json!({ "items": items }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["results"].as_array().unwrap().clone()
}

/// A check item: models of every status, use cases, data classes, regions
/// and features within the vocabulary (in any case), each list absent,
/// `null`, empty or with repeats.
fn item() -> impl Strategy<Value = Value> {
    use proptest::prelude::*;
    use proptest::sample::select;
    let models = vec![
        "open", "scoped", "narrow", "lapsed", "paused", "refused", "pending", "ghost",
    ];
    let use_cases = vec!["support-chat", "Support-Chat", "hr-screening", ""];
    let classes = vec![
        "public",
        "internal",
        "confidential",
        "personal",
        "special_category",
    ];
    let regions = vec!["eu", "EU", "uk", "us", "global"];
    let features = vec![
        "web_grounding",
        "Web_Grounding",
        "tools",
        "training_on_customer_data",
    ];
    // Absent, null, or given.
    fn field<T: Strategy<Value = Value>>(given: T) -> impl Strategy<Value = Option<Value>> {
        prop_oneof![Just(None), Just(Some(Value::Null)), given.prop_map(Some)]
    }
    let list = |values: Vec<&'static str>| {
        proptest::collection::vec(select(values), 0..4).prop_map(|v| json!(v))
    };
    (
        select(models),
        field(select(use_cases).prop_map(|u| json!(u))),
        field(list(classes)),
        field(list(regions)),
        field(list(features)),
    )
        .prop_map(|(model, use_case, classes, regions, features)| {
            let mut item = Map::new();
            item.insert("provider".into(), json!("acme"));
            item.insert("model".into(), json!(model));
            for (key, value) in [
                ("use_case", use_case),
                ("data_classes", classes),
                ("regions", regions),
                ("features", features),
            ] {
                if let Some(value) = value {
                    item.insert(key.into(), value);
                }
            }
            Value::Object(item)
        })
}

/// `count` items drawn from [`item`], the same on every run.
fn generated(count: usize) -> Vec<Value> {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = item();
    (0..count)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

/// What a check result and a policy decision have in common.
fn verdict(answer: &Value) -> Value {
    json!({
        "allow": answer["allow"],
        "status": answer["status"],
        "reasons": answer["reasons"],
        "valid_until": answer["valid_until"],
    })
}

/// Models in a JSON allowlist, as `provider/model`.
fn listed(body: &Value) -> Vec<String> {
    body["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["provider"].as_str().unwrap(),
                m["model"].as_str().unwrap()
            )
        })
        .collect()
}

async fn allowlist(app: &TestApp, query: &str) -> reqwest::Response {
    app.get(&format!("/v1/exports/allowlist?{query}"), &integrator(app))
        .await
}

async fn allowlist_json(app: &TestApp, query: &str) -> Value {
    let response = allowlist(app, query).await;
    assert_eq!(response.status(), 200, "{query}");
    response.json().await.unwrap()
}

backend_tests! {
    async fn the_bundles_policy_decides_as_the_check_on_generated_contexts(app) {
        seed(&app).await;
        let (_, files) = bundle(&app).await;
        let manifest: Value = serde_json::from_slice(&files[".manifest"]).unwrap();
        assert_eq!(manifest["roots"], json!(["clearance"]));
        assert!(manifest["revision"].as_str().unwrap().contains('-'));
        let data: Value = serde_json::from_slice(&files["data.json"]).unwrap();
        let mut engine = engine(&files, &data);

        let items = generated(400);
        let results = check(&app, &items).await;
        let mut allowed = 0;
        for (item, result) in items.iter().zip(&results) {
            let decision = decide(&mut engine, item);
            assert_eq!(verdict(&decision), verdict(result), "the policy and the check differ on {item}");
            allowed += usize::from(result["allow"] == true);
        }
        // The generated contexts reach both answers, and every status.
        assert!(allowed > 20 && allowed < items.len() - 100, "{allowed} of {} allowed", items.len());
        let statuses: std::collections::BTreeSet<&str> = results.iter().map(|r| r["status"].as_str().unwrap()).collect();
        assert_eq!(statuses.len(), 7, "{statuses:?}");
    }

    async fn the_policy_refuses_what_the_check_refuses(app) {
        approve(&app, "open", None).await;
        let (_, files) = bundle(&app).await;
        let data: Value = serde_json::from_slice(&files["data.json"]).unwrap();
        let mut engine = engine(&files, &data);
        for (input, field) in [
            (json!({"provider": "acme", "model": "open", "regions": ["mars"]}), "items[0].regions"),
            (json!({"provider": "acme", "model": "open", "data_classes": ["secret"]}), "items[0].data_classes[0]"),
            (json!({"provider": "acme", "model": "open", "colour": "blue"}), "items[0]"),
            (json!({"provider": "acme"}), "items[0].model"),
            (json!({"provider": "acme", "model": "open", "features": "tools"}), "items[0].features"),
        ] {
            let response = app.post("/v1/status/check", &integrator(&app), &json!({"items": [input]})).await;
            let problem = assert_problem(response, 422).await;
            assert!(error_fields(&problem).iter().any(|f| f.starts_with(field)), "{input}: {problem}");
            let decision = decide(&mut engine, &input);
            assert_eq!(decision["allow"], false, "{input}");
            assert_eq!(decision["reasons"], json!(["invalid_input"]), "{input}");
            assert!(!decision["errors"].as_array().unwrap().is_empty(), "{input}");
        }
    }

    async fn an_unchanged_bundle_answers_304_and_a_change_makes_a_new_one(app) {
        approve(&app, "open", None).await;
        let (etag, _) = bundle(&app).await;
        let again = app.client.get(app.url(BUNDLE)).bearer_auth(integrator(&app)).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(again.status(), 304);
        assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
        assert!(again.bytes().await.unwrap().is_empty());

        // Another instance on the same database builds the same bytes.
        let other = app.spawn_beside(|_| {}).await;
        other.clock.advance(app.clock.now() - other.clock.now());
        let (there, _) = bundle(&other).await;
        assert_eq!(there, etag, "every instance publishes the same bundle");

        app.post("/v1/models/acme/open/suspend", &app.admin(), &json!({"reason": "incident"})).await;
        let changed = app.client.get(app.url(BUNDLE)).bearer_auth(integrator(&app)).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(changed.status(), 200);
        let new_etag = changed.headers()["etag"].to_str().unwrap().to_owned();
        assert_ne!(new_etag, etag);
        let files = unpack(&changed.bytes().await.unwrap());
        let data: Value = serde_json::from_slice(&files["data.json"]).unwrap();
        assert_eq!(data["clearance"]["snapshot"]["models"]["acme"]["open"]["status"], "suspended");
    }

    async fn the_policy_reads_expiry_from_opas_clock_when_the_server_keeps_real_time(app) {
        approve(&app, "open", None).await;
        let (_, files) = bundle(&app).await;
        let mut data: Value = serde_json::from_slice(&files["data.json"]).unwrap();
        // The server's manual clock is in the bundle; without it, OPA's clock decides.
        let facts = data["clearance"]["snapshot"].as_object_mut().unwrap();
        assert!(facts.remove("now_ns").is_some(), "a manual clock travels in the bundle");
        let now_ns = chrono::Utc::now().timestamp_nanos_opt().unwrap();
        let input = json!({"provider": "acme", "model": "open"});
        for (offset, status, allow) in [(-3_600, "expired", false), (3_600, "approved", true)] {
            let mut data = data.clone();
            data["clearance"]["snapshot"]["models"]["acme"]["open"]["valid_until_ns"] = json!(now_ns + offset * 1_000_000_000);
            let decision = decide(&mut engine(&files, &data), &input);
            assert_eq!(decision["status"], status, "valid_until {offset} s from now");
            assert_eq!(decision["allow"], allow);
        }
    }

    async fn exports_are_for_integrators_and_admins(app) {
        for path in [BUNDLE, "/v1/exports/allowlist"] {
            for role in [Role::Integrator, Role::Admin] {
                assert_eq!(app.get(path, &app.token("x", &[role])).await.status(), 200, "{path} {role}");
            }
            for role in [Role::VendorManager, Role::Approver] {
                assert_problem(app.get(path, &app.token("x", &[role])).await, 403).await;
            }
            assert_problem(app.client.get(app.url(path)).send().await.unwrap(), 401).await;
        }
        let document = app.openapi().await;
        let bundle = &document["paths"][BUNDLE]["get"];
        assert_eq!(bundle["tags"], json!(["exports"]));
        assert!(bundle["responses"]["200"]["content"]["application/gzip"].is_object(), "{bundle}");
        let listing = &document["paths"]["/v1/exports/allowlist"]["get"]["responses"]["200"]["content"];
        for media in ["application/json", "text/csv", "application/yaml"] {
            assert!(listing[media].is_object(), "{media}: {listing}");
        }
    }

    async fn the_allowlist_holds_the_models_a_check_allows(app) {
        seed(&app).await;
        let body = allowlist_json(&app, "use_case=support-chat&data_class=internal&region=eu").await;
        assert_eq!(listed(&body), ["acme/narrow", "acme/open", "acme/scoped"]);
        assert_eq!(body["context"]["regions"], json!(["eu"]));
        let scoped = &body["models"][2];
        assert_eq!(scoped["status"], "approved_with_conditions");
        assert!(scoped["valid_until"].is_string());

        // Conditions that exclude the region leave the model out for it.
        let us = allowlist_json(&app, "use_case=support-chat&data_class=internal&region=us").await;
        assert_eq!(listed(&us), ["acme/open"]);
        // Repeated and comma-separated values are one list; codes compare without case.
        let both = allowlist_json(&app, "use_case=Support-Chat&data_class=public,internal&region=EU&region=uk").await;
        assert_eq!(listed(&both), ["acme/open", "acme/scoped"]);
        // What the context does not state, a condition denies.
        assert_eq!(listed(&allowlist_json(&app, "").await), ["acme/open"]);
        // A feature that must stay off.
        let grounded = allowlist_json(&app, "use_case=support-chat&data_class=internal&region=eu&feature=web_grounding").await;
        assert_eq!(listed(&grounded), ["acme/narrow", "acme/open"]);

        // The same decision as the check, model by model.
        let models = ["open", "scoped", "narrow", "lapsed", "paused", "refused", "pending"];
        let items: Vec<Value> = models.iter().map(|m| json!({"provider": "acme", "model": m, "use_case": "support-chat", "data_classes": ["internal"], "regions": ["eu"]})).collect();
        let allowed: Vec<String> = check(&app, &items).await.iter().filter(|r| r["allow"] == true).map(|r| format!("acme/{}", r["model"].as_str().unwrap())).collect();
        let mut allowed = allowed;
        allowed.sort();
        assert_eq!(listed(&body), allowed);
    }

    async fn a_suspended_or_expired_model_leaves_the_allowlist(app) {
        approve(&app, "soon", None).await;
        approve(&app, "steady", None).await;
        assert_eq!(listed(&allowlist_json(&app, "").await), ["acme/soon", "acme/steady"]);
        app.post("/v1/models/acme/steady/suspend", &app.admin(), &json!({"reason": "incident"})).await;
        assert_eq!(listed(&allowlist_json(&app, "").await), ["acme/soon"]);
        app.clock.advance(TimeDelta::days(800));
        assert!(listed(&allowlist_json(&app, "").await).is_empty(), "past valid_until");
    }

    async fn the_allowlist_is_written_as_csv_and_as_a_litellm_model_list(app) {
        approve(&app, "open", None).await;
        approve(&app, "scoped", Some(scoped())).await;
        let query = "use_case=support-chat&data_class=public&region=uk";

        let csv = allowlist(&app, &format!("{query}&format=csv")).await;
        assert_eq!(csv.status(), 200);
        assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
        let text = csv.text().await.unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "provider,model,status,valid_until");
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[1].starts_with("acme,open,approved,2"), "{text}");
        assert!(lines[2].starts_with("acme,scoped,approved_with_conditions,2"), "{text}");

        let litellm = allowlist(&app, &format!("{query}&format=litellm&access_group=support-eu")).await;
        assert_eq!(litellm.status(), 200);
        assert_eq!(litellm.headers()["content-type"], "application/yaml");
        let snippet: Value = serde_json::from_str(&litellm.text().await.unwrap()).expect("JSON, which YAML reads too");
        assert_eq!(snippet["model_list"], json!([
            {"model_name": "acme/open", "litellm_params": {"model": "acme/open"}, "model_info": {"access_groups": ["support-eu"]}},
            {"model_name": "acme/scoped", "litellm_params": {"model": "acme/scoped"}, "model_info": {"access_groups": ["support-eu"]}},
        ]));
        let default_group: Value = allowlist(&app, "format=litellm").await.json().await.unwrap();
        assert_eq!(default_group["model_list"][0]["model_info"]["access_groups"], json!(["cleared"]));

        // Unchanged, a poller hears 304.
        let first = allowlist(&app, query).await;
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();
        let again = app.client.get(app.url(&format!("/v1/exports/allowlist?{query}"))).bearer_auth(integrator(&app)).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(again.status(), 304);
    }

    async fn an_allowlist_query_outside_the_vocabulary_is_refused(app) {
        for (query, field) in [
            ("region=mars", "region"),
            ("data_class=secret", "data_class"),
            ("format=xml", "format"),
            ("regions=eu", "regions"),
            ("region=", "region"),
            ("use_case=a&use_case=b", "use_case"),
            ("access_group=a%20b", "access_group"),
        ] {
            let problem = assert_problem(allowlist(&app, query).await, 422).await;
            assert_eq!(error_fields(&problem), [field], "{query}");
        }
    }

    async fn the_command_line_prints_the_allowlist(app) {
        approve(&app, "open", None).await;
        approve(&app, "narrow", Some(json!({"regions": ["eu"]}))).await;
        let expected = allowlist(&app, "region=us&format=csv").await.text().await.unwrap();
        let (server, token) = (app.address.clone(), integrator(&app));
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_clearance"))
                .args(["export", "allowlist", "--region", "us", "--format", "csv"])
                .env("CLEARANCE_SERVER", server)
                .env("CLEARANCE_TOKEN", token)
                .env_remove("CLEARANCE_CONFIG")
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert_eq!(String::from_utf8(output.stdout).unwrap(), expected);
        assert!(expected.contains("acme,open,") && !expected.contains("narrow"), "{expected}");

        let (server, token) = (app.address.clone(), integrator(&app));
        let refused = tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_clearance"))
                .args(["export", "allowlist", "--region", "mars", "--server", &server, "--token", &token])
                .env_remove("CLEARANCE_CONFIG")
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert_eq!(refused.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains("region") && stderr.contains("mars"), "{stderr}");
    }
}
