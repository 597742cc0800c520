//! The admin's switch: suspend or resume a provider or a model.

use actix_web::{HttpResponse, web};

use crate::auth::Role;
use serde::Deserialize;

use crate::console::page::{self, PageError, Posted, Viewer, forms};
use crate::status::switch::{self as switches, Subject, Throw};

use super::*;

/// The switch's form.
#[derive(Debug, Deserialize)]
pub(super) struct SwitchFields {
    /// `suspend` or `resume`.
    action: Option<String>,
    #[serde(default, deserialize_with = "forms::text")]
    reason: Option<String>,
}

/// Throws the admin's switch from a form: `action` is `suspend` (with a
/// `reason`) or `resume`; the form asked for confirmation first.
async fn throw_switch(
    viewer: &Viewer,
    subject: Subject,
    fields: SwitchFields,
    back: String,
) -> Result<HttpResponse, PageError> {
    if !viewer.has(Role::Admin) {
        return Err(PageError::Forbidden(
            "Only an admin suspends or resumes.".into(),
        ));
    }
    let throw = match fields.action.as_deref() {
        Some("suspend") => match fields.reason {
            Some(reason) => Throw::Suspend { reason },
            None => {
                return Ok(page::redirect(&format!("{back}?done=reason-missing")));
            }
        },
        Some("resume") => Throw::Resume {
            reason: fields.reason,
        },
        _ => return Err(PageError::Forbidden("Unknown switch action.".into())),
    };
    let suspending = matches!(throw, Throw::Suspend { .. });
    let state = &viewer.state;
    let result = switches::throw(
        &state.work,
        viewer.actor(),
        subject,
        throw,
        state.config.mailboxes.clone(),
        state.reviews.public_url.clone(),
        state.clock.now(),
    )
    .await;
    match result {
        Ok(_) => Ok(page::redirect(&format!(
            "{back}?done={}",
            if suspending { "suspended" } else { "resumed" }
        ))),
        Err(switches::SwitchError::Catalogue(error)) => Err(not_found(error)),
        Err(refused) => Err(PageError::Forbidden(format!(
            "{}.",
            words_capitalised(&refused.to_string())
        ))),
    }
}

pub(super) async fn switch_provider(
    path: web::Path<String>,
    posted: Posted<SwitchFields>,
) -> Result<HttpResponse, PageError> {
    let provider = provider_slug(&path)?;
    let back = format!("/providers/{provider}");
    throw_switch(
        &posted.viewer,
        Subject::Provider(provider),
        posted.fields,
        back,
    )
    .await
}

pub(super) async fn switch_model(
    path: web::Path<(String, String)>,
    posted: Posted<SwitchFields>,
) -> Result<HttpResponse, PageError> {
    let (provider, model) = (provider_slug(&path.0)?, model_slug(&path.1)?);
    let back = format!("/providers/{provider}/models/{model}");
    throw_switch(
        &posted.viewer,
        Subject::Model(provider, model),
        posted.fields,
        back,
    )
    .await
}
