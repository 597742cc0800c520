//! `POST /v1/status/check` in one pass over the body: each item is read,
//! decided against the snapshot and its result written out before the next
//! item is read. Checks of many items are the integrators' bulk path; this
//! way a check keeps no list of items or results, and an item's lists reuse
//! the buffers of the item before it.
//!
//! The reader accepts exactly what [`CheckRequest`](super::routes::CheckRequest)
//! accepts, and gives the same results as [`derive::check`]; a body it
//! refuses is explained by parsing it as a `CheckRequest`.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::derive::{self, Reason, Status, Use};
use super::snapshot::Snapshot;
use crate::conditions::DataClass;
use crate::intake::Intake;
use crate::usage::Tally;
use crate::validation::FieldError;
use crate::vocabulary::Vocabulary;

/// The most items one check may hold.
pub const MAX_ITEMS: usize = 1000;

/// What a check with no items or too many is told.
pub const ITEM_COUNT: &str = "must hold 1 to 1000 items";

/// Why a body was not answered.
#[derive(Debug)]
pub enum Refusal {
    /// Not a check request; parse it as one to say why.
    Malformed,
    /// No items, or more than [`MAX_ITEMS`].
    ItemCount,
    /// A region or use case outside the vocabulary, named at its item.
    Unknown(FieldError),
}

/// Who asks, and where their answers are noted.
pub struct Asker<'a> {
    /// Items about models nobody reviewed are noted here.
    pub intake: &'a Intake,
    /// Every item about a catalogued model is tallied here, and counted
    /// once the check is answered.
    pub usage: Tally<'a>,
    /// The token's `sub`.
    pub sub: &'a str,
}

/// The JSON answer to the check request `body`, decided as of `now`, its
/// regions and use cases checked against `vocabulary`; the answers are
/// noted for the `asker` (its usage and intake).
pub fn answer(
    body: &[u8],
    snapshot: &Snapshot,
    vocabulary: &Vocabulary,
    now: DateTime<Utc>,
    asker: Option<Asker<'_>>,
) -> Result<Vec<u8>, Refusal> {
    // Checked once here, so that the parser does not check each string.
    let text = simdutf8::basic::from_utf8(body).map_err(|_| Refusal::Malformed)?;
    let mut out = Vec::with_capacity(64 + body.len() * 3 / 2);
    out.extend_from_slice(br#"{"results":["#);
    let mut checker = Checker {
        snapshot,
        vocabulary,
        now,
        asker,
        out,
        items: 0,
        lists: Lists::default(),
        unknown: None,
    };
    let mut parser = serde_json::Deserializer::from_str(text);
    let read = Request(&mut checker)
        .deserialize(&mut parser)
        .and_then(|()| parser.end());
    let Checker {
        items,
        unknown,
        asker,
        mut out,
        ..
    } = checker;
    // The answers count once the check is answered (and the shard is let go).
    if let Some(asker) = asker
        && unknown.is_none()
        && read.is_ok()
        && items > 0
    {
        asker.usage.commit();
    }
    if let Some(unknown) = unknown {
        return Err(Refusal::Unknown(unknown));
    }
    match read {
        Ok(()) if items == 0 => Err(Refusal::ItemCount),
        Ok(()) => {
            out.extend_from_slice(b"]}");
            Ok(out)
        }
        Err(_) if items > MAX_ITEMS => Err(Refusal::ItemCount),
        Err(_) => Err(Refusal::Malformed),
    }
}

/// The state of one check: where results go, and the lists of the item
/// being read.
struct Checker<'s, 'de> {
    snapshot: &'s Snapshot,
    vocabulary: &'s Vocabulary,
    now: DateTime<Utc>,
    asker: Option<Asker<'s>>,
    out: Vec<u8>,
    items: usize,
    lists: Lists<'de>,
    /// The first value outside the vocabulary, which ends the check.
    unknown: Option<FieldError>,
}

#[derive(Default)]
struct Lists<'de> {
    data_classes: Vec<DataClass>,
    regions: Vec<Text<'de>>,
    features: Vec<Text<'de>>,
}

impl<'de> Checker<'_, 'de> {
    /// Decides one item and writes its result.
    fn decide(&mut self, item: Item<'de>) -> serde_json::Result<()> {
        if let Some(unknown) = self.unknown_value(&item) {
            self.unknown = Some(unknown);
            return Err(de::Error::custom("a value outside the vocabulary"));
        }
        let (provider, model) = (item.provider.as_ref(), item.model.as_ref());
        let lists = &self.lists;
        let context = Use {
            use_case: item.use_case.as_ref().map(AsRef::as_ref),
            data_classes: item.data_classes.then_some(&lists.data_classes[..]),
            regions: item.regions.then_some(&lists.regions[..]),
            features: item.features.then_some(&lists.features[..]),
        };
        let decided = self.snapshot.for_check(provider, model, self.now);
        let use_case = context.use_case;
        let reasons = derive::reasons(decided.status, decided.conditions, context);
        if let Some(asker) = &mut self.asker {
            if let Some(key) = decided.model {
                asker.usage.answered(key, use_case, reasons.is_empty());
            }
            if decided.status == Status::NotReviewed {
                asker
                    .intake
                    .asked(provider, model, asker.sub, use_case, self.now);
            }
        }
        if self.items > 1 {
            self.out.push(b',');
        }
        write_result(
            &mut self.out,
            &item,
            decided.status,
            &reasons,
            decided.valid_until,
        )
    }
}

impl Checker<'_, '_> {
    /// The first region or use case of `item` the vocabulary does not know.
    fn unknown_value(&self, item: &Item<'_>) -> Option<FieldError> {
        let at = self.items - 1;
        if let Some(use_case) = &item.use_case
            && !self.vocabulary.knows_use_case(use_case.as_ref())
        {
            return Some(FieldError::new(
                format!("items[{at}].use_case"),
                self.vocabulary.unknown_use_case(use_case.as_ref()),
            ));
        }
        let region = self
            .lists
            .regions
            .iter()
            .find(|r| !self.vocabulary.knows_region(r.as_ref()))?;
        Some(FieldError::new(
            format!("items[{at}].regions"),
            self.vocabulary.unknown_region(region.as_ref()),
        ))
    }
}

/// Writes one result as [`CheckResponse`](super::routes::CheckResponse)
/// serializes it (the tests hold the two equal), in a few large pieces:
/// serde would escape every key of every result, which cost a fifth of a
/// check. What the caller sent and the reasons are serde's to write.
fn write_result(
    out: &mut Vec<u8>,
    item: &Item<'_>,
    status: Status,
    reasons: &[Reason<'_>],
    valid_until: Option<&[u8]>,
) -> serde_json::Result<()> {
    out.extend_from_slice(br#"{"provider":"#);
    write_text(out, &item.provider)?;
    out.extend_from_slice(br#","model":"#);
    write_text(out, &item.model)?;
    out.extend_from_slice(if reasons.is_empty() {
        br#","allow":true,"status":""#
    } else {
        br#","allow":false,"status":""#
    });
    out.extend_from_slice(status.as_str().as_bytes());
    out.extend_from_slice(br#"","reasons":["#);
    for (i, reason) in reasons.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, reason)?;
    }
    out.extend_from_slice(br#"],"valid_until":"#);
    match valid_until {
        // RFC 3339 text, which needs no escapes.
        Some(text) => {
            out.push(b'"');
            out.extend_from_slice(text);
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    Ok(())
}

/// Writes text the caller sent: as it came when it held no escapes (JSON
/// text without them holds no quote, backslash or control character, the
/// only characters serde escapes), else escaped by serde.
fn write_text(out: &mut Vec<u8>, text: &Text<'_>) -> serde_json::Result<()> {
    match &text.0 {
        Cow::Borrowed(raw) => {
            out.push(b'"');
            out.extend_from_slice(raw.as_bytes());
            out.push(b'"');
            Ok(())
        }
        Cow::Owned(decoded) => serde_json::to_writer(out, decoded),
    }
}

/// An item's text; its lists are in [`Lists`], and say here only whether
/// they were given.
struct Item<'de> {
    provider: Text<'de>,
    model: Text<'de>,
    use_case: Option<Text<'de>>,
    data_classes: bool,
    regions: bool,
    features: bool,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum RequestField {
    Items,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum ItemField {
    Provider,
    Model,
    UseCase,
    DataClasses,
    Regions,
    Features,
}

const ITEM_FIELDS: &[&str] = &[
    "provider",
    "model",
    "use_case",
    "data_classes",
    "regions",
    "features",
];

/// Reads `{"items": [...]}`, deciding each item as it is read.
struct Request<'c, 's, 'de>(&'c mut Checker<'s, 'de>);

impl<'de> DeserializeSeed<'de> for Request<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_struct("CheckRequest", &["items"], self)
    }
}

impl<'de> Visitor<'de> for Request<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a check request")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = false;
        while let Some(RequestField::Items) = map.next_key()? {
            if seen {
                return Err(de::Error::duplicate_field("items"));
            }
            seen = true;
            map.next_value_seed(Items(&mut *self.0))?;
        }
        if !seen {
            return Err(de::Error::missing_field("items"));
        }
        Ok(())
    }
}

/// Reads the list of items.
struct Items<'c, 's, 'de>(&'c mut Checker<'s, 'de>);

impl<'de> DeserializeSeed<'de> for Items<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Items<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(ItemSeed(&mut *self.0))?.is_some() {}
        Ok(())
    }
}

/// Reads one item and decides it.
struct ItemSeed<'c, 's, 'de>(&'c mut Checker<'s, 'de>);

impl<'de> DeserializeSeed<'de> for ItemSeed<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_struct("CheckContext", ITEM_FIELDS, self)
    }
}

impl<'de> Visitor<'de> for ItemSeed<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an item")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let checker = self.0;
        checker.items += 1;
        if checker.items > MAX_ITEMS {
            return Err(de::Error::invalid_length(checker.items, &ITEM_COUNT));
        }
        let lists = &mut checker.lists;
        lists.data_classes.clear();
        lists.regions.clear();
        lists.features.clear();
        let (mut provider, mut model, mut use_case) = (None, None, None);
        let (mut data_classes, mut regions, mut features) = (None, None, None);
        while let Some(field) = map.next_key()? {
            match field {
                ItemField::Provider => once(&mut provider, "provider", || map.next_value())?,
                ItemField::Model => once(&mut model, "model", || map.next_value())?,
                ItemField::UseCase => once(&mut use_case, "use_case", || map.next_value())?,
                ItemField::DataClasses => once(&mut data_classes, "data_classes", || {
                    map.next_value_seed(List(&mut lists.data_classes))
                })?,
                ItemField::Regions => once(&mut regions, "regions", || {
                    map.next_value_seed(List(&mut lists.regions))
                })?,
                ItemField::Features => once(&mut features, "features", || {
                    map.next_value_seed(List(&mut lists.features))
                })?,
            }
        }
        let item = Item {
            provider: provider.ok_or_else(|| de::Error::missing_field("provider"))?,
            model: model.ok_or_else(|| de::Error::missing_field("model"))?,
            use_case: use_case.flatten(),
            data_classes: data_classes.unwrap_or(false),
            regions: regions.unwrap_or(false),
            features: features.unwrap_or(false),
        };
        checker.decide(item).map_err(de::Error::custom)
    }
}

/// Sets a field read once, refusing it a second time as serde's derive does.
fn once<T, E: de::Error>(
    slot: &mut Option<T>,
    name: &'static str,
    read: impl FnOnce() -> Result<T, E>,
) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(name));
    }
    *slot = Some(read()?);
    Ok(())
}

/// Reads an optional list into a reused buffer; the value says whether it
/// was given (`null` is not).
struct List<'v, T>(&'v mut Vec<T>);

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for List<'_, T> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for List<'_, T> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while let Some(value) = seq.next_element()? {
            self.0.push(value);
        }
        Ok(true)
    }
}

/// A JSON string, borrowed unless it holds escapes (serde borrows a bare
/// `Cow` field, but never one inside an `Option` or a `Vec`).
struct Text<'a>(Cow<'a, str>);

impl AsRef<str> for Text<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use proptest::prelude::*;
    use serde_json::{Value, json};
    use validator::Validate;

    use super::*;
    use crate::conditions::Conditions;
    use crate::status::derive::tests::{decision, now};
    use crate::status::derive::{Decision, Facts};
    use crate::status::routes::{CheckRequest, CheckResponse};
    use crate::workflow::engine::ReviewState;

    const LONG: &str = "a-model-slug-as-long-as-a-slug-may-be-sixty-three-characters-xy";

    /// A model decided ten days ago, valid for `valid_days`.
    fn decided(state: ReviewState, valid_days: i64, conditions: Option<Conditions>) -> Facts {
        Facts {
            model_decision: Some(Decision {
                conditions,
                ..decision(state, 10, Some(valid_days))
            }),
            ..Facts::default()
        }
    }

    /// A model of every status, one with every kind of condition.
    fn snapshot() -> Snapshot {
        let conditions: Conditions = serde_json::from_value(json!({
            "use_cases": ["support-chat"],
            "data_classes": ["public", "internal"],
            "regions": ["eu", "x\"y"],
            "features_off": ["web_grounding"],
        }))
        .unwrap();
        let facts = [
            ("open", decided(ReviewState::Approved, 365, None)),
            (
                "limited",
                decided(ReviewState::ApprovedWithConditions, 365, Some(conditions)),
            ),
            ("refused", decided(ReviewState::Rejected, 365, None)),
            ("lapsed", decided(ReviewState::Approved, 5, None)),
            (
                "halted",
                Facts {
                    suspended: Some("incident".into()),
                    ..decided(ReviewState::Approved, 365, None)
                },
            ),
            (
                "pending",
                Facts {
                    review_in_progress: Some("r".into()),
                    ..Facts::default()
                },
            ),
            // Too long to be held in the entry itself, and valid until a
            // fraction of a second.
            (LONG, {
                let mut facts = decided(ReviewState::Approved, 365, None);
                if let Some(d) = facts.model_decision.as_mut() {
                    d.valid_until = d.valid_until.map(|v| v + TimeDelta::microseconds(123_456));
                }
                facts
            }),
        ];
        let facts = facts
            .into_iter()
            .map(|(model, facts)| ("acme".to_owned(), model.to_owned(), facts))
            .collect();
        Snapshot::build(7, facts, None)
    }

    /// The regions the generated items name, whatever their case.
    fn known() -> Vocabulary {
        Vocabulary::new(["eu".to_owned(), "us".to_owned(), "x\"y".to_owned()], None)
    }

    /// The answer of the plain path: parse, validate, derive each result.
    fn plainly(body: &[u8], snapshot: &Snapshot) -> Option<Vec<u8>> {
        let request: CheckRequest = serde_json::from_slice(body).ok()?;
        request.validate().ok()?;
        let results = request
            .items
            .iter()
            .map(|item| {
                let clearance = snapshot.clearance(&item.provider, &item.model, now());
                derive::check(&clearance, item)
            })
            .collect();
        serde_json::to_vec(&CheckResponse { results }).ok()
    }

    /// Mostly text a condition speaks of, now and then a value of the wrong kind.
    fn text(pool: &'static [&'static str]) -> impl Strategy<Value = Value> {
        prop_oneof![
            30 => proptest::sample::select(pool).prop_map(Value::from),
            1 => Just(json!(7)),
        ]
    }

    fn list(pool: &'static [&'static str]) -> impl Strategy<Value = Value> {
        prop_oneof![
            12 => proptest::collection::vec(text(pool), 0..4).prop_map(Value::Array),
            2 => Just(Value::Null),
            1 => text(pool),
        ]
    }

    /// Items as integrators send them, and some they should not.
    fn item() -> impl Strategy<Value = Value> {
        const PROVIDERS: &[&str] = &["acme", "other", "ac\"me"];
        const MODELS: &[&str] = &[
            "open", "limited", "refused", "lapsed", "halted", "pending", "unknown", LONG,
        ];
        const USE_CASES: &[&str] = &["support-chat", "coding"];
        const CLASSES: &[&str] = &["public", "internal", "personal"];
        const REGIONS: &[&str] = &["eu", "EU", "us", "x\"y"];
        const FEATURES: &[&str] = &["web_grounding", "voice"];
        (
            proptest::option::weighted(0.97, text(PROVIDERS)),
            proptest::option::weighted(0.97, text(MODELS)),
            0u8..16,
            (
                text(USE_CASES),
                list(CLASSES),
                list(REGIONS),
                list(FEATURES),
            ),
            proptest::bool::weighted(0.02),
        )
            .prop_map(
                |(provider, model, present, (use_case, classes, regions, features), extra)| {
                    let mut item = serde_json::Map::new();
                    let fields = [
                        ("provider", provider),
                        ("model", model),
                        ("use_case", (present & 1 != 0).then_some(use_case)),
                        ("data_classes", (present & 2 != 0).then_some(classes)),
                        ("regions", (present & 4 != 0).then_some(regions)),
                        ("features", (present & 8 != 0).then_some(features)),
                        ("extra", extra.then_some(Value::Null)),
                    ];
                    for (name, value) in fields {
                        if let Some(value) = value {
                            item.insert(name.into(), value);
                        }
                    }
                    Value::Object(item)
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        #[test]
        fn the_single_pass_answers_as_the_plain_path_does(
            items in proptest::collection::vec(item(), 1..4)
        ) {
            let snapshot = snapshot();
            let body = serde_json::to_vec(&json!({ "items": items })).unwrap();
            let single = answer(&body, &snapshot, &known(), now(), None).ok().map(String::from_utf8);
            let plain = plainly(&body, &snapshot).map(String::from_utf8);
            prop_assert_eq!(single, plain);
        }
    }

    #[test]
    fn a_refusal_says_whether_the_count_or_the_body_is_at_fault() {
        let snapshot = snapshot();
        let refusal = |body: &str| answer(body.as_bytes(), &snapshot, &known(), now(), None).err();
        let item = r#"{"provider":"acme","model":"open"}"#;
        let many = |n: usize| format!(r#"{{"items":[{}]}}"#, vec![item; n].join(","));
        assert!(refusal(&many(MAX_ITEMS)).is_none());
        assert!(matches!(
            refusal(&many(MAX_ITEMS + 1)),
            Some(Refusal::ItemCount)
        ));
        assert!(matches!(
            refusal(r#"{"items":[]}"#),
            Some(Refusal::ItemCount)
        ));
        for malformed in [
            "",
            "{}",
            r#"{"items":[],"items":[]}"#,
            r#"{"items":[{"provider":"acme","provider":"acme","model":"m"}]}"#,
            r#"{"items":[{"provider":"acme","model":"m"}]} trailing"#,
            r#"{"items":[{"provider":"acme","model":"m"}],"more":1}"#,
            r#"{"items":[{"provider":"acme","model":"m","data_classes":["secret"]}]}"#,
        ] {
            assert!(
                matches!(refusal(malformed), Some(Refusal::Malformed)),
                "{malformed}"
            );
        }
        assert!(matches!(
            answer(b"{\"items\":[\xff]}", &snapshot, &known(), now(), None),
            Err(Refusal::Malformed)
        ));
    }

    #[test]
    fn escaped_text_is_read_and_echoed() {
        let body = r#"{"items":[{"provider":"ac\u006de","model":"open","regions":["\u0065u"]}]}"#;
        let answered: Value = serde_json::from_slice(
            &answer(body.as_bytes(), &snapshot(), &known(), now(), None).unwrap(),
        )
        .unwrap();
        assert_eq!(answered["results"][0]["provider"], "acme");
        assert_eq!(answered["results"][0]["allow"], true);
        assert_eq!(answered["results"][0]["status"], "approved");
    }
}
