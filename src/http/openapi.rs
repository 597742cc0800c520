//! The OpenAPI 3.1 document: every endpoint documents itself (roles in its
//! description, the error responses particular to it as problem documents)
//! and is listed here; the responses every endpoint of a kind shares (401,
//! 403 and 429 where a token is needed, 400, 413, 415 and 422 where a body
//! is read, 404 where the path names a resource, 500 everywhere) are added
//! once, by [`CommonResponses`].

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::audit::{self, routes as audit_routes};
use crate::conditions::{Conditions, DataClass};
use crate::evidence::{routes as evidence_routes, summary};
use crate::exports::{allowlist as exports_allowlist, routes as exports_routes};
use crate::http::problem::{FieldError, Problem};
use crate::intake::{self, routes as intake_routes};
use crate::outbox::routes as outbox_routes;
use crate::people::routes as people_routes;
use crate::providers::{self, routes as providers_routes};
use crate::reviews::{self, routes as reviews_routes};
use crate::scheduler::{self, routes as scheduler_routes};
use crate::status::{self, routes as status_routes};
use crate::usage::routes as usage_routes;
use crate::webhooks::{self, routes as webhooks_routes};
use crate::workflow::{self, routes as workflow_routes};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Clearance",
        description = "Due-diligence reviews of third-party AI model providers, and the clearance status of each model.\n\nAuthenticate with `Authorization: Bearer <JWT>`. Each operation names the roles it admits: a missing or invalid token gets 401, a token without the role 403. Errors are `application/problem+json` (RFC 9457).",
    ),
    paths(
        super::healthz,
        super::readyz,
        providers_routes::list_providers,
        providers_routes::create_provider,
        providers_routes::get_provider,
        providers_routes::update_provider,
        providers_routes::list_models,
        providers_routes::create_model,
        providers_routes::get_model,
        providers_routes::update_model,
        workflow_routes::list_workflows,
        workflow_routes::get_workflow,
        reviews_routes::list_reviews,
        reviews_routes::start_review,
        reviews_routes::get_review,
        reviews_routes::get_stage,
        reviews_routes::save_answers,
        reviews_routes::submit,
        reviews_routes::decide,
        reviews_routes::assign,
        reviews_routes::invite,
        reviews_routes::invite_all,
        reviews_routes::revoke_invitation,
        reviews_routes::raise_tier,
        reviews_routes::withdraw,
        reviews_routes::add_finding,
        reviews_routes::update_finding,
        reviews_routes::comment,
        reviews_routes::re_review,
        status_routes::get_status,
        status_routes::check,
        status_routes::attestation,
        status_routes::jwks,
        status_routes::suspend,
        status_routes::resume,
        webhooks_routes::create_webhook,
        webhooks_routes::list_webhooks,
        webhooks_routes::delete_webhook,
        outbox_routes::list_outbox,
        outbox_routes::retry,
        scheduler_routes::run_job,
        scheduler_routes::advance_clock,
        people_routes::list_people,
        people_routes::get_mailbox,
        people_routes::put_mailbox,
        audit_routes::list_events,
        audit_routes::verify_chain,
        evidence_routes::evidence_pack,
        evidence_routes::period_summary,
        exports_routes::opa_bundle,
        exports_routes::export_allowlist,
        intake_routes::list_intake,
        intake_routes::review_from_intake,
        intake_routes::dismiss_intake,
        usage_routes::model_usage,
    ),
    components(schemas(
        Problem, FieldError, super::Health,
        providers::Provider, providers::ProviderName, providers::ProviderView, providers::Contact, providers::Model, providers::Modality, providers::Hosting,
        providers::NewProvider, providers::ProviderPatch, providers::NewModel, providers::ModelPatch,
        Conditions, DataClass,
        workflow::Workflow, workflow::Stage, workflow::Questionnaire, workflow::Section, workflow::Question,
        workflow::ChoiceOption, workflow::ShownWhen, workflow::RiskRule, workflow::FindingTemplate,
        workflow::TierPolicy, workflow::EscalationStep, workflow::Tier, workflow::Severity,
        workflow_routes::WorkflowListing, workflow_routes::WorkflowDocument,
        reviews::ReviewSummary, reviews::ReviewDetail, reviews::StageSummary, reviews::StageView,
        reviews::WorkflowRef, reviews::ApprovalView, reviews::AnswerView, reviews::DecisionView,
        reviews::FindingView, reviews::FindingState, reviews::InvitationView, reviews::TimelineEntry,
        reviews::NewReview, reviews::AnswersInput, reviews::InviteInput, reviews::InviteAllInput, reviews::InvitedAll, reviews::AssignInput,
        reviews::service::TierChoice,
        reviews::DecisionInput, reviews::TierInput, reviews::WithdrawInput, reviews::NewFinding, reviews::FindingPatch,
        reviews::CommentInput, reviews::QuestionCommentView, reviews::AnswerChange,
        status::Clearance, status::Status, status::CheckContext, status::CheckResult,
        status_routes::CheckRequest, status_routes::CheckResponse, status_routes::SuspendInput, status_routes::ResumeInput,
        status_routes::Suspended, status_routes::SuspensionPreview,
        crate::usage::Integrator, usage_routes::UsageReport, usage_routes::HourUsage,
        webhooks::Webhook, webhooks::NewWebhook, webhooks::CreatedWebhook,
        outbox_routes::OutboxMessage, scheduler::JobReport, scheduler_routes::ClockInput, scheduler_routes::ClockView,
        crate::people::Person, people_routes::MailboxInput, people_routes::MailboxView,
        audit::AuditEvent, audit::verify::Verification, audit::verify::BadEvent,
        summary::PeriodSummary, summary::TierCounts, summary::Decided, summary::Outcomes,
        exports_allowlist::Allowlist, exports_allowlist::AllowedModel, exports_allowlist::Context, exports_allowlist::ExportFormat,
        intake::IntakeRequest, intake::IntakeState, intake::Asker, intake::OverBound, intake_routes::IntakePage, intake_routes::IntakeReview, intake_routes::Dismissal,
    )),
    modifiers(&BearerAuth, &ProviderSwitch, &CommonResponses),
    tags(
        (name = "providers", description = "Providers and their models"),
        (name = "workflows", description = "Workflow definitions and their questionnaires"),
        (name = "reviews", description = "Reviews, their stages, answers, decisions and findings"),
        (name = "status", description = "Clearance status for integrators, attestations, the suspend switch"),
        (name = "webhooks", description = "Subscriptions to status changes"),
        (name = "audit", description = "The hash-chained audit log and its verification"),
        (name = "intake", description = "Models integrators asked about that nobody reviewed: list, start a review, dismiss"),
        (name = "evidence", description = "Evidence packs of reviews, and summaries over a period, for auditors"),
        (name = "exports", description = "The clearances for gateways and policy engines: an OPA bundle, allowlists"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The switch's handlers serve a model and a whole provider alike; the
/// provider's paths are the model's, without the model.
struct ProviderSwitch;

impl Modify for ProviderSwitch {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for action in ["suspend", "resume"] {
            let model_path = format!("/v1/models/{{provider}}/{{model}}/{action}");
            let Some(mut item) = openapi.paths.paths.get(&model_path).cloned() else {
                continue;
            };
            if let Some(operation) = item.post.as_mut() {
                if let Some(parameters) = operation.parameters.as_mut() {
                    parameters.retain(
                        |p| !matches!(p, utoipa::openapi::RefOr::T(p) if p.name == "model"),
                    );
                }
                operation.operation_id = Some(format!("{action}_provider"));
                operation.summary = Some(match action {
                    "suspend" => "Suspend every model of a provider.".into(),
                    _ => "Lift a provider's suspension.".into(),
                });
            }
            openapi
                .paths
                .paths
                .insert(format!("/v1/providers/{{provider}}/{action}"), item);
        }
    }
}

/// Adds the problems every operation of a kind can answer, unless the
/// operation names them itself, so that the document lists every status the
/// server can give:
///
/// - where a bearer token is needed: 401, 403, and 429 (too many failed
///   authentications, or supplier requests, from one address);
/// - where a body is read: 400 (malformed JSON), 413, 415 and 422 (a body
///   that is not an object, an unknown or wrongly typed field);
/// - where a query is read: 400 (an unreadable query string) and 422 (a bad
///   value, a NUL character);
/// - where the path names a resource: 404 (an id or slug that names none,
///   or cannot be one);
/// - everywhere: 500.
///
/// Each is one shared response in the components, referred to.
struct CommonResponses;

/// Which operations a common response applies to.
#[derive(Clone, Copy, PartialEq)]
enum Applies {
    Secured,
    WithBody,
    WithPathParameters,
    WithBodyOrQuery,
    Always,
}

const COMMON_RESPONSES: [(&str, &str, &str, Applies); 9] = [
    (
        "400",
        "BadRequest",
        "The body is not valid JSON (`/problems/malformed-json`), or the query string cannot be read (`/problems/bad-request`)",
        Applies::WithBodyOrQuery,
    ),
    (
        "401",
        "Unauthenticated",
        "Missing, invalid or expired token (`/problems/unauthorized`)",
        Applies::Secured,
    ),
    (
        "403",
        "Forbidden",
        "The token lacks the role (`/problems/forbidden`)",
        Applies::Secured,
    ),
    (
        "404",
        "NotFound",
        "No resource at this path (`/problems/not-found`)",
        Applies::WithPathParameters,
    ),
    (
        "413",
        "BodyTooLarge",
        "The body is larger than the service accepts",
        Applies::WithBody,
    ),
    (
        "415",
        "NotJson",
        "The body is not sent as application/json",
        Applies::WithBody,
    ),
    (
        "422",
        "Invalid",
        "The input is invalid; `errors` names each field at fault (`/problems/validation`)",
        Applies::WithBodyOrQuery,
    ),
    (
        "429",
        "TooManyRequests",
        "Too many failed authentications, or supplier requests, from this address; `Retry-After` says when to try again (`/problems/too-many-requests`)",
        Applies::Secured,
    ),
    (
        "500",
        "InternalError",
        "The server failed; the request id is in its logs",
        Applies::Always,
    ),
];

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let components = openapi.components.get_or_insert_with(Default::default);
        for (_, name, description, _) in COMMON_RESPONSES {
            let problem = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build();
            components.responses.insert(
                name.to_owned(),
                RefOr::T(
                    ResponseBuilder::new()
                        .description(description)
                        .content(super::problem::PROBLEM_CONTENT_TYPE, problem)
                        .build(),
                ),
            );
        }
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                item.get.as_mut(),
                item.put.as_mut(),
                item.post.as_mut(),
                item.delete.as_mut(),
                item.patch.as_mut(),
                item.head.as_mut(),
            ];
            for operation in operations.into_iter().flatten() {
                let takes = |place: ParameterIn| {
                    operation.parameters.iter().flatten().any(
                        |parameter| matches!(parameter, RefOr::T(p) if p.parameter_in == place),
                    )
                };
                let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                let with_body = operation.request_body.is_some();
                let with_query = takes(ParameterIn::Query);
                let with_path = takes(ParameterIn::Path);
                for (status, name, _, applies) in COMMON_RESPONSES {
                    let applies = match applies {
                        Applies::Secured => secured,
                        Applies::WithBodyOrQuery => with_body || with_query,
                        Applies::WithBody => with_body,
                        Applies::WithPathParameters => with_path,
                        Applies::Always => true,
                    };
                    if applies {
                        operation
                            .responses
                            .responses
                            .entry(status.to_owned())
                            .or_insert_with(|| {
                                RefOr::Ref(Ref::new(format!("#/components/responses/{name}")))
                            });
                    }
                }
            }
        }
    }
}
