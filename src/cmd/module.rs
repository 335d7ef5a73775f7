//! MODULE LIST / LOAD / LOADEX / UNLOAD / HELP. slotcore does not implement the Redis module
//! API, so no module is ever loaded: LIST is empty, LOAD and LOADEX fail as Redis's do for a
//! library that cannot load (its reply, and the reason in the log), UNLOAD finds no module.
//! LOAD, LOADEX and UNLOAD are refused unless `enable-module-command` allows them, as in
//! Redis 7.0. A `loadmodule` line in the configuration stops start-up, as Redis stops when a
//! module fails to load (see `refuse_startup_modules`).

use super::ctx::{reply, ClientCtx};
use super::spec::{flags::*, spec, CommandSpec, Exec, Keys, Plan};
use crate::protocol::Reply;
use bytes::Bytes;

#[rustfmt::skip]
static MODULE_SUBCOMMANDS: &[CommandSpec] = &[
    spec("list", 2, ADMIN | NOSCRIPT, "@admin @slow @dangerous", Keys::None, Exec::Node(list)),
    spec("load", -3, ADMIN | NOSCRIPT | NO_ASYNC_LOADING | PROTECTED, "@admin @slow @dangerous", Keys::None, Exec::Node(load)),
    spec("loadex", -3, ADMIN | NOSCRIPT | NO_ASYNC_LOADING | PROTECTED, "@admin @slow @dangerous", Keys::None, Exec::Node(load)),
    spec("unload", 3, ADMIN | NOSCRIPT | NO_ASYNC_LOADING | PROTECTED, "@admin @slow @dangerous", Keys::None, Exec::Node(unload)),
    spec("help", 2, LOADING | STALE, "@slow", Keys::None, Exec::Node(help)),
];

/// The MODULE family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec { subcommands: MODULE_SUBCOMMANDS, ..spec("module", -2, 0, "@slow", Keys::None, Exec::Container) },
];

/// Redis 7.0's refusal when the MODULE command is not enabled.
pub(crate) const NOT_ALLOWED: &str = "ERR MODULE command not allowed. If the enable-module-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

/// Why no module loads here (logged as Redis logs a library's load error).
const NO_MODULE_API: &str = "slotcore does not implement the Redis module API";

fn list(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    reply(Reply::Array(Vec::new()))
}

// LOAD, LOADEX and UNLOAD are PROTECTED: `enable-module-command` is checked before they run
// (`cmd::protected_refusal`).
fn load(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    tracing::warn!("Module {} failed to load: {}", String::from_utf8_lossy(&args[2]), NO_MODULE_API);
    reply(Reply::err("ERR Error loading the extension. Please check the server logs."))
}

fn unload(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    reply(Reply::err("ERR Error unloading module: no such module with that name"))
}

fn help(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    super::server::help_lines(&[
        "MODULE <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "LIST",
        "    Return a list of loaded modules.",
        "LOAD <path> [<arg> ...]",
        "    Load a module library from <path>, passing to it any optional arguments.",
        "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
        "    Load a module library from <path>, while passing it module configurations and optional arguments.",
        "UNLOAD <name>",
        "    Unload a module.",
        "HELP",
        "    Prints this help.",
    ])
}

/// `loadmodule` lines: Redis exits when a module fails to load at start-up, and none can load
/// here; starting without the commands the configuration asked for would fail them later, one
/// by one, as unknown commands. Logs Redis's two lines and exits.
pub fn refuse_startup_modules(paths: &[String]) {
    let Some(path) = paths.first() else { return };
    tracing::warn!("Module {} failed to load: {}", path, NO_MODULE_API);
    tracing::warn!("Can't load module from {}: server aborting", path);
    std::process::exit(1);
}
