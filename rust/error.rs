//! The crate's error type: every message names what was wrong and where.

use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// A vocabulary or corpus file that cannot be used, with the place in it.
    File {
        path: String,
        location: String,
        message: String,
    },
    Io {
        path: String,
        source: std::io::Error,
    },
    /// An id that the vocabulary does not have.
    UnknownId(u32),
    /// A value that breaks a precondition (a pattern, a setting, a token).
    Invalid(String),
    /// A failure inside bbpe itself (a worker thread that panicked).
    Internal(String),
}

impl Error {
    pub fn file(path: &str, location: impl Into<String>, message: impl Into<String>) -> Self {
        Error::File {
            path: path.to_string(),
            location: location.into(),
            message: message.into(),
        }
    }

    pub fn io(path: &str, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_string(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::File {
                path,
                location,
                message,
            } if location.is_empty() => write!(f, "{path}: {message}"),
            Error::File {
                path,
                location,
                message,
            } => write!(f, "{path}, {location}: {message}"),
            Error::Io { path, source } => write!(f, "{path}: {source}"),
            Error::UnknownId(id) => write!(f, "token id {id} is not in the vocabulary"),
            Error::Invalid(message) | Error::Internal(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
