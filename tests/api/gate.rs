//! `clearance check`, the CI gate, run as a pipeline would run it: the real
//! binary against a real server, and offline from a saved attestation.

use std::process::Command;

use clearance::auth::Role;
use serde_json::json;

use crate::status::approve;

/// Runs the binary; returns its exit code and standard output.
async fn gate(args: Vec<String>) -> (i32, String) {
    gate_with(args, None).await
}

/// Runs the binary with `CLEARANCE_SERVER` set to `server`, as a pipeline
/// that sets it for every step does.
async fn gate_with(args: Vec<String>, server: Option<String>) -> (i32, String) {
    let output = tokio::task::spawn_blocking(move || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_clearance"));
        command
            .arg("check")
            .args(args)
            .env_remove("CLEARANCE_TOKEN")
            .env_remove("CLEARANCE_SERVER");
        if let Some(server) = server {
            command.env("CLEARANCE_SERVER", server);
        }
        command.output().unwrap()
    })
    .await
    .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

fn args(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| (*p).to_owned()).collect()
}

backend_tests! {
    async fn the_gate_allows_denies_or_cannot_decide_online(app) {
        approve(&app, "gpt", Some(json!({"data_classes": ["public", "internal"], "regions": ["eu"]}))).await;
        let token = app.token("pipeline", &[Role::Integrator]);
        let (code, out) = gate(args(&["acme/gpt", "--data-class", "internal", "--region", "eu", "--server", &app.address, "--token", &token])).await;
        assert_eq!(code, 0, "{out}");
        assert!(out.starts_with("allow: acme/gpt is approved_with_conditions"), "{out}");
        let (code, out) = gate(args(&["acme/gpt", "--data-class", "personal", "--region", "eu", "--server", &app.address, "--token", &token])).await;
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("data_class_not_allowed:personal"), "{out}");
        let (code, out) = gate(args(&["acme/unknown", "--server", &app.address, "--token", &token])).await;
        assert_eq!((code, out.contains("not_reviewed")), (1, true), "{out}");
        let (code, out) = gate(args(&["acme/gpt", "--server", &app.address, "--token", "bad-token"])).await;
        assert_eq!(code, 2, "{out}");
        let (code, out) = gate(args(&["acme/gpt", "--server", "http://127.0.0.1:9", "--token", &token])).await;
        assert_eq!(code, 2, "{out}");
        let (code, _) = gate(args(&["not-a-subject", "--server", &app.address, "--token", &token])).await;
        assert_eq!(code, 2);
    }

    async fn the_gate_decides_offline_from_a_saved_attestation(app) {
        approve(&app, "gpt", Some(json!({"regions": ["eu"]}))).await;
        let token = app.token("pipeline", &[Role::Integrator]);
        let attestation = app.get("/v1/status/acme/gpt/attestation", &token).await.text().await.unwrap();
        let jwks = app.client.get(app.url("/.well-known/jwks.json")).send().await.unwrap().text().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (att, keys) = (dir.path().join("gpt.jwt"), dir.path().join("jwks.json"));
        std::fs::write(&att, &attestation).unwrap();
        std::fs::write(&keys, &jwks).unwrap();
        let (att, keys) = (att.to_string_lossy().into_owned(), keys.to_string_lossy().into_owned());

        let (code, out) = gate(args(&["acme/gpt", "--region", "eu", "--attestation", &att, "--jwks", &keys])).await;
        assert_eq!(code, 0, "{out}");
        let (code, out) = gate(args(&["acme/gpt", "--region", "us", "--attestation", &att, "--jwks", &keys])).await;
        assert_eq!((code, out.contains("region_not_allowed:us")), (1, true), "{out}");
        // An explicit --attestation wins over CLEARANCE_SERVER in the environment.
        let offline = args(&["acme/gpt", "--region", "eu", "--attestation", &att, "--jwks", &keys]);
        let (code, out) = gate_with(offline, Some("http://127.0.0.1:9".into())).await;
        assert_eq!(code, 0, "{out}");
        let (code, out) = gate(args(&["acme/other", "--region", "eu", "--attestation", &att, "--jwks", &keys])).await;
        assert_eq!(code, 2, "an attestation of another model: {out}");

        let mut parts: Vec<&str> = attestation.split('.').collect();
        let signature = parts[2].chars().rev().collect::<String>();
        parts[2] = &signature;
        std::fs::write(dir.path().join("gpt.jwt"), parts.join(".")).unwrap();
        let (code, out) = gate(args(&["acme/gpt", "--region", "eu", "--attestation", &att, "--jwks", &keys])).await;
        assert_eq!(code, 2, "a badly signed attestation: {out}");
    }
}
