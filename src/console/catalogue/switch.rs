//! The admin's switch: suspend or resume a provider or a model.

use actix_web::{HttpResponse, web};

use crate::auth::Role;
use crate::console::page::{self, Form, PageError, Viewer};
use crate::status::switch::{self as switches, Subject, Throw};

use super::*;

/// Throws the admin's switch from a form: `action` is `suspend` (with a
/// `reason`) or `resume`; the form asked for confirmation first.
async fn throw_switch(
    viewer: &Viewer,
    subject: Subject,
    form: &Form,
    back: String,
) -> Result<HttpResponse, PageError> {
    viewer.check_csrf(form.get("csrf"))?;
    if !viewer.has(Role::Admin) {
        return Err(PageError::Forbidden(
            "Only an admin suspends or resumes.".into(),
        ));
    }
    let throw = match form.get("action") {
        Some("suspend") => match form.text("reason") {
            Some(reason) => Throw::Suspend { reason },
            None => {
                return Ok(page::redirect(&format!("{back}?done=reason-missing")));
            }
        },
        Some("resume") => Throw::Resume {
            reason: form.text("reason"),
        },
        _ => return Err(PageError::Forbidden("Unknown switch action.".into())),
    };
    let suspending = matches!(throw, Throw::Suspend { .. });
    let state = &viewer.state;
    let result = switches::throw(
        &state.work,
        actor(viewer),
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
    viewer: Viewer,
    path: web::Path<String>,
    form: Form,
) -> Result<HttpResponse, PageError> {
    let provider = provider_slug(&path)?;
    let back = format!("/providers/{provider}");
    throw_switch(&viewer, Subject::Provider(provider), &form, back).await
}

pub(super) async fn switch_model(
    viewer: Viewer,
    path: web::Path<(String, String)>,
    form: Form,
) -> Result<HttpResponse, PageError> {
    let (provider, model) = (provider_slug(&path.0)?, model_slug(&path.1)?);
    let back = format!("/providers/{provider}/models/{model}");
    throw_switch(&viewer, Subject::Model(provider, model), &form, back).await
}
