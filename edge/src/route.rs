//! Which route a method and path name.

/// A route of the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `POST /webhooks/{provider}`.
    Webhook(&'a str),
    /// `POST /_hookvault/probe`, or `/_hookvault/probe/{provider}`.
    Probe(Option<&'a str>),
    /// `GET /healthz`.
    Health,
    /// A known path with another method; the value is the `Allow` header.
    MethodNotAllowed(&'static str),
    /// Anything else.
    NotFound,
}

/// The path of a URL as the runtime serialises it (`request.url`: absolute, WHATWG form),
/// without its query string or fragment. Found by scanning, not by parsing the URL again:
/// a serialised http(s) URL always has `scheme://authority` and then either nothing or a
/// path starting with `/`, in which `?` and `#` only appear as delimiters.
pub fn path_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[after_scheme..];
    let Some(start) = rest.find(['/', '?', '#']) else {
        return "/";
    };
    let path = &rest[start..];
    let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

/// Routes a request.
pub fn route<'a>(method: &str, path: &'a str) -> Route<'a> {
    let segment = |rest: &'a str| (!rest.is_empty() && !rest.contains('/')).then_some(rest);
    let (known, allow) = if let Some(p) = path.strip_prefix("/webhooks/").and_then(segment) {
        (Route::Webhook(p), "POST")
    } else if path == "/_hookvault/probe" {
        (Route::Probe(None), "POST")
    } else if let Some(p) = path.strip_prefix("/_hookvault/probe/").and_then(segment) {
        (Route::Probe(Some(p)), "POST")
    } else if path == "/healthz" {
        (Route::Health, "GET, HEAD")
    } else {
        return Route::NotFound;
    };
    let ok = match known {
        Route::Health => method == "GET" || method == "HEAD",
        _ => method == "POST",
    };
    if ok {
        known
    } else {
        Route::MethodNotAllowed(allow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route("POST", "/webhooks/skytells"),
            Route::Webhook("skytells")
        );
        assert_eq!(
            route("GET", "/webhooks/skytells"),
            Route::MethodNotAllowed("POST")
        );
        assert_eq!(route("POST", "/webhooks/"), Route::NotFound);
        assert_eq!(route("POST", "/webhooks/a/b"), Route::NotFound);
        assert_eq!(route("POST", "/_hookvault/probe"), Route::Probe(None));
        assert_eq!(
            route("POST", "/_hookvault/probe/gh"),
            Route::Probe(Some("gh"))
        );
        assert_eq!(route("GET", "/healthz"), Route::Health);
        assert_eq!(route("HEAD", "/healthz"), Route::Health);
        assert_eq!(
            route("POST", "/healthz"),
            Route::MethodNotAllowed("GET, HEAD")
        );
        assert_eq!(route("GET", "/"), Route::NotFound);
    }

    #[test]
    fn paths_of_serialised_urls() {
        for (url, path) in [
            (
                "https://hooks.example.com/webhooks/skytells",
                "/webhooks/skytells",
            ),
            (
                "http://127.0.0.1:8787/_hookvault/probe?x=1",
                "/_hookvault/probe",
            ),
            ("https://h.example/healthz#frag", "/healthz"),
            ("https://h.example/a/b?c=/d#e?f", "/a/b"),
            ("https://h.example", "/"),
            ("https://h.example?q=1", "/"),
            ("https://user:pw@h.example:8443/p", "/p"),
            ("/relative/only", "/relative/only"),
        ] {
            assert_eq!(path_of(url), path, "{url}");
        }
    }
}
