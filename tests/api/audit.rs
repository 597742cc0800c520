//! The audit log over HTTP and on the command line: reading it with filters
//! and pages, who may read what, and verification catching rows edited,
//! deleted, reordered or cut off directly in the database.

use clearance::auth::Role;
use clearance::config::DatabaseUrl;
use serde_json::{Value, json};

use crate::flow::Flow;
use crate::helpers::{TestApp, assert_problem, error_fields};

/// A provider, a model and a review taken through intake: six events
/// (provider.created, model.created, review.started, stage.answers_saved,
/// stage.submitted, stage.decided).
async fn history(app: &TestApp) -> Flow<'_> {
    // Vera, who confirms the intake, is known before it is submitted (else
    // the log would also record that nobody could be asked to decide it).
    let vera = app.token("vera", &[clearance::auth::Role::VendorManager]);
    assert_eq!(app.get("/v1/reviews", &vera).await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let flow = Flow::start(app).await;
    flow.through_intake(json!({})).await;
    flow
}

/// Every event, read as an admin in pages of 200.
async fn all_events(app: &TestApp) -> Vec<Value> {
    let page: Value = app
        .get("/v1/audit?limit=200", &app.admin())
        .await
        .json()
        .await
        .unwrap();
    page["items"].as_array().unwrap().clone()
}

async fn verify(app: &TestApp) -> Value {
    let response = app.get("/v1/audit/verify", &app.admin()).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Asserts a failed verification that names `event` (seq and id) and a
/// problem mentioning `words`.
fn assert_first_bad(report: &Value, seq: i64, id: Option<&str>, words: &str) {
    assert_eq!(report["ok"], false, "{report}");
    assert!(report.get("head").is_none(), "{report}");
    let bad = &report["first_bad"];
    assert_eq!(bad["seq"], seq, "{report}");
    assert_eq!(bad["id"].as_str(), id, "{report}");
    let problem = bad["problem"].as_str().unwrap();
    assert!(problem.contains(words), "{problem}");
}

fn seqs(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect()
}

/// Runs `clearance audit verify` against the app's database, in an empty
/// folder with only the environment naming the database.
fn verify_on_the_command_line(app: &TestApp) -> (Option<i32>, Value) {
    let url = match &app.database {
        DatabaseUrl::Postgres(url) => url.clone(),
        DatabaseUrl::Sqlite(path) => path.to_string_lossy().into_owned(),
    };
    let folder = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_clearance"))
        .args(["audit", "verify"])
        .current_dir(folder.path())
        .env("DATABASE_URL", url)
        .env("CLEARANCE_DATA_DIR", folder.path())
        .env_remove("CLEARANCE_CONFIG")
        .output()
        .expect("clearance runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout} {}", String::from_utf8_lossy(&output.stderr)));
    (output.status.code(), report)
}

backend_tests! {
    async fn an_untouched_log_verifies_to_its_last_hash(app) {
        history(&app).await;
        let events = all_events(&app).await;
        assert_eq!(events.len(), 6);
        let report = verify(&app).await;
        assert_eq!(report, json!({"ok": true, "events": 6, "head": events[5]["hash"]}));
        for pair in events.windows(2) {
            assert_eq!(pair[1]["prev_hash"], pair[0]["hash"], "each event links to the one before");
        }
        assert_eq!(events[0]["prev_hash"], "0".repeat(64));
        let (code, cli) = verify_on_the_command_line(&app);
        assert_eq!(code, Some(0));
        assert_eq!(cli, report, "the command line and the API agree");
    }

    async fn an_empty_log_verifies_to_the_genesis_hash(app) {
        assert_eq!(verify(&app).await, json!({"ok": true, "events": 0, "head": "0".repeat(64)}));
    }

    async fn an_edited_event_fails_verification_at_that_event(app) {
        history(&app).await;
        let events = all_events(&app).await;
        let changed = app.sql(r#"UPDATE audit_events SET after_data = '{"state":"approved"}' WHERE seq = 3"#);
        assert_eq!(changed, 1);
        let report = verify(&app).await;
        assert_first_bad(&report, 3, events[2]["id"].as_str(), "hash mismatch");
        assert_eq!(report["events"], 6);
        let (code, cli) = verify_on_the_command_line(&app);
        assert_eq!(code, Some(1), "a broken chain exits 1");
        assert_eq!(cli, report);
    }

    async fn a_deleted_middle_event_fails_verification_at_the_gap(app) {
        history(&app).await;
        let events = all_events(&app).await;
        assert_eq!(app.sql("DELETE FROM audit_events WHERE seq = 3"), 1);
        let report = verify(&app).await;
        assert_first_bad(&report, 4, events[3]["id"].as_str(), "seq gap");
        assert_eq!(report["events"], 5);
    }

    async fn swapped_events_fail_verification_at_the_first_of_them(app) {
        history(&app).await;
        let events = all_events(&app).await;
        app.sql("UPDATE audit_events SET seq = -4 WHERE seq = 4");
        app.sql("UPDATE audit_events SET seq = 4 WHERE seq = 3");
        app.sql("UPDATE audit_events SET seq = 3 WHERE seq = -4");
        let report = verify(&app).await;
        assert_first_bad(&report, 3, events[3]["id"].as_str(), "prev_hash");
    }

    async fn a_truncated_tail_fails_verification_against_the_head(app) {
        history(&app).await;
        assert_eq!(app.sql("DELETE FROM audit_events WHERE seq >= 5"), 2);
        let report = verify(&app).await;
        assert_first_bad(&report, 5, None, "truncated");
        assert_eq!(report["events"], 4);
    }

    async fn only_an_admin_reads_the_whole_log_and_verifies_it(app) {
        let flow = history(&app).await;
        let sam = app.token("sam", &[Role::SecurityReviewer]);
        let problem = assert_problem(app.get("/v1/audit", &sam).await, 403).await;
        assert!(problem["detail"].as_str().unwrap().contains("review="), "{problem}");
        assert_problem(app.get("/v1/audit?review=", &app.manager()).await, 403).await;
        assert_problem(app.get(&format!("/v1/audit?review={}", flow.id), &app.token("ci", &[Role::Integrator])).await, 403).await;
        assert_problem(app.client.get(app.url("/v1/audit")).send().await.unwrap(), 401).await;
        for token in [&sam, &app.manager(), &app.token("alex", &[Role::Approver])] {
            assert_problem(app.get("/v1/audit/verify", token).await, 403).await;
        }

        for token in [sam, app.manager(), app.token("pia", &[Role::PrivacyReviewer]), app.token("rae", &[Role::RaiReviewer]), app.token("alex", &[Role::Approver])] {
            let response = app.get(&format!("/v1/audit?review={}", flow.id), &token).await;
            assert_eq!(response.status(), 200);
            let page: Value = response.json().await.unwrap();
            let events = page["items"].as_array().unwrap();
            assert_eq!(events.len(), 4, "the review's events, not the catalogue's");
            assert!(events.iter().all(|e| e["review_id"] == flow.id.as_str()));
        }
    }

    async fn events_show_who_did_what_with_parsed_data(app) {
        let flow = history(&app).await;
        let events = all_events(&app).await;
        let started = &events[2];
        assert_eq!(started["seq"], 3);
        assert_eq!(started["action"], "review.started");
        assert_eq!(started["actor"], "victor");
        assert_eq!(started["actor_roles"], json!(["vendor_manager"]));
        assert_eq!(started["subject"], format!("review/{}", flow.id));
        assert_eq!(started["review_id"], flow.id.as_str());
        assert_eq!(started["occurred_at"], "2026-03-02T09:00:00Z");
        assert!(started["request_id"].is_string(), "{started}");
        assert_eq!(started["after"]["subject"], "anthropic/claude", "after is JSON, not text");
        assert!(started["before"].is_null());
        assert_eq!(started["hash"].as_str().unwrap().len(), 64);
    }

    async fn filters_narrow_the_log(app) {
        let flow = history(&app).await;
        app.clock.advance(chrono::TimeDelta::days(2));
        app.post("/v1/providers/anthropic/models", &app.token("vera", &[Role::VendorManager]), &json!({"slug": "haiku", "name": "Haiku"})).await;
        let admin = app.admin();
        let count = |query: String| {
            let admin = admin.clone();
            let app = &app;
            async move {
                let response = app.get(&format!("/v1/audit{query}"), &admin).await;
                assert_eq!(response.status(), 200, "{query}");
                let page: Value = response.json().await.unwrap();
                seqs(&page)
            }
        };
        assert_eq!(count(String::new()).await, [1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(count("?subject=provider/anthropic".into()).await, [1]);
        assert_eq!(count("?action=model.created".into()).await, [2, 7]);
        assert_eq!(count("?actor=vera".into()).await, [6, 7], "vera confirmed intake and added a model");
        assert_eq!(count(format!("?review={}", flow.id)).await, [3, 4, 5, 6]);
        assert_eq!(count(format!("?review={}&action=stage.decided&actor=vera", flow.id)).await, [6]);
        assert_eq!(count("?from=2026-03-03T00:00:00Z".into()).await, [7]);
        assert_eq!(count("?to=2026-03-03T00:00:00Z".into()).await, [1, 2, 3, 4, 5, 6]);
        assert_eq!(count("?from=2026-03-02T09:00:00Z&to=2026-03-02T09:00:00.000001Z".into()).await, [1, 2, 3, 4, 5, 6], "from is inclusive");
        assert_eq!(count("?to=2026-03-02T09:00:00Z".into()).await, Vec::<i64>::new(), "to is exclusive");
        assert_eq!(count("?from=2026-03-04T10:00:00%2B01:00".into()).await, [7], "any offset");
        assert_eq!(count("?subject=nothing".into()).await, Vec::<i64>::new());
        assert_eq!(count("?seq=5".into()).await, [5]);
    }

    async fn bad_filters_are_422_naming_each_field(app) {
        let admin = app.admin();
        let problem = assert_problem(app.get("/v1/audit?from=yesterday&to=2026-13-01T00:00:00Z&limit=0", &admin).await, 422).await;
        assert_eq!(error_fields(&problem), ["from", "limit", "to"]);
        let problem = assert_problem(app.get("/v1/audit?from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z", &admin).await, 422).await;
        assert_eq!(error_fields(&problem), ["to"]);
        let problem = assert_problem(app.get("/v1/audit?cursor=%2A%2A%2A", &admin).await, 422).await;
        assert_eq!(error_fields(&problem), ["cursor"]);
        let problem = assert_problem(app.get("/v1/audit?cursor=bm90LWEtbnVtYmVy", &admin).await, 422).await;
        assert_eq!(error_fields(&problem), ["cursor"], "a cursor that is not a seq");
        let problem = assert_problem(app.get("/v1/audit?limit=201&seq=0", &admin).await, 422).await;
        assert_eq!(error_fields(&problem), ["limit", "seq"]);
    }

    async fn pages_follow_the_chain_without_gaps_or_repeats(app) {
        history(&app).await;
        let admin = app.admin();
        let mut seen = Vec::new();
        let mut path = "/v1/audit?limit=4".to_owned();
        let mut pages = 0;
        loop {
            let page: Value = app.get(&path, &admin).await.json().await.unwrap();
            pages += 1;
            seen.extend(seqs(&page));
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/v1/audit?limit=4&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(pages, 2);
        assert_eq!(seen, [1, 2, 3, 4, 5, 6]);
        let exact: Value = app.get("/v1/audit?limit=6", &admin).await.json().await.unwrap();
        assert!(exact["next_cursor"].is_null(), "no empty last page");
    }
}

#[tokio::test]
async fn the_audit_routes_are_documented_with_their_roles() {
    let app = TestApp::spawn(crate::helpers::Backend::Sqlite)
        .await
        .unwrap();
    let doc = app.openapi().await;
    let list = &doc["paths"]["/v1/audit"]["get"];
    assert!(
        list["description"]
            .as_str()
            .unwrap()
            .contains("review=<id>"),
        "{list}"
    );
    let names: Vec<&str> = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in [
        "seq", "subject", "actor", "action", "review", "from", "to", "limit", "cursor",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    let verify = &doc["paths"]["/v1/audit/verify"]["get"];
    assert!(
        verify["description"].as_str().unwrap().contains("admin"),
        "{verify}"
    );
    assert!(doc["components"]["schemas"]["Verification"].is_object());
}

#[test]
fn the_command_line_exits_2_when_it_cannot_read_the_log() {
    let folder = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_clearance"))
        .args(["audit", "verify"])
        .current_dir(folder.path())
        .env("DATABASE_URL", folder.path().join("missing.sqlite3"))
        .env("CLEARANCE_DATA_DIR", folder.path())
        .env_remove("CLEARANCE_CONFIG")
        .output()
        .expect("clearance runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no database"), "{stderr}");
    assert!(
        !folder.path().join("missing.sqlite3").exists(),
        "verifying creates nothing"
    );
}

/// Two instances writing at once on one PostgreSQL keep one chain, without
/// gaps or forks: every change takes the chain's head first.
mod concurrent_writers_keep_one_chain {
    use super::*;
    use crate::helpers::Backend;

    #[tokio::test]
    async fn postgres() {
        let Some(first) = TestApp::spawn(Backend::Postgres).await else {
            crate::helpers::skip(crate::helpers::NO_DATABASE);
            return;
        };
        let second = first.spawn_beside(|_| {}).await;
        let writes = (0..40).map(|i| {
            let app = if i % 2 == 0 { &first } else { &second };
            let token = app.manager();
            async move {
                let response = app
                    .post(
                        "/v1/providers",
                        &token,
                        &json!({"slug": format!("p{i}"), "name": format!("P{i}")}),
                    )
                    .await;
                assert_eq!(response.status(), 201);
            }
        });
        futures_util::future::join_all(writes).await;
        let report = verify(&second).await;
        assert_eq!(report["ok"], true, "{report}");
        assert_eq!(report["events"], 40);
        let seqs: Vec<i64> = all_events(&first)
            .await
            .iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(seqs, (1..=40).collect::<Vec<_>>());
    }
}
