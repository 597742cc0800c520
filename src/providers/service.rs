//! Changes to the catalogue, each one unit of work with its audit event: a
//! provider or model registered or edited. A model registered under a
//! provider-wide review, approval or suspension is covered from the start,
//! and its clearance is announced like any other change.

use chrono::{DateTime, Utc};
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::store::{self, ModelRow, ProviderRow};
use super::{CatalogueError, Model, ModelPatch, NewModel, NewProvider, Provider, ProviderPatch};
use crate::audit::{self, Actor, Change};
use crate::db::{DbConnection, Json};
use crate::ids::{ModelId, ModelSlug, ProviderId, ProviderSlug};
use crate::unit::{Tx, UnitOfWork};
use crate::validation::FieldError;

fn duplicate_or(error: DieselError, what: String) -> CatalogueError {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            CatalogueError::Duplicate(what)
        }
        other => other.into(),
    }
}

fn check_revision(what: String, expected: Option<i64>, actual: i64) -> Result<(), CatalogueError> {
    match expected {
        Some(expected) if expected != actual => Err(CatalogueError::Stale {
            what,
            expected,
            actual,
        }),
        _ => Ok(()),
    }
}

/// The audit event of a catalogue change: what it was, and the entry
/// before (none when created) and after.
fn record<T: serde::Serialize>(
    tx: &mut Tx<'_>,
    action: audit::Action,
    subject: audit::Subject,
    before: Option<&T>,
    after: &T,
) -> diesel::QueryResult<()> {
    let json = |value: &T| serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
    audit::append(
        tx,
        Change {
            action,
            subject,
            review_id: None,
            before: before.map(json),
            after: Some(json(after)),
        },
    )
    .map(drop)
}

/// A slug the input's validation has already checked.
fn slug_of<T: std::str::FromStr>(field: &str, text: Option<String>) -> Result<T, CatalogueError> {
    let text = text.unwrap_or_default();
    text.parse().map_err(|_| {
        CatalogueError::Invalid(vec![FieldError::new(
            field,
            format!("`{text}` is not a slug"),
        )])
    })
}

/// The provider of `slug`, or why there is none.
pub fn provider(
    conn: &mut DbConnection,
    slug: &ProviderSlug,
) -> Result<ProviderRow, CatalogueError> {
    store::find_provider(conn, slug)?
        .ok_or_else(|| CatalogueError::ProviderNotFound(slug.to_string()))
}

/// The provider and model of `provider/model`, or why there is none.
pub fn model(
    conn: &mut DbConnection,
    provider_slug: &ProviderSlug,
    slug: &ModelSlug,
) -> Result<(ProviderRow, ModelRow), CatalogueError> {
    let provider = provider(conn, provider_slug)?;
    let model = store::find_model(conn, &provider.id, slug)?.ok_or_else(|| {
        CatalogueError::ModelNotFound(provider_slug.to_string(), slug.to_string())
    })?;
    Ok((provider, model))
}

/// Registers a provider (a validated [`NewProvider`]).
pub async fn create_provider(
    work: &UnitOfWork,
    actor: Actor,
    input: NewProvider,
    now: DateTime<Utc>,
) -> Result<Provider, CatalogueError> {
    let slug: ProviderSlug = slug_of("slug", input.slug)?;
    let row = ProviderRow {
        website: input.website,
        contacts: Json::new(input.contacts),
        notes: input.notes,
        ..ProviderRow::new(
            ProviderId::generate(),
            slug,
            input.name.unwrap_or_default().trim().to_owned(),
            now,
        )
    };
    work.run(actor, now, move |tx| add_provider(tx, &row)).await
}

/// Registers the provider of `row` within a unit of work, with its audit
/// event: the one way a provider comes to be, here or from the intake.
pub fn add_provider(tx: &mut Tx<'_>, row: &ProviderRow) -> Result<Provider, CatalogueError> {
    let slug = &row.slug;
    store::insert_provider(tx.conn(), row)
        .map_err(|e| duplicate_or(e, format!("provider `{slug}`")))?;
    let provider = row.to_provider();
    record(
        tx,
        audit::Action::ProviderCreated,
        audit::Subject::provider(slug),
        None,
        &provider,
    )?;
    Ok(provider)
}

/// Registers the model of `row` (of the provider `provider_slug`) within a
/// unit of work, with its audit event. A provider-wide review, decision or
/// suspension covers the new model, so its clearance is watched.
pub fn add_model(
    tx: &mut Tx<'_>,
    provider_slug: &ProviderSlug,
    row: &ModelRow,
) -> Result<Model, CatalogueError> {
    let slug = &row.slug;
    tx.watch(&row.provider_id, Some(slug))?;
    store::insert_model(tx.conn(), row)
        .map_err(|e| duplicate_or(e, format!("model `{provider_slug}/{slug}`")))?;
    let model = row.to_model(provider_slug);
    record(
        tx,
        audit::Action::ModelCreated,
        audit::Subject::model(provider_slug, slug),
        None,
        &model,
    )?;
    Ok(model)
}

/// Applies a patch when `expected` (from `If-Match`) is current.
pub async fn update_provider(
    work: &UnitOfWork,
    actor: Actor,
    slug: ProviderSlug,
    patch: ProviderPatch,
    expected: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Provider, CatalogueError> {
    work.run(actor, now, move |tx| {
        let before = provider(tx.conn(), &slug)?;
        check_revision(format!("provider `{slug}`"), expected, before.version)?;
        let mut after = before.clone();
        if let Some(name) = patch.name {
            after.name = name.trim().to_owned();
        }
        if let Some(website) = patch.website {
            after.website = website;
        }
        if let Some(contacts) = patch.contacts {
            after.contacts = Json::new(contacts);
        }
        if let Some(notes) = patch.notes {
            after.notes = notes;
        }
        after.version += 1;
        after.updated_at = now.naive_utc();
        store::update_provider(tx.conn(), &after)?;
        let (before, after) = (before.to_provider(), after.to_provider());
        record(
            tx,
            audit::Action::ProviderUpdated,
            audit::Subject::provider(&slug),
            Some(&before),
            &after,
        )?;
        Ok(after)
    })
    .await
}

/// Registers a model of an existing provider (a validated [`NewModel`]).
pub async fn create_model(
    work: &UnitOfWork,
    actor: Actor,
    provider_slug: ProviderSlug,
    input: NewModel,
    now: DateTime<Utc>,
) -> Result<Model, CatalogueError> {
    let slug: ModelSlug = slug_of("slug", input.slug)?;
    let name = input.name.unwrap_or_default().trim().to_owned();
    work.run(actor, now, move |tx| {
        let provider = provider(tx.conn(), &provider_slug)?;
        let row = ModelRow {
            model_version: input.version,
            modality: input.modality,
            hosting: input.hosting,
            description: input.description,
            ..ModelRow::new(ModelId::generate(), provider.id, slug, name, now)
        };
        add_model(tx, &provider_slug, &row)
    })
    .await
}

/// Applies a patch to a model when `expected` (from `If-Match`) is current.
pub async fn update_model(
    work: &UnitOfWork,
    actor: Actor,
    (provider_slug, slug): (ProviderSlug, ModelSlug),
    patch: ModelPatch,
    expected: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Model, CatalogueError> {
    work.run(actor, now, move |tx| {
        let (_, before) = model(tx.conn(), &provider_slug, &slug)?;
        check_revision(
            format!("model `{provider_slug}/{slug}`"),
            expected,
            before.version,
        )?;
        let mut after = before.clone();
        if let Some(name) = patch.name {
            after.name = name.trim().to_owned();
        }
        if let Some(version) = patch.version {
            after.model_version = version;
        }
        if let Some(modality) = patch.modality {
            after.modality = modality;
        }
        if let Some(hosting) = patch.hosting {
            after.hosting = hosting;
        }
        if let Some(description) = patch.description {
            after.description = description;
        }
        after.version += 1;
        after.updated_at = now.naive_utc();
        store::update_model(tx.conn(), &after)?;
        let (before, after) = (
            before.to_model(&provider_slug),
            after.to_model(&provider_slug),
        );
        record(
            tx,
            audit::Action::ModelUpdated,
            audit::Subject::model(&provider_slug, &slug),
            Some(&before),
            &after,
        )?;
        Ok(after)
    })
    .await
}
