"""The menu tree as data: its config schema, its start-up checks, and matching a caller's input to an option."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.config import LABEL, Config
from core.schema import Bool, Num, Spec, Str, Table

ACTIONS = ("agent", "sms", "ticket", "language", "repeat")
KEY_PATTERN = r"[0-9*]"  # "#" alone never reaches us: Twilio ends a <Gather> on "#" only after other digits

# Prompts the call flow says besides the nodes' own (checked to exist at start-up).
FLOW_PROMPTS = (
    "greeting", "goodbye", "retry_no_input", "retry_invalid", "language_offer",
    "pin_prompt", "pin_format", "pin_wrong", "uid_prompt", "uid_format", "uid_unknown",
    "verified", "locked", "number_blocked", "as_guest", "to_agent",
    "ticket_none", "ticket_open", "offer_sms", "sms_sent", "sms_failed", "sms_unavailable",
)

_OPTION = Table(
    fields={
        "goto": Str(nonempty=True),
        "do": Str(choices=ACTIONS),
        "lang": Str(pattern=r"[a-z]{2}", hint="a language key"),
        "hints": Table(each=Str(), key_pattern=r"[a-z]{2}"),
    }
)
_NODE = Table(
    fields={
        "prompt": Str(nonempty=True),
        "reprompt": Str(nonempty=True),
        "category": Str(nonempty=True),
        "sms": Str(nonempty=True),
        "options": Table(each=_OPTION, key_pattern=KEY_PATTERN),
    },
    required=("prompt", "options"),
)
MENU = Table(
    fields={
        "root": Str(nonempty=True),
        "max_tries": Num(min=1, max=10, integer=True),
        "timeout_s": Num(min=1, max=60, integer=True),
        "speech": Bool(),
        "speech_language": Table(each=Str(nonempty=True), key_pattern=r"[a-z]{2}"),
        "help_sms": Str(nonempty=True),
        "nodes": Table(each=_NODE),
    },
    required=("root", "max_tries", "timeout_s", "speech", "help_sms", "nodes"),
)

# The config sections this package owns (registered by hotline.configuration.full_config).
SECTIONS: dict[str, Spec] = {"menu": MENU, "categories": Table(each=LABEL)}


def check_tree(data: Mapping[str, Any]) -> list[str]:
    """Start-up checks of [menu] and [categories]: every key leads somewhere, prompts exist, no node is unreachable."""
    errors: list[str] = []
    menu = data.get("menu") or {}
    nodes: dict[str, Any] = menu.get("nodes") or {}
    prompts = data.get("prompts") or {}
    langs = data.get("languages") or {}
    categories = data.get("categories") or {}

    def need_prompt(path: str, name: str | None, why: str = "") -> None:
        if name is not None and name not in prompts:
            errors.append(f"{path}: prompt {name!r} is not in [prompts]{why}")

    for name in FLOW_PROMPTS:
        need_prompt(f"prompts.{name}", name, " (the call flow says it)")
    need_prompt("menu.help_sms", menu.get("help_sms"))
    for cat, label in categories.items():
        for lang in langs:
            if not (label or {}).get(lang):
                errors.append(f"categories.{cat}.{lang}: is missing")
    if menu.get("speech"):
        for lang in langs:
            if lang not in (menu.get("speech_language") or {}):
                errors.append(f"menu.speech_language.{lang}: is missing (speech input is on)")
    root = menu.get("root")
    if root not in nodes:
        errors.append(f"menu.root: {root!r} is not a node of [menu.nodes]")

    for name, node in nodes.items():
        path = f"menu.nodes.{name}"
        need_prompt(f"{path}.prompt", node.get("prompt"))
        need_prompt(f"{path}.reprompt", node.get("reprompt"))
        need_prompt(f"{path}.sms", node.get("sms"))
        if node.get("category") is not None and node["category"] not in categories:
            errors.append(f"{path}.category: {node['category']!r} is not a key of [categories]")
        options = node.get("options") or {}
        if not options:
            errors.append(f"{path}.options: a node needs at least one option")
        for key, opt in options.items():
            opath = f"{path}.options.{key}"
            goto, do = opt.get("goto"), opt.get("do")
            if (goto is None) == (do is None):
                errors.append(f"{opath}: give exactly one of goto (a node) or do ({', '.join(ACTIONS)})")
            elif goto is not None and goto not in nodes:
                errors.append(f"{opath}.goto: {goto!r} is not a node of [menu.nodes]")
            if do == "sms" and not node.get("sms"):
                errors.append(f"{opath}.do: \"sms\" needs {path}.sms (the text to send)")
            if do == "agent" and not node.get("category"):
                errors.append(f"{opath}.do: \"agent\" needs {path}.category (the queue needs to know why)")
            if do == "language":
                if opt.get("lang") not in langs:
                    errors.append(f"{opath}.lang: must be a key of [languages]")
            elif opt.get("lang") is not None:
                errors.append(f"{opath}.lang: only an option with do = \"language\" takes a lang")
            for lang in opt.get("hints") or {}:
                if lang not in langs:
                    errors.append(f"{opath}.hints.{lang}: is not a key of [languages]")

    if root in nodes:
        seen, todo = {root}, [root]
        while todo:
            for opt in (nodes[todo.pop()].get("options") or {}).values():
                target = opt.get("goto")
                if target in nodes and target not in seen:
                    seen.add(target)
                    todo.append(target)
        for name in nodes:
            if name not in seen:
                errors.append(f"menu.nodes.{name}: is unreachable from menu.root ({root!r})")
    return errors


@dataclass(frozen=True)
class Option:
    key: str
    goto: str | None
    do: str | None
    lang: str | None
    hints: Mapping[str, tuple[str, ...]]  # language → phrases


@dataclass(frozen=True)
class Node:
    name: str
    prompt: str
    reprompt: str
    category: str | None
    sms: str | None
    options: tuple[Option, ...]

    def option(self, key: str) -> Option | None:
        """The option for key `key`, if any."""
        return next((o for o in self.options if o.key == key), None)

    def hints(self, lang: str) -> tuple[str, ...]:
        """Every phrase speech recognition should listen for at this node, in `lang`."""
        return tuple(h for o in self.options for h in o.hints.get(lang, ()))


@dataclass(frozen=True)
class Tree:
    root: str
    nodes: Mapping[str, Node]
    max_tries: int
    timeout_s: int
    speech: bool
    speech_language: Mapping[str, str]
    help_sms: str

    def language_option(self) -> Option | None:
        """The root's language switch (also offered on the first PIN prompt), if the tree has one."""
        return next((o for o in self.nodes[self.root].options if o.do == "language"), None)


def build_tree(config: Config) -> Tree:
    """The validated [menu] section as a Tree (the config was checked by `check_tree` at start-up)."""
    menu = config["menu"]
    nodes = {}
    for name, node in menu["nodes"].items():
        options = tuple(
            Option(
                key=key,
                goto=o.get("goto"),
                do=o.get("do"),
                lang=o.get("lang"),
                hints={
                    lang: tuple(h.strip() for h in text.split(",") if h.strip())
                    for lang, text in (o.get("hints") or {}).items()
                },
            )
            for key, o in sorted(node["options"].items())
        )
        nodes[name] = Node(name=name, prompt=node["prompt"], reprompt=node.get("reprompt") or node["prompt"],
                           category=node.get("category"), sms=node.get("sms"), options=options)
    return Tree(root=menu["root"], nodes=nodes, max_tries=menu["max_tries"], timeout_s=menu["timeout_s"],
                speech=menu["speech"], speech_language=menu.get("speech_language") or {}, help_sms=menu["help_sms"])


_DIGIT_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "star": "*", "零": "0", "一": "1", "幺": "1", "二": "2", "两": "2", "三": "3",
    "四": "4", "五": "5", "六": "6", "七": "7", "八": "8", "九": "9", "星号": "*",
}
_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)
_PRESS = re.compile(r"^(press|按|请按)|(键)$")


def _norm(text: str) -> str:
    return _NOISE.sub("", text.lower())


def match(node: Node, digits: str | None, speech: str | None, lang: str) -> Option | None:
    """The option the caller chose: a single key, or speech naming a key or matching a hint.

    The longest matching hint wins; a tie between hints is no match.
    """
    if digits:
        return node.option(digits) if len(digits) == 1 else None
    said = _norm((speech or "")[:500])
    if not said:
        return None
    key = _PRESS.sub("", said)
    key = _DIGIT_WORDS.get(key, key)
    if len(key) == 1 and node.option(key):
        return node.option(key)
    best: list[tuple[int, Option]] = []
    for opt in node.options:
        for hint in opt.hints.get(lang, ()):
            h = _norm(hint)
            if h and h in said:
                best.append((len(h), opt))
    if not best:
        return None
    top = max(n for n, _ in best)
    winners = {o.key for n, o in best if n == top}
    return node.option(winners.pop()) if len(winners) == 1 else None
