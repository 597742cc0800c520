//! The models a context may use, for gateways that can only read a list:
//! each model of the snapshot decided as `POST /v1/status/check` decides it
//! ([`derive::reasons`]), the allowed ones rendered as JSON, CSV or a LiteLLM
//! proxy `model_list` with an access group. Plain functions over the
//! snapshot; [`fetch`] is `clearance export allowlist`'s client.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::conditions::DataClass;
use crate::status::Status;
use crate::status::derive::{self, Use};
use crate::status::snapshot::Snapshot;

/// The access group a LiteLLM snippet puts the models in, unless named.
pub const DEFAULT_ACCESS_GROUP: &str = "cleared";

crate::names::named_enum! {
    /// How an allowlist is written.
    #[derive(clap::ValueEnum)]
    pub enum ExportFormat {
        /// `{"version", "context", "models": [...]}`.
        Json,
        /// `provider,model,status,valid_until`, a header line first.
        Csv,
        /// A LiteLLM proxy `model_list` (JSON, which is YAML too).
        Litellm,
    }
}

/// The context a list is made for, as a check item states it (what is not
/// stated is `None`, and a condition on it denies).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = AllowlistContext)]
pub struct Context {
    pub use_case: Option<String>,
    pub data_classes: Option<Vec<DataClass>>,
    pub regions: Option<Vec<String>>,
    pub features: Option<Vec<String>>,
}

impl Context {
    fn as_use(&self) -> Use<'_, String> {
        Use {
            use_case: self.use_case.as_deref(),
            data_classes: self.data_classes.as_deref(),
            regions: self.regions.as_deref(),
            features: self.features.as_deref(),
        }
    }
}

/// A model the context may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AllowedModel {
    pub provider: String,
    pub model: String,
    /// `approved` or `approved_with_conditions`.
    pub status: Status,
    /// When the approval lapses (RFC 3339), as the check reports it.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_until: Option<String>,
}

/// The models a context may use, at one status version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Allowlist {
    /// The status version of the snapshot the list was made from.
    pub version: i64,
    pub context: Context,
    /// By provider, then model.
    pub models: Vec<AllowedModel>,
}

/// The models of `snapshot` that `context` may use as of `now`: those a
/// check of the context would allow.
pub fn list(snapshot: &Snapshot, context: Context, now: DateTime<Utc>) -> Allowlist {
    let mut models: Vec<AllowedModel> = snapshot
        .each(now)
        .filter(|(_, _, decided)| {
            derive::reasons(decided.status, decided.conditions, context.as_use()).is_empty()
        })
        .map(|(provider, model, decided)| AllowedModel {
            provider: provider.to_owned(),
            model: model.to_owned(),
            status: decided.status,
            valid_until: decided
                .valid_until
                .map(|text| String::from_utf8_lossy(text).into_owned()),
        })
        .collect();
    models.sort_unstable_by(|a, b| (&a.provider, &a.model).cmp(&(&b.provider, &b.model)));
    Allowlist {
        version: snapshot.version,
        context,
        models,
    }
}

/// The list written as `format`, and its media type; a LiteLLM snippet
/// puts every model in `access_group`.
pub fn render(
    list: &Allowlist,
    format: ExportFormat,
    access_group: &str,
) -> Result<(Vec<u8>, &'static str), RenderError> {
    Ok(match format {
        ExportFormat::Json => (serde_json::to_vec(list)?, "application/json"),
        ExportFormat::Csv => (csv(list)?, "text/csv; charset=utf-8"),
        // JSON, which is YAML too: a snippet of the proxy's `config.yaml`.
        ExportFormat::Litellm => (litellm(list, access_group)?, "application/yaml"),
    })
}

/// Why a list could not be written (never, with the data a list holds).
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot write CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("cannot write CSV: {0}")]
    Io(#[from] std::io::Error),
}

fn csv(list: &Allowlist) -> Result<Vec<u8>, RenderError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(["provider", "model", "status", "valid_until"])?;
    for model in &list.models {
        writer.write_record([
            model.provider.as_str(),
            model.model.as_str(),
            model.status.as_str(),
            model.valid_until.as_deref().unwrap_or(""),
        ])?;
    }
    writer
        .into_inner()
        .map_err(|e| RenderError::Io(e.into_error()))
}

/// A LiteLLM proxy `model_list`: each model as a deployment named
/// `provider/model` (LiteLLM's own naming), in `access_group`, so that keys
/// and teams granted the group reach exactly the cleared models. The
/// deployments carry no credentials: merge them with the proxy's own.
fn litellm(list: &Allowlist, access_group: &str) -> Result<Vec<u8>, RenderError> {
    let model_list: Vec<serde_json::Value> = list
        .models
        .iter()
        .map(|m| {
            let name = format!("{}/{}", m.provider, m.model);
            serde_json::json!({
                "model_name": name,
                "litellm_params": {"model": name},
                "model_info": {"access_groups": [access_group]},
            })
        })
        .collect();
    let mut body = serde_json::to_vec_pretty(&serde_json::json!({ "model_list": model_list }))?;
    body.push(b'\n');
    Ok(body)
}

/// What `clearance export allowlist` asks for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub use_case: Option<String>,
    pub data_classes: Vec<String>,
    pub regions: Vec<String>,
    pub features: Vec<String>,
    pub format: Option<String>,
    pub access_group: Option<String>,
}

/// Fetches an allowlist from the server at `base` with `token`: the body,
/// or why there is none (the problem's detail and field errors).
pub async fn fetch(base: &str, token: &str, request: &Request) -> Result<String, String> {
    let mut url = url::Url::parse(&format!(
        "{}/v1/exports/allowlist",
        base.trim_end_matches('/')
    ))
    .map_err(|e| format!("`{base}` is not a URL: {e}"))?;
    {
        let mut query = url.query_pairs_mut();
        let single = [
            ("use_case", &request.use_case),
            ("format", &request.format),
            ("access_group", &request.access_group),
        ];
        for (key, value) in single {
            if let Some(value) = value {
                query.append_pair(key, value);
            }
        }
        let repeated = [
            ("data_class", &request.data_classes),
            ("region", &request.regions),
            ("feature", &request.features),
        ];
        for (key, values) in repeated {
            for value in values {
                query.append_pair(key, value);
            }
        }
    }
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .get(url.clone())
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    let body = response.text().await.map_err(|e| format!("{url}: {e}"))?;
    if status.is_success() {
        return Ok(body);
    }
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let mut message = format!(
        "the server answered {status}: {}",
        problem["detail"].as_str().unwrap_or("no detail")
    );
    for error in problem["errors"].as_array().into_iter().flatten() {
        message.push_str(&format!(
            "; {}: {}",
            error["field"].as_str().unwrap_or("?"),
            error["message"].as_str().unwrap_or("?")
        ));
    }
    Err(message)
}
