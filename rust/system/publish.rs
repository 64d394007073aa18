//! Publishing finished files so that a crash or a power loss never leaves
//! one that looks finished but is not: contents go to `<name>.partial`, are
//! flushed to disk, renamed into place, and the directory entry is flushed
//! too (a rename lives in the directory; without that `fsync` a manifest can
//! survive a power loss that the file it lists does not).

use crate::error::Error;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The suffix of a file still being written.
pub(crate) const PARTIAL: &str = "partial";

/// Where `path` is written before it is published: `<name>.partial`.
pub(crate) fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{PARTIAL}"));
    path.with_file_name(name)
}

/// Writes `contents` to `path` as a whole: under the partial name first,
/// flushed to disk, then renamed into place durably. On an error the
/// partial file is removed and `path` is untouched.
pub(crate) fn write_durably(path: &Path, contents: &[u8]) -> Result<(), Error> {
    let partial = partial_path(path);
    let written = File::create(&partial)
        .and_then(|mut file| file.write_all(contents).and_then(|()| file.sync_all()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(Error::io(&path.display().to_string(), e));
    }
    rename_durably(&partial, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })
}

/// Renames a file whose contents are already on disk (`sync_all`ed) into
/// place, and flushes the directory so the new name survives a power loss.
pub(crate) fn rename_durably(from: &Path, to: &Path) -> Result<(), Error> {
    let shown = to.display().to_string();
    std::fs::rename(from, to).map_err(|e| Error::io(&shown, e))?;
    sync_directory_of(to)
}

/// Flushes the directory entry of `path` (POSIX: a directory opened
/// read-only; elsewhere there is no such call, and nothing to do).
#[cfg(unix)]
fn sync_directory_of(path: &Path) -> Result<(), Error> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    match File::open(directory).and_then(|d| d.sync_all()) {
        // Some file systems cannot flush a directory (EINVAL): they have
        // nothing to offer beyond the rename itself.
        Err(e) if e.kind() != std::io::ErrorKind::InvalidInput => {
            Err(Error::io(&directory.display().to_string(), e))
        }
        _ => Ok(()),
    }
}

#[cfg(not(unix))]
fn sync_directory_of(_: &Path) -> Result<(), Error> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partial_name_keeps_the_whole_name() {
        let path = Path::new("/d/manifest.json");
        assert_eq!(partial_path(path), Path::new("/d/manifest.json.partial"));
        assert_eq!(partial_path(Path::new("a.idx")), Path::new("a.idx.partial"));
    }

    #[test]
    fn a_published_file_replaces_the_old_one_and_leaves_no_partial() {
        let dir = std::env::temp_dir().join(format!("bbpe-publish-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.json");
        write_durably(&path, b"one").unwrap();
        write_durably(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert!(!partial_path(&path).exists());
        let error = write_durably(&dir.join("missing").join("y"), b"z").unwrap_err();
        assert!(error.to_string().contains("missing"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
