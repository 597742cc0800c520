//! Exports of the clearances for the places that enforce them without
//! asking Clearance at each call: an OPA bundle whose Rego policy decides as
//! `POST /v1/status/check` does ([`bundle`]), and the list of models a
//! context may use, as JSON, CSV or a LiteLLM `model_list` ([`allowlist`]),
//! served over HTTP ([`routes`]) and fetched by `clearance export allowlist`
//! ([`allowlist::fetch`]).

pub mod allowlist;
pub mod bundle;
pub mod routes;
