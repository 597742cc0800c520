//! Admin pages: the people who signed in and their roles, role mailboxes,
//! webhooks, dead outbox messages (retry), running a job now, workflows
//! (read-only, with the check of the folder as it is now), and the audit
//! log with a "verify chain" button. The suspend switch lives on each
//! provider's and model's page.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::page::{self, Done, Layout, NoFields, Notice, PageError, Posted, Viewer, forms};
use super::words;
use chrono::{DateTime, Utc};

use crate::audit::Actor;
use crate::auth::Role;
use crate::db::PageRequest;
use crate::outbox::MessageState;
use crate::scheduler::Job;
use crate::unit::UnitOfWork;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin").get(overview))
        .service(web::resource("/admin/jobs/{job}").post(run_job))
        .service(web::resource("/admin/mailboxes/{role}").post(set_mailbox))
        .service(web::resource("/admin/webhooks").post(subscribe))
        .service(web::resource("/admin/webhooks/{id}/delete").post(unsubscribe))
        .service(web::resource("/admin/outbox/{id}/retry").post(retry))
        .service(web::resource("/admin/audit").get(audit))
        .service(web::resource("/admin/audit/verify").post(verify));
}

fn admin(viewer: &Viewer) -> Result<(), PageError> {
    if viewer.has(Role::Admin) {
        Ok(())
    } else {
        Err(PageError::Forbidden("These pages are for admins.".into()))
    }
}

struct PersonLine {
    sub: String,
    email: String,
    roles: String,
    seen: String,
}

struct MailboxLine {
    role: &'static str,
    label: String,
    emails: String,
    source: &'static str,
}

struct WebhookLine {
    id: String,
    url: String,
    events: String,
    created: String,
}

struct MessageLine {
    id: String,
    kind: String,
    attempts: i32,
    error: String,
    created: String,
}

struct WorkflowLine {
    id: String,
    version: i64,
    title: String,
    stages: String,
}

#[derive(Template)]
#[template(path = "console/admin.html")]
struct Overview {
    layout: Layout,
    csrf: String,
    jobs: Vec<&'static str>,
    people: Vec<PersonLine>,
    mailboxes: Vec<MailboxLine>,
    webhooks: Vec<WebhookLine>,
    dead: Vec<MessageLine>,
    workflows: Vec<WorkflowLine>,
    diagnostics: Vec<String>,
}

/// `GET /admin`.
async fn overview(viewer: Viewer, query: web::Query<Done>) -> Result<HttpResponse, PageError> {
    admin(&viewer)?;
    let state = viewer.state.clone();
    let configured = state.config.mailboxes.clone();
    let (people, stored, webhooks, dead) = state
        .store
        .run(move |conn| {
            let people = crate::people::everyone(conn)?;
            let mut stored = Vec::new();
            for role in Role::ALL {
                stored.push((*role, crate::people::stored_mailbox(conn, *role)?));
            }
            let webhooks = crate::webhooks::store::all(conn)?;
            let page = PageRequest {
                limit: 50,
                after: None,
            };
            let dead = crate::outbox::store::list(conn, Some(MessageState::Dead), &page)?;
            Ok::<_, crate::db::StoreError>((people, stored, webhooks, dead))
        })
        .await?;
    let mailboxes = stored
        .into_iter()
        .map(|(role, stored)| {
            let (emails, source) = match stored.filter(|e| !e.is_empty()) {
                Some(emails) => (emails, "set here"),
                None => match configured.get(&role) {
                    Some(emails) => (emails.clone(), "configured"),
                    None => (Vec::new(), "everyone with the role"),
                },
            };
            MailboxLine {
                role: role.as_str(),
                label: words::label(role.as_str()),
                emails: emails.join(", "),
                source,
            }
        })
        .collect();
    let diagnostics = match crate::workflow::Catalog::load_dir(&state.config.workflows) {
        Ok(_) => Vec::new(),
        Err(problems) => problems.iter().map(ToString::to_string).collect(),
    };
    let mut layout = viewer.layout("Admin", "/admin");
    match query.done.as_deref() {
        Some("job") => layout = layout.notice(Notice::ok("The job ran.")),
        Some("mailbox") => layout = layout.notice(Notice::ok("The mailbox is saved.")),
        Some("webhook") => {
            let secret = query.secret.clone().unwrap_or_default();
            layout = layout.notice(Notice::ok(format!(
                "Subscribed. Its signing secret, shown this once: {secret}"
            )));
        }
        Some("unsubscribed") => layout = layout.notice(Notice::ok("The subscription is deleted.")),
        Some("retried") => layout = layout.notice(Notice::ok("The message is queued again.")),
        _ => {}
    }
    Ok(page::html(
        StatusCode::OK,
        &Overview {
            layout,
            csrf: viewer.session.csrf.clone(),
            jobs: Job::ALL.iter().map(|j| j.as_str()).collect(),
            people: people
                .iter()
                .map(|p| PersonLine {
                    sub: p.sub.clone(),
                    email: p.email.clone().unwrap_or_default(),
                    roles: p.roles.join(", ").replace('_', " "),
                    seen: words::when(p.last_seen_at),
                })
                .collect(),
            mailboxes,
            webhooks: webhooks
                .iter()
                .map(|w| WebhookLine {
                    id: w.id.to_string(),
                    url: w.url.clone(),
                    events: w.events.get().join(", "),
                    created: words::day(w.created_at.and_utc()),
                })
                .collect(),
            dead: dead
                .iter()
                .map(|m| MessageLine {
                    id: m.id.to_string(),
                    kind: m.kind.as_str().to_owned(),
                    attempts: m.attempts,
                    error: m.last_error.clone().unwrap_or_default(),
                    created: words::when(m.created_at.and_utc()),
                })
                .collect(),
            workflows: state
                .reviews
                .catalog
                .all()
                .map(|w| WorkflowLine {
                    id: w.workflow.id.clone(),
                    version: w.workflow.version,
                    title: w.workflow.title.clone(),
                    stages: w
                        .workflow
                        .stages
                        .iter()
                        .map(|s| s.title.clone())
                        .collect::<Vec<_>>()
                        .join(" → "),
                })
                .collect(),
            diagnostics,
        },
    ))
}

/// `POST /admin/jobs/{job}`.
async fn run_job(
    path: web::Path<String>,
    posted: Posted<NoFields>,
) -> Result<HttpResponse, PageError> {
    let viewer = posted.viewer;
    admin(&viewer)?;
    let job = Job::parse(&path)
        .ok_or_else(|| PageError::NotFound(format!("There is no job `{path}`.")))?;
    viewer.state.scheduler.run(job).await.map_err(|e| {
        tracing::error!(error = %e, "a job run from the console failed");
        PageError::Internal
    })?;
    Ok(page::redirect("/admin?done=job#jobs"))
}

/// The mailbox form: addresses separated by commas, spaces or lines.
#[derive(Debug, Deserialize)]
struct MailboxFields {
    #[serde(default)]
    emails: String,
}

/// `POST /admin/mailboxes/{role}`.
async fn set_mailbox(
    path: web::Path<String>,
    posted: Posted<MailboxFields>,
) -> Result<HttpResponse, PageError> {
    let Posted { viewer, fields, .. } = posted;
    admin(&viewer)?;
    let role = Role::parse(&path)
        .ok_or_else(|| PageError::NotFound(format!("There is no role `{path}`.")))?;
    let mut emails = Vec::new();
    for email in fields.emails.split([',', '\n', ' ']) {
        let email = email.trim();
        if email.is_empty() {
            continue;
        }
        if email.parse::<lettre::message::Mailbox>().is_err() || !email.contains('@') {
            return Err(PageError::Refused(
                format!("`{email}` is not an email address; nothing was saved."),
                "/admin#mailboxes".into(),
            ));
        }
        emails.push(email.to_owned());
    }
    let state = &viewer.state;
    crate::people::set_mailbox(&state.work, viewer.actor(), role, emails, state.clock.now())
        .await?;
    Ok(page::redirect("/admin?done=mailbox#mailboxes"))
}

/// The subscription form.
#[derive(Debug, Deserialize)]
struct WebhookFields {
    #[serde(default, deserialize_with = "forms::text")]
    url: Option<String>,
    #[serde(default, deserialize_with = "forms::text")]
    secret: Option<String>,
}

/// `POST /admin/webhooks`.
async fn subscribe(posted: Posted<WebhookFields>) -> Result<HttpResponse, PageError> {
    use validator::Validate;
    let Posted { viewer, fields, .. } = posted;
    admin(&viewer)?;
    let input = crate::webhooks::NewWebhook {
        url: fields.url,
        secret: fields.secret,
        events: None,
    };
    if let Err(errors) = input.validate() {
        let problems: Vec<String> = crate::validation::FieldError::from_validator(&errors)
            .into_iter()
            .map(|e| format!("{} {}", words::label(&e.field), e.message))
            .collect();
        return Err(PageError::Refused(
            format!("The subscription was not made: {}.", problems.join("; ")),
            "/admin#webhooks".into(),
        ));
    }
    let state = &viewer.state;
    let created = crate::webhooks::subscribe(
        &state.work,
        viewer.actor(),
        input,
        state.config.webhook_targets,
        state.clock.now(),
    )
    .await
    .map_err(|e| match e {
        crate::webhooks::WebhookError::Refused(why) => PageError::Refused(
            format!("The subscription was not made: {why}."),
            "/admin#webhooks".into(),
        ),
        other => {
            tracing::error!(error = %other, "subscribing a webhook failed");
            PageError::Internal
        }
    })?;
    let secret = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("secret", &created.secret)
        .finish();
    Ok(page::redirect(&format!(
        "/admin?done=webhook&{secret}#webhooks"
    )))
}

/// An admin's button on one record, named by the path: the service's
/// `act` on it, its refusal turned into a page by `refused`, then back to
/// the admin page at `done`.
async fn on_record<T, E>(
    path: web::Path<String>,
    posted: Posted<NoFields>,
    act: impl AsyncFnOnce(&UnitOfWork, Actor, String, DateTime<Utc>) -> Result<T, E>,
    refused: impl FnOnce(E) -> PageError,
    done: &str,
) -> Result<HttpResponse, PageError> {
    let viewer = posted.viewer;
    admin(&viewer)?;
    let state = &viewer.state;
    act(
        &state.work,
        viewer.actor(),
        path.into_inner(),
        state.clock.now(),
    )
    .await
    .map_err(refused)?;
    Ok(page::redirect(done))
}

/// `POST /admin/webhooks/{id}/delete`.
async fn unsubscribe(
    path: web::Path<String>,
    posted: Posted<NoFields>,
) -> Result<HttpResponse, PageError> {
    let refused = |e| match e {
        crate::webhooks::WebhookError::NotFound(id) => {
            PageError::NotFound(format!("There is no webhook `{id}`."))
        }
        other => {
            tracing::error!(error = %other, "deleting a webhook failed");
            PageError::Internal
        }
    };
    let done = "/admin?done=unsubscribed#webhooks";
    on_record(path, posted, crate::webhooks::unsubscribe, refused, done).await
}

/// `POST /admin/outbox/{id}/retry`.
async fn retry(
    path: web::Path<String>,
    posted: Posted<NoFields>,
) -> Result<HttpResponse, PageError> {
    let refused = |e| match e {
        crate::outbox::RetryError::Store(error) => error.into(),
        other => PageError::Refused(format!("{other}."), "/admin#outbox".into()),
    };
    let done = "/admin?done=retried#outbox";
    on_record(path, posted, crate::outbox::retry, refused, done).await
}

struct EventLine {
    seq: i64,
    at: String,
    actor: String,
    action: String,
    subject: String,
    href: Option<String>,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    layout: Layout,
    csrf: String,
    events: Vec<EventLine>,
    next: Option<String>,
    action: String,
    actor: String,
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    after: Option<i64>,
    action: Option<String>,
    actor: Option<String>,
    verified: Option<String>,
    events: Option<i64>,
    bad: Option<i64>,
}

/// `GET /admin/audit`: the log, newest last, a hundred at a time.
async fn audit(viewer: Viewer, query: web::Query<AuditQuery>) -> Result<HttpResponse, PageError> {
    admin(&viewer)?;
    let filter = crate::audit::store::AuditFilter {
        action: query.action.clone().filter(|a| !a.is_empty()),
        actor: query.actor.clone().filter(|a| !a.is_empty()),
        ..Default::default()
    };
    let after = query.after;
    let rows = viewer
        .state
        .store
        .run(move |conn| {
            crate::audit::store::list(conn, &filter, after, 100)
                .map_err(crate::db::StoreError::from)
        })
        .await?;
    let more = rows.len() > 100;
    let events: Vec<EventLine> = rows
        .iter()
        .take(100)
        .map(|r| EventLine {
            seq: r.seq,
            at: words::when(r.occurred_at.and_utc()),
            actor: r.actor.clone(),
            action: r.action.clone(),
            subject: r.subject.clone(),
            href: r.review_id.as_ref().map(|id| format!("/reviews/{id}")),
        })
        .collect();
    let next = more.then(|| {
        let mut url =
            url::form_urlencoded::Serializer::for_suffix(String::from("/admin/audit?"), 13);
        if let Some(a) = &query.action {
            url.append_pair("action", a);
        }
        if let Some(a) = &query.actor {
            url.append_pair("actor", a);
        }
        url.append_pair(
            "after",
            &events.last().map(|e| e.seq).unwrap_or(0).to_string(),
        );
        url.finish()
    });
    let mut layout = viewer.layout("Audit log", "/admin");
    match (query.verified.as_deref(), query.events, query.bad) {
        (Some("ok"), Some(n), _) => {
            layout = layout.notice(Notice::ok(format!(
                "The chain verifies: {n} events, none edited, deleted or reordered."
            )))
        }
        (Some("broken"), _, Some(seq)) => {
            layout = layout.notice(Notice::bad(format!(
                "The chain is broken at event {seq}: the log was changed outside the service."
            )))
        }
        _ => {}
    }
    Ok(page::html(
        StatusCode::OK,
        &AuditPage {
            layout,
            csrf: viewer.session.csrf.clone(),
            events,
            next,
            action: query.action.clone().unwrap_or_default(),
            actor: query.actor.clone().unwrap_or_default(),
        },
    ))
}

/// `POST /admin/audit/verify`: recomputes the chain.
async fn verify(posted: Posted<NoFields>) -> Result<HttpResponse, PageError> {
    let viewer = posted.viewer;
    admin(&viewer)?;
    let verification = viewer
        .state
        .store
        .run(|conn| crate::audit::store::verify_chain(conn).map_err(crate::db::StoreError::from))
        .await?;
    let target = if verification.ok {
        format!("/admin/audit?verified=ok&events={}", verification.events)
    } else {
        let seq = verification.first_bad.as_ref().map(|b| b.seq).unwrap_or(0);
        format!("/admin/audit?verified=broken&bad={seq}")
    };
    Ok(page::redirect(&target))
}
