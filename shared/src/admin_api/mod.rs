//! The admin API: the admin panel's calls on `…/direct-users…` (create, check-exists,
//! resend-invitation, list, read, update, deactivate, reactivate, delete), behind API
//! Gateway's JWT authorizer. Routes requests to the user operations of [`crate::lifecycle`] for the caller's
//! [`Credential`], and answers what they did (or why not) in the admin panel's shapes.

pub mod request;

use http::{HeaderValue, Method, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};

use secrecy::ExposeSecret;

use crate::access::{Credential, Denied};
use crate::db::scim_tokens::TokenRecord;
use crate::db::user_views::{ListQuery, UserView};
use crate::deadline::Deadline;
use crate::domain::PagePermission;
use crate::domain::{CallerSub, FieldError, IdempotencyKey, ScimTokenId};
use crate::flow::{
    self, Compensation, FlowError, IdempotentRequest, KeyRefusal, Operation, Outcome,
};
use crate::http_api::{
    self, Answer, ApiError, ApiEvent, ApiRequest, ApiResponse, ErrorCode, Headers, JsonBody,
    NotAnApiEvent, dependency, error_body, read_json_body_within, timestamp,
};
use crate::lifecycle::{
    self, ChangeUser, CreateUser, CreatedUser, DeleteUser, DeletedUser, LifecycleError,
    ResendInvitation, ResentInvitation, UserChanges,
};
use crate::metrics::{self, Metric};
use crate::scim;
use crate::state::AppState;
use request::{
    encode_cursor, parse_check_exists, parse_list_query, parse_new_user, parse_resend_invitation,
    parse_user_changes, parse_user_id,
};

/// Generous for the largest permission list the admin panel can send.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Create,
    CheckExists,
    ResendInvitation,
    List,
    Get,
    Update,
    Deactivate,
    Reactivate,
    Delete,
    CreateScimToken,
    ListScimTokens,
    RevokeScimToken,
}

impl Route {
    /// The name requests of the route are fingerprinted and logged with.
    fn name(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::CheckExists => "check_exists",
            Self::ResendInvitation => "resend_invitation",
            Self::List => "list",
            Self::Get => "get",
            Self::Update => "update",
            Self::Deactivate => "deactivate",
            Self::Reactivate => "reactivate",
            Self::Delete => "delete",
            Self::CreateScimToken => "create_scim_token",
            Self::ListScimTokens => "list_scim_tokens",
            Self::RevokeScimToken => "revoke_scim_token",
        }
    }

    /// What a failed request of the route left behind.
    fn outcome(self) -> dependency::Outcome {
        // The Auth0 user keeps a change the database does not have until cleanup undoes it: a
        // create's retry adopts it; a change's retry waits for it (the operation's intent holds
        // the user).
        const CREATE_UNDO_PENDING: &str = "Nothing was created; the Auth0 user made could not \
            be removed yet (the cleanup job will), and a retry takes it up: it is safe to try \
            again.";
        const CHANGE_UNDO_PENDING: &str = "Nothing was changed in the database, but a change \
            in Auth0 could not be undone yet; the cleanup job will finish it, and until then a \
            retry answers USER_CHANGE_IN_PROGRESS.";
        const READ: dependency::Outcome = dependency::Outcome {
            nothing_kept: "Nothing was changed; it is safe to try again.",
            commit_unknown: "The database did not answer; it is safe to try again.",
            undo_pending: dependency::Outcome::NO_AUTH0_CHANGE,
        };
        const CHANGE: dependency::Outcome = dependency::Outcome {
            nothing_kept: "Nothing was changed; it is safe to try again.",
            commit_unknown: "The database did not confirm the commit, so the change may have \
                been made. Read the user before trying again.",
            undo_pending: CHANGE_UNDO_PENDING,
        };
        match self {
            Self::Create => dependency::Outcome {
                nothing_kept: "Nothing was created; it is safe to try again.",
                commit_unknown: "The database did not confirm the commit, so the user may have \
                    been created. Check before trying again: a retry answers \
                    USER_ALREADY_EXISTS if it was.",
                undo_pending: CREATE_UNDO_PENDING,
            },
            Self::CheckExists | Self::List | Self::Get | Self::ListScimTokens => READ,
            Self::CreateScimToken => dependency::Outcome {
                nothing_kept: "No token was made; it is safe to try again.",
                commit_unknown: "The database did not confirm the commit, so the token may \
                    have been stored: revoke any you did not receive in the list of tokens.",
                undo_pending: dependency::Outcome::NO_AUTH0_CHANGE,
            },
            Self::RevokeScimToken => CHANGE,
            Self::ResendInvitation => dependency::Outcome {
                nothing_kept: "Nothing was changed and earlier links still work; it is safe to \
                    try again.",
                commit_unknown: "The database did not confirm the commit, so the new \
                    invitation may have been stored and sent. Check the inbox before trying \
                    again: a retry sends another link and ends this one.",
                undo_pending: dependency::Outcome::NO_AUTH0_CHANGE,
            },
            Self::Update | Self::Deactivate | Self::Reactivate => CHANGE,
            Self::Delete => dependency::Outcome {
                nothing_kept: "Nothing was changed; it is safe to try again.",
                commit_unknown: "The database did not confirm the commit, so the user may have \
                    been deleted. Read the user before trying again: it answers \
                    USER_NOT_FOUND if it was.",
                undo_pending: CHANGE_UNDO_PENDING,
            },
        }
    }

    /// Whether the route names its user by the path's `{id}` (rather than by address).
    fn by_id(self) -> bool {
        matches!(
            self,
            Self::Get | Self::Update | Self::Deactivate | Self::Reactivate | Self::Delete
        )
    }
}

/// The admin API's routes.
pub const ROUTES: &[http_api::Route<Route>] = &[
    (Method::POST, "/direct-users/create", Route::Create),
    (
        Method::POST,
        "/direct-users/check-exists",
        Route::CheckExists,
    ),
    (
        Method::POST,
        "/direct-users/resend-invitation",
        Route::ResendInvitation,
    ),
    (Method::GET, "/direct-users", Route::List),
    (Method::GET, "/direct-users/{id}", Route::Get),
    (Method::PATCH, "/direct-users/{id}", Route::Update),
    (Method::DELETE, "/direct-users/{id}", Route::Delete),
    (
        Method::POST,
        "/direct-users/{id}/deactivate",
        Route::Deactivate,
    ),
    (
        Method::POST,
        "/direct-users/{id}/reactivate",
        Route::Reactivate,
    ),
    (Method::POST, "/scim-tokens", Route::CreateScimToken),
    (Method::GET, "/scim-tokens", Route::ListScimTokens),
    (Method::DELETE, "/scim-tokens/{id}", Route::RevokeScimToken),
];

/// The answer to an operation's error, for a request of `route`.
fn answer(err: &LifecycleError, route: Route) -> ApiError {
    use LifecycleError as E;
    match err {
        E::Denied(denied) => denied_answer(*denied),
        E::Key(KeyRefusal::InProgress) => ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                ErrorCode::RequestInProgress,
                "Idempotency-Key: a request with this key is still running; retry in a moment \
                 to get its answer.",
            )
            .field("Idempotency-Key")
        },
        E::Busy(_) => ApiError {
            retry_after: Some(2),
            ..ApiError::new(
                ErrorCode::UserChangeInProgress,
                "Another change to this user is still in progress; try again in a moment.",
            )
        },
        E::Key(KeyRefusal::Reused) => ApiError::new(
            ErrorCode::IdempotencyKeyReused,
            "Idempotency-Key: this key was used with another request; a new request needs a \
             new key.",
        )
        .field("Idempotency-Key"),
        E::UnknownPages(ids) => ApiError::new(
            ErrorCode::UnknownPage,
            format!(
                "permissions: unknown page id(s): {}{}",
                ids.iter()
                    .take(SHOWN_PAGE_IDS)
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                match ids.len().saturating_sub(SHOWN_PAGE_IDS) {
                    0 => String::new(),
                    more => format!(" and {more} more"),
                }
            ),
        )
        .field("permissions"),
        // The admin API never sends a password; only SCIM does. Kept precise all the same.
        E::WeakPassword(message) => {
            ApiError::new(ErrorCode::WeakPassword, format!("password: {message}")).field("password")
        }
        E::EmployeeNotFound => ApiError::new(
            ErrorCode::EmployeeNotFound,
            "employee_id: no such employee in your organisation.",
        )
        .field("employee_id"),
        E::EmployeeAlreadyLinked => ApiError::new(
            ErrorCode::EmployeeAlreadyLinked,
            "employee_id: this employee is already linked to a user.",
        )
        .field("employee_id"),
        E::EmailTaken => ApiError::new(
            ErrorCode::UserAlreadyExists,
            "email: a user with this email already exists.",
        )
        .field("email")
        .friendly("A user with this email address already exists. Use a different email address."),
        E::CreationInProgress if route.by_id() => ApiError::new(
            ErrorCode::UserCreationInProgress,
            "This user is still being created (or its creation was cut off and the cleanup job \
             will remove it); try again in a moment.",
        )
        .friendly("This user is being created right now. Refresh the list in a moment."),
        E::CreationInProgress => ApiError::new(
            ErrorCode::UserCreationInProgress,
            "email: this user is still being created (or its creation was cut off and the \
             cleanup job will remove it); try again in a moment.",
        )
        .field("email")
        .friendly("This user is being created right now. Refresh the list in a moment."),
        E::TokenNotFound => ApiError::new(
            ErrorCode::ScimTokenNotFound,
            "No such SCIM token in your organisation.",
        ),
        E::UserNotFound if route.by_id() => ApiError::new(
            ErrorCode::UserNotFound,
            "No such user in your organisation.",
        ),
        E::UserNotFound => ApiError::new(
            ErrorCode::UserNotFound,
            "email: no user with this email in your organisation.",
        )
        .field("email"),
        E::AlreadyActivated => ApiError::new(
            ErrorCode::AlreadyActivated,
            "email: this user has already set a password; there is no invitation to resend.",
        )
        .field("email")
        .friendly("This user has already set a password and can sign in."),
        E::UserInactive => ApiError::new(
            ErrorCode::UserInactive,
            "email: this user is deactivated; reactivate the user before inviting again.",
        )
        .field("email"),
        E::Auth0UserExists => ApiError::new(
            ErrorCode::Auth0UserExists,
            "email: this email already has a login that this application did not create.",
        )
        .field("email")
        .friendly("This email address already has a login. Contact support to link it."),
        E::Failed {
            failure,
            compensation,
        } => dependency::answer(failure, *compensation, route.outcome()),
    }
}

fn denied_answer(denied: Denied) -> ApiError {
    match denied {
        Denied::UnknownCaller => ApiError::new(
            ErrorCode::CallerNotFound,
            "The caller is not a user of this application.",
        ),
        Denied::InactiveCaller => ApiError::new(
            ErrorCode::CallerInactive,
            "The caller's account is inactive.",
        ),
        Denied::NotAnAdmin => ApiError::new(
            ErrorCode::NotAnAdmin,
            "Only an OWNER or ADMIN can manage users.",
        ),
        Denied::RoleNotAllowed(role) => ApiError::new(
            ErrorCode::RoleNotAllowed,
            format!(
                "role: only an OWNER can give a user the role {}.",
                role.as_str()
            ),
        )
        .field("role"),
        Denied::OwnerProtected => ApiError::new(
            ErrorCode::OwnerProtected,
            "Only an OWNER can change an OWNER's account.",
        ),
        Denied::Yourself => ApiError::new(
            ErrorCode::CannotActOnSelf,
            "You cannot change your own account here; ask another OWNER or ADMIN.",
        ),
        Denied::LastOwner => ApiError::new(
            ErrorCode::LastOwner,
            "This is the organisation's last active OWNER: make another user OWNER first.",
        ),
        // The admin API's credential is a JWT; a SCIM token never reaches it.
        Denied::InvalidToken => ApiError::new(
            ErrorCode::Unauthenticated,
            "The credential is not valid here.",
        ),
    }
}

/// The Lambda handler: every outcome is an HTTP response; only an event that is no API
/// Gateway proxy event fails the invocation.
pub async fn handle(state: &AppState, event: ApiEvent) -> Result<ApiResponse, NotAnApiEvent> {
    http_api::serve(
        event,
        &http_api::JSON_API,
        async |request, deadline, request_id| dispatch(state, request, deadline, request_id).await,
    )
    .await
}

/// Stripe's name for the header that marks a replayed answer.
const IDEMPOTENT_REPLAYED: http::header::HeaderName =
    http::header::HeaderName::from_static("idempotent-replayed");

async fn dispatch(
    state: &AppState,
    request: &ApiRequest,
    deadline: &Deadline,
    request_id: &str,
) -> Result<Answer, ApiError> {
    let matched = http_api::route(ROUTES, request.method(), request.path())?;
    let route = matched.route;
    let credential = credential(request)?;
    let id = matched.param("id");
    let user_id = parse_user_id(id);
    let body = match route {
        Route::Create
        | Route::CheckExists
        | Route::ResendInvitation
        | Route::Update
        | Route::CreateScimToken => read_json_body_within(request, MAX_BODY_BYTES)?,
        _ => Value::Null,
    };
    let mut call = Call {
        state,
        request,
        deadline,
        request_id,
        route,
        credential,
        // What makes two requests with one key the same: the body, and the user of the path.
        fingerprint: json!({ "id": id, "body": body }),
    };
    match route {
        Route::Create => {
            let new_user = parse_new_user(&body)?;
            tracing::info!(route = "create", email = %new_user.email, role = new_user.role.as_str(), "create-user request");
            call.mutate(
                &CreateUser::new(&new_user),
                StatusCode::CREATED,
                created_body,
            )
            .await
        }
        Route::ResendInvitation => {
            let email = parse_resend_invitation(&body)?;
            tracing::info!(route = "resend_invitation", email = %email, "resend-invitation request");
            call.mutate(
                &ResendInvitation { email: &email },
                StatusCode::OK,
                resent_body,
            )
            .await
        }
        Route::CheckExists => {
            let email = parse_check_exists(&body)?;
            let exists = lifecycle::email_exists(state, &call.credential, &email, deadline)
                .await
                .map_err(|err| log_failure(&err, route))?;
            Ok((
                StatusCode::OK,
                json!({ "exists": exists, "email": email.as_str() }).into(),
                Headers::new(),
            ))
        }
        Route::List => {
            let (query, limit) = parse_list_query(|name| request.query_joined(name))?;
            // One more than the page: whether another follows.
            let query = ListQuery {
                limit: limit + 1,
                ..query
            };
            let users = lifecycle::users(state, &call.credential, &query, deadline)
                .await
                .map_err(|err| log_failure(&err, route))?;
            Ok((StatusCode::OK, list_body(users, limit), Headers::new()))
        }
        Route::Get => {
            let id = user_id;
            let user = lifecycle::user(state, &call.credential, id, deadline)
                .await
                .map_err(|err| log_failure(&err, route))?;
            Ok((StatusCode::OK, user_body(&user).into(), Headers::new()))
        }
        Route::Update => {
            let id = user_id;
            let changes = parse_user_changes(&body)?;
            tracing::info!(route = "update", user_id = %id, "update request");
            call.mutate(
                &ChangeUser {
                    id,
                    changes: &changes,
                },
                StatusCode::OK,
                user_body,
            )
            .await
        }
        Route::Deactivate | Route::Reactivate => {
            let id = user_id;
            let active = route == Route::Reactivate;
            tracing::info!(route = route.name(), user_id = %id, "{} request", route.name());
            call.fingerprint["body"] = json!({ "active": active });
            let changes = UserChanges {
                active: Some(active),
                ..UserChanges::default()
            };
            call.mutate(
                &ChangeUser {
                    id,
                    changes: &changes,
                },
                StatusCode::OK,
                user_body,
            )
            .await
        }
        Route::Delete => {
            let id = user_id;
            tracing::info!(route = "delete", user_id = %id, "delete request");
            call.mutate(&DeleteUser { id }, StatusCode::OK, deleted_body)
                .await
        }
        // No Idempotency-Key here: a replayed answer would have to be stored with the token
        // in it, and the token is never stored.
        Route::CreateScimToken => {
            if !body.is_object() {
                return Err(FieldError::new("body", "must be a JSON object").into());
            }
            if let Some(key) = body
                .as_object()
                .and_then(|object| object.keys().find(|key| *key != "name"))
            {
                let field = if crate::json::looks_like_a_field_name(key) {
                    key.as_str()
                } else {
                    "body"
                };
                return Err(
                    FieldError::new(field, "is not a field of a token; it takes a name").into(),
                );
            }
            let name = match body.get("name") {
                Some(Value::String(name)) => Some(name.as_str()),
                None | Some(Value::Null) => None,
                Some(_) => return Err(FieldError::new("name", "must be a string").into()),
            };
            let name = scim::tokens::parse_name(name)?;
            let (record, token) = scim::tokens::create(state, &call.credential, &name, deadline)
                .await
                .map_err(|err| log_failure(&err, route))?;
            let mut body = token_body(&record);
            body["token"] = json!(token.expose_secret());
            body["message"] = json!(
                "Copy the token now: it is not shown again. Give it to your identity provider \
                 as the SCIM bearer token."
            );
            Ok((StatusCode::CREATED, body.into(), Headers::new()))
        }
        Route::ListScimTokens => {
            let records = scim::tokens::list(state, &call.credential, deadline)
                .await
                .map_err(|err| log_failure(&err, route))?;
            let tokens: Vec<Value> = records.iter().map(token_body).collect();
            Ok((
                StatusCode::OK,
                json!({ "tokens": tokens }).into(),
                Headers::new(),
            ))
        }
        Route::RevokeScimToken => {
            let not_found = || answer(&LifecycleError::TokenNotFound, route);
            let id = id
                .and_then(|id| ScimTokenId::parse(id).ok())
                .ok_or_else(not_found)?;
            let record = scim::tokens::revoke(state, &call.credential, id, deadline)
                .await
                .map_err(|err| log_failure(&err, route))?;
            Ok((StatusCode::OK, token_body(&record).into(), Headers::new()))
        }
    }
}

/// A SCIM token as its tenant's admins see it (openapi.yaml's `ScimToken`): never the token.
fn token_body(token: &TokenRecord) -> Value {
    json!({
        "id": token.id.to_string(),
        "name": token.name,
        "hint": token.hint,
        "createdBy": token.created_by.map(|id| id.to_string()),
        "createdAt": timestamp(token.created_at),
        "lastUsedAt": token.last_used_at.map(timestamp),
        "revokedAt": token.revoked_at.map(timestamp),
    })
}

/// One request of the admin API, read and routed.
struct Call<'a> {
    state: &'a AppState,
    request: &'a ApiRequest,
    deadline: &'a Deadline,
    request_id: &'a str,
    route: Route,
    credential: Credential,
    fingerprint: Value,
}

impl Call<'_> {
    /// Runs a mutating operation, with the request's `Idempotency-Key` when it carries one,
    /// and answers `status` with `body` of what it did, or the answer stored for the key.
    async fn mutate<O: Operation<Error = LifecycleError>>(
        &self,
        operation: &O,
        status: StatusCode,
        body: fn(&O::Output) -> Value,
    ) -> Result<Answer, ApiError> {
        let key = idempotency_key(self.request)?;
        // What is stored for the key is exactly what this request answers.
        let render = |outcome: Result<&O::Output, &LifecycleError>| match outcome {
            Ok(done) => (status.as_u16(), body(done)),
            Err(err) => {
                let api = answer(err, self.route);
                (api.status.as_u16(), error_body(&api, self.request_id))
            }
        };
        let idempotent = key.as_ref().map(|key| {
            let ttl = self.state.config.idempotency_key_ttl;
            let (route, caller) = (self.route.name(), self.credential.identity());
            IdempotentRequest::new(key, route, &caller, &self.fingerprint, ttl, &render)
        });
        tracing::debug!(idempotent = key.is_some(), "running the operation");
        let outcome = flow::run(
            self.state,
            &self.credential,
            operation,
            idempotent.as_ref(),
            self.deadline,
        )
        .await
        .map_err(|err| log_failure(&err, self.route))?;
        Ok(match outcome {
            Outcome::Done(done) => (status, body(&done).into(), Headers::new()),
            Outcome::Replayed(answer) => {
                let status = StatusCode::from_u16(answer.status)
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let replayed = vec![(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"))];
                (status, answer.body.into(), replayed)
            }
        })
    }
}

/// An `UNKNOWN_PAGE` names this many of the ids it did not find, and counts the rest.
const SHOWN_PAGE_IDS: usize = 5;

fn log_failure(err: &LifecycleError, route: Route) -> ApiError {
    let api = answer(err, route);
    if let (true, LifecycleError::Failed { failure, .. }) = (api.status.is_server_error(), err) {
        metrics::count(Metric::Rollbacks, 1, Some(("Step", failure.step().name())));
    }
    if err.compensation() == Compensation::Failed {
        tracing::error!(
            route = route.name(),
            "an auth0 change was left for the cleanup job"
        );
    }
    http_api::log_server_error(&api, err, route.name());
    api
}

/// The optional `Idempotency-Key` header, checked like any field.
fn idempotency_key(request: &ApiRequest) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(raw) = request.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let raw = raw
        .to_str()
        .map_err(|_| "must be visible ASCII characters (a UUID, for example)".to_string());
    raw.and_then(IdempotencyKey::parse)
        .map(Some)
        .map_err(|message| FieldError::new("Idempotency-Key", message).into())
}

/// The caller API Gateway's JWT authorizer verified.
fn credential(request: &ApiRequest) -> Result<Credential, ApiError> {
    request
        .jwt_sub()
        .ok_or("No caller identity: the request carries no JWT `sub` claim.")
        .and_then(CallerSub::parse)
        .map(Credential::Jwt)
        .map_err(|message| ApiError::new(ErrorCode::Unauthenticated, message))
}

/// A user as every route but create shows it.
fn user_body(user: &UserView) -> Value {
    serde_json::to_value(UserJson::of(user)).expect("a user view serializes")
}

/// A page of the list: its users, and the cursor of the next page when there is one. Written
/// straight to text: a page holds up to 200 users, and a `Value` tree for each was most of a
/// list's cost.
fn list_body(mut users: Vec<UserView>, limit: usize) -> JsonBody {
    let next = (users.len() > limit).then(|| {
        users.truncate(limit);
        let last = &users.last().expect("a full page").user;
        encode_cursor(last.created_at, last.id)
    });
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Page<'a> {
        users: Vec<UserJson<'a>>,
        next_cursor: Option<String>,
    }
    let page = Page {
        users: users.iter().map(UserJson::of).collect(),
        next_cursor: next,
    };
    JsonBody::Text(serde_json::to_string(&page).expect("a page serializes"))
}

/// The user view's JSON, borrowed from it (openapi.yaml's `UserView`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserJson<'a> {
    id: String,
    email: &'a str,
    role: &'static str,
    status: &'static str,
    is_active: bool,
    tenant_id: String,
    auth0_user_id: Option<&'a str>,
    setup_completed_at: Option<String>,
    created_at: String,
    created_by: Option<CreatorJson<'a>>,
    employee: Option<EmployeeJson<'a>>,
    permissions: Vec<PermissionJson>,
}

#[derive(Serialize)]
struct CreatorJson<'a> {
    id: String,
    email: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EmployeeJson<'a> {
    id: String,
    first_name: &'a str,
    last_name: &'a str,
    department: Option<&'a str>,
    job_title: Option<&'a str>,
    employment_type: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PermissionJson {
    page_id: String,
    can_read: bool,
    can_write: bool,
    can_edit: bool,
    can_delete: bool,
}

impl<'a> UserJson<'a> {
    fn of(view: &'a UserView) -> Self {
        let row = &view.user;
        Self {
            id: row.id.to_string(),
            email: &row.email,
            role: row.role.as_str(),
            status: view.status().as_str(),
            is_active: row.is_active,
            tenant_id: row.tenant_id.to_string(),
            auth0_user_id: row.auth0.auth0_user_id().map(|id| id.as_str()),
            setup_completed_at: row.setup_completed_at.map(timestamp),
            created_at: timestamp(row.created_at),
            created_by: view.created_by.map(|id| CreatorJson {
                id: id.to_string(),
                email: view.created_by_email.as_deref(),
            }),
            employee: view.employee.as_ref().map(|e| EmployeeJson {
                id: e.id.to_string(),
                first_name: &e.first_name,
                last_name: &e.last_name,
                department: e.department.as_deref(),
                job_title: e.job_title.as_deref(),
                employment_type: e.employment_type.as_deref(),
            }),
            permissions: view.permissions.iter().map(PermissionJson::of).collect(),
        }
    }
}

impl PermissionJson {
    fn of(p: &PagePermission) -> Self {
        Self {
            page_id: p.page_id.to_string(),
            can_read: p.can_read,
            can_write: p.can_write,
            can_edit: p.can_edit,
            can_delete: p.can_delete,
        }
    }
}

fn deleted_body(deleted: &DeletedUser) -> Value {
    json!({
        "id": deleted.id.to_string(),
        "deleted": true,
        "message": "The user was deleted: its login no longer works and its Auth0 user is removed (by the cleanup job if Auth0 could not be reached just now); its employee record was kept.",
    })
}

fn permissions_body(permissions: &[PagePermission]) -> Value {
    let permissions: Vec<PermissionJson> = permissions.iter().map(PermissionJson::of).collect();
    serde_json::to_value(permissions).expect("permissions serialize")
}

fn created_body(user: &CreatedUser) -> Value {
    json!({
        "user": {
            "id": user.id.to_string(),
            "email": user.email.as_str(),
            "role": user.role.as_str(),
            "tenantId": user.tenant_id.to_string(),
            "auth0UserId": user.auth0_user_id.as_str(),
            "employeeId": user.employee_id.map(|id| id.to_string()),
            "permissions": permissions_body(&user.permissions),
            "isActive": true,
            "setupCompletedAt": null,
            "createdAt": timestamp(user.created_at),
        },
        "message": format!("User created. A password-setup email was sent to {}.", user.email.as_str()),
    })
}

fn resent_body(resent: &ResentInvitation) -> Value {
    let user = &resent.user;
    json!({
        "user": {
            "id": user.id.to_string(),
            "email": user.email,
            "role": user.role.as_str(),
            "tenantId": user.tenant_id.to_string(),
            "auth0UserId": user.auth0.auth0_user_id().map(|id| id.as_str()),
            "isActive": user.is_active,
            "setupCompletedAt": user.setup_completed_at.map(timestamp),
            "createdAt": timestamp(user.created_at),
        },
        "expiresAt": timestamp(resent.expires_at),
        "message": format!(
            "A new password-setup email was sent to {}. Earlier links no longer work.",
            user.email
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_on_the_path_suffix_with_404_and_405() {
        let route = |method, path| http_api::route(ROUTES, &method, path).map(|m| m.route);
        assert_eq!(
            route(Method::POST, "/prod/api/direct-users/create"),
            Ok(Route::Create)
        );
        assert_eq!(
            route(Method::POST, "/direct-users/check-exists/"),
            Ok(Route::CheckExists)
        );
        assert_eq!(
            route(Method::POST, "/direct-users/42/promote")
                .unwrap_err()
                .status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(route(Method::GET, "/api/direct-users"), Ok(Route::List));
        assert_eq!(
            route(Method::DELETE, "/api/direct-users/42"),
            Ok(Route::Delete)
        );
        assert_eq!(
            route(Method::POST, "/api/direct-users/42/deactivate"),
            Ok(Route::Deactivate)
        );
        // `delete` is no user id anyone has, but it stands where one would: the path is a
        // user's, and POST is not among its methods.
        let refused = route(Method::POST, "/direct-users/delete").unwrap_err();
        assert_eq!(refused.allow.as_deref(), Some("GET, PATCH, DELETE"));
        let refused = route(Method::GET, "/direct-users/create").unwrap_err();
        assert_eq!(refused.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(refused.allow.as_deref(), Some("POST"));
    }
}
