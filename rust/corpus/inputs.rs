//! Corpus inputs as given on a command line (files, directories, glob
//! patterns) → the list of files to read.

use crate::error::Error;
use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Expands each input: an existing file as is; a directory recursively
/// (regular files only, skipping hidden names starting with '.', sorted by
/// path); otherwise a glob pattern (sorted matches, files only). An input that
/// matches nothing is an error naming it. The result is de-duplicated, order
/// preserved.
pub fn expand_inputs(inputs: &[String]) -> Result<Vec<PathBuf>, Error> {
    let mut files = Vec::new();
    // Keyed by the canonical path, so `a.txt` and `./a.txt` are read once.
    let mut seen = HashSet::new();
    for input in inputs {
        for file in expand(input)? {
            if seen.insert(fs::canonicalize(&file).unwrap_or_else(|_| file.clone())) {
                files.push(file);
            }
        }
    }
    Ok(files)
}

/// Sum of the files' sizes on disk (progress totals); unreadable ones count 0.
pub fn total_size(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .map(|file| fs::metadata(file).map_or(0, |m| m.len()))
        .sum()
}

fn expand(input: &str) -> Result<Vec<PathBuf>, Error> {
    let path = Path::new(input);
    let (files, nothing) = match fs::metadata(path) {
        Ok(metadata) if metadata.is_dir() => {
            let mut files = Vec::new();
            walk(path, &mut files)?;
            files.sort();
            (files, "no files in this directory")
        }
        // Pipes and devices too, for process substitution.
        Ok(_) => return Ok(vec![path.to_path_buf()]),
        Err(e) if e.kind() == io::ErrorKind::NotFound => (
            matches(input)?,
            "no such file or directory, and no files match it as a pattern",
        ),
        Err(e) => return Err(Error::io(input, e)),
    };
    if files.is_empty() {
        return Err(Error::file(input, "", nothing));
    }
    Ok(files)
}

/// Adds the regular files under `dir`, recursively, except hidden ones.
/// Symbolic links to files are followed, to directories not (no cycles).
fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), Error> {
    let error = |e| Error::io(&dir.display().to_string(), e);
    for entry in fs::read_dir(dir).map_err(error)? {
        let entry = entry.map_err(error)?;
        if entry.file_name().as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(error)?;
        if kind.is_dir() {
            walk(&path, files)?;
        } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
            files.push(path);
        }
    }
    Ok(())
}

/// The files matching a glob pattern, sorted; hidden names only if the
/// pattern spells out their dot, as in a shell.
fn matches(pattern: &str) -> Result<Vec<PathBuf>, Error> {
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    let paths = glob::glob_with(pattern, options).map_err(|e| {
        let message = format!("no such file or directory, nor a valid glob pattern ({e})");
        Error::file(pattern, "", message)
    })?;
    let mut files = Vec::new();
    for path in paths {
        let path = path.map_err(|e| Error::io(&e.path().display().to_string(), e.into()))?;
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::testing::TempDir;

    fn string(path: &Path) -> String {
        path.display().to_string()
    }

    #[test]
    fn a_file_is_taken_as_is() {
        let dir = TempDir::new();
        let file = dir.write("[odd] name*.txt", b"x");
        assert_eq!(expand_inputs(&[string(&file)]).unwrap(), [file]);
    }

    #[test]
    fn a_directory_gives_its_visible_files_recursively_sorted() {
        let dir = TempDir::new();
        let b = dir.write("b.txt", b"b");
        let a2 = dir.write("a/2.jsonl", b"a2");
        let a1 = dir.write("a/1.jsonl.gz", b"a1");
        let c = dir.write("c/d/e.txt", b"e");
        dir.write(".hidden.txt", b"h");
        dir.write(".git/config", b"h");
        dir.write("a/.cache/x.txt", b"h");
        fs::create_dir_all(dir.path().join("empty")).unwrap();
        let files = expand_inputs(&[string(dir.path())]).unwrap();
        assert_eq!(files, [a1, a2, b, c]);
    }

    #[test]
    fn a_glob_gives_its_matching_files_sorted() {
        let dir = TempDir::new();
        let b = dir.write("b.jsonl", b"b");
        let a = dir.write("a.jsonl", b"a");
        let nested = dir.write("sub/c.jsonl", b"c");
        dir.write("a.txt", b"t");
        dir.write(".hidden.jsonl", b"h");
        fs::create_dir_all(dir.path().join("dir.jsonl")).unwrap();
        let pattern = string(&dir.path().join("*.jsonl"));
        assert_eq!(expand_inputs(&[pattern]).unwrap(), [a.clone(), b.clone()]);
        let pattern = string(&dir.path().join("**/*.jsonl"));
        assert_eq!(expand_inputs(&[pattern]).unwrap(), [a, b, nested]);
    }

    #[test]
    fn inputs_are_deduplicated_in_order() {
        let dir = TempDir::new();
        let a = dir.write("a.txt", b"a");
        let b = dir.write("b.txt", b"b");
        let inputs = [
            string(&b),
            string(&dir.path().join("*.txt")),
            string(&dir.path().join(".").join("b.txt")),
            string(dir.path()),
        ];
        assert_eq!(expand_inputs(&inputs).unwrap(), [b, a]);
    }

    #[test]
    fn an_input_matching_nothing_is_an_error_naming_it() {
        let dir = TempDir::new();
        dir.write("a.txt", b"a");
        dir.write("empty/.hidden", b"h");
        let missing = string(&dir.path().join("missing.jsonl"));
        let error = expand_inputs(std::slice::from_ref(&missing))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            format!("{missing}: no such file or directory, and no files match it as a pattern")
        );
        let pattern = string(&dir.path().join("*.jsonl"));
        let error = expand_inputs(std::slice::from_ref(&pattern))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with(&format!("{pattern}: ")), "{error}");
        let empty = string(&dir.path().join("empty"));
        let error = expand_inputs(std::slice::from_ref(&empty))
            .unwrap_err()
            .to_string();
        assert_eq!(error, format!("{empty}: no files in this directory"));
        let invalid = string(&dir.path().join("a[.txt"));
        let error = expand_inputs(std::slice::from_ref(&invalid))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(&format!(
                "{invalid}: no such file or directory, nor a valid glob pattern ("
            )),
            "{error}"
        );
    }

    #[test]
    fn total_size_adds_up_file_sizes() {
        let dir = TempDir::new();
        let files = [dir.write("a", b"123"), dir.write("b", b"45678")];
        assert_eq!(total_size(&files), 8);
        assert_eq!(total_size(&[]), 0);
    }
}
