//! Signed attestations of a model's clearance, verifiable offline against the
//! published JWKS. Ed25519 keys are generated once into a folder and kept;
//! `clearance keys rotate` adds a new signing key while the old ones stay
//! published, so attestations they signed keep verifying until they expire.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::derive::{Clearance, Status};
use crate::conditions::Conditions;
use crate::workflow::Tier;

/// How long an attestation of a status other than an approval is valid.
pub const SHORT_LIFETIME: TimeDelta = TimeDelta::hours(1);

/// How long an attestation of an approval is valid unless configured
/// (`CLEARANCE_ATTESTATION_LIFETIME`): hours, not the approval's months, so
/// that a saved one stops saying "allow" soon after a suspension.
pub const DEFAULT_LIFETIME: TimeDelta = TimeDelta::hours(12);

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("attestation keys in {path}: {message}")]
    Io { path: String, message: String },
    #[error("attestation key {path} is not an Ed25519 PKCS#8 PEM key: {message}")]
    Format { path: String, message: String },
    #[error("signing failed: {0}")]
    Sign(String),
}

/// The claims of an attestation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttestationClaims {
    pub iss: String,
    /// `provider/model`.
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    pub status: Status,
    pub tier: Option<Tier>,
    pub conditions: Conditions,
    pub review_id: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    pub version: i64,
}

struct Key {
    kid: String,
    public: [u8; 32],
    pem: String,
}

/// The signing key (the newest) and every published public key.
pub struct AttestationKeys {
    issuer: String,
    keys: Vec<Key>,
    signer: EncodingKey,
    lifetime: TimeDelta,
}

impl std::fmt::Debug for AttestationKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttestationKeys")
            .field("issuer", &self.issuer)
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

fn io_error(path: &Path, error: impl std::fmt::Display) -> KeyError {
    KeyError::Io {
        path: path.display().to_string(),
        message: error.to_string(),
    }
}

fn kid_of(public: &[u8; 32]) -> String {
    hex::encode(&Sha256::digest(public)[..8])
}

/// Writes a new key into `dir`; returns its key id. Newer keys sort later.
pub fn generate(dir: &Path) -> Result<String, KeyError> {
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let signing = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let pem = signing
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| KeyError::Sign(e.to_string()))?;
    let kid = kid_of(&signing.verifying_key().to_bytes());
    let name = format!("{}-{kid}.pem", Utc::now().format("%Y%m%dT%H%M%S%6f"));
    let path = dir.join(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path).map_err(|e| io_error(&path, e))?;
    std::io::Write::write_all(&mut file, pem.as_bytes()).map_err(|e| io_error(&path, e))?;
    Ok(kid)
}

fn key_files(dir: &Path) -> Result<Vec<PathBuf>, KeyError> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "pem"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_error(dir, e)),
    };
    files.sort();
    Ok(files)
}

impl AttestationKeys {
    /// Loads every key in `dir`, generating the first one when there is none.
    pub fn load_or_create(dir: &Path, issuer: &str) -> Result<Self, KeyError> {
        if key_files(dir)?.is_empty() {
            generate(dir)?;
        }
        let mut keys = Vec::new();
        for path in key_files(dir)? {
            let pem = std::fs::read_to_string(&path).map_err(|e| io_error(&path, e))?;
            let signing = SigningKey::from_pkcs8_pem(&pem).map_err(|e| KeyError::Format {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            let public = signing.verifying_key().to_bytes();
            keys.push(Key {
                kid: kid_of(&public),
                public,
                pem,
            });
        }
        let newest = keys.last().ok_or_else(|| io_error(dir, "no key"))?;
        let signer = EncodingKey::from_ed_pem(newest.pem.as_bytes())
            .map_err(|e| KeyError::Sign(e.to_string()))?;
        Ok(Self {
            issuer: issuer.to_owned(),
            keys,
            signer,
            lifetime: DEFAULT_LIFETIME,
        })
    }

    /// Attestations of approvals last `lifetime` (never past `valid_until`).
    pub fn with_lifetime(mut self, lifetime: TimeDelta) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// The JWKS document: every key, newest last.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = self
            .keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(k.public),
                    "kid": k.kid,
                    "alg": "EdDSA",
                    "use": "sig",
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// Signs a clearance: an approval is attested for the configured
    /// lifetime (never past its `valid_until`, which stays a claim), any
    /// other status for [`SHORT_LIFETIME`] at most.
    pub fn sign(&self, clearance: &Clearance, now: DateTime<Utc>) -> Result<String, KeyError> {
        let exp = match (clearance.status.is_approval(), clearance.valid_until) {
            (true, Some(until)) => until.min(now + self.lifetime),
            (true, None) => now + self.lifetime,
            _ => now + SHORT_LIFETIME.min(self.lifetime),
        };
        let claims = AttestationClaims {
            iss: self.issuer.clone(),
            sub: format!("{}/{}", clearance.provider, clearance.model),
            iat: now.timestamp(),
            exp: exp.timestamp(),
            status: clearance.status,
            tier: clearance.tier,
            conditions: clearance.conditions.clone(),
            review_id: clearance.review_id.clone(),
            decided_at: clearance.decided_at,
            valid_until: clearance.valid_until,
            version: clearance.version,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = self.keys.last().map(|k| k.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.signer)
            .map_err(|e| KeyError::Sign(e.to_string()))
    }
}

/// Verifies an attestation against a JWKS document, as an integrator does
/// offline: signature by a published key, expiry, and the subject.
pub fn verify(token: &str, jwks: &str, now: DateTime<Utc>) -> Result<AttestationClaims, String> {
    let set: jsonwebtoken::jwk::JwkSet =
        serde_json::from_str(jwks).map_err(|e| format!("not a JWKS document: {e}"))?;
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| format!("not an attestation: {e}"))?;
    if header.alg != Algorithm::EdDSA && header.alg != Algorithm::ES256 {
        return Err(format!("unexpected algorithm {:?}", header.alg));
    }
    let jwk = match &header.kid {
        Some(kid) => set
            .find(kid)
            .ok_or_else(|| format!("no key `{kid}` in the JWKS"))?,
        None => set.keys.first().ok_or("the JWKS has no keys")?,
    };
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| format!("unusable key: {e}"))?;
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "sub", "iss"]);
    let data = jsonwebtoken::decode::<AttestationClaims>(token, &key, &validation)
        .map_err(|e| format!("invalid attestation: {e}"))?;
    if data.claims.exp <= now.timestamp() {
        return Err("the attestation has expired".into());
    }
    Ok(data.claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clearance(status: Status, valid_until: Option<DateTime<Utc>>) -> Clearance {
        Clearance {
            provider: "anthropic".into(),
            model: "claude".into(),
            status,
            tier: Some(Tier::Medium),
            conditions: Conditions::default(),
            valid_until,
            review_id: Some("r1".into()),
            decided_at: Some(Utc::now()),
            suspended_reason: None,
            version: 3,
        }
    }

    #[test]
    fn an_attestation_verifies_offline_and_not_once_tampered_with() {
        let dir = tempfile::tempdir().unwrap();
        let keys =
            AttestationKeys::load_or_create(dir.path(), "https://clearance.example").unwrap();
        let now = Utc::now();
        let token = keys
            .sign(
                &clearance(Status::Approved, Some(now + TimeDelta::days(30))),
                now,
            )
            .unwrap();
        let jwks = keys.jwks().to_string();
        let claims = verify(&token, &jwks, now).unwrap();
        assert_eq!(claims.sub, "anthropic/claude");
        assert_eq!(claims.status, Status::Approved);
        assert_eq!(claims.exp, (now + DEFAULT_LIFETIME).timestamp());
        assert_eq!(claims.valid_until, Some(now + TimeDelta::days(30)));
        // A day later the approval still runs, but the saved attestation is spent.
        assert!(verify(&token, &jwks, now + TimeDelta::days(1)).is_err());

        let mut parts: Vec<&str> = token.split('.').collect();
        let forged_payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&AttestationClaims {
                status: Status::Approved,
                sub: "anthropic/other".into(),
                ..claims.clone()
            })
            .unwrap(),
        );
        parts[1] = &forged_payload;
        assert!(verify(&parts.join("."), &jwks, now).is_err());
        assert_eq!(
            verify(&token, &jwks, now + TimeDelta::days(31)).unwrap_err(),
            "the attestation has expired"
        );
    }

    #[test]
    fn keys_are_kept_and_rotation_keeps_old_keys_published() {
        let dir = tempfile::tempdir().unwrap();
        let first = AttestationKeys::load_or_create(dir.path(), "iss").unwrap();
        let now = Utc::now();
        let old_token = first.sign(&clearance(Status::Rejected, None), now).unwrap();
        let again = AttestationKeys::load_or_create(dir.path(), "iss").unwrap();
        assert_eq!(again.jwks(), first.jwks(), "generated once and kept");
        std::thread::sleep(std::time::Duration::from_millis(2));
        generate(dir.path()).unwrap();
        let rotated = AttestationKeys::load_or_create(dir.path(), "iss").unwrap();
        assert_eq!(rotated.jwks()["keys"].as_array().unwrap().len(), 2);
        let jwks = rotated.jwks().to_string();
        assert!(
            verify(&old_token, &jwks, now).is_ok(),
            "old attestations still verify"
        );
        let new_token = rotated
            .sign(&clearance(Status::Rejected, None), now)
            .unwrap();
        assert_ne!(
            jsonwebtoken::decode_header(&new_token).unwrap().kid,
            jsonwebtoken::decode_header(&old_token).unwrap().kid
        );
    }
}
