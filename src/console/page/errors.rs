//! Errors shown as pages in plain words, with the status each one means;
//! a review service's refusal has the status the API gives it.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use super::layout::{Layout, redirect, secure};

/// What went wrong with a page request, shown as a page.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("sign in first")]
    SignIn(String),
    #[error("This form has expired or did not come from this site. Reload the page and try again.")]
    Csrf,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The service refused; the page to go back to.
    #[error("{0}")]
    Refused(String, String),
    /// What a link led to is no more (a withdrawn review).
    #[error("{0}")]
    Gone(String),
    /// A form that cannot be read (not UTF-8, not a form).
    #[error("{0}")]
    BadRequest(String),
    /// A form larger than the service accepts.
    #[error("{0}")]
    TooLarge(String),
    /// A form holding what no input may hold (control characters).
    #[error("{0}")]
    Invalid(String),
    #[error("Something went wrong on our side. The request id is in the server's logs.")]
    Internal,
    #[error("Too many tries from your address. Wait {} seconds and try again.", .0.seconds())]
    TooMany(crate::http::limits::Limited),
}

impl From<crate::http::limits::Limited> for PageError {
    fn from(limited: crate::http::limits::Limited) -> Self {
        Self::TooMany(limited)
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    layout: Layout,
    heading: &'static str,
    message: String,
    /// Where to go from here; none on a supplier's page.
    back: Option<String>,
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::SignIn(_) => StatusCode::SEE_OTHER,
            PageError::Csrf | PageError::Forbidden(_) => StatusCode::FORBIDDEN,
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::Refused(..) => StatusCode::CONFLICT,
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::Gone(_) => StatusCode::GONE,
            PageError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            PageError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            PageError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            PageError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let PageError::SignIn(next) = self {
            let target = url::form_urlencoded::Serializer::for_suffix(String::from("/signin?"), 8)
                .append_pair("next", next)
                .finish();
            return redirect(&target);
        }
        self.page(false)
    }
}

impl PageError {
    /// The error as a supplier's page: nothing on it leads to the staff's
    /// pages or their sign-in.
    pub fn for_supplier(&self) -> HttpResponse {
        self.page(true)
    }

    fn page(&self, supplier: bool) -> HttpResponse {
        let heading = match self {
            PageError::Csrf => "This form has expired",
            PageError::Forbidden(_) => "Not allowed",
            PageError::NotFound(_) => "Not found",
            PageError::Refused(..) | PageError::Invalid(_) => "Not done",
            PageError::BadRequest(_) => "This form could not be read",
            PageError::Gone(_) => "No longer open",
            PageError::TooLarge(_) => "This form is too large",
            PageError::TooMany(_) => "Too many tries",
            _ => "Something went wrong",
        };
        let back = match self {
            _ if supplier => None,
            PageError::Refused(_, back) => Some(back.clone()),
            _ => Some("/".to_owned()),
        };
        let layout = if supplier {
            Layout::supplier(heading, None)
        } else {
            Layout::public(heading, false)
        };
        let page = ErrorPage {
            layout,
            heading,
            message: self.to_string(),
            back,
        };
        let mut response = HttpResponse::build(self.status_code())
            .content_type("text/html; charset=utf-8")
            .body(page.render().unwrap_or_else(|_| self.to_string()));
        secure(&mut response);
        if let PageError::TooMany(limited) = self {
            response.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                limited.seconds().into(),
            );
        }
        response
    }
}

impl From<crate::db::StoreError> for PageError {
    fn from(error: crate::db::StoreError) -> Self {
        tracing::error!(%error, "a page's database work failed");
        PageError::Internal
    }
}

impl From<diesel::result::Error> for PageError {
    fn from(error: diesel::result::Error) -> Self {
        tracing::error!(%error, "a page's query failed");
        PageError::Internal
    }
}

/// The status of a review service's refusal: the one the API answers, so
/// that the page and the API never disagree.
pub fn refusal_status(error: crate::reviews::ReviewError) -> StatusCode {
    crate::http::problem::ApiError::from(error).status_code()
}
