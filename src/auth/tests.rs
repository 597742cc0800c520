use super::roles::EVERYONE;
use super::*;
use base64::Engine as _;
use chrono::{TimeDelta, Utc};
use jsonwebtoken::{EncodingKey, Header, encode};

const SECRET: &str = "a-development-secret-of-some-length";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn claims(exp_in: TimeDelta) -> Claims {
    Claims {
        sub: "alice".into(),
        email: Some("alice@example.com".into()),
        roles: vec!["vendor_manager".into(), "astronaut".into()],
        exp: (Utc::now() + exp_in).timestamp(),
        iat: None,
        iss: None,
        aud: None,
        purpose: None,
        review: None,
        stage: None,
        jti: None,
    }
}

fn hs256(claims: &Claims, secret: &str) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn authenticator(config: &JwtConfig) -> Authenticator {
    Authenticator::new(SECRET, config).unwrap()
}

/// An Ed25519 key pair as (PKCS#8 private DER, raw public key).
fn ed25519_pair() -> (Vec<u8>, [u8; 32]) {
    let seed: [u8; 32] = rand::random();
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    let mut der = hex_bytes("302e020100300506032b657004220420");
    der.extend_from_slice(&seed);
    (der, signing.verifying_key().to_bytes())
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn eddsa(claims: &Claims, der: &[u8], kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, &EncodingKey::from_ed_der(der)).unwrap()
}

#[test]
fn a_valid_token_gives_its_known_roles() {
    let principal = authenticator(&JwtConfig::default())
        .verify(&hs256(&claims(TimeDelta::hours(1)), SECRET))
        .unwrap();
    assert_eq!(principal.sub, "alice");
    assert_eq!(
        principal.roles.iter().copied().collect::<Vec<_>>(),
        vec![Role::VendorManager]
    );
}

#[test]
fn an_expired_token_is_refused() {
    let token = hs256(&claims(TimeDelta::hours(-1)), SECRET);
    assert_eq!(
        authenticator(&JwtConfig::default()).verify(&token).err(),
        Some(AuthError::Expired)
    );
}

#[test]
fn a_token_signed_with_another_secret_is_refused() {
    let token = hs256(
        &claims(TimeDelta::hours(1)),
        "another-secret-of-some-length",
    );
    let err = authenticator(&JwtConfig::default())
        .verify(&token)
        .unwrap_err();
    assert_eq!(err, AuthError::Invalid("bad signature".into()));
}

#[test]
fn an_unsigned_alg_none_token_is_refused() {
    let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let body = b64(serde_json::to_string(&claims(TimeDelta::hours(1)))
        .unwrap()
        .as_bytes());
    for token in [format!("{header}.{body}."), format!("{header}.{body}")] {
        assert!(matches!(
            authenticator(&JwtConfig::default()).verify(&token),
            Err(AuthError::Invalid(_))
        ));
    }
}

#[test]
fn a_tampered_payload_is_refused() {
    let token = hs256(&claims(TimeDelta::hours(1)), SECRET);
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut forged = claims(TimeDelta::hours(1));
    forged.roles = vec!["admin".into()];
    parts[1] = b64(serde_json::to_string(&forged).unwrap().as_bytes());
    assert!(
        authenticator(&JwtConfig::default())
            .verify(&parts.join("."))
            .is_err()
    );
}

#[test]
fn audience_and_issuer_are_checked_when_configured() {
    let config = JwtConfig {
        audience: Some("clearance".into()),
        issuer: Some("https://idp.example".into()),
        ..Default::default()
    };
    let auth = authenticator(&config);
    let mut good = claims(TimeDelta::hours(1));
    good.aud = Some("clearance".into());
    good.iss = Some("https://idp.example".into());
    assert!(auth.verify(&hs256(&good, SECRET)).is_ok());

    let mut wrong_aud = good.clone();
    wrong_aud.aud = Some("someone-else".into());
    assert_eq!(
        auth.verify(&hs256(&wrong_aud, SECRET)).err(),
        Some(AuthError::Invalid("wrong audience".into()))
    );

    let mut wrong_iss = good.clone();
    wrong_iss.iss = Some("https://evil.example".into());
    assert_eq!(
        auth.verify(&hs256(&wrong_iss, SECRET)).err(),
        Some(AuthError::Invalid("wrong issuer".into()))
    );

    let mut no_aud = good;
    no_aud.aud = None;
    assert!(auth.verify(&hs256(&no_aud, SECRET)).is_err());
}

#[test]
fn eddsa_tokens_verify_against_a_jwks_document() {
    let (der, public) = ed25519_pair();
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    let doc = serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": b64(&public), "kid": "k1", "alg": "EdDSA", "use": "sig"}]});
    std::fs::write(&jwks, doc.to_string()).unwrap();
    let auth = authenticator(&JwtConfig {
        jwks: Some(jwks),
        ..Default::default()
    });

    assert_eq!(
        auth.verify(&eddsa(&claims(TimeDelta::hours(1)), &der, Some("k1")))
            .unwrap()
            .sub,
        "alice"
    );
    let (other_der, _) = ed25519_pair();
    assert!(
        auth.verify(&eddsa(&claims(TimeDelta::hours(1)), &other_der, Some("k1")))
            .is_err()
    );
    assert!(
        auth.verify(&eddsa(
            &claims(TimeDelta::hours(1)),
            &der,
            Some("unknown-kid")
        ))
        .is_err()
    );
}

#[test]
fn eddsa_tokens_verify_against_a_pem_public_key() {
    let (der, public) = ed25519_pair();
    let mut spki = hex_bytes("302a300506032b6570032100");
    spki.extend_from_slice(&public);
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(spki)
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idp.pem");
    std::fs::write(&path, pem).unwrap();
    let auth = authenticator(&JwtConfig {
        public_key: Some(path),
        ..Default::default()
    });
    assert!(
        auth.verify(&eddsa(&claims(TimeDelta::hours(1)), &der, None))
            .is_ok()
    );
    // The HS256 secret keeps working beside the identity provider's key.
    assert!(
        auth.verify(&hs256(&claims(TimeDelta::hours(1)), SECRET))
            .is_ok()
    );
}

#[test]
fn a_file_that_is_not_a_key_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idp.pem");
    std::fs::write(&path, "not a key").unwrap();
    let err = Authenticator::new(
        SECRET,
        &JwtConfig {
            public_key: Some(path),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        err.to_string().starts_with("CLEARANCE_JWT_PUBLIC_KEY"),
        "{err}"
    );
}

#[test]
fn issued_tokens_verify() {
    let issuer = TokenIssuer::new(SECRET, &JwtConfig::default()).unwrap();
    let token = issuer
        .issue(
            "bob",
            None,
            &[Role::Admin, Role::Integrator],
            Utc::now(),
            TimeDelta::hours(8),
        )
        .unwrap();
    let principal = authenticator(&JwtConfig::default()).verify(&token).unwrap();
    assert!(principal.has(Role::Admin) && principal.has(Role::Integrator));
    assert!(principal.require(&[Role::VendorManager]).is_err());
}

#[test]
fn invitation_tokens_carry_their_scope_and_no_roles() {
    let issuer = TokenIssuer::new(SECRET, &JwtConfig::default()).unwrap();
    let scope = RespondentScope {
        invitation: "inv1".into(),
        review: "r1".into(),
        stage: "security".into(),
    };
    let now = Utc::now();
    let token = issuer
        .issue_respondent(
            &scope,
            "sec@supplier.example",
            now,
            now + TimeDelta::days(14),
        )
        .unwrap();
    let principal = authenticator(&JwtConfig::default()).verify(&token).unwrap();
    assert_eq!(principal.respondent, Some(scope));
    assert!(principal.roles.is_empty());
    assert!(principal.require(EVERYONE).is_err());
}

#[test]
fn a_forged_purpose_is_refused() {
    let mut forged = claims(TimeDelta::hours(1));
    forged.purpose = Some("respond".into());
    assert!(
        authenticator(&JwtConfig::default())
            .verify(&hs256(&forged, SECRET))
            .is_err(),
        "no scope"
    );
    forged.purpose = Some("superuser".into());
    assert!(
        authenticator(&JwtConfig::default())
            .verify(&hs256(&forged, SECRET))
            .is_err()
    );
}
