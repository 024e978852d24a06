//! Reading the body: from a file, or from stdin, with a size cap.

use std::io::Read;
use std::path::Path;

/// The largest body the CLI reads (the edge's default cap is far lower).
pub const MAX_BODY: u64 = 64 * 1024 * 1024;

/// Reads the body from `path`, or stdin when it is `None` or `-`.
pub fn read(path: Option<&Path>) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match path {
        Some(p) if p != Path::new("-") => {
            std::fs::File::open(p)?
                .take(MAX_BODY + 1)
                .read_to_end(&mut out)?;
        }
        _ => {
            std::io::stdin()
                .lock()
                .take(MAX_BODY + 1)
                .read_to_end(&mut out)?;
        }
    }
    if out.len() as u64 > MAX_BODY {
        return Err(std::io::Error::other(format!(
            "body is larger than {MAX_BODY} bytes"
        )));
    }
    Ok(out)
}
