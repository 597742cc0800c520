//! `GET /v1/evidence`: what happened to reviews over a period, for an
//! auditor's or a management review's report. Counts come from grouped
//! queries, so the summary costs the same however many reviews there are.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::dsl::{count_star, exists};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::DbConnection;
use crate::schema::{audit_events, review_stages, reviews};
use crate::workflow::Tier;
use crate::workflow::engine::{ReviewState, StageState};

/// A count, in total and per risk tier (every tier present, zeros included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TierCounts {
    pub total: u64,
    #[schema(value_type = BTreeMap<String, u64>)]
    pub by_tier: BTreeMap<Tier, u64>,
}

impl Default for TierCounts {
    fn default() -> Self {
        Self {
            total: 0,
            by_tier: Tier::ALL.iter().copied().map(|t| (t, 0)).collect(),
        }
    }
}

impl TierCounts {
    fn add(&mut self, tier: Tier, n: u64) {
        self.total += n;
        *self.by_tier.entry(tier).or_default() += n;
    }
}

/// Reviews that reached each outcome in the period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Outcomes {
    pub approved: TierCounts,
    pub approved_with_conditions: TierCounts,
    pub rejected: TierCounts,
    pub withdrawn: TierCounts,
}

/// Reviews decided in the period: in total, per tier, and per outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Decided {
    pub total: u64,
    #[schema(value_type = BTreeMap<String, u64>)]
    pub by_tier: BTreeMap<Tier, u64>,
    pub by_outcome: Outcomes,
}

impl Default for Decided {
    fn default() -> Self {
        let TierCounts { total, by_tier } = TierCounts::default();
        Self {
            total,
            by_tier,
            by_outcome: Outcomes::default(),
        }
    }
}

impl Decided {
    fn add(&mut self, outcome: ReviewState, tier: Tier, n: u64) {
        let counts = match outcome {
            ReviewState::Approved => &mut self.by_outcome.approved,
            ReviewState::ApprovedWithConditions => &mut self.by_outcome.approved_with_conditions,
            ReviewState::Rejected => &mut self.by_outcome.rejected,
            ReviewState::Withdrawn => &mut self.by_outcome.withdrawn,
            ReviewState::InProgress => return,
        };
        counts.add(tier, n);
        self.total += n;
        *self.by_tier.entry(tier).or_default() += n;
    }
}

/// `GET /v1/evidence`: reviews over a period `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PeriodSummary {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// When the summary was made; "overdue" and "expired" are as of then.
    pub generated_at: DateTime<Utc>,
    /// Reviews started in the period.
    pub started: TierCounts,
    /// Reviews that reached an outcome in the period.
    pub decided: Decided,
    /// Reviews in progress now with an open stage past its due time.
    pub overdue: TierCounts,
    /// Approvals whose `valid_until` falls in the period and has passed,
    /// without a later approval of the same subject before it.
    pub expired: TierCounts,
}

/// A tier as stored; an unknown value counts as the lowest tier rather than
/// vanishing from the totals.
fn tier(text: &str) -> Tier {
    Tier::parse(text).unwrap_or(Tier::Low)
}

/// Counts reviews over `[from, to)` as of `now`.
pub fn summarize(
    conn: &mut DbConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> QueryResult<PeriodSummary> {
    let (start, end) = (from.naive_utc(), to.naive_utc());

    let mut started = TierCounts::default();
    let rows: Vec<(String, i64)> = reviews::table
        .filter(reviews::created_at.ge(start))
        .filter(reviews::created_at.lt(end))
        .group_by(reviews::tier)
        .select((reviews::tier, count_star()))
        .load(conn)?;
    for (t, n) in rows {
        started.add(tier(&t), n.unsigned_abs());
    }

    let mut decided = Decided::default();
    let rows: Vec<(String, String, i64)> = reviews::table
        .filter(reviews::decided_at.ge(start))
        .filter(reviews::decided_at.lt(end))
        .group_by((reviews::state, reviews::tier))
        .select((reviews::state, reviews::tier, count_star()))
        .load(conn)?;
    for (state, t, n) in rows {
        if let Some(state) = ReviewState::parse(&state) {
            decided.add(state, tier(&t), n.unsigned_abs());
        }
    }
    // A withdrawal sets no decision time; the audit log records when it happened.
    let withdrawn_in_period = audit_events::table
        .filter(audit_events::action.eq(crate::audit::Action::ReviewWithdrawn.as_str()))
        .filter(audit_events::occurred_at.ge(start))
        .filter(audit_events::occurred_at.lt(end))
        .select(audit_events::review_id);
    let rows: Vec<(String, i64)> = reviews::table
        .filter(reviews::state.eq(ReviewState::Withdrawn.as_str()))
        .filter(reviews::id.nullable().eq_any(withdrawn_in_period))
        .group_by(reviews::tier)
        .select((reviews::tier, count_star()))
        .load(conn)?;
    for (t, n) in rows {
        decided.add(ReviewState::Withdrawn, tier(&t), n.unsigned_abs());
    }

    let mut overdue = TierCounts::default();
    let open = [
        StageState::AwaitingAnswers.as_str(),
        StageState::InReview.as_str(),
    ];
    let rows: Vec<(String, i64)> = reviews::table
        .filter(reviews::state.eq(ReviewState::InProgress.as_str()))
        .filter(exists(
            review_stages::table
                .filter(review_stages::review_id.eq(reviews::id))
                .filter(review_stages::state.eq_any(open))
                .filter(review_stages::due_at.lt(now.naive_utc())),
        ))
        .group_by(reviews::tier)
        .select((reviews::tier, count_star()))
        .load(conn)?;
    for (t, n) in rows {
        overdue.add(tier(&t), n.unsigned_abs());
    }

    let expired = expired(conn, start, end.min(now.naive_utc()))?;

    Ok(PeriodSummary {
        from,
        to,
        generated_at: now,
        started,
        decided,
        overdue,
        expired,
    })
}

type Approval = (
    String,
    String,
    Option<String>,
    String,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
);

/// Approvals whose validity ended in `[start, end)` with no later approval
/// of the same subject decided before that end (a timely re-review renews a
/// clearance; it does not let it expire).
fn expired(
    conn: &mut DbConnection,
    start: NaiveDateTime,
    end: NaiveDateTime,
) -> QueryResult<TierCounts> {
    let mut counts = TierCounts::default();
    if end <= start {
        return Ok(counts);
    }
    let approved = [
        ReviewState::Approved.as_str(),
        ReviewState::ApprovedWithConditions.as_str(),
    ];
    // The columns of an [`Approval`].
    let approval = (
        reviews::id,
        reviews::provider_id,
        reviews::model_id,
        reviews::tier,
        reviews::decided_at,
        reviews::valid_until,
    );
    let lapsed: Vec<Approval> = reviews::table
        .filter(reviews::state.eq_any(approved))
        .filter(reviews::valid_until.ge(start))
        .filter(reviews::valid_until.lt(end))
        .select(approval)
        .load(conn)?;
    if lapsed.is_empty() {
        return Ok(counts);
    }
    let providers: Vec<String> = lapsed
        .iter()
        .map(|a| a.1.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let others: Vec<Approval> = reviews::table
        .filter(reviews::state.eq_any(approved))
        .filter(reviews::provider_id.eq_any(providers))
        .select(approval)
        .load(conn)?;
    for (id, provider, model, t, decided_at, valid_until) in &lapsed {
        let renewed = others.iter().any(|other| {
            &other.0 != id
                && &other.1 == provider
                && &other.2 == model
                && other.4 > *decided_at
                && other.4 <= *valid_until
        });
        if !renewed {
            counts.add(tier(t), 1);
        }
    }
    Ok(counts)
}
