//! The files in a prediction's `output`, whatever its shape.
//!
//! Models return a URL, a list of URLs, an object (`{"image": "https://…", "coords": …}`,
//! Cog-style), lists of objects, nested lists, text (a list of LLM tokens), numbers, or
//! `data:` URIs (RFC 2397). [`files`] walks the value in document order and finds every
//! string that is a file: an `http`/`https` URL (the whole string) or a `data:` URI. Every
//! other value is text: the archiver keeps the `output` value itself verbatim, so nothing
//! needs to be found to be kept.
//!
//! Each file's place in `output` is a JSON Pointer (RFC 6901): `""` for a bare string,
//! `/0` for a list's first item, `/image` for an object's member.

use serde_json::Value;

/// Where a file comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    /// An `http` or `https` URL: downloaded through the URL guard.
    Url(&'a str),
    /// A `data:` URI: decoded, within the size cap.
    DataUri(&'a str),
}

/// One file found in `output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile<'a> {
    /// Its place in `output`, as a JSON Pointer (RFC 6901).
    pub pointer: String,
    /// The string that names it.
    pub source: Source<'a>,
}

/// True if `s` starts with `prefix`, ASCII case-insensitively.
fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// What a string of `output` is: a file's source, or text (`None`). A URL is the whole
/// string, `http://` or `https://` then no whitespace or control character; a string with
/// a URL inside a sentence is text. A `data:` URI has RFC 2397's header before its first
/// comma (empty, `;base64`, or a media type), with no whitespace; `data:` alone, or
/// `data: see below, …`, is text.
pub fn classify(s: &str) -> Option<Source<'_>> {
    if starts_with_ignore_case(s, "data:") {
        // RFC 2397: `data:[<mediatype>][;base64],<data>`. Text that merely starts with
        // `data:` (an LLM token, "data: see below") has no such header before a comma.
        let header = s[5..].split_once(',').map(|(h, _)| h);
        let is_uri = header.is_some_and(|h| {
            !h.chars().any(|c| c.is_whitespace() || c.is_control())
                && (h.is_empty() || h.starts_with(';') || h.contains('/'))
        });
        return is_uri.then_some(Source::DataUri(s));
    }
    let url = (starts_with_ignore_case(s, "https://") || starts_with_ignore_case(s, "http://"))
        && !s.chars().any(|c| c.is_whitespace() || c.is_control());
    url.then_some(Source::Url(s))
}

/// Every file in `output`, in document order (an object's members in the order
/// `serde_json` keeps them: sorted by key).
pub fn files(output: &Value) -> Vec<OutputFile<'_>> {
    let mut out = Vec::new();
    walk(output, &mut String::new(), &mut out);
    out
}

fn walk<'a>(v: &'a Value, pointer: &mut String, out: &mut Vec<OutputFile<'a>>) {
    match v {
        Value::String(s) => {
            if let Some(source) = classify(s) {
                out.push(OutputFile {
                    pointer: pointer.clone(),
                    source,
                });
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&i.to_string());
                walk(item, pointer, out);
                pointer.truncate(len);
            }
        }
        Value::Object(members) => {
            for (name, item) in members {
                let len = pointer.len();
                pointer.push('/');
                // RFC 6901: `~` is written `~0` and `/` is written `~1`.
                pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
                walk(item, pointer, out);
                pointer.truncate(len);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// The file extension (with its dot) for a media type such as `image/png` or
/// `image/jpeg; charset=…`; `.bin` for a type not in this short list of what models
/// return. A table of a dozen lines, not a MIME database: the archive's keys only need a
/// helpful extension, and the media type itself is stored as the object's content type.
pub fn extension_for_media_type(media_type: &str) -> &'static str {
    let essence = media_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "image/png" => ".png",
        "image/jpeg" => ".jpg",
        "image/gif" => ".gif",
        "image/webp" => ".webp",
        "image/svg+xml" => ".svg",
        "video/mp4" => ".mp4",
        "video/webm" => ".webm",
        "audio/mpeg" => ".mp3",
        "audio/wav" | "audio/x-wav" | "audio/wave" => ".wav",
        "audio/ogg" => ".ogg",
        "application/json" => ".json",
        "application/pdf" => ".pdf",
        "text/plain" => ".txt",
        _ => ".bin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn found(v: &Value) -> Vec<(String, Source<'_>)> {
        files(v)
            .into_iter()
            .map(|f| (f.pointer, f.source))
            .collect()
    }

    #[test]
    fn files_are_found_in_every_shape_with_their_place() {
        let v = json!("https://cdn/x.png");
        assert_eq!(
            found(&v),
            vec![(String::new(), Source::Url("https://cdn/x.png"))]
        );
        let v = json!({"image": "https://cdn/x.png", "coords": [1, 2], "caption": "a cat"});
        assert_eq!(
            found(&v),
            vec![("/image".into(), Source::Url("https://cdn/x.png"))]
        );
        let v = json!([[ "HTTPS://cdn/a.png" ], [{ "a/b~c": "data:text/plain,hi" }]]);
        assert_eq!(
            found(&v),
            vec![
                ("/0/0".into(), Source::Url("HTTPS://cdn/a.png")),
                ("/1/0/a~1b~0c".into(), Source::DataUri("data:text/plain,hi")),
            ]
        );
    }

    #[test]
    fn text_numbers_and_urls_inside_sentences_are_not_files() {
        for v in [
            json!(["Hello", " world", "!"]),
            json!("see https://cdn/x.png for the picture"),
            json!("https://cdn/x.png\n"),
            json!(42),
            json!(null),
            json!({"ok": true}),
            json!("ftp://cdn/x"),
            json!("http"),
            json!("data:"),
            json!(["data", ":", "data:"]),
            json!("data: see below, then more"),
            json!("data:text"),
        ] {
            assert!(files(&v).is_empty(), "{v}");
        }
    }

    #[test]
    fn data_uris_need_rfc_2397_s_header() {
        for uri in [
            "data:,hello",
            "data:;base64,aGk=",
            "data:text/plain;charset=US-ASCII,hi",
            "DATA:image/png;base64,iVBORw0KGgo=",
        ] {
            assert_eq!(classify(uri), Some(Source::DataUri(uri)), "{uri}");
        }
    }

    #[test]
    fn media_types_map_to_extensions() {
        assert_eq!(extension_for_media_type("image/PNG"), ".png");
        assert_eq!(
            extension_for_media_type("text/plain;charset=US-ASCII"),
            ".txt"
        );
        assert_eq!(extension_for_media_type("application/x-unknown"), ".bin");
        assert_eq!(extension_for_media_type(""), ".bin");
    }
}
