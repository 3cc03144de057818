"""Reading the pods the operator builds, for the tests."""

from __future__ import annotations

from typing import Any


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return found


def secret_files(deployment: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """`IM_*_FILE` variable -> (Secret, key) of the projected file it names."""
    pod = deployment["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if v["name"] == "secrets"]
    [mount] = [m for m in container(deployment)["volumeMounts"] if m["name"] == "secrets"]
    files = {f"{mount['mountPath']}/{item['path']}": (source["secret"]["name"], item["key"])
             for source in volume["projected"]["sources"] for item in source["secret"]["items"]}
    return {e["name"]: files[e["value"]] for e in container(deployment)["env"] if e["name"].endswith("_FILE")}
