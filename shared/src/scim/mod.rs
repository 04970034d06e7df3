//! SCIM 2.0 (RFC 7643, RFC 7644) for a tenant's identity provider (Okta, Microsoft Entra ID):
//! `/scim/v2/Users` and the discovery documents, behind a SCIM token of the tenant (no JWT
//! authorizer). Every create, change, deactivation and deletion runs the same operations of
//! [`crate::lifecycle`] as the admin API, all or nothing across both systems; this module only
//! reads SCIM's requests into them ([`user`], [`filter`]) and writes their results in SCIM's
//! shapes ([`resource`], [`schema`]), errors included.

pub mod filter;
pub mod resource;
pub mod schema;
pub mod tokens;
pub mod user;

use http::{HeaderValue, Method, StatusCode};
use serde_json::{Value, json};

use crate::access::{Credential, Denied};
use crate::auth0::Auth0Error;
use crate::db::user_views::{EmployeeView, UserMatch, UserView};
use crate::db::users::UserRecord;
use crate::deadline::Deadline;
use crate::domain::{Auth0Link, EmployeeRequest, UserId};
use crate::flow::{self, Compensation, Failure, FlowError, Operation, Outcome};
use crate::http_api::{
    self, Answer, ApiError, ApiEvent, ApiRequest, ApiResponse, ApiShape, ErrorCode, Headers,
    JsonBody, NotAnApiEvent, dependency, read_json_body_within,
};
use crate::lifecycle::{
    self, ChangeUser, CreateUser, CreatedUser, DeleteUser, LifecycleError, UserChanges,
};
use crate::metrics::{self, Metric};
use crate::state::AppState;
use resource::{Projection, list_json, location, user_json};
use schema::MAX_RESULTS;
use user::{NewScimUser, UserState};

/// A user resource is small; Okta's and Entra's bodies are well under this.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// SCIM's answers: `application/scim+json`, errors in SCIM's error schema.
pub const SCIM_API: ApiShape = ApiShape {
    error_body,
    media_type: "application/scim+json",
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    ServiceProviderConfig,
    ResourceTypes,
    ResourceType,
    Schemas,
    Schema,
    ListUsers,
    CreateUser,
    GetUser,
    ReplaceUser,
    PatchUser,
    DeleteUser,
    /// `/Bulk`, `/.search` and `/Users/.search`: defined by RFC 7644, not served.
    NotImplemented,
}

impl Route {
    fn name(self) -> &'static str {
        match self {
            Self::ServiceProviderConfig => "scim_service_provider_config",
            Self::ResourceTypes | Self::ResourceType => "scim_resource_types",
            Self::Schemas | Self::Schema => "scim_schemas",
            Self::ListUsers => "scim_list",
            Self::CreateUser => "scim_create",
            Self::GetUser => "scim_get",
            Self::ReplaceUser => "scim_replace",
            Self::PatchUser => "scim_patch",
            Self::DeleteUser => "scim_delete",
            Self::NotImplemented => "scim_not_implemented",
        }
    }

    fn outcome(self) -> dependency::Outcome {
        match self {
            Self::CreateUser => dependency::Outcome {
                nothing_kept: "Nothing was created; it is safe to try again.",
                commit_unknown: "The database did not confirm the commit, so the user may have \
                    been created: look it up by userName before trying again.",
                undo_pending: "Nothing was created; the Auth0 user made could not be removed \
                    yet (the cleanup job will), and a retry takes it up: it is safe to try \
                    again.",
            },
            Self::ReplaceUser | Self::PatchUser | Self::DeleteUser => dependency::Outcome {
                nothing_kept: "Nothing was changed; it is safe to try again.",
                commit_unknown: "The database did not confirm the commit, so the change may \
                    have been made: read the user before trying again.",
                undo_pending: "Nothing was changed in the database, but a change in Auth0 \
                    could not be undone yet; the cleanup job will finish it, and until then a \
                    retry answers 409.",
            },
            _ => dependency::Outcome {
                nothing_kept: "Nothing was changed; it is safe to try again.",
                commit_unknown: "The database did not answer; it is safe to try again.",
                undo_pending: dependency::Outcome::NO_AUTH0_CHANGE,
            },
        }
    }
}

/// The SCIM routes, under any base path (`/prod/scim/v2/Users` works too).
pub const ROUTES: &[http_api::Route<Route>] = &[
    (
        Method::GET,
        "/scim/v2/ServiceProviderConfig",
        Route::ServiceProviderConfig,
    ),
    (Method::GET, "/scim/v2/ResourceTypes", Route::ResourceTypes),
    (
        Method::GET,
        "/scim/v2/ResourceTypes/{id}",
        Route::ResourceType,
    ),
    (Method::GET, "/scim/v2/Schemas", Route::Schemas),
    (Method::GET, "/scim/v2/Schemas/{id}", Route::Schema),
    (Method::GET, "/scim/v2/Users", Route::ListUsers),
    (Method::POST, "/scim/v2/Users", Route::CreateUser),
    (Method::GET, "/scim/v2/Users/{id}", Route::GetUser),
    (Method::PUT, "/scim/v2/Users/{id}", Route::ReplaceUser),
    (Method::PATCH, "/scim/v2/Users/{id}", Route::PatchUser),
    (Method::DELETE, "/scim/v2/Users/{id}", Route::DeleteUser),
    (Method::POST, "/scim/v2/Bulk", Route::NotImplemented),
    (Method::POST, "/scim/v2/.search", Route::NotImplemented),
    (
        Method::POST,
        "/scim/v2/Users/.search",
        Route::NotImplemented,
    ),
];

/// A request SCIM refuses with a `scimType`: a 400 by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimFault {
    pub scim_type: &'static str,
    pub detail: String,
}

impl ScimFault {
    fn new(scim_type: &'static str, detail: impl Into<String>) -> Self {
        Self {
            scim_type,
            detail: detail.into(),
        }
    }
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::new("invalidValue", detail)
    }
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::new("invalidSyntax", detail)
    }
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::new("invalidPath", detail)
    }
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::new("invalidFilter", detail)
    }
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::new("noTarget", detail)
    }
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::new("mutability", detail)
    }
}

impl From<ScimFault> for ApiError {
    fn from(fault: ScimFault) -> Self {
        ApiError::new(ErrorCode::ValidationError, fault.detail).scim_type(fault.scim_type)
    }
}

/// SCIM's error schema (RFC 7644 §3.12): `status` is a string; `scimType` where one applies.
pub fn error_body(err: &ApiError, _request_id: &str) -> Value {
    let mut body = json!({
        "schemas": [schema::ERROR],
        "status": err.status.as_u16().to_string(),
        "detail": err.message,
    });
    let scim_type = err.scim_type.or(match err.code {
        ErrorCode::InvalidJson | ErrorCode::InvalidBody => Some("invalidSyntax"),
        ErrorCode::ValidationError => Some("invalidValue"),
        _ => None,
    });
    if let Some(scim_type) = scim_type {
        body["scimType"] = json!(scim_type);
    }
    body
}

/// The Lambda handler: every outcome is an HTTP response in SCIM's shapes.
pub async fn handle(state: &AppState, event: ApiEvent) -> Result<ApiResponse, NotAnApiEvent> {
    http_api::serve(event, &SCIM_API, async |request, deadline, _request_id| {
        dispatch(state, request, deadline).await
    })
    .await
}

async fn dispatch(
    state: &AppState,
    request: &ApiRequest,
    deadline: &Deadline,
) -> Result<Answer, ApiError> {
    let matched = http_api::route(ROUTES, request.method(), request.path())?;
    let route = matched.route;
    let base = base_url(request);
    let ok = |body: Value| Ok((StatusCode::OK, JsonBody::Value(body), Headers::new()));
    // What the service is, the same for every tenant: no token needed (RFC 7644 §4).
    match route {
        Route::ServiceProviderConfig => return ok(schema::service_provider_config(&base)),
        Route::ResourceTypes => return ok(list_of(vec![schema::user_resource_type(&base)])),
        Route::ResourceType => {
            return match matched.param("id") {
                Some("User") => ok(schema::user_resource_type(&base)),
                _ => Err(not_found("No such resource type.")),
            };
        }
        Route::Schemas => return ok(list_of(schema::schemas(&base))),
        // RFC 7644 §3.12: an operation the service provider does not support is a 501 (a 404
        // would say the URL is wrong). Bulk is off in ServiceProviderConfig; searching by POST
        // is optional (§3.4.3) and identity providers filter with GET.
        Route::NotImplemented => {
            return Err(ApiError {
                status: StatusCode::NOT_IMPLEMENTED,
                ..ApiError::new(
                    ErrorCode::NotFound,
                    "Not supported: no Bulk operations, and no searching with POST: use GET /Users?filter=….",
                )
            });
        }
        Route::Schema => {
            return match matched.param("id").and_then(|id| schema::schema(&base, id)) {
                Some(schema) => ok(schema),
                None => Err(not_found("No such schema.")),
            };
        }
        _ => {}
    }
    let authorization = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let credential = tokens::credential(authorization).ok_or_else(unauthenticated)?;
    let call = Call {
        state,
        credential,
        deadline,
        route,
        base,
    };
    let user_id = || {
        matched
            .param("id")
            .and_then(|id| UserId::parse(id).ok())
            .ok_or_else(|| not_found("No such user."))
    };
    let projection = || {
        Projection::parse(
            request.query_joined("attributes").as_deref(),
            request.query_joined("excludedAttributes").as_deref(),
        )
    };
    match route {
        Route::ListUsers => {
            let matching = match request.query_joined("filter") {
                Some(raw) => filter::parse(&raw).map_err(|err| {
                    ApiError::new(ErrorCode::ValidationError, format!("filter: {}.", err.0))
                        .scim_type("invalidFilter")
                })?,
                None => UserMatch::default(),
            };
            let (start_index, count) = paging(request)?;
            call.list(&matching, start_index, count, &projection())
                .await
        }
        Route::CreateUser => {
            let body = read_json_body_within(request, MAX_BODY_BYTES)?;
            let new = user::parse_new(&body)?;
            tracing::info!(route = route.name(), "scim create request");
            call.create(&new).await
        }
        Route::GetUser => {
            let view = call.read(user_id()?).await?;
            let body = user_json(&view, &call.base, &projection());
            Ok((StatusCode::OK, JsonBody::Text(body), Headers::new()))
        }
        Route::ReplaceUser | Route::PatchUser => {
            let id = user_id()?;
            let body = read_json_body_within(request, MAX_BODY_BYTES)?;
            tracing::info!(route = route.name(), user_id = %id, "scim change request");
            call.change(id, &body).await
        }
        Route::DeleteUser => {
            let id = user_id()?;
            tracing::info!(route = route.name(), user_id = %id, "scim delete request");
            call.run(&DeleteUser { id }).await?;
            Ok((StatusCode::NO_CONTENT, JsonBody::Empty, Headers::new()))
        }
        _ => unreachable!("discovery answered above"),
    }
}

/// One authenticated SCIM request.
struct Call<'a> {
    state: &'a AppState,
    credential: Credential,
    deadline: &'a Deadline,
    route: Route,
    /// The service's URL up to `/scim/v2`.
    base: String,
}

impl Call<'_> {
    async fn run<O: Operation<Error = LifecycleError>>(
        &self,
        operation: &O,
    ) -> Result<O::Output, ApiError> {
        let outcome = flow::run(self.state, &self.credential, operation, None, self.deadline)
            .await
            .map_err(|err| self.refused(&err))?;
        match outcome {
            Outcome::Done(done) => Ok(done),
            Outcome::Replayed(_) => unreachable!("SCIM requests carry no idempotency key"),
        }
    }

    async fn read(&self, id: UserId) -> Result<UserView, ApiError> {
        lifecycle::user(self.state, &self.credential, id, self.deadline)
            .await
            .map_err(|err| self.refused(&err))
    }

    async fn list(
        &self,
        matching: &UserMatch,
        start_index: usize,
        count: usize,
        projection: &Projection,
    ) -> Result<Answer, ApiError> {
        let (total, users) = lifecycle::matching_users(
            self.state,
            &self.credential,
            matching,
            start_index - 1,
            count,
            self.deadline,
        )
        .await
        .map_err(|err| self.refused(&err))?;
        let body = list_json(total, start_index, &users, &self.base, projection);
        Ok((StatusCode::OK, JsonBody::Text(body), Headers::new()))
    }

    /// The user, its login and (unless the identity provider sent a password or the user
    /// starts deactivated) the invitation; answered from what was created, with no read back.
    async fn create(&self, new: &NewScimUser) -> Result<Answer, ApiError> {
        let operation = CreateUser::new(&new.user)
            .with_password(new.password.as_ref())
            .active(new.active);
        let created = self.run(&operation).await?;
        let view = created_view(new, &created);
        let location = location(&self.base, &view);
        let body = user_json(&view, &self.base, &Projection::default());
        let headers = HeaderValue::from_str(&location)
            .map(|value| vec![(http::header::LOCATION, value)])
            .unwrap_or_default();
        Ok((StatusCode::CREATED, JsonBody::Text(body), headers))
    }

    /// A PUT or PATCH: the user as it is, the request applied to it, and what differs run as
    /// one change. Without an ETag (not supported) two changes race as two admins' would: the
    /// later wins, each whole.
    async fn change(&self, id: UserId, body: &Value) -> Result<Answer, ApiError> {
        let current = self.read(id).await?;
        let state = UserState::of(&current);
        let wanted = match self.route {
            Route::ReplaceUser => user::parse_replacement(body, &state)?,
            _ => user::apply_patch(body, &state)?,
        };
        let changes = state.changes_to(&wanted)?;
        let view = if changes == UserChanges::default() {
            current
        } else {
            let changes = &changes;
            self.run(&ChangeUser { id, changes }).await?
        };
        let body = user_json(&view, &self.base, &Projection::default());
        Ok((StatusCode::OK, JsonBody::Text(body), Headers::new()))
    }

    /// The answer to `err`, logged as the admin API logs its failures.
    fn refused(&self, err: &LifecycleError) -> ApiError {
        let api = answer(err, self.route);
        if let (true, LifecycleError::Failed { failure, .. }) = (api.status.is_server_error(), err)
        {
            metrics::count(Metric::Rollbacks, 1, Some(("Step", failure.step().name())));
        }
        if err.compensation() == Compensation::Failed {
            tracing::error!(
                route = self.route.name(),
                "an auth0 change was left for the cleanup job"
            );
        }
        http_api::log_server_error(&api, err, self.route.name());
        api
    }
}

/// The user view of what a create made, as reading it back would show it.
fn created_view(new: &NewScimUser, created: &CreatedUser) -> UserView {
    let employee = match (&new.user.employee, created.employee_id) {
        (EmployeeRequest::Create(employee), Some(id)) => Some(EmployeeView {
            id,
            first_name: employee.first_name.clone(),
            last_name: employee.last_name.clone(),
            department: None,
            job_title: None,
            employment_type: None,
        }),
        _ => None,
    };
    UserView {
        user: UserRecord {
            id: created.id,
            tenant_id: created.tenant_id,
            email: created.email.as_str().to_string(),
            role: created.role,
            auth0: Auth0Link::Linked(created.auth0_user_id.clone()),
            is_active: new.active,
            setup_completed_at: new.password.as_ref().map(|_| created.created_at),
            created_at: created.created_at,
            updated_at: created.created_at,
            external_id: new.user.external_id.clone(),
        },
        created_by: None,
        created_by_email: None,
        employee,
        permissions: Vec::new(),
    }
}

/// `startIndex` (1-based, default 1) and `count` (default and most [`MAX_RESULTS`]; `0` asks
/// for the total only). Out-of-range values are brought into range as RFC 7644 §3.4.2.4
/// says; what is no integer at all is `invalidValue`.
fn paging(request: &ApiRequest) -> Result<(usize, usize), ApiError> {
    let number = |name: &str| -> Result<Option<i128>, ApiError> {
        let Some(raw) = request.query(name) else {
            return Ok(None);
        };
        let raw = raw.trim();
        let digits = raw.strip_prefix('-').unwrap_or(raw);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ScimFault::invalid_value(format!("{name}: must be an integer.")).into());
        }
        // Beyond any page: the largest value does.
        Ok(Some(raw.parse::<i128>().unwrap_or(
            if raw.starts_with('-') {
                i128::MIN
            } else {
                i128::MAX
            },
        )))
    };
    // An offset past every tenant's users, and small enough for Postgres's bigint.
    const LAST_START: i128 = 1 << 40;
    let start = number("startIndex")?.unwrap_or(1).clamp(1, LAST_START) as usize;
    let count = number("count")?
        .unwrap_or(MAX_RESULTS as i128)
        .clamp(0, MAX_RESULTS as i128) as usize;
    Ok((start, count))
}

/// A `ListResponse` of documents that are all there is (discovery).
fn list_of(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [schema::LIST_RESPONSE],
        "totalResults": resources.len(),
        "startIndex": 1,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// The service's URL up to `/scim/v2`, for `Location` and `meta.location`: the host the
/// request came to (API Gateway's `Host` and `X-Forwarded-Proto`), and the path up to the
/// SCIM root (a stage or custom base path kept). A host header that is no host name is not
/// echoed.
fn base_url(request: &ApiRequest) -> String {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let host = header("host")
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .unwrap_or("localhost");
    let scheme = match header("x-forwarded-proto") {
        Some(p) if p.eq_ignore_ascii_case("http") => "http",
        _ => "https",
    };
    let path = request.path();
    let root = path
        .to_ascii_lowercase()
        .find("/scim/v2")
        .map_or(0, |at| at + "/scim/v2".len());
    format!("{scheme}://{host}{}", &path[..root])
}

fn not_found(detail: &str) -> ApiError {
    ApiError::new(ErrorCode::NotFound, detail)
}

/// The one answer to a missing, malformed, unknown or revoked token.
fn unauthenticated() -> ApiError {
    ApiError {
        bearer_challenge: true,
        ..ApiError::new(
            ErrorCode::Unauthenticated,
            "A valid SCIM token is required: Authorization: Bearer <token>.",
        )
    }
}

/// The answer to an operation's error, in SCIM's terms.
fn answer(err: &LifecycleError, route: Route) -> ApiError {
    use LifecycleError as E;
    let taken = || {
        ApiError::new(
            ErrorCode::UserAlreadyExists,
            "userName: a user with this userName already exists.",
        )
        .scim_type("uniqueness")
    };
    match err {
        E::Denied(Denied::InvalidToken) => unauthenticated(),
        E::Denied(Denied::RoleNotAllowed(_)) => ApiError::new(
            ErrorCode::RoleNotAllowed,
            "role: OWNER is given in the admin panel only.",
        ),
        E::Denied(Denied::OwnerProtected) => ApiError::new(
            ErrorCode::OwnerProtected,
            "This user is an OWNER of the organisation: it is managed in the admin panel only.",
        ),
        E::Denied(denied) => ApiError::new(ErrorCode::NotAnAdmin, denied.to_string()),
        // Another address's owner, in this tenant or another, or a login made elsewhere: one
        // answer, which says nothing more.
        E::EmailTaken | E::Auth0UserExists => taken(),
        E::CreationInProgress if route == Route::CreateUser => taken(),
        E::UserNotFound | E::CreationInProgress => not_found("No such user."),
        E::Busy(_) => ApiError {
            retry_after: Some(2),
            ..ApiError::new(
                ErrorCode::UserChangeInProgress,
                "Another change to this user is still in progress; try again in a moment.",
            )
        },
        E::WeakPassword(message) => ScimFault::invalid_value(format!("password: {message}")).into(),
        E::Key(_)
        | E::UnknownPages(_)
        | E::EmployeeNotFound
        | E::EmployeeAlreadyLinked
        | E::AlreadyActivated
        | E::UserInactive
        | E::TokenNotFound => ApiError::new(ErrorCode::InternalError, err.to_string()),
        // Auth0's rate limit is spent (its client already waited what the deadline allowed):
        // SCIM clients back off on a 429 and retry.
        E::Failed {
            failure:
                failure @ Failure::Auth0 {
                    source: Auth0Error::RateLimited { .. },
                    ..
                },
            compensation,
        } => ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after: Some(1),
            ..dependency::answer(failure, *compensation, route.outcome())
        },
        E::Failed {
            failure,
            compensation,
        } => dependency::answer(failure, *compensation, route.outcome()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_under_any_base_path() {
        let route = |method, path| http_api::route(ROUTES, &method, path).map(|m| m.route);
        assert_eq!(
            route(Method::GET, "/prod/scim/v2/Users"),
            Ok(Route::ListUsers)
        );
        assert_eq!(
            route(Method::PATCH, "/scim/v2/Users/42"),
            Ok(Route::PatchUser)
        );
        assert_eq!(
            route(Method::GET, "/scim/v2/Groups").unwrap_err().status,
            StatusCode::NOT_FOUND
        );
        // Searching by POST is routed (to answer 501), at the root and under /Users.
        assert_eq!(
            route(Method::POST, "/scim/v2/.search"),
            Ok(Route::NotImplemented)
        );
        assert_eq!(
            route(Method::POST, "/prod/scim/v2/Users/.search"),
            Ok(Route::NotImplemented)
        );
        assert_eq!(
            route(Method::POST, "/scim/v2/Users/42").unwrap_err().status,
            StatusCode::METHOD_NOT_ALLOWED
        );
    }

    #[test]
    fn an_error_is_in_scim_s_shape_with_a_string_status() {
        let body = error_body(
            &ScimFault::mutability("userName: cannot be changed.").into(),
            "r1",
        );
        assert_eq!(
            body,
            json!({
                "schemas": [schema::ERROR],
                "status": "400",
                "scimType": "mutability",
                "detail": "userName: cannot be changed.",
            })
        );
        let missing = error_body(&unauthenticated(), "r1");
        assert_eq!(missing["status"], "401");
        assert!(missing.get("scimType").is_none());
    }
}
