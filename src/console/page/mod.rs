//! What every page shares: [`layout`] (the response with its security
//! headers, the signed-in viewer, navigation and notices), [`errors`]
//! (refusals shown as pages in plain words) and [`forms`] (posts read,
//! checked and typed once).

pub mod errors;
pub mod forms;
pub mod layout;

pub use errors::{PageError, refusal_status};
pub use forms::{Form, NoFields, Posted};
pub use layout::{Done, Layout, Link, NavItem, Notice, Viewer, ViewerInfo, html, redirect, secure};
