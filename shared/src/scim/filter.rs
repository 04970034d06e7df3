//! SCIM filters (RFC 7644 §3.4.2.2), as far as identity providers use them on users: `eq`
//! comparisons joined by `and` (parentheses allowed), on `userName`, `externalId`, `id`,
//! `active` and the work address (`emails`, `emails.value`, `emails[type eq "work"].value`,
//! `emails[value eq "…"]`). Anything else is a clear `invalidFilter`, never a guess: `or`,
//! `not`, the other operators and attributes.
//!
//! Written here rather than taken from a crate: see the README's dependency notes.

use uuid::Uuid;

use super::schema::{CORE_USER, strip_core};
use crate::db::user_views::UserMatch;
use crate::domain::Email;

/// The longest filter read; identity providers send a few dozen characters.
pub const MAX_LEN: usize = 2048;
/// How deep parentheses and `[…]` may nest.
const MAX_DEPTH: usize = 8;

/// Why a filter was refused: said back in `detail`, without the filter's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidFilter(pub String);

fn invalid(message: impl Into<String>) -> InvalidFilter {
    InvalidFilter(message.into())
}

/// The users `filter` asks for.
pub fn parse(filter: &str) -> Result<UserMatch, InvalidFilter> {
    parse_within(filter, None).map(Conditions::into_match)
}

/// Refuses the filter of a PATCH path's `emails[…]` unless it is one a filter's `emails[…]`
/// may hold (`type eq "work"`, `primary eq true`, `value eq "…"`, joined by `and`). The path
/// selects the one address, whatever the filter asks, so only its grammar matters.
pub fn check_emails_value_filter(inner: &str) -> Result<(), InvalidFilter> {
    parse_within(inner, Some(Attribute::Emails)).map(|_| ())
}

fn parse_within(filter: &str, inside: Option<Attribute>) -> Result<Conditions, InvalidFilter> {
    if filter.len() > MAX_LEN {
        return Err(invalid(format!("longer than {MAX_LEN} characters")));
    }
    let tokens = tokenize(filter)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        matching: Conditions::default(),
    };
    parser.conjunction(0, inside)?;
    if let Some(token) = parser.peek() {
        return Err(invalid(format!("unexpected {}", token.describe())));
    }
    Ok(parser.matching)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    /// A JSON string's value.
    Text(String),
    /// An attribute path, an operator, `and`, `true`, a number…
    Word(String),
}

impl Token {
    /// Names the token without its content (which may be personal data).
    fn describe(&self) -> String {
        match self {
            Self::Open => "`(`".into(),
            Self::Close => "`)`".into(),
            Self::OpenBracket => "`[`".into(),
            Self::CloseBracket => "`]`".into(),
            Self::Text(_) => "a string".into(),
            Self::Word(word) if word.len() <= 64 && word.is_ascii() => format!("`{word}`"),
            Self::Word(_) => "a word".into(),
        }
    }
}

fn tokenize(filter: &str) -> Result<Vec<Token>, InvalidFilter> {
    let mut tokens = Vec::new();
    let mut chars = filter.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | '[' | ']' => {
                chars.next();
                tokens.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    '[' => Token::OpenBracket,
                    _ => Token::CloseBracket,
                });
            }
            '"' => {
                // A JSON string: find its end, then let serde_json read the escapes.
                chars.next();
                let mut escaped = false;
                let end = loop {
                    let Some((i, c)) = chars.next() else {
                        return Err(invalid("a string is not closed"));
                    };
                    match (escaped, c) {
                        (false, '\\') => escaped = true,
                        (false, '"') => break i,
                        _ => escaped = false,
                    }
                };
                let text: String = serde_json::from_str(&filter[start..=end])
                    .map_err(|_| invalid("a string is not valid JSON"))?;
                if text.chars().any(char::is_control) {
                    return Err(invalid("a string holds control characters"));
                }
                tokens.push(Token::Text(text));
            }
            c if c.is_control() => return Err(invalid("control characters")),
            _ => {
                let mut end = start;
                while let Some(&(i, c)) = chars.peek() {
                    if c.is_whitespace() || "()[]\"".contains(c) || c.is_control() {
                        break;
                    }
                    end = i + c.len_utf8();
                    chars.next();
                }
                tokens.push(Token::Word(filter[start..end].to_string()));
            }
        }
    }
    Ok(tokens)
}

/// What the filter's comparisons ask, attribute by attribute.
#[derive(Debug, Default)]
struct Conditions {
    email: Option<String>,
    external_id: Option<String>,
    id: Option<Uuid>,
    active: Option<bool>,
    /// Some comparison no user can meet.
    nothing: bool,
}

impl Conditions {
    /// Asks `value` of one attribute; asking two different values of it finds nobody.
    fn ask<T: PartialEq>(slot: &mut Option<T>, value: T, nothing: &mut bool) {
        match slot {
            Some(asked) if *asked != value => *nothing = true,
            _ => *slot = Some(value),
        }
    }

    fn email(&mut self, raw: &str) {
        match Email::parse(raw) {
            Ok(email) => Self::ask(
                &mut self.email,
                email.as_str().to_string(),
                &mut self.nothing,
            ),
            // No user has an address that is none.
            Err(_) => self.nothing = true,
        }
    }

    fn into_match(self) -> UserMatch {
        UserMatch {
            email: self.email,
            external_id: self.external_id,
            id: self.id,
            active: self.active,
            nothing: self.nothing,
        }
    }
}

/// The attributes a comparison may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attribute {
    UserName,
    ExternalId,
    Id,
    Active,
    /// The work address: `emails`, `emails.value`.
    Email,
    /// `emails[…]`, the filter inside the brackets to follow.
    Emails,
    /// Inside `emails[…]`: `type`, `value`, `primary`.
    EmailType,
    EmailValue,
    EmailPrimary,
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    matching: Conditions,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    /// `term (and term)*`; `inside` is the attribute whose `[…]` this is.
    fn conjunction(
        &mut self,
        depth: usize,
        inside: Option<Attribute>,
    ) -> Result<(), InvalidFilter> {
        if depth > MAX_DEPTH {
            return Err(invalid(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        loop {
            self.term(depth, inside)?;
            match self.peek() {
                Some(Token::Word(word)) if word.eq_ignore_ascii_case("and") => {
                    self.next();
                }
                Some(Token::Word(word)) if word.eq_ignore_ascii_case("or") => {
                    return Err(invalid("`or` is not supported; only `eq` joined by `and`"));
                }
                _ => return Ok(()),
            }
        }
    }

    fn term(&mut self, depth: usize, inside: Option<Attribute>) -> Result<(), InvalidFilter> {
        match self.next() {
            Some(Token::Open) => {
                self.conjunction(depth + 1, inside)?;
                match self.next() {
                    Some(Token::Close) => Ok(()),
                    _ => Err(invalid("a `(` is not closed")),
                }
            }
            Some(Token::Word(word)) if word.eq_ignore_ascii_case("not") => {
                Err(invalid("`not` is not supported; only `eq` joined by `and`"))
            }
            Some(Token::Word(path)) => {
                let attribute = attribute(&path, inside)?;
                if attribute == Attribute::Emails {
                    return self.emails_value_path(depth);
                }
                self.comparison(attribute)
            }
            Some(token) => Err(invalid(format!(
                "expected an attribute, found {}",
                token.describe()
            ))),
            None => Err(invalid("the filter ends where a comparison should be")),
        }
    }

    /// `emails[filter]` or `emails[filter].value eq "…"` (a value path compared whole is a
    /// condition on the address it selects).
    fn emails_value_path(&mut self, depth: usize) -> Result<(), InvalidFilter> {
        // `emails eq "…"` compares the addresses' values (RFC 7644 §3.4.2.2).
        if self.peek() != Some(&Token::OpenBracket) {
            return self.comparison(Attribute::Email);
        }
        self.next();
        self.conjunction(depth + 1, Some(Attribute::Emails))?;
        if self.next() != Some(Token::CloseBracket) {
            return Err(invalid("a `[` is not closed"));
        }
        // `emails[type eq "work"].value eq "…"`: the sub-attribute was glued to the `]`.
        if let Some(Token::Word(rest)) = self.peek()
            && rest.starts_with('.')
        {
            let rest = rest.clone();
            self.next();
            if !rest[1..].eq_ignore_ascii_case("value") {
                return Err(invalid("only `.value` of `emails[…]` can be compared"));
            }
            return self.comparison(Attribute::Email);
        }
        Ok(())
    }

    /// `op value` after `attribute`.
    fn comparison(&mut self, attribute: Attribute) -> Result<(), InvalidFilter> {
        let op = match self.next() {
            Some(Token::Word(op)) => op.to_ascii_lowercase(),
            _ => return Err(invalid("expected an operator after the attribute")),
        };
        match op.as_str() {
            "eq" => {}
            "ne" | "co" | "sw" | "ew" | "gt" | "ge" | "lt" | "le" | "pr" => {
                return Err(invalid(format!(
                    "the operator `{op}` is not supported; only `eq` joined by `and`"
                )));
            }
            _ => return Err(invalid("unknown operator")),
        }
        let value = self
            .next()
            .ok_or_else(|| invalid("expected a value after `eq`"))?;
        let m = &mut self.matching;
        match (attribute, value) {
            (Attribute::UserName | Attribute::Email | Attribute::EmailValue, Token::Text(text)) => {
                m.email(&text);
            }
            (Attribute::ExternalId, Token::Text(text)) => {
                Conditions::ask(&mut m.external_id, text, &mut m.nothing);
            }
            (Attribute::Id, Token::Text(text)) => match Uuid::parse_str(&text) {
                Ok(id) => Conditions::ask(&mut m.id, id, &mut m.nothing),
                Err(_) => m.nothing = true,
            },
            (Attribute::Active, Token::Word(word)) if parse_bool(&word).is_some() => {
                let active = parse_bool(&word).expect("checked");
                Conditions::ask(&mut m.active, active, &mut m.nothing);
            }
            // The only address is the work one, and it is the primary one.
            (Attribute::EmailType, Token::Text(kind)) => {
                if !kind.eq_ignore_ascii_case("work") {
                    m.nothing = true;
                }
            }
            (Attribute::EmailPrimary, Token::Word(word)) if parse_bool(&word).is_some() => {
                if parse_bool(&word) == Some(false) {
                    m.nothing = true;
                }
            }
            (Attribute::Active | Attribute::EmailPrimary, _) => {
                return Err(invalid("this attribute is compared with true or false"));
            }
            _ => return Err(invalid("this attribute is compared with a string")),
        }
        Ok(())
    }
}

fn parse_bool(word: &str) -> Option<bool> {
    match word.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// The attribute `path` names (case-insensitively, with or without the core schema's URN).
fn attribute(path: &str, inside: Option<Attribute>) -> Result<Attribute, InvalidFilter> {
    let lower = path.to_ascii_lowercase();
    if inside == Some(Attribute::Emails) {
        return match lower.as_str() {
            "type" => Ok(Attribute::EmailType),
            "value" => Ok(Attribute::EmailValue),
            "primary" => Ok(Attribute::EmailPrimary),
            _ => Err(invalid("inside `emails[…]` only type, value and primary")),
        };
    }
    let bare = strip_core(&lower).unwrap_or(&lower);
    match bare {
        "username" => Ok(Attribute::UserName),
        "externalid" => Ok(Attribute::ExternalId),
        "id" => Ok(Attribute::Id),
        "active" => Ok(Attribute::Active),
        "emails" => Ok(Attribute::Emails),
        "emails.value" => Ok(Attribute::Email),
        _ if lower.starts_with("urn:") && !lower.starts_with(&CORE_USER.to_ascii_lowercase()) => {
            Err(invalid(
                "only attributes of the core User schema can be filtered on",
            ))
        }
        _ => Err(invalid(
            "filtering is supported on userName, externalId, id, active and emails",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matched(filter: &str) -> UserMatch {
        parse(filter).unwrap_or_else(|e| panic!("{filter}: {e:?}"))
    }

    #[test]
    fn what_okta_and_entra_send() {
        let okta = matched(r#"userName eq "Jane.Doe@Example.com""#);
        assert_eq!(okta.email.as_deref(), Some("jane.doe@example.com"));
        let entra = matched(r#"externalId eq "00aa-11""#);
        assert_eq!(entra.external_id.as_deref(), Some("00aa-11"));
        let work = matched(r#"emails[type eq "work"].value eq "jane@example.com""#);
        assert_eq!(work.email.as_deref(), Some("jane@example.com"));
        assert!(!work.nothing);
        let both = matched(r#"userName eq "a@example.com" and (active eq true)"#);
        assert_eq!(both.active, Some(true));
        assert_eq!(both.email.as_deref(), Some("a@example.com"));
    }

    #[test]
    fn names_and_operators_are_case_insensitive() {
        let m = matched(r#"USERNAME EQ "a@example.com" AND Active Eq False"#);
        assert_eq!(
            (m.email.as_deref(), m.active),
            (Some("a@example.com"), Some(false))
        );
        let urn =
            matched(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a@example.com""#);
        assert_eq!(urn.email.as_deref(), Some("a@example.com"));
    }

    #[test]
    fn what_nobody_can_match_reads_nothing() {
        assert!(matched(r#"id eq "not-a-uuid""#).nothing);
        assert!(matched(r#"userName eq "not an address""#).nothing);
        assert!(matched(r#"userName eq "a@example.com" and userName eq "b@example.com""#).nothing);
        assert!(matched(r#"emails[type eq "home"].value eq "a@example.com""#).nothing);
        assert!(
            !matched(r#"userName eq "A@example.com" and emails.value eq "a@example.com""#).nothing
        );
        assert!(
            !matched(r#"emails eq "a@example.com" and emails[value eq "A@example.com"]"#).nothing
        );
    }

    #[test]
    fn the_rest_is_refused_clearly() {
        for filter in [
            r#"userName ne "a@example.com""#,
            r#"userName sw "a""#,
            r#"title pr"#,
            r#"userName eq "a@example.com" or userName eq "b@example.com""#,
            r#"not (userName eq "a@example.com")"#,
            r#"displayName eq "Jane""#,
            r#"active eq "yes""#,
            r#"userName eq 7"#,
            r#"userName eq"#,
            r#"userName eq "open"#,
            r#"(userName eq "a@example.com""#,
            r#"userName eq "a@example.com")"#,
            "userName eq \"a\u{0}b\"",
            r#"userName eq "a\u0000b""#,
            "",
        ] {
            assert!(parse(filter).is_err(), "{filter}");
        }
        let deep = format!(
            "{}userName eq \"a@example.com\"{}",
            "(".repeat(50),
            ")".repeat(50)
        );
        assert_eq!(parse(&deep), Err(invalid("nested deeper than 8 levels")));
        assert!(parse(&"x".repeat(MAX_LEN + 1)).is_err());
    }

    #[test]
    fn a_refusal_does_not_repeat_the_values() {
        let err = parse(r#"userName eq "jane.doe@example.com" or x"#).unwrap_err();
        assert!(!err.0.contains("jane"), "{err:?}");
        let err = parse("jane.doe@example.com eq \"x\"").unwrap_err();
        assert!(!err.0.contains("jane"), "{err:?}");
    }
}
