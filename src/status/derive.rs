//! Deriving a model's clearance from its facts, and deciding whether a use
//! in a given context is allowed. Plain functions over plain data.

use crate::vocabulary::folded;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::conditions::{Conditions, DataClass};
use crate::workflow::Tier;
use crate::workflow::engine::ReviewState;

crate::names::named_enum! {
    /// The published status of a model.
    #[derive(PartialOrd, Ord)]
    pub enum Status {
        Approved,
        ApprovedWithConditions,
        InReview,
        Rejected,
        Expired,
        Suspended,
        NotReviewed,
    }
}

impl Status {
    pub fn is_approval(self) -> bool {
        matches!(self, Status::Approved | Status::ApprovedWithConditions)
    }

    /// The status as of `now`: an approval whose `valid_until` has passed
    /// reads `expired`.
    pub fn as_of(self, valid_until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Status {
        if self.is_approval() && valid_until.is_some_and(|until| until <= now) {
            Status::Expired
        } else {
            self
        }
    }
}

/// The latest decided review of a subject.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub review_id: String,
    pub state: ReviewState,
    pub tier: Tier,
    pub conditions: Option<Conditions>,
    pub decided_at: DateTime<Utc>,
    pub valid_until: Option<DateTime<Utc>>,
}

/// What is known about one model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub model_decision: Option<Decision>,
    pub provider_decision: Option<Decision>,
    /// A review in progress that covers the model (model-level or provider-wide).
    pub review_in_progress: Option<String>,
    /// The admin switch (model or whole provider), with its reason.
    pub suspended: Option<String>,
    /// The status version at which the model's clearance last changed
    /// (0 until it first does).
    pub version: i64,
}

/// The published clearance of a model, as integrators read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Clearance {
    pub provider: String,
    pub model: String,
    pub status: Status,
    pub tier: Option<Tier>,
    /// Limits of a conditional approval; `{}` when there are none.
    pub conditions: Conditions,
    pub valid_until: Option<DateTime<Utc>>,
    pub review_id: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    /// Why the model is suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended_reason: Option<String>,
    /// Increases whenever this model's clearance changes.
    pub version: i64,
}

/// The governing decision: the model's own, unless a provider-wide one is newer.
fn governing(facts: &Facts) -> Option<&Decision> {
    match (&facts.model_decision, &facts.provider_decision) {
        (Some(model), Some(provider)) if provider.decided_at > model.decided_at => Some(provider),
        (Some(model), _) => Some(model),
        (None, provider) => provider.as_ref(),
    }
}

/// Derives the clearance as of `now` (an approval past `valid_until` is `expired`).
pub fn derive(provider: &str, model: &str, facts: &Facts, now: DateTime<Utc>) -> Clearance {
    let decision = governing(facts);
    let mut clearance = Clearance {
        provider: provider.to_owned(),
        model: model.to_owned(),
        status: Status::NotReviewed,
        tier: decision.map(|d| d.tier),
        conditions: decision
            .and_then(|d| d.conditions.clone())
            .unwrap_or_default(),
        valid_until: decision.and_then(|d| d.valid_until),
        review_id: decision.map(|d| d.review_id.clone()),
        decided_at: decision.map(|d| d.decided_at),
        suspended_reason: None,
        version: facts.version,
    };
    clearance.status = match decision {
        Some(d) if d.state == ReviewState::Rejected => Status::Rejected,
        Some(d) if d.state == ReviewState::ApprovedWithConditions => {
            Status::ApprovedWithConditions.as_of(d.valid_until, now)
        }
        Some(d) => Status::Approved.as_of(d.valid_until, now),
        None => match &facts.review_in_progress {
            Some(review) => {
                clearance.review_id = Some(review.clone());
                Status::InReview
            }
            None => Status::NotReviewed,
        },
    };
    if let Some(reason) = &facts.suspended {
        clearance.status = Status::Suspended;
        clearance.suspended_reason = Some(reason.clone());
    }
    clearance
}

/// The context an integrator asks about.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckContext {
    pub provider: String,
    pub model: String,
    /// The use case, e.g. `support-chat`.
    #[serde(default)]
    pub use_case: Option<String>,
    /// Data classes that will be sent to the model.
    #[serde(default)]
    pub data_classes: Option<Vec<DataClass>>,
    /// Regions where the model will be used or process data.
    #[serde(default)]
    pub regions: Option<Vec<String>>,
    /// Features that will be turned on.
    #[serde(default)]
    pub features: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckResult {
    pub provider: String,
    pub model: String,
    pub allow: bool,
    pub status: Status,
    /// Stable reason codes of a denial, e.g. `expired`,
    /// `data_class_not_allowed:personal`, `region_not_allowed:us`,
    /// `use_case_not_allowed:support-chat`, `feature_must_be_off:web_grounding`,
    /// `use_case_not_stated`; empty when allowed.
    pub reasons: Vec<String>,
    pub valid_until: Option<DateTime<Utc>>,
}

impl CheckContext {
    /// The use this context describes, borrowed.
    pub fn as_use(&self) -> Use<'_, String> {
        Use {
            use_case: self.use_case.as_deref(),
            data_classes: self.data_classes.as_deref(),
            regions: self.regions.as_deref(),
            features: self.features.as_deref(),
        }
    }
}

/// One use to decide, borrowed from whatever holds its context.
#[derive(Debug, Clone, Copy)]
pub struct Use<'a, S> {
    pub use_case: Option<&'a str>,
    pub data_classes: Option<&'a [DataClass]>,
    pub regions: Option<&'a [S]>,
    pub features: Option<&'a [S]>,
}

/// Why a use is denied, as a stable, machine-readable code
/// (`expired`, `region_not_allowed:us`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason<'a> {
    /// A status that denies every use (`in_review`, `expired`, `suspended`, …).
    Status(Status),
    UseCaseNotStated,
    DataClassesNotStated,
    RegionsNotStated,
    UseCaseNotAllowed(&'a str),
    DataClassNotAllowed(DataClass),
    RegionNotAllowed(&'a str),
    FeatureMustBeOff(&'a str),
}

impl std::fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Status(status) => f.write_str(status.as_str()),
            Reason::UseCaseNotStated => f.write_str("use_case_not_stated"),
            Reason::DataClassesNotStated => f.write_str("data_classes_not_stated"),
            Reason::RegionsNotStated => f.write_str("regions_not_stated"),
            Reason::UseCaseNotAllowed(use_case) => write!(f, "use_case_not_allowed:{use_case}"),
            Reason::DataClassNotAllowed(class) => {
                write!(f, "data_class_not_allowed:{}", class.as_str())
            }
            Reason::RegionNotAllowed(region) => write!(f, "region_not_allowed:{region}"),
            Reason::FeatureMustBeOff(feature) => write!(f, "feature_must_be_off:{feature}"),
        }
    }
}

impl Serialize for Reason<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Decides one use: allowed only for an approval in force whose conditions
/// admit the whole context. A condition the context does not speak to
/// (`use_case_not_stated`, …) denies: the integrator must say.
pub fn check(clearance: &Clearance, context: &CheckContext) -> CheckResult {
    let reasons = reasons(clearance.status, &clearance.conditions, context.as_use());
    CheckResult {
        provider: clearance.provider.clone(),
        model: clearance.model.clone(),
        allow: reasons.is_empty(),
        status: clearance.status,
        reasons: reasons.iter().map(ToString::to_string).collect(),
        valid_until: clearance.valid_until,
    }
}

/// Why a use of a model with `status` and `conditions` is denied; empty
/// when it is allowed.
pub fn reasons<'a, S: AsRef<str>>(
    status: Status,
    conditions: &Conditions,
    context: Use<'a, S>,
) -> Vec<Reason<'a>> {
    let mut reasons = Vec::new();
    if !status.is_approval() {
        reasons.push(Reason::Status(status));
        return reasons;
    }
    if let Some(allowed) = &conditions.use_cases {
        match context.use_case {
            None => reasons.push(Reason::UseCaseNotStated),
            Some(use_case) if !allowed.contains(folded(use_case).as_ref()) => {
                reasons.push(Reason::UseCaseNotAllowed(use_case))
            }
            Some(_) => {}
        }
    }
    if let Some(allowed) = &conditions.data_classes {
        match context.data_classes {
            None => reasons.push(Reason::DataClassesNotStated),
            Some(classes) => reasons.extend(
                classes
                    .iter()
                    .filter(|class| !allowed.contains(class))
                    .map(|class| Reason::DataClassNotAllowed(*class)),
            ),
        }
    }
    if let Some(allowed) = &conditions.regions {
        match context.regions {
            None => reasons.push(Reason::RegionsNotStated),
            Some(regions) => reasons.extend(
                regions
                    .iter()
                    .map(AsRef::as_ref)
                    .filter(|region| !allowed.contains(folded(region).as_ref()))
                    .map(Reason::RegionNotAllowed),
            ),
        }
    }
    if let (Some(off), Some(features)) = (&conditions.features_off, context.features) {
        reasons.extend(
            features
                .iter()
                .map(AsRef::as_ref)
                .filter(|feature| off.contains(folded(feature).as_ref()))
                .map(Reason::FeatureMustBeOff),
        );
    }
    reasons.dedup();
    reasons
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::TimeDelta;

    use super::*;

    pub(crate) fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z")
            .unwrap()
            .to_utc()
    }

    pub(crate) fn decision(state: ReviewState, days_ago: i64, valid_days: Option<i64>) -> Decision {
        let decided_at = now() - TimeDelta::days(days_ago);
        Decision {
            review_id: format!("r-{days_ago}"),
            state,
            tier: Tier::Medium,
            conditions: None,
            decided_at,
            valid_until: valid_days.map(|d| decided_at + TimeDelta::days(d)),
        }
    }

    fn status(facts: &Facts) -> Status {
        derive("p", "m", facts, now()).status
    }

    #[test]
    fn each_status_is_derived() {
        assert_eq!(status(&Facts::default()), Status::NotReviewed);
        assert_eq!(
            status(&Facts {
                review_in_progress: Some("r".into()),
                ..Default::default()
            }),
            Status::InReview
        );
        let approved = decision(ReviewState::Approved, 10, Some(365));
        assert_eq!(
            status(&Facts {
                model_decision: Some(approved.clone()),
                ..Default::default()
            }),
            Status::Approved
        );
        let lapsed = decision(ReviewState::Approved, 400, Some(365));
        assert_eq!(
            status(&Facts {
                model_decision: Some(lapsed),
                ..Default::default()
            }),
            Status::Expired
        );
        let rejected = decision(ReviewState::Rejected, 5, None);
        assert_eq!(
            status(&Facts {
                model_decision: Some(rejected),
                ..Default::default()
            }),
            Status::Rejected
        );
        let conditional = decision(ReviewState::ApprovedWithConditions, 5, Some(365));
        assert_eq!(
            status(&Facts {
                model_decision: Some(conditional),
                ..Default::default()
            }),
            Status::ApprovedWithConditions
        );
        let suspended = Facts {
            model_decision: Some(approved),
            suspended: Some("incident".into()),
            ..Default::default()
        };
        assert_eq!(status(&suspended), Status::Suspended);
    }

    #[test]
    fn an_approval_stays_in_force_while_its_re_review_runs() {
        let facts = Facts {
            model_decision: Some(decision(ReviewState::Approved, 300, Some(365))),
            review_in_progress: Some("re-review".into()),
            ..Default::default()
        };
        assert_eq!(status(&facts), Status::Approved);
    }

    #[test]
    fn a_newer_provider_wide_decision_governs_the_model() {
        let facts = Facts {
            model_decision: Some(decision(ReviewState::Approved, 30, Some(365))),
            provider_decision: Some(decision(ReviewState::Rejected, 2, None)),
            ..Default::default()
        };
        assert_eq!(status(&facts), Status::Rejected);
        let facts = Facts {
            model_decision: Some(decision(ReviewState::Approved, 2, Some(365))),
            provider_decision: Some(decision(ReviewState::Rejected, 30, None)),
            ..Default::default()
        };
        assert_eq!(status(&facts), Status::Approved);
    }

    #[test]
    fn conditions_admit_only_what_they_list() {
        let mut approval = decision(ReviewState::ApprovedWithConditions, 1, Some(365));
        approval.conditions = Some(Conditions {
            data_classes: Some([DataClass::Public, DataClass::Internal].into()),
            regions: Some(["eu".to_owned()].into()),
            features_off: Some(["web_grounding".to_owned()].into()),
            ..Default::default()
        });
        let clearance = derive(
            "p",
            "m",
            &Facts {
                model_decision: Some(approval),
                ..Default::default()
            },
            now(),
        );
        let context = CheckContext {
            provider: "p".into(),
            model: "m".into(),
            data_classes: Some(vec![DataClass::Internal]),
            regions: Some(vec!["eu".into()]),
            ..Default::default()
        };
        assert!(check(&clearance, &context).allow);
        let risky = CheckContext {
            data_classes: Some(vec![DataClass::Personal, DataClass::Public]),
            regions: Some(vec!["us".into()]),
            features: Some(vec!["web_grounding".into()]),
            ..context.clone()
        };
        let result = check(&clearance, &risky);
        assert!(!result.allow);
        assert_eq!(
            result.reasons,
            [
                "data_class_not_allowed:personal",
                "region_not_allowed:us",
                "feature_must_be_off:web_grounding"
            ]
        );
        let silent = CheckContext {
            provider: "p".into(),
            model: "m".into(),
            ..Default::default()
        };
        assert_eq!(
            check(&clearance, &silent).reasons,
            ["data_classes_not_stated", "regions_not_stated"]
        );
    }
}
