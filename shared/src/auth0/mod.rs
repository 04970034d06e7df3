//! Auth0 Management API client: cached M2M token, bounded retries on 429, errors that keep
//! the status and Auth0's message. The Auth0 behaviour it relies on: docs/auth0.md.
//!
//! `client`: the client, its token cache and the one way a request goes out; `users` and
//! `search`: the operations; `types`: what they take and answer; `error`: how they fail.

mod client;
mod error;
mod search;
mod types;
mod users;

pub use client::{Auth0Client, Budget};
pub use error::{Auth0Error, Op};
pub use types::{
    Auth0User, CREATED_BY_MARKER, NewAuth0User, OwnershipTags, RateLimitQuota, SEARCH_PAGE_SIZE,
    UserPatch,
};
