//! Providers (the suppliers) and their models: the catalogue every review,
//! status and attestation refers to. Types and input checks live here, the
//! changes in [`service`], the database code in [`store`], the HTTP routes
//! in [`routes`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use validator::{Validate, ValidationError};

use crate::db::StoreError;
use crate::ids::{ModelSlug, ProviderSlug};
use crate::validation::FieldError;

pub mod routes;
pub mod service;
pub mod store;

/// Why a catalogue change or lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("no provider `{0}`")]
    ProviderNotFound(String),
    #[error("no model `{0}/{1}`")]
    ModelNotFound(String, String),
    #[error("{0} already exists")]
    Duplicate(String),
    #[error("{what} has changed since revision {expected} (now {actual}); reload it and try again")]
    Stale {
        what: String,
        expected: i64,
        actual: i64,
    },
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for CatalogueError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Store(StoreError::Query(error))
    }
}

/// A supplier of AI models.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Provider {
    #[schema(example = "anthropic")]
    pub slug: ProviderSlug,
    #[schema(example = "Anthropic")]
    pub name: String,
    pub website: Option<String>,
    pub contacts: Vec<Contact>,
    pub notes: Option<String>,
    pub suspended: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Increases with every change; also the resource's `ETag`.
    pub revision: i64,
}

/// What an integrator (a machine account) reads of a provider: its name
/// and whether it is suspended, never its people's addresses or notes.
#[derive(Debug, Clone, Serialize, ToSchema)]
// `additionalProperties: false` in the document, so that a whole provider
// is not also read as a name.
#[serde(deny_unknown_fields)]
pub struct ProviderName {
    #[schema(example = "anthropic")]
    pub slug: ProviderSlug,
    #[schema(example = "Anthropic")]
    pub name: String,
    pub suspended: bool,
}

/// A provider as its reader may see it: staff see it whole, integrators
/// see [`ProviderName`].
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ProviderView {
    Whole(Provider),
    Name(ProviderName),
}

impl Provider {
    /// This provider as `whole` readers see it, or by its name alone.
    pub fn seen(self, whole: bool) -> ProviderView {
        if whole {
            return ProviderView::Whole(self);
        }
        ProviderView::Name(ProviderName {
            slug: self.slug,
            name: self.name,
            suspended: self.suspended,
        })
    }
}

/// A person at the provider to contact about reviews.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    #[validate(
        length(max = 200),
        custom(function = "not_blank"),
        custom(function = "crate::validation::one_line")
    )]
    pub name: Option<String>,
    #[validate(email, length(max = 254))]
    #[schema(example = "security@example.com")]
    pub email: String,
    /// What they answer for, e.g. `security`, `privacy`, `legal`.
    #[validate(
        length(min = 1, max = 100),
        custom(function = "crate::validation::one_line")
    )]
    pub role: Option<String>,
}

/// An offering of a provider, addressed as `provider/model`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Model {
    pub provider: ProviderSlug,
    #[schema(example = "claude-sonnet-4-5")]
    pub slug: ModelSlug,
    pub name: String,
    /// The provider's own version label, if any.
    pub version: Option<String>,
    pub modality: Option<Modality>,
    pub hosting: Option<Hosting>,
    pub description: Option<String>,
    pub suspended: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub revision: i64,
}

crate::names::stored_enum! {
    pub enum Modality {
        Text,
        Image,
        Audio,
        Video,
        Embedding,
        Code,
        Multimodal,
    }
}

crate::names::stored_enum! {
    /// Where the model runs, which decides whose controls apply.
    pub enum Hosting {
        /// Called through the provider's own API.
        ProviderApi,
        /// Called through a cloud platform's marketplace.
        CloudMarketplace,
        /// Weights run in our own infrastructure.
        SelfHosted,
        OnDevice,
    }
}

/// `POST /v1/providers`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProvider {
    #[validate(required, custom(function = "slug_format"))]
    #[schema(value_type = String, example = "anthropic")]
    pub slug: Option<String>,
    #[validate(
        required,
        length(max = 200),
        custom(function = "not_blank"),
        custom(function = "crate::validation::one_line")
    )]
    #[schema(value_type = String, example = "Anthropic")]
    pub name: Option<String>,
    #[validate(custom(function = "http_url"))]
    #[schema(example = "https://www.anthropic.com")]
    pub website: Option<String>,
    #[serde(default)]
    #[validate(nested, length(max = 50))]
    pub contacts: Vec<Contact>,
    #[validate(length(max = 10000))]
    pub notes: Option<String>,
}

/// `PATCH /v1/providers/{provider}`: absent fields stay, `null` clears.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderPatch {
    #[validate(
        length(max = 200),
        custom(function = "not_blank"),
        custom(function = "crate::validation::one_line")
    )]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[validate(custom(function = "http_url"))]
    #[schema(value_type = Option<String>)]
    pub website: Option<Option<String>>,
    #[validate(nested, length(max = 50))]
    pub contacts: Option<Vec<Contact>>,
    #[serde(default, deserialize_with = "present")]
    #[validate(length(max = 10000))]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Option<String>>,
}

/// `POST /v1/providers/{provider}/models`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewModel {
    #[validate(required, custom(function = "slug_format"))]
    #[schema(value_type = String, example = "claude-sonnet-4-5")]
    pub slug: Option<String>,
    #[validate(
        required,
        length(max = 200),
        custom(function = "not_blank"),
        custom(function = "crate::validation::one_line")
    )]
    #[schema(value_type = String, example = "Claude Sonnet 4.5")]
    pub name: Option<String>,
    #[validate(
        length(min = 1, max = 100),
        custom(function = "crate::validation::one_line")
    )]
    pub version: Option<String>,
    pub modality: Option<Modality>,
    pub hosting: Option<Hosting>,
    #[validate(length(max = 10000))]
    pub description: Option<String>,
}

/// `PATCH /v1/providers/{provider}/models/{model}`: absent fields stay, `null` clears.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelPatch {
    #[validate(
        length(max = 200),
        custom(function = "not_blank"),
        custom(function = "crate::validation::one_line")
    )]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[validate(
        length(min = 1, max = 100),
        custom(function = "crate::validation::one_line")
    )]
    #[schema(value_type = Option<String>)]
    pub version: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Modality>)]
    pub modality: Option<Option<Modality>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Hosting>)]
    pub hosting: Option<Option<Hosting>>,
    #[serde(default, deserialize_with = "present")]
    #[validate(length(max = 10000))]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
}

/// Tells a field sent as `null` (`Some(None)`) from one not sent (`None`).
fn present<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

fn not_blank(value: &str) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return Err(ValidationError::new("blank").with_message("must not be blank".into()));
    }
    Ok(())
}

fn http_url(value: &str) -> Result<(), ValidationError> {
    let ok = url::Url::parse(value)
        .map(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .unwrap_or(false);
    // `url` drops tabs and line breaks and encodes other controls: the
    // text as sent, which is what is stored, is checked too.
    if !ok || value.len() > 2000 || crate::validation::line_fault(value).is_some() {
        return Err(
            ValidationError::new("url").with_message("must be an http:// or https:// URL".into())
        );
    }
    Ok(())
}

/// True when `text` can name a provider or model (in URLs:
/// `anthropic/claude-sonnet-4-5`).
pub fn is_slug(text: &str) -> bool {
    crate::ids::is_slug(text)
}

fn slug_format(value: &str) -> Result<(), ValidationError> {
    if is_slug(value) {
        return Ok(());
    }
    Err(ValidationError::new("slug").with_message(
        "must be 1 to 63 lower-case letters, digits or hyphens, starting with a letter or digit"
            .into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_the_documented_pattern() {
        for good in [
            "a",
            "anthropic",
            "claude-sonnet-4-5",
            "0day",
            &"a".repeat(63),
        ] {
            assert!(is_slug(good), "{good}");
        }
        for bad in ["", "-a", "A", "a_b", "a.b", "a b", "é", &"a".repeat(64)] {
            assert!(!is_slug(bad), "{bad}");
        }
    }

    #[test]
    fn every_problem_of_a_new_provider_is_reported() {
        let input = NewProvider {
            slug: Some("Bad Slug".into()),
            name: Some("  ".into()),
            website: Some("javascript:alert(1)".into()),
            contacts: vec![Contact {
                name: None,
                email: "nope".into(),
                role: None,
            }],
            notes: None,
        };
        let errors = crate::validation::FieldError::from_validator(&input.validate().unwrap_err());
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["contacts[0].email", "name", "slug", "website"]);
    }

    #[test]
    fn patch_tells_null_from_absent() {
        let patch: ProviderPatch = serde_json::from_str(r#"{"website": null}"#).unwrap();
        assert_eq!(patch.website, Some(None));
        assert_eq!(patch.notes, None);
    }
}
