"""The authors' own functions, read at test time from TrustMH-Bench's bundles in the dataset mirror (never
copied into the repository), so the paper protocol's readers and prompts are compared with their code.

Their scripts import openai, pandas, torch and tqdm at the top; only the function definitions are taken
(by `ast`) and executed with the few names they use, so the tests need none of those packages.
"""

from __future__ import annotations

import ast
import json
import math
import re
import statistics
import zipfile
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

from tests.test_suites_recorded import ETHICS_ZIP, PRIVACY_ZIP

PRIVACY1 = "privacy/task1/privacy1.py"
PRIVACY2 = "privacy/task2/privacy2.py"
PRIVACY3 = "privacy/task3/privacy3.py"
PIPELINE = "Ethics/src/pipeline.py"
PROMPTS = "Ethics/src/prompts.py"


@cache
def _source(bundle: Path, member: str) -> ast.Module:
    with zipfile.ZipFile(bundle) as archive:
        return ast.parse(archive.read(member).decode("utf-8"))


def _definition(tree: ast.Module, name: str, inside: str | None = None) -> ast.stmt:
    body: Iterable[ast.stmt] = tree.body
    if inside is not None:
        (owner,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == inside]
        body = owner.body
    (found,) = [n for n in body if isinstance(n, ast.FunctionDef | ast.ClassDef) and n.name == name]
    return found


def _exec(definitions: list[ast.stmt], names: dict[str, Any]) -> dict[str, Any]:
    namespace = {"re": re, "json": json, "math": math, "statistics": statistics, "Dict": dict, "Any": Any,
                 "Optional": Any, "List": list, "Tuple": tuple, **names}
    exec(compile(ast.Module(body=definitions, type_ignores=[]), "<authors>", "exec"), namespace)
    return namespace


def parse_response(tier: str) -> Callable[[str], Any]:
    """privacy1.py (tier 1) or privacy2.py (tier 2) `EvalAgent.parse_response`, as a function of the answer."""
    member = PRIVACY1 if tier == "1" else PRIVACY2
    method = _exec([_definition(_source(PRIVACY_ZIP, member), "parse_response", "EvalAgent")], {})["parse_response"]
    return lambda response: method(None, response)


def extract_model_choice() -> Callable[[str, str], Any]:
    return _exec([_definition(_source(ETHICS_ZIP, PIPELINE), "_extract_model_choice")], {})["_extract_model_choice"]


def parse_json_content() -> Callable[[str], Any]:
    return _exec([_definition(_source(ETHICS_ZIP, PIPELINE), "_parse_json_content")], {})["_parse_json_content"]


def build_judge_prompt() -> Callable[[dict[str, Any], str], str]:
    return _exec([_definition(_source(ETHICS_ZIP, PROMPTS), "build_judge_prompt")], {})["build_judge_prompt"]


def build_reasoning_prompt() -> Callable[[dict[str, Any]], str]:
    return _exec([_definition(_source(ETHICS_ZIP, PROMPTS), "build_reasoning_prompt")], {})["build_reasoning_prompt"]


def _batches(dataset: Any, batch_size: int) -> list[dict[str, list[Any]]]:
    """torch's DataLoader over a dataset of dicts: each batch collated into a dict of lists."""
    rows = [dataset[i] for i in range(len(dataset))]
    chunks = [rows[i:i + batch_size] for i in range(0, len(rows), batch_size)]
    return [{key: [row[key] for row in chunk] for key in chunk[0]} for chunk in chunks]


def check_info_leak(proxy_answers: list[str], batch: list[dict[str, Any]]) -> tuple[list[str], list[bool]]:
    """privacy3.py `EvalAgent.check_info_leak`, the proxy model replaced by canned answers."""
    tree = _source(PRIVACY_ZIP, PRIVACY3)
    names = _exec([_definition(tree, "PrivacyEvalDataset")], {"Dataset": object})
    method = _exec([_definition(tree, "check_info_leak", "EvalAgent")], {
        "PrivacyEvalDataset": names["PrivacyEvalDataset"],
        "DataLoader": lambda dataset, batch_size: _batches(dataset, batch_size),
        "tqdm": lambda iterable: iterable,
    })["check_info_leak"]
    answers = iter(proxy_answers)

    class Evaluator:
        def batch_interact(self, prompts: list[str]) -> list[str]:
            return [next(answers) for _ in prompts]

    return method(None, batch, Evaluator())  # type: ignore[no-any-return]


def proxy_input(response: str, secret: str) -> str:
    """The proxy model's `input` as privacy3.py's `run_evaluator` builds it: its own `instruction`,
    `agent_q` and `'input'` expressions, evaluated on one row."""
    run_evaluator = _definition(_source(PRIVACY_ZIP, PRIVACY3), "run_evaluator", "EvalAgent")
    assigned = {target.id: node.value for node in ast.walk(run_evaluator) if isinstance(node, ast.Assign)
                for target in node.targets if isinstance(target, ast.Name)}
    (input_expr,) = [value for node in ast.walk(run_evaluator) if isinstance(node, ast.Dict)
                     for key, value in zip(node.keys, node.values, strict=True)
                     if isinstance(key, ast.Constant) and key.value == "input"]
    row = {"response": response, "secret": secret}
    scope: dict[str, Any] = {"row": row}
    for name in ("instruction", "agent_q"):
        scope[name] = eval(compile(ast.Expression(assigned[name]), "<authors>", "eval"), scope)
    return eval(compile(ast.Expression(input_expr), "<authors>", "eval"), scope)  # type: ignore[no-any-return]
