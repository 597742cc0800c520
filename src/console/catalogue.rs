//! Providers and models: the list with search and each model's clearance
//! badge, a provider's page (contacts, models, reviews), a model's page
//! (clearance and its conditions in plain words, valid until, the
//! attestation, review history), their forms, and the admin's switch.

use std::collections::{BTreeMap, HashMap};

use actix_web::http::StatusCode;
use actix_web::http::header::{ContentDisposition, DispositionParam, DispositionType};
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use validator::Validate;

use super::page::{self, Form, Layout, Notice, PageError, Viewer};
use super::words;
use crate::audit::Actor;
use crate::auth::Role;
use crate::db::PageRequest;
use crate::ids::{ModelSlug, ProviderId, ProviderSlug};
use crate::providers::{
    CatalogueError, Contact, Hosting, Modality, ModelPatch, NewModel, NewProvider, ProviderPatch,
    service, store,
};
use crate::reviews::ReviewSummary;
use crate::reviews::store::ReviewFilter;
use crate::status::Status;
use crate::status::switch::{self, Subject, Throw};
use crate::validation::FieldError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/providers").get(list).post(create_provider))
        .service(web::resource("/providers/new").get(new_provider))
        .service(web::resource("/providers/{provider}").get(provider_page))
        .service(
            web::resource("/providers/{provider}/edit")
                .get(edit_provider)
                .post(update_provider),
        )
        .service(web::resource("/providers/{provider}/models").post(create_model))
        .service(web::resource("/providers/{provider}/models/new").get(new_model))
        .service(web::resource("/providers/{provider}/switch").post(switch_provider))
        .service(web::resource("/providers/{provider}/models/{model}").get(model_page))
        .service(
            web::resource("/providers/{provider}/models/{model}/edit")
                .get(edit_model)
                .post(update_model),
        )
        .service(web::resource("/providers/{provider}/models/{model}/switch").post(switch_model))
        .service(
            web::resource("/providers/{provider}/models/{model}/attestation").get(attestation),
        );
}

const WRITERS: &[Role] = &[Role::VendorManager, Role::Admin];

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

struct ModelLine {
    href: String,
    slug: String,
    name: String,
    badge: Badge,
}

struct ProviderLine {
    href: String,
    slug: String,
    name: String,
    suspended: bool,
    /// The first [`MODELS_LISTED`] models (those matching a search first).
    models: Vec<ModelLine>,
    /// What the rest come to: `12 more: 9 approved, 3 not reviewed`.
    more: Option<String>,
}

/// How many models of a provider the list shows; its page shows them all.
const MODELS_LISTED: usize = 8;

#[derive(Template)]
#[template(path = "console/providers.html")]
struct ListPage {
    layout: Layout,
    q: String,
    providers: Vec<ProviderLine>,
    next: Option<String>,
    can_write: bool,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    after: Option<String>,
}

/// `GET /providers`.
async fn list(viewer: Viewer, query: web::Query<ListQuery>) -> Result<HttpResponse, PageError> {
    let state = viewer.state.clone();
    let q = query.q.clone().unwrap_or_default().trim().to_owned();
    let page = PageRequest {
        limit: 50,
        after: query.after.clone().filter(|a| !a.is_empty()),
    };
    let search = q.clone();
    let (providers, models) = state
        .store
        .run(move |conn| {
            let providers = if search.is_empty() {
                store::list_providers(conn, &page)?
            } else {
                store::search_providers(conn, &search, &page)?
            };
            let ids: Vec<_> = providers.iter().map(|p| p.id.clone()).collect();
            let models = store::model_names_of(conn, &ids)?;
            Ok::<_, crate::db::StoreError>((providers, models))
        })
        .await?;
    let more = providers.len() > 50;
    let snapshot = state.status.snapshot();
    let now = state.clock.now();
    let mut by_provider: HashMap<&ProviderId, Vec<&store::ModelName>> = HashMap::new();
    for model in &models {
        by_provider
            .entry(&model.provider_id)
            .or_default()
            .push(model);
    }
    let needle = q.to_lowercase();
    let lines: Vec<ProviderLine> = providers
        .iter()
        .take(50)
        .map(|p| {
            let mut models = by_provider.remove(&p.id).unwrap_or_default();
            if !needle.is_empty() {
                // Stable: the matching models first, each group by slug.
                models.sort_by_key(|m| {
                    !(m.slug.contains(&needle) || m.name.to_lowercase().contains(&needle))
                });
            }
            let status = |m: &store::ModelName| snapshot.clearance(&p.slug, &m.slug, now).status;
            let rest = models.split_off(models.len().min(MODELS_LISTED));
            ProviderLine {
                href: format!("/providers/{}", p.slug),
                slug: p.slug.to_string(),
                name: p.name.clone(),
                suspended: p.suspended_at.is_some(),
                models: models
                    .iter()
                    .map(|m| ModelLine {
                        href: format!("/providers/{}/models/{}", p.slug, m.slug),
                        slug: m.slug.to_string(),
                        name: m.name.clone(),
                        badge: Badge::of(status(m)),
                    })
                    .collect(),
                more: (!rest.is_empty()).then(|| {
                    let mut counts: BTreeMap<Status, usize> = BTreeMap::new();
                    for m in &rest {
                        *counts.entry(status(m)).or_default() += 1;
                    }
                    let counts: Vec<String> = counts
                        .into_iter()
                        .map(|(status, n)| format!("{n} {}", words::label(status.as_str())))
                        .collect();
                    format!("{} more: {}", rest.len(), counts.join(", "))
                }),
            }
        })
        .collect();
    let next = more.then(|| {
        let mut url = url::form_urlencoded::Serializer::for_suffix(String::from("/providers?"), 11);
        if !q.is_empty() {
            url.append_pair("q", &q);
        }
        url.append_pair(
            "after",
            &lines.last().map(|l| l.slug.clone()).unwrap_or_default(),
        );
        url.finish()
    });
    Ok(page::html(
        StatusCode::OK,
        &ListPage {
            layout: viewer.layout("Providers", "/providers"),
            q,
            providers: lines,
            next,
            can_write: viewer.has_any(WRITERS),
        },
    ))
}

/// The fields of the provider form, as typed.
#[derive(Debug, Clone, Default)]
struct ProviderFields {
    slug: String,
    name: String,
    website: String,
    contacts: String,
    notes: String,
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

fn provider_fields(form: &Form) -> ProviderFields {
    ProviderFields {
        slug: form.text("slug").unwrap_or_default(),
        name: form.text("name").unwrap_or_default(),
        website: form.text("website").unwrap_or_default(),
        contacts: form.get("contacts").unwrap_or_default().to_owned(),
        notes: form.get("notes").unwrap_or_default().trim().to_owned(),
        revision: form.revision().unwrap_or(0),
    }
}

fn optional(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
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
    let mut layout = viewer.layout(title, "/providers");
    if let Some(notice) = notice {
        layout = layout.notice(notice);
    }
    let status = if errors.is_empty() && layout.notices.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    page::html(
        status,
        &ProviderForm {
            layout,
            csrf: viewer.session.csrf.clone(),
            editing: editing.is_some(),
            action,
            fields,
            errors,
        },
    )
}

fn writer(viewer: &Viewer) -> Result<(), PageError> {
    if viewer.has_any(WRITERS) {
        Ok(())
    } else {
        Err(PageError::Forbidden(
            "Only a vendor manager or an admin changes the catalogue.".into(),
        ))
    }
}

fn actor(viewer: &Viewer) -> Actor {
    Actor::person(&viewer.session.principal, None)
}

async fn new_provider(viewer: Viewer) -> Result<HttpResponse, PageError> {
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
async fn create_provider(viewer: Viewer, form: Form) -> Result<HttpResponse, PageError> {
    viewer.check_csrf(form.get("csrf"))?;
    writer(&viewer)?;
    let fields = provider_fields(&form);
    let input = NewProvider {
        slug: Some(fields.slug.clone()),
        name: Some(fields.name.clone()),
        website: optional(&fields.website),
        contacts: parse_contacts(&fields.contacts),
        notes: optional(&fields.notes),
    };
    if let Err(errors) = input.validate() {
        return Ok(provider_form(
            &viewer,
            None,
            fields,
            FieldError::from_validator(&errors),
            None,
        ));
    }
    let state = viewer.state.clone();
    match service::create_provider(&state.work, actor(&viewer), input, state.clock.now()).await {
        Ok(provider) => Ok(page::redirect(&format!(
            "/providers/{}?done=created",
            provider.slug
        ))),
        Err(error) => {
            let (notice, errors) = words::catalogue_refusal(&error);
            Ok(provider_form(&viewer, None, fields, errors, Some(notice)))
        }
    }
}

async fn edit_provider(viewer: Viewer, path: web::Path<String>) -> Result<HttpResponse, PageError> {
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
async fn update_provider(
    viewer: Viewer,
    path: web::Path<String>,
    form: Form,
) -> Result<HttpResponse, PageError> {
    viewer.check_csrf(form.get("csrf"))?;
    writer(&viewer)?;
    let slug = provider_slug(&path)?;
    let mut fields = provider_fields(&form);
    fields.slug = slug.to_string();
    let patch = ProviderPatch {
        name: Some(fields.name.clone()),
        website: Some(optional(&fields.website)),
        contacts: Some(parse_contacts(&fields.contacts)),
        notes: Some(optional(&fields.notes)),
    };
    if let Err(errors) = patch.validate() {
        return Ok(provider_form(
            &viewer,
            Some(&slug),
            fields,
            FieldError::from_validator(&errors),
            None,
        ));
    }
    let state = viewer.state.clone();
    let expected = form.revision();
    let result = service::update_provider(
        &state.work,
        actor(&viewer),
        slug.clone(),
        patch,
        expected,
        state.clock.now(),
    )
    .await;
    match result {
        Ok(provider) => Ok(page::redirect(&format!(
            "/providers/{}?done=saved",
            provider.slug
        ))),
        Err(error) => {
            let (notice, errors) = words::catalogue_refusal(&error);
            Ok(provider_form(
                &viewer,
                Some(&slug),
                fields,
                errors,
                Some(notice),
            ))
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

struct WorkflowChoice {
    id: String,
    title: String,
}

fn workflow_choices(viewer: &Viewer) -> Vec<WorkflowChoice> {
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

#[derive(Template)]
#[template(path = "console/provider.html")]
struct ProviderPage {
    layout: Layout,
    csrf: String,
    slug: String,
    name: String,
    website: Option<String>,
    notes: Option<String>,
    suspended: bool,
    contacts: Vec<Contact>,
    models: Vec<ModelLine>,
    reviews: Vec<ReviewLine>,
    workflows: Vec<WorkflowChoice>,
    can_write: bool,
    is_admin: bool,
}

#[derive(Debug, Deserialize)]
pub struct Done {
    done: Option<String>,
}

/// `GET /providers/{provider}`.
async fn provider_page(
    viewer: Viewer,
    path: web::Path<String>,
    query: web::Query<Done>,
) -> Result<HttpResponse, PageError> {
    let slug = provider_slug(&path)?;
    let state = viewer.state.clone();
    let catalog = state.reviews.catalog.clone();
    let now = state.clock.now();
    let lookup = slug.clone();
    let (provider, models, reviews) = state
        .store
        .run(move |conn| {
            let provider = service::provider(conn, &lookup)?;
            let models = store::models_of(conn, std::slice::from_ref(&provider.id))?;
            let filter = ReviewFilter {
                provider: Some(lookup.to_string()),
                ..ReviewFilter::default()
            };
            let reviews = crate::reviews::store::list(conn, &catalog, &filter, None, 50, now)
                .map_err(|e| {
                    CatalogueError::Store(crate::db::StoreError::Migration(e.to_string()))
                })?;
            Ok::<_, CatalogueError>((provider, models, reviews))
        })
        .await
        .map_err(not_found)?;
    let snapshot = state.status.snapshot();
    let models = models
        .iter()
        .map(|m| ModelLine {
            href: format!("/providers/{}/models/{}", slug, m.slug),
            slug: m.slug.to_string(),
            name: m.name.clone(),
            badge: Badge::of(snapshot.clearance(&slug, &m.slug, now).status),
        })
        .collect();
    let mut layout = viewer.layout(provider.name.clone(), "/providers");
    if let Some(notice) = done_notice(query.done.as_deref()) {
        layout = layout.notice(notice);
    }
    let staff = viewer.has_any(crate::auth::STAFF);
    Ok(page::html(
        StatusCode::OK,
        &ProviderPage {
            layout,
            csrf: viewer.session.csrf.clone(),
            slug: slug.to_string(),
            name: provider.name.clone(),
            website: provider.website.clone(),
            // Integrators read a provider's name, not its people.
            notes: provider.notes.clone().filter(|_| staff),
            suspended: provider.suspended_at.is_some(),
            contacts: if staff {
                provider.contacts.get().clone()
            } else {
                Vec::new()
            },
            models,
            reviews: review_lines(&reviews),
            workflows: workflow_choices(&viewer),
            can_write: viewer.has_any(WRITERS),
            is_admin: viewer.has(Role::Admin),
        },
    ))
}

#[derive(Debug, Clone, Default)]
struct ModelFields {
    slug: String,
    name: String,
    version: String,
    modality: String,
    hosting: String,
    description: String,
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

fn model_fields(form: &Form) -> ModelFields {
    ModelFields {
        slug: form.text("slug").unwrap_or_default(),
        name: form.text("name").unwrap_or_default(),
        version: form.text("version").unwrap_or_default(),
        modality: form.text("modality").unwrap_or_default(),
        hosting: form.text("hosting").unwrap_or_default(),
        description: form
            .get("description")
            .unwrap_or_default()
            .trim()
            .to_owned(),
        revision: form.revision().unwrap_or(0),
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
    let mut layout = viewer.layout(title, "/providers");
    if let Some(notice) = notice {
        layout = layout.notice(notice);
    }
    let status = if errors.is_empty() && layout.notices.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    page::html(
        status,
        &ModelForm {
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
        },
    )
}

async fn new_model(viewer: Viewer, path: web::Path<String>) -> Result<HttpResponse, PageError> {
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
async fn create_model(
    viewer: Viewer,
    path: web::Path<String>,
    form: Form,
) -> Result<HttpResponse, PageError> {
    viewer.check_csrf(form.get("csrf"))?;
    writer(&viewer)?;
    let provider = provider_slug(&path)?;
    let fields = model_fields(&form);
    let mut errors = Vec::new();
    let input = NewModel {
        slug: Some(fields.slug.clone()),
        name: Some(fields.name.clone()),
        version: optional(&fields.version),
        modality: choice(&fields.modality, "modality", Modality::parse, &mut errors),
        hosting: choice(&fields.hosting, "hosting", Hosting::parse, &mut errors),
        description: optional(&fields.description),
    };
    if let Err(invalid) = input.validate() {
        errors.extend(FieldError::from_validator(&invalid));
    }
    if !errors.is_empty() {
        return Ok(model_form(&viewer, &provider, None, fields, errors, None));
    }
    let state = viewer.state.clone();
    let created = service::create_model(
        &state.work,
        actor(&viewer),
        provider.clone(),
        input,
        state.clock.now(),
    )
    .await;
    match created {
        Ok(model) => Ok(page::redirect(&format!(
            "/providers/{provider}/models/{}?done=created",
            model.slug
        ))),
        Err(error) => {
            let (notice, errors) = words::catalogue_refusal(&error);
            Ok(model_form(
                &viewer,
                &provider,
                None,
                fields,
                errors,
                Some(notice),
            ))
        }
    }
}

async fn edit_model(
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
async fn update_model(
    viewer: Viewer,
    path: web::Path<(String, String)>,
    form: Form,
) -> Result<HttpResponse, PageError> {
    viewer.check_csrf(form.get("csrf"))?;
    writer(&viewer)?;
    let (provider, model) = (provider_slug(&path.0)?, model_slug(&path.1)?);
    let mut fields = model_fields(&form);
    fields.slug = model.to_string();
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
    if let Err(invalid) = patch.validate() {
        errors.extend(FieldError::from_validator(&invalid));
    }
    if !errors.is_empty() {
        return Ok(model_form(
            &viewer,
            &provider,
            Some(&model),
            fields,
            errors,
            None,
        ));
    }
    let state = viewer.state.clone();
    let result = service::update_model(
        &state.work,
        actor(&viewer),
        (provider.clone(), model.clone()),
        patch,
        form.revision(),
        state.clock.now(),
    )
    .await;
    match result {
        Ok(_) => Ok(page::redirect(&format!(
            "/providers/{provider}/models/{model}?done=saved"
        ))),
        Err(error) => {
            let (notice, errors) = words::catalogue_refusal(&error);
            Ok(model_form(
                &viewer,
                &provider,
                Some(&model),
                fields,
                errors,
                Some(notice),
            ))
        }
    }
}

#[derive(Template)]
#[template(path = "console/model.html")]
struct ModelPage {
    layout: Layout,
    csrf: String,
    provider: String,
    provider_name: String,
    slug: String,
    name: String,
    version: Option<String>,
    modality: Option<String>,
    hosting: Option<String>,
    description: Option<String>,
    badge: Badge,
    tier: Option<String>,
    conditions: Vec<String>,
    valid_until: Option<String>,
    decided_at: Option<String>,
    suspended_reason: Option<String>,
    review_href: Option<String>,
    suspended: bool,
    reviews: Vec<ReviewLine>,
    workflows: Vec<WorkflowChoice>,
    can_write: bool,
    is_admin: bool,
    /// The integrators of the last 30 days (shown to vendor managers and admins).
    askers: Vec<AskerLine>,
}

/// An integrator that asked about a model lately, as the model page lists it.
struct AskerLine {
    sub: String,
    email: Option<String>,
    allowed: i64,
    denied: i64,
    use_cases: String,
    last: String,
}

impl AskerLine {
    fn of(integrator: crate::usage::Integrator) -> Self {
        Self {
            use_cases: integrator.use_cases.join(", "),
            last: words::when(integrator.last_hour),
            sub: integrator.sub,
            email: integrator.email,
            allowed: integrator.allowed,
            denied: integrator.denied,
        }
    }
}

/// The integrators that asked about `provider/model` in the last 30 days
/// (this instance's tallies written first).
async fn askers(
    state: &crate::http::AppState,
    provider: &ProviderSlug,
    model: &ModelSlug,
) -> Result<Vec<AskerLine>, PageError> {
    crate::usage::write_now(state).await;
    let (p, m, now) = (provider.to_string(), model.to_string(), state.clock.now());
    let (_, integrators) = state
        .store
        .run(move |conn| {
            crate::usage::impact(conn, &p, Some(&m), now).map_err(crate::db::StoreError::from)
        })
        .await
        .map_err(|error| {
            tracing::error!(%error, "cannot read a model's usage");
            PageError::Internal
        })?;
    Ok(integrators.into_iter().map(AskerLine::of).collect())
}

/// `GET /providers/{provider}/models/{model}`.
async fn model_page(
    viewer: Viewer,
    path: web::Path<(String, String)>,
    query: web::Query<Done>,
) -> Result<HttpResponse, PageError> {
    let (provider, model) = (provider_slug(&path.0)?, model_slug(&path.1)?);
    let state = viewer.state.clone();
    let catalog = state.reviews.catalog.clone();
    let now = state.clock.now();
    let (p, m) = (provider.clone(), model.clone());
    let (provider_row, model_row, reviews) = state
        .store
        .run(move |conn| {
            let (provider_row, model_row) = service::model(conn, &p, &m)?;
            let filter = ReviewFilter {
                provider: Some(p.to_string()),
                model: Some(m.to_string()),
                ..ReviewFilter::default()
            };
            let mut reviews = crate::reviews::store::list(conn, &catalog, &filter, None, 50, now)
                .map_err(|e| {
                CatalogueError::Store(crate::db::StoreError::Migration(e.to_string()))
            })?;
            // Provider-wide reviews cover the model too.
            let wide = ReviewFilter {
                provider: Some(p.to_string()),
                ..ReviewFilter::default()
            };
            let provider_wide = crate::reviews::store::list(conn, &catalog, &wide, None, 50, now)
                .map_err(|e| {
                CatalogueError::Store(crate::db::StoreError::Migration(e.to_string()))
            })?;
            reviews.extend(provider_wide.into_iter().filter(|r| r.model.is_none()));
            reviews.sort_by_key(|r| std::cmp::Reverse(r.created_at));
            Ok::<_, CatalogueError>((provider_row, model_row, reviews))
        })
        .await
        .map_err(not_found)?;
    let clearance = state.status.snapshot().clearance(&provider, &model, now);
    let askers = if viewer.has_any(WRITERS) {
        askers(&state, &provider, &model).await?
    } else {
        Vec::new()
    };
    let mut layout = viewer.layout(format!("{provider}/{model}"), "/providers");
    if let Some(notice) = done_notice(query.done.as_deref()) {
        layout = layout.notice(notice);
    }
    Ok(page::html(
        StatusCode::OK,
        &ModelPage {
            layout,
            csrf: viewer.session.csrf.clone(),
            provider: provider.to_string(),
            provider_name: provider_row.name.clone(),
            slug: model.to_string(),
            name: model_row.name.clone(),
            version: model_row.model_version.clone(),
            modality: model_row.modality.map(|m| words::label(m.as_str())),
            hosting: model_row.hosting.map(|h| words::label(h.as_str())),
            description: model_row.description.clone(),
            badge: Badge::of(clearance.status),
            tier: clearance.tier.map(|t| t.as_str().to_owned()),
            conditions: words::conditions(&clearance.conditions),
            valid_until: clearance.valid_until.map(words::day),
            decided_at: clearance.decided_at.map(words::day),
            suspended_reason: clearance.suspended_reason.clone(),
            review_href: clearance
                .review_id
                .as_ref()
                .map(|id| format!("/reviews/{id}")),
            suspended: model_row.suspended_at.is_some(),
            reviews: review_lines(&reviews),
            workflows: workflow_choices(&viewer),
            can_write: viewer.has_any(WRITERS),
            is_admin: viewer.has(Role::Admin),
            askers,
        },
    ))
}

/// `GET …/attestation`: the signed attestation, as a file.
async fn attestation(
    viewer: Viewer,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let (provider, model) = (provider_slug(&path.0)?, model_slug(&path.1)?);
    let state = &viewer.state;
    let clearance = state
        .status
        .snapshot()
        .clearance(&provider, &model, state.clock.now());
    let token = state
        .keys
        .sign(&clearance, chrono::Utc::now())
        .map_err(|e| {
            tracing::error!(error = %e, "cannot sign an attestation");
            PageError::Internal
        })?;
    let mut response = HttpResponse::Ok()
        .content_type("application/jwt")
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(format!(
                "attestation-{provider}-{model}.jwt"
            ))],
        })
        .body(token);
    page::secure(&mut response);
    Ok(response)
}

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
    let result = switch::throw(
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
        Err(switch::SwitchError::Catalogue(error)) => Err(not_found(error)),
        Err(refused) => Err(PageError::Forbidden(format!(
            "{}.",
            words_capitalised(&refused.to_string())
        ))),
    }
}

async fn switch_provider(
    viewer: Viewer,
    path: web::Path<String>,
    form: Form,
) -> Result<HttpResponse, PageError> {
    let provider = provider_slug(&path)?;
    let back = format!("/providers/{provider}");
    throw_switch(&viewer, Subject::Provider(provider), &form, back).await
}

async fn switch_model(
    viewer: Viewer,
    path: web::Path<(String, String)>,
    form: Form,
) -> Result<HttpResponse, PageError> {
    let (provider, model) = (provider_slug(&path.0)?, model_slug(&path.1)?);
    let back = format!("/providers/{provider}/models/{model}");
    throw_switch(&viewer, Subject::Model(provider, model), &form, back).await
}
