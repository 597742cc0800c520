//! Authentication and roles: bearer JWTs verified with `jsonwebtoken` (an
//! HS256 secret for development and bootstrap tokens, and the identity
//! provider's RS256/ES256/EdDSA keys from a PEM file or a JWKS document).

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::JwtConfig;

pub mod roles;
mod secret;
pub use secret::load_or_create_secret;

crate::names::stored_enum! {
    /// What a person or system may do. Unknown role names in a token are ignored.
    #[derive(PartialOrd, Ord, Hash)]
    pub enum Role {
        VendorManager,
        SecurityReviewer,
        PrivacyReviewer,
        RaiReviewer,
        Approver,
        Admin,
        Integrator,
    }
}

impl Role {
    /// The role of `name`, or an error naming the known roles (a person reads it).
    pub fn named(name: &str) -> Result<Role, String> {
        Role::parse(name).ok_or_else(|| {
            let known: Vec<_> = Role::ALL.iter().map(|r| r.as_str()).collect();
            format!("unknown role `{name}` (known: {})", known.join(", "))
        })
    }
}

/// The claims Clearance reads and issues.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// One audience, or several (RFC 7519 allows both; jsonwebtoken checks
    /// it against the configured one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// `respond` for a supplier respondent's invitation token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The review and stage an invitation token is scoped to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// The invitation's id, for revocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// The `aud` claim: a string or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl From<&str> for Audience {
    fn from(one: &str) -> Self {
        Audience::One(one.to_owned())
    }
}

/// The longest a token may live: one whose `exp` lies further ahead is
/// refused, as is `clearance token issue --ttl` beyond it.
pub const MAX_TOKEN_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::days(366);

/// Purpose claim of invitation tokens.
pub const RESPOND_PURPOSE: &str = "respond";

/// What a supplier respondent's token admits: one stage of one review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RespondentScope {
    pub invitation: String,
    pub review: String,
    pub stage: String,
}

impl RespondentScope {
    /// How a supplier acting through this invitation is named, in the audit
    /// log and to the review engine: `respondent:<invitation>`, the one
    /// spelling the API and the console share.
    pub fn actor_id(&self) -> String {
        format!("respondent:{}", self.invitation)
    }
}

/// Who is calling, once their token has been verified: a cheap handle on
/// the identity its token carries, shared with the cache of verified tokens.
#[derive(Debug, Clone)]
pub struct Principal(Arc<Identity>);

/// What a verified token says about its holder.
#[derive(Debug)]
pub struct Identity {
    pub sub: String,
    pub email: Option<String>,
    pub roles: BTreeSet<Role>,
    /// Set for supplier respondents, who hold no roles.
    pub respondent: Option<RespondentScope>,
    /// When this holder's request was last noted (Unix seconds), so that
    /// whoever records callers need not look up a token sent on every
    /// request each time.
    noted_at: AtomicI64,
}

impl std::ops::Deref for Principal {
    type Target = Identity;

    fn deref(&self) -> &Identity {
        &self.0
    }
}

impl Principal {
    pub fn new(
        sub: String,
        email: Option<String>,
        roles: BTreeSet<Role>,
        respondent: Option<RespondentScope>,
    ) -> Self {
        Principal(Arc::new(Identity {
            sub,
            email,
            roles,
            respondent,
            noted_at: AtomicI64::new(i64::MIN),
        }))
    }

    /// Whether this holder was noted at or after `since`; if not, records
    /// `now` as the time it is noted.
    pub fn noted_since(&self, since: i64, now: i64) -> bool {
        let noted = self.noted_at.load(Ordering::Relaxed);
        if noted >= since && noted <= now {
            return true;
        }
        self.noted_at.store(now, Ordering::Relaxed);
        false
    }

    /// Admits the caller when they hold any of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), MissingRole> {
        if roles.iter().any(|r| self.roles.contains(r)) {
            return Ok(());
        }
        Err(MissingRole(roles.to_vec()))
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether the caller holds a role of [`roles::STAFF`] (not only `integrator`).
    pub fn is_staff(&self) -> bool {
        self.require(roles::STAFF).is_ok()
    }
}

/// Why a token was refused. Shown to the client: it names no key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing bearer token: send `Authorization: Bearer <token>`")]
    Missing,
    #[error("the Authorization header is not a bearer token")]
    NotBearer,
    #[error("the token has expired")]
    Expired,
    #[error("the token is invalid: {0}")]
    Invalid(String),
}

/// The caller holds none of the roles an action needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this action needs one of the roles: {}", .0.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "))]
pub struct MissingRole(pub Vec<Role>);

#[derive(Clone)]
struct PublicKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// Verifies bearer tokens. Built once at start-up from configuration.
///
/// Verified tokens are remembered (by their full text, until their `exp`):
/// integrators send the same token on every lookup, and checking its
/// signature and claims each time would cost more than the lookup itself.
#[derive(Clone)]
pub struct Authenticator {
    secret: DecodingKey,
    public_keys: Vec<PublicKey>,
    issuer: Option<String>,
    audience: Option<String>,
    verified: Arc<quick_cache::sync::Cache<String, (Principal, i64)>>,
}

/// How many verified tokens are remembered.
const VERIFIED_TOKENS: usize = 10_000;

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("public_keys", &self.public_keys.len())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

impl Authenticator {
    /// `secret` is the HS256 secret; public keys come from the configuration.
    pub fn new(secret: &str, config: &JwtConfig) -> Result<Self, KeyError> {
        let mut public_keys = Vec::new();
        if let Some(path) = &config.public_key {
            public_keys.push(read_pem_public_key(path)?);
        }
        if let Some(path) = &config.jwks {
            public_keys.extend(read_jwks(path)?);
        }
        Ok(Self {
            secret: DecodingKey::from_secret(secret.as_bytes())
                .map_err(|e| KeyError(format!("CLEARANCE_JWT_SECRET: {e}")))?,
            public_keys,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            verified: Arc::new(quick_cache::sync::Cache::new(VERIFIED_TOKENS)),
        })
    }

    /// Verifies a token, or recalls that it was verified and has not expired.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let now = i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap_or(i64::MAX);
        if let Some((principal, exp)) = self.verified.get(token)
            && exp > now
        {
            return Ok(principal);
        }
        let (principal, exp) = self.verify_uncached(token)?;
        if token.len() <= 4096 {
            self.verified
                .insert(token.to_owned(), (principal.clone(), exp));
        }
        Ok(principal)
    }

    /// Verifies signature, expiry, and issuer and audience when configured.
    fn verify_uncached(&self, token: &str) -> Result<(Principal, i64), AuthError> {
        if token.split('.').count() != 3 {
            return Err(AuthError::Invalid(NOT_A_JWT.into()));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::Invalid(unreadable_header(token)))?;
        let key = match header.alg {
            Algorithm::HS256 => &self.secret,
            alg => self
                .public_keys
                .iter()
                .filter(|k| k.algorithm == alg)
                .find(|k| header.kid.is_none() || k.kid.is_none() || k.kid == header.kid)
                .map(|k| &k.key)
                .ok_or_else(|| {
                    AuthError::Invalid(format!("no configured key verifies {alg:?} tokens"))
                })?,
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = 30;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if self.issuer.is_some() {
            required.push("iss");
        }
        if self.audience.is_some() {
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        match &self.issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &self.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => {
                    AuthError::Invalid("the token is not valid yet (`nbf`)".into())
                }
                ErrorKind::InvalidSignature => AuthError::Invalid("bad signature".into()),
                ErrorKind::InvalidIssuer => AuthError::Invalid("wrong issuer".into()),
                ErrorKind::InvalidAudience => AuthError::Invalid("wrong audience".into()),
                // A claim of the wrong type reads as missing to the library.
                ErrorKind::MissingRequiredClaim(c) => AuthError::Invalid(
                    misshapen_claim(token).unwrap_or_else(|| format!("missing claim `{c}`")),
                ),
                ErrorKind::InvalidClaimFormat(c) => {
                    AuthError::Invalid(format!("the claim `{c}` has the wrong type"))
                }
                ErrorKind::InvalidToken => AuthError::Invalid(NOT_A_JWT.into()),
                ErrorKind::Base64(_) => {
                    AuthError::Invalid("a part of the token is not base64url".into())
                }
                ErrorKind::Json(_) | ErrorKind::Utf8(_) => AuthError::Invalid(
                    misshapen_claim(token)
                        .unwrap_or_else(|| "its claims are not what a token carries".into()),
                ),
                // The rest are the library's or the key's business: logged,
                // and not shown to whoever sent the token.
                _ => {
                    tracing::debug!(error = %e, "a token could not be verified");
                    AuthError::Invalid("the signature cannot be verified".into())
                }
            }
        })?;
        let claims = data.claims;
        let latest = chrono::Utc::now() + MAX_TOKEN_LIFETIME;
        if claims.exp > latest.timestamp() {
            return Err(AuthError::Invalid(format!(
                "the token's lifetime is longer than {} days",
                MAX_TOKEN_LIFETIME.num_days()
            )));
        }
        if claims.sub.trim().is_empty() {
            return Err(AuthError::Invalid("empty `sub` claim".into()));
        }
        if claims.purpose.as_deref() == Some(RESPOND_PURPOSE) {
            // Only this service issues invitation tokens, with its own secret.
            let scope = match (header.alg, claims.jti, claims.review, claims.stage) {
                (Algorithm::HS256, Some(invitation), Some(review), Some(stage)) => {
                    RespondentScope {
                        invitation,
                        review,
                        stage,
                    }
                }
                _ => {
                    return Err(AuthError::Invalid(
                        "not an invitation this service issued".into(),
                    ));
                }
            };
            return Ok((
                Principal::new(claims.sub, claims.email, BTreeSet::new(), Some(scope)),
                claims.exp,
            ));
        }
        if claims.purpose.is_some() {
            return Err(AuthError::Invalid("unknown token purpose".into()));
        }
        let roles = claims.roles.iter().filter_map(|r| r.parse().ok()).collect();
        Ok((
            Principal::new(claims.sub, claims.email, roles, None),
            claims.exp,
        ))
    }
}

const NOT_A_JWT: &str = "not a JWT: one has three parts separated by dots";

/// Which of a token's claims is not what Clearance reads, in words for
/// whoever sent it (the parser's message echoes the input).
fn misshapen_claim(token: &str) -> Option<String> {
    use base64::Engine as _;
    use serde_json::Value;
    let segment = token.split('.').nth(1).unwrap_or_default();
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
    let Some(Value::Object(claims)) = claims else {
        return Some("its claims are not a JSON object".into());
    };
    fn strings(v: &Value) -> bool {
        v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
    }
    type Fits = fn(&Value) -> bool;
    let expected: [(&str, Fits); 10] = [
        ("sub", Value::is_string),
        ("exp", Value::is_u64),
        ("nbf", Value::is_u64),
        ("iat", Value::is_u64),
        ("roles", strings),
        ("aud", |v| v.is_string() || strings(v)),
        ("iss", Value::is_string),
        ("email", Value::is_string),
        ("purpose", Value::is_string),
        ("jti", Value::is_string),
    ];
    let wrong = expected
        .into_iter()
        .find(|(name, fits)| claims.get(*name).is_some_and(|v| !v.is_null() && !fits(v)));
    if let Some((name, _)) = wrong {
        return Some(format!("the claim `{name}` has the wrong type"));
    }
    ["sub", "exp"]
        .into_iter()
        .find(|name| claims.get(*name).is_none_or(Value::is_null))
        .map(|name| format!("missing claim `{name}`"))
}

/// Why a token's header cannot be read, in words for whoever sent it (the
/// parser's own message names its internals, and echoes the input).
fn unreadable_header(token: &str) -> String {
    use base64::Engine as _;
    let segment = token.split('.').next().unwrap_or_default();
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(segment) else {
        return "its header is not base64url".into();
    };
    let Ok(serde_json::Value::Object(header)) = serde_json::from_slice(&bytes) else {
        return "its header is not a JSON object".into();
    };
    match header.get("alg").and_then(serde_json::Value::as_str) {
        None => "its header names no algorithm (`alg`)".into(),
        Some(alg) if Algorithm::from_str(alg).is_ok() => {
            "its header's fields have the wrong types".into()
        }
        Some(alg) if alg.len() <= 16 && alg.chars().all(|c| c.is_ascii_alphanumeric()) => {
            format!("the algorithm `{alg}` is not accepted")
        }
        Some(_) => "its algorithm is not accepted".into(),
    }
}

type PemParser = fn(&[u8]) -> jsonwebtoken::errors::Result<DecodingKey>;

fn read_pem_public_key(path: &Path) -> Result<PublicKey, KeyError> {
    let pem = std::fs::read(path).map_err(|e| {
        KeyError(format!(
            "CLEARANCE_JWT_PUBLIC_KEY: cannot read {}: {e}",
            path.display()
        ))
    })?;
    let candidates: [(Algorithm, PemParser); 3] = [
        (Algorithm::RS256, DecodingKey::from_rsa_pem),
        (Algorithm::ES256, DecodingKey::from_ec_pem),
        (Algorithm::EdDSA, DecodingKey::from_ed_pem),
    ];
    candidates
        .into_iter()
        .find_map(|(algorithm, parse)| {
            parse(&pem).ok().map(|key| PublicKey {
                kid: None,
                algorithm,
                key,
            })
        })
        .ok_or_else(|| {
            KeyError(format!(
                "CLEARANCE_JWT_PUBLIC_KEY: {} is not a PEM RSA, P-256 or Ed25519 public key",
                path.display()
            ))
        })
}

fn read_jwks(path: &Path) -> Result<Vec<PublicKey>, KeyError> {
    let fail = |m: String| KeyError(format!("CLEARANCE_JWT_JWKS: {}: {m}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read ({e})")))?;
    let set: JwkSet =
        serde_json::from_str(&text).map_err(|e| fail(format!("not a JWKS document ({e})")))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        let key = DecodingKey::from_jwk(jwk).map_err(|e| fail(format!("unusable key ({e})")))?;
        let algorithm = match (&jwk.common.key_algorithm, &jwk.algorithm) {
            (Some(alg), _) => Algorithm::from_str(&alg.to_string())
                .map_err(|e| fail(format!("unsupported algorithm ({e})")))?,
            (None, jsonwebtoken::jwk::AlgorithmParameters::RSA(_)) => Algorithm::RS256,
            (None, jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_)) => Algorithm::ES256,
            (None, jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_)) => Algorithm::EdDSA,
            (None, _) => return Err(fail("a key without `alg` of unknown type".into())),
        };
        keys.push(PublicKey {
            kid: jwk.common.key_id.clone(),
            algorithm,
            key,
        });
    }
    if keys.is_empty() {
        return Err(fail("holds no keys".into()));
    }
    Ok(keys)
}

/// Issues HS256 tokens with the service's secret: development and bootstrap
/// tokens, and supplier invitations.
pub struct TokenIssuer {
    key: EncodingKey,
    issuer: Option<String>,
    audience: Option<String>,
}

impl TokenIssuer {
    pub fn new(secret: &str, config: &JwtConfig) -> Result<Self, KeyError> {
        Ok(Self {
            key: EncodingKey::from_secret(secret.as_bytes())
                .map_err(|e| KeyError(format!("CLEARANCE_JWT_SECRET: {e}")))?,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
        })
    }

    pub fn issue(
        &self,
        sub: &str,
        email: Option<&str>,
        roles: &[Role],
        now: chrono::DateTime<chrono::Utc>,
        ttl: chrono::TimeDelta,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = Claims {
            sub: sub.to_owned(),
            email: email.map(str::to_owned),
            roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
            exp: (now + ttl).timestamp(),
            iat: Some(now.timestamp()),
            iss: self.issuer.clone(),
            aud: self.audience.clone().map(Audience::One),
            purpose: None,
            review: None,
            stage: None,
            jti: None,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)
    }

    /// An invitation token: admits one stage's questionnaire until `expires_at`.
    pub fn issue_respondent(
        &self,
        scope: &RespondentScope,
        email: &str,
        now: chrono::DateTime<chrono::Utc>,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = Claims {
            sub: format!("respondent:{}/{}", scope.review, scope.stage),
            email: Some(email.to_owned()),
            roles: Vec::new(),
            exp: expires_at.timestamp(),
            iat: Some(now.timestamp()),
            iss: self.issuer.clone(),
            aud: self.audience.clone().map(Audience::One),
            purpose: Some(RESPOND_PURPOSE.to_owned()),
            review: Some(scope.review.clone()),
            stage: Some(scope.stage.clone()),
            jti: Some(scope.invitation.clone()),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)
    }
}

impl Authenticator {
    /// The caller an `Authorization` header's value names.
    pub fn caller(&self, authorization: Option<&[u8]>) -> Result<Principal, AuthError> {
        let value = authorization.ok_or(AuthError::Missing)?;
        // Bytes first: checking a long header for visible ASCII cost more than
        // finding its token among those already verified. The scheme's name
        // is case-insensitive (RFC 7235).
        let token = value
            .split_at_checked(7)
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case(b"bearer "))
            .and_then(|(_, t)| std::str::from_utf8(t).ok())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::NotBearer)?;
        self.verify(token)
    }
}

#[cfg(test)]
mod tests;
