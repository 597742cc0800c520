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

mod console;
mod harness;
