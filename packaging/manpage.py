#!/usr/bin/env python3
"""Writes tailsse(8) to stdout from the two texts users already read: `tailsse --help` (the name,
synopsis and options) and README.md (the description, the configuration file, the HTTP API, the
journal filters and the installed files), so the manual page never says something they do not.

    manpage.py BINARY README.md [--prefix /usr] [--sysconfdir /etc]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys


def escape(text: str) -> str:
    """roff-escapes plain text: backslashes, and a leading control character."""
    text = text.replace("\\", "\\e")
    return "\\&" + text if text.startswith((".", "'")) else text


def inline(text: str) -> str:
    """Markdown inline text as roff: `code` and **strong** bold, links as their text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text).replace("\\|", "|")
    out = []
    for i, part in enumerate(re.split(r"(`[^`]*`)", text)):
        if i % 2:
            out.append("\\fB" + escape(part[1:-1]).replace("-", "\\-") + "\\fR")
        else:
            part = escape(part)
            out.append(re.sub(r"\*\*([^*]+)\*\*", r"\\fB\1\\fR", part))
    return "".join(out).lstrip()


def section(readme: str, heading: str) -> list[str]:
    """The lines under a README heading (`## X` or `### X`), up to the next heading of any level."""
    lines = readme.splitlines()
    start = next((i for i, line in enumerate(lines) if re.fullmatch(r"#+ " + re.escape(heading), line)), None)
    if start is None:
        raise SystemExit(f"manpage.py: README.md has no section {heading!r}")
    body = []
    fenced = False
    for line in lines[start + 1:]:
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("#"):
            break
        body.append(line)
    return body


def table(lines: list[str], first_header: str) -> list[list[str]]:
    """The rows of the Markdown table whose first column is headed `first_header`."""
    rows: list[list[str]] = []
    inside = False
    for line in lines:
        if not line.startswith("|"):
            if inside:
                break
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if not inside:
            inside = cells[0] == first_header
        elif not all(set(c) <= set("-: ") for c in cells):
            rows.append(cells)
    if not rows:
        raise SystemExit(f"manpage.py: README.md has no table headed {first_header!r}")
    return rows


def markdown(lines: list[str]) -> list[str]:
    """Paragraphs, bullet lists and code blocks (the subset the README's sections use) as roff."""
    out: list[str] = []
    paragraph: list[str] = []
    fenced = False
    new_paragraph = True

    def flush() -> None:
        if paragraph:
            out.append(inline(" ".join(paragraph)))
            paragraph.clear()

    for raw in lines:
        line = raw.strip()
        if line.startswith("```"):
            flush()
            fenced = not fenced
            out += [".PP", ".RS 4", ".nf"] if fenced else [".fi", ".RE"]
            new_paragraph = True
        elif fenced:
            out.append(escape(raw))
        elif line.startswith("|"):
            continue
        elif not line:
            flush()
            new_paragraph = True
        elif line.startswith("- "):
            flush()
            out += [".IP \\(bu 2"]
            paragraph.append(line[2:])
            new_paragraph = False
        else:
            if new_paragraph:
                out.append(".PP")
                new_paragraph = False
            paragraph.append(line)
    flush()
    return out


def tagged(rows: list[list[str]]) -> list[str]:
    """Two-column table rows as a tagged list."""
    out = []
    for row in rows:
        out += [".TP", inline(row[0]), inline(" ".join(row[1:]))]
    return out


def help_options(text: str) -> list[tuple[str, str]]:
    """The OPTIONS of `tailsse --help` as (option, description), wrapped lines joined."""
    options: list[tuple[str, str]] = []
    inside = False
    for line in text.splitlines():
        if line.startswith("OPTIONS:"):
            inside = True
        elif inside and line.strip():
            match = re.match(r"  ((?:-\w, )?--[\w-]+(?: <[^>]+>)?(?: \.\.\.)?)(?:\s+(.*))?$", line)
            if match:
                options.append((match.group(1), match.group(2) or ""))
            elif options:
                name, description = options[-1]
                options[-1] = (name, (description + " " + line.strip()).strip())
        elif inside:
            break
    return options


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("binary")
    ap.add_argument("readme")
    ap.add_argument("--prefix", default="/usr/local")
    ap.add_argument("--sysconfdir", default="/etc")
    p = ap.parse_args()
    version = subprocess.run([p.binary, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    help_text = subprocess.run([p.binary, "--help"], capture_output=True, text=True, check=True,
                               ).stdout
    readme = open(p.readme, encoding="utf-8").read()

    overview = re.search(r"OVERVIEW: (.*?)\n\n", help_text, re.S).group(1).replace("\n", " ")
    usage = re.search(r"USAGE: tailsse (.*)", help_text).group(1)
    defaults = {row[0].strip("`").split()[0]: row[1] for row in table(section(readme, "Command line"), "option")}
    intro = readme.split("\n\n")[1]

    out = [f'.TH TAILSSE 8 "" "tailsse {version}" "System Administration"',
           ".SH NAME", "tailsse \\- " + escape(overview[0].lower() + overview[1:].rstrip(".")),
           ".SH SYNOPSIS", ".B tailsse", escape(usage).replace("-", "\\-"),
           ".SH DESCRIPTION", *markdown(intro.splitlines()),
           ".SH OPTIONS"]
    for name, description in help_options(help_text):
        long_name = next((n for n in re.findall(r"--[a-z-]+", name)), "")
        default = defaults.get(long_name, "")
        if default and "default" not in description and default != "none":
            description += f" Default: {default}."
        out += [".TP", "\\fB" + escape(name).replace("-", "\\-") + "\\fR", inline(description)]
    out += [".SH CONFIGURATION FILE", *markdown(section(readme, "Configuration file")),
            ".SH RELOAD", *markdown(section(readme, "Reload (SIGHUP)")),
            ".SH HTTP API", *tagged(table(section(readme, "HTTP API"), "request")),
            *markdown(section(readme, "HTTP API")),
            ".SH JOURNAL FILTERS",
            "Query parameters of \\fB/journal\\fR and \\fB/sources/journal\\fR; the same field ORs, different fields AND.",
            *tagged(table(section(readme, "Watch the journal"), "parameter")),
            ".SH FILES"]
    for row in table(section(readme, "Without the package"), "path"):
        path = row[0].replace("$(PREFIX)", p.prefix).replace("/etc/", p.sysconfdir.rstrip("/") + "/")
        out += [".TP", inline(path), inline(row[1])]
    out += [".SH SEE ALSO", "\\fBsystemctl\\fR(1), \\fBjournalctl\\fR(1), \\fBsystemd.socket\\fR(5), \\fBcurl\\fR(1)"]
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
