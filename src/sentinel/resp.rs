//! The client side of RESP2 for Sentinel's links to instances: commands out as arrays of bulk
//! strings, replies in as [`Value`]s. Sans-IO: `parse` takes what is buffered and says how many
//! bytes one complete reply used.

/// One reply read from an instance.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Value>),
}

impl Value {
    /// The text of a status, bulk or error reply.
    pub fn text(&self) -> Option<String> {
        match self {
            Value::Status(s) | Value::Error(s) => Some(s.clone()),
            Value::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }
}

/// Appends `argv` as a RESP array of bulk strings.
pub fn encode(argv: &[Vec<u8>], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", argv.len()).as_bytes());
    for a in argv {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Builds an argv from string slices.
pub fn argv(parts: &[&str]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.as_bytes().to_vec()).collect()
}

fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(at..)?;
    let nl = memchr::memchr(b'\n', rest)?;
    if nl == 0 || rest[nl - 1] != b'\r' {
        return None;
    }
    Some((&rest[..nl - 1], at + nl + 1))
}

fn num(b: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).ok_or_else(|| "Protocol error: bad number".to_string())
}

/// Parses one reply at `at`. `Ok(None)` = incomplete; `Ok(Some((value, end)))`.
pub fn parse(buf: &[u8], at: usize) -> Result<Option<(Value, usize)>, String> {
    let Some(&kind) = buf.get(at) else { return Ok(None) };
    let Some((l, next)) = line(buf, at + 1) else { return Ok(None) };
    let s = || String::from_utf8_lossy(l).into_owned();
    match kind {
        b'+' => Ok(Some((Value::Status(s()), next))),
        b'-' => Ok(Some((Value::Error(s()), next))),
        b':' => Ok(Some((Value::Int(num(l)?), next))),
        b'$' => {
            let n = num(l)?;
            if n < 0 {
                return Ok(Some((Value::Nil, next)));
            }
            let end = next + n as usize;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            Ok(Some((Value::Bulk(buf[next..end].to_vec()), end + 2)))
        }
        b'*' => {
            let n = num(l)?;
            if n < 0 {
                return Ok(Some((Value::Nil, next)));
            }
            let mut items = Vec::with_capacity(n.min(1024) as usize);
            let mut pos = next;
            for _ in 0..n {
                match parse(buf, pos)? {
                    Some((v, p)) => {
                        items.push(v);
                        pos = p;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Value::Array(items), pos)))
        }
        _ => Err(format!("Protocol error: unexpected byte {kind}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_and_partial() {
        let b = b"*3\r\n:1\r\n$1\r\n*\r\n:0\r\n+PONG\r\n";
        let (v, end) = parse(b, 0).unwrap().unwrap();
        assert_eq!(v, Value::Array(vec![Value::Int(1), Value::Bulk(b"*".to_vec()), Value::Int(0)]));
        assert_eq!(parse(b, end).unwrap().unwrap().0, Value::Status("PONG".into()));
        assert_eq!(parse(b"$5\r\nab", 0).unwrap(), None);
        assert_eq!(parse(b"*2\r\n:1\r\n", 0).unwrap(), None);
    }
}
