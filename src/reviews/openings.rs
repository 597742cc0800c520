//! Telling supplier contacts that questionnaires they were invited to have
//! opened, without noise. Each opening is recorded per invitation
//! (`supplier_notices`); a contact is told at once, in one message naming
//! every questionnaire that opened, unless they were emailed about the
//! review (an invitation or an opening notice) less than [`QUIET`] ago.
//! Then the notice waits in the database, and the SLA sweep sends it once
//! the quiet day has passed (so it survives restarts and follows the
//! scheduler's clock).

use std::collections::BTreeSet;

use chrono::TimeDelta;
use diesel::prelude::*;
use serde_json::json;

use super::ReviewError;
use super::invite::ALL_STAGES;
use super::service::Reviews;
use super::store::{self, InvitationRow, Loaded, utc};
use super::tell::live_invitations;
use crate::audit::{self, Change};
use crate::auth::RespondentScope;
use crate::db::DbConnection;
use crate::ids::{InvitationId, ReviewId, StageKey};
use crate::notify::{self, messages};
use crate::schema::supplier_notices;
use crate::unit::Tx;
use crate::workflow::engine::{self, ReviewState, StageState};

/// A contact is emailed about a review at most once in this long, for the
/// questionnaires that open after they were invited.
pub const QUIET: TimeDelta = TimeDelta::days(1);

/// One invitation whose stage opened: told (`sent_at`) or waiting.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = supplier_notices)]
struct NoticeRow {
    invitation_id: InvitationId,
    review_id: ReviewId,
    email: String,
    stage_key: StageKey,
    opened_at: chrono::NaiveDateTime,
    sent_at: Option<chrono::NaiveDateTime>,
}

impl Reviews {
    /// Records that `stages` (answered by the supplier) opened, for each
    /// contact holding a working invitation to one, and tells each contact
    /// now unless they were emailed within [`QUIET`].
    pub(super) fn tell_suppliers_of_openings(
        &self,
        tx: &mut Tx<'_>,
        loaded: &Loaded,
        review: &engine::Review,
        stages: &[&StageKey],
    ) -> Result<(), ReviewError> {
        let now = tx.now().naive_utc();
        let mut contacts = BTreeSet::new();
        for stage in stages {
            for invitation in live_invitations(tx, loaded, stage)? {
                let row = NoticeRow {
                    invitation_id: invitation.id.clone(),
                    review_id: loaded.row.id.clone(),
                    email: invitation.email.clone(),
                    stage_key: (*stage).clone(),
                    opened_at: now,
                    sent_at: None,
                };
                let known = supplier_notices::table
                    .filter(supplier_notices::invitation_id.eq(&row.invitation_id))
                    .count()
                    .get_result::<i64>(tx.conn())?
                    > 0;
                if !known {
                    diesel::insert_into(supplier_notices::table)
                        .values(&row)
                        .execute(tx.conn())?;
                }
                contacts.insert(invitation.email.to_lowercase());
            }
        }
        for contact in contacts {
            self.announce_openings(tx, loaded, review, &contact)?;
        }
        Ok(())
    }

    /// Sends `contact` one message naming every questionnaire of the review
    /// that opened for them and was not announced yet, unless they were
    /// emailed about the review within [`QUIET`] (then it keeps waiting).
    /// `review` is the review as it is now (`loaded` may be from before the
    /// change that opened the stages). Answers whether a message was queued.
    pub fn announce_openings(
        &self,
        tx: &mut Tx<'_>,
        loaded: &Loaded,
        review: &engine::Review,
        contact: &str,
    ) -> Result<bool, ReviewError> {
        let now = tx.now();
        let notices: Vec<NoticeRow> = supplier_notices::table
            .filter(supplier_notices::review_id.eq(&loaded.row.id))
            .select(NoticeRow::as_select())
            .load(tx.conn())?;
        let invitations = store::invitations(tx.conn(), loaded)?;
        let theirs = |email: &str| email.eq_ignore_ascii_case(contact);
        let waiting: Vec<&NoticeRow> = notices
            .iter()
            .filter(|n| n.sent_at.is_none() && theirs(&n.email))
            .collect();
        if waiting.is_empty() {
            return Ok(false);
        }
        let last_emailed = invitations
            .iter()
            .filter(|i| theirs(&i.email))
            .map(|i| i.created_at)
            .chain(
                notices
                    .iter()
                    .filter(|n| theirs(&n.email))
                    .filter_map(|n| n.sent_at),
            )
            .max()
            .map(utc);
        if last_emailed.is_some_and(|last| now - last < QUIET) {
            return Ok(false);
        }
        let ids: Vec<&InvitationId> = waiting.iter().map(|n| &n.invitation_id).collect();
        diesel::update(supplier_notices::table.filter(supplier_notices::invitation_id.eq_any(ids)))
            .set(supplier_notices::sent_at.eq(Some(now.naive_utc())))
            .execute(tx.conn())?;
        // What is still open to answer through a working invitation, in
        // the workflow's order.
        let mut opened = Vec::new();
        let mut through: Vec<&InvitationRow> = Vec::new();
        for definition in &loaded.workflow.workflow.stages {
            let Some(stage) = review.stage(&definition.key) else {
                continue;
            };
            if stage.state != StageState::AwaitingAnswers || review.state != ReviewState::InProgress
            {
                continue;
            }
            let invitation = waiting
                .iter()
                .filter(|n| n.stage_key == definition.key)
                .filter_map(|n| invitations.iter().find(|i| i.id == n.invitation_id))
                .find(|i| i.revoked_at.is_none() && utc(i.expires_at) > now);
            if let Some(invitation) = invitation {
                opened.push(messages::Opened {
                    title: definition.title.clone(),
                    due_at: stage.due_at,
                });
                through.push(invitation);
            }
        }
        let (link, expires_at) = match through.as_slice() {
            [] => return Ok(false),
            [one] => {
                let stage = loaded
                    .stages
                    .iter()
                    .find(|s| s.id == one.stage_id)
                    .map(|s| s.stage_key.clone())
                    .ok_or_else(|| ReviewError::Internal("an invitation without stage".into()))?;
                let expires_at = utc(one.expires_at);
                let link = self.respondent_link(
                    &one.id,
                    &loaded.row.id,
                    &stage,
                    &one.email,
                    expires_at,
                    now,
                )?;
                (link, expires_at)
            }
            many => {
                let expires_at = many.iter().map(|i| utc(i.expires_at)).max().unwrap_or(now);
                let scope = RespondentScope {
                    invitation: InvitationId::generate().to_string(),
                    review: loaded.row.id.to_string(),
                    stage: ALL_STAGES.to_owned(),
                };
                (
                    self.scoped_link(&scope, &many[0].email, expires_at, now)?,
                    expires_at,
                )
            }
        };
        let subject = loaded.named();
        let email = messages::questionnaires_opened(
            &self.context(loaded, &subject),
            &through[0].email,
            &opened,
            &link,
            expires_at,
        );
        let key = format!(
            "opened:{}:{}:{}",
            loaded.row.id,
            contact.to_lowercase(),
            now.timestamp()
        );
        let queued = notify::enqueue_email(tx, &email, Some(key))?;
        if queued {
            let stages: Vec<&str> = opened.iter().map(|o| o.title.as_str()).collect();
            audit::append(
                tx,
                Change::review(audit::Action::SupplierNotified, &loaded.row.id).after(json!({
                    "contact": through[0].email, "opened": stages,
                    "invitations": through.iter().map(|i| &i.id).collect::<Vec<_>>(),
                })),
            )?;
        }
        Ok(queued)
    }
}

/// The contacts, by review, with an opening not announced yet: what the
/// SLA sweep offers to [`Reviews::announce_openings`].
pub fn waiting(conn: &mut DbConnection) -> QueryResult<Vec<(ReviewId, String)>> {
    let rows: Vec<(ReviewId, String)> = supplier_notices::table
        .filter(supplier_notices::sent_at.is_null())
        .select((supplier_notices::review_id, supplier_notices::email))
        .distinct()
        .load(conn)?;
    let mut contacts: Vec<(ReviewId, String)> = rows
        .into_iter()
        .map(|(review, email)| (review, email.to_lowercase()))
        .collect();
    contacts.sort();
    contacts.dedup();
    Ok(contacts)
}
