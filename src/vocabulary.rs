//! The controlled vocabularies of conditions and checks: regions (a code
//! list, `CLEARANCE_REGIONS`, by default [`DEFAULT_REGIONS`]) and use cases
//! (the organisation's catalogue, `CLEARANCE_USE_CASES`; any slug while it
//! is not configured). Codes compare case-insensitively (`EU` is `eu`); an
//! unknown one is refused with the list of known ones. Data classes are a
//! closed enum ([`crate::conditions::DataClass`]) already.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashSet};

use crate::conditions::Conditions;
use crate::validation::FieldError;

/// The regions known unless configured: the EU and the EEA, the countries
/// most often named in data-residency terms, and `global`.
pub const DEFAULT_REGIONS: &[&str] = &[
    "au", "br", "ca", "ch", "de", "eea", "eu", "fr", "global", "in", "jp", "kr", "sg", "uk", "us",
];

/// `text` in lower case, borrowed when it already is.
pub fn folded(text: &str) -> Cow<'_, str> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(text.to_ascii_lowercase())
    } else {
        Cow::Borrowed(text)
    }
}

/// A set of codes to look a check's values up in: a check asks once per
/// region of every item, on the integrators' hot path (messages sort them).
type Index = HashSet<Box<str>, foldhash::fast::RandomState>;

/// The known codes, in lower case.
#[derive(Debug, Clone)]
pub struct Vocabulary {
    regions: Index,
    /// `None`: no catalogue, any slug is a use case.
    use_cases: Option<Index>,
}

impl Default for Vocabulary {
    fn default() -> Self {
        Self::new(DEFAULT_REGIONS.iter().map(|r| (*r).to_owned()), None)
    }
}

/// The codes of `index` in order, for a message.
fn listed(index: &Index) -> String {
    let mut codes: Vec<&str> = index.iter().map(AsRef::as_ref).collect();
    codes.sort_unstable();
    codes.join(", ")
}

impl Vocabulary {
    pub fn new(regions: impl IntoIterator<Item = String>, use_cases: Option<Vec<String>>) -> Self {
        let fold = |items: Vec<String>| -> Index {
            items
                .into_iter()
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .map(String::into_boxed_str)
                .collect()
        };
        Self {
            regions: fold(regions.into_iter().collect()),
            use_cases: use_cases.map(fold),
        }
    }

    /// The known regions, in order (the OPA bundle carries them).
    pub fn regions(&self) -> Vec<&str> {
        let mut codes: Vec<&str> = self.regions.iter().map(AsRef::as_ref).collect();
        codes.sort_unstable();
        codes
    }

    /// The catalogue's use cases, in order; `None` while any slug is one.
    pub fn use_cases(&self) -> Option<Vec<&str>> {
        let known = self.use_cases.as_ref()?;
        let mut codes: Vec<&str> = known.iter().map(AsRef::as_ref).collect();
        codes.sort_unstable();
        Some(codes)
    }

    pub fn knows_region(&self, region: &str) -> bool {
        self.regions.contains(folded(region).as_ref())
    }

    pub fn knows_use_case(&self, use_case: &str) -> bool {
        self.use_cases
            .as_ref()
            .is_none_or(|known| known.contains(folded(use_case).as_ref()))
    }

    /// Why `value` is refused as a region.
    pub fn unknown_region(&self, value: &str) -> String {
        format!(
            "unknown region `{value}`; known regions: {}",
            listed(&self.regions)
        )
    }

    /// Why `value` is refused as a use case.
    pub fn unknown_use_case(&self, value: &str) -> String {
        let known = self.use_cases.as_ref().map(listed).unwrap_or_default();
        format!("unknown use case `{value}`; the catalogue lists: {known}")
    }

    /// Conditions with their codes in lower case, or the unknown ones, each
    /// named at `field` (`conditions.regions` and so on).
    pub fn conditions(
        &self,
        field: &str,
        conditions: &Conditions,
    ) -> Result<Conditions, Vec<FieldError>> {
        let lower = |set: &Option<BTreeSet<String>>| {
            set.as_ref()
                .map(|s| s.iter().map(|v| v.to_ascii_lowercase()).collect())
        };
        let normalized = Conditions {
            use_cases: lower(&conditions.use_cases),
            data_classes: conditions.data_classes.clone(),
            regions: lower(&conditions.regions),
            features_off: lower(&conditions.features_off),
        };
        let mut errors = Vec::new();
        for region in normalized.regions.iter().flatten() {
            if !self.knows_region(region) {
                errors.push(FieldError::new(
                    format!("{field}.regions"),
                    self.unknown_region(region),
                ));
            }
        }
        for use_case in normalized.use_cases.iter().flatten() {
            if !self.knows_use_case(use_case) {
                errors.push(FieldError::new(
                    format!("{field}.use_cases"),
                    self.unknown_use_case(use_case),
                ));
            }
        }
        if errors.is_empty() {
            Ok(normalized)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_compare_without_case_and_unknown_ones_list_the_known() {
        let vocabulary = Vocabulary::new(
            ["eu".to_owned(), "UK".to_owned()],
            Some(vec!["support-chat".into()]),
        );
        assert!(vocabulary.knows_region("EU") && vocabulary.knows_region("uk"));
        assert!(!vocabulary.knows_region("mars"));
        assert!(vocabulary.knows_use_case("Support-Chat"));
        assert!(!vocabulary.knows_use_case("fraud"));
        assert!(
            vocabulary
                .unknown_region("mars")
                .ends_with("known regions: eu, uk")
        );

        let conditions = Conditions {
            regions: Some(["EU".to_owned()].into()),
            ..Conditions::default()
        };
        let normalized = vocabulary.conditions("conditions", &conditions).unwrap();
        assert_eq!(normalized.regions, Some(["eu".to_owned()].into()));
        let bad = Conditions {
            regions: Some(["mars".to_owned()].into()),
            use_cases: Some(["fraud".to_owned()].into()),
            ..Conditions::default()
        };
        let errors = vocabulary.conditions("conditions", &bad).unwrap_err();
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn without_a_catalogue_any_use_case_is_known() {
        assert!(Vocabulary::default().knows_use_case("anything-at-all"));
    }
}
