//! Providers and models, one file per page area: [`providers`] (the list
//! with search and each model's clearance badge, a provider's page),
//! [`provider_form`], [`models`] (a model's page: clearance and its
//! conditions in plain words, the attestation, review history),
//! [`model_form`], and the admin's [`switch`].

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use validator::Validate;

use super::page::{self, Layout, Notice, PageError, Posted, Viewer};
use super::words;

use crate::ids::{ModelSlug, ProviderSlug};
use crate::providers::CatalogueError;
use crate::reviews::ReviewSummary;
use crate::status::Status;
use crate::validation::FieldError;

mod model_form;
mod models;
mod provider_form;
mod providers;
mod switch;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/providers")
            .get(providers::list)
            .post(provider_form::create_provider),
    )
    .service(web::resource("/providers/new").get(provider_form::new_provider))
    .service(web::resource("/providers/{provider}").get(providers::provider_page))
    .service(
        web::resource("/providers/{provider}/edit")
            .get(provider_form::edit_provider)
            .post(provider_form::update_provider),
    )
    .service(web::resource("/providers/{provider}/models").post(model_form::create_model))
    .service(web::resource("/providers/{provider}/models/new").get(model_form::new_model))
    .service(web::resource("/providers/{provider}/switch").post(switch::switch_provider))
    .service(web::resource("/providers/{provider}/models/{model}").get(models::model_page))
    .service(
        web::resource("/providers/{provider}/models/{model}/edit")
            .get(model_form::edit_model)
            .post(model_form::update_model),
    )
    .service(
        web::resource("/providers/{provider}/models/{model}/switch").post(switch::switch_model),
    )
    .service(
        web::resource("/providers/{provider}/models/{model}/attestation").get(models::attestation),
    );
}

use crate::auth::roles::MANAGERS;

fn provider_slug(text: &str) -> Result<ProviderSlug, PageError> {
    ProviderSlug::parse(text)
        .map_err(|_| PageError::NotFound(format!("There is no provider `{text}`.")))
}

fn model_slug(text: &str) -> Result<ModelSlug, PageError> {
    ModelSlug::parse(text).map_err(|_| PageError::NotFound(format!("There is no model `{text}`.")))
}

fn not_found(error: CatalogueError) -> PageError {
    match error {
        CatalogueError::ProviderNotFound(_) | CatalogueError::ModelNotFound(..) => {
            PageError::NotFound(format!("{}.", words_capitalised(&error.to_string())))
        }
        CatalogueError::Store(e) => e.into(),
        other => PageError::Forbidden(other.to_string()),
    }
}

fn words_capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A model's clearance, as a badge.
#[derive(Debug, Clone)]
pub struct Badge {
    pub class: &'static str,
    pub label: String,
}

impl Badge {
    pub fn of(status: Status) -> Self {
        Badge {
            class: status.as_str(),
            label: words::label(status.as_str()),
        }
    }
}

fn optional(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

fn writer(viewer: &Viewer) -> Result<(), PageError> {
    if viewer.has_any(MANAGERS) {
        Ok(())
    } else {
        Err(PageError::Forbidden(
            "Only a vendor manager or an admin changes the catalogue.".into(),
        ))
    }
}

/// A catalogue form posted, refused unless a writer posted it: the viewer,
/// the fields as typed, and the revision the form was rendered from.
fn by_writer<T>(posted: Posted<T>) -> Result<(Viewer, T, Option<i64>), PageError> {
    let expected = posted.revision();
    writer(&posted.viewer)?;
    Ok((posted.viewer, posted.fields, expected))
}

/// A catalogue form as a page: 200 when it is blank or as stored, 422 when
/// it shows the problems of a post (field errors or the service's refusal).
fn form_page<T: Template>(
    viewer: &Viewer,
    title: String,
    errors: Vec<FieldError>,
    notice: Option<Notice>,
    form: impl FnOnce(Layout, Vec<FieldError>) -> T,
) -> HttpResponse {
    let mut layout = viewer.layout(title, "/providers");
    if let Some(notice) = notice {
        layout = layout.notice(notice);
    }
    let status = if errors.is_empty() && layout.notices.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    page::html(status, &form(layout, errors))
}

/// A catalogue form posted: with problems (those `errors` holds, then the
/// input's own validation) it is shown `again`; otherwise `save` stores the
/// input and the viewer goes to the page `done` names, or sees the form
/// again with the service's refusal.
async fn submit<I: Validate, T>(
    input: I,
    mut errors: Vec<FieldError>,
    save: impl AsyncFnOnce(I) -> Result<T, CatalogueError>,
    done: impl FnOnce(T) -> String,
    again: impl FnOnce(Vec<FieldError>, Option<Notice>) -> HttpResponse,
) -> HttpResponse {
    if let Err(invalid) = input.validate() {
        errors.extend(FieldError::from_validator(&invalid));
    }
    if !errors.is_empty() {
        return again(errors, None);
    }
    match save(input).await {
        Ok(saved) => page::redirect(&done(saved)),
        Err(error) => {
            let (notice, errors) = words::catalogue_refusal(&error);
            again(errors, Some(notice))
        }
    }
}

/// What `?done=` after a change says.
pub fn done_notice(done: Option<&str>) -> Option<Notice> {
    if done == Some("reason-missing") {
        return Some(Notice::bad("A suspension needs a reason; nothing changed."));
    }
    let text = match done? {
        "created" => "Registered.",
        "saved" => "Saved.",
        "suspended" => "Suspended: every integrator is now refused.",
        "resumed" => "The suspension is lifted.",
        "started" => "The review has started; its first stages are open.",
        _ => return None,
    };
    Some(Notice::ok(text))
}

struct ReviewLine {
    href: String,
    subject: String,
    kind: String,
    state: String,
    badge: String,
    tier: String,
    started: String,
}

fn review_lines(reviews: &[ReviewSummary]) -> Vec<ReviewLine> {
    reviews
        .iter()
        .map(|r| ReviewLine {
            href: format!("/reviews/{}", r.id),
            subject: match &r.model {
                Some(m) => format!("{}/{m}", r.provider),
                None => format!("{} (every model)", r.provider),
            },
            kind: words::label(r.kind.as_str()),
            state: words::label(r.state.as_str()),
            badge: r.state.as_str().to_owned(),
            tier: r.tier.as_str().to_owned(),
            started: words::day(r.created_at),
        })
        .collect()
}

/// A workflow a review may be started with, for a form's choice.
pub(crate) struct WorkflowChoice {
    pub(crate) id: String,
    pub(crate) title: String,
}

/// The workflows a review may be started with.
pub(crate) fn workflow_choices(viewer: &Viewer) -> Vec<WorkflowChoice> {
    viewer
        .state
        .reviews
        .catalog
        .all()
        .map(|w| WorkflowChoice {
            id: w.workflow.id.clone(),
            title: w.workflow.title.clone(),
        })
        .collect()
}
