//! Conditions of use attached to an approval, in the machine-readable form the
//! status check evaluates: `{"use_cases", "data_classes", "regions",
//! "features_off"}`, every key optional. A listed key admits only what it
//! lists; conditions of several decisions merge by intersection (and by union
//! for `features_off`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::{Validate, ValidationError};

crate::names::named_enum! {
    /// Classes of data that may be sent to a model, least sensitive first.
    #[derive(PartialOrd, Ord, Hash)]
    pub enum DataClass {
        Public,
        Internal,
        Confidential,
        Personal,
        SpecialCategory,
    }
}

/// Each list is a set: a value sent twice counts once (so the schema does
/// not say `uniqueItems`, which would refuse what the service accepts).
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize, Validate, ToSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// Use cases the model may serve (slugs such as `support-chat`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(custom(function = "slugs"))]
    #[schema(value_type = Option<Vec<String>>)]
    pub use_cases: Option<BTreeSet<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<DataClass>>)]
    pub data_classes: Option<BTreeSet<DataClass>>,
    /// Regions where it may be used or process data (e.g. `eu`, `uk`, `us`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(custom(function = "slugs"))]
    #[schema(value_type = Option<Vec<String>>)]
    pub regions: Option<BTreeSet<String>>,
    /// Features that must stay off (e.g. `web_grounding`, `training_on_customer_data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(custom(function = "slugs"))]
    #[schema(value_type = Option<Vec<String>>)]
    pub features_off: Option<BTreeSet<String>>,
}

fn slugs(values: &BTreeSet<String>) -> Result<(), ValidationError> {
    let ok = values.iter().all(|v| {
        !v.is_empty()
            && v.len() <= 64
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new("slug")
            .with_message("values must be 1 to 64 of [a-z0-9_-] (stored in lower case)".into()))
    }
}

fn intersect<T: Ord + Clone>(
    a: &Option<BTreeSet<T>>,
    b: &Option<BTreeSet<T>>,
) -> Option<BTreeSet<T>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.intersection(b).cloned().collect()),
        (Some(x), None) | (None, Some(x)) => Some(x.clone()),
        (None, None) => None,
    }
}

impl Conditions {
    /// True when no key is set: an approval without limits.
    pub fn is_empty(&self) -> bool {
        self.use_cases.is_none()
            && self.data_classes.is_none()
            && self.regions.is_none()
            && self.features_off.is_none()
    }

    /// Both sets of conditions at once: lists intersect, `features_off` unite.
    pub fn merge(&self, other: &Conditions) -> Conditions {
        let features_off = match (&self.features_off, &other.features_off) {
            (Some(a), Some(b)) => Some(a.union(b).cloned().collect()),
            (Some(x), None) | (None, Some(x)) => Some(x.clone()),
            (None, None) => None,
        };
        Conditions {
            use_cases: intersect(&self.use_cases, &other.use_cases),
            data_classes: intersect(&self.data_classes, &other.data_classes),
            regions: intersect(&self.regions, &other.regions),
            features_off,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set<T: Ord + Clone>(items: &[T]) -> Option<BTreeSet<T>> {
        Some(items.iter().cloned().collect())
    }

    #[test]
    fn lists_intersect_and_features_off_unite() {
        let a = Conditions {
            regions: set(&["eu".to_owned(), "uk".to_owned()]),
            data_classes: set(&[DataClass::Public, DataClass::Internal]),
            features_off: set(&["web_grounding".to_owned()]),
            ..Default::default()
        };
        let b = Conditions {
            regions: set(&["eu".to_owned()]),
            use_cases: set(&["support-chat".to_owned()]),
            features_off: set(&["training_on_customer_data".to_owned()]),
            ..Default::default()
        };
        let merged = a.merge(&b);
        assert_eq!(merged.regions, set(&["eu".to_owned()]));
        assert_eq!(merged.use_cases, set(&["support-chat".to_owned()]));
        assert_eq!(
            merged.data_classes,
            set(&[DataClass::Public, DataClass::Internal])
        );
        assert_eq!(merged.features_off.unwrap().len(), 2);
    }
}
