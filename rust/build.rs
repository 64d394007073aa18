//! Generates the Unicode character-class table used by the GPT-2 pre-tokenizer.
//!
//! The classes come from `regex-syntax`, the parser behind the `regex` and
//! `fancy-regex` crates, so `\p{L}`, `\p{N}` and `\s` mean exactly what they
//! mean to the regex engines tiktoken is built on.
//!
//! It also sets the `x86_simd` cfg, which selects the x86-64 SIMD code paths;
//! the `portable` feature turns it off, so an x86-64 machine builds and tests the
//! plain Rust that other processors (aarch64) compile. With the `python`
//! feature it passes on PyO3's cfgs of the interpreter built for, and sets
//! `permanent_ints` where the bindings may make ints permanent and
//! `list_slots_from_pymem` where they may give lists slots of their own.

use regex_syntax::hir::{Class, HirKind};
use std::{env, fs, path::Path};

const LETTER: u8 = 1;
const NUMBER: u8 = 2;
const SPACE: u8 = 3;
const CODE_POINTS: usize = 0x11_0000;
const BLOCK: usize = 256;

fn class_ranges(pattern: &str) -> Vec<(u32, u32)> {
    let hir = regex_syntax::parse(pattern).expect("class pattern parses");
    match hir.kind() {
        HirKind::Class(Class::Unicode(class)) => class
            .ranges()
            .iter()
            .map(|r| (r.start() as u32, r.end() as u32))
            .collect(),
        other => panic!("{pattern} is not a Unicode class: {other:?}"),
    }
}

/// Sets `x86_simd` on x86-64 unless the `portable` feature asks for the
/// code paths of other processors.
fn select_code_paths() {
    println!("cargo::rustc-check-cfg=cfg(x86_simd)");
    let x86_64 = env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|arch| arch == "x86_64");
    if x86_64 && env::var_os("CARGO_FEATURE_PORTABLE").is_none() {
        println!("cargo::rustc-cfg=x86_simd");
    }
}

/// PyO3's cfgs, and `permanent_ints` and `list_slots_from_pymem` (see
/// `python/id_lists.rs`) for the interpreters whose object layout that was
/// checked on: CPython 3.10-3.13, 64-bit, with the GIL, not a debug build.
/// Elsewhere lists raise their ints' reference counts and are made by
/// `PyList_New`, as usual.
#[cfg(feature = "python")]
fn python_cfgs() {
    use pyo3_build_config::{BuildFlag, PythonImplementation};
    pyo3_build_config::use_pyo3_cfgs();
    println!("cargo::rustc-check-cfg=cfg(permanent_ints)");
    println!("cargo::rustc-check-cfg=cfg(list_slots_from_pymem)");
    let config = pyo3_build_config::get();
    let (flags, version) = (&config.build_flags().0, config.version());
    let checked = config.implementation() == PythonImplementation::CPython
        && version.major == 3
        && (10..=13).contains(&version.minor)
        && env::var("CARGO_CFG_TARGET_POINTER_WIDTH").is_ok_and(|bits| bits == "64")
        && ![
            BuildFlag::Py_GIL_DISABLED,
            BuildFlag::Py_REF_DEBUG,
            BuildFlag::Py_DEBUG,
        ]
        .iter()
        .any(|flag| flags.contains(flag));
    if checked {
        println!("cargo::rustc-cfg=permanent_ints");
        println!("cargo::rustc-cfg=list_slots_from_pymem");
    }
}

fn main() {
    select_code_paths();
    #[cfg(feature = "python")]
    python_cfgs();
    let mut table = vec![0u8; CODE_POINTS];
    for (pattern, class) in [(r"\p{L}", LETTER), (r"\p{N}", NUMBER), (r"\s", SPACE)] {
        for (start, end) in class_ranges(pattern) {
            for cp in start..=end {
                assert_eq!(table[cp as usize], 0, "U+{cp:04X} is in two classes");
                table[cp as usize] = class;
            }
        }
    }

    // Two-level table: a block id per 256 code points, then the distinct
    // blocks. The first four blocks are uniform, one per class, with ids equal
    // to the class code, so a lookup in a block of one class throughout can
    // stop at the first level.
    let uniform: Vec<Vec<u8>> = (0..4).map(|code| vec![code; BLOCK]).collect();
    let mut blocks: Vec<&[u8]> = uniform.iter().map(Vec::as_slice).collect();
    let mut index = Vec::with_capacity(CODE_POINTS / BLOCK);
    for chunk in table.chunks(BLOCK) {
        let position = blocks.iter().position(|b| *b == chunk).unwrap_or_else(|| {
            blocks.push(chunk);
            blocks.len() - 1
        });
        index.push(u16::try_from(position).expect("fewer than 65536 distinct blocks"));
    }

    let mut out = String::new();
    out.push_str(&format!(
        "pub(crate) static BLOCK_INDEX: [u16; {}] = {:?};\n",
        index.len(),
        index
    ));
    out.push_str(&format!(
        "pub(crate) static BLOCKS: [[u8; {BLOCK}]; {}] = [\n",
        blocks.len()
    ));
    for block in &blocks {
        out.push_str(&format!("    {block:?},\n"));
    }
    out.push_str("];\n");
    let path = Path::new(&env::var("OUT_DIR").unwrap()).join("unicode_classes.rs");
    fs::write(path, out).unwrap();
    println!("cargo:rerun-if-changed=rust/build.rs");
}
