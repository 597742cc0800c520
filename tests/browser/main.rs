//! Browser tests of the console: real headless Chromium against the real
//! server (on SQLite, and on PostgreSQL when `TEST_DATABASE_URL` is set),
//! people signing in through a real OpenID Connect provider process, axe-core
//! checking every main page, and screenshots kept in
//! `target/screenshots/<backend>/`.

#[path = "../api/helpers.rs"]
#[expect(
    dead_code,
    unused_macros,
    reason = "the API tests' helpers; the browser tests use some"
)]
mod helpers;

#[path = "../api/flow.rs"]
#[expect(
    dead_code,
    reason = "the API tests' review flow; the browser tests use its answers"
)]
mod flow;

#[macro_use]
mod console;
mod findings;
mod harness;
mod mail;
mod pages;

/// Under CI (`CI=true`) missing browser tools fail the tests: run one of
/// them again, in a child process, with CI set and axe-core taken away.
#[test]
fn under_ci_missing_browser_tools_fail_the_tests() {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "console::a_review_runs_from_sign_in_to_suspension::sqlite",
        ])
        .env("CI", "true")
        .env("AXE_CORE_JS", "/nonexistent/axe.min.js")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{said}");
    assert!(
        said.contains("CI must not skip a test: browser tools missing"),
        "{said}"
    );
}
