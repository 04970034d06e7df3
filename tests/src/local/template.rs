//! What the local gateway takes from `template.yaml`: the HTTP APIs (their JWT authorizers
//! and CORS configuration) and every function event of type `HttpApi` (method, path, payload
//! version, timeout, authorizer), with `!Ref`s to parameters resolved from the values the
//! local stack gives (like `sam local start-api --parameter-overrides`) or the template's
//! defaults. Nothing here is a second list of the routes: a route added to the template is
//! served by the next `make dev`.

use std::collections::HashMap;
use std::time::Duration;

use serde_yaml_ng::{Mapping, Value};

/// One `AWS::Serverless::HttpApi` (or the implicit one SAM makes for events without `ApiId`).
#[derive(Debug, Clone)]
pub struct HttpApi {
    pub id: String,
    /// The authorizer of routes that name none (`Auth.DefaultAuthorizer`).
    pub default_authorizer: Option<String>,
    pub authorizers: HashMap<String, JwtAuthorizer>,
    pub cors: Option<Cors>,
}

/// A JWT authorizer (`Auth.Authorizers.<name>.JwtConfiguration`).
#[derive(Debug, Clone)]
pub struct JwtAuthorizer {
    pub name: String,
    /// The request header that carries the token (`$request.header.Authorization`), lower case.
    pub header: String,
    pub issuer: String,
    pub audience: Vec<String>,
}

/// `CorsConfiguration` of an HTTP API.
#[derive(Debug, Clone, Default)]
pub struct Cors {
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<u64>,
    pub allow_credentials: bool,
}

/// One `HttpApi` event of a function: a route of its API.
#[derive(Debug, Clone)]
pub struct Route {
    pub api: String,
    /// Upper case; `ANY` matches every method.
    pub method: String,
    /// As in the template, e.g. `/api/direct-users/{id}`.
    pub path: String,
    /// The function's binary (`Metadata.BuildProperties.Binary`), the name `cargo lambda
    /// watch` serves it under.
    pub function: String,
    pub payload_version: String,
    pub timeout: Duration,
    /// The authorizer's name, `None` for a public route.
    pub authorizer: Option<String>,
    pub scopes: Vec<String>,
}

impl Route {
    /// `METHOD /path`, the event's `routeKey`.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

#[derive(Debug, Clone)]
pub struct Template {
    pub apis: Vec<HttpApi>,
    pub routes: Vec<Route>,
}

/// SAM's name for the API of `HttpApi` events that name none.
const IMPLICIT_API: &str = "ServerlessHttpApi";
/// An HTTP API integration's default and largest timeout.
const DEFAULT_TIMEOUT_MS: u64 = 30_000;

impl Template {
    pub fn from_file(
        path: &std::path::Path,
        parameters: &HashMap<String, String>,
    ) -> Result<Template, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
        Self::parse(&text, parameters).map_err(|err| format!("{}: {err}", path.display()))
    }

    /// Reads the HTTP APIs and routes of a SAM template; `parameters` override its defaults.
    pub fn parse(text: &str, parameters: &HashMap<String, String>) -> Result<Template, String> {
        let doc: Value = serde_yaml_ng::from_str(text).map_err(|err| err.to_string())?;
        let resolver = Resolver::new(&doc, parameters);
        let resources = doc
            .get("Resources")
            .and_then(Value::as_mapping)
            .ok_or("no Resources")?;

        let mut apis = Vec::new();
        let mut routes = Vec::new();
        for (id, resource) in resources {
            let id = id.as_str().unwrap_or_default();
            match resource.get("Type").and_then(Value::as_str) {
                Some("AWS::Serverless::HttpApi") => apis.push(resolver.http_api(id, resource)?),
                Some("AWS::Serverless::Function") => {
                    routes.extend(resolver.function_routes(id, resource)?);
                }
                _ => {}
            }
        }
        if routes.iter().any(|route| route.api == IMPLICIT_API) {
            apis.push(HttpApi {
                id: IMPLICIT_API.into(),
                default_authorizer: None,
                authorizers: HashMap::new(),
                cors: None,
            });
        }
        let template = Template { apis, routes }.resolve_authorizers();
        for route in &template.routes {
            let api = template
                .apis
                .iter()
                .find(|api| api.id == route.api)
                .ok_or_else(|| format!("{}: no HttpApi {}", route.key(), route.api))?;
            if let Some(name) = &route.authorizer
                && !api.authorizers.contains_key(name)
            {
                return Err(format!(
                    "{}: no authorizer {name} in {}",
                    route.key(),
                    api.id
                ));
            }
        }
        Ok(template)
    }

    pub fn api(&self, id: &str) -> Option<&HttpApi> {
        self.apis.iter().find(|api| api.id == id)
    }
}

/// Resolves `!Ref` to parameters (given values, else the template's `Default`) and to
/// resources (their logical id); any other intrinsic in a field the gateway reads is an error.
struct Resolver<'a> {
    declared: Option<&'a Mapping>,
    given: &'a HashMap<String, String>,
    resources: Option<&'a Mapping>,
}

impl<'a> Resolver<'a> {
    fn new(doc: &'a Value, given: &'a HashMap<String, String>) -> Self {
        Resolver {
            declared: doc.get("Parameters").and_then(Value::as_mapping),
            given,
            resources: doc.get("Resources").and_then(Value::as_mapping),
        }
    }

    /// The value of parameter `name` and whether it is a list type.
    fn parameter(&self, name: &str) -> Result<(String, bool), String> {
        let declared = self
            .declared
            .and_then(|params| params.get(name))
            .ok_or_else(|| format!("!Ref {name}: no such parameter or resource"))?;
        let kind = declared.get("Type").and_then(Value::as_str).unwrap_or("");
        let is_list = kind == "CommaDelimitedList" || kind.starts_with("List<");
        if let Some(value) = self.given.get(name) {
            return Ok((value.clone(), is_list));
        }
        match declared.get("Default") {
            Some(Value::String(text)) => Ok((text.clone(), is_list)),
            Some(Value::Number(number)) => Ok((number.to_string(), is_list)),
            Some(Value::Bool(flag)) => Ok((flag.to_string(), is_list)),
            _ => Err(format!(
                "parameter {name} has no default: the local stack must give it a value"
            )),
        }
    }

    /// A scalar field: a plain value or `!Ref` to a parameter or resource.
    fn scalar(&self, value: &Value, what: &str) -> Result<String, String> {
        match value {
            Value::String(text) => Ok(text.clone()),
            Value::Number(number) => Ok(number.to_string()),
            Value::Bool(flag) => Ok(flag.to_string()),
            Value::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                let target = tagged.value.as_str().unwrap_or_default();
                if tag.trim_start_matches('!') != "Ref" {
                    return Err(format!(
                        "{what}: {tag} is not supported by the local gateway"
                    ));
                }
                if self.resources.is_some_and(|r| r.contains_key(target)) {
                    return Ok(target.to_string());
                }
                Ok(self.parameter(target)?.0)
            }
            other => Err(format!("{what}: expected a value, found {other:?}")),
        }
    }

    /// A list field: a sequence of scalars, or `!Ref` to a list parameter (comma-separated).
    fn list(&self, value: Option<&Value>, what: &str) -> Result<Vec<String>, String> {
        match value {
            None => Ok(Vec::new()),
            Some(Value::Sequence(items)) => {
                items.iter().map(|item| self.scalar(item, what)).collect()
            }
            Some(Value::Tagged(tagged))
                if tagged.tag.to_string().trim_start_matches('!') == "Ref" =>
            {
                let name = tagged.value.as_str().unwrap_or_default();
                let (text, is_list) = self.parameter(name)?;
                Ok(if is_list {
                    text.split(',')
                        .map(str::trim)
                        .filter(|item| !item.is_empty())
                        .map(str::to_string)
                        .collect()
                } else {
                    vec![text]
                })
            }
            Some(other) => Ok(vec![self.scalar(other, what)?]),
        }
    }

    fn http_api(&self, id: &str, resource: &Value) -> Result<HttpApi, String> {
        let properties = resource.get("Properties");
        let auth = properties.and_then(|p| p.get("Auth"));
        let mut authorizers = HashMap::new();
        if let Some(declared) = auth
            .and_then(|auth| auth.get("Authorizers"))
            .and_then(Value::as_mapping)
        {
            for (name, authorizer) in declared {
                let name = name.as_str().unwrap_or_default().to_string();
                let what = format!("{id}.Auth.Authorizers.{name}");
                let jwt = authorizer
                    .get("JwtConfiguration")
                    .ok_or_else(|| format!("{what}: only JWT authorizers are supported"))?;
                let source = match authorizer.get("IdentitySource") {
                    Some(value) => self.scalar(value, &what)?,
                    None => "$request.header.Authorization".into(),
                };
                let header = source
                    .strip_prefix("$request.header.")
                    .ok_or_else(|| format!("{what}: IdentitySource {source} is not a header"))?
                    .to_ascii_lowercase();
                let issuer = jwt
                    .get("issuer")
                    .ok_or_else(|| format!("{what}: no issuer"))
                    .and_then(|value| self.scalar(value, &what))?;
                let audience = self.list(jwt.get("audience"), &what)?;
                authorizers.insert(
                    name.clone(),
                    JwtAuthorizer {
                        name,
                        header,
                        issuer,
                        audience,
                    },
                );
            }
        }
        let default_authorizer = match auth.and_then(|auth| auth.get("DefaultAuthorizer")) {
            Some(value) => Some(self.scalar(value, &format!("{id}.Auth.DefaultAuthorizer"))?),
            None => None,
        };
        let cors = match properties.and_then(|p| p.get("CorsConfiguration")) {
            None => None,
            Some(config) => Some(self.cors(id, config)?),
        };
        Ok(HttpApi {
            id: id.to_string(),
            default_authorizer,
            authorizers,
            cors,
        })
    }

    fn cors(&self, id: &str, config: &Value) -> Result<Cors, String> {
        let what = format!("{id}.CorsConfiguration");
        // `CorsConfiguration: true` allows every origin, method and header.
        if config.as_bool() == Some(true) {
            let any = vec!["*".to_string()];
            return Ok(Cors {
                allow_origins: any.clone(),
                allow_methods: any.clone(),
                allow_headers: any,
                ..Cors::default()
            });
        }
        let max_age = match config.get("MaxAge") {
            Some(value) => Some(
                self.scalar(value, &what)?
                    .parse()
                    .map_err(|_| format!("{what}: MaxAge is not a number"))?,
            ),
            None => None,
        };
        let allow_credentials = match config.get("AllowCredentials") {
            Some(value) => self.scalar(value, &what)? == "true",
            None => false,
        };
        let lower =
            |items: Vec<String>| items.into_iter().map(|h| h.to_ascii_lowercase()).collect();
        let upper =
            |items: Vec<String>| items.into_iter().map(|m| m.to_ascii_uppercase()).collect();
        Ok(Cors {
            allow_origins: self.list(config.get("AllowOrigins"), &what)?,
            allow_methods: upper(self.list(config.get("AllowMethods"), &what)?),
            allow_headers: lower(self.list(config.get("AllowHeaders"), &what)?),
            expose_headers: lower(self.list(config.get("ExposeHeaders"), &what)?),
            max_age,
            allow_credentials,
        })
    }

    fn function_routes(&self, id: &str, resource: &Value) -> Result<Vec<Route>, String> {
        let function = resource
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(Value::as_str)
            .unwrap_or(id)
            .to_string();
        let Some(events) = resource
            .get("Properties")
            .and_then(|p| p.get("Events"))
            .and_then(Value::as_mapping)
        else {
            return Ok(Vec::new());
        };
        let mut routes = Vec::new();
        for (name, event) in events {
            if event.get("Type").and_then(Value::as_str) != Some("HttpApi") {
                continue;
            }
            let what = format!("{id}.Events.{}", name.as_str().unwrap_or_default());
            let properties = event.get("Properties");
            let field = |key: &str| properties.and_then(|p| p.get(key));
            let api = match field("ApiId") {
                Some(value) => self.scalar(value, &what)?,
                None => IMPLICIT_API.to_string(),
            };
            let method = match field("Method") {
                Some(value) => self.scalar(value, &what)?.to_ascii_uppercase(),
                None => "ANY".into(),
            };
            let method = if method == "X-AMAZON-APIGATEWAY-ANY-METHOD" {
                "ANY".into()
            } else {
                method
            };
            let path = match field("Path") {
                Some(value) => self.scalar(value, &what)?,
                None => {
                    return Err(format!(
                        "{what}: a route without a Path ($default) is not supported"
                    ));
                }
            };
            let payload_version = match field("PayloadFormatVersion") {
                Some(value) => self.scalar(value, &what)?,
                None => "2.0".into(),
            };
            if payload_version != "2.0" {
                return Err(format!("{what}: only payload format 2.0 is supported"));
            }
            let timeout_ms = match field("TimeoutInMillis") {
                Some(value) => self
                    .scalar(value, &what)?
                    .parse()
                    .map_err(|_| format!("{what}: TimeoutInMillis is not a number"))?,
                None => DEFAULT_TIMEOUT_MS,
            };
            let auth = field("Auth");
            let named = match auth.and_then(|auth| auth.get("Authorizer")) {
                Some(value) => Some(self.scalar(value, &what)?),
                None => None,
            };
            let scopes = self.list(auth.and_then(|a| a.get("AuthorizationScopes")), &what)?;
            routes.push(Route {
                api,
                method,
                path,
                function: function.clone(),
                payload_version,
                timeout: Duration::from_millis(timeout_ms),
                // Resolved against the API's default below.
                authorizer: named,
                scopes,
            });
        }
        Ok(routes)
    }
}

impl Template {
    /// Each route's authorizer: the one it names, `NONE` for none, else its API's default.
    fn resolve_authorizers(mut self) -> Template {
        for route in &mut self.routes {
            let default = self
                .apis
                .iter()
                .find(|api| api.id == route.api)
                .and_then(|api| api.default_authorizer.clone());
            route.authorizer = match route.authorizer.take() {
                Some(name) if name == "NONE" => None,
                Some(name) => Some(name),
                None => default,
            };
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> Template {
        let text = include_str!("../../../template.yaml");
        let parameters = HashMap::from([
            (
                "Auth0Issuer".to_string(),
                "http://127.0.0.1:4010/".to_string(),
            ),
            (
                "Auth0Audience".to_string(),
                "https://api.acme.test".to_string(),
            ),
            (
                "CorsAllowedOrigins".to_string(),
                "http://localhost:3000, https://admin.acme.test".to_string(),
            ),
            (
                "FrontendOrigin".to_string(),
                "http://localhost:3000".to_string(),
            ),
        ]);
        Template::parse(text, &parameters).unwrap()
    }

    #[test]
    fn reads_every_http_route_of_the_project_template_with_its_authorizer() {
        let template = template();
        let mut keys: Vec<(String, String, Option<String>)> = template
            .routes
            .iter()
            .map(|r| (r.key(), r.function.clone(), r.authorizer.clone()))
            .collect();
        keys.sort();
        let admin = |key: &str| {
            (
                key.to_string(),
                "create-user".to_string(),
                Some("Auth0Jwt".to_string()),
            )
        };
        let public = |key: &str| (key.to_string(), "set-password".to_string(), None);
        // The SCIM API has no authorizer: the function checks its own tokens.
        let scim = |key: &str| (key.to_string(), "scim".to_string(), None);
        assert_eq!(
            keys,
            [
                scim("ANY /scim/v2/{proxy+}"),
                admin("DELETE /api/direct-users/{id}"),
                admin("DELETE /api/scim-tokens/{id}"),
                admin("GET /api/direct-users"),
                admin("GET /api/direct-users/{id}"),
                admin("GET /api/scim-tokens"),
                admin("PATCH /api/direct-users/{id}"),
                public("POST /api/auth/set-password"),
                public("POST /api/auth/set-password/verify"),
                admin("POST /api/direct-users/check-exists"),
                admin("POST /api/direct-users/create"),
                admin("POST /api/direct-users/resend-invitation"),
                admin("POST /api/direct-users/{id}/deactivate"),
                admin("POST /api/direct-users/{id}/reactivate"),
                admin("POST /api/scim-tokens"),
            ]
        );
        assert!(
            template
                .routes
                .iter()
                .all(|r| r.timeout == Duration::from_secs(29))
        );
    }

    #[test]
    fn resolves_the_authorizer_and_cors_from_the_parameters() {
        let template = template();
        let admin = template.api("AdminApi").unwrap();
        let jwt = &admin.authorizers["Auth0Jwt"];
        assert_eq!(jwt.header, "authorization");
        assert_eq!(jwt.issuer, "http://127.0.0.1:4010/");
        assert_eq!(jwt.audience, ["https://api.acme.test"]);
        let cors = admin.cors.as_ref().unwrap();
        assert_eq!(
            cors.allow_origins,
            ["http://localhost:3000", "https://admin.acme.test"]
        );
        assert_eq!(cors.allow_methods, ["GET", "POST", "PATCH", "DELETE"]);
        assert_eq!(
            cors.allow_headers,
            ["authorization", "content-type", "idempotency-key"]
        );
        assert_eq!(cors.expose_headers, ["idempotent-replayed", "retry-after"]);
        assert_eq!(cors.max_age, Some(600));

        let public = template.api("PublicApi").unwrap();
        assert!(public.authorizers.is_empty());
        let cors = public.cors.as_ref().unwrap();
        assert_eq!(cors.allow_origins, ["http://localhost:3000"]);
        assert_eq!(cors.allow_methods, ["POST"]);
        assert_eq!(cors.allow_headers, ["content-type"]);
    }

    #[test]
    fn a_parameter_without_default_or_value_is_named() {
        let text = include_str!("../../../template.yaml");
        let err = Template::parse(text, &HashMap::new()).unwrap_err();
        assert!(err.contains("has no default"), "{err}");
    }
}
