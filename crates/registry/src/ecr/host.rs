//! ECR registry host names: recognising them in references and in user input.
//!
//! Only the host forms AWS documents for the Docker registry API are recognised. Dual-stack
//! (`<account>.dkr-ecr.<region>.on.aws`) and the isolated partitions are not: such a host is
//! treated as an ordinary registry (docker `config.json` credentials still work for it).

use std::fmt;

use super::EcrError;

/// Which family of ECR host a registry is served from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EcrKind {
    /// `<account>.dkr.ecr.<region>.amazonaws.com`
    Private,
    /// `<account>.dkr.ecr-fips.<region>.amazonaws.com`
    Fips,
    /// `<account>.dkr.ecr.<region>.amazonaws.com.cn`
    China,
    /// `public.ecr.aws`
    Public,
}

/// An ECR registry: an account's private registry in one region, or ECR Public.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EcrHost {
    /// The registry's account id; `None` for `public.ecr.aws`.
    pub account: Option<String>,
    /// The region whose ECR API serves the registry (`us-east-1` for ECR Public).
    pub region: String,
    pub kind: EcrKind,
}

const PUBLIC_HOST: &str = "public.ecr.aws";
/// ECR Public's API lives only in us-east-1.
const PUBLIC_REGION: &str = "us-east-1";

impl EcrHost {
    /// Recognises `<account>.dkr.ecr.<region>.amazonaws.com`,
    /// `<account>.dkr.ecr-fips.<region>.amazonaws.com`,
    /// `<account>.dkr.ecr.<region>.amazonaws.com.cn` and `public.ecr.aws`, case-insensitively,
    /// with an optional `:443`. Anything else is `None`.
    pub fn parse(host: &str) -> Option<EcrHost> {
        let host = host.to_ascii_lowercase();
        let host = host.strip_suffix(":443").unwrap_or(&host);
        // A fully qualified name ("….amazonaws.com.") names the same host.
        let host = host.strip_suffix('.').unwrap_or(host);
        if host == PUBLIC_HOST {
            return Some(EcrHost {
                account: None,
                region: PUBLIC_REGION.to_string(),
                kind: EcrKind::Public,
            });
        }
        let (rest, china) = match host.strip_suffix(".amazonaws.com.cn") {
            Some(rest) => (rest, true),
            None => (host.strip_suffix(".amazonaws.com")?, false),
        };
        let mut labels = rest.split('.');
        let (account, dkr, service, region) = (
            labels.next()?,
            labels.next()?,
            labels.next()?,
            labels.next()?,
        );
        if labels.next().is_some() || dkr != "dkr" || !is_account_id(account) {
            return None;
        }
        if !is_region(region) || region.starts_with("cn-") != china {
            return None;
        }
        let kind = match (service, china) {
            ("ecr", false) => EcrKind::Private,
            ("ecr-fips", false) => EcrKind::Fips,
            ("ecr", true) => EcrKind::China,
            _ => return None,
        };
        Some(EcrHost {
            account: Some(account.to_string()),
            region: region.to_string(),
            kind,
        })
    }

    /// The private registry of `account` in `region`. China regions (`cn-…`) get the
    /// `.amazonaws.com.cn` form, since that is the only host they have. Validates nothing: use
    /// [`parse`](Self::parse) or [`resolve_registry`] for input.
    pub fn private(account: &str, region: &str) -> EcrHost {
        let kind = if region.starts_with("cn-") {
            EcrKind::China
        } else {
            EcrKind::Private
        };
        EcrHost {
            account: Some(account.to_string()),
            region: region.to_string(),
            kind,
        }
    }

    /// The canonical host name, in the same family (FIPS, China) it was parsed from.
    pub fn host(&self) -> String {
        let account = self.account.as_deref().unwrap_or_default();
        let region = &self.region;
        match self.kind {
            EcrKind::Private => format!("{account}.dkr.ecr.{region}.amazonaws.com"),
            EcrKind::Fips => format!("{account}.dkr.ecr-fips.{region}.amazonaws.com"),
            EcrKind::China => format!("{account}.dkr.ecr.{region}.amazonaws.com.cn"),
            EcrKind::Public => PUBLIC_HOST.to_string(),
        }
    }

    pub fn is_public(&self) -> bool {
        self.kind == EcrKind::Public
    }

    /// `account/region`, how errors name the registry the API was asked about.
    pub(crate) fn api_target(&self) -> String {
        match &self.account {
            Some(account) => format!("{account}/{}", self.region),
            None => PUBLIC_HOST.to_string(),
        }
    }
}

impl fmt::Display for EcrHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.host())
    }
}

/// Whether `host` (as in a reference, port allowed) is an ECR registry.
pub fn is_ecr_host(host: &str) -> bool {
    EcrHost::parse(host).is_some()
}

/// Turns `--registry HOST|ACCOUNT_ID` (and a region) into a registry: a 12-digit account id
/// names that account's private registry in `region`; anything else must be an ECR host (a
/// leading `https://` and a trailing `/` are tolerated, since users paste `proxyEndpoint`s).
/// For a host, `region` is ignored: the host already says where it lives.
pub fn resolve_registry(registry: &str, region: Option<&str>) -> Result<EcrHost, EcrError> {
    let input = registry.trim();
    let invalid = |reason: String| EcrError::InvalidRegistry {
        input: registry.to_string(),
        reason,
    };
    if input.is_empty() {
        return Err(invalid("it is empty".into()));
    }
    if input.bytes().all(|b| b.is_ascii_digit()) {
        if !is_account_id(input) {
            return Err(invalid(format!(
                "an AWS account id has 12 digits, this has {}",
                input.len()
            )));
        }
        let region = region
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .ok_or_else(|| invalid("an account id needs a region".into()))?;
        if !is_region(region) {
            return Err(invalid(format!("{region:?} is not an AWS region name")));
        }
        return Ok(EcrHost::private(input, region));
    }
    let host = input.strip_prefix("https://").unwrap_or(input);
    let host = host.strip_suffix('/').unwrap_or(host);
    EcrHost::parse(host).ok_or_else(|| {
        invalid(
            "expected a 12-digit account id or an ECR registry host such as \
             123456789012.dkr.ecr.eu-west-1.amazonaws.com or public.ecr.aws"
                .into(),
        )
    })
}

/// A destination setting that names a registry other than ECR, as its host (trimmed, without a
/// trailing `/`); `None` for an ECR host, an account id, or no setting (the caller's own ECR
/// registry). Such a registry is written to as any registry: no ECR API, docker credentials.
pub fn other_registry(registry: Option<&str>) -> Option<String> {
    registry
        .filter(|r| !names_ecr(r))
        .map(|r| r.trim().trim_end_matches('/').to_string())
}

/// Whether a registry as a user names it (`--registry`, a mirror's `destination.registry`)
/// means ECR: an ECR host or a 12-digit account id. Anything else is another registry's host.
pub fn names_ecr(registry: &str) -> bool {
    EcrHost::parse(registry).is_some() || is_account_id(registry.trim())
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `us-east-1`, `us-gov-west-1`, `cn-north-1`, `eusc-de-east-1`: lowercase words, then a
/// number. Loose on purpose, so new regions need no change here; it only catches typos such as
/// `Ireland` or `eu-west`.
pub(crate) fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return false;
    };
    !middle.is_empty()
        && first.len() >= 2
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && middle
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && !last.is_empty()
        && last.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn private(account: &str, region: &str, kind: EcrKind) -> Option<EcrHost> {
        Some(EcrHost {
            account: Some(account.into()),
            region: region.into(),
            kind,
        })
    }

    #[test]
    fn parses_every_documented_host_form() {
        let table = [
            (
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                private("123456789012", "eu-west-1", EcrKind::Private),
            ),
            (
                "123456789012.DKR.ECR.US-EAST-1.AMAZONAWS.COM:443",
                private("123456789012", "us-east-1", EcrKind::Private),
            ),
            (
                "123456789012.dkr.ecr.us-gov-west-1.amazonaws.com.",
                private("123456789012", "us-gov-west-1", EcrKind::Private),
            ),
            (
                "123456789012.dkr.ecr-fips.us-east-2.amazonaws.com",
                private("123456789012", "us-east-2", EcrKind::Fips),
            ),
            (
                "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
                private("123456789012", "cn-north-1", EcrKind::China),
            ),
            (
                "public.ecr.aws",
                Some(EcrHost {
                    account: None,
                    region: "us-east-1".into(),
                    kind: EcrKind::Public,
                }),
            ),
            ("PUBLIC.ECR.AWS:443", EcrHost::parse("public.ecr.aws")),
            // Not ECR, or not quite.
            ("docker.io", None),
            ("localhost:5000", None),
            ("123456789012.dkr.ecr.eu-west-1.amazonaws.com:5000", None),
            ("12345678901.dkr.ecr.eu-west-1.amazonaws.com", None),
            ("1234567890123.dkr.ecr.eu-west-1.amazonaws.com", None),
            ("abcdefghijkl.dkr.ecr.eu-west-1.amazonaws.com", None),
            ("123456789012.dkr.ecr.amazonaws.com", None),
            (
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.com",
                None,
            ),
            ("x.123456789012.dkr.ecr.eu-west-1.amazonaws.com", None),
            ("123456789012.api.ecr.eu-west-1.amazonaws.com", None),
            ("api.ecr.eu-west-1.amazonaws.com", None),
            ("123456789012.dkr.ecr.cn-north-1.amazonaws.com", None),
            ("123456789012.dkr.ecr.eu-west-1.amazonaws.com.cn", None),
            (
                "123456789012.dkr.ecr-fips.cn-north-1.amazonaws.com.cn",
                None,
            ),
            ("123456789012.dkr.ecr.eu_west_1.amazonaws.com", None),
            ("123456789012.dkr-ecr.eu-west-1.on.aws", None),
            ("public.ecr.aws.evil.com", None),
            ("", None),
        ];
        for (input, want) in table {
            assert_eq!(EcrHost::parse(input), want, "{input}");
            assert_eq!(is_ecr_host(input), want.is_some(), "{input}");
        }
    }

    #[test]
    fn host_round_trips_in_its_family() {
        for host in [
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "123456789012.dkr.ecr-fips.us-gov-east-1.amazonaws.com",
            "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn",
            "public.ecr.aws",
        ] {
            let parsed = EcrHost::parse(host).unwrap();
            assert_eq!(parsed.host(), host);
            assert_eq!(parsed.to_string(), host);
            assert_eq!(parsed.is_public(), host == "public.ecr.aws");
        }
        assert_eq!(
            EcrHost::parse("123456789012.DKR.ECR.EU-WEST-1.AMAZONAWS.COM:443")
                .unwrap()
                .host(),
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
        );
    }

    #[test]
    fn private_picks_the_china_form_for_china_regions() {
        assert_eq!(
            EcrHost::private("123456789012", "eu-west-1").host(),
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            EcrHost::private("123456789012", "cn-north-1").host(),
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"
        );
    }

    #[test]
    fn resolve_registry_accepts_account_ids_and_hosts() {
        assert_eq!(
            resolve_registry("123456789012", Some("eu-west-1")).unwrap(),
            EcrHost::private("123456789012", "eu-west-1")
        );
        assert_eq!(
            resolve_registry(" 123456789012 ", Some("cn-north-1"))
                .unwrap()
                .kind,
            EcrKind::China
        );
        // The host says where it lives; the region argument only completes account ids.
        let host = resolve_registry(
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            Some("us-east-1"),
        )
        .unwrap();
        assert_eq!(host.region, "eu-west-1");
        assert_eq!(
            resolve_registry(
                "https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",
                None
            )
            .unwrap(),
            EcrHost::private("123456789012", "us-east-1")
        );
        assert!(
            resolve_registry("public.ecr.aws", None)
                .unwrap()
                .is_public()
        );
    }

    #[test]
    fn resolve_registry_explains_bad_input() {
        let cases = [
            ("123456789012", None, "needs a region"),
            ("123456789012", Some(""), "needs a region"),
            ("12345", Some("eu-west-1"), "12 digits, this has 5"),
            ("123456789012", Some("Ireland"), "not an AWS region"),
            (
                "docker.io",
                Some("eu-west-1"),
                "expected a 12-digit account id",
            ),
            ("", None, "empty"),
        ];
        for (input, region, want) in cases {
            let err = resolve_registry(input, region).unwrap_err().to_string();
            assert!(err.contains(want), "{input}: {err}");
            assert!(err.contains(&format!("{input:?}")), "{input}: {err}");
        }
    }

    #[test]
    fn region_names() {
        for ok in [
            "us-east-1",
            "us-gov-west-1",
            "ap-southeast-5",
            "cn-north-1",
            "us-isob-east-1",
            "eusc-de-east-1",
        ] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in [
            "",
            "us",
            "us-1",
            "useast-1",
            "US-EAST-1",
            "us-east-",
            "us--1",
            "u-east-1",
            "eu-west",
        ] {
            assert!(!is_region(bad), "{bad}");
        }
    }
}
