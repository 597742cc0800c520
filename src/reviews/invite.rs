//! Inviting supplier contacts: one stage through its own link, or every
//! supplier questionnaire of a review at once through one link that lists
//! them (each opens to its contact as the stages before it are approved).
//! An invitation may be sent before its stage opens; the contact is told
//! when it does.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use super::service::{Call, DEFAULT_INVITATION_DAYS, Reviews};
use super::store::{self, InvitationRow, Loaded, StageRow};
use super::{InvitationView, ReviewError, views};
use crate::audit::{self, Change};
use crate::auth::RespondentScope;
use crate::ids::{InvitationId, StageKey};
use crate::notify::{self, messages};
use crate::unit::Tx;
use crate::validation::FieldError;
use crate::workflow::engine::{self, StageState};
use crate::workflow::{Answerer, Stage};

/// The stage of a respondent scope that admits every stage the contact was
/// invited to: the page that lists them, never one stage's answers.
pub const ALL_STAGES: &str = "*";

/// What an invitation to all of a review's supplier questionnaires made.
#[derive(Debug, Clone)]
pub struct Invited {
    pub invitations: Vec<InvitationView>,
    /// The one link (only the email carries it).
    pub link: String,
}

/// An invitation just recorded, with the stage it admits to.
struct Invitation<'l> {
    row: InvitationRow,
    definition: &'l Stage,
    stage_row: &'l StageRow,
}

fn invalid(field: &str, message: String) -> ReviewError {
    ReviewError::Invalid(vec![FieldError::new(field, message)])
}

impl Reviews {
    /// Invites a supplier contact to answer one stage through a link;
    /// answers the invitation and the link (which only the email carries).
    pub async fn invite(
        &self,
        call: Call,
        stage: StageKey,
        email: String,
        expires_in: Option<TimeDelta>,
    ) -> Result<(InvitationView, String), ReviewError> {
        let reviews = self.clone();
        let (actor, now) = (call.actor.clone(), call.now);
        self.work
            .run(actor, now, move |tx| {
                reviews.invite_in(tx, &call, &stage, &email, expires_in)
            })
            .await
    }

    fn invite_in(
        &self,
        tx: &mut Tx<'_>,
        call: &Call,
        stage: &StageKey,
        email: &str,
        expires_in: Option<TimeDelta>,
    ) -> Result<(InvitationView, String), ReviewError> {
        let now = tx.now();
        let loaded = self.load_for(tx.conn(), call)?;
        let expires_at = now + expires_in.unwrap_or(TimeDelta::days(DEFAULT_INVITATION_DAYS));
        let Invitation {
            row: invitation,
            definition,
            stage_row,
        } = self.new_invitation(tx, &loaded, stage, email, expires_at)?;
        let link = self.respondent_link(
            &invitation.id,
            &loaded.row.id,
            stage,
            email,
            expires_at,
            now,
        )?;
        let due_at = stage_row.due_at.map(store::utc);
        let subject = loaded.named();
        let message = messages::invitation(
            &self.context(&loaded, &subject),
            email,
            &definition.title,
            definition.questionnaire.questions().count(),
            &link,
            due_at,
            expires_at,
        );
        notify::enqueue_email(tx, &message, Some(format!("invitation:{}", invitation.id)))?;
        store::touch(tx.conn(), &loaded.row.id, now)?;
        audit::append(
            tx,
            Change::review(crate::audit::Action::StageInvited, &loaded.row.id).after(
                    json!({"stage": stage, "email": email, "invitation": invitation.id, "expires_at": expires_at}),
                ),
        )?;
        Ok((views::invitation(invitation, stage.clone()), link))
    }

    /// Invites a supplier contact to every supplier questionnaire of the
    /// review still to be answered (or to `stages`), with one email and one
    /// link that lists them.
    pub async fn invite_all(
        &self,
        call: Call,
        email: String,
        stages: Option<Vec<StageKey>>,
        expires_in: Option<TimeDelta>,
    ) -> Result<Invited, ReviewError> {
        let reviews = self.clone();
        let (actor, now) = (call.actor.clone(), call.now);
        self.work
            .run(actor, now, move |tx| {
                reviews.invite_all_in(tx, &call, &email, stages, expires_in)
            })
            .await
    }

    fn invite_all_in(
        &self,
        tx: &mut Tx<'_>,
        call: &Call,
        email: &str,
        stages: Option<Vec<StageKey>>,
        expires_in: Option<TimeDelta>,
    ) -> Result<Invited, ReviewError> {
        let now = tx.now();
        let loaded = self.load_for(tx.conn(), call)?;
        let stages = match stages {
            Some(stages) if !stages.is_empty() => stages,
            Some(_) => return Err(invalid("stages", "lists no stage".into())),
            None => {
                let waiting: Vec<StageKey> = loaded
                    .workflow
                    .workflow
                    .stages
                    .iter()
                    .filter(|d| d.answered_by == Answerer::Supplier)
                    // Stages the review's tier skips are not asked for
                    // (one raised later can be invited to then).
                    .filter(|d| d.applies_to(loaded.row.tier))
                    .filter(|d| {
                        loaded.stage_row(&d.key).is_some_and(|s| {
                            matches!(s.state, StageState::Blocked | StageState::AwaitingAnswers)
                        })
                    })
                    .map(|d| d.key.clone())
                    .collect();
                if waiting.is_empty() {
                    return Err(ReviewError::Conflict(
                        "no supplier questionnaire of this review is waiting to be answered".into(),
                    ));
                }
                waiting
            }
        };
        let expires_at = now + expires_in.unwrap_or(TimeDelta::days(DEFAULT_INVITATION_DAYS));
        let mut invitations = Vec::new();
        let mut listed = Vec::new();
        for stage in &stages {
            let Invitation {
                row,
                definition,
                stage_row,
            } = self.new_invitation(tx, &loaded, stage, email, expires_at)?;
            listed.push(messages::Questionnaire {
                title: definition.title.clone(),
                questions: definition.questionnaire.questions().count(),
                open: stage_row.state == StageState::AwaitingAnswers,
                due_at: stage_row.due_at.map(store::utc),
            });
            invitations.push(views::invitation(row, stage.clone()));
        }
        let bundle = InvitationId::generate();
        let scope = RespondentScope {
            invitation: bundle.to_string(),
            review: loaded.row.id.to_string(),
            stage: ALL_STAGES.to_owned(),
        };
        let link = self.scoped_link(&scope, email, expires_at, now)?;
        let subject = loaded.named();
        let message = messages::invitation_to_all(
            &self.context(&loaded, &subject),
            email,
            &listed,
            &link,
            expires_at,
        );
        notify::enqueue_email(tx, &message, Some(format!("invitations:{bundle}")))?;
        store::touch(tx.conn(), &loaded.row.id, now)?;
        audit::append(
            tx,
            Change::review(crate::audit::Action::ReviewInvited, &loaded.row.id).after(json!({
                "email": email, "stages": stages, "expires_at": expires_at,
                "invitations": invitations.iter().map(|i| &i.id).collect::<Vec<_>>(),
            })),
        )?;
        Ok(Invited { invitations, link })
    }

    /// Records an invitation to `stage`: one the supplier answers, still to
    /// be answered (open, or waiting for the stages before it).
    fn new_invitation<'l>(
        &self,
        tx: &mut Tx<'_>,
        loaded: &'l Loaded,
        stage: &StageKey,
        email: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<Invitation<'l>, ReviewError> {
        if loaded.row.state.is_decided() {
            return Err(engine::Refusal::NotAllowed {
                action: "invite",
                subject: "the review".into(),
                state: loaded.row.state.as_str(),
            }
            .into());
        }
        let definition = loaded
            .workflow
            .workflow
            .stage(stage)
            .ok_or_else(|| engine::Refusal::UnknownStage(stage.to_string()))?;
        if definition.answered_by != Answerer::Supplier {
            return Err(invalid(
                "stage",
                format!(
                    "stage `{stage}` is answered by `{}`, not by the supplier",
                    definition.answered_by.as_str()
                ),
            ));
        }
        let row = loaded
            .stage_row(stage)
            .ok_or_else(|| engine::Refusal::UnknownStage(stage.to_string()))?;
        if !matches!(row.state, StageState::Blocked | StageState::AwaitingAnswers) {
            return Err(engine::Refusal::NotAllowed {
                action: "invite",
                subject: format!("stage `{stage}`"),
                state: row.state.as_str(),
            }
            .into());
        }
        let invitation = InvitationRow {
            id: InvitationId::generate(),
            stage_id: row.id.clone(),
            email: email.to_owned(),
            expires_at: expires_at.naive_utc(),
            revoked_at: None,
            created_by: tx.actor().id(),
            created_at: tx.now().naive_utc(),
        };
        store::insert_invitation(tx.conn(), &invitation)?;
        Ok(Invitation {
            row: invitation,
            definition,
            stage_row: row,
        })
    }
}

/// A questionnaire the holder of an invitation to several may open.
#[derive(Debug, Clone)]
pub struct InvitedStage {
    pub title: String,
    pub state: StageState,
    pub due_at: Option<DateTime<Utc>>,
    /// The questionnaire's own link, once it has opened.
    pub link: Option<String>,
    /// The questionnaire and the answers saved so far, for its progress.
    pub questionnaire: crate::workflow::Questionnaire,
    pub answers: std::collections::BTreeMap<String, serde_json::Value>,
}

impl Reviews {
    /// The questionnaires of a review that `email` holds a working
    /// invitation to, in workflow order, with the review's subject by name.
    pub fn invited_to(
        &self,
        conn: &mut crate::db::DbConnection,
        review: &crate::ids::ReviewId,
        email: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, Vec<InvitedStage>), ReviewError> {
        let loaded = store::load(conn, &self.catalog, review)?;
        if loaded.row.state == engine::ReviewState::Withdrawn {
            return Err(ReviewError::Withdrawn);
        }
        let invitations = store::invitations(conn, &loaded)?;
        let mut listed = Vec::new();
        for definition in &loaded.workflow.workflow.stages {
            let Some(row) = loaded.stage_row(&definition.key) else {
                continue;
            };
            let Some(invitation) = invitations
                .iter()
                .filter(|i| {
                    i.stage_id == row.id
                        && i.email.eq_ignore_ascii_case(email)
                        && i.revoked_at.is_none()
                        && store::utc(i.expires_at) > now
                })
                .max_by_key(|i| i.created_at)
            else {
                continue;
            };
            if row.state == StageState::Skipped {
                continue;
            }
            let link = match row.state {
                StageState::Blocked => None,
                _ => Some(self.respondent_link(
                    &invitation.id,
                    &loaded.row.id,
                    &definition.key,
                    &invitation.email,
                    store::utc(invitation.expires_at),
                    now,
                )?),
            };
            let view = views::stage(&loaded, definition.key.as_str(), now)?;
            listed.push(InvitedStage {
                title: definition.title.clone(),
                state: row.state,
                due_at: row.due_at.map(store::utc),
                link,
                questionnaire: view.questionnaire,
                answers: view.answers,
            });
        }
        Ok((loaded.named(), listed))
    }
}
