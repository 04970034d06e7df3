//! What a person's logins leave behind: refresh tokens and sessions, per user.
//!
//! Refresh tokens are kept by their SHA-256 only, like passwords, so no snapshot can leak one.
//! A session is the double's stand-in for the one Auth0 keeps for an interactive login; the
//! double opens one on each password-realm login (see docs/auth0.md for how real Auth0
//! differs).

use std::collections::{HashMap, HashSet};

use super::state::{digest, random_hex};

/// Refresh tokens and sessions of every user.
#[derive(Default)]
pub(super) struct Access {
    /// SHA-256 of a live refresh token → what it was issued for.
    refresh_tokens: HashMap<String, RefreshGrant>,
    /// `user_id` → its live refresh tokens (their digests) and sessions.
    users: HashMap<String, UserAccess>,
}

/// What a refresh token continues: the login that asked for `offline_access`.
#[derive(Clone)]
pub(super) struct RefreshGrant {
    pub(super) user_id: String,
    pub(super) scope: String,
    pub(super) audience: String,
}

#[derive(Default)]
struct UserAccess {
    refresh_tokens: HashSet<String>,
    /// Open sessions; the double needs no more than their number.
    sessions: usize,
}

impl Access {
    /// A new opaque refresh token for `grant`; only its digest is kept.
    pub(super) fn issue_refresh_token(&mut self, grant: RefreshGrant) -> String {
        let token = random_hex(32);
        let key = digest(&token);
        let user = self.users.entry(grant.user_id.clone()).or_default();
        user.refresh_tokens.insert(key.clone());
        self.refresh_tokens.insert(key, grant);
        token
    }

    /// The grant behind `token` while it has not been revoked.
    pub(super) fn refresh_grant(&self, token: &str) -> Option<&RefreshGrant> {
        self.refresh_tokens.get(&digest(token))
    }

    pub(super) fn open_session(&mut self, user_id: &str) {
        self.users.entry(user_id.to_string()).or_default().sessions += 1;
    }

    /// Revokes every refresh token of `user_id`; its sessions stay.
    pub(super) fn revoke_refresh_tokens(&mut self, user_id: &str) {
        if let Some(user) = self.users.get_mut(user_id) {
            for key in user.refresh_tokens.drain() {
                self.refresh_tokens.remove(&key);
            }
        }
    }

    /// Ends every session of `user_id`; its refresh tokens stay.
    pub(super) fn end_sessions(&mut self, user_id: &str) {
        if let Some(user) = self.users.get_mut(user_id) {
            user.sessions = 0;
        }
    }

    /// Everything of a deleted user.
    pub(super) fn forget(&mut self, user_id: &str) {
        self.revoke_refresh_tokens(user_id);
        self.users.remove(user_id);
    }

    pub(super) fn refresh_tokens_of(&self, user_id: &str) -> usize {
        self.users
            .get(user_id)
            .map_or(0, |user| user.refresh_tokens.len())
    }

    pub(super) fn sessions_of(&self, user_id: &str) -> usize {
        self.users.get(user_id).map_or(0, |user| user.sessions)
    }
}
