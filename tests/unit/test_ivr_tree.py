"""The menu tree as data: start-up validation with key paths, and matching keys and speech to options."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

from core.schema import ConfigError
from hotline.configuration import full_config
from ivr.tree import build_tree, check_tree, match


def errors_of(tmp_path: Path, toml: str) -> list[str]:
    path = tmp_path / "hotline.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        full_config(path)
    return exc.value.errors


def test_shipped_tree_is_valid_and_has_the_help_centre_groups():
    tree = build_tree(full_config())
    main = tree.nodes[tree.root]
    assert [o.key for o in main.options] == ["0", "1", "2", "3", "4", "5", "6", "8", "9"]
    assert {main.option(k).goto for k in "123456"} == {"account", "billing", "playback", "benefits", "report", "appeal"}
    assert (main.option("0").do, main.option("8").do, main.option("9").do) == ("agent", "ticket", "language")
    for name in ("account", "billing", "playback", "benefits", "report", "appeal"):
        node = tree.nodes[name]
        assert node.sms and node.category == name and node.option("1").do == "sms" and node.option("*").goto == "main"


@pytest.mark.parametrize(
    "toml,expected",
    [
        (
            '[menu.nodes.main.options]\n7 = { goto = "nowhere" }',
            "menu.nodes.main.options.7.goto: 'nowhere' is not a node of [menu.nodes]",
        ),
        (
            '[menu.nodes.main.options]\n7 = { goto = "account", do = "agent" }',
            "menu.nodes.main.options.7: give exactly one of goto",
        ),
        (
            '[menu.nodes.main.options]\n7 = { hints = { zh = "x" } }',
            "menu.nodes.main.options.7: give exactly one of goto",
        ),
        (
            '[menu.nodes.main.options]\n7 = { do = "fly" }',
            "menu.nodes.main.options.7.do: must be one of agent, sms, ticket, language, repeat",
        ),
        (
            '[menu.nodes.main.options]\n7 = { do = "sms" }',
            'menu.nodes.main.options.7.do: "sms" needs menu.nodes.main.sms',
        ),
        (
            '[menu.nodes.main.options]\n7 = { do = "language", lang = "fr" }',
            "menu.nodes.main.options.7.lang: must be a key of [languages]",
        ),
        (
            '[menu.nodes.main.options]\n7 = { goto = "account", lang = "en" }',
            'menu.nodes.main.options.7.lang: only an option with do = "language"',
        ),
        (
            '[menu.nodes.main.options]\n7 = { goto = "account", hints = { fr = "x" } }',
            "menu.nodes.main.options.7.hints.fr: is not a key of [languages]",
        ),
        ('[menu.nodes.main.options]\n"#" = { goto = "account" }', "menu.nodes.main.options.#: unknown key"),
        (
            '[menu.nodes.main]\nprompt = "no_such_prompt"',
            "menu.nodes.main.prompt: prompt 'no_such_prompt' is not in [prompts]",
        ),
        (
            '[menu.nodes.account]\ncategory = "astrology"',
            "menu.nodes.account.category: 'astrology' is not a key of [categories]",
        ),
        (
            '[menu.nodes.orphan]\nprompt = "menu_main"\noptions = { 1 = { goto = "main" } }',
            "menu.nodes.orphan: is unreachable from menu.root ('main')",
        ),
        (
            '[menu.nodes.empty]\nprompt = "menu_main"\noptions = {}',
            "menu.nodes.empty.options: a node needs at least one option",
        ),
        ('[menu]\nroot = "lobby"', "menu.root: 'lobby' is not a node of [menu.nodes]"),
        ("[menu]\nmax_tries = 0", "menu.max_tries: must be a whole number >= 1 and <= 10"),
        ('[menu]\nhelp_sms = "nope"', "menu.help_sms: prompt 'nope' is not in [prompts]"),
        ('[categories]\nextra = { zh = "额外" }', "categories.extra.en: is missing"),
        ('[prompts.menu_main]\nen = ""', "prompts.menu_main.en: must not be empty"),
    ],
)
def test_a_broken_tree_is_refused_at_start_up_with_its_key_path(tmp_path, toml, expected):
    errors = errors_of(tmp_path, toml)
    assert any(e.startswith(expected) for e in errors), errors


def test_speech_needs_a_recognition_language_for_every_language():
    data = copy.deepcopy(full_config().data)
    del data["menu"]["speech_language"]["en"]
    assert "menu.speech_language.en: is missing (speech input is on)" in check_tree(data)
    data["menu"]["speech"] = False
    assert check_tree(data) == []


def test_a_missing_prompt_language_is_named(tmp_path):
    errors = errors_of(tmp_path, '[prompts.extra]\nzh = "只有中文"\n[menu.nodes.main]\nprompt = "extra"')
    assert "prompts.extra.en: is missing (every prompt needs every language)" in errors


def test_an_operator_can_add_a_node(tmp_path):
    path = tmp_path / "hotline.toml"
    path.write_text(
        '[prompts.answer_live]\nzh = "直播问题。"\nen = "Live streams."\n'
        '[menu.nodes.live]\nprompt = "answer_live"\ncategory = "playback"\n'
        'options = { 0 = { do = "agent" }, "*" = { goto = "main" } }\n'
        '[menu.nodes.main.options]\n7 = { goto = "live", hints = { zh = "直播", en = "live" } }\n',
        encoding="utf-8",
    )
    tree = build_tree(full_config(path))
    assert tree.nodes["main"].option("7").goto == "live" and tree.nodes["live"].reprompt == "answer_live"


@pytest.fixture(scope="module")
def main_node():
    tree = build_tree(full_config())
    return tree.nodes[tree.root]


@pytest.mark.parametrize(
    "digits,speech,lang,key",
    [
        ("1", "", "zh", "1"), ("7", "", "zh", None), ("11", "", "zh", None), ("", "", "zh", None),
        ("", "我的账号登录不了", "zh", "1"), ("", "我要退款", "zh", "2"), ("", "转人工", "zh", "0"),
        ("", "按五", "zh", "5"), ("", "Press 3.", "en", "3"), ("", "I need to talk to an agent", "en", "0"),
        ("", "My video keeps buffering", "en", "3"), ("", "what's the weather", "en", None),
        ("", "refund my account", "en", "1"),  # the longest matching hint wins
        ("", "report a refund", "en", None),  # two options match equally well: ask again rather than guess
    ],
)
def test_keys_and_speech_choose_an_option(main_node, digits, speech, lang, key):
    opt = match(main_node, digits, speech, lang)
    assert (opt.key if opt else None) == key
