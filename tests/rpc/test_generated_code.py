"""The checked-in generated code is exactly what `scripts/gen_proto.py` makes of the .proto files."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

from grpc_tools import grpc_version

ROOT = Path(__file__).resolve().parents[2]


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_proto", ROOT / "scripts" / "gen_proto.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_checked_in_code_matches_a_fresh_generation(tmp_path: Path) -> None:
    gen = load_generator()
    gen.main(["--out", str(tmp_path)])
    checked_in = gen.OUT_DIR
    fresh = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    current = {
        path.name: path.read_bytes()
        for path in checked_in.iterdir()
        if path.name.endswith(gen.GENERATED_SUFFIXES) or path.name == "__init__.py"
    }
    hint = "the generated code is stale: run `.venv/bin/python scripts/gen_proto.py` and commit the result"
    stub_source = (checked_in / "auth_pb2_grpc.py").read_text()
    made_with = re.search(r"GRPC_GENERATED_VERSION = '([^']+)'", stub_source)
    installed = grpc_version.VERSION
    if made_with is not None and made_with[1] != installed:
        hint += f" (checked in from grpcio-tools {made_with[1]}, installed {installed}: pin one of them)"
    assert sorted(current) == sorted(fresh), hint
    for name, content in fresh.items():
        assert current[name] == content, f"{name}: {hint}"


def test_every_proto_file_is_generated() -> None:
    gen = load_generator()
    protos = {path.stem for path in gen.proto_files()}
    assert protos == {"auth", "conversation", "directory", "group", "inbox"}
    for stem in protos:
        for suffix in gen.GENERATED_SUFFIXES:
            assert (gen.OUT_DIR / f"{stem}{suffix}").is_file()


def test_generated_modules_import_inside_the_package() -> None:
    from im.rpc.v1 import auth_pb2_grpc, group_pb2_grpc, inbox_pb2_grpc

    for module in (auth_pb2_grpc, group_pb2_grpc, inbox_pb2_grpc):
        assert "from im.v1 import" not in Path(module.__file__ or "").read_text()
