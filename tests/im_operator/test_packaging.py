"""The operator image installs only the `operator` extra: every library it imports must be there."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
OPERATOR_PACKAGE = ROOT / "operator" / "im_operator"


def imported_top_level_modules(package: Path) -> set[str]:
    modules: set[str] = set()
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules


def operator_extra_distributions() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extra = project["optional-dependencies"]["operator"]
    return {Requirement(line).name.lower().replace("_", "-") for line in extra}


def test_every_third_party_import_of_the_operator_is_in_the_operator_extra() -> None:
    third_party = imported_top_level_modules(OPERATOR_PACKAGE) - set(sys.stdlib_module_names) - {
        "im_operator"
    }
    distributions = packages_distributions()
    declared = operator_extra_distributions()
    missing = {
        module
        for module in third_party
        if not {name.lower().replace("_", "-") for name in distributions.get(module, [module])} & declared
    }
    assert not missing, f"imported by the operator but not in the operator extra: {sorted(missing)}"
