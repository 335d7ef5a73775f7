#!/usr/bin/env python3
"""Writes src/cmd/meta_table.rs, the COMMAND INFO / COMMAND DOCS metadata of every command and
subcommand (key specs, tips, summary, since, group, complexity, history, doc flags, deprecation,
argument tree), from the command descriptions of a Redis 7.0 source tree (its
src/commands/*.json files, one JSON object per command or subcommand).

Regenerate with (python3, standard library only):

    REDIS_SRC=/path/to/redis-7.0.15 python3 scripts/gen-command-meta.py

The output is committed: building slotcore does not need Redis's source. Facts are taken as
redis-server 7.0 reports them: argument names lower case, tokens upper case, tips lower case,
empty strings absent, the `sorted_set` group shown as `sorted-set`, subcommands in their
container's group. Sentinel-only commands (flag ONLY_SENTINEL) are left out: Sentinel mode
has its own table.
"""
import glob
import json
import re
import os
import sys

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "cmd", "meta_table.rs")

ARG_KINDS = {
    "string": "Str",
    "integer": "Int",
    "double": "Double",
    "key": "Key",
    "pattern": "Pattern",
    "unix-time": "UnixTime",
    "pure-token": "Token",
    "oneof": "OneOf",
    "block": "Block",
}
KEY_FLAGS = ["RO", "RW", "OW", "RM", "ACCESS", "UPDATE", "INSERT", "DELETE", "NOT_KEY", "INCOMPLETE",
             "VARIABLE_FLAGS"]
DOC_FLAGS = {"DEPRECATED": "DEPRECATED", "SYSCMD": "SYSCMD"}


def lit(s):
    """A Rust string literal."""
    out = []
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20:
            out.append("\\u{%x}" % ord(ch))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def c_string(v):
    """A value as redis-server holds it: its tables quote each value as written, so a value made
    of quotes only (MIGRATE's `""` token) is read as consecutive empty strings, the empty
    string."""
    return "" if v and set(v) == {'"'} and len(v) % 2 == 0 else v


def opt(desc, field, upper=False):
    v = desc.get(field) or ""
    return v.upper() if upper else v


def key_spec(spec):
    flags = spec.get("flags", [])
    for f in flags:
        assert f in KEY_FLAGS, f
    fl = " | ".join(f for f in KEY_FLAGS if f in flags) or "0"
    bs = spec["begin_search"]
    if bs.get("index"):
        begin = "Begin::Index(%d)" % bs["index"]["pos"]
    elif bs.get("keyword"):
        begin = "Begin::Keyword(%s, %d)" % (lit(bs["keyword"]["keyword"]), bs["keyword"]["startfrom"])
    elif "unknown" in bs:
        begin = "Begin::Unknown"
    else:
        sys.exit("invalid begin_search %r" % bs)
    fk = spec["find_keys"]
    if fk.get("range"):
        r = fk["range"]
        find = "Find::Range(%d, %d, %d)" % (r["lastkey"], r["step"], r["limit"])
    elif fk.get("keynum"):
        k = fk["keynum"]
        find = "Find::Keynum(%d, %d, %d)" % (k["keynumidx"], k["firstkey"], k["step"])
    elif "unknown" in fk:
        find = "Find::Unknown"
    else:
        sys.exit("invalid find_keys %r" % fk)
    if spec.get("notes"):
        return "KeySpec { notes: %s, flags: %s, begin: %s, find: %s }" % (lit(spec["notes"]), fl, begin, find)
    return "KeySpec { flags: %s, begin: %s, find: %s, ..KS }" % (fl, begin, find)


def arg(desc, indent):
    """One argument, with its sub-arguments on the following lines."""
    kind = desc["type"]
    fields = ["name: %s" % lit(desc["name"].lower()), "kind: %s" % ARG_KINDS[kind]]
    if desc.get("key_spec_index") is not None:
        fields.append("key_spec: %d" % desc["key_spec_index"])
    if desc.get("token"):
        fields.append("token: Some(%s)" % lit(c_string(desc["token"].upper())))
    for field in ("summary", "since", "deprecated_since"):
        v = opt(desc, field)
        if v:
            fields.append("%s: %s" % (field, lit(v)))
    flags = []
    if desc.get("optional"):
        flags.append("OPTIONAL")
    if desc.get("multiple"):
        flags.append("MULTIPLE")
    if desc.get("multiple_token"):
        assert desc.get("multiple")
        flags.append("MULTIPLE_TOKEN")
    if flags:
        fields.append("flags: %s" % " | ".join(flags))
    pad = "    " * indent
    if kind in ("oneof", "block"):
        subs = "".join(arg(d, indent + 1) for d in desc["arguments"])
        return "%sArg { %s, args: &[\n%s%s], ..ARG },\n" % (pad, ", ".join(fields), subs, pad)
    return "%sArg { %s, ..ARG },\n" % (pad, ", ".join(fields))


def command(fullname, desc, group):
    lines = ["    Meta {\n"]
    head = ["name: %s" % lit(fullname), "group: %s" % lit(group)]
    for field in ("since", "complexity", "deprecated_since", "replaced_by"):
        v = opt(desc, field)
        if v:
            head.append("%s: %s" % (field, lit(v)))
    doc_flags = [DOC_FLAGS[f] for f in desc.get("doc_flags", [])]
    if doc_flags:
        head.append("doc_flags: %s" % " | ".join(doc_flags))
    lines.append("        %s,\n" % ", ".join(head))
    if opt(desc, "summary"):
        lines.append("        summary: %s,\n" % lit(desc["summary"]))
    if desc.get("history"):
        hist = ", ".join("(%s, %s)" % (lit(v), lit(c)) for v, c in desc["history"])
        lines.append("        history: &[%s],\n" % hist)
    if desc.get("command_tips"):
        lines.append("        tips: &[%s],\n" % ", ".join(lit(t.lower()) for t in desc["command_tips"]))
    specs = desc.get("key_specs", [])
    if specs:
        lines.append("        key_specs: &[\n")
        for s in specs:
            lines.append("            %s,\n" % key_spec(s))
        lines.append("        ],\n")
    if desc.get("arguments"):
        lines.append("        args: &[\n")
        lines.extend(arg(a, 3) for a in desc["arguments"])
        lines.append("        ],\n")
    lines.append("        ..META\n    },\n")
    return "".join(lines)


def main():
    src = os.environ.get("REDIS_SRC")
    if not src:
        sys.exit("set REDIS_SRC to a Redis 7.0 source tree")
    commands, subcommands = {}, {}
    for path in sorted(glob.glob(os.path.join(src, "src", "commands", "*.json"))):
        with open(path) as f:
            for name, desc in json.load(f).items():
                if "ONLY_SENTINEL" in desc.get("command_flags", []):
                    continue
                if desc.get("container"):
                    subcommands.setdefault(desc["container"].lower(), {})[name.lower()] = desc
                else:
                    commands[name.lower()] = desc
    entries = {}
    for name, desc in commands.items():
        group = desc["group"].replace("_", "-")
        entries[name] = command(name, desc, group)
        for sub, sdesc in subcommands.pop(name, {}).items():
            assert not sdesc.get("group") or sdesc["group"] == desc["group"], (name, sub)
            entries["%s|%s" % (name, sub)] = command("%s|%s" % (name, sub), sdesc, group)
    assert not subcommands, "subcommands without a container: %r" % list(subcommands)
    version = ""
    try:
        with open(os.path.join(src, "src", "version.h")) as f:
            version = f.read().split('"')[1]
    except (OSError, IndexError):
        pass
    with open(OUT, "w") as f:
        f.write("// @generated by scripts/gen-command-meta.py from the JSON command descriptions of Redis %s.\n"
                % (version or "7.0"))
        f.write("// Do not edit: change the script and run it again.\n")
        f.write("//! COMMAND INFO / COMMAND DOCS metadata of every command and subcommand, sorted by\n")
        f.write("//! full name (`config|get`); read by `cmd::meta`.\n\n")
        body = "".join(entries[name] for name in sorted(entries))
        used = lambda names: [n for n in names if re.search(r"\b%s\b" % n, body)]
        kinds = sorted(set(re.findall(r"kind: (\w+)", body)))
        f.write("use super::meta::ArgKind::{%s};\n" % ", ".join(kinds))
        f.write("use super::meta::{%s};\n" % ", ".join(
            ["Arg", "Meta", "ARG", "META"] + used(["DEPRECATED", "MULTIPLE", "MULTIPLE_TOKEN", "OPTIONAL", "SYSCMD"])))
        f.write("use crate::acl::keys::{%s};\n\n" % ", ".join(["Begin", "Find", "KeySpec", "KS"] + sorted(used(KEY_FLAGS))))
        f.write("/// Every command's metadata, sorted by full name.\n")
        f.write("#[rustfmt::skip]\npub static TABLE: &[Meta] = &[\n")
        f.write(body)
        f.write("];\n")
    print("wrote %s (%d commands and subcommands)" % (os.path.relpath(OUT), len(entries)))


if __name__ == "__main__":
    main()
