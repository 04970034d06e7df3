//! The user operations: create, find by address, tag, delete, set a password, read.

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::client::{Budget, api_error, endpoint, expect_json};
use super::{Auth0Client, Auth0Error, Auth0User, NewAuth0User, Op, OwnershipTags, UserPatch};
use crate::deadline::Deadline;
use crate::domain::{Auth0UserId, Email};

impl Auth0Client {
    #[tracing::instrument(skip_all, fields(op = "create_user"))]
    pub async fn create_user(
        &self,
        user: &NewAuth0User<'_>,
        deadline: &Deadline,
    ) -> Result<Auth0UserId, Auth0Error> {
        /// `POST /api/v2/users`, written straight from the borrowed fields.
        #[derive(Serialize)]
        struct Body<'a> {
            connection: &'a str,
            email: &'a str,
            password: &'a str,
            email_verified: bool,
            // We send our own password-setup email; Auth0's would confuse the user.
            verify_email: bool,
            app_metadata: &'a OwnershipTags,
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            blocked: bool,
        }
        /// Of the user Auth0 answers, create-user needs the id alone; the rest is skipped
        /// unread.
        #[derive(Deserialize)]
        struct Created {
            user_id: String,
        }
        let secret = self.secret.get().await?;
        let body = Body {
            connection: &secret.auth0.connection,
            email: user.email.as_str(),
            password: user.password.expose_secret(),
            email_verified: true,
            verify_email: false,
            app_metadata: user.tags,
            blocked: user.blocked,
        };
        let response = self
            .call(Op::CreateUser, deadline, Budget::Work, |http, base| {
                http.post(endpoint(base, &["api", "v2", "users"]))
                    .json(&body)
            })
            .await?;
        let created: Created = expect_json(Op::CreateUser, StatusCode::CREATED, response).await?;
        Auth0UserId::parse(&created.user_id).map_err(|err| Auth0Error::Malformed {
            op: Op::CreateUser,
            detail: err.to_string(),
        })
    }

    /// Immediately consistent (unlike search): the way to read our own write.
    #[tracing::instrument(skip_all, fields(op = "users_by_email"))]
    pub async fn users_by_email(
        &self,
        email: &Email,
        deadline: &Deadline,
    ) -> Result<Vec<Auth0User>, Auth0Error> {
        let response = self
            .call(Op::UsersByEmail, deadline, Budget::Cleanup, |http, base| {
                http.get(endpoint(base, &["api", "v2", "users-by-email"]))
                    .query(&[("email", email.as_str())])
            })
            .await?;
        expect_json(Op::UsersByEmail, StatusCode::OK, response).await
    }

    #[tracing::instrument(skip_all, fields(op = "update_user"))]
    pub async fn set_tags(
        &self,
        id: &Auth0UserId,
        tags: &OwnershipTags,
        deadline: &Deadline,
    ) -> Result<Auth0User, Auth0Error> {
        let body = serde_json::json!({ "app_metadata": tags });
        let response = self
            .call(Op::UpdateUser, deadline, Budget::Work, |http, base| {
                http.patch(endpoint(base, &["api", "v2", "users", id.as_str()]))
                    .json(&body)
            })
            .await?;
        expect_json(Op::UpdateUser, StatusCode::OK, response).await
    }

    /// Idempotent: Auth0 answers 204 whether or not the user exists.
    #[tracing::instrument(skip_all, fields(op = "delete_user"))]
    pub async fn delete_user(
        &self,
        id: &Auth0UserId,
        deadline: &Deadline,
    ) -> Result<(), Auth0Error> {
        let response = self
            .call(Op::DeleteUser, deadline, Budget::Cleanup, |http, base| {
                http.delete(endpoint(base, &["api", "v2", "users", id.as_str()]))
            })
            .await?;
        match response.status() {
            StatusCode::NO_CONTENT | StatusCode::OK | StatusCode::NOT_FOUND => Ok(()),
            _ => Err(api_error(Op::DeleteUser, response).await),
        }
    }

    /// Sets the password of a database-connection user. A password Auth0's policy refuses
    /// is a 400 whose message names the rule ([`Auth0Error::password_policy_message`]).
    #[tracing::instrument(skip_all, fields(op = "set_password"))]
    pub async fn set_password(
        &self,
        id: &Auth0UserId,
        password: &SecretString,
        deadline: &Deadline,
    ) -> Result<(), Auth0Error> {
        let connection = self.secret.get().await?.auth0.connection.clone();
        let body = serde_json::json!({
            "password": password.expose_secret(),
            "connection": connection,
        });
        let response = self
            .call(Op::UpdateUser, deadline, Budget::Work, |http, base| {
                http.patch(endpoint(base, &["api", "v2", "users", id.as_str()]))
                    .json(&body)
            })
            .await?;
        expect_json::<Auth0User>(Op::UpdateUser, StatusCode::OK, response)
            .await
            .map(|_| ())
    }

    /// Changes the user's state (blocked, tags) as `patch` says. `budget`: [`Budget::Cleanup`]
    /// when the change undoes another. An unknown user is Auth0's 404 (`inexistent_user`).
    #[tracing::instrument(skip_all, fields(op = "update_user"))]
    pub async fn update_user(
        &self,
        id: &Auth0UserId,
        patch: &UserPatch,
        budget: Budget,
        deadline: &Deadline,
    ) -> Result<Auth0User, Auth0Error> {
        let response = self
            .call(Op::UpdateUser, deadline, budget, |http, base| {
                http.patch(endpoint(base, &["api", "v2", "users", id.as_str()]))
                    .json(patch)
            })
            .await?;
        expect_json(Op::UpdateUser, StatusCode::OK, response).await
    }

    /// Ends every session of the user (`DELETE /api/v2/users/{id}/sessions`, 202: Auth0 does
    /// it shortly after answering). An Enterprise-plan endpoint. Nothing to end for a user
    /// Auth0 does not know (404).
    #[tracing::instrument(skip_all, fields(op = "revoke_sessions"))]
    pub async fn revoke_sessions(
        &self,
        id: &Auth0UserId,
        budget: Budget,
        deadline: &Deadline,
    ) -> Result<(), Auth0Error> {
        self.revoke(Op::RevokeSessions, id, "sessions", budget, deadline)
            .await
    }

    /// Revokes every refresh token of the user (`DELETE /api/v2/users/{id}/refresh-tokens`,
    /// 202). An Enterprise-plan endpoint. Nothing to revoke for a user Auth0 does not know.
    #[tracing::instrument(skip_all, fields(op = "revoke_refresh_tokens"))]
    pub async fn revoke_refresh_tokens(
        &self,
        id: &Auth0UserId,
        budget: Budget,
        deadline: &Deadline,
    ) -> Result<(), Auth0Error> {
        self.revoke(
            Op::RevokeRefreshTokens,
            id,
            "refresh-tokens",
            budget,
            deadline,
        )
        .await
    }

    async fn revoke(
        &self,
        op: Op,
        id: &Auth0UserId,
        what: &str,
        budget: Budget,
        deadline: &Deadline,
    ) -> Result<(), Auth0Error> {
        let response = self
            .call(op, deadline, budget, |http, base| {
                http.delete(endpoint(base, &["api", "v2", "users", id.as_str(), what]))
            })
            .await?;
        match response.status() {
            StatusCode::ACCEPTED | StatusCode::NO_CONTENT | StatusCode::OK => Ok(()),
            StatusCode::NOT_FOUND => Ok(()),
            _ => Err(api_error(op, response).await),
        }
    }

    // --- used by the cleanup reconciler ---

    /// The user as it is now (unlike search, immediately consistent); `None` if there is none.
    #[tracing::instrument(skip_all, fields(op = "get_user"))]
    pub async fn get_user(
        &self,
        id: &Auth0UserId,
        deadline: &Deadline,
    ) -> Result<Option<Auth0User>, Auth0Error> {
        let response = self
            .call(Op::GetUser, deadline, Budget::Cleanup, |http, base| {
                http.get(endpoint(base, &["api", "v2", "users", id.as_str()]))
            })
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        expect_json(Op::GetUser, StatusCode::OK, response)
            .await
            .map(Some)
    }
}
