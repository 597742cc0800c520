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
    /// As saved, or as typed when the form was refused.
    emails: String,
    source: &'static str,
    error: Option<String>,
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
    href: String,
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
    webhook: WebhookForm,
}

/// The subscription form as typed, with its problems beside its fields.
#[derive(Debug, Default)]
struct WebhookForm {
    url: String,
    secret: String,
    url_error: Option<String>,
    secret_error: Option<String>,
}

/// What a refused form typed, shown again with its problem.
#[derive(Debug, Default)]
struct Typed {
    /// The mailbox form of a role: what was typed, and what is wrong.
    mailbox: Option<(Role, String, String)>,
    webhook: WebhookForm,
}

/// `GET /admin`.
async fn overview(viewer: Viewer, query: web::Query<Done>) -> Result<HttpResponse, PageError> {
    admin(&viewer)?;
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
    render(&viewer, layout, Typed::default(), StatusCode::OK).await
}

/// The admin page, with what a refused form typed kept in it.
async fn render(
    viewer: &Viewer,
    layout: Layout,
    typed: Typed,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
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
            let refused = typed.mailbox.as_ref().filter(|(r, ..)| *r == role);
            MailboxLine {
                role: role.as_str(),
                label: words::role(role.as_str()),
                emails: match refused {
                    Some((_, typed, _)) => typed.clone(),
                    None => emails.join(", "),
                },
                source,
                error: refused.map(|(.., message)| message.clone()),
            }
        })
        .collect();
    let diagnostics = match crate::workflow::Catalog::load_dir(&state.config.workflows) {
        Ok(_) => Vec::new(),
        Err(problems) => problems.iter().map(ToString::to_string).collect(),
    };
    Ok(page::html(
        status,
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
                    href: format!("/workflows/{}", w.workflow.id),
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
            webhook: typed.webhook,
        },
    ))
}

/// The admin page again after a refused form: the problem said at the top
/// and beside its field, what was typed kept.
async fn refused(
    viewer: &Viewer,
    (what, status): (&str, StatusCode),
    typed: Typed,
) -> Result<HttpResponse, PageError> {
    let (form, name) = if typed.mailbox.is_some() {
        ("#mailboxes", "Go to the mailboxes")
    } else {
        ("#webhooks", "Go to the subscription form")
    };
    let layout = viewer.layout("Admin", "/admin").notice(
        Notice::bad(format!(
            "{what}: correct what is marked below and try again."
        ))
        .with_link(form, name),
    );
    render(viewer, layout, typed, status).await
}

/// A form refused for what was typed in it.
const INVALID: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;

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
            let message = format!("“{email}” is not an email address.");
            let typed = Typed {
                mailbox: Some((role, fields.emails.clone(), message)),
                ..Typed::default()
            };
            return refused(&viewer, ("The mailbox was not saved", INVALID), typed).await;
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
    let mut form = WebhookForm {
        url: fields.url.clone().unwrap_or_default(),
        secret: fields.secret.clone().unwrap_or_default(),
        ..WebhookForm::default()
    };
    let input = crate::webhooks::NewWebhook {
        url: fields.url,
        secret: fields.secret,
        events: None,
    };
    if let Err(errors) = input.validate() {
        let errors = crate::validation::FieldError::from_validator(&errors);
        let said = |field: &str, name: &str| {
            words::field_error(&errors, field).map(|m| format!("The {name} {m}."))
        };
        form.url_error = said("url", "URL");
        form.secret_error = said("secret", "signing secret");
        let typed = Typed {
            webhook: form,
            ..Typed::default()
        };
        return refused(&viewer, ("The subscription was not made", INVALID), typed).await;
    }
    let state = &viewer.state;
    let created = match crate::webhooks::subscribe(
        &state.work,
        viewer.actor(),
        input,
        state.config.webhook_targets,
        state.clock.now(),
    )
    .await
    {
        Ok(created) => created,
        Err(crate::webhooks::WebhookError::Refused(why)) => {
            form.url_error = Some(format!("This URL is refused: {why}."));
            let typed = Typed {
                webhook: form,
                ..Typed::default()
            };
            let what = ("The subscription was not made", StatusCode::CONFLICT);
            return refused(&viewer, what, typed).await;
        }
        Err(other) => {
            tracing::error!(error = %other, "subscribing a webhook failed");
            return Err(PageError::Internal);
        }
    };
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

/// An action the log can be filtered by: its stored name and its words.
struct ActionChoice {
    value: &'static str,
    label: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    layout: Layout,
    csrf: String,
    events: Vec<EventLine>,
    /// Older events, with the same filter.
    earlier: Option<String>,
    /// Back to the newest, with the same filter, when this page is not.
    newest: Option<String>,
    actions: Vec<ActionChoice>,
    action: String,
    action_error: Option<String>,
    actor: String,
    /// Events a page shows, when fewer than the default.
    limit: Option<u32>,
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    before: Option<i64>,
    limit: Option<u32>,
    action: Option<String>,
    actor: Option<String>,
    verified: Option<String>,
    events: Option<i64>,
    bad: Option<i64>,
}

/// Events one page of the log shows, unless the query asks for fewer.
const AUDIT_PAGE: u32 = 100;

/// An action as people read it: `stage.decided` → `stage decided`.
fn action_words(action: &str) -> String {
    words::label(&action.replace('.', " "))
}

/// The audit page's link with its filter, `before` an event when given.
fn audit_link(
    action: Option<&str>,
    actor: Option<&str>,
    limit: u32,
    before: Option<i64>,
) -> String {
    let mut url = url::form_urlencoded::Serializer::for_suffix(String::from("/admin/audit?"), 13);
    if let Some(a) = action {
        url.append_pair("action", a);
    }
    if let Some(a) = actor {
        url.append_pair("actor", a);
    }
    if limit != AUDIT_PAGE {
        url.append_pair("limit", &limit.to_string());
    }
    if let Some(before) = before {
        url.append_pair("before", &before.to_string());
    }
    url.finish()
}

/// `GET /admin/audit`: the log, newest first, a hundred at a time, filtered
/// by an action chosen from the known ones and by actor.
async fn audit(viewer: Viewer, query: web::Query<AuditQuery>) -> Result<HttpResponse, PageError> {
    admin(&viewer)?;
    let typed_action = query.action.clone().filter(|a| !a.is_empty());
    let action = typed_action
        .as_deref()
        .and_then(crate::audit::Action::parse);
    let action_error = match (&typed_action, action) {
        (Some(typed), None) => Some(format!(
            "“{typed}” is not an action the log records; showing every action."
        )),
        _ => None,
    };
    let action = action.map(|a| a.as_str());
    let actor = query.actor.clone().filter(|a| !a.is_empty());
    let limit = query.limit.unwrap_or(AUDIT_PAGE).clamp(1, AUDIT_PAGE);
    let filter = crate::audit::store::AuditFilter {
        action: action.map(str::to_owned),
        actor: actor.clone(),
        ..Default::default()
    };
    let cursor = crate::audit::store::Cursor::Before(query.before);
    let rows = viewer
        .state
        .store
        .run(move |conn| {
            crate::audit::store::page(conn, &filter, cursor, limit)
                .map_err(crate::db::StoreError::from)
        })
        .await?;
    let more = rows.len() > limit as usize;
    let events: Vec<EventLine> = rows
        .iter()
        .take(limit as usize)
        .map(|r| EventLine {
            seq: r.seq,
            at: words::when(r.occurred_at.and_utc()),
            actor: r.actor.clone(),
            action: action_words(&r.action),
            subject: r.subject.clone(),
            href: r.review_id.as_ref().map(|id| format!("/reviews/{id}")),
        })
        .collect();
    let earlier = more.then(|| {
        let last = events.last().map(|e| e.seq);
        audit_link(action, actor.as_deref(), limit, last)
    });
    let newest = query
        .before
        .is_some()
        .then(|| audit_link(action, actor.as_deref(), limit, None));
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
    let status = if action_error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(page::html(
        status,
        &AuditPage {
            layout,
            csrf: viewer.session.csrf.clone(),
            events,
            earlier,
            newest,
            actions: crate::audit::Action::ALL
                .iter()
                .map(|a| ActionChoice {
                    value: a.as_str(),
                    label: action_words(a.as_str()),
                })
                .collect(),
            action: action.unwrap_or_default().to_owned(),
            action_error,
            actor: actor.unwrap_or_default(),
            limit: (limit != AUDIT_PAGE).then_some(limit),
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
