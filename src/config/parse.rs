//! Loading the configuration: a redis.conf file (with `include`), then redis-server style
//! command-line options, which Redis appends to the file's text as extra lines.

use super::registry::{self, Directive};
use super::Config;
use crate::protocol::request::split_args;

/// A fatal configuration error, printed like Redis does before exiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line in the combined text (file lines, then options).
    pub line: usize,
    /// The offending line.
    pub text: String,
    /// The reason.
    pub reason: String,
}

impl ConfigError {
    /// Redis's fatal message.
    pub fn fatal_text(&self) -> String {
        format!(
            "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\nReading the configuration file, at line {}\n>>> '{}'\n{}\n",
            self.line, self.text, self.reason
        )
    }
}

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// Run the server.
    Run {
        /// Config file path, if any ("-" = stdin).
        config_file: Option<String>,
        /// Option lines built from `--name value...`.
        options: String,
    },
    /// `-v` / `--version`.
    Version,
    /// `-h` / `--help`.
    Help,
}

/// Quotes an argument like Redis's `sdscatrepr`.
fn repr(a: &str) -> String {
    let mut s = String::from("\"");
    for c in a.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => s.push_str(&format!("\\x{:02x}", c as u32)),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// Interprets argv (without the program name) as redis-server does.
pub fn parse_argv(args: &[String]) -> Invocation {
    if let Some(first) = args.first() {
        match first.as_str() {
            "-v" | "--version" => return Invocation::Version,
            "-h" | "--help" => return Invocation::Help,
            _ => {}
        }
    }
    let mut i = 0;
    let mut config_file = None;
    if let Some(first) = args.first() {
        if !first.starts_with("--") {
            config_file = Some(first.clone());
            i = 1;
        }
    }
    let mut options = String::new();
    // As Redis 7.0: `--name` starts an option only once the previous one has a value, so an
    // option's value may itself begin with `--` (`--proc-title-template --x`); `--save` and
    // `--sentinel` directly followed by another option take no value.
    let mut last_has_value = true;
    while i < args.len() {
        let a = &args[i];
        match a.strip_prefix("--") {
            Some(name) if last_has_value => {
                if !options.is_empty() {
                    options.push('\n');
                }
                options.push_str(name);
                options.push(' ');
                let words = split_args(a.as_bytes()).map_or(0, |w| w.len());
                if words == 1 {
                    let next_is_option = args.get(i + 1).is_some_and(|n| n.starts_with("--"));
                    let last = i + 1 == args.len();
                    if a.eq_ignore_ascii_case("--save") && (next_is_option || last) {
                        options.push_str("\"\"");
                        last_has_value = next_is_option;
                    } else {
                        last_has_value = a.eq_ignore_ascii_case("--sentinel") && next_is_option;
                    }
                } else {
                    last_has_value = true;
                }
            }
            _ => {
                options.push_str(&repr(a));
                options.push(' ');
                last_has_value = true;
            }
        }
        i += 1;
    }
    Invocation::Run { config_file, options }
}

/// Reads a config file's text (`-` = stdin).
fn read_file(path: &str) -> Result<String, String> {
    if path == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| e.to_string())?;
        return Ok(s);
    }
    std::fs::read_to_string(path).map_err(|e| e.to_string())
}

/// Result of loading: the config plus directives accepted but not acted on.
#[derive(Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Directives set (to a non-default value) that slotcore does not act on yet.
    pub not_acted: Vec<String>,
}

/// Builds the configuration from an optional file and option lines.
pub fn load(config_file: Option<&str>, options: &str) -> Result<Loaded, ConfigError> {
    let mut text = String::new();
    if let Some(path) = config_file {
        text = read_file(path).map_err(|e| ConfigError {
            line: 0,
            text: path.to_string(),
            reason: format!("Fatal error, can't open config file '{path}': {e}"),
        })?;
    }
    text.push('\n');
    text.push_str(options);
    let mut cfg = Config::default();
    let mut not_acted = Vec::new();
    let mut save_seen = false;
    apply_text(&mut cfg, &text, &mut not_acted, &mut save_seen, 0)?;
    not_acted.sort();
    not_acted.dedup();
    Ok(Loaded { config: cfg, not_acted })
}

fn apply_text(
    cfg: &mut Config,
    text: &str,
    not_acted: &mut Vec<String>,
    save_seen: &mut bool,
    depth: usize,
) -> Result<(), ConfigError> {
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |reason: &str| ConfigError { line: n + 1, text: line.to_string(), reason: reason.to_string() };
        let Some(args) = split_args(line.as_bytes()) else {
            return Err(err("Unbalanced quotes in configuration line"));
        };
        let args: Vec<String> = args.into_iter().map(|a| String::from_utf8_lossy(&a).into_owned()).collect();
        if args.is_empty() {
            continue;
        }
        let name = args[0].to_ascii_lowercase();
        let rest = &args[1..];
        match name.as_str() {
            "include" => {
                if rest.len() != 1 || depth > 16 {
                    return Err(err("Bad directive or wrong number of arguments"));
                }
                let inc = read_file(&rest[0])
                    .map_err(|e| err(&format!("Fatal error, can't open config file '{}': {e}", rest[0])))?;
                apply_text(cfg, &inc, not_acted, save_seen, depth + 1)?;
                continue;
            }
            // Accepted by Redis but not CONFIG parameters; slotcore does not act on them yet.
            "user" => {
                if rest.is_empty() {
                    return Err(err("Bad directive or wrong number of arguments"));
                }
                if cfg.users.iter().any(|u| u[0] == rest[0]) {
                    return Err(err(&format!(
                        "Error in user declaration '{}': Duplicate user found. A user can only be defined once in config files",
                        rest[0]
                    )));
                }
                crate::acl::validate_config_line(rest).map_err(|e| err(&e))?;
                cfg.users.push(rest.to_vec());
                continue;
            }
            "rename-command" => {
                let [old, new] = rest else { return Err(err("Bad directive or wrong number of arguments")) };
                cfg.renamed_commands.push((old.clone(), new.clone()));
                crate::cmd::table::renames(&cfg.renamed_commands).map_err(&err)?;
                continue;
            }
            "loadmodule" => {
                let Some(path) = rest.first() else { return Err(err("Bad directive or wrong number of arguments")) };
                cfg.load_modules.push(path.clone());
                continue;
            }
            "sentinel" => {
                not_acted.push(name.clone());
                continue;
            }
            _ => {}
        }
        let Some(d) = registry::find(&name) else {
            return Err(err("Bad directive or wrong number of arguments"));
        };
        let value = set_one(cfg, d, rest, save_seen).map_err(|r| err(&r))?;
        if !d.acted && value != d.default {
            not_acted.push(d.name.to_string());
        }
    }
    Ok(())
}

/// Validates and applies one directive; `save` lines accumulate like Redis's.
fn set_one(cfg: &mut Config, d: &'static Directive, args: &[String], save_seen: &mut bool) -> Result<String, String> {
    let mut value = registry::normalize(d, args)?;
    if d.name == "save" && !value.is_empty() {
        if *save_seen {
            let prev = cfg.get("save").unwrap_or("").to_string();
            if !prev.is_empty() {
                value = format!("{prev} {value}");
            }
        }
        *save_seen = true;
    }
    registry::apply(cfg, d, &value)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn argv_becomes_option_lines() {
        let inv = parse_argv(&argv(&["/etc/r.conf", "--port", "7000", "--save", "", "--save", "900", "1"]));
        assert_eq!(
            inv,
            Invocation::Run {
                config_file: Some("/etc/r.conf".into()),
                options: "port \"7000\" \nsave \"\" \nsave \"900\" \"1\" ".into()
            }
        );
        assert_eq!(parse_argv(&argv(&["--version"])), Invocation::Version);
    }

    #[test]
    fn option_values_may_start_with_dashes() {
        let opts = |a: &[&str]| match parse_argv(&argv(a)) {
            Invocation::Run { options, .. } => options,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            opts(&["--proc-title-template", "--my--title", "--loglevel", "verbose"]),
            "proc-title-template \"--my--title\" \nloglevel \"verbose\" "
        );
        // A value-less option swallows the next `--` word as its value, as in Redis.
        assert_eq!(opts(&["--port", "--loglevel", "verbose"]), "port \"--loglevel\" \"verbose\" ");
        assert_eq!(opts(&["--save", "--loglevel", "verbose"]), "save \"\"\nloglevel \"verbose\" ");
        assert_eq!(opts(&["--loglevel", "verbose", "--save"]), "loglevel \"verbose\" \nsave \"\"");
        assert_eq!(opts(&["--maxmemory 700mb", "--loglevel verbose"]), "maxmemory 700mb \nloglevel verbose ");
    }

    #[test]
    fn errors_have_redis_lines() {
        let Invocation::Run { options, .. } = parse_argv(&argv(&["--port", "abc"])) else { panic!() };
        let e = load(None, &options).unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(e.text, "port \"abc\"");
        assert_eq!(e.reason, "argument couldn't be parsed into an integer");
        let e = load(None, "bogus 1").unwrap_err();
        assert_eq!(e.reason, "Bad directive or wrong number of arguments");
    }

    #[test]
    fn values_and_save_lines() {
        let l = load(
            None,
            "port 7001\nsave 900 1\nsave 300 10\nmaxmemory 1mb\nshard-cores 0-1\npin-cores no\nactivedefrag yes\n",
        )
        .unwrap();
        assert_eq!(l.config.port, 7001);
        assert_eq!(l.config.get("save"), Some("900 1 300 10"));
        assert_eq!(l.config.get("maxmemory"), Some("1048576"));
        assert_eq!(l.config.shard_cores, vec![0, 1]);
        assert!(!l.config.pin_cores);
        assert_eq!(l.not_acted, vec!["activedefrag".to_string()], "only what slotcore ignores is listed");
        let l = load(None, "save \"\"\n").unwrap();
        assert_eq!(l.config.get("save"), Some(""));
    }
}
