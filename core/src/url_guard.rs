//! The SSRF guard every download goes through.
//!
//! A URL passes when it is `https`, carries no credentials, and its host is on the
//! allow-list (`cdn.example.com`, or `*.example.com` for any subdomain). Whatever the
//! allow-list says, a host that is, or spells, a loopback, private, link-local
//! (169.254.169.254), unspecified, multicast or otherwise non-global address is refused,
//! including IPv4-mapped IPv6 and the decimal, octal and hex IPv4 spellings (URL parsing
//! normalises `2130706433`, `0177.0.0.1` and `0x7f.1` to `127.0.0.1`). Callers check the
//! addresses a name resolves to with [`UrlGuard::check_ip`], and re-check every redirect.
//!
//! Tests and the local stack opt in to plain http and loopback explicitly.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Why a URL or address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// Not a URL.
    #[error("not a valid URL")]
    Unparseable,
    /// Not https (or http when allowed).
    #[error("scheme {0:?} is not allowed (https only)")]
    Scheme(String),
    /// `user:password@` in the URL.
    #[error("URLs with credentials are not allowed")]
    Credentials,
    /// No host.
    #[error("URL has no host")]
    NoHost,
    /// The host is not on the allow-list.
    #[error("host {0:?} is not on the download allow-list")]
    HostNotAllowed(String),
    /// The host is, or resolves to, an address that is not public.
    #[error("address {0} is not a public address")]
    ForbiddenAddress(IpAddr),
}

/// The guard's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlGuard {
    allowed: Vec<String>,
    allow_http: bool,
    allow_loopback: bool,
}

impl UrlGuard {
    /// A guard that allows `hosts` (exact names, or `*.suffix` for subdomains), https only.
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(hosts: I) -> Self {
        UrlGuard {
            allowed: hosts
                .into_iter()
                .map(|h| h.as_ref().trim().trim_end_matches('.').to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            allow_http: false,
            allow_loopback: false,
        }
    }

    /// A guard from a comma-separated allow-list, as in an environment variable.
    pub fn from_list(list: &str) -> Self {
        Self::new(list.split(','))
    }

    /// For tests and the local stack only: also allow plain `http`.
    pub fn allow_http(mut self, yes: bool) -> Self {
        self.allow_http = yes;
        self
    }

    /// For tests and the local stack only: allow loopback addresses (127.0.0.0/8, ::1,
    /// `localhost`) that are on the allow-list. Private and link-local stay refused.
    pub fn allow_loopback(mut self, yes: bool) -> Self {
        self.allow_loopback = yes;
        self
    }

    /// The allow-list.
    pub fn allowed_hosts(&self) -> &[String] {
        &self.allowed
    }

    /// Checks a URL; returns it parsed.
    pub fn check(&self, raw: &str) -> Result<Url, GuardError> {
        let url = Url::parse(raw.trim()).map_err(|_| GuardError::Unparseable)?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            other => return Err(GuardError::Scheme(other.to_owned())),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(GuardError::Credentials);
        }
        let host = url.host().ok_or(GuardError::NoHost)?;
        let name = match host {
            Host::Ipv4(ip) => {
                self.check_ip(IpAddr::V4(ip))?;
                ip.to_string()
            }
            Host::Ipv6(ip) => {
                self.check_ip(IpAddr::V6(ip))?;
                ip.to_string()
            }
            Host::Domain(d) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                if (d == "localhost" || d.ends_with(".localhost")) && !self.allow_loopback {
                    return Err(GuardError::ForbiddenAddress(IpAddr::V4(
                        Ipv4Addr::LOCALHOST,
                    )));
                }
                d
            }
        };
        if !self.host_allowed(&name) {
            return Err(GuardError::HostNotAllowed(name));
        }
        Ok(url)
    }

    /// Checks an address a host resolved to (or a literal one).
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), GuardError> {
        let ip = canonical(ip);
        if self.allow_loopback && ip.is_loopback() {
            return Ok(());
        }
        if is_public(ip) {
            Ok(())
        } else {
            Err(GuardError::ForbiddenAddress(ip))
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        self.allowed.iter().any(|a| match a.strip_prefix("*.") {
            Some(suffix) => {
                host.len() > suffix.len() + 1
                    && host.ends_with(suffix)
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
            }
            None => a == host,
        })
    }
}

/// An IPv4-mapped or -compatible IPv6 address as the IPv4 address it carries.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                // Deprecated IPv4-compatible form ::a.b.c.d (but not :: or ::1).
                if s[..6].iter().all(|x| *x == 0) && (s[6] != 0 || s[7] > 1) {
                    IpAddr::V4(Ipv4Addr::new(
                        (s[6] >> 8) as u8,
                        s[6] as u8,
                        (s[7] >> 8) as u8,
                        s[7] as u8,
                    ))
                } else {
                    ip
                }
            }
        },
        v4 => v4,
    }
}

/// True for globally routable unicast addresses only.
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => public_v6(v6),
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64: may reach any IPv4, private included
        || s[0] == 0x2002) // 6to4: likewise
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> UrlGuard {
        UrlGuard::new(["cdn.skytells.ai", "*.example.com"])
    }

    #[test]
    fn allows_https_on_listed_hosts_only() {
        assert!(guard().check("https://cdn.skytells.ai/x.mp4").is_ok());
        assert!(guard().check("https://CDN.Skytells.AI./x").is_ok());
        assert!(guard().check("https://a.b.example.com/x").is_ok());
        assert_eq!(
            guard().check("https://example.com/x"),
            Err(GuardError::HostNotAllowed("example.com".into()))
        );
        assert_eq!(
            guard().check("https://evilexample.com/x"),
            Err(GuardError::HostNotAllowed("evilexample.com".into()))
        );
        assert_eq!(
            guard().check("https://cdn.skytells.ai.evil.io/x"),
            Err(GuardError::HostNotAllowed("cdn.skytells.ai.evil.io".into()))
        );
        assert_eq!(
            guard().check("http://cdn.skytells.ai/x"),
            Err(GuardError::Scheme("http".into()))
        );
        assert_eq!(
            guard().check("file:///etc/passwd"),
            Err(GuardError::Scheme("file".into()))
        );
        assert_eq!(
            guard().check("https://u:p@cdn.skytells.ai/x"),
            Err(GuardError::Credentials)
        );
        assert_eq!(guard().check("::"), Err(GuardError::Unparseable));
    }

    #[test]
    fn refuses_non_public_addresses_in_every_spelling() {
        let g = UrlGuard::new(["*"]); // even a host list that would match anything
        for url in [
            "https://127.0.0.1/",
            "https://2130706433/",
            "https://0177.0.0.1/",
            "https://0x7f.1/",
            "https://127.1/",
            "https://169.254.169.254/latest/meta-data/",
            "https://0251.0376.0251.0376/",
            "https://10.0.0.1/",
            "https://172.16.5.4/",
            "https://192.168.1.1/",
            "https://0.0.0.0/",
            "https://[::1]/",
            "https://[::]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://[::ffff:a9fe:a9fe]/",
            "https://[fe80::1]/",
            "https://[fd00::1]/",
            "https://[::127.0.0.1]/",
            "https://100.64.0.1/",
            "https://localhost/",
            "https://api.localhost/",
            "https://[64:ff9b::a9fe:a9fe]/",
        ] {
            assert!(
                matches!(g.check(url), Err(GuardError::ForbiddenAddress(_))),
                "{url}: {:?}",
                g.check(url)
            );
        }
        assert!(is_public("93.184.216.34".parse().unwrap()));
        assert!(is_public("2606:4700::1111".parse().unwrap()));
    }

    #[test]
    fn loopback_is_an_explicit_opt_in_and_private_stays_refused() {
        let g = UrlGuard::new(["127.0.0.1", "localhost"])
            .allow_http(true)
            .allow_loopback(true);
        assert!(g.check("http://127.0.0.1:8080/x.png").is_ok());
        assert!(g.check("http://localhost:8080/x.png").is_ok());
        assert!(g.check_ip("::1".parse().unwrap()).is_ok());
        assert!(g.check_ip("169.254.169.254".parse().unwrap()).is_err());
        assert!(g.check_ip("10.1.2.3".parse().unwrap()).is_err());
        assert!(UrlGuard::new(["127.0.0.1"])
            .check_ip("127.0.0.1".parse().unwrap())
            .is_err());
    }
}
