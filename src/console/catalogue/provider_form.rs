//! Registering and editing a provider.

use actix_web::{HttpResponse, web};
use askama::Template;

use crate::console::page::{Layout, Notice, PageError, Posted, Viewer, forms};
use crate::console::words;
use crate::providers::{Contact, NewProvider, ProviderPatch, service};
use crate::validation::FieldError;
use serde::Deserialize;

use super::*;

/// The fields of the provider form, as typed.
#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct ProviderFields {
    #[serde(default, deserialize_with = "forms::trimmed")]
    slug: String,
    #[serde(default, deserialize_with = "forms::trimmed")]
    name: String,
    #[serde(default, deserialize_with = "forms::trimmed")]
    website: String,
    /// One contact a line, as typed.
    #[serde(default)]
    contacts: String,
    #[serde(default, deserialize_with = "forms::trimmed")]
    notes: String,
    /// Set from the form's `revision`, not read as a field.
    #[serde(skip)]
    revision: i64,
}

#[derive(Template)]
#[template(path = "console/provider_form.html")]
struct ProviderForm {
    layout: Layout,
    csrf: String,
    editing: bool,
    action: String,
    fields: ProviderFields,
    errors: Vec<FieldError>,
}

impl ProviderForm {
    fn error(&self, field: &str) -> Option<String> {
        words::field_error(&self.errors, field)
    }
}

/// Contacts as one line each: `email, name, role` (name and role optional).
fn contacts_text(contacts: &[Contact]) -> String {
    contacts
        .iter()
        .map(|c| {
            let mut parts = vec![c.email.clone()];
            parts.push(c.name.clone().unwrap_or_default());
            parts.push(c.role.clone().unwrap_or_default());
            while parts.last().is_some_and(|p| p.is_empty()) {
                parts.pop();
            }
            parts.join(", ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn parse_contacts(text: &str) -> Vec<Contact> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|line| {
            let mut parts = line.split(',').map(|p| p.trim().to_owned());
            let email = parts.next().unwrap_or_default();
            let name = parts.next().filter(|p| !p.is_empty());
            let role = parts.next().filter(|p| !p.is_empty());
            Contact { name, email, role }
        })
        .collect()
}

fn provider_form(
    viewer: &Viewer,
    editing: Option<&str>,
    fields: ProviderFields,
    errors: Vec<FieldError>,
    notice: Option<Notice>,
) -> HttpResponse {
    let (title, action) = match editing {
        Some(slug) => (format!("Edit {slug}"), format!("/providers/{slug}/edit")),
        None => ("Register a provider".to_owned(), "/providers".to_owned()),
    };
    form_page(viewer, title, errors, notice, |layout, errors| {
        ProviderForm {
            layout,
            csrf: viewer.session.csrf.clone(),
            editing: editing.is_some(),
            action,
            fields,
            errors,
        }
    })
}

pub(super) async fn new_provider(viewer: Viewer) -> Result<HttpResponse, PageError> {
    writer(&viewer)?;
    Ok(provider_form(
        &viewer,
        None,
        ProviderFields::default(),
        Vec::new(),
        None,
    ))
}

/// `POST /providers`.
pub(super) async fn create_provider(
    posted: Posted<ProviderFields>,
) -> Result<HttpResponse, PageError> {
    let (viewer, fields, _) = by_writer(posted)?;
    let input = NewProvider {
        slug: Some(fields.slug.clone()),
        name: Some(fields.name.clone()),
        website: optional(&fields.website),
        contacts: parse_contacts(&fields.contacts),
        notes: optional(&fields.notes),
    };
    let state = &viewer.state;
    Ok(submit(
        input,
        Vec::new(),
        async |input| {
            service::create_provider(&state.work, viewer.actor(), input, state.clock.now()).await
        },
        |provider| format!("/providers/{}?done=created", provider.slug),
        |errors, notice| provider_form(&viewer, None, fields, errors, notice),
    )
    .await)
}

pub(super) async fn edit_provider(
    viewer: Viewer,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    writer(&viewer)?;
    let slug = provider_slug(&path)?;
    let state = viewer.state.clone();
    let row = state
        .store
        .run(move |conn| service::provider(conn, &slug))
        .await
        .map_err(not_found)?;
    let fields = ProviderFields {
        slug: row.slug.to_string(),
        name: row.name.clone(),
        website: row.website.clone().unwrap_or_default(),
        contacts: contacts_text(row.contacts.get()),
        notes: row.notes.clone().unwrap_or_default(),
        revision: row.version,
    };
    Ok(provider_form(
        &viewer,
        Some(row.slug.as_str()),
        fields,
        Vec::new(),
        None,
    ))
}

/// `POST /providers/{provider}/edit`.
pub(super) async fn update_provider(
    path: web::Path<String>,
    posted: Posted<ProviderFields>,
) -> Result<HttpResponse, PageError> {
    let (viewer, mut fields, expected) = by_writer(posted)?;
    let slug = provider_slug(&path)?;
    fields.slug = slug.to_string();
    fields.revision = expected.unwrap_or(0);
    let patch = ProviderPatch {
        name: Some(fields.name.clone()),
        website: Some(optional(&fields.website)),
        contacts: Some(parse_contacts(&fields.contacts)),
        notes: Some(optional(&fields.notes)),
    };
    let state = &viewer.state;
    Ok(submit(
        patch,
        Vec::new(),
        async |patch| {
            service::update_provider(
                &state.work,
                viewer.actor(),
                slug.clone(),
                patch,
                expected,
                state.clock.now(),
            )
            .await
        },
        |provider| format!("/providers/{}?done=saved", provider.slug),
        |errors, notice| provider_form(&viewer, Some(&slug), fields, errors, notice),
    )
    .await)
}

#[cfg(test)]
mod tests {
    use super::ProviderFields;
    use crate::console::page::Form;

    #[test]
    fn the_form_as_a_browser_posts_it_is_read() {
        let body = b"csrf=x&revision=0&slug=acme&name=Acme+AI&website=https%3A%2F%2Facme.example&contacts=security%40acme.example%2C+Sam&notes=";
        let fields: ProviderFields = Form::parse(body).unwrap().fields().unwrap();
        assert_eq!(fields.name, "Acme AI");
    }
}
