//! Typed identifiers and slugs. Each is text on the wire and in the
//! database, but a distinct type in the code, so a review id is never passed
//! where a stage id belongs. Values from outside are checked once, when they
//! are parsed at the edge (a path segment, a JSON field); values read from
//! the database are trusted as written.
//!
//! Opaque ids (`ReviewId`, `StageId`, …) are UUIDs the service generated;
//! slugs (`ProviderSlug`, `ModelSlug`, `StageKey`) are what people type:
//! 1 to 63 lower-case letters, digits or hyphens, starting with a letter or
//! digit.

use std::fmt;

/// Why a text is not an identifier of the wanted kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not {what}")]
pub struct NotAnId {
    pub text: String,
    pub what: &'static str,
}

/// What every identifier type shares: text in and out, diesel's Text
/// column, serde as a string checked on the way in.
macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(
            Debug,
            Clone,
            PartialEq,
            Eq,
            PartialOrd,
            Ord,
            Hash,
            serde::Serialize,
            serde::Deserialize,
            utoipa::ToSchema,
            diesel::AsExpression,
            diesel::FromSqlRow,
        )]
        #[serde(try_from = "String", into = "String")]
        #[schema(value_type = String)]
        #[diesel(sql_type = diesel::sql_types::Text)]
        pub struct $name(String);

        impl $name {
            /// Checks `text` (from a request, a file, a command line).
            pub fn parse(text: &str) -> Result<Self, NotAnId> {
                let check: fn(&str) -> bool = $check;
                if check(text) {
                    Ok(Self(text.to_owned()))
                } else {
                    Err(NotAnId {
                        text: text.chars().take(80).collect(),
                        what: $what,
                    })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = NotAnId;

            fn try_from(text: String) -> Result<Self, NotAnId> {
                let check: fn(&str) -> bool = $check;
                if check(&text) {
                    Ok(Self(text))
                } else {
                    Err(NotAnId {
                        text: text.chars().take(80).collect(),
                        what: $what,
                    })
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = NotAnId;

            fn from_str(text: &str) -> Result<Self, NotAnId> {
                Self::parse(text)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        $crate::db::text_column!($name, |this| &this.0, |text| Ok(Self(text)));
    };
}

/// An id the service generates (a time-ordered UUID).
macro_rules! opaque_id {
    ($($(#[$doc:meta])* $name:ident),+ $(,)?) => {$(
        text_type!($(#[$doc])* $name, "an id this service issued", is_uuid);

        impl $name {
            /// A new id, later than every id generated before it.
            pub fn generate() -> Self {
                Self(uuid::Uuid::now_v7().to_string())
            }
        }
    )+};
}

fn is_uuid(text: &str) -> bool {
    text.len() == 36 && uuid::Uuid::try_parse(text).is_ok()
}

/// 1 to 63 lower-case letters, digits or hyphens, starting with a letter or digit.
pub fn is_slug(text: &str) -> bool {
    let bytes = text.as_bytes();
    (1..=63).contains(&bytes.len())
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

opaque_id!(
    /// A review.
    ReviewId,
    /// A review's instance of a workflow stage (its row).
    StageId,
    /// A provider's row.
    ProviderId,
    /// A model's row.
    ModelId,
    /// A finding of a review.
    FindingId,
    /// An invitation of a supplier contact (its link's scope).
    InvitationId,
    /// A webhook subscription.
    WebhookId,
    /// A message in the outbox.
    MessageId,
);

text_type!(
    /// A provider, as people and integrators name it (`anthropic`).
    ProviderSlug, "a provider slug (1 to 63 lower-case letters, digits or hyphens)", is_slug);
text_type!(
    /// A model of a provider, as people and integrators name it (`claude-sonnet-4-5`).
    ModelSlug, "a model slug (1 to 63 lower-case letters, digits or hyphens)", is_slug);
text_type!(
    /// A stage of a workflow (`security`, `final_approval`).
    StageKey, "a stage key (1 to 63 lower-case letters, digits or hyphens)", is_slug);

impl StageKey {
    /// A key the workflow file's parser has checked already (it reports a
    /// key that is not a slug, and then makes no workflow).
    pub(crate) fn trusted(text: String) -> Self {
        Self(text)
    }
}

#[cfg(test)]
impl From<&str> for StageKey {
    fn from(text: &str) -> Self {
        Self::parse(text).expect("a stage key in a test")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuids_and_slugs_are_slugs() {
        let id = ReviewId::generate();
        assert_eq!(ReviewId::parse(id.as_str()), Ok(id.clone()));
        assert!(ReviewId::parse("nope").is_err());
        assert!(ReviewId::parse("0190f3b4-0000-7000-8000-00000000000\u{0}").is_err());
        assert!(ProviderSlug::parse("anthropic").is_ok());
        for bad in ["", "-a", "A", "a b", "a\u{0}b", &"a".repeat(64)] {
            assert!(ProviderSlug::parse(bad).is_err(), "{bad:?}");
        }
        assert!(StageKey::parse("final-approval").is_ok());
        assert!(StageKey::parse("final_approval").is_err());
    }

    #[test]
    fn serde_checks_on_the_way_in() {
        let slug: ProviderSlug = serde_json::from_str("\"acme\"").unwrap();
        assert_eq!(serde_json::to_string(&slug).unwrap(), "\"acme\"");
        let error = serde_json::from_str::<ProviderSlug>("\"Acme\"").unwrap_err();
        assert!(error.to_string().contains("not a provider slug"), "{error}");
    }
}
