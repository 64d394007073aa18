//! Argument parsing the Rust benches share.

/// The numbers of a comma-separated option value, such as `--threads 1,2,4`.
pub fn numbers(value: Option<String>, option: &str) -> Vec<usize> {
    let value = value.unwrap_or_else(|| panic!("{option} takes a value such as 1,2,4"));
    value
        .split(',')
        .map(|n| {
            n.parse()
                .unwrap_or_else(|_| panic!("{option}: {n:?} is not a number"))
        })
        .collect()
}

/// The number an option such as `--repeats 3` is given.
pub fn number(value: Option<String>, option: &str) -> usize {
    match numbers(value, option)[..] {
        [n] => n,
        _ => panic!("{option} takes one number"),
    }
}
