//! `GET /providers` (with search) and a provider's page.

use std::collections::{BTreeMap, HashMap};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::Role;
use crate::console::page::{self, Done, Layout, PageError, Viewer};
use crate::console::words;
use crate::db::PageRequest;
use crate::ids::ProviderId;
use crate::providers::{CatalogueError, Contact, service, store};
use crate::reviews::store::ReviewFilter;
use crate::status::Status;

use super::*;

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

impl ListPage {
    /// What the list says when it lists no provider.
    fn empty(&self) -> String {
        if self.q.is_empty() {
            "No provider is registered yet.".to_owned()
        } else {
            format!("Nothing matches “{}”.", self.q)
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    after: Option<String>,
}

/// `GET /providers`.
pub(super) async fn list(
    viewer: Viewer,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
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
            can_write: viewer.has_any(MANAGERS),
        },
    ))
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

/// `GET /providers/{provider}`.
pub(super) async fn provider_page(
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
    let staff = viewer.has_any(crate::auth::roles::STAFF);
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
            can_write: viewer.has_any(MANAGERS),
            is_admin: viewer.has(Role::Admin),
        },
    ))
}
