//! The CI gate behind `clearance check`: may this pipeline use this model in
//! this context? Asked of a server, or decided offline from a saved
//! attestation and the published keys. Exit codes: 0 allow, 1 deny, 2 could
//! not decide.

use chrono::{DateTime, Utc};

use crate::status::attestation;
use crate::status::derive::{self, CheckContext, CheckResult, Clearance};

/// The answer of the gate, ready to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// 0 allow, 1 deny, 2 could not decide.
    pub code: u8,
    pub message: String,
}

impl Verdict {
    fn undecided(message: impl Into<String>) -> Self {
        Verdict {
            code: 2,
            message: format!("cannot decide: {}", message.into()),
        }
    }

    fn from_result(result: &CheckResult) -> Self {
        let subject = format!("{}/{}", result.provider, result.model);
        if result.allow {
            let until = result
                .valid_until
                .map(|v| format!(" until {}", v.to_rfc3339()))
                .unwrap_or_default();
            Verdict {
                code: 0,
                message: format!("allow: {subject} is {}{until}", result.status.as_str()),
            }
        } else {
            Verdict {
                code: 1,
                message: format!(
                    "deny: {subject} is {}; reasons: {}",
                    result.status.as_str(),
                    result.reasons.join(", ")
                ),
            }
        }
    }
}

/// Splits `provider/model`.
pub fn parse_subject(subject: &str) -> Result<(String, String), String> {
    match subject.split_once('/') {
        Some((provider, model))
            if !provider.is_empty() && !model.is_empty() && !model.contains('/') =>
        {
            Ok((provider.to_owned(), model.to_owned()))
        }
        _ => Err(format!("`{subject}` is not provider/model")),
    }
}

/// Asks a Clearance server.
pub async fn check_online(server: &str, token: &str, context: &CheckContext) -> Verdict {
    let client = match reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .build()
    {
        Ok(client) => client,
        Err(error) => return Verdict::undecided(error.to_string()),
    };
    let url = format!("{}/v1/status/check", server.trim_end_matches('/'));
    let response = match client
        .post(&url)
        .bearer_auth(token)
        .json(&serde_json::json!({ "items": [context] }))
        .send()
        .await
    {
        Ok(response) => response,
        Err(error) => return Verdict::undecided(format!("{url}: {error}")),
    };
    let status = response.status();
    let body: serde_json::Value = match response.json().await {
        Ok(body) => body,
        Err(error) => {
            return Verdict::undecided(format!("{url} answered {status} without JSON: {error}"));
        }
    };
    if !status.is_success() {
        let detail = body["detail"].as_str().unwrap_or("no detail");
        return Verdict::undecided(format!("{url} answered {status}: {detail}"));
    }
    match serde_json::from_value::<Vec<CheckResult>>(body["results"].clone()) {
        Ok(results) if results.len() == 1 => Verdict::from_result(&results[0]),
        _ => Verdict::undecided(format!("{url} answered an unexpected body")),
    }
}

/// Decides from a saved attestation, refusing an expired or badly signed one.
pub fn check_offline(
    token: &str,
    jwks: &str,
    context: &CheckContext,
    now: DateTime<Utc>,
) -> Verdict {
    let claims = match attestation::verify(token.trim(), jwks, now) {
        Ok(claims) => claims,
        Err(error) => return Verdict::undecided(error),
    };
    let expected = format!("{}/{}", context.provider, context.model);
    if claims.sub != expected {
        return Verdict::undecided(format!(
            "the attestation is for {}, not {expected}",
            claims.sub
        ));
    }
    let clearance = Clearance {
        provider: context.provider.clone(),
        model: context.model.clone(),
        status: claims.status,
        tier: claims.tier,
        conditions: claims.conditions,
        valid_until: claims.valid_until,
        review_id: claims.review_id,
        decided_at: claims.decided_at,
        suspended_reason: None,
        version: claims.version,
    };
    let mut result = derive::check(&clearance, context);
    if clearance.valid_until.is_some_and(|v| v <= now) && result.allow {
        result.allow = false;
        result.reasons = vec!["expired".into()];
    }
    Verdict::from_result(&result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_provider_slash_model() {
        assert_eq!(
            parse_subject("anthropic/claude").unwrap(),
            ("anthropic".into(), "claude".into())
        );
        for bad in ["anthropic", "/claude", "anthropic/", "a/b/c"] {
            assert!(parse_subject(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn garbage_cannot_be_decided() {
        let context = CheckContext {
            provider: "a".into(),
            model: "b".into(),
            ..Default::default()
        };
        assert_eq!(
            check_offline("not-a-jwt", "{\"keys\":[]}", &context, Utc::now()).code,
            2
        );
    }
}
