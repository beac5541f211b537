//! Parsing of `WWW-Authenticate` headers (RFC 7235 §4.1) into the challenges a registry
//! client can answer: `Basic` and `Bearer` (the docker token flow).
//!
//! The grammar is ambiguous at commas: `,` separates both the auth-params of one challenge
//! and whole challenges. A comma followed by `token =` continues the current challenge;
//! any other token after a comma starts a new one.

/// One challenge the client knows how to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic {
        realm: Option<String>,
    },
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
        error: Option<String>,
    },
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ChallengeError {
    #[error("malformed WWW-Authenticate header {header:?}: {reason}")]
    Malformed { header: String, reason: String },
    /// Without a realm there is nowhere to fetch a token from.
    #[error("Bearer challenge without a realm in WWW-Authenticate header {header:?}")]
    MissingRealm { header: String },
}

/// Parses every challenge in a `WWW-Authenticate` header value, in header order.
///
/// Schemes other than `Basic` and `Bearer` are skipped, so the result may be empty. When a
/// parameter is repeated within one challenge the first occurrence wins.
pub fn parse_www_authenticate(header: &str) -> Result<Vec<Challenge>, ChallengeError> {
    let raw = parse_raw(header).map_err(|reason| ChallengeError::Malformed {
        header: header.to_owned(),
        reason,
    })?;
    let mut challenges = Vec::with_capacity(raw.len());
    for challenge in raw {
        if let Some(challenge) = challenge.into_known(header)? {
            challenges.push(challenge);
        }
    }
    Ok(challenges)
}

/// A syntactically valid challenge of any scheme; parameter names are lowercased.
#[derive(Debug)]
struct RawChallenge {
    scheme: String,
    params: Vec<(String, String)>,
}

impl RawChallenge {
    fn param(&self, name: &str) -> Option<String> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    }

    fn into_known(self, header: &str) -> Result<Option<Challenge>, ChallengeError> {
        if self.scheme.eq_ignore_ascii_case("basic") {
            return Ok(Some(Challenge::Basic {
                realm: self.param("realm"),
            }));
        }
        if self.scheme.eq_ignore_ascii_case("bearer") {
            let realm = self
                .param("realm")
                .filter(|realm| !realm.is_empty())
                .ok_or_else(|| ChallengeError::MissingRealm {
                    header: header.to_owned(),
                })?;
            return Ok(Some(Challenge::Bearer {
                realm,
                service: self.param("service"),
                scope: self.param("scope"),
                error: self.param("error"),
            }));
        }
        Ok(None)
    }
}

fn parse_raw(header: &str) -> Result<Vec<RawChallenge>, String> {
    let mut cursor = Cursor { s: header, pos: 0 };
    let mut challenges = Vec::new();
    loop {
        cursor.skip_separators();
        if cursor.at_end() {
            return Ok(challenges);
        }
        let start = cursor.pos;
        let scheme = cursor
            .token()
            .ok_or_else(|| format!("expected an authentication scheme at byte {start}"))?;
        let mut challenge = RawChallenge {
            scheme: scheme.to_owned(),
            params: Vec::new(),
        };
        let had_space = cursor.skip_ws();
        if !had_space && !cursor.at_end() && cursor.peek() != Some(',') {
            return Err(format!(
                "expected a space after scheme {scheme:?} at byte {}",
                cursor.pos
            ));
        }
        // A token68 (e.g. `Negotiate abc==`) replaces the parameter list entirely.
        let mut expect_param = had_space && !cursor.skip_token68();
        loop {
            cursor.skip_ws();
            if cursor.at_end() {
                break;
            }
            if expect_param && cursor.peek() != Some(',') {
                expect_param = false;
                parse_param(&mut cursor, &mut challenge)?;
                continue;
            }
            if cursor.peek() != Some(',') {
                return Err(format!("expected ',' at byte {}", cursor.pos));
            }
            cursor.skip_separators();
            if cursor.at_end() || !cursor.at_param() {
                break;
            }
            parse_param(&mut cursor, &mut challenge)?;
        }
        challenges.push(challenge);
    }
}

fn parse_param(cursor: &mut Cursor<'_>, challenge: &mut RawChallenge) -> Result<(), String> {
    let start = cursor.pos;
    let name = cursor
        .token()
        .ok_or_else(|| format!("expected a parameter name at byte {start}"))?
        .to_ascii_lowercase();
    cursor.skip_ws();
    if cursor.peek() != Some('=') {
        return Err(format!(
            "expected '=' after parameter {name:?} at byte {}",
            cursor.pos
        ));
    }
    cursor.bump();
    cursor.skip_ws();
    let value = if cursor.peek() == Some('"') {
        cursor.quoted_string()?
    } else {
        // Servers in the wild send unquoted URLs as values, which RFC tokens cannot hold, so
        // accept anything up to the next delimiter.
        let value = cursor.take_while(|c| c != ',' && c != '"' && !is_ws(c));
        if value.is_empty() {
            return Err(format!(
                "missing value for parameter {name:?} at byte {}",
                cursor.pos
            ));
        }
        value.to_owned()
    };
    if !challenge.params.iter().any(|(key, _)| *key == name) {
        challenge.params.push((name, value));
    }
    Ok(())
}

fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// RFC 7230 `tchar`.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn is_token68_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~+/".contains(c)
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn take_while(&mut self, pred: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let len = rest.find(|c| !pred(c)).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    /// Returns whether any whitespace was skipped.
    fn skip_ws(&mut self) -> bool {
        !self.take_while(is_ws).is_empty()
    }

    /// Skips whitespace and empty list elements (RFC 7230 §7 allows `, ,`).
    fn skip_separators(&mut self) {
        self.take_while(|c| c == ',' || is_ws(c));
    }

    fn token(&mut self) -> Option<&'a str> {
        let token = self.take_while(is_tchar);
        (!token.is_empty()).then_some(token)
    }

    /// Whether the cursor is at `token BWS "="`, i.e. a parameter rather than a new scheme.
    fn at_param(&self) -> bool {
        let mut probe = Cursor {
            s: self.s,
            pos: self.pos,
        };
        if probe.token().is_none() {
            return false;
        }
        probe.skip_ws();
        probe.peek() == Some('=')
    }

    /// Consumes a token68 if one stands here alone (followed by the end or a comma).
    fn skip_token68(&mut self) -> bool {
        let mut probe = Cursor {
            s: self.s,
            pos: self.pos,
        };
        if probe.take_while(is_token68_char).is_empty() {
            return false;
        }
        probe.take_while(|c| c == '=');
        let end = probe.pos;
        probe.skip_ws();
        if probe.at_end() || probe.peek() == Some(',') {
            self.pos = end;
            return true;
        }
        false
    }

    /// Parses a quoted-string at the cursor, unescaping quoted-pairs.
    fn quoted_string(&mut self) -> Result<String, String> {
        let start = self.pos;
        self.bump();
        let mut value = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(format!(
                        "unterminated quoted string starting at byte {start}"
                    ));
                }
                Some('"') => return Ok(value),
                Some('\\') => match self.bump() {
                    Some(escaped) => value.push(escaped),
                    None => {
                        return Err(format!(
                            "unterminated quoted string starting at byte {start}"
                        ));
                    }
                },
                Some(c) => value.push(c),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn basic(realm: Option<&str>) -> Challenge {
        Challenge::Basic {
            realm: realm.map(str::to_owned),
        }
    }

    fn bearer(realm: &str, service: Option<&str>, scope: Option<&str>) -> Challenge {
        Challenge::Bearer {
            realm: realm.to_owned(),
            service: service.map(str::to_owned),
            scope: scope.map(str::to_owned),
            error: None,
        }
    }

    #[test]
    fn parses_valid_headers() {
        let cases: Vec<(&str, Vec<Challenge>)> = vec![
            (
                // Docker Hub
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
                vec![bearer(
                    "https://auth.docker.io/token",
                    Some("registry.docker.io"),
                    Some("repository:library/alpine:pull"),
                )],
            ),
            (
                // ghcr.io
                r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:octo/app:pull""#,
                vec![bearer(
                    "https://ghcr.io/token",
                    Some("ghcr.io"),
                    Some("repository:octo/app:pull"),
                )],
            ),
            (
                // Amazon ECR
                r#"Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com""#,
                vec![basic(Some(
                    "https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",
                ))],
            ),
            (
                // distribution with htpasswd auth
                r#"Basic realm="Registry Realm""#,
                vec![basic(Some("Registry Realm"))],
            ),
            (
                // distribution token auth, from its spec: a comma inside the quoted scope
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push",error="insufficient_scope""#,
                vec![Challenge::Bearer {
                    realm: "https://auth.docker.io/token".into(),
                    service: Some("registry.docker.io".into()),
                    scope: Some("repository:samalba/my-app:pull,push".into()),
                    error: Some("insufficient_scope".into()),
                }],
            ),
            (
                // Quay
                r#"Bearer realm="https://quay.io/v2/auth",service="quay.io""#,
                vec![bearer("https://quay.io/v2/auth", Some("quay.io"), None)],
            ),
            (
                // Azure Container Registry
                r#"Bearer realm="https://myreg.azurecr.io/oauth2/token",service="myreg.azurecr.io""#,
                vec![bearer(
                    "https://myreg.azurecr.io/oauth2/token",
                    Some("myreg.azurecr.io"),
                    None,
                )],
            ),
            ("Basic", vec![basic(None)]),
            (
                r#"Basic realm="x", Bearer realm="y",service="z""#,
                vec![basic(Some("x")), bearer("y", Some("z"), None)],
            ),
            (
                r#"BEARER REALM="x" , Service = "y",SCOPE=z"#,
                vec![bearer("x", Some("y"), Some("z"))],
            ),
            (
                r#"Basic realm="a \"quoted\", realm\\x""#,
                vec![basic(Some(r#"a "quoted", realm\x"#))],
            ),
            (
                "Bearer realm=https://auth.example.com/token,service=reg.example.com",
                vec![bearer(
                    "https://auth.example.com/token",
                    Some("reg.example.com"),
                    None,
                )],
            ),
            (
                r#"Negotiate, NTLM, Bearer realm="y""#,
                vec![bearer("y", None, None)],
            ),
            (
                r#"Negotiate abc123+/==, Basic realm="r""#,
                vec![basic(Some("r"))],
            ),
            (
                r#"Digest realm="d", nonce="n,o", qop="auth", Basic realm="b""#,
                vec![basic(Some("b"))],
            ),
            (
                r#"  ,Basic realm="x",, , Bearer realm="y" , "#,
                vec![basic(Some("x")), bearer("y", None, None)],
            ),
            (
                r#"Bearer realm="first",realm="second""#,
                vec![bearer("first", None, None)],
            ),
            (r#"Basic realm="ünïcode""#, vec![basic(Some("ünïcode"))]),
            ("", vec![]),
            ("Negotiate", vec![]),
        ];
        for (header, expected) in cases {
            assert_eq!(
                parse_www_authenticate(header),
                Ok(expected),
                "header: {header}"
            );
        }
    }

    #[test]
    fn rejects_malformed_headers() {
        let cases = [
            r#"Bearer realm="unterminated"#,
            r#"Basic realm="x\"#,
            r#"Bearer realm="x" service="y""#,
            r#"="x""#,
            r#"Bearer realm="x",service="#,
            r#"Basic"realm""#,
            r#"Bearer realm="x",service=,scope="y""#,
        ];
        for header in cases {
            match parse_www_authenticate(header) {
                Err(ChallengeError::Malformed { header: quoted, .. }) => assert_eq!(quoted, header),
                other => panic!("{header}: expected Malformed, got {other:?}"),
            }
        }
    }

    #[test]
    fn bearer_requires_realm() {
        for header in [
            r#"Bearer service="x""#,
            "Bearer",
            r#"Bearer realm="""#,
            "Bearer realm",
            r#"Basic realm="ok", Bearer scope="s""#,
        ] {
            assert_eq!(
                parse_www_authenticate(header),
                Err(ChallengeError::MissingRealm {
                    header: header.to_owned()
                }),
                "header: {header}"
            );
        }
    }

    #[test]
    fn error_message_quotes_the_header() {
        let err = parse_www_authenticate(r#"Bearer realm="x"#).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(r#""Bearer realm=\"x""#), "{message}");
        assert!(message.contains("unterminated"), "{message}");

        let err = parse_www_authenticate(r#"Bearer service="s""#).unwrap_err();
        assert!(err.to_string().contains(r#"service=\"s\""#), "{err}");
    }
}
