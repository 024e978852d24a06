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
}
