//! The test build's hooks (cargo feature `test-hooks`, `scripts/build-edge.sh
//! --test-build`); never in the deployed Worker.

use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen(inline_js = r#"
export function break_webcrypto() {
  const fail = () => Promise.reject(new Error("WebCrypto broken by the test build"));
  for (const name of ["importKey", "sign", "digest"]) {
    Object.defineProperty(crypto.subtle, name, { value: fail, configurable: true, writable: true });
  }
  const throws = () => { throw new Error("WebCrypto broken by the test build"); };
  Object.defineProperty(crypto, "getRandomValues", { value: throws, configurable: true, writable: true });
}
"#)]
extern "C" {
    /// Makes every WebCrypto call the edge makes (`importKey`, `sign`, `digest`,
    /// `getRandomValues`) fail, for this isolate: the tests check that the Rust hashes
    /// take over, that trace ids are still made, and that nothing is lost.
    pub fn break_webcrypto();
}
