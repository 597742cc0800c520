//! What vendor managers do with the intake, each one unit of work with its
//! audit events: start a review from a request (registering its provider
//! and model through the catalogue's service when they are new), or dismiss
//! a request with a reason. Both first write this instance's pending asks,
//! so that a request asked about a moment ago is found.

use chrono::{DateTime, Utc};

use super::{After, Intake, IntakeRequest, IntakeState, OverBound};
use crate::audit::{self, Actor, Change};
use crate::db::{Store, StoreError};
use crate::ids::{ModelId, ModelSlug, ProviderId, ProviderSlug};
use crate::providers::CatalogueError;
use crate::providers::service as catalogue;
use crate::providers::store::{self as catalogue_store, ModelRow, ProviderRow};
use crate::reviews::service::Reviews;
use crate::reviews::{NewReview, ReviewError, ReviewSummary};
use crate::unit::{Tx, UnitOfWork};

/// Why an intake request could not be acted on.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("nobody asked about `{0}/{1}`")]
    NotAsked(ProviderSlug, ModelSlug),
    #[error(transparent)]
    Review(#[from] ReviewError),
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for IntakeError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Store(StoreError::Query(error))
    }
}

/// This instance's pending asks, written now; if they cannot be, they are
/// kept for the next write and the caller goes on without them.
pub async fn flush(intake: &Intake, store: &Store, now: DateTime<Utc>) {
    if let Err(error) = intake.flush(store, now).await {
        tracing::warn!(%error, "cannot write the intake's asks; kept for the next try");
    }
}

/// A page of the requests in state `wanted` (all when none) after the
/// cursor `after`, and the askers past the bound as of `now`.
pub async fn requests(
    (intake, store): (&Intake, &Store),
    wanted: Option<IntakeState>,
    (after, limit): (Option<After>, u32),
    now: DateTime<Utc>,
) -> Result<(Vec<IntakeRequest>, Vec<OverBound>), StoreError> {
    flush(intake, store, now).await;
    store
        .run(move |conn| {
            let items = super::list(conn, wanted, None, (after.as_ref(), limit))?;
            let over_bound = super::over_bound(conn, now)?;
            Ok((items, over_bound))
        })
        .await
}

/// The request for `provider/model`, or why there is none.
fn asked(
    tx: &mut Tx<'_>,
    provider: &ProviderSlug,
    model: &ModelSlug,
) -> Result<IntakeRequest, IntakeError> {
    super::find(tx.conn(), provider, model)?
        .ok_or_else(|| IntakeError::NotAsked(provider.clone(), model.clone()))
}

/// Starts a review of the model of a request, registering its provider and
/// model when they are new; the request becomes `started`. `email` is the
/// starter's address, `workflow` the workflow's id (the default when none).
pub async fn start_review(
    (intake, work): (&Intake, &UnitOfWork),
    reviews: &Reviews,
    actor: Actor,
    email: Option<String>,
    (provider, model): (ProviderSlug, ModelSlug),
    workflow: Option<String>,
    now: DateTime<Utc>,
) -> Result<ReviewSummary, IntakeError> {
    flush(intake, work.store(), now).await;
    let reviews = reviews.clone();
    work.run(actor, now, move |tx| {
        asked(tx, &provider, &model)?;
        register(tx, &provider, &model)?;
        let input = NewReview {
            provider: Some(provider.to_string()),
            model: Some(model.to_string()),
            workflow,
        };
        let summary = reviews.start_in(tx, email, input)?;
        let (by, now) = (tx.actor().id(), tx.now());
        super::decide(
            tx.conn(),
            (&provider, &model),
            IntakeState::Started,
            None,
            Some(summary.id.as_ref()),
            (&by, now),
        )?;
        audit::append(
            tx,
            Change {
                action: crate::audit::Action::IntakeStarted,
                subject: audit::Subject::model(&provider, &model),
                review_id: Some(summary.id.as_ref()),
                before: None,
                after: Some(serde_json::json!({"review_id": summary.id})),
            },
        )?;
        Ok(summary)
    })
    .await
}

/// Dismisses a request with a (trimmed, non-empty) reason; it stays
/// listed, and later asks still count.
pub async fn dismiss(
    (intake, work): (&Intake, &UnitOfWork),
    actor: Actor,
    (provider, model): (ProviderSlug, ModelSlug),
    reason: String,
    now: DateTime<Utc>,
) -> Result<IntakeRequest, IntakeError> {
    flush(intake, work.store(), now).await;
    work.run(actor, now, move |tx| {
        let before = asked(tx, &provider, &model)?;
        let (by, now) = (tx.actor().id(), tx.now());
        super::decide(
            tx.conn(),
            (&provider, &model),
            IntakeState::Dismissed,
            Some(&reason),
            None,
            (&by, now),
        )?;
        audit::append(
            tx,
            Change {
                action: crate::audit::Action::IntakeDismissed,
                subject: audit::Subject::model(&provider, &model),
                review_id: None,
                before: Some(serde_json::json!({"state": before.state})),
                after: Some(serde_json::json!({"state": "dismissed", "reason": reason})),
            },
        )?;
        asked(tx, &provider, &model)
    })
    .await
}

/// Registers the provider and model when they are new, with their slugs as
/// names (a vendor manager renames them later).
fn register(
    tx: &mut Tx<'_>,
    provider: &ProviderSlug,
    model: &ModelSlug,
) -> Result<(), CatalogueError> {
    let now = tx.now();
    let provider_id = match catalogue_store::find_provider(tx.conn(), provider)? {
        Some(row) => row.id,
        None => {
            let row = ProviderRow::new(
                ProviderId::generate(),
                provider.clone(),
                provider.to_string(),
                now,
            );
            catalogue::add_provider(tx, &row)?;
            row.id
        }
    };
    if catalogue_store::find_model(tx.conn(), &provider_id, model)?.is_none() {
        let row = ModelRow::new(
            ModelId::generate(),
            provider_id,
            model.clone(),
            model.to_string(),
            now,
        );
        catalogue::add_model(tx, provider, &row)?;
    }
    Ok(())
}
