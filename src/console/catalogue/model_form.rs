//! Registering and editing a model.

use actix_web::{HttpResponse, web};
use askama::Template;

use crate::console::page::{Layout, Notice, PageError, Posted, Viewer, forms};
use crate::console::words;
use crate::providers::{Hosting, Modality, ModelPatch, NewModel, service};
use crate::validation::FieldError;
use serde::Deserialize;

use super::*;

/// The fields of the model form, as typed.
#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct ModelFields {
    #[serde(default, deserialize_with = "forms::trimmed")]
    slug: String,
    #[serde(default, deserialize_with = "forms::trimmed")]
    name: String,
    #[serde(default, deserialize_with = "forms::trimmed")]
    version: String,
    #[serde(default, deserialize_with = "forms::trimmed")]
    modality: String,
    #[serde(default, deserialize_with = "forms::trimmed")]
    hosting: String,
    #[serde(default, deserialize_with = "forms::trimmed")]
    description: String,
    /// Set from the form's `revision`, not read as a field.
    #[serde(skip)]
    revision: i64,
}

struct Choice {
    value: &'static str,
    label: String,
}

#[derive(Template)]
#[template(path = "console/model_form.html")]
struct ModelForm {
    layout: Layout,
    csrf: String,
    provider: String,
    editing: bool,
    action: String,
    fields: ModelFields,
    modalities: Vec<Choice>,
    hostings: Vec<Choice>,
    errors: Vec<FieldError>,
}

impl ModelForm {
    fn error(&self, field: &str) -> Option<String> {
        words::field_error(&self.errors, field)
    }
}

fn model_form(
    viewer: &Viewer,
    provider: &str,
    editing: Option<&str>,
    fields: ModelFields,
    errors: Vec<FieldError>,
    notice: Option<Notice>,
) -> HttpResponse {
    let (title, action) = match editing {
        Some(model) => (
            format!("Edit {provider}/{model}"),
            format!("/providers/{provider}/models/{model}/edit"),
        ),
        None => (
            format!("Register a model of {provider}"),
            format!("/providers/{provider}/models"),
        ),
    };
    form_page(viewer, title, errors, notice, |layout, errors| ModelForm {
        layout,
        csrf: viewer.session.csrf.clone(),
        provider: provider.to_owned(),
        editing: editing.is_some(),
        action,
        fields,
        modalities: Modality::ALL
            .iter()
            .map(|m| Choice {
                value: m.as_str(),
                label: words::label(m.as_str()),
            })
            .collect(),
        hostings: Hosting::ALL
            .iter()
            .map(|h| Choice {
                value: h.as_str(),
                label: words::label(h.as_str()),
            })
            .collect(),
        errors,
    })
}

pub(super) async fn new_model(
    viewer: Viewer,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    writer(&viewer)?;
    let provider = provider_slug(&path)?;
    Ok(model_form(
        &viewer,
        &provider,
        None,
        ModelFields::default(),
        Vec::new(),
        None,
    ))
}

/// A choice of the form, or a field problem.
fn choice<T: Copy>(
    text: &str,
    field: &str,
    parse: fn(&str) -> Option<T>,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    if text.is_empty() {
        return None;
    }
    let parsed = parse(text);
    if parsed.is_none() {
        errors.push(FieldError::new(field, "is not one of the choices"));
    }
    parsed
}

/// `POST /providers/{provider}/models`.
pub(super) async fn create_model(
    path: web::Path<String>,
    posted: Posted<ModelFields>,
) -> Result<HttpResponse, PageError> {
    let (viewer, fields, _) = by_writer(posted)?;
    let provider = provider_slug(&path)?;
    let mut errors = Vec::new();
    let input = NewModel {
        slug: Some(fields.slug.clone()),
        name: Some(fields.name.clone()),
        version: optional(&fields.version),
        modality: choice(&fields.modality, "modality", Modality::parse, &mut errors),
        hosting: choice(&fields.hosting, "hosting", Hosting::parse, &mut errors),
        description: optional(&fields.description),
    };
    let state = &viewer.state;
    Ok(submit(
        input,
        errors,
        async |input| {
            service::create_model(
                &state.work,
                viewer.actor(),
                provider.clone(),
                input,
                state.clock.now(),
            )
            .await
        },
        |model| format!("/providers/{provider}/models/{}?done=created", model.slug),
        |errors, notice| model_form(&viewer, &provider, None, fields, errors, notice),
    )
    .await)
}

pub(super) async fn edit_model(
    viewer: Viewer,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    writer(&viewer)?;
    let (provider, model) = (provider_slug(&path.0)?, model_slug(&path.1)?);
    let state = viewer.state.clone();
    let (p, m) = (provider.clone(), model.clone());
    let (_, row) = state
        .store
        .run(move |conn| service::model(conn, &p, &m))
        .await
        .map_err(not_found)?;
    let fields = ModelFields {
        slug: row.slug.to_string(),
        name: row.name.clone(),
        version: row.model_version.clone().unwrap_or_default(),
        modality: row
            .modality
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default(),
        hosting: row
            .hosting
            .map(|h| h.as_str().to_owned())
            .unwrap_or_default(),
        description: row.description.clone().unwrap_or_default(),
        revision: row.version,
    };
    Ok(model_form(
        &viewer,
        &provider,
        Some(&model),
        fields,
        Vec::new(),
        None,
    ))
}

/// `POST /providers/{provider}/models/{model}/edit`.
pub(super) async fn update_model(
    path: web::Path<(String, String)>,
    posted: Posted<ModelFields>,
) -> Result<HttpResponse, PageError> {
    let (viewer, mut fields, expected) = by_writer(posted)?;
    let (provider, model) = (provider_slug(&path.0)?, model_slug(&path.1)?);
    fields.slug = model.to_string();
    fields.revision = expected.unwrap_or(0);
    let mut errors = Vec::new();
    let patch = ModelPatch {
        name: Some(fields.name.clone()),
        version: Some(optional(&fields.version)),
        modality: Some(choice(
            &fields.modality,
            "modality",
            Modality::parse,
            &mut errors,
        )),
        hosting: Some(choice(
            &fields.hosting,
            "hosting",
            Hosting::parse,
            &mut errors,
        )),
        description: Some(optional(&fields.description)),
    };
    let state = &viewer.state;
    Ok(submit(
        patch,
        errors,
        async |patch| {
            service::update_model(
                &state.work,
                viewer.actor(),
                (provider.clone(), model.clone()),
                patch,
                expected,
                state.clock.now(),
            )
            .await
        },
        |_| format!("/providers/{provider}/models/{model}?done=saved"),
        |errors, notice| model_form(&viewer, &provider, Some(&model), fields, errors, notice),
    )
    .await)
}
