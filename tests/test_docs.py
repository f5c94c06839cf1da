"""The README and docs/commands.md stay true to the command line.

- every ``gpskit ...`` command written in them (code blocks and inline code) names a real
  command and only options that command has;
- every option of every command is explained in docs/commands.md, in the section whose
  heading names that command;
- every relative link (and its #anchor) points to something that exists;
- the README stays a front page (short).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer

from gpskit.cli import app

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
COMMANDS = ROOT / "docs" / "commands.md"
BENCHMARKS = ROOT / "docs" / "benchmarks.md"
CHECKED = (README, COMMANDS)
LINKED = (README, COMMANDS, BENCHMARKS)
README_MAX_LINES = 130
#: Options that docs/commands.md explains once, above the first command's section.
COMMON_OPTIONS = ("--json",)

#: Code-block languages whose lines are shell commands (an unlabelled block too).
SHELL_LANGUAGES = {"", "bash", "sh", "shell", "console", "zsh"}
SEPARATORS = {"&&", "||", "|", ";"}
#: A placeholder such as PHOTOS..., DATASET_DIR, RUN_DIR, [DATASET_DIR].
PLACEHOLDER = re.compile(r"^\[?[A-Z][A-Z0-9_]*(\.\.\.)?\]?$")
SHORT_OPTION = re.compile(r"^-[A-Za-z]$")
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.MULTILINE)


# ----- the command tree --------------------------------------------------------------------


@dataclass(frozen=True)
class Cmd:
    """One node of the command tree: a group (with subcommands) or a command."""

    path: tuple[str, ...]
    options: frozenset[str]  # every spelling: --opt, --no-opt, -o
    hidden: frozenset[str]  # spellings of hidden options
    children: dict[str, Cmd]

    @property
    def name(self) -> str:
        return " ".join(("gpskit", *self.path))


def _build(command: Any, path: tuple[str, ...]) -> Cmd:
    options: set[str] = set()
    hidden: set[str] = set()
    for param in command.params:
        if getattr(param, "param_type_name", "") != "option":
            continue
        names = {*param.opts, *param.secondary_opts}
        options |= names
        if getattr(param, "hidden", False):
            hidden |= names
    options.add("--help")  # click adds it to every command
    children: dict[str, Cmd] = {}
    if hasattr(command, "list_commands"):
        ctx = command.context_class(command, info_name=path[-1] if path else "gpskit")
        for name in command.list_commands(ctx):
            child = command.get_command(ctx, name)
            assert child is not None, f"{' '.join(('gpskit', *path))}: lists {name!r} but has none"
            children[name] = _build(child, (*path, name))
    return Cmd(path, frozenset(options), frozenset(hidden), children)


@pytest.fixture(scope="module")
def tree() -> Cmd:
    return _build(typer.main.get_command(app), ())


def _walk(cmd: Cmd) -> Iterator[Cmd]:
    yield cmd
    for child in cmd.children.values():
        yield from _walk(child)


# ----- reading the markdown ----------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """A command line (or inline code span) found in a file."""

    file: str
    number: int
    text: str


def _blocks(text: str) -> Iterator[tuple[str, int, list[str]]]:
    """(language, first line number, lines) of each fenced code block."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, language = match.group(2), match.group(3).lower()
        start, body = i + 2, []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        i += 1
        yield language, start, body


def _prose(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of every line outside fenced code blocks."""
    inside: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if inside is None and match:
            inside = match.group(2)
        elif inside is not None and line.strip().startswith(inside):
            inside = None
        elif inside is None:
            yield number, line


def shell_lines(path: Path) -> Iterator[Line]:
    """Shell lines of the file's shell code blocks, continuations joined."""
    for language, start, body in _blocks(path.read_text(encoding="utf-8")):
        if language not in SHELL_LANGUAGES:
            continue
        pending, first = "", start
        for offset, raw in enumerate(body):
            line = raw.removeprefix("$ ") if language == "console" else raw
            if not pending:
                first = start + offset
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            yield Line(path.name, first, pending + line)
            pending = ""
        if pending:
            yield Line(path.name, first, pending)


def inline_spans(path: Path) -> Iterator[Line]:
    """Inline code spans outside code blocks (headings included)."""
    for number, line in _prose(path.read_text(encoding="utf-8")):
        for match in INLINE_CODE.finditer(line):
            yield Line(path.name, number, match.group(1).strip())


def gpskit_invocations(text: str) -> Iterator[list[str]]:
    """The arguments after each ``gpskit`` in a shell line: at the start of a command
    (``gpskit ...``, ``.venv/bin/gpskit ...``) or after ``-m`` (``torchrun ... -m gpskit``)."""
    tokens = shlex.split(text, comments=True)
    segment: list[str] = []
    for token in [*tokens, ";"]:
        if token not in SEPARATORS:
            segment.append(token)
            continue
        for i, word in enumerate(segment):
            if Path(word).name == "gpskit" and (i == 0 or segment[i - 1] == "-m"):
                yield segment[i + 1 :]
                break
        segment = []


def check_invocation(tree: Cmd, args: list[str]) -> list[str]:
    """What is wrong with ``gpskit ARGS``: unknown commands, unknown options."""
    problems: list[str] = []
    targets = [tree]
    rest = list(args)
    # Walk down to the (sub)command: `publish dataset`, `publish dataset|model`,
    # `COMMAND` (a placeholder: every command must accept what follows).
    while rest and targets[0].children and not rest[0].startswith("-"):
        word = rest.pop(0).strip("[]")
        if PLACEHOLDER.match(word):
            targets = [leaf for t in targets for leaf in _walk(t) if not leaf.children]
            break
        following = []
        for alternative in word.split("|"):
            for target in targets:
                child = target.children.get(alternative)
                if child is None:
                    problems.append(f"{target.name} has no command {alternative!r}")
                else:
                    following.append(child)
        if problems:
            return problems
        targets = following
    for token in rest:
        if token == "--":
            break  # the end of options: the rest are arguments
        option = token.strip("[]").split("=", 1)[0]
        if not (option.startswith("--") and len(option) > 2) and not SHORT_OPTION.match(option):
            continue  # an argument, a value, a placeholder
        for target in targets:
            if option not in target.options:
                problems.append(f"{target.name} has no option {option}")
    return problems


def _command_lines() -> Iterator[Line]:
    for path in CHECKED:
        yield from shell_lines(path)
        for span in inline_spans(path):
            if "gpskit" in span.text:
                yield span


def test_every_documented_command_line_exists(tree: Cmd) -> None:
    problems, seen = [], 0
    for line in _command_lines():
        try:
            invocations = list(gpskit_invocations(line.text))
        except ValueError as exc:  # unbalanced quotes: written wrong
            problems.append(f"{line.file}:{line.number}: {line.text!r}: {exc}")
            continue
        for args in invocations:
            seen += 1
            problems += [
                f"{line.file}:{line.number}: {line.text!r}: {p}"
                for p in check_invocation(tree, args)
            ]
    assert seen > 60, f"only {seen} gpskit command lines found: is the parser still right?"
    assert not problems, "\n".join(problems)


def test_every_documented_option_exists(tree: Cmd) -> None:
    """Inline code that starts with an option (`--near`, `--weights none`) names an option
    some gpskit command has."""
    known = {o for cmd in _walk(tree) for o in cmd.options}
    problems = []
    for path in CHECKED:
        for span in inline_spans(path):
            first = span.text.split()[0]
            option = first.split("=", 1)[0]
            if option.startswith("--") and option not in known:
                problems.append(f"{span.file}:{span.number}: `{span.text}`: no such option")
    assert not problems, "\n".join(problems)


def _sections(path: Path) -> dict[str, str]:
    """Heading line -> the text under it (up to the next heading of the same or a higher
    level), for every heading outside code blocks."""
    lines = path.read_text(encoding="utf-8").splitlines()
    headings = [
        (number - 1, len(m.group(1)))
        for number, line in _prose(path.read_text(encoding="utf-8"))
        if (m := re.match(r"^(#{1,6})\s", line))
    ]
    sections = {}
    for index, (start, level) in enumerate(headings):
        end = next((s for s, lv in headings[index + 1 :] if lv <= level), len(lines))
        sections[lines[start]] = "\n".join(lines[start:end])
    return sections


def test_commands_md_explains_every_option(tree: Cmd) -> None:
    """Each command has a section in docs/commands.md (a heading that names `gpskit
    COMMAND`) that mentions each of its options (hidden ones excepted)."""
    sections = _sections(COMMANDS)
    whole = COMMANDS.read_text(encoding="utf-8")
    intro = whole.split("\n## ", 1)[0]
    problems = [
        f"{o} is not explained at the top of docs/commands.md"
        for o in COMMON_OPTIONS
        if o not in intro
    ]
    for cmd in _walk(tree):
        options = sorted(
            o for o in cmd.options - cmd.hidden - {"--help", *COMMON_OPTIONS} if o.startswith("--")
        )
        if not cmd.path:  # gpskit --version: anywhere in the page
            problems += [
                f"gpskit {o} is not in docs/commands.md" for o in options if o not in whole
            ]
            continue
        name = re.compile(rf"gpskit {re.escape(cmd.path[0])}\b")
        own = [text for heading, text in sections.items() if name.search(heading)]
        if not own:
            problems.append(f"{cmd.name}: no heading in docs/commands.md names it")
            continue
        text = "\n".join(own)
        for option in options:
            if not re.search(rf"{re.escape(option)}(?![\w-])", text):
                problems.append(f"{cmd.name} {option} is not explained in its section")
    assert not problems, "\n".join(problems)


def test_documented_make_targets_exist() -> None:
    """Every `make TARGET` in the README's and docs' code is a target of the Makefile."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([\w.-]+)\s*:(?!=)", makefile, re.MULTILINE))
    problems, seen = [], 0
    for path in LINKED:
        lines = [*shell_lines(path), *inline_spans(path)]
        for line in lines:
            for target in re.findall(r"(?:^|&&|;)\s*make\s+([\w.-]+)", line.text):
                seen += 1
                if target not in targets:
                    problems.append(f"{line.file}:{line.number}: make {target}: no such target")
    assert seen, "no `make` command found: is the pattern still right?"
    assert not problems, "\n".join(problems)


# ----- links and length --------------------------------------------------------------------


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"^#+\s*", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    slugs: dict[str, int] = {}
    found = set()
    for _, line in _prose(path.read_text(encoding="utf-8")):
        if re.match(r"^#{1,6}\s", line):
            slug = _slug(line)
            n = slugs.get(slug, 0)
            found.add(slug if n == 0 else f"{slug}-{n}")
            slugs[slug] = n + 1
    return found


def relative_links(path: Path) -> Iterator[tuple[int, str]]:
    for number, line in _prose(path.read_text(encoding="utf-8")):
        line = INLINE_CODE.sub("", line)  # a link written inside code is no link
        for match in LINK.finditer(line):
            yield number, match.group(1)
    for match in REFERENCE.finditer(path.read_text(encoding="utf-8")):
        yield 0, match.group(1)


@pytest.mark.parametrize("doc", LINKED, ids=lambda p: p.name)
def test_relative_links_resolve(doc: Path) -> None:
    problems, seen = [], 0
    for number, target in relative_links(doc):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            continue  # http:, https:, mailto:
        seen += 1
        file_part, _, anchor = target.partition("#")
        linked = (doc.parent / file_part).resolve() if file_part else doc
        if not linked.exists():
            problems.append(f"{doc.name}:{number}: {target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            problems.append(f"{doc.name}:{number}: {target}: no heading #{anchor}")
    assert seen, f"{doc.name} has no relative link: is the pattern still right?"
    assert not problems, "\n".join(problems)


def test_readme_is_a_front_page() -> None:
    text = README.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move details to "
        "docs/commands.md or docs/benchmarks.md"
    )
    assert "## Errors" in lines, "other pages refer to the README's Errors section"
    for quick in ("make demo", "make test"):
        assert quick in text


# ----- the checker itself can fail ---------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "wrong"),
    [
        ("gpskit ingest photos/ --no-such-option", "gpskit ingest has no option --no-such-option"),
        ("gpskit injest photos/", "gpskit has no command 'injest'"),
        ("gpskit publish dataset --out x --near 3", "gpskit publish dataset has no option --near"),
        ("gpskit publish datasets --out x", "gpskit publish has no command 'datasets'"),
        ("gpskit publish dataset|modle --out x", "gpskit publish has no command 'modle'"),
        (
            "gpskit split --embed && gpskit dedup --max-side 3",
            "gpskit dedup has no option --max-side",
        ),
        (
            "torchrun --nproc_per_node 2 -m gpskit train --epoch 3",
            "gpskit train has no option --epoch",
        ),
        ("gpskit COMMAND --json", "gpskit predict has no option --json"),
        ("gpskit dedup -x", "gpskit dedup has no option -x"),
    ],
)
def test_the_checker_catches(tree: Cmd, line: str, wrong: str) -> None:
    problems = [p for args in gpskit_invocations(line) for p in check_invocation(tree, args)]
    assert wrong in problems


@pytest.mark.parametrize(
    "line",
    [
        "gpskit ingest photos/ --max-h-error 15 --strict --json   # a comment --bogus",
        "gpskit coverage --declination -11.5",
        "gpskit dedup --no-dihedral --no-sheet",
        "gpskit publish dataset|model --out FOLDER --push REPO_ID",
        "gpskit COMMAND --help",
        "gpskit train -o RUN_DIR && gpskit eval RUN_DIR --tta",
        ".venv/bin/gpskit --version",
        "pip install 'gpskit[train]'",
    ],
)
def test_the_checker_accepts(tree: Cmd, line: str) -> None:
    problems = [p for args in gpskit_invocations(line) for p in check_invocation(tree, args)]
    assert problems == []
