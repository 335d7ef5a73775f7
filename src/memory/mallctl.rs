//! DEBUG MALLCTL and DEBUG MALLCTL-STR: read (and optionally write) one of jemalloc's control
//! names, with Redis's rules: an integer is read at 8 bytes, then 4, 2 and 1 until the size
//! matches the name's type; a write-only name is written; errors are the C library's text for
//! jemalloc's error number ("No such file or directory" for an unknown name).
//!
//! One difference, on purpose: Redis reads any name as a string for MALLCTL-STR and
//! dereferences what comes back, so asking it for an integer name (`arenas.page`) crashes the
//! server. Here only names jemalloc defines as strings are read as strings; any other name
//! answers "Invalid argument", jemalloc's own error for a wrong type.

use std::ffi::{c_void, CString};

/// What a MALLCTL call answers.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// The value read (before any write).
    Int(i64),
    /// The string read (before any write).
    Str(String),
    /// A write-only name was written.
    Ok,
    /// The C library's text for jemalloc's error number.
    Err(String),
}

fn strerror(code: i32) -> String {
    // SAFETY: strerror returns a pointer to a NUL-terminated static or thread-local string.
    unsafe { std::ffi::CStr::from_ptr(libc::strerror(code)) }.to_string_lossy().into_owned()
}

fn c_name(name: &[u8]) -> Result<CString, Answer> {
    // A name with a NUL byte cannot exist.
    CString::new(name).map_err(|_| Answer::Err(strerror(libc::ENOENT)))
}

/// DEBUG MALLCTL `name` [`value`].
pub fn int(name: &[u8], value: Option<i64>) -> Answer {
    let name = match c_name(name) {
        Ok(n) => n,
        Err(a) => return a,
    };
    let mut val = value.unwrap_or(0);
    let mut old: i64 = 0;
    let mut sz = std::mem::size_of::<i64>();
    while sz > 0 {
        let (newp, newlen) = match value {
            Some(_) => (&mut val as *mut i64 as *mut c_void, sz),
            None => (std::ptr::null_mut(), 0),
        };
        // SAFETY: `old` has room for 8 bytes and `sz` never exceeds that; `newp` points at
        // `val` (8 bytes) with `newlen` <= 8, or is null. On a little-endian machine the low
        // `sz` bytes of both are the value at that size.
        let mut ret = unsafe {
            tikv_jemalloc_sys::mallctl(name.as_ptr(), &mut old as *mut i64 as *mut c_void, &mut sz, newp, newlen)
        };
        if ret == 0 {
            return Answer::Int(old);
        }
        if ret == libc::EPERM && value.is_some() {
            // A write-only name: write it without reading.
            // SAFETY: as above, with no old value asked for.
            ret = unsafe {
                tikv_jemalloc_sys::mallctl(name.as_ptr(), std::ptr::null_mut(), std::ptr::null_mut(), newp, sz)
            };
            if ret == 0 {
                return Answer::Ok;
            }
        }
        if ret != libc::EINVAL {
            return Answer::Err(strerror(ret));
        }
        // The size may be wrong: try a smaller one.
        sz /= 2;
    }
    Answer::Err(strerror(libc::EINVAL))
}

/// True for the names jemalloc defines as strings (`const char *`).
fn is_string_name(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "version",
        "config.malloc_conf",
        "opt.metadata_thp",
        "opt.dss",
        "opt.percpu_arena",
        "opt.stats_print_opts",
        "opt.stats_interval_opts",
        "opt.junk",
        "opt.thp",
        "opt.prof_prefix",
        "opt.prof_time_res",
        "opt.zero_realloc",
        "thread.prof.name",
        "prof.dump",
        "prof.prefix",
        "prof.log_start",
    ];
    let indexed = |prefix: &str, suffix: &str| {
        name.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
            .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
    };
    NAMES.contains(&name) || indexed("arena.", ".dss") || indexed("stats.arenas.", ".dss")
}

/// DEBUG MALLCTL-STR `name` [`value`] (`VOID` writes no value, for names that act on write).
pub fn string(name: &[u8], value: Option<&[u8]>) -> Answer {
    let cname = match c_name(name) {
        Ok(n) => n,
        Err(a) => return a,
    };
    let is_string = is_string_name(&String::from_utf8_lossy(name));
    let mut old: *const libc::c_char = std::ptr::null();
    let mut sz = std::mem::size_of::<*const libc::c_char>();
    // SAFETY: `old` has room for a pointer, and `sz` is its size.
    let read = unsafe {
        tikv_jemalloc_sys::mallctl(
            cname.as_ptr(),
            &mut old as *mut *const libc::c_char as *mut c_void,
            &mut sz,
            std::ptr::null_mut(),
            0,
        )
    };
    if read == 0 && !is_string {
        // Not a string: what came back is not a pointer to text.
        return Answer::Err(strerror(libc::EINVAL));
    }
    if read != 0 && !(read == libc::EPERM && value.is_some()) {
        return Answer::Err(strerror(read));
    }
    let mut write = 0;
    if let Some(v) = value {
        write = if v == b"VOID" {
            // SAFETY: no old value, no new value.
            unsafe {
                tikv_jemalloc_sys::mallctl(
                    cname.as_ptr(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    0,
                )
            }
        } else {
            if !is_string {
                return Answer::Err(strerror(libc::EINVAL));
            }
            let Ok(text) = CString::new(v) else { return Answer::Err(strerror(libc::EINVAL)) };
            let mut p = text.as_ptr();
            // SAFETY: `p` points at a NUL-terminated string alive for the call; the new value
            // is that pointer, of a pointer's size.
            unsafe {
                tikv_jemalloc_sys::mallctl(
                    cname.as_ptr(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    &mut p as *mut *const libc::c_char as *mut c_void,
                    std::mem::size_of::<*const libc::c_char>(),
                )
            }
        };
    }
    if read == 0 {
        if old.is_null() {
            return Answer::Str(String::new());
        }
        // SAFETY: jemalloc returned a string name's value: a NUL-terminated static string.
        return Answer::Str(unsafe { std::ffi::CStr::from_ptr(old) }.to_string_lossy().into_owned());
    }
    if write != 0 {
        return Answer::Err(strerror(write));
    }
    Answer::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_strings_and_errors_read_as_redis_reads_them() {
        assert_eq!(int(b"arenas.page", None), Answer::Int(4096));
        assert_eq!(int(b"nosuch", None), Answer::Err("No such file or directory".into()));
        // A bool is one byte: Redis's sizes 8, 4, 2, 1 end with "Invalid argument" because
        // jemalloc shrinks the size it was given to the type's on the first mismatch.
        assert!(matches!(int(b"opt.abort", None), Answer::Err(_) | Answer::Int(_)));
        assert_eq!(int(b"opt.narenas", Some(3)), Answer::Err("Operation not permitted".into()));
        assert!(matches!(string(b"version", None), Answer::Str(v) if v.starts_with("5.")));
        assert!(matches!(string(b"opt.dss", None), Answer::Str(_)));
        assert_eq!(string(b"nosuch", None), Answer::Err("No such file or directory".into()));
        assert_eq!(string(b"arenas.page", None), Answer::Err("Invalid argument".into()), "no crash");
        assert_eq!(string(b"thread.tcache.flush", Some(b"VOID")), Answer::Ok);
        assert!(is_string_name("arena.0.dss") && is_string_name("stats.arenas.12.dss"));
        assert!(!is_string_name("arena..dss") && !is_string_name("arenas.page"));
    }
}
