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
use crate::usage::Integrator;

/// What the switch acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Provider(ProviderSlug),
    Model(ProviderSlug, ModelSlug),
}

impl Subject {
    /// What the audit log names it.
    pub fn audited(&self) -> audit::Subject {
        match self {
            Subject::Provider(provider) => audit::Subject::provider(provider),
            Subject::Model(provider, model) => audit::Subject::model(provider, model),
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

/// The integrators a suspension of `subject` would deny (those that asked
/// in the usage window before `now`, which starts at the hour answered),
/// and the subject's models; why not, when it cannot be suspended.
#[allow(clippy::type_complexity)]
pub fn impact(
    conn: &mut crate::db::DbConnection,
    subject: &Subject,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, Vec<Integrator>, Vec<(String, String)>), SwitchError> {
    let found = Found::of(conn, subject)?;
    if found.suspended() {
        return Err(SwitchError::AlreadySuspended(subject.audited().to_string()));
    }
    let (provider_slug, model_slug) = subject.slugs();
    let (since, integrators) = crate::usage::impact(conn, provider_slug.as_str(), model_slug, now)?;
    let models = match found.model {
        Some(model) => vec![model],
        None => catalogue_store::models_of(conn, std::slice::from_ref(&found.provider.id))?,
    };
    let models = models
        .into_iter()
        .map(|m| (provider_slug.to_string(), m.slug.to_string()))
        .collect();
    Ok((since, integrators, models))
}

/// The catalogue's rows of a subject.
struct Found {
    provider: catalogue_store::ProviderRow,
    model: Option<catalogue_store::ModelRow>,
}

impl Found {
    /// The rows of `subject`, or why there are none.
    fn of(conn: &mut crate::db::DbConnection, subject: &Subject) -> Result<Self, SwitchError> {
        Ok(match subject {
            Subject::Provider(provider) => Found {
                provider: catalogue::provider(conn, provider)?,
                model: None,
            },
            Subject::Model(provider, model) => {
                let (provider, model) = catalogue::model(conn, provider, model)?;
                Found {
                    provider,
                    model: Some(model),
                }
            }
        })
    }

    /// Whether the subject itself (not a provider above a model) is suspended.
    fn suspended(&self) -> bool {
        match &self.model {
            Some(model) => model.suspended_at.is_some(),
            None => self.provider.suspended_at.is_some(),
        }
    }
}

impl Subject {
    /// The provider's slug, and the model's for a model.
    fn slugs(&self) -> (&ProviderSlug, Option<&str>) {
        match self {
            Subject::Provider(provider) => (provider, None),
            Subject::Model(provider, model) => (provider, Some(model.as_str())),
        }
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
            let model_slug = match &subject {
                Subject::Provider(_) => None,
                Subject::Model(_, model) => Some(model),
            };
            let found = Found::of(tx.conn(), &subject)?;
            let was_suspended = found.suspended();
            let Found { provider, model } = found;
            let (suspend, reason) = match &throw {
                Throw::Suspend { reason } => (true, Some(reason.clone())),
                Throw::Resume { reason } => (false, reason.clone()),
            };
            match (suspend, was_suspended) {
                (true, true) => {
                    return Err(SwitchError::AlreadySuspended(subject.audited().to_string()));
                }
                (false, false) => {
                    return Err(SwitchError::NotSuspended(subject.audited().to_string()));
                }
                _ => {}
            }
            tx.watch(&provider.id, model_slug)?;
            let mut notified: Vec<String> = Vec::new();
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
                    &tx.actor().id(),
                );
                crate::notify::enqueue_email(tx, &email, None)?;
                // And each integrator that asked about it lately, by itself.
                let (provider_slug, model_filter) = subject.slugs();
                let (_, integrators) =
                    crate::usage::impact(tx.conn(), provider_slug.as_str(), model_filter, now)?;
                for integrator in &integrators {
                    let Some(address) = &integrator.email else {
                        continue;
                    };
                    let email = crate::notify::messages::suspension_for_integrator(
                        &public_url,
                        address,
                        &subject.label(),
                        reason.as_deref().unwrap_or_default(),
                        integrator,
                    );
                    crate::notify::enqueue_email(tx, &email, None)?;
                    notified.push(integrator.sub.clone());
                }
            }
            let mut after = json!({"suspended": suspend, "reason": reason});
            if !notified.is_empty() {
                after["integrators_notified"] = json!(notified);
            }
            audit::append(
                tx,
                Change {
                    action: if suspend {
                        crate::audit::Action::StatusSuspended
                    } else {
                        crate::audit::Action::StatusResumed
                    },
                    subject: subject.audited(),
                    review_id: None,
                    before: Some(json!({"suspended": was_suspended})),
                    after: Some(after),
                },
            )?;
            Ok(())
        })
        .await?;
    Ok(clearances)
}
