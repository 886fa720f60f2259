"""The native library's ctypes bindings, declared once, match the C++ functions they call."""

from __future__ import annotations

import ctypes
import re

import pytest

from microast_video.native.build import HEADERS, SIGNATURES, SOURCES

_C_TYPES = {"int": ctypes.c_int, "int64_t": ctypes.c_int64, "float": ctypes.c_float}


def exported_functions() -> dict[str, list[tuple[str, type]]]:
    """Every ``int microast_*(...)`` defined in the sources: its parameters as (name, ctypes type)."""
    found = {}
    text = "\n".join(path.read_text() for path in (*SOURCES, *HEADERS))
    for name, params in re.findall(r"\bint\s+(microast_\w+)\s*\(([^)]*)\)\s*\{", text):
        parsed = []
        for param in " ".join(params.split()).split(","):
            ctype, pname = param.strip().rsplit(" ", 1)
            if pname.startswith("*"):
                ctype, pname = ctype + "*", pname.lstrip("*")
            ctype = ctype.replace("const ", "").replace(" ", "")
            parsed.append((pname, ctypes.c_void_p if ctype.endswith("*") else _C_TYPES[ctype]))
        found[name] = parsed
    return found


def test_every_exported_function_is_declared_once():
    assert sorted(exported_functions()) == sorted(SIGNATURES)


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_each_declaration_matches_its_cpp_function(name):
    assert list(SIGNATURES[name]) == exported_functions()[name]


def test_a_wrong_declaration_would_be_caught():
    declared = list(SIGNATURES["microast_warp"])
    declared[1] = ("h", ctypes.c_int64)
    assert declared != exported_functions()["microast_warp"]
