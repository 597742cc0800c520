//! Under CI (`CI=true`) a test whose tools are missing fails: a green CI
//! run means every test ran. Each case runs one test of this binary again,
//! in a child process, with CI set and one tool taken away.

use std::process::Command;

/// Runs this binary's `test` alone with CI set, after `change`; its output.
fn under_ci(test: &str, change: impl FnOnce(&mut Command)) -> std::process::Output {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args(["--exact", test]).env("CI", "true");
    change(&mut command);
    command.output().unwrap()
}

fn assert_fails_unskipped(output: &std::process::Output, why: &str) {
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{said}");
    assert!(said.contains("CI must not skip a test"), "{said}");
    assert!(said.contains(why), "{said}");
    assert!(said.contains("1 failed"), "{said}");
}

#[test]
fn without_test_database_url_a_postgres_test_fails() {
    let output = under_ci("operations::health_and_readiness_answer::postgres", |c| {
        c.env_remove("TEST_DATABASE_URL");
    });
    assert_fails_unskipped(&output, "TEST_DATABASE_URL is not set");
}

#[test]
fn without_aiosmtpd_an_email_test_fails() {
    // No PATH: no python3.
    let output = under_ci(
        "smtp::an_invitation_arrives_as_text_and_html_with_a_working_link",
        |c| {
            c.env("PATH", "");
        },
    );
    assert_fails_unskipped(&output, "aiosmtpd");
}
