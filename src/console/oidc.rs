//! Signing in with the organisation's OpenID Connect provider: the
//! authorization-code flow with PKCE (`openidconnect`), its metadata found by
//! discovery (on first use, and again after a failure). Roles come from a
//! claim of the ID token (by default `roles`, holding Clearance role names),
//! else of the userinfo response; a role map turns group names into roles
//! for identity providers that send groups instead.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreProviderMetadata,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, UserInfoClaims,
};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use super::session::{SignInRow, SignedIn};
use crate::auth::Role;
use crate::config::OidcConfig;

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why a sign-in failed, in words for the person signing in (the cause is
/// logged).
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("the identity provider cannot be reached: {0}")]
    Provider(String),
    #[error("this sign-in has expired or was already used; start again")]
    UnknownState,
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    #[error("the identity provider's answer does not check out: {0}")]
    Invalid(String),
}

/// Every claim, as the userinfo response has them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct AllClaims {
    #[serde(flatten)]
    claims: HashMap<String, serde_json::Value>,
}

impl AdditionalClaims for AllClaims {}

/// The configured identity provider.
pub struct Oidc {
    config: OidcConfig,
    redirect: RedirectUrl,
    http: openidconnect::reqwest::Client,
    client: RwLock<Option<Client>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.config.issuer)
            .finish_non_exhaustive()
    }
}

impl Oidc {
    /// `public_url` is where people reach this service: the provider sends
    /// them back to `<public_url>/signin/callback`.
    pub fn new(config: OidcConfig, public_url: &str) -> Result<Self, String> {
        let redirect = RedirectUrl::new(format!(
            "{}/signin/callback",
            public_url.trim_end_matches('/')
        ))
        .map_err(|e| format!("CLEARANCE_PUBLIC_URL: {e}"))?;
        let http = openidconnect::reqwest::ClientBuilder::new()
            // Following redirects would let the provider send us anywhere.
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            config,
            redirect,
            http,
            client: RwLock::new(None),
        })
    }

    /// The provider's host, to name it on the sign-in page.
    pub fn provider_name(&self) -> String {
        url::Url::parse(&self.config.issuer)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| self.config.issuer.clone())
    }

    async fn client(&self) -> Result<Client, SignInError> {
        if let Some(client) = self.client.read().await.as_ref() {
            return Ok(client.clone());
        }
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| SignInError::Provider(e.to_string()))?;
        crate::telemetry::egress_url("oidc", issuer.url(), 443);
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "OpenID Connect discovery failed");
                SignInError::Provider(e.to_string())
            })?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            self.config.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(self.redirect.clone());
        *self.client.write().await = Some(client.clone());
        Ok(client)
    }

    /// Starts a sign-in: the provider's authorization URL to send the
    /// person to, and what to keep until they come back.
    pub async fn start(
        &self,
        return_to: String,
        now: DateTime<Utc>,
    ) -> Result<(url::Url, SignInRow), SignInError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge)
            .url();
        let row = SignInRow {
            state: state.secret().clone(),
            verifier: verifier.secret().clone(),
            nonce: nonce.secret().clone(),
            return_to,
            created_at: now.naive_utc(),
        };
        Ok((url, row))
    }

    /// Finishes a sign-in the provider sent back: exchanges the code (with
    /// the PKCE verifier), verifies the ID token (signature, issuer,
    /// audience, expiry, nonce) and reads who signed in.
    pub async fn finish(&self, code: String, started: &SignInRow) -> Result<SignedIn, SignInError> {
        let client = self.client().await?;
        if let Some(endpoint) = client.token_uri() {
            crate::telemetry::egress_url("oidc", endpoint.url(), 443);
        }
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| SignInError::Provider(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(started.verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| {
                tracing::warn!(error = ?e, "OpenID Connect code exchange failed");
                SignInError::Refused(e.to_string())
            })?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| SignInError::Invalid("no ID token".into()))?;
        let claims = id_token
            .claims(
                &client.id_token_verifier(),
                &Nonce::new(started.nonce.clone()),
            )
            .map_err(|e| SignInError::Invalid(e.to_string()))?;
        let sub = claims.subject().to_string();
        let mut email = claims.email().map(|e| e.to_string());
        let mut name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string());
        // The token's signature is verified: its payload is what it says.
        let mut raw = payload(&id_token.to_string()).unwrap_or_default();
        if !raw.contains_key(&self.config.roles_claim)
            && let Ok(request) = client.user_info(tokens.access_token().clone(), None)
        {
            if let Some(endpoint) = client.user_info_url() {
                crate::telemetry::egress_url("oidc", endpoint.url(), 443);
            }
            let info: Result<UserInfoClaims<AllClaims, CoreGenderClaim>, _> =
                request.request_async(&self.http).await;
            match info {
                Ok(info) if info.subject().as_str() == sub => {
                    email = email.or_else(|| info.email().map(|e| e.to_string()));
                    name = name
                        .or_else(|| info.name().and_then(|n| n.get(None)).map(|n| n.to_string()));
                    raw.extend(info.additional_claims().claims.clone());
                }
                Ok(_) => tracing::warn!("userinfo names another subject; ignored"),
                Err(error) => tracing::warn!(%error, "userinfo request failed"),
            }
        }
        let roles = roles_of(raw.get(&self.config.roles_claim), &self.config.role_map);
        Ok(SignedIn {
            sub,
            email,
            name,
            roles,
        })
    }
}

/// The JSON payload of a compact JWT (already verified by the caller).
fn payload(token: &str) -> Option<HashMap<String, serde_json::Value>> {
    use base64::Engine as _;
    let part = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The Clearance roles a claim names: a list of names (or one name), each
/// a role's own name or, with a role map, a group mapped to roles. Names of
/// neither kind are ignored.
pub fn roles_of(
    claim: Option<&serde_json::Value>,
    map: &BTreeMap<String, Vec<Role>>,
) -> BTreeSet<Role> {
    let names: Vec<&str> = match claim {
        Some(serde_json::Value::Array(items)) => items.iter().filter_map(|v| v.as_str()).collect(),
        Some(serde_json::Value::String(name)) => name.split([' ', ',']).collect(),
        _ => Vec::new(),
    };
    let mut roles = BTreeSet::new();
    for name in names.into_iter().map(str::trim).filter(|n| !n.is_empty()) {
        if let Some(mapped) = map.get(name) {
            roles.extend(mapped.iter().copied());
        } else if let Some(role) = Role::parse(name) {
            roles.insert(role);
        }
    }
    roles
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn roles_come_from_role_names_or_mapped_groups() {
        let none = BTreeMap::new();
        let claim = json!(["vendor_manager", "nonsense", "admin"]);
        assert_eq!(
            roles_of(Some(&claim), &none),
            BTreeSet::from([Role::VendorManager, Role::Admin])
        );
        assert_eq!(
            roles_of(Some(&json!("approver")), &none),
            BTreeSet::from([Role::Approver])
        );
        assert!(roles_of(None, &none).is_empty());
        let map = BTreeMap::from([(
            "grc-team".to_owned(),
            vec![Role::VendorManager, Role::Approver],
        )]);
        let groups = json!(["grc-team", "everyone"]);
        assert_eq!(
            roles_of(Some(&groups), &map),
            BTreeSet::from([Role::VendorManager, Role::Approver])
        );
    }
}
