r"""Reading the final answer out of a model's reply.

Prompts ask for ``\boxed{...}``; models answer ``\boxed{C}``, ``\boxed{{42}}`` (the doubled
braces of a template they copied), ``$\boxed{\frac{1}{2}}$``, ``The answer is (B).``, or a bare
number at the end. These functions find the answer in each of those shapes. The last boxed
answer wins: a model that boxes a working step first and its result last means the result.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Final

_BOXED: Final = re.compile(r"\\(?:boxed|fbox)\s*\{")
_WRAPPERS: Final = re.compile(r"\\(?:text|textbf|mathrm|mathbf|textit|operatorname|mbox)\s*\{")
_LATEX_NOISE: Final = re.compile(r"\\[,;:! ]|\\left|\\right|\\displaystyle|\$")
_NUMBER: Final = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_FRACTION: Final = re.compile(r"^(-?)\\[dt]?frac\{([^{}]+)\}\{([^{}]+)\}$")
_CODE_BLOCK: Final = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_ANSWER_IS: Final = re.compile(
    r"(?:final answer|the answer|answer)\s*(?:is|:|=)\s*(?:\*\*)?\s*([^\n]+)", re.IGNORECASE
)


def _balanced(text: str, open_at: int) -> str | None:
    """The text inside the brace that opens at ``open_at`` (None if it never closes)."""
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[open_at + 1 : i]
    return None


def _unwrap(content: str) -> str:
    """``{x}`` -> ``x`` while the outer braces are one pair (``\\boxed{{42}}`` -> ``42``)."""
    content = content.strip()
    while content.startswith("{") and _balanced(content, 0) == content[1:-1]:
        content = content[1:-1].strip()
    return content


def boxed_answers(text: str) -> list[str]:
    r"""Every ``\boxed{...}`` content in ``text``, in order, outer doubled braces removed."""
    found = []
    for match in _BOXED.finditer(text):
        content = _balanced(text, match.end() - 1)
        if content is not None:
            found.append(_unwrap(content))
    return found


def final_boxed(text: str) -> str | None:
    """The last boxed answer, or None."""
    boxed = boxed_answers(text)
    return boxed[-1] if boxed else None


def strip_latex(text: str) -> str:
    r"""``\text{men's team}`` -> ``men's team``; drops ``$``, ``\left``, spacing commands."""
    out = text
    while (match := _WRAPPERS.search(out)) is not None:
        inner = _balanced(out, match.end() - 1)
        if inner is None:
            break
        out = out[: match.start()] + inner + out[match.end() + len(inner) + 1 :]
    out = _LATEX_NOISE.sub("", out).replace("\\%", "%").replace("\\$", "$")
    return out.strip().rstrip(".").strip()


def stated_answer(text: str) -> str | None:
    """What follows "the answer is" / "Answer:" (the last such statement), or None."""
    found = _ANSWER_IS.findall(text)
    return found[-1].strip().strip("*").strip() if found else None


def final_answer(text: str) -> str:
    """The boxed answer, else the stated answer, else the whole reply (stripped)."""
    boxed = final_boxed(text)
    if boxed is not None:
        return strip_latex(boxed)
    stated = stated_answer(text)
    return strip_latex(stated) if stated else text.strip()


def parse_number(text: str) -> float | None:
    r"""A number written as ``1,234.5``, ``$12``, ``45%``, ``-3/4``, ``\frac{3}{4}``, ``2.5 kg``."""
    cleaned = strip_latex(text).replace("−", "-").strip()
    cleaned = cleaned.lstrip("$€£").rstrip("%").strip()
    fraction = _FRACTION.match(cleaned.replace(" ", ""))
    if fraction:
        cleaned = f"{fraction[1]}{fraction[2]}/{fraction[3]}"
    simple = re.fullmatch(r"(-?\d+(?:\.\d+)?)\s*/\s*(-?\d+(?:\.\d+)?)", cleaned)
    if simple:
        try:
            return float(Fraction(simple[1]) / Fraction(simple[2]))
        except ZeroDivisionError:
            return None
    head = re.match(r"^(-?\$?\s*\d[\d,]*(?:\.\d+)?|-?\.\d+)(?:\s*[%a-zA-Z°][\w°/ .-]*)?$", cleaned)
    if head is None:
        return None
    digits = head[1].replace("$", "").replace(" ", "")
    if "," in digits and not re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", digits):
        return None
    return float(digits.replace(",", ""))


def last_number(text: str) -> float | None:
    """The last number written anywhere in ``text``."""
    found = _NUMBER.findall(text.replace("−", "-"))
    for candidate in reversed(found):
        value = parse_number(candidate)
        if value is not None:
            return value
    return None


def code_blocks(text: str) -> list[str]:
    """The contents of fenced code blocks, Python ones first-class (an unclosed one counts)."""
    blocks = [(lang.lower(), body) for lang, body in _CODE_BLOCK.findall(text)]
    python = [body for lang, body in blocks if lang in ("python", "py", "python3")]
    return python or [body for _, body in blocks]
