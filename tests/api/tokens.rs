//! The JWT attack set: forged, altered and odd bearer tokens, each refused
//! with a 401 problem that names what is wrong with the token and nothing of
//! the server's insides, and never a 5xx. One table against a server that
//! knows only its HS256 secret, one against a server that also trusts an
//! identity provider's Ed25519 key with an issuer and an audience. (Missing,
//! garbage, foreign-secret and expired tokens are in `auth.rs`; `nbf` in the
//! future and `exp` = i64::MAX in `hardening.rs`.)

use base64::Engine as _;
use chrono::Utc;
use ed25519_dalek::Signer as _;
use ed25519_dalek::pkcs8::{EncodePublicKey, spki::der::pem::LineEnding};
use hmac::{KeyInit, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

use crate::helpers::{SECRET, TestApp, assert_problem};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// How a made-up token is signed.
enum Key<'a> {
    /// No signature: `header.payload.`
    Unsigned,
    /// HMAC-SHA256 with these bytes as the secret.
    Hmac(&'a [u8]),
    Ed25519(&'a ed25519_dalek::SigningKey),
    /// These bytes, whatever the header says.
    Raw(&'a [u8]),
}

/// A compact JWT of `header` and `payload` (its exact bytes), signed with `key`.
fn jwt(header: &Value, payload: &[u8], key: Key) -> String {
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(payload));
    let signature = match key {
        Key::Unsigned => Vec::new(),
        Key::Hmac(secret) => {
            let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret).unwrap();
            mac.update(input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        Key::Ed25519(signing) => signing.sign(input.as_bytes()).to_bytes().to_vec(),
        Key::Raw(bytes) => bytes.to_vec(),
    };
    format!("{input}.{}", b64(&signature))
}

fn hs256(claims: &Value, secret: &[u8]) -> String {
    jwt(
        &json!({"alg": "HS256", "typ": "JWT"}),
        claims.to_string().as_bytes(),
        Key::Hmac(secret),
    )
}

/// `token` with its payload replaced by `claims`, header and signature kept.
fn tampered(token: &str, claims: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    format!(
        "{}.{}.{}",
        parts[0],
        b64(claims.to_string().as_bytes()),
        parts[2]
    )
}

/// `base` with the fields of `changes` set (`null` removes one).
fn with(base: &Value, changes: Value) -> Value {
    let mut claims = base.clone();
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

fn ed25519_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&rand::random())
}

/// Words of the server's insides a refusal must not show: parser and
/// library messages, key material.
const INSIDES: &[&str] = &[
    "serde",
    "line 1",
    "column",
    "Error(",
    "ErrorKind",
    "jsonwebtoken",
    "Base64",
    "Utf8",
    "invalid type",
    "expected",
    "BEGIN",
    "panicked",
    SECRET,
];

/// Sends `authorization` to an endpoint every role may read; asserts a 401
/// problem whose detail contains `names` and shows none of [`INSIDES`].
async fn assert_refused(app: &TestApp, case: &str, authorization: HeaderValue, names: &str) {
    let response = app
        .client
        .get(app.url("/v1/providers"))
        .header("authorization", authorization)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{case}: the connection dropped: {e}"));
    assert_eq!(response.status(), 401, "{case}");
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .map(|v| v.as_bytes()),
        Some(&b"Bearer"[..]),
        "{case}"
    );
    let problem = assert_problem(response, 401).await;
    assert_eq!(
        problem["type"], "/problems/unauthorized",
        "{case}: {problem}"
    );
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains(names),
        "{case}: {detail:?} does not say {names:?}"
    );
    for inside in INSIDES {
        assert!(
            !detail.contains(inside),
            "{case}: {detail:?} shows {inside:?}"
        );
    }
}

fn bearer(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {token}")).unwrap()
}

backend_tests! {
    async fn forged_and_odd_tokens_are_401_naming_the_problem(app) {
        let now = Utc::now().timestamp();
        let claims = json!({"sub": "ci", "roles": ["integrator"], "iat": now, "exp": now + 600});
        let genuine = hs256(&claims, SECRET.as_bytes());
        for scheme in ["Bearer", "bearer", "BEARER"] {
            let response = app.client.get(app.url("/v1/providers")).header("authorization", format!("{scheme} {genuine}")).send().await.unwrap();
            assert_eq!(response.status(), 200, "the genuine token works after `{scheme}`");
        }
        let admin = with(&claims, json!({"roles": ["admin"]}));
        let attacker = ed25519_key();
        let attacker_jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(attacker.verifying_key().as_bytes())});
        let sign = |header: Value, payload: &[u8], key: Key| bearer(&jwt(&header, payload, key));
        let admin_bytes = admin.to_string().into_bytes();
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &admin,
            &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
        )
        .unwrap();
        let padded = with(&admin, json!({"padding": "x".repeat(10 * 1024)}));

        let cases: Vec<(&str, HeaderValue, &str)> = vec![
            // No signature, or one the algorithm does not name.
            ("alg none, no signature", sign(json!({"alg": "none", "typ": "JWT"}), &admin_bytes, Key::Unsigned), "algorithm `none`"),
            ("alg none, signed with the secret", sign(json!({"alg": "none"}), &admin_bytes, Key::Hmac(SECRET.as_bytes())), "algorithm `none`"),
            ("alg NONE", sign(json!({"alg": "NONE"}), &admin_bytes, Key::Unsigned), "algorithm `NONE`"),
            ("alg HS256, no signature", sign(json!({"alg": "HS256"}), &admin_bytes, Key::Unsigned), "signature"),
            ("no alg", sign(json!({"typ": "JWT"}), &admin_bytes, Key::Hmac(SECRET.as_bytes())), "no algorithm"),
            // Guessed and empty secrets.
            ("the empty secret", bearer(&hs256(&admin, b"")), "signature"),
            ("the secret `secret`", bearer(&hs256(&admin, b"secret")), "signature"),
            ("the secret `changeme`", bearer(&hs256(&admin, b"changeme")), "signature"),
            ("the secret `clearance`", bearer(&hs256(&admin, b"clearance")), "signature"),
            // Another algorithm than the server's: with its own secret, or a
            // public key the server never configured.
            ("HS512 with the server's secret", bearer(&hs512), "HS512"),
            ("RS256, no RSA key configured", sign(json!({"alg": "RS256"}), &admin_bytes, Key::Raw(&[7; 256])), "RS256"),
            ("ES256, no EC key configured", sign(json!({"alg": "ES256"}), &admin_bytes, Key::Raw(&[7; 64])), "ES256"),
            ("EdDSA, no Ed25519 key configured", sign(json!({"alg": "EdDSA"}), &admin_bytes, Key::Ed25519(&attacker)), "EdDSA"),
            ("EdDSA with the signer's key in the header", sign(json!({"alg": "EdDSA", "jwk": attacker_jwk}), &admin_bytes, Key::Ed25519(&attacker)), "EdDSA"),
            // A genuine token altered, its signature kept.
            ("roles raised to admin", bearer(&tampered(&genuine, &admin)), "signature"),
            ("sub changed", bearer(&tampered(&genuine, &with(&claims, json!({"sub": "ada"})))), "signature"),
            ("exp extended", bearer(&tampered(&genuine, &with(&claims, json!({"exp": now + 86_400})))), "signature"),
            ("header changed", bearer(&format!("{}.{}", b64(br#"{"alg":"HS256","kid":"other"}"#), genuine.split_once('.').unwrap().1)), "signature"),
            // Lifetimes: signed with the server's secret, but absurd.
            ("exp long past", bearer(&hs256(&with(&admin, json!({"exp": 1})), SECRET.as_bytes())), "expired"),
            ("exp negative", bearer(&hs256(&with(&admin, json!({"exp": -1})), SECRET.as_bytes())), "`exp` has the wrong type"),
            ("exp not a number", bearer(&hs256(&with(&admin, json!({"exp": "tomorrow"})), SECRET.as_bytes())), "`exp` has the wrong type"),
            ("exp a year and two days ahead", bearer(&hs256(&with(&admin, json!({"exp": now + 367 * 86_400})), SECRET.as_bytes())), "lifetime"),
            ("no exp", bearer(&hs256(&with(&admin, json!({"exp": null})), SECRET.as_bytes())), "missing claim `exp`"),
            // Claims that are not what a token says.
            ("no sub", bearer(&hs256(&with(&admin, json!({"sub": null})), SECRET.as_bytes())), "missing claim `sub`"),
            ("blank sub", bearer(&hs256(&with(&admin, json!({"sub": " "})), SECRET.as_bytes())), "empty `sub`"),
            ("sub a number", bearer(&hs256(&with(&admin, json!({"sub": 42})), SECRET.as_bytes())), "`sub` has the wrong type"),
            ("roles a string", bearer(&hs256(&with(&admin, json!({"roles": "admin"})), SECRET.as_bytes())), "`roles` has the wrong type"),
            ("an unknown purpose", bearer(&hs256(&with(&admin, json!({"purpose": "superuser"})), SECRET.as_bytes())), "purpose"),
            ("claims a list", bearer(&jwt(&json!({"alg": "HS256"}), b"[1,2]", Key::Hmac(SECRET.as_bytes()))), "not a JSON object"),
            ("claims not JSON", bearer(&jwt(&json!({"alg": "HS256"}), b"hello", Key::Hmac(SECRET.as_bytes()))), "not a JSON object"),
            // Not a JWT.
            ("two segments", bearer(genuine.rsplit_once('.').unwrap().0), "three parts"),
            ("four segments", bearer(&format!("{genuine}.e30")), "three parts"),
            ("header not base64", bearer(&format!("!!!.{}", genuine.split_once('.').unwrap().1)), "base64url"),
            ("header not JSON", bearer(&format!("{}.{}", b64(b"hello"), genuine.split_once('.').unwrap().1)), "JSON object"),
            ("a 10 KB forged token", bearer(&hs256(&padded, b"a-guess")), "signature"),
            // Not a bearer token.
            ("`Bearer` and nothing", HeaderValue::from_static("Bearer"), "bearer"),
            ("`Bearer ` and blanks", HeaderValue::from_static("Bearer    "), "bearer"),
            ("the token without a scheme", HeaderValue::from_str(&genuine).unwrap(), "bearer"),
            ("the `Token` scheme", HeaderValue::from_str(&format!("Token {genuine}")).unwrap(), "bearer"),
            ("the `Basic` scheme", HeaderValue::from_static("Basic YWRhOmFkYQ=="), "bearer"),
            ("bytes that are not UTF-8", HeaderValue::from_bytes(b"Bearer \xff\xfe.\xfd").unwrap(), "bearer"),
        ];
        for (case, authorization, names) in &cases {
            assert_refused(&app, case, authorization.clone(), names).await;
        }
        println!("JWT attack set, HS256 server: {} tokens refused", cases.len());
    }

    async fn an_identity_providers_tokens_are_held_to_its_key_issuer_and_audience(app) {
        let idp = ed25519_key();
        let folder = tempfile::tempdir().unwrap();
        let pem = idp.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
        let der = idp.verifying_key().to_public_key_der().unwrap();
        let path = folder.path().join("idp.pem");
        std::fs::write(&path, &pem).unwrap();
        let app = app
            .spawn_beside(|raw| {
                raw.jwt_public_key = Some(path.to_string_lossy().into_owned());
                raw.jwt_issuer = Some("https://idp.example".into());
                raw.jwt_audience = Some("clearance".into());
            })
            .await;
        let now = Utc::now().timestamp();
        let claims = json!({
            "sub": "ada", "roles": ["admin"], "iat": now, "exp": now + 600,
            "iss": "https://idp.example", "aud": "clearance",
        });
        let eddsa = |claims: &Value, key: &ed25519_dalek::SigningKey| {
            bearer(&jwt(&json!({"alg": "EdDSA", "typ": "JWT"}), claims.to_string().as_bytes(), Key::Ed25519(key)))
        };
        let admitted = [
            ("the identity provider's token", eddsa(&claims, &idp)),
            ("`aud` a list holding the audience", eddsa(&with(&claims, json!({"aud": ["other", "clearance"]})), &idp)),
            ("`iat` in the future: `exp` alone bounds the lifetime", eddsa(&with(&claims, json!({"iat": now + 86_400})), &idp)),
        ];
        for (case, authorization) in &admitted {
            let response = app.client.get(app.url("/v1/providers")).header("authorization", authorization.clone()).send().await.unwrap();
            assert_eq!(response.status(), 200, "{case}");
        }

        let bytes = claims.to_string().into_bytes();
        let hmac_of_pem = {
            let input = format!("{}.{}", b64(br#"{"alg":"EdDSA"}"#), b64(&bytes));
            let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(pem.as_bytes()).unwrap();
            mac.update(input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        };
        let cases: Vec<(&str, HeaderValue, &str)> = vec![
            // Algorithm confusion: the public key used as an HMAC secret.
            ("HS256 keyed with the PEM public key", bearer(&hs256(&claims, pem.as_bytes())), "signature"),
            ("HS256 keyed with the DER public key", bearer(&hs256(&claims, der.as_bytes())), "signature"),
            ("HS256 keyed with the raw public key", bearer(&hs256(&claims, idp.verifying_key().as_bytes())), "signature"),
            ("EdDSA carrying an HMAC of the PEM", bearer(&jwt(&json!({"alg": "EdDSA"}), &bytes, Key::Raw(&hmac_of_pem))), "signature"),
            ("alg none", bearer(&jwt(&json!({"alg": "none"}), &bytes, Key::Unsigned)), "algorithm `none`"),
            ("RS256 to an Ed25519 key", bearer(&jwt(&json!({"alg": "RS256"}), &bytes, Key::Raw(&[7; 256]))), "RS256"),
            ("ES256 to an Ed25519 key", bearer(&jwt(&json!({"alg": "ES256"}), &bytes, Key::Raw(&[7; 64]))), "ES256"),
            ("EdDSA signed by another key", eddsa(&claims, &ed25519_key()), "signature"),
            ("EdDSA, roles tampered", {
                let token = jwt(&json!({"alg": "EdDSA"}), &with(&claims, json!({"roles": ["integrator"]})).to_string().into_bytes(), Key::Ed25519(&idp));
                bearer(&tampered(&token, &claims))
            }, "signature"),
            // An invitation is the service's own; the provider cannot make one.
            ("EdDSA posing as an invitation", eddsa(&with(&claims, json!({"purpose": "respond", "review": "r", "stage": "security", "jti": "i"})), &idp), "invitation"),
            // Issuer and audience.
            ("wrong iss", eddsa(&with(&claims, json!({"iss": "https://evil.example"})), &idp), "issuer"),
            ("no iss", eddsa(&with(&claims, json!({"iss": null})), &idp), "missing claim `iss`"),
            ("wrong aud", eddsa(&with(&claims, json!({"aud": "someone-else"})), &idp), "audience"),
            ("no aud", eddsa(&with(&claims, json!({"aud": null})), &idp), "missing claim `aud`"),
            ("`aud` a list without the audience", eddsa(&with(&claims, json!({"aud": ["other", "clearance-staging"]})), &idp), "audience"),
            ("`aud` an empty list", eddsa(&with(&claims, json!({"aud": []})), &idp), "aud"),
            ("`aud` a list of numbers", eddsa(&with(&claims, json!({"aud": [1, 2]})), &idp), "`aud` has the wrong type"),
            ("HS256 with the right claims, an unknown secret", bearer(&hs256(&claims, b"changeme")), "signature"),
        ];
        for (case, authorization, names) in &cases {
            assert_refused(&app, case, authorization.clone(), names).await;
        }
        println!("JWT attack set, identity provider's key: {} tokens refused, {} admitted", cases.len(), admitted.len());
    }

    async fn an_oversized_authorization_header_is_refused_not_dropped(app) {
        let token = format!("{}.{}.{}", b64(br#"{"alg":"HS256"}"#), "A".repeat(100 * 1024), "x");
        let response = app
            .client
            .get(app.url("/v1/providers"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("an answer to a 100 KB header, not a dropped connection");
        let status = response.status().as_u16();
        let content_type = response.headers().get("content-type").cloned();
        let body = response.bytes().await.unwrap_or_default();
        println!("a 100 KB Authorization header: {status}, {content_type:?}, {} bytes of body", body.len());
        assert!(matches!(status, 400 | 401 | 431), "a 100 KB header: {status}");
        // And the server answers the next request.
        assert_eq!(app.get("/healthz", "").await.status(), 200);
    }
}
