"""House rules no linter checks for us: every Redis key is spelled in core/keys.py alone, modules stay a readable
size, and the rq job paths still resolve (a job queued before an upgrade names its function by path)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

from rq.utils import import_attribute

from core import jobqueue, keys
from tests.support.common import ROOT

PRODUCT = ("core", "hotline", "ivr", "members", "callqueue", "webhooks", "console", "simulator", "tools")
KEY_LITERAL = re.compile(r"(?<![\w.])hl:[a-z]")  # the hotline's prefix opening a key name
SOFT_LIMIT, HARD_LIMIT = 300, 400


def python_files(*folders: str) -> list[Path]:
    """Every .py file under the given top-level folders of the repository."""
    return sorted(p for f in folders for p in (ROOT / f).rglob("*.py"))


def key_literals(source: str) -> list[tuple[int, str]]:
    """(line, text) of each string in code that spells an `hl:` key; docstrings (prose may name one) and comments
    (not in the AST) do not count."""
    tree = ast.parse(source)
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
            and KEY_LITERAL.search(n.value)]


def test_no_redis_key_is_spelled_outside_the_keys_module() -> None:
    keys_module = ROOT / "core" / "keys.py"
    found = [f"{p.relative_to(ROOT)}:{line}: {text[:60]!r}" for p in python_files(*PRODUCT) if p != keys_module
             for line, text in key_literals(p.read_text(encoding="utf-8"))]
    assert found == [], "Redis keys are named in core/keys.py only:\n" + "\n".join(found)


def test_the_key_check_sees_keys_in_code_and_lua_but_not_in_prose() -> None:
    source = ('"""Names `hl:rebuilt` in prose."""\n'
              'LOCK = "hl:cb:dialer"  # hl:x in a comment\n'
              'LUA = "return \'hl:q:\' .. x"\n')
    assert key_literals(source) == [(2, "hl:cb:dialer"), (3, "return 'hl:q:' .. x")]


def test_every_key_the_keys_module_names_has_the_prefix() -> None:
    names = [getattr(keys, n) for n in dir(keys) if n.isupper() and isinstance(getattr(keys, n), str)]
    names = [v for v in names if v != keys.LUA_KEYS and v != keys.PREFIX]
    makers = [keys.call, keys.ivr_session, keys.reply, keys.pin_failures, keys.tier_waiting, keys.agent,
              keys.agents_in, keys.stats_day]
    assert len(names) >= 15 and all(v.startswith("hl:") for v in names), names
    assert all(f("x").startswith("hl:") for f in makers) and keys.stats_minute(1).startswith("hl:")


def test_no_module_is_over_400_lines_and_those_over_300_say_why() -> None:
    too_long, unexplained = [], []
    for path in python_files(*PRODUCT, "tests"):
        text = path.read_text(encoding="utf-8")
        lines, name = text.count("\n"), str(path.relative_to(ROOT))
        if lines > HARD_LIMIT:
            too_long.append(f"{name}: {lines} lines")
        elif lines > SOFT_LIMIT and "over 300 lines" not in (ast.get_docstring(ast.parse(text)) or ""):
            unexplained.append(f"{name}: {lines} lines")
    assert too_long == [], f"modules over {HARD_LIMIT} lines: {too_long}"
    assert unexplained == [], f"modules over {SOFT_LIMIT} lines say why in their docstring: {unexplained}"


def test_every_rq_job_path_resolves_to_a_function_of_hotline_jobs() -> None:
    assert set(jobqueue.JOBS) == {jobqueue.DISPATCH, jobqueue.CALLBACK, jobqueue.TICKET_SMS, jobqueue.SWEEP,
                                  jobqueue.BRIDGE, jobqueue.END_LEGS, jobqueue.HAND_OVER, jobqueue.REQUEUE}
    for name in jobqueue.JOBS:
        assert name.startswith("hotline.jobs.") and callable(import_attribute(name)), name
