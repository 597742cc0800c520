//! Integration tests: a real server on a free port, a real database, HTTP.
//! Every test runs on SQLite, and on PostgreSQL too when `TEST_DATABASE_URL`
//! is set (each test in a fresh database).

#[macro_use]
mod helpers;

mod audit;
mod auth;
mod ci;
mod console;
mod contract;
mod evidence;
mod exports;
mod faults;
mod findings;
mod flow;
mod gate;
mod hardening;
mod hostile;
mod image;
mod intake;
mod mail;
mod matrix;
mod operations;
mod process;
mod providers;
mod reviews;
mod scheduler;
mod smtp;
mod status;
mod tokens;
mod usage;
