//! `skinscan`: the native command line over the same pipeline the page runs.
//!
//! ```text
//! skinscan classify IMAGE [--age N] [--sex male|female] [--site SITE] [--json] [--models DIR] [--model ID]
//! skinscan evaluate --images DIR --labels CSV [--json] [--predictions FILE] [--models DIR] [--model ID]
//! skinscan bench IMAGE [--runs N] [--models DIR] [--model ID]
//! ```
//! On any error: exit status 2 and one line `error: …` on stderr.

// The CLI reads files and uses std::time::Instant, neither of which exists on
// wasm32-unknown-unknown; there the page uses the library's wasm facade instead, and this
// binary is an empty stub so that `cargo build --target wasm32-unknown-unknown` still builds.
#[cfg(not(target_arch = "wasm32"))]
mod cli;

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    cli::main();
}

#[cfg(target_arch = "wasm32")]
fn main() {}
