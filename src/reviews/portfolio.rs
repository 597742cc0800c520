//! The portfolio at a glance: reviews counted by state and tier, the
//! overdue ones, the approvals expiring soon (in 30, 60 and 90 days, and per
//! month for a year), and the decisions of the last weeks. Aggregated by the
//! database or over one list of approvals: no query per review.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, NaiveDateTime, TimeDelta, Utc};
use diesel::prelude::*;

use super::store::{self, OPEN_STATES};
use crate::db::DbConnection;
use crate::ids::{ModelSlug, ProviderSlug, ReviewId};
use crate::schema::{models, providers, review_stages, reviews};
use crate::workflow::Tier;
use crate::workflow::engine::ReviewState;

/// A decision of the last weeks.
#[derive(Debug, Clone, Queryable)]
pub struct RecentDecision {
    pub id: ReviewId,
    pub state: ReviewState,
    pub tier: Tier,
    pub decided_at: Option<NaiveDateTime>,
    pub provider: ProviderSlug,
    pub model: Option<ModelSlug>,
}

/// Approvals expiring in one month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Month {
    /// `2026-04`.
    pub month: String,
    pub expiring: usize,
}

#[derive(Debug, Clone)]
pub struct Portfolio {
    /// Reviews per state and tier.
    pub counts: BTreeMap<(String, Tier), i64>,
    /// Reviews in progress with an open stage past its due time.
    pub overdue: i64,
    /// Approvals in force that expire within 30, 60 and 90 days.
    pub expiring: [usize; 3],
    /// Approvals in force expiring in each of the next twelve months.
    pub by_month: Vec<Month>,
    pub recent: Vec<RecentDecision>,
}

/// The portfolio as of `now`.
pub fn portfolio(conn: &mut DbConnection, now: DateTime<Utc>) -> QueryResult<Portfolio> {
    let rows: Vec<(ReviewState, Tier, i64)> = reviews::table
        .group_by((reviews::state, reviews::tier))
        .select((reviews::state, reviews::tier, diesel::dsl::count_star()))
        .load(conn)?;
    let counts = rows
        .into_iter()
        .map(|(state, tier, n)| ((state.as_str().to_owned(), tier), n))
        .collect();
    let overdue = reviews::table
        .filter(reviews::state.eq(ReviewState::InProgress))
        // `IN` a list read once: a correlated `EXISTS` would search the
        // overdue stages again for every review in progress.
        .filter(
            reviews::id.eq_any(
                review_stages::table
                    .filter(review_stages::state.eq_any(OPEN_STATES))
                    .filter(review_stages::due_at.lt(now.naive_utc()))
                    .select(review_stages::review_id),
            ),
        )
        .count()
        .get_result(conn)?;

    // Approvals in force: the latest decision of their subject, not lapsed.
    let mut latest: HashMap<_, (Option<NaiveDateTime>, ReviewId)> = HashMap::new();
    for (id, provider, model, at) in store::decisions_by_subject(conn)? {
        let entry = latest.entry((provider, model)).or_insert((at, id.clone()));
        if (at, &id) > (entry.0, &entry.1) {
            *entry = (at, id);
        }
    }
    let mut expiring = [0; 3];
    let months: Vec<(i32, u32)> = (0..12)
        .map(|i| {
            let m0 = now.month0() + i;
            (now.year() + (m0 / 12) as i32, m0 % 12 + 1)
        })
        .collect();
    let mut by_month = vec![0usize; 12];
    for approval in store::approvals_with_expiry(conn)? {
        let subject = (approval.provider_id.clone(), approval.model_id.clone());
        if latest
            .get(&subject)
            .is_none_or(|(_, id)| *id != approval.id)
        {
            continue;
        }
        let until = approval.valid_until.and_utc();
        if until <= now {
            continue;
        }
        for (slot, days) in [30, 60, 90].into_iter().enumerate() {
            if until <= now + TimeDelta::days(days) {
                expiring[slot] += 1;
            }
        }
        if let Some(index) = months
            .iter()
            .position(|(y, m)| *y == until.year() && *m == until.month())
        {
            by_month[index] += 1;
        }
    }
    let by_month = months
        .into_iter()
        .zip(by_month)
        .map(|((year, month), expiring)| Month {
            month: format!("{year}-{month:02}"),
            expiring,
        })
        .collect();
    let recent = reviews::table
        .inner_join(providers::table)
        .left_join(models::table.on(reviews::model_id.eq(models::id.nullable())))
        .filter(reviews::decided_at.ge((now - TimeDelta::days(30)).naive_utc()))
        .filter(reviews::state.ne(ReviewState::InProgress))
        .select((
            reviews::id,
            reviews::state,
            reviews::tier,
            reviews::decided_at,
            providers::slug,
            models::slug.nullable(),
        ))
        .order(reviews::decided_at.desc())
        .limit(15)
        .load(conn)?;
    Ok(Portfolio {
        counts,
        overdue,
        expiring,
        by_month,
        recent,
    })
}
