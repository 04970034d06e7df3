//! The Lucene subset user search needs: `field:value`, `field:"value"`, `field:prefix*`,
//! `field:[A TO B]` / `{A TO B}` (mixable, `*` open), a parenthesised sub-query of such
//! clauses joined by `OR`, all joined by `AND`. The normalised profile fields (`email`,
//! `name`, …) compare case-insensitively, as Auth0's do; metadata fields exactly.
//!
//! The product sends `email:"a"`, `(email:"a" OR email:"b")` and
//! `app_metadata.created_by:"x" AND created_at:[A TO B}`; the rest (unquoted values,
//! `prefix*`, date-only bounds, the other normalised fields) is kept for SDK callers.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;

#[derive(Debug, PartialEq)]
pub(super) enum Clause {
    Matches {
        field: String,
        pattern: Pattern,
    },
    Range {
        field: String,
        lower: Bound,
        upper: Bound,
    },
    /// `(a OR b OR …)`: any of them.
    AnyOf(Vec<Clause>),
}

#[derive(Debug, PartialEq)]
pub(super) enum Pattern {
    Exact(String),
    Prefix(String),
}

/// One end of a range; `value: None` is `*`.
#[derive(Debug, PartialEq)]
pub(super) struct Bound {
    value: Option<String>,
    inclusive: bool,
}

impl Clause {
    /// The fields this clause reads.
    pub(super) fn fields(&self) -> Vec<&str> {
        match self {
            Clause::Matches { field, .. } | Clause::Range { field, .. } => vec![field.as_str()],
            Clause::AnyOf(any) => any.iter().flat_map(Clause::fields).collect(),
        }
    }
}

impl Bound {
    /// The bound as an instant and whether it is inclusive (`None` for `*`); `Err` when it is
    /// not a date, so it compares as text or a number.
    pub(super) fn instant(&self) -> Result<Option<(DateTime<Utc>, bool)>, ()> {
        match &self.value {
            None => Ok(None),
            Some(text) => parse_instant(text)
                .map(|at| Some((at, self.inclusive)))
                .ok_or(()),
        }
    }
}

pub(super) fn parse(query: &str) -> Result<Vec<Clause>, String> {
    let tokens = tokenize(query)?;
    let mut clauses = Vec::new();
    for (index, token) in tokens.iter().enumerate() {
        if index % 2 == 1 {
            if token != "AND" {
                return Err(format!("expected AND before \"{token}\""));
            }
        } else {
            clauses.push(parse_clause(token)?);
        }
    }
    if tokens.len() % 2 == 0 && !tokens.is_empty() {
        return Err("query ends with AND".into());
    }
    Ok(clauses)
}

/// Splits on whitespace outside quotes and range brackets.
fn tokenize(query: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut escaped, mut in_range, mut depth) = (false, false, false, 0u32);
    for c in query.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' && quoted {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if !quoted && (c == '[' || c == '{') {
            in_range = true;
        } else if !quoted && (c == ']' || c == '}') {
            in_range = false;
        } else if !quoted && !in_range && c == '(' {
            depth += 1;
        } else if !quoted && !in_range && c == ')' {
            depth = depth.checked_sub(1).ok_or("unbalanced parenthesis")?;
        } else if c.is_whitespace() && !quoted && !in_range && depth == 0 {
            if !current.is_empty() {
                tokens.push(std::mem::take(&mut current));
            }
            continue;
        }
        current.push(c);
    }
    if quoted || in_range || depth > 0 {
        return Err("unbalanced quote, range or parenthesis".into());
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    Ok(tokens)
}

fn parse_clause(token: &str) -> Result<Clause, String> {
    if let Some(inner) = token.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        let tokens = tokenize(inner)?;
        let mut any = Vec::new();
        for (index, token) in tokens.iter().enumerate() {
            match (index % 2, token.as_str()) {
                (1, "OR") => {}
                (1, other) => return Err(format!("expected OR before \"{other}\"")),
                _ => any.push(parse_clause(token)?),
            }
        }
        if tokens.len() % 2 == 0 {
            return Err("a group ends with OR or is empty".into());
        }
        return Ok(Clause::AnyOf(any));
    }
    let Some((field, value)) = token.split_once(':') else {
        return Err(format!("expected field:value, got \"{token}\""));
    };
    let field_ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    if field.is_empty() || !field.chars().all(field_ok) {
        return Err(format!("unsupported field \"{field}\""));
    }
    let field = field.to_string();
    if let Some(inclusive_lower) = match value.chars().next() {
        Some('[') => Some(true),
        Some('{') => Some(false),
        _ => None,
    } {
        let inclusive_upper = match value.chars().last() {
            Some(']') => true,
            Some('}') => false,
            _ => return Err(format!("unterminated range in \"{token}\"")),
        };
        let inner = &value[1..value.len() - 1];
        let Some((lower, upper)) = inner.split_once(" TO ") else {
            return Err(format!("range without TO in \"{token}\""));
        };
        let bound = |text: &str, inclusive| Bound {
            value: Some(unquote(text.trim())).filter(|text| text != "*"),
            inclusive,
        };
        return Ok(Clause::Range {
            field,
            lower: bound(lower, inclusive_lower),
            upper: bound(upper, inclusive_upper),
        });
    }
    if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
        let pattern = Pattern::Exact(unquote(value));
        return Ok(Clause::Matches { field, pattern });
    }
    let pattern = match value.strip_suffix('*') {
        _ if value.is_empty() => return Err(format!("empty value for \"{field}\"")),
        Some(prefix) if !prefix.contains(['*', '?']) => Pattern::Prefix(prefix.to_string()),
        None if !value.contains(['*', '?']) => Pattern::Exact(value.to_string()),
        _ => return Err(format!("unsupported wildcard in \"{token}\"")),
    };
    Ok(Clause::Matches { field, pattern })
}

fn unquote(text: &str) -> String {
    let Some(inner) = text
        .strip_prefix('"')
        .and_then(|text| text.strip_suffix('"'))
    else {
        return text.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' {
            chars.next().unwrap_or(c)
        } else {
            c
        });
    }
    out
}

pub(super) fn matches_all(clauses: &[Clause], doc: &Value) -> bool {
    clauses.iter().all(|clause| matches(clause, doc))
}

/// Auth0 normalises these profile fields: their search is case-insensitive.
const NORMALISED_FIELDS: [&str; 5] = ["email", "name", "given_name", "family_name", "nickname"];

pub(super) fn matches(clause: &Clause, doc: &Value) -> bool {
    match clause {
        Clause::Matches { field, pattern } => {
            let fold = NORMALISED_FIELDS.contains(&field.as_str());
            let norm = |text: &str| {
                if fold {
                    text.to_lowercase()
                } else {
                    text.to_string()
                }
            };
            field_values(doc, field).iter().any(|value| match pattern {
                Pattern::Exact(expected) => norm(value) == norm(expected),
                Pattern::Prefix(prefix) => norm(value).starts_with(&norm(prefix)),
            })
        }
        Clause::AnyOf(any) => any.iter().any(|clause| matches(clause, doc)),
        Clause::Range {
            field,
            lower,
            upper,
        } => (field_values(doc, field).iter()).any(|value| in_range(value, lower, upper)),
    }
}

/// Dates compare as instants and numbers as numbers (`logins_count:[2 TO 10]`) when both sides
/// parse as such, anything else as text.
fn in_range(value: &str, lower: &Bound, upper: &Bound) -> bool {
    let instant = parse_instant(value);
    let number = value.parse::<f64>().ok();
    let compare = |bound: &str| match (instant, parse_instant(bound)) {
        (Some(value), Some(bound)) => value.cmp(&bound),
        _ => match (number, bound.parse::<f64>().ok()) {
            (Some(value), Some(bound)) => value.total_cmp(&bound),
            _ => value.cmp(bound),
        },
    };
    let above = lower.value.as_deref().is_none_or(|bound| {
        let order = compare(bound);
        order.is_gt() || (lower.inclusive && order.is_eq())
    });
    let below = upper.value.as_deref().is_none_or(|bound| {
        let order = compare(bound);
        order.is_lt() || (upper.inclusive && order.is_eq())
    });
    above && below
}

fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Some(instant.with_timezone(&Utc));
    }
    if let Ok(naive) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(naive.and_utc());
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc())
}

/// The text values at a dotted path; arrays match if any element does.
pub(super) fn field_values(doc: &Value, path: &str) -> Vec<String> {
    let mut values = vec![doc];
    for segment in path.split('.') {
        values = values
            .into_iter()
            .flat_map(|value| match value {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            })
            .filter_map(|value| value.get(segment))
            .collect();
    }
    let mut texts = Vec::new();
    for value in values {
        match value {
            Value::Array(items) => texts.extend(items.iter().filter_map(scalar_text)),
            other => texts.extend(scalar_text(other)),
        }
    }
    texts
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(_) | Value::Bool(_) => Some(value.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn clauses_joined_by_and_all_have_to_match() {
        let clauses = parse(r#"app_metadata.created_by:"signup api" AND email:a*"#).unwrap();
        let doc = json!({"email": "ann@x.io", "app_metadata": {"created_by": "signup api"}});
        assert!(matches_all(&clauses, &doc));
        let other = json!({"email": "bob@x.io", "app_metadata": {"created_by": "signup api"}});
        assert!(!matches_all(&clauses, &other));
    }

    #[test]
    fn date_ranges_honour_inclusive_and_exclusive_ends() {
        let doc = json!({"created_at": "2024-01-02T00:00:00.000Z"});
        let hit = |q: &str| matches_all(&parse(q).unwrap(), &doc);
        assert!(hit("created_at:[2024-01-02 TO *]"));
        assert!(!hit("created_at:{2024-01-02 TO *]"));
        assert!(hit(
            r#"created_at:["2024-01-01T00:00:00Z" TO 2024-01-02T00:00:00]"#
        ));
        assert!(!hit("created_at:[* TO 2024-01-02T00:00:00.000Z}"));
    }

    #[test]
    fn numeric_ranges_compare_numbers_not_text() {
        let hit =
            |count: u32, q: &str| matches_all(&parse(q).unwrap(), &json!({"logins_count": count}));
        assert!(hit(9, "logins_count:[2 TO 10]"));
        assert!(hit(10, "logins_count:[2 TO 10]"));
        assert!(!hit(10, "logins_count:[2 TO 10}"));
        // As text "100" sorts between "10" and "2".
        assert!(!hit(100, "logins_count:[2 TO 10]"));
        assert!(hit(100, "logins_count:[20 TO *]"));
        assert!(!hit(3, "logins_count:[20 TO *]"));
    }

    #[test]
    fn a_parenthesised_or_group_matches_any_and_emails_ignore_case() {
        let clauses =
            parse(r#"(email:"ann@x.test" OR email:"bob@x.test") AND app_metadata.a:"1""#).unwrap();
        let doc = |email: &str, a: &str| json!({"email": email, "app_metadata": {"a": a}});
        assert!(matches_all(&clauses, &doc("Bob@X.test", "1")));
        assert!(!matches_all(&clauses, &doc("eve@x.test", "1")));
        assert!(!matches_all(&clauses, &doc("ann@x.test", "2")));
        for bad in [
            "(email:a OR)",
            "(email:a AND email:b)",
            "(email:a",
            "email:a)",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unsupported_syntax_is_rejected() {
        for query in [
            "a:1 OR b:2",
            "a:1 b:2",
            "a:1 AND",
            "(a:1 b:2)",
            "a:[1 TO 2",
            "a:b*c",
        ] {
            assert!(parse(query).is_err(), "{query}");
        }
    }
}
