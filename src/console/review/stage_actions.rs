//! Actions on a stage: invite a supplier (one stage or all), revoke an
//! invitation, assign, decide (with the conditions editor).

use std::collections::{BTreeMap, BTreeSet};

use actix_web::{HttpResponse, web};
use validator::Validate;

use super::*;
use crate::auth::roles::MANAGERS;
use crate::conditions::{Conditions, DataClass};
use crate::console::page::{Form, PageError};
use crate::reviews::ReviewError;
use crate::reviews::service::invitation_lifetime;
use crate::validation::FieldError;
use crate::workflow::engine::{Action, Decision, Duty};

/// An invitation form: the contact and, optionally, the link's lifetime.
#[derive(Debug, Deserialize)]
pub(super) struct InviteFields {
    #[serde(default, deserialize_with = "forms::text")]
    email: Option<String>,
    #[serde(default, deserialize_with = "forms::text")]
    expires_in: Option<String>,
}

/// `POST /reviews/{id}/stages/{stage}/invite`.
pub(super) async fn invite(posted: OnStage<InviteFields>) -> Result<HttpResponse, PageError> {
    let OnReview { on, fields, form } = posted;
    let (id, typed) = (format!("invite-{}", on.stage), Some(form.typed()));
    if !on.viewer.has_any(MANAGERS) {
        return Err(PageError::Forbidden(
            "Only a vendor manager or an admin invites a supplier.".into(),
        ));
    }
    let (email, lifetime) = match invitation_form(fields) {
        Ok(parsed) => parsed,
        Err(errors) => {
            let result: Result<(), ReviewError> = Err(ReviewError::Invalid(errors));
            return on.outcome(result, "invited", &id, typed).await;
        }
    };
    let result = on
        .viewer
        .state
        .reviews
        .invite(on.call(), on.stage.clone(), email, lifetime)
        .await;
    on.outcome(result, "invited", &id, typed).await
}

impl InviteFields {
    pub(super) fn new(email: String, expires_in: Option<String>) -> Self {
        Self {
            email: Some(email),
            expires_in,
        }
    }
}

/// The contact's address and the link's lifetime an invitation form gives.
pub(super) fn invitation_form(
    fields: InviteFields,
) -> Result<(String, Option<chrono::TimeDelta>), Vec<FieldError>> {
    let email = fields.email.unwrap_or_default();
    let mut errors = Vec::new();
    let input = crate::reviews::InviteInput {
        email: Some(email.clone()),
        expires_in: fields.expires_in.clone(),
    };
    if let Err(invalid) = input.validate() {
        errors.extend(FieldError::from_validator(&invalid));
    }
    let lifetime = match fields.expires_in {
        None => None,
        Some(text) => match crate::duration::parse(&text)
            .map_err(|e| e.to_string())
            .and_then(|d| invitation_lifetime(Some(d)))
        {
            Ok(lifetime) => lifetime,
            Err(message) => {
                errors.push(FieldError::new("expires_in", message));
                None
            }
        },
    };
    if errors.is_empty() {
        Ok((email, lifetime))
    } else {
        Err(errors)
    }
}

/// `POST /reviews/{id}/invite`: one contact, every supplier questionnaire
/// still to answer, one link.
pub(super) async fn invite_all(posted: OnReview<InviteFields>) -> Result<HttpResponse, PageError> {
    let OnReview { on, fields, form } = posted;
    if !on.viewer.has_any(MANAGERS) {
        return Err(PageError::Forbidden(
            "Only a vendor manager or an admin invites a supplier.".into(),
        ));
    }
    let result = match invitation_form(fields) {
        Ok((email, lifetime)) => on
            .viewer
            .state
            .reviews
            .invite_all(on.call(), email, None, lifetime)
            .await
            .map(drop),
        Err(errors) => Err(ReviewError::Invalid(errors)),
    };
    on.outcome(result, "invited", "invite-all", Some(form.typed()))
        .await
}

/// `POST /reviews/{id}/invitations/{invitation}/revoke`.
pub(super) async fn revoke(
    path: web::Path<(String, String)>,
    posted: OnReview<NoFields>,
) -> Result<HttpResponse, PageError> {
    let OnReview { on, .. } = posted;
    if !on.viewer.has_any(MANAGERS) {
        return Err(PageError::Forbidden(
            "Only a vendor manager or an admin revokes an invitation.".into(),
        ));
    }
    let result = on
        .viewer
        .state
        .reviews
        .revoke_invitation(on.call(), path.1.clone())
        .await;
    on.outcome(result, "revoked", "invitations", None).await
}

/// The assign form: which duty (`answer` or `decide`), and who (empty:
/// nobody).
#[derive(Debug, Deserialize)]
pub(super) struct AssignFields {
    #[serde(default, deserialize_with = "forms::text")]
    duty: Option<String>,
    #[serde(default, deserialize_with = "forms::text")]
    assignee: Option<String>,
}

/// `POST /reviews/{id}/stages/{stage}/assign`: a refusal comes back beside
/// the field, with what was typed.
pub(super) async fn assign(posted: OnStage<AssignFields>) -> Result<HttpResponse, PageError> {
    let OnReview { on, fields, .. } = posted;
    let duty = fields.duty.as_deref().and_then(Duty::parse);
    let form = format!(
        "assign-{}-{}",
        duty.map_or("decide", Duty::as_str),
        on.stage
    );
    let typed = BTreeMap::from([(
        "assignee".to_owned(),
        serde_json::Value::from(fields.assignee.clone().unwrap_or_default()),
    )]);
    let action = Action::Assign {
        stage: on.stage.clone(),
        duty,
        assignee: fields.assignee,
    };
    let result = on.act_on(Scope::Assign(on.stage.clone()), action).await;
    on.outcome(result, "assigned", &form, Some(typed)).await
}

/// The conditions a decision form's editor gives: each list (boxes
/// ticked, or entries typed one a line or comma) left empty is no limit of
/// that kind.
fn posted_conditions(form: &Form) -> Result<Option<Conditions>, Vec<FieldError>> {
    let list = |name: &str| -> Option<BTreeSet<String>> {
        let items: BTreeSet<String> = form
            .all(name)
            .into_iter()
            .flat_map(|text| text.split([',', '\n']))
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        (!items.is_empty()).then_some(items)
    };
    let mut errors = Vec::new();
    let classes: BTreeSet<DataClass> = form
        .all("data_classes")
        .into_iter()
        .filter_map(|c| {
            let parsed = DataClass::parse(c);
            if parsed.is_none() {
                errors.push(FieldError::new(
                    "conditions.data_classes",
                    format!("`{c}` is not a data class"),
                ));
            }
            parsed
        })
        .collect();
    let conditions = Conditions {
        use_cases: list("use_cases"),
        data_classes: (!classes.is_empty()).then_some(classes),
        regions: list("regions"),
        features_off: list("features_off"),
    };
    if let Err(invalid) = conditions.validate() {
        errors.extend(
            FieldError::from_validator(&invalid)
                .into_iter()
                .map(|e| FieldError::new(format!("conditions.{}", e.field), e.message)),
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok((!conditions.is_empty()).then_some(conditions))
}

/// The decision form: the decision and comment (the conditions editor's
/// lists, boxes and text, are read from the form as posted).
#[derive(Debug, Deserialize)]
pub(super) struct DecideFields {
    decision: Option<String>,
    #[serde(default, deserialize_with = "forms::text")]
    comment: Option<String>,
}

/// `POST /reviews/{id}/stages/{stage}/decide`: a refusal comes back with
/// everything as it was entered, each problem beside its field.
pub(super) async fn decide(posted: OnStage<DecideFields>) -> Result<HttpResponse, PageError> {
    let OnReview { on, fields, form } = posted;
    let id = format!("decide-{}", on.stage);
    let typed = Some(form.typed());
    let refused = |errors| -> Result<(), ReviewError> { Err(ReviewError::Invalid(errors)) };
    let Some(decision) = fields.decision.as_deref().and_then(Decision::parse) else {
        let error = FieldError::new("decision", "Choose approve, request changes or reject.");
        return on
            .outcome(refused(vec![error]), "decided", &id, typed)
            .await;
    };
    let conditions = match posted_conditions(&form) {
        Ok(conditions) => conditions.filter(|_| decision == Decision::Approve),
        Err(errors) => return on.outcome(refused(errors), "decided", &id, typed).await,
    };
    let action = Action::Decide {
        stage: on.stage.clone(),
        decision,
        comment: fields.comment,
        conditions,
    };
    let result = on.act(action).await;
    on.outcome(result, "decided", &id, typed).await
}
