"""The house: no import cycles inside the package, every saveable layer exported by
`slotkeras.layers`, settings stated once (train.py's flags and help defaults agree with
`TrainConfig`), and the README's map of the code in step with the files."""

import ast
import dataclasses
import re
import subprocess
import sys

import pytest
from conftest import ROOT

from slotkeras import cli
from slotkeras.config import TrainConfig, field_default

PACKAGE = ROOT / "slotkeras"


def module_name(path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package=PACKAGE) -> dict[str, set[str]]:
    """Each module of the package and the package modules it imports, anywhere in its
    body (a function's own imports count: they run too). Importing `a.b.c` runs `a.b`'s
    `__init__` first, so it counts as importing that package as well."""
    modules = {module_name(p): p for p in package.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    here = name.split(".") if is_package else name.split(".")[:-1]
                    here = here[: len(here) - node.level + 1]
                    base = ".".join(here + ([base] if base else []))
                targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if not target:
                    continue
                deps.add(target)
                parent = target.rpartition(".")[0]
                while parent:  # the packages above it, whose __init__ runs first
                    deps.add(parent)
                    parent = parent.rpartition(".")[0]
        top = name.split(".")[0]
        # A module's own package (its __init__ runs before it) is not an import of it.
        graph[name] = {d for d in deps if d != name and not name.startswith(d + ".") and d != top}
    return graph


def find_cycle(graph) -> list[str] | None:
    """One import cycle of `graph`, as a list of modules, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                return path[path.index(dep) :] + [dep]
            if dep not in state:
                found = visit(dep, path + [dep])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def test_the_package_imports_no_module_in_a_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_the_cycle_the_package_once_had(tmp_path):
    # data -> model_folder -> predictor -> data: the loop issue 35 removed.
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "data.py").write_text("from pkg.model_folder import atomic_write\n")
    (package / "model_folder.py").write_text("def write():\n    from pkg.predictor import export\n")
    (package / "predictor.py").write_text("from pkg import data\n")
    (package / "lone.py").write_text("import json\n")
    graph = {
        name.replace(str(tmp_path.name), ""): deps
        for name, deps in _graph_of(package, tmp_path).items()
    }
    assert sorted(find_cycle(graph)) == sorted(
        ["pkg.data", "pkg.model_folder", "pkg.predictor", "pkg.data"]
    )


def _graph_of(package, root):
    global ROOT
    saved, ROOT = ROOT, root
    try:
        return import_graph(package)
    finally:
        ROOT = saved


def test_training_imports_nothing_of_prediction_but_the_decoders():
    graph = import_graph()
    seen, todo = set(), ["slotkeras.callbacks", "slotkeras.compiled_tagger"]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph[module])
    assert "slotkeras.slot_filler" not in seen
    assert "slotkeras.saved_model_export" not in seen


def test_lower_layers_never_import_higher_ones():
    graph = import_graph()
    assert not graph["slotkeras.data"] & {"slotkeras.model_folder", "slotkeras.config"}
    assert "slotkeras.saved_model_export" not in graph["slotkeras.model_folder"]


def test_every_registered_layer_is_exported_by_slotkeras_layers():
    """Importing `slotkeras.layers` alone (in a fresh process) registers every layer and
    loss the package defines, and exports each by name."""
    script = (
        "import keras, slotkeras.layers as L\n"
        "names = sorted(k.split('>')[1] for k in keras.saving.get_custom_objects() "
        "if k.startswith('slotkeras>'))\n"
        "print(' '.join(names))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True
    )
    registered_on_import = set(run.stdout.split())
    defined = set()
    for path in (PACKAGE / "layers").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        defined |= set(re.findall(r"register_keras_serializable\([^)]*\)\s*\nclass (\w+)", text))
    assert defined and defined <= registered_on_import
    import slotkeras.layers

    assert defined <= set(slotkeras.layers.__all__)


def test_no_function_in_the_package_is_over_100_lines():
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > 100:
                    long.append(f"{path.relative_to(ROOT)}:{node.name} ({lines})")
    assert not long


# --- settings stated once -----------------------------------------------------------


def train_flags() -> dict[str, object]:
    return {
        action.dest: action
        for action in cli.train_parser()._actions
        if action.option_strings and action.dest not in ("help", "config", "test")
    }


def test_every_setting_has_a_flag_and_every_flag_is_a_setting():
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(train_flags()) == fields


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(TrainConfig)])
def test_a_flags_help_default_is_the_settings_default(name):
    """A "(default: X)" in a flag's help names the field's default; where the field is
    None (another setting decides), the help names what a default run gets."""
    action = train_flags()[name]
    match = re.search(r"default: ([^;),]+)", action.help or "")
    if match is None:
        return  # argparse shows no default for this flag: nothing that can drift
    shown = match.group(1).split()[0]  # "10 with the CRF output": 10
    value = field_default(name)
    if value is None and getattr(TrainConfig(), name) is None:
        return  # no value by default (the help says what happens instead)
    if value is None:
        value = getattr(TrainConfig(), name)  # as __post_init__ decides it for lstm
        if name == "intent_loss_weight":
            value = TrainConfig().effective_intent_loss_weight
    if isinstance(value, bool):
        expected = "on" if value else "off"
    elif isinstance(value, float):
        expected = f"{value:g}"
    else:
        expected = str(value)
    assert shown == expected, f"--{name.replace('_', '-')} says {shown}, TrainConfig {expected}"


def test_flag_choices_are_the_configs_lists():
    from slotkeras import config

    flags = train_flags()
    for name, allowed in (
        ("model", config.KINDS),
        ("encoding", config.ENCODINGS),
        ("output_layer", config.OUTPUTS),
        ("tag_scheme", config.TAG_SCHEMES),
        ("strategy", config.STRATEGIES),
        ("optimizer", config.OPTIMIZERS),
        ("format", config.FORMATS),
    ):
        assert tuple(flags[name].choices) == tuple(allowed)


# --- the README's map of the code ---------------------------------------------------


def readme_code_map() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Map of the code", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^- `(slotkeras/[\w/]+\.py)`", section, flags=re.M)


def test_the_readme_maps_every_module_once_and_nothing_else():
    mapped = readme_code_map()
    files = sorted(
        str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"
    )
    assert len(mapped) == len(set(mapped)), "a module is mapped twice"
    assert sorted(mapped) == files
