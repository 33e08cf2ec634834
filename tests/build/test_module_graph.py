"""The module graph in Package.swift's header comment is the one the targets declare: every module of ours, with
exactly the modules of ours it depends on (external packages aside). Reads `swift package dump-package`.
"""
import json
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def declared() -> dict[str, set[str]]:
    out = subprocess.run(["swift", "package", "dump-package"], cwd=REPO, capture_output=True, text=True, timeout=300, check=True).stdout
    targets = json.loads(out)["targets"]
    ours = {t["name"] for t in targets}
    graph = {}
    for t in targets:
        if t["type"] in ("test", "system"):
            continue
        deps = set()
        for d in t["dependencies"]:
            name = (d.get("byName") or d.get("target") or [None])[0]
            if name in ours:
                deps.add(name)
        graph[t["name"]] = deps
    return graph


def commented() -> dict[str, set[str]]:
    graph = {}
    for line in (REPO / "Package.swift").read_text().splitlines():
        m = re.match(r"^//\s+(\w+) ─►(.*)$", line)
        if m:
            graph[m.group(1)] = {name.strip() for name in m.group(2).split(",") if name.strip()}
    return graph


def test_the_comment_lists_every_module_with_its_dependencies():
    real, said = declared(), commented()
    # Leaf modules without dependencies of ours may be left out of the comment.
    for name, deps in real.items():
        if not deps and name not in said:
            continue
        assert name in said, f"Package.swift's comment does not list {name} (depends on {sorted(deps)})"
        assert said[name] == deps, f"{name}: the comment says {sorted(said[name])}, the target says {sorted(deps)}"
    assert set(said) <= set(real), f"the comment lists modules that are not targets: {sorted(set(said) - set(real))}"
