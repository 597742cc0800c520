//! The sets of roles that endpoints and the engine admit, each named once
//! here so that who may do what is read and changed in one place. A single
//! role a rule names (`approver` for a stage's decision, a stage's
//! answering role) comes from the workflow file, not from here.

use super::Role;

/// Every role: reads of the catalogue and status lookups.
pub const EVERYONE: &[Role] = Role::ALL;

/// Every role but `integrator`: the people who run reviews. They read
/// reviews, workflows and evidence, raise findings and tiers, and may read
/// people's addresses and notes (machine accounts need status, not people).
pub const STAFF: &[Role] = &[
    Role::VendorManager,
    Role::SecurityReviewer,
    Role::PrivacyReviewer,
    Role::RaiReviewer,
    Role::Approver,
    Role::Admin,
];

/// Vendor managers and admins: they change the catalogue, start, withdraw
/// and re-review reviews, assign stages, invite suppliers, and work the
/// intake and the usage report.
pub const MANAGERS: &[Role] = &[Role::VendorManager, Role::Admin];

/// Integrators and admins: the readers of the exports gateways load.
pub const INTEGRATORS: &[Role] = &[Role::Integrator, Role::Admin];

/// Admins alone: the directory, mailboxes, webhooks, the outbox, the
/// scheduler's jobs, the audit log as a whole and the status switch.
pub const ADMINS: &[Role] = &[Role::Admin];
