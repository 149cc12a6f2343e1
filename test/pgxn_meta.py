#!/usr/bin/env python3
"""Checks META.json against the PGXN Meta Spec 1.0.0 and against the tree.

    python3 test/pgxn_meta.py [META.json]

The spec part: the required keys and their types, semantic versions, the
license names the spec knows, prereqs (phases, relations, version
clauses), release_status, resources, tags and no_index, and no other
top-level key than the spec's or one starting with x_.  The tree part: the
name is the control file's, each provides file and docfile exists, the
version is the Makefile's EXTVERSION with ".0" (what make dist names the
zip) and the provided extension's version is the control file's
default_version with ".0".

Prints "ok - ..." or "not ok - ..." per check; exits 1 if any failed.
"""
import json
import os
import re
import sys

SPEC_KEYS = {
    "name", "abstract", "description", "version", "maintainer", "license",
    "provides", "prereqs", "release_status", "resources", "generated_by",
    "meta-spec", "tags", "no_index",
}
REQUIRED = ["name", "abstract", "version", "maintainer", "license",
            "provides", "meta-spec"]
LICENSES = {
    "agpl_3", "apache_1_1", "apache_2_0", "artistic_1", "artistic_2", "bsd",
    "freebsd", "gfdl_1_2", "gfdl_1_3", "gpl_1", "gpl_2", "gpl_3",
    "lgpl_2_1", "lgpl_3_0", "mit", "mozilla_1_0", "mozilla_1_1", "openssl",
    "perl_5", "postgresql", "qpl_1_0", "ssleay", "sun", "zlib",
    "open_source", "restricted", "unrestricted", "unknown",
}
PHASES = {"configure", "build", "test", "runtime", "develop"}
RELATIONS = {"requires", "recommends", "suggests", "conflicts"}
# Semantic versions as the spec (SemVer 1.0.0) writes them, and the
# 2.0.0 form (1.0.0-beta1) that PGXN also takes.
SEMVER = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
                    r"(-?[0-9A-Za-z][0-9A-Za-z-]*)?$")
CLAUSE = re.compile(r"^\s*(?:(?:==|!=|>=|<=|>|<)\s*)?(\S+)\s*$")

failures = 0


def check(ok, what):
    global failures
    print(("ok - " if ok else "not ok - ") + what)
    if not ok:
        failures += 1
    return ok


def is_version_range(value):
    """0, a version, or comma-separated clauses such as ">= 1.0.0, < 2.0.0"."""
    if value == 0 or value == "0":
        return True
    if not isinstance(value, str) or not value.strip():
        return False
    for clause in value.split(","):
        m = CLAUSE.match(clause)
        if not m or not SEMVER.match(m.group(1)):
            return False
    return True


def nonempty_str(v):
    return isinstance(v, str) and v.strip() != ""


def make_var(makefile, var):
    with open(makefile) as f:
        for line in f:
            m = re.match(r"^%s\s*:?=\s*(\S+)\s*$" % re.escape(var), line)
            if m:
                return m.group(1)
    return None


def control_default_version(control):
    with open(control) as f:
        for line in f:
            m = re.match(r"^\s*default_version\s*=\s*'([^']*)'", line)
            if m:
                return m.group(1)
    return None


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "META.json"
    top = os.path.dirname(os.path.abspath(path))
    try:
        with open(path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        check(False, "%s parses as JSON (%s)" % (path, e))
        return 1
    check(isinstance(meta, dict), "%s is a JSON object" % path)

    for key in REQUIRED:
        check(key in meta, "required key %s" % key)
    extra = [k for k in meta if k not in SPEC_KEYS and not k.lower().startswith("x_")]
    check(not extra, "no unknown top-level key (custom keys start with x_): %s" % (extra or "none"))

    name = meta.get("name")
    check(nonempty_str(name) and len(name) >= 2 and not re.search(r"[\s/\\:]", name),
          "name is at least two characters without space, slash, backslash or colon")
    check(nonempty_str(meta.get("abstract")), "abstract is a non-empty string")
    if "description" in meta:
        check(nonempty_str(meta["description"]), "description is a non-empty string")
    version = meta.get("version")
    check(isinstance(version, str) and bool(SEMVER.match(version)),
          "version %r is a semantic version" % version)

    maint = meta.get("maintainer")
    maint_list = maint if isinstance(maint, list) else [maint]
    check(bool(maint_list) and all(nonempty_str(m) for m in maint_list),
          "maintainer is a string or a list of strings")

    lic = meta.get("license")
    if isinstance(lic, dict):
        ok = bool(lic) and all(nonempty_str(k) and nonempty_str(v) for k, v in lic.items())
    else:
        lics = lic if isinstance(lic, list) else [lic]
        ok = bool(lics) and all(l in LICENSES for l in lics)
    check(ok, "license %r is one the spec names (or an object of name: URL)" % (lic,))

    spec = meta.get("meta-spec")
    check(isinstance(spec, dict) and spec.get("version") == "1.0.0",
          "meta-spec version is 1.0.0")

    provides = meta.get("provides")
    if check(isinstance(provides, dict) and bool(provides), "provides names at least one extension"):
        for ext, p in provides.items():
            if not check(isinstance(p, dict), "provides %s is an object" % ext):
                continue
            check(nonempty_str(p.get("file")) and os.path.isfile(os.path.join(top, p["file"])),
                  "provides %s: file %s exists" % (ext, p.get("file")))
            check(isinstance(p.get("version"), str) and bool(SEMVER.match(p["version"])),
                  "provides %s: version %r is a semantic version" % (ext, p.get("version")))
            if "docfile" in p:
                check(nonempty_str(p["docfile"]) and os.path.isfile(os.path.join(top, p["docfile"])),
                      "provides %s: docfile %s exists" % (ext, p["docfile"]))
            if "abstract" in p:
                check(nonempty_str(p["abstract"]), "provides %s: abstract is a non-empty string" % ext)

    prereqs = meta.get("prereqs", {})
    ok = isinstance(prereqs, dict)
    for phase, rels in (prereqs.items() if ok else []):
        ok = ok and phase in PHASES and isinstance(rels, dict)
        for rel, deps in (rels.items() if isinstance(rels, dict) else []):
            ok = ok and rel in RELATIONS and isinstance(deps, dict)
            for dep, ver in (deps.items() if isinstance(deps, dict) else []):
                ok = ok and nonempty_str(dep) and is_version_range(ver)
    check(ok, "prereqs: phases, relations and version clauses as the spec has them")
    pg = prereqs.get("runtime", {}).get("requires", {}).get("PostgreSQL") if ok else None
    check(isinstance(pg, str) and is_version_range(pg) and pg.lstrip(">= ").startswith("15."),
          "prereqs: runtime requires PostgreSQL 15 or later (%r)" % (pg,))

    if "release_status" in meta:
        check(meta["release_status"] in ("stable", "testing", "unstable"),
              "release_status %r is stable, testing or unstable" % meta["release_status"])
    if "resources" in meta:
        res = meta["resources"]
        ok = isinstance(res, dict) and all(k in ("homepage", "bugtracker", "repository")
                                           or k.lower().startswith("x_") for k in res)
        if ok and "homepage" in res:
            ok = nonempty_str(res["homepage"])
        if ok and "bugtracker" in res:
            bt = res["bugtracker"]
            ok = isinstance(bt, dict) and bool(bt) and all(
                k in ("web", "mailto") and nonempty_str(v) for k, v in bt.items())
        if ok and "repository" in res:
            rp = res["repository"]
            ok = isinstance(rp, dict) and bool(rp) and all(
                k in ("url", "web", "type") and nonempty_str(v) for k, v in rp.items())
        check(ok, "resources: homepage, bugtracker (web, mailto), repository (url, web, type)")
    if "tags" in meta:
        tags = meta["tags"]
        check(isinstance(tags, list) and bool(tags) and
              all(nonempty_str(t) and len(t) < 256 for t in tags),
              "tags is a list of non-empty strings")
    if "no_index" in meta:
        ni = meta["no_index"]
        check(isinstance(ni, dict) and all(
            k in ("file", "directory") and isinstance(v, list) and all(nonempty_str(x) for x in v)
            for k, v in ni.items()), "no_index: lists of files and directories")

    # Against the tree.
    makefile = os.path.join(top, "Makefile")
    extension = make_var(makefile, "EXTENSION")
    extversion = make_var(makefile, "EXTVERSION")
    check(name == extension and os.path.isfile(os.path.join(top, "%s.control" % name)),
          "name is the Makefile's EXTENSION and has a control file")
    check(extversion is not None and version == extversion + ".0",
          "version %r is the Makefile's EXTVERSION %r with .0 (make dist's zip)" % (version, extversion))
    if isinstance(provides, dict) and isinstance(provides.get(name), dict) and extension:
        default = control_default_version(os.path.join(top, "%s.control" % extension))
        p = provides[name]
        check(default is not None and p.get("version") == default + ".0",
              "provides %s: version is the control file's default_version %r with .0" % (name, default))
        check(p.get("file") == "sql/%s--%s.sql" % (name, default),
              "provides %s: file is the install script of default_version" % name)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
