#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks the vcpkg overlay port against the repository, without vcpkg (CI has no vcpkg tool).

  check_port.py check                    validate vcpkg.json, portfile.cmake and usage; exit 1 on a problem
  check_port.py options [FEATURE ...]    print, one per line, the -D options the portfile passes to
                                         vcpkg_cmake_configure when the given features are on
  check_port.py config-path              print the portfile's vcpkg_cmake_config_fixup CONFIG_PATH

Standard library only. The options are read from the portfile itself, so the plain-CMake install
that packaging/test-packaging.sh runs is the configure the port runs.
"""
import json
import re
import sys
from pathlib import Path

PORT = Path(__file__).resolve().parent / "ports" / "nerpipe"
ROOT = PORT.parents[3]

REQUIRED_DEPENDENCIES = {"simdjson", "openblas", "utf8proc", "pcre2", "msgpack"}
REQUIRED_HOST_DEPENDENCIES = {"vcpkg-cmake", "vcpkg-cmake-config"}
REQUIRED_FEATURES = {"cuda": "cuda", "mpi": "mpi"}  # feature -> port it must depend on
VERSION_KEYS = ("version", "version-semver", "version-date", "version-string")
KNOWN_KEYS = {"name", "port-version", "description", "homepage", "documentation", "license", "supports",
              "dependencies", "default-features", "features", "maintainers", "builtin-baseline", "overrides",
              "vcpkg-configuration", *VERSION_KEYS}


def header_version():
    text = (ROOT / "include" / "nerpipe" / "version.hpp").read_text(encoding="utf-8")
    m = re.search(r'#define\s+NERPIPE_VERSION_STRING\s+"([^"]+)"', text)
    if not m:
        raise SystemExit("include/nerpipe/version.hpp: no NERPIPE_VERSION_STRING")
    return m.group(1)


def manifest():
    return json.loads((PORT / "vcpkg.json").read_text(encoding="utf-8"))


def manifest_version(m):
    keys = [k for k in VERSION_KEYS if k in m]
    return keys, (m[keys[0]] if len(keys) == 1 else None)


def dep_name(d):
    return d if isinstance(d, str) else d.get("name")


def strip_comments(cmake):
    return "\n".join(line.split("#", 1)[0] for line in cmake.splitlines())


def call_args(cmake, command):
    """The argument text of the first `command(...)` call (parentheses balanced)."""
    m = re.search(r"\b" + re.escape(command) + r"\s*\(", cmake)
    if not m:
        return None
    depth, i = 1, m.end()
    while depth and i < len(cmake):
        depth += {"(": 1, ")": -1}.get(cmake[i], 0)
        i += 1
    return cmake[m.end():i - 1]


def portfile():
    return strip_comments((PORT / "portfile.cmake").read_text(encoding="utf-8"))


def feature_options(pf):
    """[(feature, variable)] from vcpkg_check_features(... FEATURES f VAR ...)."""
    args = call_args(pf, "vcpkg_check_features")
    if args is None:
        return []
    tokens = args.split()
    out = tokens[tokens.index("FEATURES") + 1:] if "FEATURES" in tokens else []
    stop = {"INVERTED_FEATURES", "OUT_FEATURE_OPTIONS"}
    pairs = []
    for f, v in zip(out[0::2], out[1::2]):
        if f in stop or v in stop:
            break
        pairs.append((f, v))
    return pairs


def configure_section(pf, keyword):
    args = call_args(pf, "vcpkg_cmake_configure") or ""
    keywords = {"SOURCE_PATH", "OPTIONS", "OPTIONS_RELEASE", "OPTIONS_DEBUG", "MAYBE_UNUSED_VARIABLES",
                "GENERATOR", "WINDOWS_USE_MSBUILD", "NO_CHARSET_FLAG", "DISABLE_PARALLEL_CONFIGURE"}
    section, out = None, []
    for tok in args.split():
        if tok in keywords:
            section = tok
        elif section == keyword:
            out.append(tok)
    return out


def literal_options(pf):
    return [t for t in configure_section(pf, "OPTIONS") + configure_section(pf, "OPTIONS_RELEASE")
            if t.startswith("-D") and "${" not in t]


def options(features):
    pf = portfile()
    out = [f"-D{var}={'ON' if f in features else 'OFF'}" for f, var in feature_options(pf)]
    return out + literal_options(pf)


def config_path(pf):
    args = call_args(pf, "vcpkg_cmake_config_fixup") or ""
    m = re.search(r"CONFIG_PATH\s+(\S+)", args)
    return m.group(1) if m else None


def cmake_cache_names():
    text = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    names = set(re.findall(r"\boption\s*\(\s*(\w+)", text))
    names |= set(re.findall(r"\bset\s*\(\s*(\w+)\s+[^)]*\bCACHE\b", text))
    return names


def check():
    problems = []
    m = manifest()
    version = header_version()
    if m.get("name") != "nerpipe":
        problems.append(f"vcpkg.json: name is {m.get('name')!r}, expected 'nerpipe'")
    keys, mv = manifest_version(m)
    if len(keys) != 1:
        problems.append(f"vcpkg.json: expected exactly one of {VERSION_KEYS}, got {keys}")
    elif mv != version:
        problems.append(f"vcpkg.json: {keys[0]} is {mv!r}, include/nerpipe/version.hpp says {version!r}")
    unknown = sorted(k for k in m if k not in KNOWN_KEYS and not k.startswith("$"))
    if unknown:
        problems.append(f"vcpkg.json: unknown keys {unknown}")
    if not m.get("description"):
        problems.append("vcpkg.json: no description")
    if m.get("license") != "Apache-2.0":
        problems.append(f"vcpkg.json: license {m.get('license')!r}, the headers say Apache-2.0")
    deps = m.get("dependencies", [])
    names = {dep_name(d) for d in deps if not (isinstance(d, dict) and d.get("host"))}
    host = {dep_name(d) for d in deps if isinstance(d, dict) and d.get("host")}
    if REQUIRED_DEPENDENCIES - names:
        problems.append(f"vcpkg.json: missing dependencies {sorted(REQUIRED_DEPENDENCIES - names)}")
    if REQUIRED_HOST_DEPENDENCIES - host:
        problems.append(f"vcpkg.json: missing host dependencies {sorted(REQUIRED_HOST_DEPENDENCIES - host)}")
    feats = m.get("features", {})
    for feature, port in REQUIRED_FEATURES.items():
        f = feats.get(feature)
        if f is None:
            problems.append(f"vcpkg.json: no feature {feature!r}")
            continue
        if not f.get("description"):
            problems.append(f"vcpkg.json: feature {feature!r} has no description")
        if port not in {dep_name(d) for d in f.get("dependencies", [])}:
            problems.append(f"vcpkg.json: feature {feature!r} does not depend on the {port!r} port")

    pf = portfile()
    for call in ("vcpkg_cmake_configure", "vcpkg_cmake_install", "vcpkg_cmake_config_fixup",
                 "vcpkg_install_copyright"):
        if call_args(pf, call) is None:
            problems.append(f"portfile.cmake: no {call}()")
    port_features = {f for f, _ in feature_options(pf)}
    if port_features != set(feats):
        problems.append(f"portfile.cmake: vcpkg_check_features handles {sorted(port_features)}, "
                        f"vcpkg.json declares {sorted(feats)}")
    known = cmake_cache_names()
    maybe_unused = set(configure_section(pf, "MAYBE_UNUSED_VARIABLES"))
    passed = {o[2:].split("=", 1)[0] for o in options(set())}
    for var in sorted(passed):
        if var.startswith("NERPIPE_") and var not in known and var not in maybe_unused:
            problems.append(f"portfile.cmake: passes {var}, which CMakeLists.txt does not define "
                            "(renamed option? or list it in MAYBE_UNUSED_VARIABLES)")
    for var, value in (("NERPIPE_BUILD_TESTS", "OFF"), ("NERPIPE_BUILD_BENCHMARKS", "OFF"),
                       ("NERPIPE_BUILD_EXAMPLES", "OFF")):
        if f"-D{var}={value}" not in options(set()):
            problems.append(f"portfile.cmake: must pass -D{var}={value}")
    if config_path(pf) != "share/cmake/nerpipe":
        problems.append(f"portfile.cmake: CONFIG_PATH is {config_path(pf)!r}; CMakeLists.txt installs "
                        "the config to share/cmake/nerpipe")
    if "${SOURCE_PATH}/LICENSE" in pf and not (ROOT / "LICENSE").is_file():
        problems.append("portfile.cmake copies ${SOURCE_PATH}/LICENSE, but the repository has no LICENSE file")

    usage = PORT / "usage"
    if not usage.is_file():
        problems.append("no usage file")
    else:
        u = usage.read_text(encoding="utf-8")
        for needle in ("find_package(nerpipe CONFIG REQUIRED)", "nerpipe::nerpipe", "nerpipe::cuda"):
            if needle not in u:
                problems.append(f"usage: does not mention {needle}")
        if "usage" not in pf:
            problems.append("portfile.cmake: does not install the usage file")

    for p in problems:
        print("FAIL:", p)
    if not problems:
        print(f"vcpkg port: vcpkg.json {keys[0]} {mv} == version.hpp {version}; "
              f"dependencies {sorted(names)}; features {sorted(feats)}; CONFIG_PATH {config_path(pf)}; "
              f"configure options {options(set())}")
    return 1 if problems else 0


def main(argv):
    if len(argv) >= 2 and argv[1] == "check":
        return check()
    if len(argv) >= 2 and argv[1] == "options":
        print("\n".join(options(set(argv[2:]))))
        return 0
    if len(argv) == 2 and argv[1] == "config-path":
        print(config_path(portfile()))
        return 0
    if len(argv) == 2 and argv[1] == "version":
        print(manifest_version(manifest())[1])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
