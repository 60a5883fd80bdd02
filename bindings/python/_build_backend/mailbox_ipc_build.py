"""The PEP 517 build backend of mailbox_ipc: a pure-Python package needs nothing but
zipfile and tarfile to become a wheel or an sdist. It is in the tree, with
`requires = []`, so that `pip install bindings/python` works offline and in a fresh venv:
pip's isolated build environment has nothing to download (setuptools or flit would
have to be fetched from an index). See docs/dependencies.md.

The metadata comes from pyproject.toml's [project] table; the version, from the
project's top CMakeLists.txt (`project(mailbox VERSION x.y.z)`), its single source, or
from PKG-INFO when building from an sdist, which has no CMakeLists.txt.
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile
from typing import Dict, List, Tuple

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # bindings/python
PACKAGE = "mailbox_ipc"
TAG = "py3-none-any"
# What the package ships: its modules and the PEP 561 marker, never caches nor the
# _libpath.txt/_bindir.txt that a CMake install writes.
SHIPPED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.py$|^py\.typed$")
# Fixed timestamps: the same tree gives the same archive.
EPOCH = (1980, 1, 1, 0, 0, 0)


def _project() -> Dict[str, str]:
    """The string fields of pyproject.toml's [project] table, and "license" (the text of
    its `{text = "..."}`). tomllib is in the standard library from 3.11; for older
    interpreters, a reading of `key = "value"` lines, which is all the table uses."""
    path = os.path.join(HERE, "pyproject.toml")
    try:
        import tomllib
    except ImportError:
        fields: Dict[str, str] = {}
        section = ""
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line.startswith("["):
                    section = line
                    continue
                m = (re.match(r'^([A-Za-z-]+)\s*=\s*"([^"]*)"\s*$', line) or
                     re.match(r'^(license)\s*=\s*\{\s*text\s*=\s*"([^"]*)"\s*\}$', line))
                if section == "[project]" and m:
                    fields[m.group(1)] = m.group(2)
        return fields
    with open(path, "rb") as f:
        table = tomllib.load(f)["project"]
    fields = {k: v for k, v in table.items() if isinstance(v, str)}
    fields["license"] = table["license"]["text"]
    return fields


def version() -> str:
    """The project's version: PKG-INFO's in an unpacked sdist, else the top
    CMakeLists.txt's."""
    pkg_info = os.path.join(HERE, "PKG-INFO")
    if os.path.exists(pkg_info):
        with open(pkg_info, encoding="utf-8") as f:
            m = re.search(r"^Version: (\S+)$", f.read(), re.M)
        if m:
            return m.group(1)
    cmakelists = os.path.join(HERE, "..", "..", "CMakeLists.txt")
    try:
        with open(cmakelists, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise RuntimeError(f"mailbox_ipc: no version: neither PKG-INFO nor {cmakelists}: {e}")
    m = re.search(r"\bproject\(\s*mailbox\s+VERSION\s+([0-9][0-9.]*)", text)
    if not m:
        raise RuntimeError(f"mailbox_ipc: no project(mailbox VERSION ...) in {cmakelists}")
    return m.group(1)


def metadata() -> str:
    """METADATA (core metadata 2.1); PKG-INFO of the sdist too."""
    p = _project()
    lines = ["Metadata-Version: 2.1", f"Name: {p['name']}", f"Version: {version()}",
             f"Summary: {p['description']}", f"Requires-Python: {p['requires-python']}",
             f"License: {p['license']}", "Classifier: License :: OSI Approved :: MIT License",
             "Classifier: Operating System :: POSIX :: Linux",
             "Classifier: Programming Language :: Python :: 3", "Classifier: Typing :: Typed"]
    return "\n".join(lines) + "\n"


def _wheel_file() -> str:
    return ("Wheel-Version: 1.0\nGenerator: mailbox_ipc_build\nRoot-Is-Purelib: true\n"
            f"Tag: {TAG}\n")


def _package_files() -> List[Tuple[str, str]]:
    """(path in the archive, path on disk) of the package's files, sorted."""
    pkg = os.path.join(HERE, PACKAGE)
    names = sorted(n for n in os.listdir(pkg)
                   if SHIPPED.match(n) and os.path.isfile(os.path.join(pkg, n)))
    if "__init__.py" not in names or "py.typed" not in names:
        raise RuntimeError(f"mailbox_ipc: {pkg} lacks __init__.py or py.typed")
    return [(f"{PACKAGE}/{n}", os.path.join(pkg, n)) for n in names]


def _license() -> bytes:
    """The project's LICENSE: the sdist's own copy, else the top of the source tree's."""
    for path in (os.path.join(HERE, "LICENSE"), os.path.join(HERE, "..", "..", "LICENSE")):
        if os.path.exists(path):
            with open(path, "rb") as f:
                return f.read()
    raise RuntimeError("mailbox_ipc: no LICENSE")


def _dist_info() -> str:
    return f"{PACKAGE}-{version()}.dist-info"


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _write_wheel(wheel_directory: str) -> str:
    dist_info = _dist_info()
    entries: List[Tuple[str, bytes]] = []
    for arcname, path in _package_files():
        with open(path, "rb") as f:
            entries.append((arcname, f.read()))
    entries.append((f"{dist_info}/LICENSE", _license()))
    entries.append((f"{dist_info}/METADATA", metadata().encode()))
    entries.append((f"{dist_info}/WHEEL", _wheel_file().encode()))
    entries.append((f"{dist_info}/top_level.txt", f"{PACKAGE}\n".encode()))
    record = [_record_line(n, d) for n, d in entries] + [f"{dist_info}/RECORD,,"]
    entries.append((f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode()))

    filename = f"{PACKAGE}-{version()}-{TAG}.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w",
                         zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            info = zipfile.ZipInfo(name, EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return filename


# PEP 517 hooks.

def get_requires_for_build_wheel(config_settings=None) -> List[str]:
    return []


def get_requires_for_build_sdist(config_settings=None) -> List[str]:
    return []


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings=None) -> str:
    dist_info = _dist_info()
    os.makedirs(os.path.join(metadata_directory, dist_info), exist_ok=True)
    for name, text in (("METADATA", metadata()), ("WHEEL", _wheel_file())):
        with open(os.path.join(metadata_directory, dist_info, name), "w",
                  encoding="utf-8") as f:
            f.write(text)
    return dist_info


def build_wheel(wheel_directory: str, config_settings=None,
                metadata_directory=None) -> str:
    return _write_wheel(wheel_directory)


def build_sdist(sdist_directory: str, config_settings=None) -> str:
    """The package, the backend, pyproject.toml, the LICENSE and a PKG-INFO that carries
    the version (an sdist has no CMakeLists.txt)."""
    base = f"{PACKAGE}-{version()}"
    files: List[Tuple[str, bytes]] = []
    for arcname, path in _package_files():
        with open(path, "rb") as f:
            files.append((arcname, f.read()))
    for rel in ("pyproject.toml", "_build_backend/mailbox_ipc_build.py"):
        with open(os.path.join(HERE, rel), "rb") as f:
            files.append((rel, f.read()))
    files.append(("LICENSE", _license()))
    files.append(("PKG-INFO", metadata().encode()))

    filename = f"{base}.tar.gz"
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz",
                      format=tarfile.PAX_FORMAT) as t:
        for name, data in sorted(files):
            info = tarfile.TarInfo(f"{base}/{name}")
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 315532800  # EPOCH, in UTC
            t.addfile(info, io.BytesIO(data))
    return filename
