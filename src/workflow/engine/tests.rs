use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::conditions::DataClass;
use crate::workflow::definition::QuestionKind;
use crate::workflow::fixture::workflow;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-05T09:00:00Z")
        .unwrap()
        .to_utc()
}

fn person(id: &str, roles: &[Role]) -> Caller {
    Caller::Person {
        id: id.into(),
        roles: roles.iter().copied().collect(),
    }
}

fn vm1() -> Caller {
    person("vm1", &[Role::VendorManager])
}
fn vm2() -> Caller {
    person("vm2", &[Role::VendorManager])
}
fn sec(n: u8) -> Caller {
    person(&format!("sec{n}"), &[Role::SecurityReviewer])
}
fn supplier(stage: &str) -> Caller {
    Caller::Respondent {
        id: format!("respondent:{stage}"),
        stage: stage.into(),
    }
}

fn answers(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn save_answers(stage: &str, given: &[(&str, Value)]) -> Action {
    Action::SaveAnswers {
        stage: stage.into(),
        answers: answers(given),
    }
}

fn submit(stage: &str) -> Action {
    Action::Submit {
        stage: stage.into(),
    }
}

struct Run {
    workflow: Workflow,
    review: Review,
    effects: Vec<Effect>,
}

impl Run {
    fn new() -> Self {
        let workflow = workflow();
        let outcome = start(&workflow, ReviewKind::Initial, "vm1", t0());
        Run {
            workflow,
            review: outcome.review,
            effects: outcome.effects,
        }
    }

    fn try_do(&mut self, caller: &Caller, action: Action) -> Result<(), Refusal> {
        let outcome = apply(&self.workflow, &self.review, &action, caller, t0())?;
        self.review = outcome.review;
        self.effects.extend(outcome.effects);
        Ok(())
    }

    fn act(&mut self, caller: &Caller, action: Action) {
        if let Err(refusal) = self.try_do(caller, action.clone()) {
            panic!("{action:?} by {caller:?} refused: {refusal:?}");
        }
    }

    fn answer_and_submit(&mut self, caller: &Caller, stage: &str, given: &[(&str, Value)]) {
        self.act(caller, save_answers(stage, given));
        self.act(caller, submit(stage));
    }

    /// The supplier of `stage` answers it and submits.
    fn supplier_submits(&mut self, stage: &str, given: &[(&str, Value)]) {
        self.answer_and_submit(&supplier(stage), stage, given);
    }

    fn decide(&mut self, caller: &Caller, stage: &str, decision: Decision) -> Result<(), Refusal> {
        let comment = (decision != Decision::Approve).then(|| "because".to_owned());
        self.try_do(
            caller,
            Action::Decide {
                stage: stage.into(),
                decision,
                comment,
                conditions: None,
            },
        )
    }

    fn state_of(&self, stage: &str) -> StageState {
        self.review.stage(stage).unwrap().state
    }

    /// Intake answered by vm1 (the starter), approved by vm2.
    fn through_intake(&mut self, data: &[&str]) {
        self.answer_and_submit(&vm1(), "intake", &[("data_classes", json!(data))]);
        self.decide(&vm2(), "intake", Decision::Approve).unwrap();
    }
}

#[test]
fn a_new_review_opens_its_first_stage() {
    let run = Run::new();
    assert_eq!(run.review.state, ReviewState::InProgress);
    assert_eq!(run.review.tier, Tier::Low);
    assert_eq!(run.state_of("intake"), StageState::AwaitingAnswers);
    assert_eq!(
        run.review.stage("intake").unwrap().due_at,
        Some(t0() + TimeDelta::days(5))
    );
    assert_eq!(run.state_of("security"), StageState::Blocked);
}

#[test]
fn a_low_tier_review_runs_security_and_privacy_in_parallel_and_skips_the_rest() {
    let mut run = Run::new();
    run.through_intake(&["public"]);
    assert_eq!(run.state_of("security"), StageState::AwaitingAnswers);
    assert_eq!(run.state_of("privacy"), StageState::AwaitingAnswers);
    assert_eq!(run.state_of("rai"), StageState::Skipped);

    run.supplier_submits(
        "security",
        &[
            ("iso27001", json!(true)),
            ("iso27001_url", json!("https://x.example/cert.pdf")),
        ],
    );
    run.supplier_submits("privacy", &[("retention_days", json!(30))]);
    run.decide(&sec(1), "security", Decision::Approve).unwrap();
    run.decide(
        &person("priv", &[Role::PrivacyReviewer]),
        "privacy",
        Decision::Approve,
    )
    .unwrap();

    assert_eq!(run.state_of("final"), StageState::Skipped);
    assert_eq!(run.review.state, ReviewState::Approved);
    assert_eq!(run.review.valid_until, Some(t0() + TimeDelta::days(365)));
}

#[test]
fn a_high_tier_review_needs_responsible_ai_two_security_approvers_and_the_approver() {
    let mut run = Run::new();
    run.through_intake(&["public", "personal"]);
    assert_eq!(run.review.tier, Tier::High);
    assert_eq!(run.state_of("rai"), StageState::AwaitingAnswers);

    run.supplier_submits("security", &[("iso27001", json!(false))]);
    run.supplier_submits("privacy", &[("retention_days", json!(30))]);
    run.supplier_submits("rai", &[("model_card", json!("https://x.example/card"))]);
    run.decide(&sec(1), "security", Decision::Approve).unwrap();
    assert_eq!(
        run.state_of("security"),
        StageState::InReview,
        "one approval is not enough at high"
    );
    run.decide(&sec(2), "security", Decision::Approve).unwrap();
    run.decide(
        &person("priv", &[Role::PrivacyReviewer]),
        "privacy",
        Decision::Approve,
    )
    .unwrap();
    assert_eq!(
        run.state_of("final"),
        StageState::Blocked,
        "waits for the responsible-AI stage"
    );
    run.decide(
        &person("rai", &[Role::RaiReviewer]),
        "rai",
        Decision::Approve,
    )
    .unwrap();
    assert_eq!(run.state_of("final"), StageState::AwaitingAnswers);
    assert_eq!(run.review.state, ReviewState::InProgress);

    run.answer_and_submit(&vm2(), "final", &[("residual_risk", json!("low"))]);
    let approver = person("boss", &[Role::Approver]);
    run.decide(&approver, "final", Decision::Approve).unwrap();
    assert_eq!(run.review.state, ReviewState::Approved);
    assert_eq!(run.review.valid_until, Some(t0() + TimeDelta::days(90)));
    assert!(run.effects.iter().any(|e| matches!(
        e,
        Effect::FindingOpened {
            severity: Severity::Medium,
            ..
        }
    )));
}

#[test]
fn whoever_started_the_review_may_not_approve_it() {
    let mut run = Run::new();
    run.answer_and_submit(&vm2(), "intake", &[("data_classes", json!(["public"]))]);
    assert!(matches!(
        run.decide(&vm1(), "intake", Decision::Approve),
        Err(Refusal::SegregationOfDuties(_))
    ));
}

#[test]
fn whoever_answered_a_stage_may_not_approve_it() {
    let mut run = Run::new();
    run.answer_and_submit(&vm2(), "intake", &[("data_classes", json!(["public"]))]);
    let err = run.decide(&vm2(), "intake", Decision::Approve).unwrap_err();
    assert!(
        matches!(err, Refusal::SegregationOfDuties(ref m) if m.contains("answered")),
        "{err:?}"
    );
}

#[test]
fn one_person_cannot_give_two_approvals() {
    let mut run = Run::new();
    run.through_intake(&["personal"]);
    run.supplier_submits("security", &[("iso27001", json!(false))]);
    run.decide(&sec(1), "security", Decision::Approve).unwrap();
    let err = run
        .decide(&sec(1), "security", Decision::Approve)
        .unwrap_err();
    assert!(
        matches!(err, Refusal::SegregationOfDuties(ref m) if m.contains("2 approvals")),
        "{err:?}"
    );
}

#[test]
fn only_the_approver_role_decides() {
    let mut run = Run::new();
    run.through_intake(&["public"]);
    run.supplier_submits("security", &[("iso27001", json!(false))]);
    let admin = person("root", &[Role::Admin]);
    assert!(matches!(
        run.decide(&admin, "security", Decision::Approve),
        Err(Refusal::Forbidden(_))
    ));
}

#[test]
fn a_respondent_answers_only_their_stage() {
    let mut run = Run::new();
    run.through_intake(&["public"]);
    let err = run.try_do(
        &supplier("privacy"),
        save_answers("security", &[("iso27001", json!(true))]),
    );
    assert!(matches!(err, Err(Refusal::Forbidden(_))));
    let err = run.try_do(&supplier("intake"), save_answers("intake", &[]));
    assert!(
        matches!(err, Err(Refusal::Forbidden(_))),
        "intake is answered by vendor managers"
    );
}

#[test]
fn answers_of_the_wrong_type_are_refused_per_question() {
    let mut run = Run::new();
    let err = run
        .try_do(
            &vm1(),
            save_answers(
                "intake",
                &[
                    ("data_classes", json!("personal")),
                    ("purpose", json!("x".repeat(21))),
                    ("nope", json!(1)),
                ],
            ),
        )
        .unwrap_err();
    let Refusal::Invalid(errors) = err else {
        panic!("{err:?}")
    };
    let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["data_classes", "nope", "purpose"]);
}

#[test]
fn submit_lists_missing_required_answers_and_ignores_hidden_ones() {
    let mut run = Run::new();
    run.through_intake(&["public"]);
    let err = run
        .try_do(&supplier("security"), submit("security"))
        .unwrap_err();
    assert_eq!(err, Refusal::MissingAnswers(vec!["iso27001".into()]));
    run.act(
        &supplier("security"),
        save_answers("security", &[("iso27001", json!(true))]),
    );
    let err = run
        .try_do(&supplier("security"), submit("security"))
        .unwrap_err();
    assert_eq!(
        err,
        Refusal::MissingAnswers(vec!["iso27001_url".into()]),
        "shown now, so required"
    );
    run.act(
        &supplier("security"),
        save_answers("security", &[("iso27001", json!(false))]),
    );
    run.act(&supplier("security"), submit("security"));
}

#[test]
fn requesting_changes_reopens_the_stage_and_clears_its_approvals() {
    let mut run = Run::new();
    run.through_intake(&["personal"]);
    run.supplier_submits("security", &[("iso27001", json!(false))]);
    run.decide(&sec(1), "security", Decision::Approve).unwrap();
    run.decide(&sec(2), "security", Decision::RequestChanges)
        .unwrap();
    let stage = run.review.stage("security").unwrap();
    assert_eq!(stage.state, StageState::AwaitingAnswers);
    assert!(stage.approvals.is_empty());
    run.act(&supplier("security"), submit("security"));
    assert_eq!(run.review.stage("security").unwrap().round, 2);
    run.decide(&sec(1), "security", Decision::Approve).unwrap();
    assert_eq!(
        run.state_of("security"),
        StageState::InReview,
        "the earlier round's approval does not count"
    );
}

#[test]
fn who_decides_a_stage_comments_on_it_in_review_or_sent_back() {
    let mut run = Run::new();
    run.through_intake(&["personal"]);
    let may =
        |run: &Run, caller: &Caller| may_comment(&run.workflow, &run.review, caller, "security");
    assert!(
        matches!(may(&run, &sec(1)), Err(Refusal::NotAllowed { .. })),
        "not before the questionnaire is submitted"
    );
    run.supplier_submits("security", &[("iso27001", json!(false))]);
    assert_eq!(may(&run, &sec(1)), Ok(()));
    assert_eq!(may(&run, &person("ada", &[Role::Admin])), Ok(()));
    assert!(matches!(may(&run, &vm2()), Err(Refusal::Forbidden(_))));
    assert!(matches!(
        may(&run, &supplier("security")),
        Err(Refusal::Forbidden(_))
    ));
    run.decide(&sec(1), "security", Decision::RequestChanges)
        .unwrap();
    assert_eq!(may(&run, &sec(2)), Ok(()), "sent back for changes");
    assert!(
        allowed(&run.workflow, &run.review, &sec(2))
            .commentable
            .iter()
            .any(|s| s == "security")
    );
}

#[test]
fn a_rejected_stage_rejects_the_review_and_stops_it() {
    let mut run = Run::new();
    run.through_intake(&["public"]);
    run.supplier_submits("security", &[("iso27001", json!(false))]);
    assert!(matches!(
        run.decide(&sec(1), "security", Decision::Reject),
        Ok(())
    ));
    assert_eq!(run.review.state, ReviewState::Rejected);
    let err = run
        .try_do(&supplier("privacy"), submit("privacy"))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Refusal::NotAllowed {
                state: "rejected",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn reject_and_request_changes_need_a_comment() {
    let mut run = Run::new();
    run.answer_and_submit(&vm2(), "intake", &[("data_classes", json!(["public"]))]);
    let err = run.try_do(
        &person("vm3", &[Role::VendorManager]),
        Action::Decide {
            stage: "intake".into(),
            decision: Decision::Reject,
            comment: Some("  ".into()),
            conditions: None,
        },
    );
    assert!(
        matches!(err, Err(Refusal::Invalid(ref e)) if e[0].field == "comment"),
        "{err:?}"
    );
}

#[test]
fn the_tier_can_be_raised_but_never_lowered() {
    let mut run = Run::new();
    run.through_intake(&["public"]);
    assert_eq!(run.state_of("rai"), StageState::Skipped);
    let reviewer = sec(1);
    let err = run
        .try_do(
            &reviewer,
            Action::RaiseTier {
                tier: Tier::Low,
                reason: "x".into(),
            },
        )
        .unwrap_err();
    assert!(matches!(err, Refusal::Invalid(ref e) if e[0].field == "tier"));
    run.act(
        &reviewer,
        Action::RaiseTier {
            tier: Tier::High,
            reason: "Handles HR data".into(),
        },
    );
    assert_eq!(run.review.tier, Tier::High);
    assert_eq!(run.review.tier_reason.as_deref(), Some("Handles HR data"));
    assert_eq!(
        run.state_of("rai"),
        StageState::AwaitingAnswers,
        "un-skipped and opened"
    );
    assert_eq!(run.state_of("final"), StageState::Blocked);
}

#[test]
fn an_answer_that_triggers_a_rule_raises_the_tier_and_opens_a_finding_once() {
    let mut run = Run::new();
    run.through_intake(&["public"]);
    run.supplier_submits("privacy", &[("retention_days", json!(400))]);
    assert_eq!(run.review.tier, Tier::Critical);
    assert!(
        run.review
            .tier_reason
            .as_deref()
            .unwrap()
            .contains("the answer to \"Retention (days)\" in the Privacy stage"),
        "{:?}",
        run.review.tier_reason
    );
    let person_priv = person("priv", &[Role::PrivacyReviewer]);
    run.decide(&person_priv, "privacy", Decision::RequestChanges)
        .unwrap();
    run.act(&supplier("privacy"), submit("privacy"));
    let findings = run
        .effects
        .iter()
        .filter(|e| matches!(e, Effect::FindingOpened { .. }))
        .count();
    assert_eq!(findings, 1);
}

#[test]
fn raising_the_tier_sends_an_under_approved_stage_back_to_review() {
    let mut run = Run::new();
    run.through_intake(&["public"]);
    run.supplier_submits("security", &[("iso27001", json!(false))]);
    run.decide(&sec(1), "security", Decision::Approve).unwrap();
    assert_eq!(run.state_of("security"), StageState::Approved);
    run.act(
        &sec(2),
        Action::RaiseTier {
            tier: Tier::High,
            reason: "scope grew".into(),
        },
    );
    assert_eq!(run.state_of("security"), StageState::InReview);
}

#[test]
fn conditions_merge_into_approved_with_conditions() {
    let mut run = Run::new();
    run.through_intake(&["public"]);
    run.supplier_submits("security", &[("iso27001", json!(false))]);
    run.supplier_submits("privacy", &[("retention_days", json!(0))]);
    let eu_uk = Conditions {
        regions: Some(["eu".to_owned(), "uk".to_owned()].into()),
        ..Default::default()
    };
    let eu_internal = Conditions {
        regions: Some(["eu".to_owned()].into()),
        data_classes: Some([DataClass::Public, DataClass::Internal].into()),
        ..Default::default()
    };
    run.act(
        &sec(1),
        Action::Decide {
            stage: "security".into(),
            decision: Decision::Approve,
            comment: None,
            conditions: Some(eu_uk),
        },
    );
    run.act(
        &person("priv", &[Role::PrivacyReviewer]),
        Action::Decide {
            stage: "privacy".into(),
            decision: Decision::Approve,
            comment: None,
            conditions: Some(eu_internal),
        },
    );
    assert_eq!(run.review.state, ReviewState::ApprovedWithConditions);
    let conditions = run.review.conditions.clone().unwrap();
    assert_eq!(conditions.regions, Some(["eu".to_owned()].into()));
    assert_eq!(
        conditions.data_classes,
        Some([DataClass::Public, DataClass::Internal].into())
    );
}

#[test]
fn a_withdrawn_review_takes_no_more_actions() {
    let mut run = Run::new();
    assert!(matches!(
        run.try_do(&sec(1), Action::Withdraw { reason: "x".into() }),
        Err(Refusal::Forbidden(_))
    ));
    run.act(
        &vm2(),
        Action::Withdraw {
            reason: "Project cancelled".into(),
        },
    );
    assert_eq!(run.review.state, ReviewState::Withdrawn);
    let err = run
        .try_do(
            &vm1(),
            Action::Assign {
                stage: "intake".into(),
                duty: Some(Duty::Answer),
                assignee: Some("vm2".into()),
            },
        )
        .unwrap_err();
    assert!(matches!(
        err,
        Refusal::NotAllowed {
            state: "withdrawn",
            ..
        }
    ));
}

#[test]
fn on_a_closed_review_a_caller_without_the_role_is_refused_for_the_role() {
    let mut run = Run::new();
    run.act(
        &vm2(),
        Action::Withdraw {
            reason: "Project cancelled".into(),
        },
    );
    let outsiders = [
        (sec(1), Action::Withdraw { reason: "x".into() }),
        (
            sec(1),
            Action::Assign {
                stage: "intake".into(),
                duty: Some(Duty::Answer),
                assignee: None,
            },
        ),
        (
            sec(1),
            Action::Decide {
                stage: "intake".into(),
                decision: Decision::Approve,
                comment: None,
                conditions: None,
            },
        ),
        (
            supplier("security"),
            Action::SaveAnswers {
                stage: "privacy".into(),
                answers: answers(&[]),
            },
        ),
        (
            person("ci", &[Role::Integrator]),
            Action::RaiseTier {
                tier: Tier::High,
                reason: "x".into(),
            },
        ),
    ];
    for (caller, action) in outsiders {
        let refusal = run.try_do(&caller, action.clone()).unwrap_err();
        assert!(
            matches!(refusal, Refusal::Forbidden(_)),
            "{action:?} by {caller:?}: {refusal:?}"
        );
    }
}

// ---- properties ----

fn callers() -> Vec<Caller> {
    vec![
        vm1(),
        vm2(),
        sec(1),
        sec(2),
        person("priv", &[Role::PrivacyReviewer]),
        person("rai", &[Role::RaiReviewer]),
        person("boss", &[Role::Approver]),
        person("root", &[Role::Admin]),
        person(
            "multi",
            &[
                Role::SecurityReviewer,
                Role::PrivacyReviewer,
                Role::VendorManager,
            ],
        ),
        supplier("security"),
        supplier("privacy"),
        supplier("rai"),
    ]
}

/// Answers that fill every question of a stage; `variant` picks values.
fn full_answers(workflow: &Workflow, stage: &str, variant: u8) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let Some(stage) = workflow.stage(stage) else {
        return out;
    };
    for question in stage.questionnaire.questions() {
        let pick = variant as usize;
        let value = match question.kind {
            QuestionKind::YesNo => json!(pick.is_multiple_of(2)),
            QuestionKind::SingleChoice => {
                json!(question.options[pick % question.options.len()].value)
            }
            QuestionKind::MultiChoice => {
                json!([question.options[pick % question.options.len()].value])
            }
            QuestionKind::Text => json!("ok"),
            QuestionKind::Number => json!(if pick.is_multiple_of(3) { 400 } else { 10 }),
            QuestionKind::Date => json!("2026-01-01"),
            QuestionKind::Url => json!("https://evidence.example/doc"),
        };
        out.insert(question.id.clone(), value);
    }
    out
}

fn action_for(workflow: &Workflow, kind: u8, stage_index: usize, variant: u8) -> Action {
    let stages = ["intake", "security", "privacy", "rai", "final", "ghost"];
    let stage = StageKey::from(stages[stage_index % stages.len()]);
    // Weighted so that walks get far: approvals are common, send-backs rare.
    match kind % 16 {
        0..=2 => Action::SaveAnswers {
            answers: full_answers(workflow, &stage, variant),
            stage,
        },
        3 | 4 => Action::Submit { stage },
        5..=11 => Action::Decide {
            stage,
            decision: Decision::Approve,
            comment: None,
            conditions: None,
        },
        12 => Action::Decide {
            stage,
            decision: if variant.is_multiple_of(3) {
                Decision::Reject
            } else {
                Decision::RequestChanges
            },
            comment: Some("please fix".into()),
            conditions: None,
        },
        13 => Action::RaiseTier {
            tier: Tier::ALL[(variant % 4) as usize],
            reason: "risk".into(),
        },
        _ => Action::Assign {
            stage,
            duty: Some(Duty::Decide),
            assignee: Some("someone".into()),
        },
    }
}

/// A fresh review of `workflow`, started by vm1.
fn started(workflow: &Workflow) -> Review {
    start(workflow, ReviewKind::Initial, "vm1", t0()).review
}

/// One step of a random walk: an action kind, a stage index, a caller index
/// and a variant (see [`action_for`]).
type Step = (u8, usize, usize, u8);

/// Random walks of `len` steps over the twelve [`callers`].
fn walks(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec((any::<u8>(), any::<usize>(), 0usize..12, any::<u8>()), len)
}

/// The review after `step`, if the engine takes its action.
fn take(workflow: &Workflow, review: &Review, callers: &[Caller], step: Step) -> Option<Review> {
    let (kind, stage, caller, variant) = step;
    let action = action_for(workflow, kind, stage, variant);
    apply(workflow, review, &action, &callers[caller], t0())
        .ok()
        .map(|outcome| outcome.review)
}

fn check_invariants(workflow: &Workflow, review: &Review) {
    for record in &review.stages {
        let definition = workflow.stage(&record.key).unwrap();
        let mut people: Vec<_> = record.approvals.iter().map(|a| a.by.as_str()).collect();
        people.sort_unstable();
        people.dedup();
        assert_eq!(
            people.len(),
            record.approvals.len(),
            "approvers are distinct in {}",
            record.key
        );
        if record.state == StageState::Skipped {
            assert!(
                !definition.applies_to(review.tier),
                "{} skipped though it applies to {}",
                record.key,
                review.tier
            );
        }
        if record.state.is_open() || record.state == StageState::Approved {
            for dep in &definition.after {
                assert!(
                    review.stage(dep).unwrap().state.lets_others_open(),
                    "{} open before {dep}",
                    record.key
                );
            }
        }
    }
    if matches!(
        review.state,
        ReviewState::Approved | ReviewState::ApprovedWithConditions
    ) {
        assert!(review.valid_until.is_some() && review.decided_at.is_some());
        for record in &review.stages {
            let definition = workflow.stage(&record.key).unwrap();
            if !definition.applies_to(review.tier) {
                continue;
            }
            assert_eq!(
                record.state,
                StageState::Approved,
                "{} approved",
                record.key
            );
            assert!(
                record.approvals.len() >= definition.approvals_for(review.tier) as usize,
                "{} has enough approvers",
                record.key
            );
            for approval in &record.approvals {
                assert_ne!(
                    approval.by, review.started_by,
                    "the starter approved {}",
                    record.key
                );
                assert!(
                    !record.answerers.contains(&approval.by),
                    "an answerer approved {}",
                    record.key
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_actions_never_reach_an_invalid_state(steps in walks(1..400)) {
        let workflow = workflow();
        let mut review = started(&workflow);
        let callers = callers();
        for step in steps {
            let before_tier = review.tier;
            let was_decided = review.state.is_decided();
            if let Some(after) = take(&workflow, &review, &callers, step) {
                prop_assert!(!was_decided, "a decided review changed");
                review = after;
            }
            prop_assert!(review.tier >= before_tier, "the tier went down");
            check_invariants(&workflow, &review);
        }
    }
}

/// The random walks above are only worth something if they reach decided
/// reviews: check, with a fixed seed, that they do.
#[test]
fn random_walks_reach_approved_and_rejected_reviews() {
    let workflow = workflow();
    let callers = callers();
    let mut seed: u64 = 0x5eed;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    let (mut low_approved, mut rejected, mut high_approved) = (0, 0, 0);
    for _ in 0..200 {
        let mut review = started(&workflow);
        for _ in 0..1000 {
            let (kind, stage, variant) = (next() as u8, next(), next() as u8);
            let step = (kind, stage, next() % callers.len(), variant);
            if let Some(after) = take(&workflow, &review, &callers, step) {
                review = after;
                check_invariants(&workflow, &review);
            }
        }
        match review.state {
            ReviewState::Approved if review.tier >= Tier::High => high_approved += 1,
            ReviewState::Approved => low_approved += 1,
            ReviewState::Rejected => rejected += 1,
            _ => {}
        }
    }
    assert!(
        low_approved + high_approved >= 5 && high_approved > 0 && rejected > 0,
        "approved: {low_approved} below high, {high_approved} at high or above; rejected {rejected}"
    );
}

/// An action of kind `verb` on `stage` with input that passes every input
/// check that does not depend on the answers.
fn valid_action(verb: Verb, stage: Option<&StageKey>) -> Action {
    let stage = stage.cloned().unwrap_or_else(|| StageKey::from("intake"));
    match verb {
        Verb::SaveAnswers => Action::SaveAnswers {
            stage,
            answers: BTreeMap::new(),
        },
        Verb::Submit => Action::Submit { stage },
        Verb::Decide(decision) => Action::Decide {
            stage,
            decision,
            comment: Some("Reasons.".into()),
            conditions: None,
        },
        Verb::Assign => Action::Assign {
            stage,
            duty: Some(Duty::Decide),
            assignee: Some("someone".into()),
        },
        Verb::RaiseTier => Action::RaiseTier {
            tier: Tier::Critical,
            reason: "risk".into(),
        },
        Verb::Withdraw => Action::Withdraw {
            reason: "no longer needed".into(),
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// The one authority: for reviews reached by random walks and every
    /// caller, each action [`allowed`] admits is taken by [`apply`] (or
    /// refused only for its input), and each it refuses is refused by
    /// [`apply`] with the very same refusal. The console shows exactly what
    /// [`allowed`] admits, and the API answers what [`apply`] does.
    #[test]
    fn what_allowed_answers_is_what_apply_does(steps in walks(0..200)) {
        let workflow = workflow();
        let mut review = started(&workflow);
        let callers = callers();
        for step in steps {
            if let Some(after) = take(&workflow, &review, &callers, step) {
                review = after;
            }
        }
        for caller in &callers {
            let answers = allowed(&workflow, &review, caller);
            prop_assert_eq!(
                answers.answers.len(),
                review.stages.len() * Verb::OF_A_STAGE.len() + Verb::OF_THE_REVIEW.len()
            );
            for (stage, verb, answer) in &answers.answers {
                let action = valid_action(*verb, stage.as_ref());
                let applied = apply(&workflow, &review, &action, caller, t0());
                match (answer, applied) {
                    (Ok(()), Ok(_)) => {}
                    (Ok(()), Err(Refusal::Invalid(_) | Refusal::MissingAnswers(_))) => {}
                    (Ok(()), Err(other)) => prop_assert!(
                        false,
                        "{:?} of {:?} by {} was allowed but refused: {}", verb, stage, caller.id(), other
                    ),
                    (Err(refusal), Ok(_)) => prop_assert!(
                        false,
                        "{:?} of {:?} by {} was refused ({}) but applied", verb, stage, caller.id(), refusal
                    ),
                    (Err(refusal), Err(applied)) => prop_assert_eq!(refusal, &applied),
                }
                prop_assert_eq!(answers.allows(stage.as_deref(), *verb), answer.is_ok());
            }
        }
    }
}

#[test]
fn allowed_names_role_state_and_segregation_of_duties() {
    let workflow = workflow();
    let review = started(&workflow);
    let intake = Some("intake");
    // The starter may answer the intake but not decide it; another vendor
    // manager may not answer a stage still awaiting answers into review.
    let starter = allowed(&workflow, &review, &vm1());
    assert!(starter.allows(intake, Verb::SaveAnswers));
    assert!(matches!(
        starter.refusal(intake, Verb::Decide(Decision::Approve)),
        Some(Refusal::NotAllowed { .. })
    ));
    let answered = apply(
        &workflow,
        &review,
        &Action::SaveAnswers {
            stage: StageKey::from("intake"),
            answers: full_answers(&workflow, "intake", 0),
        },
        &vm1(),
        t0(),
    )
    .unwrap()
    .review;
    let submitted = apply(
        &workflow,
        &answered,
        &Action::Submit {
            stage: StageKey::from("intake"),
        },
        &vm1(),
        t0(),
    )
    .unwrap()
    .review;
    let starter = allowed(&workflow, &submitted, &vm1());
    assert!(matches!(
        starter.refusal(intake, Verb::Decide(Decision::Approve)),
        Some(Refusal::SegregationOfDuties(_))
    ));
    assert!(allowed(&workflow, &submitted, &vm2()).allows(intake, Verb::Decide(Decision::Approve)));
    let reviewer = allowed(&workflow, &submitted, &sec(1));
    assert!(matches!(
        reviewer.refusal(intake, Verb::Decide(Decision::Approve)),
        Some(Refusal::Forbidden(_))
    ));
    assert!(reviewer.allows(None, Verb::RaiseTier));
    assert!(!reviewer.allows(None, Verb::Withdraw));
}
