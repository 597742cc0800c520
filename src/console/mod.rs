//! The console: web pages for the people who run reviews, served by the same
//! binary at `/` (the API stays under `/v1`). Pages are rendered on the
//! server (askama templates in `templates/console/`) and every action is a
//! plain form post; a small embedded script only makes conditional questions
//! appear and vanish and asks before serious changes. Pages call the same
//! services as the API — never the API over HTTP — so the console refuses
//! what the API refuses, the same way, in plain words on the page.
//!
//! One module per area of pages: [`home`] (my work), [`portfolio`],
//! [`catalogue`] (a folder: providers, models, their forms, the switch),
//! [`review`] (a folder: the list, a review's page, answers, stage and
//! review actions, findings, evidence), [`intake`] (models integrators
//! asked about), [`workflows`] (a workflow's stages drawn), [`respond`]
//! (the supplier's questionnaire, read by [`questionnaire`]), [`admin`];
//! beside the shared
//! [`page`] (layout and viewer, errors, forms), [`words`], [`session`],
//! [`signin`] with [`oidc`] and [`links`], and [`assets`].

use std::sync::Arc;

use actix_web::web;

use crate::config::Config;

pub mod admin;
pub mod assets;
pub mod catalogue;
pub mod home;
pub mod intake;
pub mod links;
pub mod oidc;
pub mod page;
pub mod portfolio;
pub mod questionnaire;
pub mod respond;
pub mod review;
pub mod session;
pub mod signin;
pub mod words;
pub mod workflows;

/// What the console needs besides the application's services.
#[derive(Debug)]
pub struct Console {
    /// The identity provider; `None`: development sign-in links only.
    pub oidc: Option<oidc::Oidc>,
    pub links: links::Links,
    pub lifetimes: session::Lifetimes,
    /// Cookies marked `Secure` (the public URL is https).
    pub secure_cookies: bool,
}

impl Console {
    pub fn new(config: &Config, secret: &str) -> Result<Arc<Self>, String> {
        let public_url = config.public_url.as_str().trim_end_matches('/');
        let oidc = match &config.oidc {
            Some(oidc) => Some(oidc::Oidc::new(oidc.clone(), public_url)?),
            None => None,
        };
        Ok(Arc::new(Console {
            oidc,
            links: links::Links::new(secret)?,
            lifetimes: session::Lifetimes {
                idle: config.session_idle,
                absolute: config.session_lifetime,
            },
            secure_cookies: config.public_url.scheme() == "https",
        }))
    }
}

/// Registers every page. Each path is one resource, so a method it does
/// not take is answered 405 with `Allow` (as the API's are), not 404.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(signin::configure)
        .service(web::resource("/assets/{name}").get(assets::serve))
        .configure(home::configure)
        .configure(portfolio::configure)
        .configure(catalogue::configure)
        .configure(review::configure)
        .configure(intake::configure)
        .configure(workflows::configure)
        .configure(respond::configure)
        .configure(admin::configure);
}
