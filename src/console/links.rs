//! One-time development sign-in links (`clearance signin-link`): a token
//! signed with the service's HS256 secret, for the purpose `sign-in`, that
//! lives fifteen minutes and opens one session (its id is spent on use). The
//! API refuses it as a bearer token; the console refuses it whenever an
//! identity provider is configured.

use std::collections::BTreeSet;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::session::SignedIn;
use crate::auth::Role;

/// The purpose such a token names.
pub const PURPOSE: &str = "sign-in";

/// How long a link works.
pub const LIFETIME: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

#[derive(Debug, Serialize, Deserialize)]
struct LinkClaims {
    sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    exp: i64,
    purpose: String,
    jti: String,
}

/// Issues and checks the links.
pub struct Links {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links").finish_non_exhaustive()
    }
}

impl Links {
    pub fn new(secret: &str) -> Result<Self, String> {
        Ok(Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()).map_err(|e| e.to_string())?,
            decoding: DecodingKey::from_secret(secret.as_bytes()).map_err(|e| e.to_string())?,
        })
    }

    /// A link's token for `who`, valid for [`LIFETIME`] from now.
    pub fn issue(&self, who: &SignedIn) -> Result<String, String> {
        let claims = LinkClaims {
            sub: who.sub.clone(),
            email: who.email.clone(),
            name: who.name.clone(),
            roles: who.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            exp: (chrono::Utc::now() + LIFETIME).timestamp(),
            purpose: PURPOSE.into(),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| e.to_string())
    }

    /// Who a link signs in, and the id to spend; refused when expired,
    /// forged, or a token for anything else.
    pub fn verify(&self, token: &str) -> Result<(SignedIn, String), String> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<LinkClaims>(token, &self.decoding, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "it has expired".to_owned(),
                _ => "it is not a link this service issued".to_owned(),
            })?
            .claims;
        if claims.purpose != PURPOSE {
            return Err("it is not a sign-in link".into());
        }
        let roles: BTreeSet<Role> = claims.roles.iter().filter_map(|r| Role::parse(r)).collect();
        Ok((
            SignedIn {
                sub: claims.sub,
                email: claims.email,
                name: claims.name,
                roles,
            },
            claims.jti,
        ))
    }
}
