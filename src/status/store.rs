//! Loading the facts every clearance is derived from, and the status version
//! counter that announces changes (with `NOTIFY` on PostgreSQL).

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::derive::{Decision, Facts};
use crate::conditions::Conditions;
use crate::db::{DbConnection, Json};
use crate::ids::{ModelId, ModelSlug, ProviderId, ProviderSlug, ReviewId};
use crate::schema::{models, providers, reviews, status_version};
use crate::unit::Tx;
use crate::workflow::Tier;
use crate::workflow::engine::ReviewState;

/// The channel instances listen on for status changes.
pub const CHANNEL: &str = "clearance_status";

/// The current status version.
pub fn version(conn: &mut DbConnection) -> QueryResult<i64> {
    status_version::table
        .filter(status_version::id.eq(1))
        .select(status_version::version)
        .first(conn)
}

/// Marks that published statuses changed, inside the changing transaction;
/// on PostgreSQL other instances are told on commit.
pub fn bump_version(conn: &mut DbConnection) -> QueryResult<()> {
    diesel::update(status_version::table.filter(status_version::id.eq(1)))
        .set(status_version::version.eq(status_version::version + 1))
        .execute(conn)?;
    if let DbConnection::Postgresql(pg) = conn {
        diesel::sql_query(format!("NOTIFY {CHANNEL}")).execute(pg)?;
    }
    Ok(())
}

/// `(id, provider_id, slug, suspended_at, suspended_reason, status_version)` of a model.
type ModelFacts = (
    ModelId,
    ProviderId,
    ModelSlug,
    Option<NaiveDateTime>,
    Option<String>,
    i64,
);

type ReviewFacts = (
    ReviewId,
    ProviderId,
    Option<ModelId>,
    ReviewState,
    Tier,
    Option<Json<Conditions>>,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
);

/// Facts of every model (of one provider, when given): `(provider, model, facts)`.
pub fn load_facts(
    conn: &mut DbConnection,
    provider_id: Option<&ProviderId>,
) -> QueryResult<Vec<(ProviderSlug, ModelSlug, Facts)>> {
    let mut provider_query = providers::table
        .select((
            providers::id,
            providers::slug,
            providers::suspended_at,
            providers::suspended_reason,
        ))
        .into_boxed();
    let mut model_query = models::table
        .select((
            models::id,
            models::provider_id,
            models::slug,
            models::suspended_at,
            models::suspended_reason,
            models::status_version,
        ))
        .into_boxed();
    let mut decided_query = reviews::table
        .filter(reviews::state.eq_any(ReviewState::DECIDED))
        .select((
            reviews::id,
            reviews::provider_id,
            reviews::model_id,
            reviews::state,
            reviews::tier,
            reviews::conditions,
            reviews::decided_at,
            reviews::valid_until,
        ))
        .order((reviews::decided_at.asc(), reviews::id.asc()))
        .into_boxed();
    let mut open_query = reviews::table
        .filter(reviews::state.eq(ReviewState::InProgress))
        .select((reviews::id, reviews::provider_id, reviews::model_id))
        .into_boxed();
    if let Some(id) = provider_id {
        provider_query = provider_query.filter(providers::id.eq(id.clone()));
        model_query = model_query.filter(models::provider_id.eq(id.clone()));
        decided_query = decided_query.filter(reviews::provider_id.eq(id.clone()));
        open_query = open_query.filter(reviews::provider_id.eq(id.clone()));
    }
    let providers: Vec<(
        ProviderId,
        ProviderSlug,
        Option<NaiveDateTime>,
        Option<String>,
    )> = provider_query.load(conn)?;
    let models: Vec<ModelFacts> = model_query.load(conn)?;
    let decided: Vec<ReviewFacts> = decided_query.load(conn)?;
    let open: Vec<(ReviewId, ProviderId, Option<ModelId>)> = open_query.load(conn)?;

    // Latest decision per subject: model id, or provider id for provider-wide reviews.
    let mut latest_model: HashMap<ModelId, Decision> = HashMap::new();
    let mut latest_provider: HashMap<ProviderId, Decision> = HashMap::new();
    for (id, provider, model, state, tier, conditions, decided_at, valid_until) in decided {
        // A decided review always has its time; one without is not a decision yet.
        let Some(decided_at) = decided_at else {
            continue;
        };
        let decision = Decision {
            review_id: id.into(),
            state,
            tier,
            conditions: conditions.map(Json::into_inner),
            decided_at: decided_at.and_utc(),
            valid_until: valid_until.map(|v| v.and_utc()),
        };
        match model {
            Some(model) => latest_model.insert(model, decision),
            None => latest_provider.insert(provider, decision),
        };
    }
    let mut open_model: HashMap<ModelId, String> = HashMap::new();
    let mut open_provider: HashMap<ProviderId, String> = HashMap::new();
    for (id, provider, model) in open {
        match model {
            Some(model) => open_model.insert(model, id.into()),
            None => open_provider.insert(provider, id.into()),
        };
    }
    let provider_info: HashMap<ProviderId, (ProviderSlug, Option<String>)> = providers
        .into_iter()
        .map(|(id, slug, suspended_at, reason)| {
            let suspended =
                suspended_at.map(|_| format!("provider suspended: {}", reason.unwrap_or_default()));
            (id, (slug, suspended))
        })
        .collect();

    let mut out = Vec::with_capacity(models.len());
    for (id, provider_id, slug, suspended_at, reason, version) in models {
        let Some((provider_slug, provider_suspended)) = provider_info.get(&provider_id) else {
            continue;
        };
        let suspended = match suspended_at {
            Some(_) => Some(reason.unwrap_or_default()),
            None => provider_suspended.clone(),
        };
        let facts = Facts {
            model_decision: latest_model.remove(&id),
            provider_decision: latest_provider.get(&provider_id).cloned(),
            review_in_progress: open_model
                .remove(&id)
                .or_else(|| open_provider.get(&provider_id).cloned()),
            suspended,
            version,
        };
        out.push((provider_slug.clone(), slug, facts));
    }
    Ok(out)
}

/// The clearances, as of `now`, of one model or of every model of a provider.
pub fn statuses_of(
    conn: &mut DbConnection,
    provider_id: &ProviderId,
    model: Option<&ModelSlug>,
    now: chrono::DateTime<chrono::Utc>,
) -> QueryResult<Vec<super::Clearance>> {
    Ok(load_facts(conn, Some(provider_id))?
        .into_iter()
        .filter(|(_, slug, _)| model.is_none_or(|m| m == slug))
        .map(|(provider, model, facts)| super::derive::derive(&provider, &model, &facts, now))
        .collect())
}

/// Announces, inside the changing transaction, every clearance that a
/// change moved: each pair is a model's clearance before the change (`None`
/// for a model the change created: it was `not_reviewed`) and after it. When
/// any moved, bumps the status version once, records it as the version of
/// each moved model (in the database and in its `after`), and queues a
/// `status.changed` webhook delivery per subscription and moved model.
/// Returns how many moved. Called by the unit of work only.
pub fn announce_changes(
    tx: &mut Tx<'_>,
    changes: &mut [(Option<super::Clearance>, super::Clearance)],
) -> QueryResult<usize> {
    let now = tx.now();
    let moved: Vec<usize> = changes
        .iter()
        .enumerate()
        .filter(|(_, (before, after))| match before {
            Some(before) => before != after,
            None => {
                let unknown = super::derive::derive(
                    &after.provider,
                    &after.model,
                    &super::derive::Facts::default(),
                    now,
                );
                unknown != *after
            }
        })
        .map(|(index, _)| index)
        .collect();
    if moved.is_empty() {
        return Ok(0);
    }
    bump_version(tx.conn())?;
    let version = version(tx.conn())?;
    for &index in &moved {
        let (previous, current) = &mut changes[index];
        current.version = version;
        let provider_ids = providers::table
            .filter(providers::slug.eq(&current.provider))
            .select(providers::id);
        diesel::update(
            models::table
                .filter(models::provider_id.eq_any(provider_ids))
                .filter(models::slug.eq(&current.model)),
        )
        .set(models::status_version.eq(version))
        .execute(tx.conn())?;
        let body = serde_json::json!({
            "event": "status.changed",
            "occurred_at": now,
            "provider": current.provider,
            "model": current.model,
            "previous_status": previous.as_ref().map(|p| p.status),
            "clearance": current,
        });
        crate::webhooks::enqueue(tx, "status.changed", &body)?;
    }
    Ok(moved.len())
}
