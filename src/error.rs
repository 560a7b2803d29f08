//! The one error type of the crate. Every variant prints as a single line that the CLI
//! (`error: …`) and the page can show as it is.

/// Everything that can go wrong, from bytes to assessment.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Zero bytes were given.
    #[error("no image data: the file is empty")]
    Empty,

    /// A recognised format that we deliberately do not decode (HEIC, AVIF, SVG, PDF, …).
    #[error("{format} is not supported; {advice}")]
    Unsupported { format: String, advice: String },

    /// Bytes that are not any image format we know of.
    #[error("not a recognised image: {0}")]
    UnknownFormat(String),

    /// A supported format whose data is broken or cut short.
    #[error("corrupt or truncated image: {0}")]
    Corrupt(String),

    /// Dimensions over the decoder's caps (checked before the pixels are allocated).
    #[error("image too large: {width}x{height} pixels (the limit is {max_side} pixels per side and {max_megapixels} megapixels)")]
    TooLarge {
        width: u32,
        height: u32,
        max_side: u32,
        max_megapixels: u32,
    },

    /// The decoder would need more memory than the cap allows.
    #[error("image too large to decode safely: {0}")]
    MemoryLimit(String),

    /// A metadata field (or a model id) with an invalid value.
    #[error("invalid field `{field}`: {reason}")]
    Input { field: String, reason: String },

    /// `manifest.json` is malformed or inconsistent.
    #[error("invalid manifest: {0}")]
    Manifest(String),

    /// A model blob whose SHA-256 differs from the manifest's.
    #[error(
        "model file {file} does not match the manifest (sha256 expected {expected}, got {actual})"
    )]
    Checksum {
        file: String,
        expected: String,
        actual: String,
    },

    /// tract could not load or run a model.
    #[error("model {model}: {message}")]
    Model { model: String, message: String },

    /// A file that could not be read or written (native only).
    #[error("{path}: {message}")]
    Io { path: String, message: String },

    /// A malformed labels CSV.
    #[error("{path}, line {line}: {reason}")]
    Labels {
        path: String,
        line: usize,
        reason: String,
    },
}

impl Error {
    pub(crate) fn input(field: &str, reason: impl Into<String>) -> Self {
        Error::Input {
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn manifest(reason: impl Into<String>) -> Self {
        Error::Manifest(reason.into())
    }

    /// An I/O error on `path`, as one line.
    pub fn io(path: impl AsRef<std::path::Path>, err: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            message: err.to_string(),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
