//! Database code of providers and models: rows, conversions, and the
//! transactions that change them together with their audit events.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::{
    Contact, Hosting, Modality, Model, ModelPatch, NewModel, NewProvider, Provider, ProviderPatch,
};
use crate::audit::{self, Actor, Change};
use crate::db::{DbConnection, PageRequest, StoreError};
use crate::schema::{models, providers};
use crate::status::derive::Status;

/// Why a catalogue change or lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("no provider `{0}`")]
    ProviderNotFound(String),
    #[error("no model `{0}/{1}`")]
    ModelNotFound(String, String),
    #[error("{0} already exists")]
    Duplicate(String),
    #[error("{what} has changed since revision {expected} (now {actual}); reload it and try again")]
    Stale {
        what: String,
        expected: i64,
        actual: i64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<DieselError> for CatalogueError {
    fn from(error: DieselError) -> Self {
        Self::Store(StoreError::Query(error))
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = providers)]
#[diesel(treat_none_as_null = true)]
pub struct ProviderRow {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub website: Option<String>,
    pub contacts: String,
    pub notes: Option<String>,
    pub suspended_at: Option<NaiveDateTime>,
    pub suspended_reason: Option<String>,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = models)]
#[diesel(treat_none_as_null = true)]
pub struct ModelRow {
    pub id: String,
    pub provider_id: String,
    pub slug: String,
    pub name: String,
    pub model_version: Option<String>,
    pub modality: Option<String>,
    pub hosting: Option<String>,
    pub description: Option<String>,
    pub suspended_at: Option<NaiveDateTime>,
    pub suspended_reason: Option<String>,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

fn utc(at: NaiveDateTime) -> DateTime<Utc> {
    at.and_utc()
}

impl ProviderRow {
    pub fn into_provider(self) -> Provider {
        Provider {
            contacts: serde_json::from_str(&self.contacts).unwrap_or_default(),
            slug: self.slug,
            name: self.name,
            website: self.website,
            notes: self.notes,
            suspended: self.suspended_at.is_some(),
            created_at: utc(self.created_at),
            updated_at: utc(self.updated_at),
            revision: self.version,
        }
    }
}

impl ModelRow {
    pub fn into_model(self, provider: &str) -> Model {
        Model {
            provider: provider.to_owned(),
            slug: self.slug,
            name: self.name,
            version: self.model_version,
            modality: self.modality.as_deref().and_then(Modality::parse),
            hosting: self.hosting.as_deref().and_then(Hosting::parse),
            description: self.description,
            suspended: self.suspended_at.is_some(),
            created_at: utc(self.created_at),
            updated_at: utc(self.updated_at),
            revision: self.version,
        }
    }
}

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

fn contacts_json(contacts: &[Contact]) -> String {
    serde_json::to_string(contacts).unwrap_or_else(|_| "[]".into())
}

fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

pub fn find_provider(conn: &mut DbConnection, slug: &str) -> Result<ProviderRow, CatalogueError> {
    providers::table
        .filter(providers::slug.eq(slug))
        .select(ProviderRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| CatalogueError::ProviderNotFound(slug.to_owned()))
}

pub fn find_model(
    conn: &mut DbConnection,
    provider: &str,
    model: &str,
) -> Result<(ProviderRow, ModelRow), CatalogueError> {
    let provider_row = find_provider(conn, provider)?;
    let model_row = models::table
        .filter(models::provider_id.eq(&provider_row.id))
        .filter(models::slug.eq(model))
        .select(ModelRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| CatalogueError::ModelNotFound(provider.to_owned(), model.to_owned()))?;
    Ok((provider_row, model_row))
}

pub fn list_providers(
    conn: &mut DbConnection,
    page: &PageRequest,
) -> Result<Vec<Provider>, CatalogueError> {
    let mut query = providers::table
        .select(ProviderRow::as_select())
        .order(providers::slug.asc())
        .limit(i64::from(page.limit) + 1)
        .into_boxed();
    if let Some(after) = &page.after {
        query = query.filter(providers::slug.gt(after.clone()));
    }
    Ok(query
        .load(conn)?
        .into_iter()
        .map(ProviderRow::into_provider)
        .collect())
}

pub fn list_models(
    conn: &mut DbConnection,
    provider: &str,
    page: &PageRequest,
) -> Result<Vec<Model>, CatalogueError> {
    let provider_row = find_provider(conn, provider)?;
    let mut query = models::table
        .filter(models::provider_id.eq(provider_row.id))
        .select(ModelRow::as_select())
        .order(models::slug.asc())
        .limit(i64::from(page.limit) + 1)
        .into_boxed();
    if let Some(after) = &page.after {
        query = query.filter(models::slug.gt(after.clone()));
    }
    Ok(query
        .load(conn)?
        .into_iter()
        .map(|m| m.into_model(provider))
        .collect())
}

/// Inserts a provider and its audit event. Runs inside a write transaction.
pub fn create_provider(
    conn: &mut DbConnection,
    actor: &Actor,
    input: NewProvider,
    now: DateTime<Utc>,
) -> Result<Provider, CatalogueError> {
    let slug = input.slug.unwrap_or_default();
    let row = ProviderRow {
        id: uuid::Uuid::now_v7().to_string(),
        slug: slug.clone(),
        name: input.name.unwrap_or_default().trim().to_owned(),
        website: input.website,
        contacts: contacts_json(&input.contacts),
        notes: input.notes,
        suspended_at: None,
        suspended_reason: None,
        version: 1,
        created_at: now.naive_utc(),
        updated_at: now.naive_utc(),
    };
    diesel::insert_into(providers::table)
        .values(&row)
        .execute(conn)
        .map_err(|e| duplicate_or(e, format!("provider `{slug}`")))?;
    let provider = row.into_provider();
    audit::append(
        conn,
        actor,
        Change {
            action: "provider.created",
            subject: format!("provider/{slug}"),
            review_id: None,
            before: None,
            after: Some(to_json(&provider)),
        },
        now,
    )?;
    Ok(provider)
}

/// Applies a patch when `expected` (from `If-Match`) is current.
pub fn update_provider(
    conn: &mut DbConnection,
    actor: &Actor,
    slug: &str,
    patch: ProviderPatch,
    expected: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Provider, CatalogueError> {
    let before = find_provider(conn, slug)?;
    check_revision(format!("provider `{slug}`"), expected, before.version)?;
    let mut after = before.clone();
    if let Some(name) = patch.name {
        after.name = name.trim().to_owned();
    }
    if let Some(website) = patch.website {
        after.website = website;
    }
    if let Some(contacts) = patch.contacts {
        after.contacts = contacts_json(&contacts);
    }
    if let Some(notes) = patch.notes {
        after.notes = notes;
    }
    after.version += 1;
    after.updated_at = now.naive_utc();
    diesel::update(providers::table.filter(providers::id.eq(&before.id)))
        .set(&after)
        .execute(conn)?;
    let (before, after) = (before.into_provider(), after.into_provider());
    audit::append(
        conn,
        actor,
        Change {
            action: "provider.updated",
            subject: format!("provider/{slug}"),
            review_id: None,
            before: Some(to_json(&before)),
            after: Some(to_json(&after)),
        },
        now,
    )?;
    Ok(after)
}

/// Inserts a model of an existing provider, with its audit event.
pub fn create_model(
    conn: &mut DbConnection,
    actor: &Actor,
    provider: &str,
    input: NewModel,
    now: DateTime<Utc>,
) -> Result<Model, CatalogueError> {
    let provider_row = find_provider(conn, provider)?;
    let provider_id = provider_row.id;
    let slug = input.slug.unwrap_or_default();
    let row = ModelRow {
        id: uuid::Uuid::now_v7().to_string(),
        provider_id: provider_id.clone(),
        slug: slug.clone(),
        name: input.name.unwrap_or_default().trim().to_owned(),
        model_version: input.version,
        modality: input.modality.map(|m| m.as_str().to_owned()),
        hosting: input.hosting.map(|h| h.as_str().to_owned()),
        description: input.description,
        suspended_at: None,
        suspended_reason: None,
        version: 1,
        created_at: now.naive_utc(),
        updated_at: now.naive_utc(),
    };
    diesel::insert_into(models::table)
        .values(&row)
        .execute(conn)
        .map_err(|e| duplicate_or(e, format!("model `{provider}/{slug}`")))?;
    // A provider-wide review, decision or suspension covers the new model
    // from the start: announced, it reaches the snapshots and the webhooks.
    let mut clearance = crate::status::store::statuses_of(conn, &provider_id, Some(&slug), now)?;
    if clearance.iter().any(|c| c.status != Status::NotReviewed) {
        crate::status::store::announce_changes(conn, &[], &mut clearance, now)?;
    }
    let model = row.into_model(provider);
    audit::append(
        conn,
        actor,
        Change {
            action: "model.created",
            subject: format!("model/{provider}/{slug}"),
            review_id: None,
            before: None,
            after: Some(to_json(&model)),
        },
        now,
    )?;
    Ok(model)
}

pub fn update_model(
    conn: &mut DbConnection,
    actor: &Actor,
    provider: &str,
    slug: &str,
    patch: ModelPatch,
    expected: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Model, CatalogueError> {
    let (_, before) = find_model(conn, provider, slug)?;
    check_revision(
        format!("model `{provider}/{slug}`"),
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
        after.modality = modality.map(|m| m.as_str().to_owned());
    }
    if let Some(hosting) = patch.hosting {
        after.hosting = hosting.map(|h| h.as_str().to_owned());
    }
    if let Some(description) = patch.description {
        after.description = description;
    }
    after.version += 1;
    after.updated_at = now.naive_utc();
    diesel::update(models::table.filter(models::id.eq(&before.id)))
        .set(&after)
        .execute(conn)?;
    let (before, after) = (before.into_model(provider), after.into_model(provider));
    audit::append(
        conn,
        actor,
        Change {
            action: "model.updated",
            subject: format!("model/{provider}/{slug}"),
            review_id: None,
            before: Some(to_json(&before)),
            after: Some(to_json(&after)),
        },
        now,
    )?;
    Ok(after)
}
