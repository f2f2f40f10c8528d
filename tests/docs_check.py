"""Helpers of tests/test_readme.py: the README's blocks, output shapes, flag tables.

Run as a script, it rewrites the flag tables of docs/cli.md from the CLI's
parser (``tuner_prune.cli.build_parser``), between the ``<!-- flags: COMMAND -->``
and ``<!-- /flags -->`` markers:

    python tests/docs_check.py
"""

import argparse
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMANDS = ("search", "export", "report", "sweep")

# A fenced block and the HTML comment before it: <!-- run: ID, how it is run -->.
BLOCK = re.compile(r"<!-- run: (?P<id>[\w-]+)(?P<how>[^>]*)-->\n+```(?P<lang>[\w+-]*)\n"
                   r"(?P<body>.*?)```", re.S)
FENCE = re.compile(r"^```", re.M)


def read(path):
    with open(os.path.join(REPO, path), encoding="utf-8") as handle:
        return handle.read()


def blocks(text):
    """``{id: body}`` of every marked fenced block of ``text``."""
    found = {}
    for match in BLOCK.finditer(text):
        if match["id"] in found:
            raise AssertionError(f"block id {match['id']!r} used twice")
        found[match["id"]] = match["body"]
    return found


def fence_count(text):
    """Fenced blocks in ``text`` (two fences each)."""
    return len(FENCE.findall(text)) // 2


# ---- Output shapes: what stays when numbers and values are masked.

# A number not glued to a word (float32 and trial_00 keep theirs).
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?", re.I)
PROGRESS = re.compile(r"^\s+Trial \S+ epoch \d+/\d+: ")
VARIANT_ROW = re.compile(r"^    (?P<name>\w+) +\d+ bytes")
MARKS = ("chosen", "over the MSE tolerance")


def shape(line):
    """``line`` with its numbers, hyperparameter values and variant names masked."""
    line = re.sub(r"(\w+)=[^,\s]+", r"\1=V", line)
    line = re.sub(r"model\.tflite \(\w+\)", "model.tflite (VARIANT)", line)
    line = re.sub(r"C99 \(\w+ weights;", "C99 (VALUES weights;", line)
    line = re.sub(r"(yes|wrong|fails|\?)/(yes|wrong|fails|\?)/(yes|wrong|fails|\?)", "S/S/S",
                  line)
    row = VARIANT_ROW.match(line)
    if row:
        line = "    VARIANT" + line[len(row["name"]) + 4:]
        if " gzipped " not in line:  # A variant that did not load: its error.
            line = re.sub(r" bytes .*", " bytes ERROR", line)
        for mark in MARKS:
            line = re.sub(rf"\s+{mark}$", "", line)
    return " ".join(NUMBER.sub("N", line).split())


def shapes(text, export_dir=None):
    """Shapes of the lines of ``text``: progress lines left out, repeated trial
    lines (one pair per trial) kept once, ``export_dir`` printed as ``export``."""
    seen, kept = set(), []
    for line in text.splitlines():
        if not line.strip() or PROGRESS.match(line):
            continue
        if export_dir:
            line = line.replace(str(export_dir), "export")
        masked = shape(line)
        if masked.startswith(("Trial N (", "val_mse N | best so far")) or masked.startswith(
                "VARIANT"):
            if masked in seen and not masked.startswith("VARIANT"):
                continue
            seen.add(masked)
        kept.append(masked)
    return kept


def variant_names(text):
    return [m["name"] for m in map(VARIANT_ROW.match, text.splitlines()) if m]


# ---- The flag tables of docs/cli.md.

def subparsers():
    from tuner_prune.cli import build_parser

    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: action.choices[name] for name in COMMANDS}


def flags(parser):
    """The parser's optional flags (``--help`` aside), as argparse actions."""
    return [a for a in parser._actions if a.option_strings and a.dest != "help"]


# "text (default: X)", "text (note; default: X)" or "text; default: X", at the end.
DEFAULT = re.compile(r"(?:\s*\(default: (?P<paren>.*)\)|; default: (?P<inner>[^()]*)(?P<close>\))"
                     r"|[;,]?\s*default: (?P<bare>.*))$")


def help_text(parser, action):
    """A flag's help as ``--help`` prints it (``%(default)s`` expanded, and the
    ``(default: ...)`` the parser's formatter may add)."""
    if action.help is None:
        return ""
    return " ".join(parser._get_formatter()._expand_help(action).split())


def default_text(parser, action):
    """A flag's default as ``--help`` words it, else as argparse holds it
    (``off`` for a switch, ``none`` when unset)."""
    found = DEFAULT.search(help_text(parser, action))
    if found:
        return (found["paren"] or found["inner"] or found["bare"]).strip()
    if action.nargs == 0:
        return "off" if not action.default else "on"
    return "none" if action.default is None else str(action.default)


def meaning_text(parser, action):
    """The help without its default."""
    meaning = DEFAULT.sub(lambda found: found["close"] or "",
                          help_text(parser, action)).strip()
    if action.choices and not meaning:
        meaning = "one of " + ", ".join(f"`{c}`" for c in action.choices)
    return meaning


def flag_cell(action):
    name = action.option_strings[-1]
    if action.nargs == 0:
        return f"`{name}`"
    metavar = action.metavar or (f"{{{','.join(action.choices)}}}" if action.choices
                                 else action.dest.upper())
    return f"`{name} {metavar}`"


def flag_rows(parser):
    rows = ["| flag | default | meaning |", "| --- | --- | --- |"]
    for action in flags(parser):
        cells = (flag_cell(action), f"`{default_text(parser, action)}`",
                 meaning_text(parser, action))
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return rows


def flag_table(page, command):
    """The rows between ``<!-- flags: command -->`` and ``<!-- /flags -->``."""
    match = re.search(rf"<!-- flags: {command} -->\n(.*?)<!-- /flags -->", page, re.S)
    if match is None:
        raise AssertionError(f"docs/cli.md has no <!-- flags: {command} --> table")
    return match[1].strip().splitlines()


def regenerate(path="docs/cli.md"):
    page = read(path)
    for command, parser in subparsers().items():
        rows = "\n".join(flag_rows(parser))
        page, count = re.subn(rf"(<!-- flags: {command} -->\n).*?(<!-- /flags -->)",
                              lambda m, rows=rows: f"{m[1]}{rows}\n{m[2]}", page, flags=re.S)
        if count != 1:
            raise SystemExit(f"{path}: expected one <!-- flags: {command} --> table")
    with open(os.path.join(REPO, path), "w", encoding="utf-8") as handle:
        handle.write(page)


# ---- Links between the pages.

def slug(heading):
    """GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(text):
    inside, found = False, set()
    for line in text.splitlines():
        if line.startswith("```"):
            inside = not inside
        elif not inside and line.startswith("#"):
            found.add(slug(line.lstrip("#")))
    return found


def local_links(text):
    """``(target, anchor)`` of every relative Markdown link or image of ``text``."""
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        yield path, anchor


if __name__ == "__main__":
    sys.path.insert(0, REPO)
    regenerate()
