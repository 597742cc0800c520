//! The admin's emergency switch: suspend or resume a model, or every model
//! of a provider. One unit of work: the switch, its audit event, the notices
//! (a suspension to the vendor managers and the integrators that asked about
//! it lately; a resumption to everyone told of the suspension), and the
//! announcement of the clearances it moves.

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

    /// `acme` or `acme/m`: where its pages are.
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
            let switched = crate::notify::messages::Switched {
                slugs: &subject.label(),
                named: &crate::notify::messages::named(
                    &provider.name,
                    model.as_ref().map(|m| m.name.as_str()),
                ),
                suspended: suspend,
                reason: reason.as_deref(),
            };
            let notified = tell(tx, &subject, &switched, &mailboxes, &public_url, now)?;
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

/// Who is told of a throw of the switch: of a suspension, the vendor
/// managers (the admins when none is known) and each integrator that asked
/// about the subject lately, by itself; each is remembered
/// (`suspension_notices`), and told again when the subject is resumed
/// (with the vendor managers of the day). Answers the integrators told.
fn tell(
    tx: &mut crate::unit::Tx<'_>,
    subject: &Subject,
    switched: &crate::notify::messages::Switched<'_>,
    mailboxes: &BTreeMap<Role, Vec<String>>,
    public_url: &str,
    now: DateTime<Utc>,
) -> Result<Vec<String>, SwitchError> {
    use crate::notify::{self, messages};
    use crate::schema::suspension_notices as told;
    use diesel::prelude::*;

    let key = subject.audited().to_string();
    let by = tx.actor().id();
    let managers = crate::people::role_addresses(tx.conn(), Role::VendorManager, mailboxes)?;
    let mut staff = crate::people::or_admins(tx.conn(), managers, mailboxes)?.to;
    // Integrators to tell: `(sub, address, what they asked)`.
    let mut integrators: Vec<(String, String, Option<Integrator>)> = Vec::new();
    if switched.suspended {
        let (provider_slug, model_filter) = subject.slugs();
        let (_, asked) =
            crate::usage::impact(tx.conn(), provider_slug.as_str(), model_filter, now)?;
        for integrator in asked {
            if let Some(address) = integrator.email.clone() {
                integrators.push((integrator.sub.clone(), address, Some(integrator)));
            }
        }
    } else {
        let earlier: Vec<(String, String, Option<String>)> = told::table
            .filter(told::subject.eq(&key))
            .select((told::email, told::audience, told::sub))
            .load(tx.conn())?;
        for (address, audience, sub) in earlier {
            if audience == INTEGRATOR {
                integrators.push((sub.unwrap_or_default(), address, None));
            } else if !staff.iter().any(|a| a.eq_ignore_ascii_case(&address)) {
                staff.push(address);
            }
        }
        diesel::delete(told::table.filter(told::subject.eq(&key))).execute(tx.conn())?;
    }
    let mut remembered: Vec<(String, &str, Option<String>)> = Vec::new();
    let email = messages::switched(public_url, staff, switched, &by);
    for address in notify::enqueue(tx, &email, None)? {
        remembered.push((address, STAFF, None));
    }
    let mut notified = Vec::new();
    for (sub, address, integrator) in &integrators {
        let email =
            messages::switched_for_integrator(public_url, address, switched, integrator.as_ref());
        if notify::enqueue_email(tx, &email, None)? {
            remembered.push((address.clone(), INTEGRATOR, Some(sub.clone())));
            notified.push(sub.clone());
        }
    }
    if switched.suspended {
        diesel::delete(told::table.filter(told::subject.eq(&key))).execute(tx.conn())?;
        let mut seen = std::collections::BTreeSet::new();
        for (address, audience, sub) in remembered {
            if !seen.insert(address.to_lowercase()) {
                continue;
            }
            diesel::insert_into(told::table)
                .values((
                    told::subject.eq(&key),
                    told::email.eq(&address),
                    told::audience.eq(audience),
                    told::sub.eq(sub),
                    told::told_at.eq(now.naive_utc()),
                ))
                .execute(tx.conn())?;
        }
    }
    Ok(notified)
}

/// The audiences of `suspension_notices`.
const STAFF: &str = "staff";
const INTEGRATOR: &str = "integrator";
