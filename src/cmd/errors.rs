//! Client-visible error texts, identical to Redis 7.0's (without the leading `-`).

/// Generic syntax error.
pub const SYNTAX: &str = "ERR syntax error";
/// Wrong type of value.
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
/// Not an integer.
pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
/// Not a float.
pub const NOT_FLOAT: &str = "ERR value is not a valid float";
/// Increment overflow.
pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
/// No such key.
pub const NO_SUCH_KEY: &str = "ERR no such key";
/// Index out of range.
pub const OUT_OF_RANGE: &str = "ERR index out of range";
/// Bad DB index.
pub const DB_INDEX: &str = "ERR DB index is out of range";
/// Auth required.
pub const NOAUTH: &str = "NOAUTH Authentication required.";
/// Wrong password (Redis 7.0 text).
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";
/// AUTH without a configured password.
pub const AUTH_NOPASS: &str = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?";
/// Timeout not an integer / negative.
pub const TIMEOUT_NOT_INT: &str = "ERR timeout is not an integer or out of range";
/// String grows past 512MB.
pub const STRING_TOO_LONG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
/// Offset out of range (SETRANGE).
pub const OFFSET_OUT_OF_RANGE: &str = "ERR offset is out of range";
/// Source and destination are the same (MOVE/COPY to the same db).
pub const SAME_OBJECT: &str = "ERR source and destination objects are the same";
/// Cluster commands on a standalone node.
pub const CLUSTER_DISABLED: &str = "ERR This instance has cluster support disabled";
/// An integer argument outside 32 bits (`getIntFromObjectOrReply`).
/// A count or rank outside -LONG_MAX..=LONG_MAX (Redis's getRangeLongFromObjectOrReply).
pub const LONG_RANGE: &str =
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";
/// See [`LONG_RANGE`].
pub const INT32_RANGE: &str = "ERR value is out of range, value must between -2147483648 and 2147483647";
/// SCAN-family cursor that is not an unsigned integer.
pub const INVALID_CURSOR: &str = "ERR invalid cursor";
/// EXPIRE family: NX with another condition.
pub const EXPIRE_NX_INCOMPATIBLE: &str = "ERR NX and XX, GT or LT options at the same time are not compatible";
/// EXPIRE family: GT with LT.
pub const EXPIRE_GT_LT_INCOMPATIBLE: &str = "ERR GT and LT options at the same time are not compatible";
/// OBJECT FREQ without an LFU maxmemory-policy.
pub const LFU_NOT_SELECTED: &str = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";
/// OBJECT IDLETIME under an LFU maxmemory-policy.
pub const LFU_SELECTED: &str = "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";
/// MOVE with cluster-enabled.
pub const MOVE_CLUSTER: &str = "ERR MOVE is not allowed in cluster mode";
/// SWAPDB with cluster-enabled.
pub const SWAPDB_CLUSTER: &str = "ERR SWAPDB is not allowed in cluster mode";
/// COPY ... DB with cluster-enabled.
pub const COPY_CLUSTER: &str = "ERR Copying to another database is not allowed in cluster mode";
/// SWAPDB: bad first index.
pub const SWAPDB_FIRST: &str = "ERR invalid first DB index";
/// SWAPDB: bad second index.
pub const SWAPDB_SECOND: &str = "ERR invalid second DB index";

/// `ERR wrong number of arguments for '<name>' command`.
pub fn wrong_arity(fullname: &str) -> String {
    format!("ERR wrong number of arguments for '{fullname}' command")
}

/// `ERR invalid expire time in '<name>' command`.
pub fn invalid_expire(name: &str) -> String {
    format!("ERR invalid expire time in '{name}' command")
}

/// `ERR unknown subcommand '<sub>'. Try <CMD> HELP.`
pub fn unknown_subcommand(sub: &[u8], cmd: &str) -> String {
    let sub = String::from_utf8_lossy(&sub[..sub.len().min(128)]).into_owned();
    format!("ERR unknown subcommand '{}'. Try {} HELP.", sub, cmd.to_ascii_uppercase())
}

/// `ERR unknown command '<name>', with args beginning with: 'a' 'b' `
pub fn unknown_command(args: &[bytes::Bytes]) -> String {
    let name = String::from_utf8_lossy(&args[0][..args[0].len().min(128)]).into_owned();
    let mut rest = String::new();
    for a in &args[1..] {
        if rest.len() >= 128 {
            break;
        }
        let room = 128 - rest.len();
        let s = String::from_utf8_lossy(&a[..a.len().min(room)]).into_owned();
        rest.push('\'');
        rest.push_str(&s);
        rest.push_str("' ");
    }
    format!("ERR unknown command '{name}', with args beginning with: {rest}")
}
