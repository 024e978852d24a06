//! No crate in the workspace turns on reqwest's response decompression (issue 22, item 6).
//!
//! reqwest decompresses `Content-Encoding: gzip`, `br`, `deflate` and `zstd` bodies only
//! with its features of those names, which pull in the `async-compression` crate and the
//! codecs (`flate2`, `brotli`, `zstd`). Cargo unifies features across the workspace, so a
//! test crate or a new dependency enabling one would turn it on for the archiver too: the
//! bytes stored would no longer be the bytes the CDN served. The downloader refuses
//! decompression explicitly (`no_gzip`, `no_brotli`, `no_deflate`, `no_zstd`, which exist
//! whatever the features); this test keeps the lock free of the codecs as well, so that
//! line is never the only thing standing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn the_lock_has_no_decompression_codec() {
    let lock = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock");
    let text = std::fs::read_to_string(&lock).expect("the workspace's Cargo.lock");
    for codec in [
        "async-compression",
        "flate2",
        "brotli",
        "brotli-decompressor",
        "zstd",
    ] {
        assert!(
            !text.contains(&format!("\nname = \"{codec}\"\n")),
            "{codec} is in Cargo.lock: some crate turned on reqwest's decompression; the \
             archiver must store outputs as served (functions/archiver/src/download.rs)"
        );
    }
    assert!(text.contains("\nname = \"reqwest\"\n"), "the lock was read");
}
