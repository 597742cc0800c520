//! The admin's emergency switch: suspend or resume a model, or every model
//! of a provider. One unit of work: the switch, its audit event, the notice
//! to the vendor managers, and the announcement of the clearances it moves.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::Clearance;
use crate::audit::{self, Actor, Change};
use crate::auth::Role;
use crate::ids::{ModelSlug, ProviderSlug};
use crate::providers::{CatalogueError, service as catalogue, store as catalogue_store};
use crate::unit::UnitOfWork;

/// What the switch acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Provider(ProviderSlug),
    Model(ProviderSlug, ModelSlug),
}

impl Subject {
    /// `provider/acme` or `model/acme/m`, as the audit log names it.
    pub fn audit_name(&self) -> String {
        match self {
            Subject::Provider(provider) => format!("provider/{provider}"),
            Subject::Model(provider, model) => format!("model/{provider}/{model}"),
        }
    }

    /// `acme` or `acme/m`, as people read it.
    pub fn label(&self) -> String {
        match self {
            Subject::Provider(provider) => provider.to_string(),
            Subject::Model(provider, model) => format!("{provider}/{model}"),
        }
    }
}

/// Which way the switch is thrown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Throw {
    Suspend { reason: String },
    Resume { reason: Option<String> },
}

/// Why the switch did not move.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
    #[error("{0} is already suspended")]
    AlreadySuspended(String),
    #[error("{0} is not suspended")]
    NotSuspended(String),
}

impl From<crate::db::StoreError> for SwitchError {
    fn from(error: crate::db::StoreError) -> Self {
        Self::Catalogue(error.into())
    }
}

impl From<diesel::result::Error> for SwitchError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Catalogue(error.into())
    }
}

/// Throws the switch; answers the clearances of the subject's models now.
pub async fn throw(
    work: &UnitOfWork,
    actor: Actor,
    subject: Subject,
    throw: Throw,
    mailboxes: BTreeMap<Role, Vec<String>>,
    public_url: String,
    now: DateTime<Utc>,
) -> Result<Vec<Clearance>, SwitchError> {
    // A reason is one line: it goes into notices, webhooks and the audit log.
    let reason = match &throw {
        Throw::Suspend { reason } => Some(reason.as_str()),
        Throw::Resume { reason } => reason.as_deref(),
    };
    if let Some(message) = reason.and_then(crate::validation::line_fault) {
        let error = crate::validation::FieldError::new("reason", message);
        return Err(SwitchError::Catalogue(CatalogueError::Invalid(vec![error])));
    }
    let (_, clearances) = work
        .run_published(actor, now, move |tx| {
            let (provider_slug, model_slug) = match &subject {
                Subject::Provider(provider) => (provider, None),
                Subject::Model(provider, model) => (provider, Some(model)),
            };
            let provider = catalogue::provider(tx.conn(), provider_slug)?;
            let model = match model_slug {
                Some(slug) => Some(catalogue::model(tx.conn(), provider_slug, slug)?.1),
                None => None,
            };
            let was_suspended = match &model {
                Some(model) => model.suspended_at.is_some(),
                None => provider.suspended_at.is_some(),
            };
            let (suspend, reason) = match &throw {
                Throw::Suspend { reason } => (true, Some(reason.clone())),
                Throw::Resume { reason } => (false, reason.clone()),
            };
            match (suspend, was_suspended) {
                (true, true) => return Err(SwitchError::AlreadySuspended(subject.audit_name())),
                (false, false) => return Err(SwitchError::NotSuspended(subject.audit_name())),
                _ => {}
            }
            tx.watch(&provider.id, model_slug)?;
            let suspension = match &throw {
                Throw::Suspend { reason } => Some((now, reason.as_str())),
                Throw::Resume { .. } => None,
            };
            catalogue_store::set_suspension(
                tx.conn(),
                &provider.id,
                model.as_ref().map(|m| &m.id),
                suspension,
            )?;
            if suspend {
                // Vendor managers hear of it at once (the admins when none is known).
                let managers =
                    crate::people::role_addresses(tx.conn(), Role::VendorManager, &mailboxes)?;
                let recipients = crate::people::or_admins(tx.conn(), managers, &mailboxes)?;
                let email = crate::notify::messages::suspension(
                    &public_url,
                    recipients.to,
                    &subject.label(),
                    reason.as_deref().unwrap_or_default(),
                    &tx.actor().id,
                );
                crate::notify::enqueue_email(tx, &email, None)?;
            }
            audit::append(
                tx,
                Change {
                    action: if suspend {
                        "status.suspended"
                    } else {
                        "status.resumed"
                    },
                    subject: subject.audit_name(),
                    review_id: None,
                    before: Some(json!({"suspended": was_suspended})),
                    after: Some(json!({"suspended": suspend, "reason": reason})),
                },
            )?;
            Ok(())
        })
        .await?;
    Ok(clearances)
}
