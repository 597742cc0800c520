//! The append-only, hash-chained audit log. Every change writes one event in
//! the same transaction as the change; each event's hash covers its canonical
//! serialization and the previous event's hash, so an edited, deleted or
//! reordered row breaks the chain.
//!
//! Appending lives here; reading and filtering the log in [`store`],
//! recomputing the chain in [`verify`] (pure), and the HTTP routes in
//! [`routes`].

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::auth::{Principal, Role};
use crate::schema::{audit_events, audit_head};
use crate::unit::Tx;

pub mod routes;
pub mod store;
pub mod verify;

/// The hash that precedes the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who made a change: the three kinds of actor the log knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// A person, by their `sub`, with the roles they held at the time.
    Person { sub: String, roles: Vec<Role> },
    /// One of the service's own jobs, spelled `system:<job>`.
    System(&'static str),
    /// A supplier answering through an invitation, spelled
    /// `respondent:<invitation>`, without roles.
    Respondent { invitation: String },
}

/// Who made a change, and under which request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub who: Who,
    pub request_id: Option<String>,
}

impl Actor {
    /// Whoever called: a person, or a supplier through an invitation.
    pub fn person(principal: &Principal, request_id: Option<String>) -> Self {
        let who = match &principal.respondent {
            Some(scope) => Who::Respondent {
                invitation: scope.invitation.clone(),
            },
            None => Who::Person {
                sub: principal.sub.clone(),
                roles: principal.roles.iter().copied().collect(),
            },
        };
        Self { who, request_id }
    }

    /// A person signing in, before they hold a session.
    pub fn signing_in(sub: &str, roles: impl IntoIterator<Item = Role>) -> Self {
        Self {
            who: Who::Person {
                sub: sub.to_owned(),
                roles: roles.into_iter().collect(),
            },
            request_id: None,
        }
    }

    pub fn system(job: &'static str) -> Self {
        Self {
            who: Who::System(job),
            request_id: None,
        }
    }

    /// How the log names this actor: a person's `sub`, `system:<job>` or
    /// `respondent:<invitation>`.
    pub fn id(&self) -> String {
        match &self.who {
            Who::Person { sub, .. } => sub.clone(),
            Who::System(job) => format!("system:{job}"),
            Who::Respondent { invitation } => format!("respondent:{invitation}"),
        }
    }

    /// The roles the actor held, by name (none for jobs and suppliers).
    pub fn roles(&self) -> Vec<&'static str> {
        match &self.who {
            Who::Person { roles, .. } => roles.iter().map(|r| r.as_str()).collect(),
            Who::System(_) | Who::Respondent { .. } => Vec::new(),
        }
    }
}

/// What an event is about, as the log spells it: `provider/<slug>`,
/// `model/<provider>/<slug>`, `review/<id>`, `webhook/<id>`, `person/<sub>`,
/// `role/<role>` (its mailbox) or `outbox/<id>`. Every event's subject is built here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Provider(String),
    Model(String, String),
    Review(String),
    Webhook(String),
    Person(String),
    Role(String),
    Outbox(String),
}

impl Subject {
    pub fn provider(slug: impl std::fmt::Display) -> Self {
        Self::Provider(slug.to_string())
    }

    pub fn model(provider: impl std::fmt::Display, model: impl std::fmt::Display) -> Self {
        Self::Model(provider.to_string(), model.to_string())
    }

    pub fn review(id: impl std::fmt::Display) -> Self {
        Self::Review(id.to_string())
    }

    pub fn webhook(id: impl std::fmt::Display) -> Self {
        Self::Webhook(id.to_string())
    }

    pub fn person(sub: impl std::fmt::Display) -> Self {
        Self::Person(sub.to_string())
    }

    pub fn role(role: impl std::fmt::Display) -> Self {
        Self::Role(role.to_string())
    }

    pub fn outbox(id: impl std::fmt::Display) -> Self {
        Self::Outbox(id.to_string())
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Provider(slug) => write!(f, "provider/{slug}"),
            Self::Model(provider, model) => write!(f, "model/{provider}/{model}"),
            Self::Review(id) => write!(f, "review/{id}"),
            Self::Webhook(id) => write!(f, "webhook/{id}"),
            Self::Person(sub) => write!(f, "person/{sub}"),
            Self::Role(role) => write!(f, "role/{role}"),
            Self::Outbox(id) => write!(f, "outbox/{id}"),
        }
    }
}

/// A change to record.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub action: Action,
    /// What changed.
    pub subject: Subject,
    pub review_id: Option<&'a str>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

impl<'a> Change<'a> {
    /// An event about review `id`: the review is its subject, and the
    /// review it belongs to.
    pub fn review(action: Action, id: &'a str) -> Self {
        Self {
            action,
            subject: Subject::review(id),
            review_id: Some(id),
            before: None,
            after: None,
        }
    }

    /// What the subject was before the change.
    pub fn before(self, before: serde_json::Value) -> Self {
        Self {
            before: Some(before),
            ..self
        }
    }

    /// What the subject is after the change.
    pub fn after(self, after: serde_json::Value) -> Self {
        Self {
            after: Some(after),
            ..self
        }
    }
}

crate::names::named_enum! {
    /// What an audit event records, by the names the README lists (the
    /// stored `action` of each event).
    pub enum Action {
        #[serde(rename = "review.started")]
        #[strum(serialize = "review.started")]
        ReviewStarted,
        #[serde(rename = "review.re_review_started")]
        #[strum(serialize = "review.re_review_started")]
        ReviewReReviewStarted,
        #[serde(rename = "review.tier_raised")]
        #[strum(serialize = "review.tier_raised")]
        ReviewTierRaised,
        #[serde(rename = "review.withdrawn")]
        #[strum(serialize = "review.withdrawn")]
        ReviewWithdrawn,
        #[serde(rename = "review.invited")]
        #[strum(serialize = "review.invited")]
        ReviewInvited,
        #[serde(rename = "stage.answers_saved")]
        #[strum(serialize = "stage.answers_saved")]
        StageAnswersSaved,
        #[serde(rename = "stage.submitted")]
        #[strum(serialize = "stage.submitted")]
        StageSubmitted,
        #[serde(rename = "stage.decided")]
        #[strum(serialize = "stage.decided")]
        StageDecided,
        #[serde(rename = "stage.assigned")]
        #[strum(serialize = "stage.assigned")]
        StageAssigned,
        #[serde(rename = "stage.invited")]
        #[strum(serialize = "stage.invited")]
        StageInvited,
        #[serde(rename = "stage.invitation_revoked")]
        #[strum(serialize = "stage.invitation_revoked")]
        StageInvitationRevoked,
        #[serde(rename = "stage.reminded")]
        #[strum(serialize = "stage.reminded")]
        StageReminded,
        #[serde(rename = "stage.escalated")]
        #[strum(serialize = "stage.escalated")]
        StageEscalated,
        #[serde(rename = "supplier.reminded")]
        #[strum(serialize = "supplier.reminded")]
        SupplierReminded,
        /// A supplier contact was told that questionnaires opened (at once,
        /// or after their quiet day).
        #[serde(rename = "supplier.notified")]
        #[strum(serialize = "supplier.notified")]
        SupplierNotified,
        #[serde(rename = "invitation.expired_unused")]
        #[strum(serialize = "invitation.expired_unused")]
        InvitationExpiredUnused,
        #[serde(rename = "finding.opened")]
        #[strum(serialize = "finding.opened")]
        FindingOpened,
        #[serde(rename = "finding.updated")]
        #[strum(serialize = "finding.updated")]
        FindingUpdated,
        #[serde(rename = "question.commented")]
        #[strum(serialize = "question.commented")]
        QuestionCommented,
        #[serde(rename = "notification.undeliverable")]
        #[strum(serialize = "notification.undeliverable")]
        NotificationUndeliverable,
        #[serde(rename = "evidence.exported")]
        #[strum(serialize = "evidence.exported")]
        EvidenceExported,
        #[serde(rename = "intake.started")]
        #[strum(serialize = "intake.started")]
        IntakeStarted,
        #[serde(rename = "intake.dismissed")]
        #[strum(serialize = "intake.dismissed")]
        IntakeDismissed,
        #[serde(rename = "provider.created")]
        #[strum(serialize = "provider.created")]
        ProviderCreated,
        #[serde(rename = "provider.updated")]
        #[strum(serialize = "provider.updated")]
        ProviderUpdated,
        #[serde(rename = "model.created")]
        #[strum(serialize = "model.created")]
        ModelCreated,
        #[serde(rename = "model.updated")]
        #[strum(serialize = "model.updated")]
        ModelUpdated,
        #[serde(rename = "status.suspended")]
        #[strum(serialize = "status.suspended")]
        StatusSuspended,
        #[serde(rename = "status.resumed")]
        #[strum(serialize = "status.resumed")]
        StatusResumed,
        #[serde(rename = "status.expired")]
        #[strum(serialize = "status.expired")]
        StatusExpired,
        #[serde(rename = "webhook.created")]
        #[strum(serialize = "webhook.created")]
        WebhookCreated,
        #[serde(rename = "webhook.deleted")]
        #[strum(serialize = "webhook.deleted")]
        WebhookDeleted,
        #[serde(rename = "mailbox.set")]
        #[strum(serialize = "mailbox.set")]
        MailboxSet,
        #[serde(rename = "outbox.retried")]
        #[strum(serialize = "outbox.retried")]
        OutboxRetried,
        #[serde(rename = "digest.queued")]
        #[strum(serialize = "digest.queued")]
        DigestQueued,
        #[serde(rename = "session.signed_in")]
        #[strum(serialize = "session.signed_in")]
        SessionSignedIn,
        #[serde(rename = "session.signed_out")]
        #[strum(serialize = "session.signed_out")]
        SessionSignedOut,
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events)]
pub struct AuditRow {
    pub seq: i64,
    pub id: String,
    pub occurred_at: NaiveDateTime,
    pub actor: String,
    pub actor_roles: String,
    pub action: String,
    pub subject: String,
    pub review_id: Option<String>,
    pub request_id: Option<String>,
    pub before_data: Option<String>,
    pub after_data: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// The fields an event's hash covers, in a fixed order.
#[derive(Serialize)]
struct Canonical<'a> {
    seq: i64,
    id: &'a str,
    occurred_at: String,
    actor: &'a str,
    actor_roles: &'a str,
    action: &'a str,
    subject: &'a str,
    review_id: Option<&'a str>,
    request_id: Option<&'a str>,
    before: Option<&'a str>,
    after: Option<&'a str>,
    prev_hash: &'a str,
}

impl AuditRow {
    /// The SHA-256 (hex) of this event's canonical form, chained to `prev_hash`.
    pub fn compute_hash(&self) -> String {
        let canonical = Canonical {
            seq: self.seq,
            id: &self.id,
            occurred_at: self
                .occurred_at
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string(),
            actor: &self.actor,
            actor_roles: &self.actor_roles,
            action: &self.action,
            subject: &self.subject,
            review_id: self.review_id.as_deref(),
            request_id: self.request_id.as_deref(),
            before: self.before_data.as_deref(),
            after: self.after_data.as_deref(),
            prev_hash: &self.prev_hash,
        };
        let bytes = serde_json::to_vec(&canonical).unwrap_or_default();
        hex::encode(Sha256::digest(bytes))
    }
}

/// Appends one event by the change's actor, at its time. Only a change in
/// progress can append (see [`crate::unit`]): its write transaction holds the
/// chain's head.
pub fn append(tx: &mut Tx<'_>, change: Change<'_>) -> QueryResult<AuditRow> {
    let (actor, now) = (tx.actor().clone(), tx.now());
    let conn = tx.conn();
    let (head_seq, head_hash): (i64, String) = audit_head::table
        .filter(audit_head::id.eq(1))
        .select((audit_head::seq, audit_head::hash))
        .first(conn)?;
    let mut row = AuditRow {
        seq: head_seq + 1,
        id: uuid::Uuid::now_v7().to_string(),
        occurred_at: now.naive_utc(),
        actor: actor.id(),
        actor_roles: serde_json::to_string(&actor.roles()).unwrap_or_else(|_| "[]".into()),
        action: change.action.as_str().to_owned(),
        subject: change.subject.to_string(),
        review_id: change.review_id.map(str::to_owned),
        request_id: actor.request_id,
        before_data: change.before.map(|v| v.to_string()),
        after_data: change.after.map(|v| v.to_string()),
        prev_hash: head_hash,
        hash: String::new(),
    };
    row.hash = row.compute_hash();
    diesel::insert_into(audit_events::table)
        .values(&row)
        .execute(conn)?;
    diesel::update(audit_head::table.filter(audit_head::id.eq(1)))
        .set((audit_head::seq.eq(row.seq), audit_head::hash.eq(&row.hash)))
        .execute(conn)?;
    Ok(row)
}

/// An event as `GET /v1/audit` shows it: the stored row, with its JSON
/// columns parsed. `prev_hash` and `hash` are included so that a reader can
/// recompute the chain without trusting the service.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEvent {
    pub seq: i64,
    pub id: String,
    pub occurred_at: DateTime<Utc>,
    /// A person's `sub`, `system:<job>` or `respondent:<invitation>`.
    pub actor: String,
    pub actor_roles: Vec<String>,
    /// e.g. `review.started`, `stage.decided`, `provider.updated`.
    pub action: String,
    /// What changed, as a path: `provider/anthropic`, `review/<id>`.
    pub subject: String,
    pub review_id: Option<String>,
    pub request_id: Option<String>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub prev_hash: String,
    pub hash: String,
}

impl From<AuditRow> for AuditEvent {
    fn from(row: AuditRow) -> Self {
        // A column that no longer parses (edited by hand) is shown as the
        // text it holds rather than hidden: the log is evidence.
        let json =
            |text: String| serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        Self {
            seq: row.seq,
            id: row.id,
            occurred_at: row.occurred_at.and_utc(),
            actor: row.actor,
            actor_roles: serde_json::from_str(&row.actor_roles)
                .unwrap_or_else(|_| vec![row.actor_roles]),
            action: row.action,
            subject: row.subject,
            review_id: row.review_id,
            request_id: row.request_id,
            before: row.before_data.map(json),
            after: row.after_data.map(json),
            prev_hash: row.prev_hash,
            hash: row.hash,
        }
    }
}
