//! Review operations, each one unit of work (see [`crate::unit`]): load,
//! check `If-Match`, let the engine decide, save, and write the audit event
//! and the emails; the unit announces the clearances a decision moves.
//!
//! The `async` methods are the entry points for the API, the console and the
//! jobs; the `*_in` functions do the same work inside a change already in
//! progress (a job that opens a re-review and emails about it at once).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

pub use super::scope::Expected;
use super::store::{self, FindingRow, Loaded, ReviewRow};
use super::{
    FindingPatch, FindingState, FindingView, NewFinding, NewReview, ReviewDetail, ReviewError,
    ReviewSummary, StageView, views,
};
use crate::audit::{self, Actor, Change};
use crate::auth::{Role, TokenIssuer};
use crate::db::DbConnection;
use crate::ids::{
    FindingId, InvitationId, ModelId, ModelSlug, ProviderId, ProviderSlug, ReviewId, StageKey,
};
use crate::notify::messages;
use crate::unit::{Tx, UnitOfWork};
use crate::validation::FieldError;
use crate::workflow::Severity;
use crate::workflow::engine::{
    self, Action, Caller, Duty, Effect, Outcome, ReviewKind, ReviewState,
};
use crate::workflow::{Catalog, LoadedWorkflow};

/// The default workflow of `POST /v1/reviews`.
pub const DEFAULT_WORKFLOW: &str = "model-provider";
pub const DEFAULT_INVITATION_DAYS: i64 = 30;
pub const MAX_INVITATION_DAYS: i64 = 90;

/// The tier a re-review starts at, when not the previous review's: a
/// different tier needs a reason.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierChoice {
    /// Omit for the previous review's tier.
    pub tier: Option<crate::workflow::Tier>,
    /// Required when `tier` differs from the previous review's.
    pub reason: Option<String>,
}

/// Who changes which review, when, and against what they read of it.
#[derive(Debug, Clone)]
pub struct Call {
    pub review_id: ReviewId,
    pub expected: Option<Expected>,
    pub actor: Actor,
    pub email: Option<String>,
    pub now: DateTime<Utc>,
}

/// What review operations need besides the database.
#[derive(Clone)]
pub struct Reviews {
    pub work: UnitOfWork,
    pub catalog: Arc<Catalog>,
    pub tokens: Arc<TokenIssuer>,
    pub public_url: String,
    /// Who runs the reviews (`CLEARANCE_ORGANISATION`), for suppliers.
    pub organisation: Option<String>,
    /// The configured mailbox of each role (an admin's setting wins).
    pub mailboxes: Arc<BTreeMap<Role, Vec<String>>>,
    /// The regions and use cases conditions may name.
    pub vocabulary: Arc<crate::vocabulary::Vocabulary>,
}

impl std::fmt::Debug for Reviews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reviews")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

fn invalid(field: &str, message: String) -> ReviewError {
    ReviewError::Invalid(vec![FieldError::new(field, message)])
}

/// The row of a review the engine has just started.
fn new_review_row(
    (provider_id, model_id): (&ProviderId, Option<&ModelId>),
    workflow: &LoadedWorkflow,
    review: &engine::Review,
    started_by: &str,
    now: DateTime<Utc>,
) -> ReviewRow {
    ReviewRow {
        id: ReviewId::generate(),
        provider_id: provider_id.clone(),
        model_id: model_id.cloned(),
        kind: review.kind,
        workflow_id: workflow.workflow.id.clone(),
        workflow_version: workflow.workflow.version,
        workflow_digest: workflow.digest.clone(),
        state: review.state,
        tier: review.tier,
        tier_reason: review.tier_reason.clone(),
        started_by: started_by.to_owned(),
        previous_review_id: None,
        conditions: None,
        decided_at: None,
        valid_until: None,
        version: 1,
        created_at: now.naive_utc(),
        updated_at: now.naive_utc(),
        started_by_email: None,
        expired_at: None,
    }
}

/// Refuses a change made against a review that has changed since, in what
/// the change was made against.
fn check_version(
    loaded: &Loaded,
    expected: Option<&Expected>,
    now: DateTime<Utc>,
) -> Result<(), ReviewError> {
    let stale = match expected {
        None => false,
        Some(Expected::Version(version)) => *version != loaded.row.version,
        Some(Expected::Read { scope, token }) => {
            let review = loaded.engine_review();
            let answers = |key: &str| review.stage(key).map(|s| s.answers.clone());
            scope.token(&loaded.summary(now), answers).as_deref() != Some(token.as_str())
        }
    };
    if stale {
        let expected = match expected {
            Some(Expected::Version(version)) => *version,
            _ => 0,
        };
        return Err(ReviewError::Stale {
            expected,
            actual: loaded.row.version,
        });
    }
    Ok(())
}

impl Reviews {
    pub(crate) fn context<'a>(
        &'a self,
        loaded: &'a Loaded,
        subject: &'a str,
    ) -> messages::ReviewContext<'a> {
        messages::ReviewContext {
            review_id: loaded.row.id.as_str(),
            subject,
            workflow_title: &loaded.workflow.workflow.title,
            public_url: &self.public_url,
            organisation: self.organisation.as_deref(),
        }
    }

    /// Loads the review a call changes and checks its `If-Match`.
    pub(super) fn load_for(
        &self,
        conn: &mut DbConnection,
        call: &Call,
    ) -> Result<Loaded, ReviewError> {
        let loaded = store::load(conn, &self.catalog, &call.review_id)?;
        check_version(&loaded, call.expected.as_ref(), call.now)?;
        Ok(loaded)
    }

    /// Starts a review of a provider or one of its models.
    pub async fn start(
        &self,
        actor: Actor,
        email: Option<String>,
        input: NewReview,
        now: DateTime<Utc>,
    ) -> Result<ReviewSummary, ReviewError> {
        let reviews = self.clone();
        self.work
            .run(actor, now, move |tx| reviews.start_in(tx, email, input))
            .await
    }

    pub(crate) fn start_in(
        &self,
        tx: &mut Tx<'_>,
        email: Option<String>,
        input: NewReview,
    ) -> Result<ReviewSummary, ReviewError> {
        let now = tx.now();
        let provider_text = input.provider.unwrap_or_default();
        let no_provider = || invalid("provider", format!("no provider `{provider_text}`"));
        let provider_slug = ProviderSlug::parse(&provider_text).map_err(|_| no_provider())?;
        let provider = crate::providers::store::find_provider(tx.conn(), &provider_slug)?
            .ok_or_else(no_provider)?;
        let model = match &input.model {
            Some(text) => {
                let no_model = || {
                    invalid(
                        "model",
                        format!("no model `{text}` of provider `{provider_slug}`"),
                    )
                };
                let slug = ModelSlug::parse(text).map_err(|_| no_model())?;
                Some(
                    crate::providers::store::find_model(tx.conn(), &provider.id, &slug)?
                        .ok_or_else(no_model)?,
                )
            }
            None => None,
        };
        let workflow_id = input.workflow.as_deref().unwrap_or(DEFAULT_WORKFLOW);
        let workflow = self.catalog.get(workflow_id).ok_or_else(|| {
            let known: Vec<_> = self.catalog.all().map(|w| w.workflow.id.clone()).collect();
            invalid(
                "workflow",
                format!("no workflow `{workflow_id}` (known: {})", known.join(", ")),
            )
        })?;
        if let Some(open) =
            store::open_review_of(tx.conn(), &provider.id, model.as_ref().map(|m| &m.id))?
        {
            return Err(ReviewError::Conflict(format!(
                "a review of this subject is already in progress: {open}"
            )));
        }
        tx.watch(&provider.id, model.as_ref().map(|m| &m.slug))?;
        store::pin_workflow(tx.conn(), &workflow, now)?;
        let actor_id = tx.actor().id();
        let outcome = engine::start(&workflow.workflow, ReviewKind::Initial, &actor_id, now);
        let review = &outcome.review;
        let row = ReviewRow {
            started_by_email: email,
            ..new_review_row(
                (&provider.id, model.as_ref().map(|m| &m.id)),
                &workflow,
                review,
                &actor_id,
                now,
            )
        };
        store::insert(tx.conn(), &row, review, now)?;
        let loaded = store::load(tx.conn(), &self.catalog, &row.id)?;
        audit::append(
            tx,
            Change::review(crate::audit::Action::ReviewStarted, &row.id).after(json!({
                    "subject": loaded.subject(),
                    "workflow": {"id": workflow.workflow.id, "version": workflow.workflow.version, "digest": workflow.digest},
                    "state": review.state,
                    "tier": review.tier,
                })),
        )?;
        Ok(loaded.summary(now))
    }

    /// Opens a re-review of an approved review now, at the previous tier
    /// or at another one given with a reason.
    pub async fn re_review(
        &self,
        previous: ReviewId,
        actor: Actor,
        now: DateTime<Utc>,
        tier: Option<TierChoice>,
    ) -> Result<ReviewSummary, ReviewError> {
        // The reason is one line, checked before the review is read.
        let reason = tier.as_ref().and_then(|t| t.reason.as_deref());
        if let Some(message) = reason.and_then(crate::validation::line_fault) {
            let error = crate::validation::FieldError::new("reason", message);
            return Err(ReviewError::Invalid(vec![error]));
        }
        let reviews = self.clone();
        self.work
            .run(actor, now, move |tx| {
                reviews.re_review_in(tx, &previous, tier.as_ref())
            })
            .await
    }

    /// Opens a re-review of the subject of an approved review, on the
    /// workflow's current version, with the previous answers carried forward
    /// (marked as such), at the previous review's tier (another needs a
    /// reason) and with each stage assigned as it was last time. Refused
    /// while another review of the subject is open.
    pub fn re_review_in(
        &self,
        tx: &mut Tx<'_>,
        previous_id: &ReviewId,
        tier: Option<&TierChoice>,
    ) -> Result<ReviewSummary, ReviewError> {
        let now = tx.now();
        let previous = store::load(tx.conn(), &self.catalog, previous_id)?;
        let approved = matches!(
            previous.row.state,
            ReviewState::Approved | ReviewState::ApprovedWithConditions
        );
        if !approved {
            return Err(ReviewError::Conflict(format!(
                "review {previous_id} is `{}`; only an approval is re-reviewed",
                previous.row.state
            )));
        }
        if let Some(open) = store::open_review_of(
            tx.conn(),
            &previous.row.provider_id,
            previous.row.model_id.as_ref(),
        )? {
            return Err(ReviewError::Conflict(format!(
                "a review of this subject is already in progress: {open}"
            )));
        }
        tx.watch(&previous.row.provider_id, previous.model.as_ref())?;
        // The workflow as it is now; if it was removed, the one the approval followed.
        let workflow = self
            .catalog
            .get(&previous.row.workflow_id)
            .unwrap_or_else(|| previous.workflow.clone());
        store::pin_workflow(tx.conn(), &workflow, now)?;
        let (tier, tier_reason) = match tier {
            Some(TierChoice {
                tier: Some(tier),
                reason,
            }) if *tier != previous.row.tier => {
                let reason = reason.as_deref().map(str::trim).unwrap_or_default();
                if reason.is_empty() {
                    return Err(invalid(
                        "reason",
                        format!(
                            "is required to start at `{tier}` when the previous review ended at `{}`",
                            previous.row.tier
                        ),
                    ));
                }
                (*tier, reason.to_owned())
            }
            _ => (
                previous.row.tier,
                format!("the tier of the previous review, {}", previous.row.id),
            ),
        };
        let actor_id = tx.actor().id();
        let mut outcome = engine::start_at(
            &workflow.workflow,
            ReviewKind::ReReview,
            &actor_id,
            now,
            tier,
            Some(tier_reason),
        );
        for stage in &mut outcome.review.stages {
            if let Some(was) = previous.stages.iter().find(|s| s.stage_key == stage.key) {
                stage.answer_assignee = was.answer_assignee.clone();
                stage.decide_assignee = was.decide_assignee.clone();
            }
        }
        let assignees: BTreeMap<&str, serde_json::Value> = outcome
            .review
            .stages
            .iter()
            .map(|s| {
                let who = json!({"answer": s.answer_assignee, "decide": s.decide_assignee});
                (s.key.as_str(), who)
            })
            .collect();
        let row = ReviewRow {
            previous_review_id: Some(previous.row.id.clone()),
            started_by_email: previous.row.started_by_email.clone(),
            ..new_review_row(
                (&previous.row.provider_id, previous.row.model_id.as_ref()),
                &workflow,
                &outcome.review,
                &actor_id,
                now,
            )
        };
        store::insert(tx.conn(), &row, &outcome.review, now)?;
        let carried = store::carry_forward(tx.conn(), &previous, &row.id, &workflow.workflow, now)?;
        let loaded = store::load(tx.conn(), &self.catalog, &row.id)?;
        audit::append(
            tx,
            Change::review(crate::audit::Action::ReviewReReviewStarted, &row.id).after(json!({
                    "subject": loaded.subject(),
                    "previous_review": previous.row.id,
                    "workflow": {"id": workflow.workflow.id, "version": workflow.workflow.version, "digest": workflow.digest},
                    "answers_carried_forward": carried,
                    "tier": outcome.review.tier,
                    "tier_reason": outcome.review.tier_reason,
                    "assignees": assignees,
                })),
        )?;
        Ok(loaded.summary(now))
    }

    /// Applies an engine action to a review; answers the review as saved.
    pub async fn act(
        &self,
        call: Call,
        caller: Caller,
        action: Action,
    ) -> Result<Loaded, ReviewError> {
        let reviews = self.clone();
        let (actor, now) = (call.actor.clone(), call.now);
        self.work
            .run(actor, now, move |tx| {
                reviews.act_in(tx, &call, &caller, action)
            })
            .await
    }

    fn act_in(
        &self,
        tx: &mut Tx<'_>,
        call: &Call,
        caller: &Caller,
        action: Action,
    ) -> Result<Loaded, ReviewError> {
        let now = tx.now();
        let action = self.normalized(action)?;
        let loaded = self.load_for(tx.conn(), call)?;
        if let Caller::Respondent { id, stage } = caller {
            check_invitation(tx.conn(), &loaded, id, stage, now)?;
        }
        let action = resolve_assignment(tx.conn(), &loaded, action)?;
        let before = loaded.engine_review();
        let outcome = engine::apply(&loaded.workflow.workflow, &before, &action, caller, now)?;
        let approves = outcome.effects.iter().any(|e| {
            matches!(
                e,
                Effect::ReviewDecided {
                    state: ReviewState::Approved | ReviewState::ApprovedWithConditions
                }
            )
        });
        if approves && !loaded.workflow.workflow.approve_with_unowned_findings {
            check_findings_owned(&loaded, &outcome)?;
        }
        tx.watch(&loaded.row.provider_id, loaded.model.as_ref())?;
        store::save(
            tx.conn(),
            &loaded,
            &outcome.review,
            &outcome.effects,
            caller.id(),
            call.email.as_deref(),
            now,
        )?;
        audit::append(
            tx,
            action_change(&loaded.row.id, &action, &before, &outcome),
        )?;
        self.tell(tx, &loaded, &before, &outcome, caller)?;
        store::load(tx.conn(), &self.catalog, &call.review_id)
    }

    /// The action with its conditions' codes in lower case, or a 422
    /// naming each region or use case outside the vocabulary.
    fn normalized(&self, action: Action) -> Result<Action, ReviewError> {
        match action {
            Action::Decide {
                stage,
                decision,
                comment,
                conditions: Some(conditions),
            } => {
                let conditions = self
                    .vocabulary
                    .conditions("conditions", &conditions)
                    .map_err(ReviewError::Invalid)?;
                Ok(Action::Decide {
                    stage,
                    decision,
                    comment,
                    conditions: Some(conditions),
                })
            }
            other => Ok(other),
        }
    }

    /// Revokes an invitation: its link stops working at once.
    pub async fn revoke_invitation(
        &self,
        call: Call,
        invitation: String,
    ) -> Result<(), ReviewError> {
        let reviews = self.clone();
        let (actor, now) = (call.actor.clone(), call.now);
        self.work
            .run(actor, now, move |tx| {
                let not_found = || ReviewError::InvitationNotFound(invitation.clone());
                let id = InvitationId::parse(&invitation).map_err(|_| not_found())?;
                let loaded = store::load(tx.conn(), &reviews.catalog, &call.review_id)?;
                let stages: Vec<_> = loaded.stages.iter().map(|s| s.id.clone()).collect();
                if !store::revoke_invitation(tx.conn(), &id, &stages, now)? {
                    return Err(not_found());
                }
                store::touch(tx.conn(), &loaded.row.id, now)?;
                audit::append(
                    tx,
                    Change::review(crate::audit::Action::StageInvitationRevoked, &loaded.row.id)
                        .after(json!({"invitation": id})),
                )?;
                Ok(())
            })
            .await
    }

    /// Raises a finding on a review.
    pub async fn add_finding(
        &self,
        call: Call,
        input: NewFinding,
    ) -> Result<FindingView, ReviewError> {
        let reviews = self.clone();
        let (actor, now) = (call.actor.clone(), call.now);
        self.work
            .run(actor, now, move |tx| {
                let loaded = reviews.load_for(tx.conn(), &call)?;
                if let Some(stage) = &input.stage
                    && loaded.stage_row(stage).is_none()
                {
                    return Err(invalid(
                        "stage",
                        format!("no stage `{stage}` in this review"),
                    ));
                }
                let row = FindingRow {
                    id: FindingId::generate(),
                    review_id: loaded.row.id.clone(),
                    stage_key: input.stage,
                    severity: input.severity.unwrap_or(crate::workflow::Severity::Medium),
                    text: input.text.unwrap_or_default().trim().to_owned(),
                    owner: input.owner,
                    remediation_due: input.remediation_due.map(|d| d.naive_utc()),
                    state: FindingState::Open,
                    resolution: None,
                    created_by: tx.actor().id(),
                    created_at: now.naive_utc(),
                    updated_at: now.naive_utc(),
                    source: None,
                    resolved_by: None,
                    raised_by_value: None,
                };
                store::insert_finding(tx.conn(), &row)?;
                store::touch(tx.conn(), &loaded.row.id, now)?;
                let view = views::finding(&row);
                audit::append(
                    tx,
                    Change::review(crate::audit::Action::FindingOpened, &loaded.row.id)
                        .after(serde_json::to_value(&view).unwrap_or_default()),
                )?;
                Ok(view)
            })
            .await
    }

    /// Resolves or accepts a finding (with a resolution), or changes its
    /// owner, due date or severity.
    pub async fn update_finding(
        &self,
        call: Call,
        finding: String,
        patch: FindingPatch,
    ) -> Result<FindingView, ReviewError> {
        self.change_finding(call, finding, move |_, _| Ok(patch))
            .await
    }

    /// Resolves an open finding a risk rule raised whose raising answer has
    /// changed since, with a resolution that says so: one step for the
    /// reviewer. A 409 when the answer has not changed.
    pub async fn close_answer_changed(
        &self,
        call: Call,
        finding: String,
    ) -> Result<FindingView, ReviewError> {
        self.change_finding(call, finding, |loaded, row| {
            let change = views::raising_answer_changed(loaded, row).ok_or_else(|| {
                ReviewError::Conflict("the answer that raised this finding has not changed".into())
            })?;
            Ok(FindingPatch {
                state: Some(FindingState::Resolved),
                resolution: Some(closed_words(&loaded.workflow.workflow, &change)),
                ..FindingPatch::default()
            })
        })
        .await
    }

    /// Changes a finding by the patch `change` makes of it, with its audit
    /// event.
    async fn change_finding<F>(
        &self,
        call: Call,
        finding: String,
        change: F,
    ) -> Result<FindingView, ReviewError>
    where
        F: FnOnce(&Loaded, &FindingRow) -> Result<FindingPatch, ReviewError> + Send + 'static,
    {
        let reviews = self.clone();
        let (actor, now) = (call.actor.clone(), call.now);
        self.work
            .run(actor, now, move |tx| {
                let loaded = reviews.load_for(tx.conn(), &call)?;
                let before = loaded
                    .findings
                    .iter()
                    .find(|f| f.id == finding.as_str())
                    .cloned()
                    .ok_or_else(|| ReviewError::FindingNotFound(finding.clone()))?;
                let patch = change(&loaded, &before)?;
                let by = tx.actor().id();
                let after = patched(&before, patch, &by, now)?;
                store::update_finding(tx.conn(), &after)?;
                store::touch(tx.conn(), &loaded.row.id, now)?;
                let view = views::finding(&after);
                audit::append(
                    tx,
                    Change::review(crate::audit::Action::FindingUpdated, &loaded.row.id)
                        .before(serde_json::to_value(views::finding(&before)).unwrap_or_default())
                        .after(serde_json::to_value(&view).unwrap_or_default()),
                )?;
                Ok(view)
            })
            .await
    }

    /// A reviewer's comment on one question of a stage, for whoever answers
    /// it. It changes no answer, decision or state, so it leaves the
    /// review's version alone: nobody's open form goes stale over it.
    pub async fn comment(
        &self,
        call: Call,
        caller: Caller,
        stage: StageKey,
        question: String,
        input: super::CommentInput,
    ) -> Result<super::QuestionCommentView, ReviewError> {
        let text = input.text.unwrap_or_default().trim().to_owned();
        if text.is_empty() {
            return Err(invalid("text", "is required".into()));
        }
        let reviews = self.clone();
        let (actor, now) = (call.actor.clone(), call.now);
        self.work
            .run(actor, now, move |tx| {
                let loaded = store::load(tx.conn(), &reviews.catalog, &call.review_id)?;
                let workflow = &loaded.workflow.workflow;
                // What the path names is checked first: an unknown question
                // is a 404 whatever the stage's state.
                if let Some(definition) = workflow.stage(&stage)
                    && definition.question(&question).is_none()
                {
                    return Err(ReviewError::QuestionNotFound(question));
                }
                engine::may_comment(workflow, &loaded.engine_review(), &caller, &stage)?;
                let stage_row = loaded
                    .stage_row(&stage)
                    .ok_or_else(|| engine::Refusal::UnknownStage(stage.to_string()))?;
                let row = store::CommentRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    stage_id: stage_row.id.clone(),
                    question_id: question,
                    body: text,
                    author: caller.id().to_owned(),
                    round: stage_row.round,
                    created_at: now.naive_utc(),
                };
                store::insert_comment(tx.conn(), &row)?;
                let view = views::comment(&loaded, &row, stage);
                audit::append(
                    tx,
                    Change::review(crate::audit::Action::QuestionCommented, &loaded.row.id)
                        .after(serde_json::to_value(&view).unwrap_or_default()),
                )?;
                Ok(view)
            })
            .await
    }

    /// The review with everything in it.
    pub fn detail(
        &self,
        conn: &mut DbConnection,
        review_id: &ReviewId,
        now: DateTime<Utc>,
    ) -> Result<ReviewDetail, ReviewError> {
        let loaded = store::load(conn, &self.catalog, review_id)?;
        Self::detail_of(conn, &loaded, now)
    }

    fn detail_of(
        conn: &mut DbConnection,
        loaded: &store::Loaded,
        now: DateTime<Utc>,
    ) -> Result<ReviewDetail, ReviewError> {
        let invitations = store::invitations(conn, loaded)?;
        let timeline = store::timeline(conn, &loaded.row.id)?;
        Ok(ReviewDetail {
            review: loaded.summary(now),
            answers: views::answers(loaded),
            decisions: views::decisions(loaded),
            findings: views::findings(loaded),
            invitations: views::invitations(loaded, invitations),
            timeline: views::timeline(timeline),
            comments: views::comments(loaded, None),
            changed_since_request: views::changed_since_request(loaded),
        })
    }

    /// The review as [`Reviews::detail`] shows it, and what `caller` may do
    /// to it now — the engine's one answer, which the console's page turns
    /// into exactly the forms it shows.
    pub fn detail_for(
        &self,
        conn: &mut DbConnection,
        review_id: &ReviewId,
        caller: &Caller,
        now: DateTime<Utc>,
    ) -> Result<(ReviewDetail, engine::Allowed), ReviewError> {
        let loaded = store::load(conn, &self.catalog, review_id)?;
        let detail = Self::detail_of(conn, &loaded, now)?;
        let allowed = engine::allowed(&loaded.workflow.workflow, &loaded.engine_review(), caller);
        Ok((detail, allowed))
    }

    /// One stage with its questionnaire; respondents see only their stage.
    pub fn stage_view(
        &self,
        conn: &mut DbConnection,
        review_id: &ReviewId,
        stage: &str,
        caller: &Caller,
        now: DateTime<Utc>,
    ) -> Result<StageView, ReviewError> {
        let loaded = store::load(conn, &self.catalog, review_id)?;
        if let Caller::Respondent { id, stage: scope } = caller {
            check_invitation(conn, &loaded, id, scope, now)?;
        }
        views::stage(&loaded, stage, now)
    }
}

/// The audit event of an engine action: the review's state and tier before
/// and after, the stage's, what was sent, and the findings the rules opened.
fn action_change<'a>(
    review_id: &'a ReviewId,
    action: &Action,
    before: &engine::Review,
    outcome: &Outcome,
) -> Change<'a> {
    let after = &outcome.review;
    let stage_key = action.stage();
    let stage_state = |review: &engine::Review| {
        stage_key
            .and_then(|k| review.stage(k))
            .map(|s| s.state.as_str())
    };
    let detail = match action {
        Action::SaveAnswers { answers, .. } => json!({"answers": answers}),
        Action::Submit { .. } => json!({}),
        Action::Decide {
            decision,
            comment,
            conditions,
            ..
        } => json!({"decision": decision, "comment": comment, "conditions": conditions}),
        Action::Assign { assignee, duty, .. } => json!({"assignee": assignee, "duty": duty}),
        Action::RaiseTier { tier, reason } => json!({"tier": tier, "reason": reason}),
        Action::Withdraw { reason } => json!({"reason": reason}),
    };
    let mut after_data = json!({"state": after.state, "tier": after.tier, "detail": detail});
    if let Some(stage) = stage_key {
        after_data["stage"] = json!({"key": stage, "state": stage_state(after)});
    }
    let findings: Vec<_> = outcome
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::FindingOpened { severity, text, .. } => {
                Some(json!({"severity": severity, "text": text}))
            }
            _ => None,
        })
        .collect();
    if !findings.is_empty() {
        after_data["findings_opened"] = json!(findings);
    }
    Change::review(audited(action.verb()), review_id)
        .before(
            json!({"state": before.state, "tier": before.tier, "stage_state": stage_state(before)}),
        )
        .after(after_data)
}

/// The resolution of a finding closed because the answer that raised it
/// changed: the question, the day, and the answer then and now.
fn closed_words(workflow: &crate::workflow::Workflow, change: &super::AnswerChange) -> String {
    let (before, after) = views::change_in_words(workflow, change);
    format!(
        "Closed: the answer to “{}” that raised it changed on {}: {before} → {after}.",
        change.question_text,
        change.changed_at.format("%-d %b %Y"),
    )
}

/// A finding with a patch applied; resolving or accepting needs a resolution.
fn patched(
    before: &FindingRow,
    patch: FindingPatch,
    by: &str,
    now: DateTime<Utc>,
) -> Result<FindingRow, ReviewError> {
    let mut after = before.clone();
    if let Some(state) = patch.state {
        let resolution = patch.resolution.as_deref().or(before.resolution.as_deref());
        if state != FindingState::Open && resolution.is_none_or(|r| r.trim().is_empty()) {
            return Err(invalid(
                "resolution",
                "is required to resolve or accept a finding".into(),
            ));
        }
        if state != before.state {
            after.resolved_by = (state != FindingState::Open).then(|| by.to_owned());
        }
        after.state = state;
    }
    if let Some(severity) = patch.severity {
        after.severity = severity;
    }
    if let Some(owner) = patch.owner {
        after.owner = Some(owner);
    }
    if let Some(due) = patch.remediation_due {
        after.remediation_due = Some(due.naive_utc());
    }
    if let Some(resolution) = patch.resolution {
        after.resolution = Some(resolution);
    }
    after.updated_at = now.naive_utc();
    Ok(after)
}

/// Checks `expires_in` of an invitation: longer than zero, at most 90 days.
pub fn invitation_lifetime(delta: Option<TimeDelta>) -> Result<Option<TimeDelta>, String> {
    let Some(delta) = delta else { return Ok(None) };
    if delta <= TimeDelta::zero() || delta > TimeDelta::days(MAX_INVITATION_DAYS) {
        return Err(format!(
            "must be longer than zero and at most {MAX_INVITATION_DAYS}d"
        ));
    }
    Ok(Some(delta))
}

/// A review is approved only when each open high or critical finding has
/// an owner and a remediation due date (or was accepted, with a reason):
/// an approval must not contradict what the review found.
fn check_findings_owned(loaded: &Loaded, outcome: &Outcome) -> Result<(), ReviewError> {
    let mut unowned: Vec<String> = loaded
        .findings
        .iter()
        .filter(|f| {
            super::stops_approval(
                f.state,
                f.severity,
                f.owner.as_deref(),
                f.remediation_due.is_some(),
            )
        })
        .map(|f| format!("{} ({}): \"{}\"", f.id, f.severity, f.text))
        .collect();
    // Findings the risk rules open with this very decision have no owner yet.
    unowned.extend(outcome.effects.iter().filter_map(|e| match e {
        Effect::FindingOpened { severity, text, .. } if *severity >= Severity::High => {
            Some(format!("new ({severity}): \"{text}\""))
        }
        _ => None,
    }));
    if unowned.is_empty() {
        return Ok(());
    }
    Err(ReviewError::Conflict(format!(
        "the review cannot be approved while {} open high or critical finding{} ha{} no owner \
         and remediation due date: {}. Give each an owner and a due date, or accept it with a \
         reason, then approve again",
        unowned.len(),
        if unowned.len() == 1 { "" } else { "s" },
        if unowned.len() == 1 { "s" } else { "ve" },
        unowned.join("; ")
    )))
}

/// An assignment as it is kept: the person by their `sub` when Clearance
/// knows them (by `sub` or by address), else by the address they will sign
/// in with (they are told by email, and the stage is theirs when they sign
/// in); its duty named — from their roles when the call named none — and
/// refused when they do not hold the role the duty needs.
fn resolve_assignment(
    conn: &mut DbConnection,
    loaded: &Loaded,
    action: Action,
) -> Result<Action, ReviewError> {
    let Action::Assign {
        stage,
        duty,
        assignee: Some(assignee),
    } = action
    else {
        return Ok(action);
    };
    let Some(definition) = loaded.workflow.workflow.stage(&stage) else {
        // The engine refuses an unknown stage.
        return Ok(Action::Assign {
            stage,
            duty,
            assignee: Some(assignee),
        });
    };
    let state = loaded.stage_row(&stage).map(|row| row.state);
    let fallback = engine::default_duty(definition, state);
    let holds = |roles: &[Role], duty: Duty| roles.contains(&engine::duty_role(definition, duty));
    let (assignee, duty) = match crate::people::find(conn, &assignee)? {
        Some((sub, roles)) => {
            let duty = duty.unwrap_or_else(|| {
                match (holds(&roles, Duty::Answer), holds(&roles, Duty::Decide)) {
                    (true, false) => Duty::Answer,
                    (false, true) => Duty::Decide,
                    _ => fallback,
                }
            });
            if !holds(&roles, duty) {
                let role = engine::duty_role(definition, duty);
                let verb = match duty {
                    Duty::Answer => "answers",
                    Duty::Decide => "decides",
                };
                return Err(invalid(
                    "assignee",
                    format!(
                        "{assignee} does not hold the `{role}` role, which {verb} stage `{stage}`"
                    ),
                ));
            }
            (sub, duty)
        }
        None if validator::ValidateEmail::validate_email(&assignee) => {
            (assignee.to_lowercase(), duty.unwrap_or(fallback))
        }
        None => {
            let role = engine::duty_role(definition, duty.unwrap_or(fallback));
            let mut message = format!(
                "nobody called `{assignee}` is known to Clearance (people are known once they \
                 have signed in or called the API); give the email address of someone who has \
                 not signed in yet"
            );
            let mut who: Vec<String> = crate::people::people_with_role(conn, role)?
                .into_iter()
                .map(|(sub, _)| sub)
                .collect();
            who.truncate(10);
            if !who.is_empty() {
                message.push_str(&format!(
                    "; people with the `{role}` role: {}",
                    who.join(", ")
                ));
            }
            return Err(invalid("assignee", message));
        }
    };
    Ok(Action::Assign {
        stage,
        duty: Some(duty),
        assignee: Some(assignee),
    })
}

/// A respondent's link works while its invitation is unrevoked and unexpired.
fn check_invitation(
    conn: &mut DbConnection,
    loaded: &Loaded,
    caller_id: &str,
    stage: &StageKey,
    now: DateTime<Utc>,
) -> Result<(), ReviewError> {
    let not_valid = || ReviewError::Unauthorized("this invitation link is not valid".into());
    let invitation = InvitationId::parse(caller_id.trim_start_matches("respondent:"))
        .map_err(|_| not_valid())?;
    let Some(stage_row) = loaded.stage_row(stage) else {
        return Err(not_valid());
    };
    match store::invitation(conn, &invitation, &stage_row.id)? {
        None => Err(not_valid()),
        // A withdrawn review shows its suppliers nothing, answers included.
        Some(_) if loaded.row.state == ReviewState::Withdrawn => Err(ReviewError::Withdrawn),
        Some(row) if row.revoked_at.is_some() => Err(ReviewError::Unauthorized(
            "this invitation link has been revoked".into(),
        )),
        Some(row) if store::utc(row.expires_at) <= now => Err(ReviewError::Unauthorized(
            "this invitation link has expired".into(),
        )),
        Some(_) => Ok(()),
    }
}

/// The audit log's name for an action of the engine.
fn audited(verb: engine::Verb) -> crate::audit::Action {
    use crate::audit::Action;
    use engine::Verb;
    match verb {
        Verb::SaveAnswers => Action::StageAnswersSaved,
        Verb::Submit => Action::StageSubmitted,
        Verb::Decide(_) => Action::StageDecided,
        Verb::Assign => Action::StageAssigned,
        Verb::RaiseTier => Action::ReviewTierRaised,
        Verb::Withdraw => Action::ReviewWithdrawn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invitation_lifetimes_are_bounded() {
        assert_eq!(invitation_lifetime(None), Ok(None));
        assert!(invitation_lifetime(Some(TimeDelta::days(14))).is_ok());
        assert!(invitation_lifetime(Some(TimeDelta::zero())).is_err());
        assert!(invitation_lifetime(Some(TimeDelta::days(91))).is_err());
    }
}
