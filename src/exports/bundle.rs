//! The OPA bundle: a gzipped tar holding `/.manifest` (the revision and the
//! root `clearance`), `/data.json` (every model's clearance under
//! `data.clearance.snapshot`, with the vocabulary) and
//! `/clearance/policy.rego` (the Rego policy, [`POLICY`], whose
//! `data.clearance.decision` is the check's decision for one item). Built
//! byte for byte the same from the same snapshot, so that its entity tag
//! (a digest of the bytes) is the same on every instance and OPA's bundle
//! polling hears 304 while nothing changed.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::conditions::Conditions;
use crate::status::Status;
use crate::status::snapshot::Snapshot;
use crate::vocabulary::Vocabulary;

/// The Rego policy the bundle carries.
pub const POLICY: &str = include_str!("clearance.rego");

/// The one root the bundle owns: its data and its policy's package.
pub const ROOT: &str = "clearance";

/// A built bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The strong entity tag, in quotes as the `ETag` header carries it.
    pub etag: String,
    /// The manifest's revision: the status version, then the digest.
    pub revision: String,
    /// The gzipped tar.
    pub body: Bytes,
}

/// `data.json`: everything under the root `clearance`.
#[derive(Serialize)]
struct Data<'a> {
    clearance: Root<'a>,
}

#[derive(Serialize)]
struct Root<'a> {
    snapshot: Facts<'a>,
}

/// `data.clearance.snapshot`.
#[derive(Serialize)]
struct Facts<'a> {
    /// The status version the bundle was made at.
    version: i64,
    /// The server's time, when it runs a manual clock (time-skipping mode):
    /// the policy then reads expiry against it instead of OPA's clock.
    #[serde(skip_serializing_if = "Option::is_none")]
    now_ns: Option<i64>,
    /// The known regions (a check refuses others).
    regions: Vec<&'a str>,
    /// The catalogue of use cases; `null` while any slug is one.
    use_cases: Option<Vec<&'a str>>,
    /// By provider, then model.
    models: BTreeMap<&'a str, BTreeMap<&'a str, Model<'a>>>,
}

/// One model's clearance as the policy reads it: its status as published
/// (an approval's lapse at `valid_until` is the policy's to see).
#[derive(Serialize)]
struct Model<'a> {
    status: Status,
    conditions: &'a Conditions,
    #[serde(skip_serializing_if = "Option::is_none")]
    valid_until: Option<&'a str>,
    /// `valid_until` in nanoseconds since the epoch, as `time.now_ns()`
    /// counts (clamped to what 64 bits hold).
    #[serde(skip_serializing_if = "Option::is_none")]
    valid_until_ns: Option<i64>,
}

#[derive(Serialize)]
struct Manifest<'a> {
    revision: &'a str,
    roots: [&'a str; 1],
}

/// Nanoseconds since the epoch of RFC 3339 `text`, clamped to `i64`.
fn nanos(text: &str) -> Option<i64> {
    let at = DateTime::parse_from_rfc3339(text).ok()?.to_utc();
    Some(at.timestamp_nanos_opt().unwrap_or(if at.timestamp() > 0 {
        i64::MAX
    } else {
        i64::MIN
    }))
}

/// The bundle of `snapshot`, its codes checked against `vocabulary`;
/// `manual_now` is the server's time when it runs a manual clock.
pub fn build(
    snapshot: &Snapshot,
    vocabulary: &Vocabulary,
    manual_now: Option<DateTime<Utc>>,
) -> std::io::Result<Bundle> {
    let mut models: BTreeMap<&str, BTreeMap<&str, Model<'_>>> = BTreeMap::new();
    // As of the earliest instant: the status as published, never `expired`.
    for (provider, model, decided) in snapshot.each(DateTime::<Utc>::MIN_UTC) {
        let valid_until = decided
            .valid_until
            .and_then(|text| std::str::from_utf8(text).ok());
        models.entry(provider).or_default().insert(
            model,
            Model {
                status: decided.status,
                conditions: decided.conditions,
                valid_until,
                valid_until_ns: valid_until.and_then(nanos),
            },
        );
    }
    let facts = Facts {
        version: snapshot.version,
        now_ns: manual_now.map(|now| now.timestamp_nanos_opt().unwrap_or(i64::MAX)),
        regions: vocabulary.regions(),
        use_cases: vocabulary.use_cases(),
        models,
    };
    let data = serde_json::to_vec(&Data {
        clearance: Root { snapshot: facts },
    })?;
    let digest = Sha256::new()
        .chain_update(&data)
        .chain_update(POLICY)
        .finalize();
    let revision = format!("{}-{}", snapshot.version, hex::encode(&digest[..8]));
    let manifest = serde_json::to_vec(&Manifest {
        revision: &revision,
        roots: [ROOT],
    })?;
    let body = archive(&[
        (".manifest", &manifest),
        ("data.json", &data),
        ("clearance/policy.rego", POLICY.as_bytes()),
    ])?;
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&body)[..16]));
    Ok(Bundle {
        etag,
        revision,
        body: Bytes::from(body),
    })
}

/// A gzipped tar of `files`, with no time, owner or host in it: the same
/// files give the same bytes.
fn archive(files: &[(&str, &[u8])]) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    for (path, content) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, path, *content)?;
    }
    tar.into_inner()?.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::derive::Facts;
    use crate::status::derive::tests::decision;
    use crate::workflow::engine::ReviewState;

    fn snapshot() -> Snapshot {
        let approved = Facts {
            model_decision: Some(decision(ReviewState::Approved, 10, Some(365))),
            ..Facts::default()
        };
        Snapshot::build(3, vec![("acme", "m", approved)], None)
    }

    #[test]
    fn the_same_snapshot_makes_the_same_bytes() {
        let vocabulary = Vocabulary::default();
        let first = build(&snapshot(), &vocabulary, None).unwrap();
        let second = build(&snapshot(), &vocabulary, None).unwrap();
        assert_eq!(first.body, second.body);
        assert_eq!(first.etag, second.etag);
        assert!(first.revision.starts_with("3-"), "{}", first.revision);
        let moved = build(&snapshot(), &vocabulary, Some(Utc::now())).unwrap();
        assert_ne!(
            moved.etag, first.etag,
            "a manual clock's time is in the bundle"
        );
    }

    #[test]
    fn far_dates_clamp_to_what_64_bits_hold() {
        assert_eq!(nanos("1970-01-01T00:00:01Z"), Some(1_000_000_000));
        assert_eq!(nanos("9999-12-31T00:00:00Z"), Some(i64::MAX));
        assert_eq!(nanos("1000-01-01T00:00:00Z"), Some(i64::MIN));
        assert_eq!(nanos("not a date"), None);
    }
}
