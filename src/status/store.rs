//! Loading the facts every clearance is derived from, and the status version
//! counter that announces changes (with `NOTIFY` on PostgreSQL).

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::derive::{Decision, Facts};
use crate::db::DbConnection;
use crate::schema::{models, providers, reviews, status_version};
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

/// `(id, provider_id, slug, suspended_at, suspended_reason)` of a model.
type ModelFacts = (
    String,
    String,
    String,
    Option<NaiveDateTime>,
    Option<String>,
    i64,
);

type ReviewFacts = (
    String,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
);

/// Facts of every model (of one provider, when given): `(provider, model, facts)`.
pub fn load_facts(
    conn: &mut DbConnection,
    provider_id: Option<&str>,
) -> QueryResult<Vec<(String, String, Facts)>> {
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
        .filter(reviews::state.eq_any([
            ReviewState::Approved.as_str(),
            ReviewState::ApprovedWithConditions.as_str(),
            ReviewState::Rejected.as_str(),
        ]))
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
        .filter(reviews::state.eq(ReviewState::InProgress.as_str()))
        .select((reviews::id, reviews::provider_id, reviews::model_id))
        .into_boxed();
    if let Some(id) = provider_id {
        provider_query = provider_query.filter(providers::id.eq(id.to_owned()));
        model_query = model_query.filter(models::provider_id.eq(id.to_owned()));
        decided_query = decided_query.filter(reviews::provider_id.eq(id.to_owned()));
        open_query = open_query.filter(reviews::provider_id.eq(id.to_owned()));
    }
    let providers: Vec<(String, String, Option<NaiveDateTime>, Option<String>)> =
        provider_query.load(conn)?;
    let models: Vec<ModelFacts> = model_query.load(conn)?;
    let decided: Vec<ReviewFacts> = decided_query.load(conn)?;
    let open: Vec<(String, String, Option<String>)> = open_query.load(conn)?;

    // Latest decision per subject: model id, or provider id for provider-wide reviews.
    let mut latest_model: HashMap<String, Decision> = HashMap::new();
    let mut latest_provider: HashMap<String, Decision> = HashMap::new();
    for (id, provider, model, state, tier, conditions, decided_at, valid_until) in decided {
        let (Some(state), Some(decided_at)) = (ReviewState::parse(&state), decided_at) else {
            continue;
        };
        let decision = Decision {
            review_id: id,
            state,
            tier: Tier::parse(&tier).unwrap_or(Tier::Low),
            conditions: conditions.and_then(|c| serde_json::from_str(&c).ok()),
            decided_at: decided_at.and_utc(),
            valid_until: valid_until.map(|v| v.and_utc()),
        };
        match model {
            Some(model) => latest_model.insert(model, decision),
            None => latest_provider.insert(provider, decision),
        };
    }
    let mut open_model: HashMap<String, String> = HashMap::new();
    let mut open_provider: HashMap<String, String> = HashMap::new();
    for (id, provider, model) in open {
        match model {
            Some(model) => open_model.insert(model, id),
            None => open_provider.insert(provider, id),
        };
    }
    let provider_info: HashMap<String, (String, Option<String>)> = providers
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
    provider_id: &str,
    model: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> QueryResult<Vec<super::Clearance>> {
    Ok(load_facts(conn, Some(provider_id))?
        .into_iter()
        .filter(|(_, slug, _)| model.is_none_or(|m| m == slug))
        .map(|(provider, model, facts)| super::derive::derive(&provider, &model, &facts, now))
        .collect())
}

/// Announces, inside the changing transaction, every clearance that changed
/// (one missing from `before` is new, and so changed): bumps the status
/// version, records it as the version of each changed model (in the database
/// and in `after`), and queues a `status.changed` webhook delivery per
/// subscription and changed model. Returns how many models changed.
pub fn announce_changes(
    conn: &mut DbConnection,
    before: &[super::Clearance],
    after: &mut [super::Clearance],
    now: chrono::DateTime<chrono::Utc>,
) -> QueryResult<usize> {
    bump_version(conn)?;
    let version = version(conn)?;
    let mut changed = 0;
    for current in after.iter_mut() {
        let previous = before
            .iter()
            .find(|b| b.provider == current.provider && b.model == current.model);
        if previous == Some(&*current) {
            continue;
        }
        changed += 1;
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
        .execute(conn)?;
        let body = serde_json::json!({
            "event": "status.changed",
            "occurred_at": now,
            "provider": current.provider,
            "model": current.model,
            "previous_status": previous.map(|p| p.status),
            "clearance": current,
        });
        crate::webhooks::enqueue(conn, "status.changed", &body, now)?;
    }
    Ok(changed)
}
