//! Server commands: INFO, CONFIG, DBSIZE, FLUSHDB/FLUSHALL, COMMAND, DEBUG, TIME, SHUTDOWN, ...

use super::spec::CommandSpec;

/// The server family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[];
