"""Render a terminal transcript (text on stdin) as a PNG, for the README's screenshots.

    bash scripts/screens/feedback_flow.sh | python scripts/screens/term_png.py docs/img/feedback.png

Monospace text on a dark background, drawn with matplotlib (no browser, no network).
Long lines are wrapped at --width characters.
"""

from __future__ import annotations

import argparse
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out")
    parser.add_argument("--width", type=int, default=118, help="characters per line")
    args = parser.parse_args()
    lines = []
    for raw in sys.stdin.read().rstrip("\n").splitlines():
        line = raw.expandtabs(4)
        while len(line) > args.width:
            lines.append(line[: args.width])
            line = "  " + line[args.width:]
        lines.append(line)
    char_w, line_h = 0.092, 0.18  # inches per character / line at 10.5 pt
    fig = plt.figure(figsize=(args.width * char_w + 0.4, len(lines) * line_h + 0.4), dpi=110)
    fig.patch.set_facecolor("#1e1e1e")
    for i, line in enumerate(lines):
        colour = "#8ae234" if line.startswith(("$ ", "    -d")) else (
            "#888888" if line.startswith("#") else "#e0e0e0")
        fig.text(0.2 / fig.get_figwidth(), 1 - (0.2 + (i + 0.8) * line_h) / fig.get_figheight(),
                 line, family="monospace", size=10.5, color=colour, usetex=False,
                 parse_math=False)
    fig.savefig(args.out, facecolor=fig.get_facecolor())
    return 0


if __name__ == "__main__":
    sys.exit(main())
