//! Database code of providers and models: their rows, the conversions to
//! the catalogue's types, and the queries. Changes go through
//! [`super::service`], which writes them with their audit events.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::{Contact, Hosting, Modality, Model, Provider};
use crate::db::{DbConnection, Json, PageRequest};
use crate::ids::{ModelId, ModelSlug, ProviderId, ProviderSlug};
use crate::schema::{models, providers};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = providers)]
#[diesel(treat_none_as_null = true)]
pub struct ProviderRow {
    pub id: ProviderId,
    pub slug: ProviderSlug,
    pub name: String,
    pub website: Option<String>,
    pub contacts: Json<Vec<Contact>>,
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
    pub id: ModelId,
    pub provider_id: ProviderId,
    pub slug: ModelSlug,
    pub name: String,
    pub model_version: Option<String>,
    pub modality: Option<Modality>,
    pub hosting: Option<Hosting>,
    pub description: Option<String>,
    pub suspended_at: Option<NaiveDateTime>,
    pub suspended_reason: Option<String>,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl ProviderRow {
    /// A new provider with nothing but its name.
    pub fn new(id: ProviderId, slug: ProviderSlug, name: String, now: DateTime<Utc>) -> Self {
        Self {
            id,
            slug,
            name,
            website: None,
            contacts: Json::new(Vec::new()),
            notes: None,
            suspended_at: None,
            suspended_reason: None,
            version: 1,
            created_at: now.naive_utc(),
            updated_at: now.naive_utc(),
        }
    }

    pub fn to_provider(&self) -> Provider {
        Provider {
            slug: self.slug.clone(),
            name: self.name.clone(),
            website: self.website.clone(),
            contacts: self.contacts.get().clone(),
            notes: self.notes.clone(),
            suspended: self.suspended_at.is_some(),
            created_at: self.created_at.and_utc(),
            updated_at: self.updated_at.and_utc(),
            revision: self.version,
        }
    }
}

impl ModelRow {
    /// A new model with nothing but its name.
    pub fn new(
        id: ModelId,
        provider_id: ProviderId,
        slug: ModelSlug,
        name: String,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            provider_id,
            slug,
            name,
            model_version: None,
            modality: None,
            hosting: None,
            description: None,
            suspended_at: None,
            suspended_reason: None,
            version: 1,
            created_at: now.naive_utc(),
            updated_at: now.naive_utc(),
        }
    }

    pub fn to_model(&self, provider: &ProviderSlug) -> Model {
        Model {
            provider: provider.clone(),
            slug: self.slug.clone(),
            name: self.name.clone(),
            version: self.model_version.clone(),
            modality: self.modality,
            hosting: self.hosting,
            description: self.description.clone(),
            suspended: self.suspended_at.is_some(),
            created_at: self.created_at.and_utc(),
            updated_at: self.updated_at.and_utc(),
            revision: self.version,
        }
    }
}

pub fn find_provider(
    conn: &mut DbConnection,
    slug: &ProviderSlug,
) -> QueryResult<Option<ProviderRow>> {
    providers::table
        .filter(providers::slug.eq(slug))
        .select(ProviderRow::as_select())
        .first(conn)
        .optional()
}

pub fn find_model(
    conn: &mut DbConnection,
    provider: &ProviderId,
    slug: &ModelSlug,
) -> QueryResult<Option<ModelRow>> {
    models::table
        .filter(models::provider_id.eq(provider))
        .filter(models::slug.eq(slug))
        .select(ModelRow::as_select())
        .first(conn)
        .optional()
}

/// The slug of a provider's row.
pub fn provider_slug(conn: &mut DbConnection, id: &ProviderId) -> QueryResult<ProviderSlug> {
    providers::table
        .filter(providers::id.eq(id))
        .select(providers::slug)
        .first(conn)
}

/// The slug of a model's row.
pub fn model_slug(conn: &mut DbConnection, id: &ModelId) -> QueryResult<ModelSlug> {
    models::table
        .filter(models::id.eq(id))
        .select(models::slug)
        .first(conn)
}

/// A page of providers by slug; `page.after` is the last slug of the page before.
pub fn list_providers(
    conn: &mut DbConnection,
    page: &PageRequest,
) -> QueryResult<Vec<ProviderRow>> {
    let mut query = providers::table
        .select(ProviderRow::as_select())
        .order(providers::slug.asc())
        .limit(i64::from(page.limit) + 1)
        .into_boxed();
    if let Some(after) = &page.after {
        query = query.filter(providers::slug.gt(after.clone()));
    }
    query.load(conn)
}

/// A page of a provider's models by slug.
pub fn list_models(
    conn: &mut DbConnection,
    provider: &ProviderId,
    page: &PageRequest,
) -> QueryResult<Vec<ModelRow>> {
    let mut query = models::table
        .filter(models::provider_id.eq(provider.clone()))
        .select(ModelRow::as_select())
        .order(models::slug.asc())
        .limit(i64::from(page.limit) + 1)
        .into_boxed();
    if let Some(after) = &page.after {
        query = query.filter(models::slug.gt(after.clone()));
    }
    query.load(conn)
}

pub fn insert_provider(conn: &mut DbConnection, row: &ProviderRow) -> QueryResult<()> {
    diesel::insert_into(providers::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn update_provider(conn: &mut DbConnection, row: &ProviderRow) -> QueryResult<()> {
    diesel::update(providers::table.filter(providers::id.eq(&row.id)))
        .set(row)
        .execute(conn)
        .map(drop)
}

pub fn insert_model(conn: &mut DbConnection, row: &ModelRow) -> QueryResult<()> {
    diesel::insert_into(models::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn update_model(conn: &mut DbConnection, row: &ModelRow) -> QueryResult<()> {
    diesel::update(models::table.filter(models::id.eq(&row.id)))
        .set(row)
        .execute(conn)
        .map(drop)
}

/// Sets (`Some((since, reason))`) or lifts (`None`) the admin switch of a
/// model, or with `model = None` of the whole provider.
pub fn set_suspension(
    conn: &mut DbConnection,
    provider: &ProviderId,
    model: Option<&ModelId>,
    suspension: Option<(DateTime<Utc>, &str)>,
) -> QueryResult<()> {
    let (at, reason) = match suspension {
        Some((at, reason)) => (Some(at.naive_utc()), Some(reason)),
        None => (None, None),
    };
    match model {
        Some(model) => diesel::update(models::table.filter(models::id.eq(model)))
            .set((
                models::suspended_at.eq(at),
                models::suspended_reason.eq(reason),
            ))
            .execute(conn)?,
        None => diesel::update(providers::table.filter(providers::id.eq(provider)))
            .set((
                providers::suspended_at.eq(at),
                providers::suspended_reason.eq(reason),
            ))
            .execute(conn)?,
    };
    Ok(())
}

/// A page of providers whose slug or name contains `text` (any case), or
/// that have a model whose slug or name does; by slug.
pub fn search_providers(
    conn: &mut DbConnection,
    text: &str,
    page: &PageRequest,
) -> QueryResult<Vec<ProviderRow>> {
    let pattern = format!(
        "%{}%",
        text.to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let lower = diesel::dsl::sql::<diesel::sql_types::Text>("lower(providers.name)");
    let matching_models = models::table
        .filter(
            models::slug
                .like(pattern.clone())
                .escape('\\')
                .or(
                    diesel::dsl::sql::<diesel::sql_types::Text>("lower(models.name)")
                        .like(pattern.clone())
                        .escape('\\'),
                ),
        )
        .select(models::provider_id);
    let mut query = providers::table
        .filter(
            providers::slug
                .like(pattern.clone())
                .escape('\\')
                .or(lower.like(pattern).escape('\\'))
                .or(providers::id.eq_any(matching_models)),
        )
        .select(ProviderRow::as_select())
        .order(providers::slug.asc())
        .limit(i64::from(page.limit) + 1)
        .into_boxed();
    if let Some(after) = &page.after {
        query = query.filter(providers::slug.gt(after.clone()));
    }
    query.load(conn)
}

/// A model as lists name it.
#[derive(Debug, Clone, Queryable)]
pub struct ModelName {
    pub provider_id: ProviderId,
    pub slug: ModelSlug,
    pub name: String,
}

/// The names of the models of the given providers, by provider then slug.
pub fn model_names_of(
    conn: &mut DbConnection,
    providers: &[ProviderId],
) -> QueryResult<Vec<ModelName>> {
    models::table
        .filter(models::provider_id.eq_any(providers))
        .select((models::provider_id, models::slug, models::name))
        .order((models::provider_id.asc(), models::slug.asc()))
        .load(conn)
}

/// The models of the given providers, by provider then slug.
pub fn models_of(conn: &mut DbConnection, providers: &[ProviderId]) -> QueryResult<Vec<ModelRow>> {
    models::table
        .filter(models::provider_id.eq_any(providers))
        .select(ModelRow::as_select())
        .order((models::provider_id.asc(), models::slug.asc()))
        .load(conn)
}
