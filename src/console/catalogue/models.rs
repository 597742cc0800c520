//! A model's page (clearance, conditions, the integrators that asked about
//! it, review history) and its signed attestation.

use actix_web::http::StatusCode;
use actix_web::http::header::{ContentDisposition, DispositionParam, DispositionType};
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::auth::Role;
use crate::console::page::{self, Done, Layout, PageError, Viewer};
use crate::console::words;
use crate::ids::{ModelSlug, ProviderSlug};
use crate::providers::{CatalogueError, service};
use crate::reviews::store::ReviewFilter;

use super::*;

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
    /// The start form: the provider's contact to invite, and who may be
    /// assigned to each stage of the default workflow.
    launch: Launch,
}

/// What the start form offers: the supplier contact the provider's record
/// names, and, per stage of the workflow it starts by default, the people
/// who may answer it (a stage answered by a role) and decide it.
#[derive(Default)]
struct Launch {
    contact: String,
    stages: Vec<LaunchStage>,
}

struct LaunchStage {
    title: String,
    /// `answer.<stage>` and `decide.<stage>`, each with its label and the
    /// people who hold its role.
    pickers: Vec<Picker>,
}

struct Picker {
    name: String,
    label: String,
    people: Vec<(String, String)>,
}

/// The start form's offer for a provider with `contacts`.
async fn launch(
    viewer: &Viewer,
    contacts: &[crate::providers::Contact],
) -> Result<Launch, PageError> {
    use crate::workflow::engine::{Duty, duty_role};
    let Some(workflow) = viewer.state.reviews.catalog.all().next() else {
        return Ok(Launch::default());
    };
    let people = crate::console::review::candidates(viewer, &workflow.workflow).await?;
    let stages = workflow
        .workflow
        .stages
        .iter()
        .map(|stage| {
            let pickers = [Duty::Answer, Duty::Decide]
                .into_iter()
                .filter(|duty| {
                    *duty == Duty::Decide
                        || stage.answered_by != crate::workflow::Answerer::Supplier
                })
                .map(|duty| {
                    let role = duty_role(stage, duty);
                    let verb = match duty {
                        Duty::Answer => "answers",
                        Duty::Decide => "decides",
                    };
                    Picker {
                        name: format!("{duty}.{}", stage.key),
                        label: format!("Who {verb} it ({})", words::one_with_role(role.as_str())),
                        people: people.get(&role).cloned().unwrap_or_default(),
                    }
                })
                .collect();
            LaunchStage {
                title: stage.title.clone(),
                pickers,
            }
        })
        .collect();
    let contact = contacts
        .iter()
        .map(|c| c.email.clone())
        .next()
        .unwrap_or_default();
    Ok(Launch { contact, stages })
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
pub(super) async fn model_page(
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
    let askers = if viewer.has_any(MANAGERS) {
        askers(&state, &provider, &model).await?
    } else {
        Vec::new()
    };
    let launch = if viewer.has_any(MANAGERS) {
        launch(&viewer, provider_row.contacts.get()).await?
    } else {
        Launch::default()
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
            can_write: viewer.has_any(MANAGERS),
            is_admin: viewer.has(Role::Admin),
            askers,
            launch,
        },
    ))
}

/// `GET …/attestation`: the signed attestation, as a file.
pub(super) async fn attestation(
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
