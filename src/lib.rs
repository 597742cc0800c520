//! Clearance: due-diligence reviews of third-party AI model providers, and a
//! published clearance status per model.
//!
//! Layout: [`config`] (settings), [`db`] and [`schema`] (the store, both
//! backends), [`auth`] (tokens and roles), [`audit`] (the hash-chained log
//! and its verification), [`evidence`] (evidence packs and period summaries
//! for auditors), [`providers`] (the catalogue), [`http`] (routes, errors,
//! OpenAPI) and [`startup`] (building the application from a configuration
//! value).

pub mod audit;
pub mod auth;
pub mod clock;
pub mod conditions;
pub mod config;
pub mod console;
pub mod db;
pub mod duration;
pub mod evidence;
pub mod exports;
pub mod gate;
pub mod http;
pub mod ids;
pub mod intake;
mod names;
pub mod notify;
pub mod outbox;
pub mod people;
pub mod providers;
pub mod reviews;
pub mod scheduler;
pub mod schema;
pub mod startup;
pub mod status;
pub mod telemetry;
pub mod unit;
pub mod usage;
pub mod validation;
pub mod vocabulary;
pub mod webhooks;
pub mod workflow;
