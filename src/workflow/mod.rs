//! Workflows as code: the definition types ([`definition`]), the TOML file
//! format and its checks ([`file`]), the catalogue of loaded workflows
//! ([`catalog`]), answer checking ([`answers`]) and the pure review engine
//! ([`engine`]).

pub mod answers;
pub mod catalog;
pub mod definition;
pub mod engine;
pub mod file;
#[cfg(test)]
mod fixture;
pub mod routes;

pub use catalog::{Catalog, LoadedWorkflow};
pub use definition::*;
