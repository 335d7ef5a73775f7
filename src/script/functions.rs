//! The node-wide function libraries (FUNCTION LOAD and friends): name, code and the functions
//! each registered. Every shard's interpreter loads them lazily when the registry's generation
//! moved (see `vm::sync_functions`), so a library loaded on one shard is callable from all.

use bytes::Bytes;
use std::sync::{Mutex, OnceLock};

/// What the registry knows of one function.
#[derive(Debug, Clone)]
pub struct FuncMeta {
    /// Name (unique node-wide).
    pub name: String,
    /// `sflags` bits.
    pub flags: u32,
    /// Description given to `register_function`.
    pub desc: Option<String>,
}

/// A library.
#[derive(Debug, Clone)]
pub struct Library {
    /// Library name.
    pub name: String,
    /// Its code, as loaded (shebang included).
    pub code: Bytes,
    /// Its functions, in registration order.
    pub funcs: Vec<FuncMeta>,
}

#[derive(Default)]
struct Registry {
    gen: u64,
    libs: Vec<Library>,
}

fn reg() -> std::sync::MutexGuard<'static, Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner())
}

/// Parses a library's `#!<engine> name=<name>` line: (engine, name).
pub fn metadata(code: &[u8]) -> Result<(String, String), String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let Some(end) = memchr::memchr(b'\n', code) else { return Err("Invalid library metadata".into()) };
    // Split as Redis's sdssplitargs (so `name="foo"` names `foo`).
    let words = crate::protocol::request::split_args(&code[..end]).ok_or("Invalid library metadata")?;
    let words: Vec<String> = words.iter().map(|w| String::from_utf8_lossy(w).into_owned()).collect();
    let mut parts = words.iter();
    let Some(engine) = parts.next() else { return Err("Invalid library metadata".into()) };
    let engine = engine.get(2..).unwrap_or_default().to_string();
    let mut name = None;
    for p in parts {
        let p = p.as_str();
        if p.len() >= 5 && p[..5].eq_ignore_ascii_case("name=") {
            if name.is_some() {
                return Err("Invalid metadata value, name argument was given multiple times".into());
            }
            name = Some(p[5..].to_string());
            continue;
        }
        return Err(format!("Invalid metadata value given: {p}"));
    }
    let Some(name) = name else { return Err("Library name was not given".into()) };
    if !valid_name(&name) {
        return Err(
            "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"
                .into(),
        );
    }
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("Engine '{engine}' not found"));
    }
    Ok((engine, name))
}

/// Letters, digits and underscores, at least one.
pub fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// The code with its shebang line blanked (line numbers stay right).
pub fn body(code: &[u8]) -> Vec<u8> {
    match memchr::memchr(b'\n', code) {
        Some(i) => code[i..].to_vec(),
        None => Vec::new(),
    }
}

/// Adds (or with `replace`, replaces) a library whose functions were probed; the error text
/// (without `ERR `) when it clashes.
pub fn add(lib: Library, replace: bool) -> Result<(), String> {
    let mut r = reg();
    if lib.funcs.is_empty() {
        return Err("No functions registered".into());
    }
    let mut seen = std::collections::HashSet::new();
    for f in &lib.funcs {
        if !valid_name(&f.name) {
            // Redis 7.0 words this check as for library names.
            return Err("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long".into());
        }
        if !seen.insert(f.name.clone()) {
            return Err("Function already exists in the library".into());
        }
    }
    let existing = r.libs.iter().position(|l| l.name == lib.name);
    if existing.is_some() && !replace {
        return Err(format!("Library '{}' already exists", lib.name));
    }
    for other in r.libs.iter().filter(|l| l.name != lib.name) {
        if let Some(f) = other.funcs.iter().find(|f| seen.contains(&f.name)) {
            return Err(format!("Function {} already exists", f.name));
        }
    }
    match existing {
        Some(i) => r.libs[i] = lib,
        None => r.libs.push(lib),
    }
    r.gen += 1;
    Ok(())
}

/// Deletes a library; false when there is none of that name.
pub fn delete(name: &[u8]) -> bool {
    let mut r = reg();
    let before = r.libs.len();
    r.libs.retain(|l| l.name.as_bytes() != name);
    let gone = r.libs.len() != before;
    if gone {
        r.gen += 1;
    }
    gone
}

/// Removes every library.
pub fn flush() {
    let mut r = reg();
    r.libs.clear();
    r.gen += 1;
}

/// Every library (FUNCTION LIST / DUMP, RDB).
pub fn libraries() -> Vec<Library> {
    reg().libs.clone()
}

/// The function of that name and its flags.
pub fn find(name: &[u8]) -> Option<FuncMeta> {
    reg().libs.iter().flat_map(|l| l.funcs.iter()).find(|f| f.name.as_bytes().eq_ignore_ascii_case(name)).cloned()
}

/// (generation, the libraries' bodies) for an interpreter to load.
pub fn snapshot() -> (u64, Vec<Vec<u8>>) {
    let r = reg();
    (r.gen, r.libs.iter().map(|l| body(&l.code)).collect())
}

/// (libraries, functions) counts.
pub fn counts() -> (usize, usize) {
    let r = reg();
    (r.libs.len(), r.libs.iter().map(|l| l.funcs.len()).sum())
}

/// Bytes of code of the loaded libraries (INFO `used_memory_functions`).
pub fn code_bytes() -> usize {
    reg().libs.iter().map(|l| l.code.len()).sum()
}

/// RDB opcode of a function library (`RDB_OPCODE_FUNCTION2`).
pub const OPCODE_FUNCTION2: u8 = 0xF5;

/// Every library as RDB records (one `RDB_OPCODE_FUNCTION2` + code string each): what an RDB
/// file carries after its aux fields, and FUNCTION DUMP's payload body.
pub fn rdb_records() -> Vec<u8> {
    let mut out = Vec::new();
    for lib in libraries() {
        out.push(OPCODE_FUNCTION2);
        crate::persist::rdb::put_string(&mut out, &lib.code, false);
    }
    out
}

/// Replaces the libraries with those an RDB file carried (loading a file or a full sync).
pub fn install(codes: &[Vec<u8>]) -> Result<(), String> {
    if codes.is_empty() && counts().0 == 0 {
        return Ok(());
    }
    flush();
    for code in codes {
        if let Err(e) = crate::cmd::function::load_library(Bytes::copy_from_slice(code), true) {
            let text = match e {
                crate::protocol::Reply::Error(t) => t.into_owned(),
                _ => String::new(),
            };
            return Err(format!("Failed loading library: {text}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_forms() {
        assert_eq!(metadata(b"#!lua name=mylib\nx"), Ok(("lua".into(), "mylib".into())));
        assert_eq!(metadata(b"return 1").unwrap_err(), "Missing library metadata");
        assert_eq!(metadata(b"#!lua\n").unwrap_err(), "Library name was not given");
        assert_eq!(metadata(b"#!lua name=a foo=bar\n").unwrap_err(), "Invalid metadata value given: foo=bar");
        assert_eq!(metadata(b"#!py name=a\n").unwrap_err(), "Engine 'py' not found");
    }
}
