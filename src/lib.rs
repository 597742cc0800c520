//! Clearance: due-diligence reviews of third-party AI model providers, and a
//! published clearance status per model.
//!
//! Layout, by layer (a module uses only those above it, or beside it):
//!
//! - **Plain values and the pure core** — no database, no HTTP: [`ids`]
//!   (typed identifiers), `names` (enum names), [`duration`],
//!   [`validation`] (input problems and the text rules), [`conditions`],
//!   [`vocabulary`] (regions and use cases), [`clock`], [`workflow`] (the
//!   workflow file format and the review engine, which alone says what a
//!   caller may do), the status derivation in [`status`].
//! - **Storage**: [`config`] (settings), [`schema`] and [`db`] (both
//!   backends), [`unit`](mod@unit) (the one unit of work through which every change
//!   passes), [`audit`] (the hash-chained log).
//! - **The domain's services**: [`providers`] (the catalogue), [`reviews`],
//!   [`people`] (the directory and role mailboxes), [`notify`] and
//!   [`outbox`] (emails and webhook deliveries), [`webhooks`], [`status`]
//!   (the snapshot, attestations, the switch, checks), [`intake`] and
//!   [`usage`] (what integrators asked), [`exports`] (OPA bundle,
//!   allowlists), [`evidence`] (evidence packs), [`scheduler`] (the jobs).
//! - **Edges**: [`auth`] (tokens and roles), [`http`] (routes, problems,
//!   extractors, OpenAPI), [`console`] (the web pages), [`gate`] (the
//!   `clearance check` CI gate), [`telemetry`] (logs, and the egress log of
//!   every connection the service opens), [`startup`] (building the
//!   application from a configuration value).

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
