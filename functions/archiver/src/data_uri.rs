//! `data:` URIs in a prediction's `output` (RFC 2397, read as the Fetch Standard's data
//! URL processor does, by the `data-url` crate): decoded within the size cap, stored as
//! files with their media type.
//!
//! `data:[<media type>][;base64],<data>`: without a media type the type is
//! `text/plain;charset=US-ASCII`; a `#fragment` is not part of the data and is dropped.
//! A URI without the comma, or whose base64 cannot be decoded, is
//! [`DataUriError::Invalid`] (`OUTPUT_DATA_URI_INVALID`); one that decodes to more than
//! the cap is [`DataUriError::TooLarge`] (`OUTPUT_TOO_LARGE`). Both are permanent: the
//! URI is in the event, which is kept, and no redelivery changes it.

use data_url::forgiving_base64::DecodeError;
use data_url::DataUrl;

/// A decoded `data:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The decoded bytes.
    pub bytes: Vec<u8>,
    /// The media type with its parameters, as the parser normalised it (`image/png`,
    /// `text/plain;charset=US-ASCII`): the stored object's content type. Falls back to
    /// `application/octet-stream` if it cannot be an HTTP header value.
    pub content_type: String,
    /// The media type without parameters (`image/png`): for the extension and
    /// `source_url` (`data:image/png`).
    pub essence: String,
}

/// Why a `data:` URI cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataUriError {
    /// Not a data URI (no comma), or base64 that does not decode. Permanent.
    #[error("the data: URI cannot be decoded: {0}")]
    Invalid(String),
    /// It decodes to more than the cap (bytes). Permanent.
    #[error("the data: URI decodes to more than the {0}-byte cap")]
    TooLarge(u64),
}

impl DataUriError {
    /// The `error_id` written to `failure.json`.
    pub fn error_id(&self) -> &'static str {
        match self {
            DataUriError::Invalid(_) => "OUTPUT_DATA_URI_INVALID",
            DataUriError::TooLarge(_) => "OUTPUT_TOO_LARGE",
        }
    }
}

/// The cap was passed while decoding.
struct OverCap;

/// Decodes `uri`, refusing more than `max_bytes` decoded bytes (checked while decoding:
/// the decoded data is never larger than the cap plus one chunk).
pub fn decode(uri: &str, max_bytes: u64) -> Result<Decoded, DataUriError> {
    let url = DataUrl::process(uri).map_err(|e| DataUriError::Invalid(e.to_string()))?;
    let mime = url.mime_type();
    let essence = format!("{}/{}", mime.type_, mime.subtype);
    let full = mime.to_string();
    let content_type = if crate::store::is_header_safe(&full) {
        full
    } else {
        "application/octet-stream".to_owned()
    };
    let mut bytes = Vec::new();
    url.decode(|chunk: &[u8]| {
        if (bytes.len() + chunk.len()) as u64 > max_bytes {
            return Err(OverCap);
        }
        bytes.extend_from_slice(chunk);
        Ok(())
    })
    .map_err(|e| match e {
        DecodeError::InvalidBase64(b) => DataUriError::Invalid(format!("invalid base64: {b}")),
        DecodeError::WriteError(OverCap) => DataUriError::TooLarge(max_bytes),
    })?;
    Ok(Decoded {
        bytes,
        content_type,
        essence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_percent_encoded_data_decode_with_their_media_type() {
        let png = decode("data:image/png;base64,iVBORw0KGgo=", 1024).unwrap();
        assert_eq!(png.bytes, b"\x89PNG\r\n\x1a\n");
        assert_eq!(
            (png.content_type.as_str(), png.essence.as_str()),
            ("image/png", "image/png")
        );
        let text = decode("data:,Hello%2C%20world#frag", 1024).unwrap();
        assert_eq!(text.bytes, b"Hello, world");
        assert_eq!(text.content_type, "text/plain;charset=US-ASCII");
        assert_eq!(text.essence, "text/plain");
        let upper = decode("DATA:Image/PNG;BASE64,AAEC", 1024).unwrap();
        assert_eq!(
            (upper.bytes.as_slice(), upper.essence.as_str()),
            (&[0u8, 1, 2][..], "image/png")
        );
    }

    #[test]
    fn undecodable_and_oversized_uris_are_refused() {
        for uri in ["data:image/png;base64", "data:;base64,a", "data:;base64,*"] {
            let e = decode(uri, 1024).unwrap_err();
            assert_eq!(e.error_id(), "OUTPUT_DATA_URI_INVALID", "{uri}: {e}");
        }
        let e = decode("data:;base64,AAECAwQF", 5).unwrap_err();
        assert_eq!(e, DataUriError::TooLarge(5));
        assert_eq!(e.error_id(), "OUTPUT_TOO_LARGE");
        assert_eq!(decode("data:;base64,AAECAwQF", 6).unwrap().bytes.len(), 6);
    }
}
