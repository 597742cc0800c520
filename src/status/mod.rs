//! The published clearance of each model: derived from the latest decided
//! review (model-level, or provider-wide when newer) and the admin switch
//! ([`derive`], pure), held in an in-memory snapshot that answers every
//! integrator query ([`snapshot`]), loaded from the database ([`store`]),
//! signed as offline-verifiable attestations ([`attestation`]) and served
//! over HTTP ([`routes`], with lookups in a fast lane: [`lane`]).

pub mod attestation;
pub mod check;
pub mod derive;
pub mod lane;
pub mod routes;
pub mod snapshot;
pub mod store;
pub mod switch;

pub use derive::{CheckContext, CheckResult, Clearance, Status};
pub use snapshot::StatusService;
