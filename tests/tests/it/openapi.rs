//! `openapi.yaml` is what the admin panel team builds against, so it is checked against the
//! handler: real answers validate against the schema documented for their status, every error
//! code the handler can produce is documented under that status, and the examples hold.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{Value, json};
use shared::admin_api::request::parse_new_user;
use shared::http_api::ErrorCode;
use testkit::doubles::Fault;
use testkit::harness::{
    CHECK_PATH, CREATE_PATH, Response, TestStack, api_event, create_event, seed,
};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The OpenAPI document as JSON.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let text = std::fs::read_to_string(repo_root().join("openapi.yaml"))
            .expect("openapi.yaml is at the repository root");
        serde_yaml_ng::from_str(&text).expect("openapi.yaml is valid YAML")
    })
}

/// Follows a local `$ref` (`#/components/...`) once.
fn resolve(value: &Value) -> &Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => document()
            .pointer(reference.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("openapi.yaml: dangling $ref {reference}")),
        None => value,
    }
}

/// Errors of `instance` against `schema`, which may refer to anything in the document.
fn schema_errors(schema: &Value, instance: &Value) -> Vec<String> {
    // The whole document is the root resource, so its `#/components/...` refs resolve.
    let mut root = document().clone();
    root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    root["allOf"] = json!([schema]);
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("openapi.yaml: schema does not compile: {e}"));
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn operation(path: &str) -> &'static Value {
    operation_at("POST", path)
}

fn operation_at(method: &str, path: &str) -> &'static Value {
    let operation = &document()["paths"][path][method.to_ascii_lowercase()];
    assert!(
        operation.is_object(),
        "openapi.yaml documents no {method} {path}"
    );
    operation
}

/// The documented response of `method` `path` with `status`.
fn response_spec(method: &str, path: &str, status: u16) -> &'static Value {
    let spec = &operation_at(method, path)["responses"][status.to_string()];
    assert!(
        spec.is_object(),
        "openapi.yaml documents no {status} for {method} {path}"
    );
    resolve(spec)
}

/// Checks an answer of the handler against what openapi.yaml says POST `path` answers with
/// its status: the body against the schema, the documented headers against theirs.
pub fn assert_documented(path: &str, response: &Response, label: &str) {
    assert_documented_at("POST", path, response, label)
}

/// As [`assert_documented`], for `method` on the documented path `path` (a template such as
/// `/api/direct-users/{id}`).
pub fn assert_documented_at(method: &str, path: &str, response: &Response, label: &str) {
    let spec = response_spec(method, path, response.status);
    let schema = &spec["content"]["application/json"]["schema"];
    let errors = schema_errors(schema, &response.body);
    assert!(
        errors.is_empty(),
        "{label}: the {} answer of {method} {path} does not match openapi.yaml:\n  {}\nbody: {}",
        response.status,
        errors.join("\n  "),
        response.body
    );
    if let Some(headers) = spec["headers"].as_object() {
        for (name, header) in headers {
            let value = &response.headers[name.to_ascii_lowercase()];
            // OpenAPI headers are optional unless marked required; ours are required unless
            // marked `required: false` (a replay marker, present on some answers only).
            if resolve(header)["required"] == Value::Bool(false) && value.is_null() {
                continue;
            }
            assert!(
                value.is_string(),
                "{label}: header {name} is documented but missing: {}",
                response.headers
            );
            let errors = schema_errors(&resolve(header)["schema"], value);
            assert!(errors.is_empty(), "{label}: header {name}: {errors:?}");
        }
    }
}

fn request_schema(path: &str) -> &'static Value {
    &operation(path)["requestBody"]["content"]["application/json"]["schema"]
}

/// Whether a request body is valid according to openapi.yaml.
pub fn request_errors(path: &str, body: &Value) -> Vec<String> {
    schema_errors(request_schema(path), body)
}

#[tokio::test]
async fn the_handlers_answers_match_the_schema_documented_for_their_status() {
    let stack = TestStack::start().await;
    let admin = seed::ACME_ADMIN_SUB;
    let check =
        |sub: &str, body: Value| api_event("POST", CHECK_PATH, Some(sub), Some(&body.to_string()));

    // (label, path the answer is documented under, event, expected status, expected code)
    let mut cases: Vec<(&str, &str, Value, u16, &str)> = vec![
        (
            "check-exists, taken",
            CHECK_PATH,
            check(admin, json!({"email": "Admin@Acme.test"})),
            200,
            "",
        ),
        (
            "check-exists, free",
            CHECK_PATH,
            check(admin, json!({"email": "free@acme.test"})),
            200,
            "",
        ),
        (
            "check-exists, bad email",
            CHECK_PATH,
            check(admin, json!({"email": "nope"})),
            400,
            "VALIDATION_ERROR",
        ),
        (
            "check-exists, plain user",
            CHECK_PATH,
            check(seed::ACME_USER_SUB, json!({"email": "a@acme.test"})),
            403,
            "NOT_AN_ADMIN",
        ),
        (
            "check-exists, no claims",
            CHECK_PATH,
            api_event("POST", CHECK_PATH, None, Some("{}")),
            401,
            "UNAUTHENTICATED",
        ),
        (
            "create, minimal",
            CREATE_PATH,
            create_event(admin, &json!({"email": "minimal@acme.test"})),
            201,
            "",
        ),
        (
            "create, admin with a new employee",
            CREATE_PATH,
            create_event(
                admin,
                &json!({"email": "with.employee@acme.test", "role": "ADMIN", "create_employee": true, "employee_data": {"firstName": "Ada", "lastName": "Byron"}, "permissions": [{"pageId": seed::PAGE_REPORTS, "canRead": true}]}),
            ),
            201,
            "",
        ),
        (
            "create, malformed JSON",
            CREATE_PATH,
            api_event("POST", CREATE_PATH, Some(admin), Some("{\"email\":")),
            400,
            "INVALID_JSON",
        ),
        (
            "create, a form instead of JSON",
            CREATE_PATH,
            {
                let mut event = create_event(admin, &json!({"email": "form@acme.test"}));
                event["headers"]["content-type"] = json!("application/x-www-form-urlencoded");
                event
            },
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "create, bad field",
            CREATE_PATH,
            create_event(
                admin,
                &json!({"email": "x@acme.test", "permissions": [{"pageId": "7"}]}),
            ),
            400,
            "VALIDATION_ERROR",
        ),
        (
            "create, unknown page",
            CREATE_PATH,
            create_event(
                admin,
                &json!({"email": "x@acme.test", "permissions": [{"pageId": "c0000000-0000-4000-8000-0000000000ff"}]}),
            ),
            400,
            "UNKNOWN_PAGE",
        ),
        (
            "create, no claims",
            CREATE_PATH,
            api_event("POST", CREATE_PATH, None, Some("{}")),
            401,
            "UNAUTHENTICATED",
        ),
        (
            "create, admin asks for owner",
            CREATE_PATH,
            create_event(admin, &json!({"email": "o@acme.test", "role": "OWNER"})),
            403,
            "ROLE_NOT_ALLOWED",
        ),
        (
            "create, inactive caller",
            CREATE_PATH,
            create_event(
                seed::ACME_INACTIVE_ADMIN_SUB,
                &json!({"email": "i@acme.test"}),
            ),
            403,
            "CALLER_INACTIVE",
        ),
        (
            "create, unknown caller",
            CREATE_PATH,
            create_event("auth0|nobody", &json!({"email": "u@acme.test"})),
            403,
            "CALLER_NOT_FOUND",
        ),
        (
            "create, employee of another tenant",
            CREATE_PATH,
            create_event(
                admin,
                &json!({"email": "e@acme.test", "link_employee": true, "employee_id": seed::EMPLOYEE_OTHER_TENANT}),
            ),
            404,
            "EMPLOYEE_NOT_FOUND",
        ),
        // Documented with create's 404: the function's answer to a path it does not serve.
        (
            "unknown path",
            CREATE_PATH,
            api_event(
                "POST",
                "/api/direct-users/42/explode",
                Some(admin),
                Some("{}"),
            ),
            404,
            "NOT_FOUND",
        ),
        (
            "create, GET",
            CREATE_PATH,
            api_event("GET", CREATE_PATH, Some(admin), None),
            405,
            "METHOD_NOT_ALLOWED",
        ),
        (
            "check-exists, PUT",
            CHECK_PATH,
            api_event("PUT", CHECK_PATH, Some(admin), None),
            405,
            "METHOD_NOT_ALLOWED",
        ),
        (
            "create, email taken",
            CREATE_PATH,
            create_event(admin, &json!({"email": "STAFF@acme.test"})),
            409,
            "USER_ALREADY_EXISTS",
        ),
        (
            "create, employee already linked",
            CREATE_PATH,
            create_event(
                admin,
                &json!({"email": "l2@acme.test", "link_employee": true, "employee_id": seed::EMPLOYEE_LINKED}),
            ),
            409,
            "EMPLOYEE_ALREADY_LINKED",
        ),
        (
            "create, body too large",
            CREATE_PATH,
            api_event(
                "POST",
                CREATE_PATH,
                Some(admin),
                Some(&format!(
                    "{{\"email\":\"big@acme.test\",\"pad\":\"{}\"}}",
                    "x".repeat(70_000)
                )),
            ),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
    ];
    // The request examples of the document are sent as they are and must work.
    let examples = operation(CREATE_PATH)["requestBody"]["content"]["application/json"]["examples"]
        .as_object()
        .expect("createUser has request examples");
    for (name, example) in examples {
        let label: &'static str = Box::leak(format!("request example {name}").into_boxed_str());
        cases.push((
            label,
            CREATE_PATH,
            create_event(admin, &example["value"]),
            201,
            "",
        ));
    }
    for (label, path, event, status, code) in cases {
        let response = stack.call(event).await;
        assert_eq!(
            (response.status, response.code()),
            (status, code),
            "{label}: {}",
            response.body
        );
        assert_documented(path, &response, label);
    }

    // Failures of the dependencies, one at a time.
    let failing: [(&str, Fault, bool, u16, &str); 3] = [
        (
            "Auth0 answers 500",
            Fault::status("create_user", 500),
            true,
            502,
            "AUTH0_FAILED",
        ),
        (
            "the email API answers 500",
            Fault::status("send_email", 500).times(2),
            false,
            502,
            "EMAIL_FAILED",
        ),
        (
            "Auth0 drops the connection",
            Fault::drop_connection("create_user"),
            true,
            503,
            "AUTH0_UNAVAILABLE",
        ),
    ];
    for (i, (label, fault, on_auth0, status, code)) in failing.into_iter().enumerate() {
        if on_auth0 {
            stack.auth0.inject(fault);
        } else {
            stack.email.inject(fault);
        }
        let response = stack
            .call(create_event(
                admin,
                &json!({"email": format!("failing{i}@acme.test")}),
            ))
            .await;
        assert_eq!(
            (response.status, response.code()),
            (status, code),
            "{label}: {}",
            response.body
        );
        assert_documented(CREATE_PATH, &response, label);
    }

    // A bug-like database error: a trigger refuses every new user.
    let sql = stack.sql().await;
    sql.batch_execute(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION 'refused'; END $$;
         CREATE TRIGGER refuse BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION refuse();",
    )
    .await
    .unwrap();
    let response = stack
        .call(create_event(admin, &json!({"email": "refused@acme.test"})))
        .await;
    response.assert_answer(500, "INTERNAL_ERROR");
    assert_documented(CREATE_PATH, &response, "a database error");
}

/// `(status, code)` of every code the handlers can answer: the catalogue in `shared::http_api`.
fn codes_in_handler() -> BTreeSet<(u16, String)> {
    ErrorCode::ALL
        .iter()
        .map(|code| (code.status().as_u16(), code.as_str().to_string()))
        .collect()
}

fn enum_of(schema: &Value) -> BTreeSet<String> {
    schema["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("no enum in {schema}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_error_code_of_the_handler_is_documented_under_its_status() {
    let produced = codes_in_handler();
    assert!(
        produced.len() >= 20,
        "the catalogue lists only {produced:?}"
    );
    let schemas = &document()["components"]["schemas"];
    let documented = enum_of(&schemas["ErrorCode"]);
    let mut by_status: BTreeMap<u16, BTreeSet<String>> = BTreeMap::new();
    for (status, code) in &produced {
        by_status.entry(*status).or_default().insert(code.clone());
        assert!(
            documented.contains(code),
            "{code} is not in openapi.yaml's ErrorCode enum"
        );
        let per_status = &schemas[format!("Error{status}")]["allOf"][1]["properties"]["code"];
        assert!(
            enum_of(per_status).contains(code),
            "{code} is answered with {status} but openapi.yaml's Error{status} does not list it"
        );
    }
    let produced_codes: BTreeSet<String> = produced.into_iter().map(|(_, c)| c).collect();
    assert_eq!(
        documented, produced_codes,
        "openapi.yaml's ErrorCode enum lists codes the handler never answers (or misses some)"
    );
    for (status, codes) in by_status {
        let per_status =
            enum_of(&schemas[format!("Error{status}")]["allOf"][1]["properties"]["code"]);
        assert_eq!(
            per_status, codes,
            "Error{status} lists exactly the codes answered with {status}"
        );
    }
}

/// Every `example` / `examples` in the document, with the schema it illustrates.
fn examples() -> Vec<(String, &'static Value, &'static Value)> {
    let mut found = Vec::new();
    for (path, item) in document()["paths"].as_object().unwrap() {
        for method in ["get", "post", "patch", "delete"] {
            let operation = &item[method];
            if operation.is_null() {
                continue;
            }
            let request = &operation["requestBody"]["content"]["application/json"];
            collect_examples(&format!("{method} {path} request"), request, &mut found);
            for (status, response) in operation["responses"].as_object().unwrap() {
                let media = &resolve(response)["content"]["application/json"];
                collect_examples(&format!("{method} {path} {status}"), media, &mut found);
            }
        }
    }
    found
}

fn collect_examples(
    label: &str,
    media: &'static Value,
    found: &mut Vec<(String, &'static Value, &'static Value)>,
) {
    let schema = &media["schema"];
    if media["example"] != Value::Null {
        found.push((label.to_string(), schema, &media["example"]));
    }
    if let Some(named) = media["examples"].as_object() {
        for (name, example) in named {
            found.push((format!("{label} {name}"), schema, &example["value"]));
        }
    }
}

#[test]
fn the_documents_examples_match_their_schemas() {
    let examples = examples();
    assert!(
        examples.len() >= 15,
        "only {} examples found",
        examples.len()
    );
    for (label, schema, example) in examples {
        let errors = schema_errors(schema, example);
        assert!(errors.is_empty(), "example {label}: {errors:?}");
    }
}

#[test]
fn the_request_schema_refuses_what_the_handler_refuses() {
    let page = seed::PAGE_DASHBOARD;
    let accepted = [
        json!({"email": "a@acme.test"}),
        json!({"email": " A@Acme.TEST ", "role": "admin", "permissions": null}),
        json!({"email": "a@acme.test", "role": "", "permissions": format!(r#"[{{"pageId":"{page}"}}]"#)}),
        json!({"email": "a@acme.test", "create_employee": "true", "employee_data": r#"{"firstName":"A","lastName":"B"}"#}),
        json!({"email": "a@acme.test", "link_employee": true, "employee_id": seed::EMPLOYEE_FREE, "unknown": 1}),
    ];
    for body in accepted {
        let errors = request_errors(CREATE_PATH, &body);
        assert!(errors.is_empty(), "{body} should be valid: {errors:?}");
        assert!(parse_new_user(&body).is_ok(), "the handler refuses {body}");
    }
    let refused = [
        json!([]),
        json!({}),
        json!({"email": 5}),
        json!({"email": "not an email"}),
        json!({"email": "a@acme.test", "role": "ROOT"}),
        json!({"email": "a@acme.test", "permissions": {}}),
        json!({"email": "a@acme.test", "permissions": [{"canRead": true}]}),
        json!({"email": "a@acme.test", "permissions": [{"pageId": page, "canRead": "yes"}]}),
        json!({"email": "a@acme.test", "create_employee": true}),
        json!({"email": "a@acme.test", "create_employee": true, "employee_data": {"firstName": "A"}}),
        json!({"email": "a@acme.test", "link_employee": true}),
        json!({"email": "a@acme.test", "link_employee": true, "employee_id": "x"}),
        json!({"email": "a@acme.test", "create_employee": true, "link_employee": true, "employee_data": {"firstName": "A", "lastName": "B"}, "employee_id": seed::EMPLOYEE_FREE}),
    ];
    for body in refused {
        assert!(
            !request_errors(CREATE_PATH, &body).is_empty(),
            "{body} should be refused by the schema, as the handler refuses it"
        );
        assert!(parse_new_user(&body).is_err(), "the handler accepts {body}");
    }
}
