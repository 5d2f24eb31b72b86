"""Write the default profiling suite, app/data/suite/default.jsonl (the file is committed).

Hand-written items come from scripts/suite/*.yaml; generators with checkable answers add
arithmetic and word problems, percentages, fractions, equations, dates and units (maths) and
ordering, syllogisms, sequences, calendars and letter counts (reasoning). The seed is fixed,
so the same script writes the same file. Every code item's reference solution is run against
its tests in the sandbox before the file is written, and every item is graded against its own
gold answer, so a broken item cannot ship.

    .venv/bin/python scripts/make_default_suite.py
"""

from __future__ import annotations

import datetime as dt
import json
import random
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.profiling.graders import grade  # noqa: E402
from app.profiling.suite import DEFAULT_SUITE, item_from_row  # noqa: E402

SEED = 20251201
HERE = Path(__file__).resolve().parent / "suite"
SOURCE = "switchboard/{}"

LETTER = "Answer with the letter of the correct option in \\boxed{}."
SHORT = "Give a short final answer in \\boxed{}."
NUMBER = "Put the final answer, a number only, in \\boxed{}."
YESNO = "Answer Yes or No in \\boxed{}."

Row = dict[str, object]


def _options(options: list[str]) -> str:
    return "\n".join(f"{'ABCDEFGHIJ'[i]}. {o}" for i, o in enumerate(options))


def mcq(kind: str, source: str, n: int, q: str, options: list[str], answer: str) -> Row:
    prompt = f"{q}\n\nOptions:\n{_options(options)}\n\n{LETTER}"
    return {"id": f"{source}/{n}", "prompt": prompt, "metric": "mcq_accuracy",
            "answer": answer, "kind": kind, "source": SOURCE.format(source)}  # fmt: skip


def short(kind: str, source: str, n: int, q: str, answer: str, aliases: list[str]) -> Row:
    row: Row = {"id": f"{source}/{n}", "prompt": f"{q}\n\n{SHORT}", "metric": "exact_match",
                "answer": answer, "kind": kind, "source": SOURCE.format(source)}  # fmt: skip
    if aliases:
        row["aliases"] = aliases
    return row


def number(kind: str, source: str, n: int, q: str, answer: float | int) -> Row:
    value = int(answer) if float(answer).is_integer() else round(float(answer), 6)
    return {"id": f"{source}/{n}", "prompt": f"{q}\n\n{NUMBER}", "metric": "numeric",
            "answer": str(value), "kind": kind, "source": SOURCE.format(source)}  # fmt: skip


def yesno(kind: str, source: str, n: int, q: str, answer: str) -> Row:
    return {"id": f"{source}/{n}", "prompt": f"{q}\n\n{YESNO}", "metric": "superglue_exact_match",
            "answer": answer, "kind": kind, "source": SOURCE.format(source)}  # fmt: skip


def _yaml(name: str) -> dict[str, list[dict[str, object]]]:
    loaded = yaml.safe_load((HERE / f"{name}.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def knowledge() -> Iterator[Row]:
    data = _yaml("knowledge")
    for n, q in enumerate(data["mcq"]):
        yield mcq(
            "knowledge", "knowledge-mcq", n, str(q["q"]), list(q["options"]), str(q["answer"])
        )  # type: ignore[call-overload]
    for n, q in enumerate(data["short"]):
        yield short("knowledge", "knowledge-short", n, str(q["q"]), str(q["answer"]),
                    [str(a) for a in q.get("aliases", [])])  # type: ignore[attr-defined]  # fmt: skip


def reading() -> Iterator[Row]:
    n = 0
    for passage in _yaml("reading")["passages"]:
        text = str(passage["text"])
        for q in passage["questions"]:  # type: ignore[attr-defined]
            question = (f"Read the passage and answer the question.\n\nPassage: {text}\n\n"
                        f"Question: {q['q']}")  # fmt: skip
            if q["type"] == "mcq":
                yield mcq("reading", "reading", n, question, q["options"], q["answer"])
            elif q["type"] == "yesno":
                yield yesno("reading", "reading", n, question, q["answer"])
            else:
                yield short("reading", "reading", n, question, q["answer"], q.get("aliases", []))
            n += 1


def translation() -> Iterator[Row]:
    for n, t in enumerate(_yaml("translation")["items"]):
        prompt = (f"Translate this {t['from']} sentence into {t['to']}. Reply with the translation "
                  f"only.\n\n{t['text']}")  # fmt: skip
        yield {"id": f"translation/{n}", "prompt": prompt, "metric": "chrf",
               "answer": t["reference"], "kind": "translation",
               "source": SOURCE.format("translation")}  # fmt: skip


def assistant() -> Iterator[Row]:
    for n, t in enumerate(_yaml("assistant")["items"]):
        yield {"id": f"assistant/{t['task']}/{n}", "prompt": t["prompt"], "metric": "rubric",
               "criteria": t["criteria"], "kind": "assistant",
               "source": SOURCE.format(f"assistant-{t['task']}")}  # fmt: skip


def code() -> Iterator[Row]:
    for t in _yaml("code")["items"]:
        signature = str(t["signature"])
        name = signature.split("(", 1)[0].removeprefix("def ").strip()
        prompt = (f"Write a Python function `{signature}` that {t['spec']}.\n\nReply with the "
                  "complete function in one ```python code block.")  # fmt: skip
        test = "def check(candidate):\n" + "".join(f"    assert {a}\n" for a in t["tests"])  # type: ignore[attr-defined]
        yield {"id": f"code/{name}", "prompt": prompt, "metric": "python_tests", "test": test,
               "entry_point": name, "solution": t["solution"], "kind": "code",
               "source": SOURCE.format("code")}  # fmt: skip


# ---- generators with checkable answers -------------------------------------------------------

NAMES = ["Ada", "Ben", "Chloe", "Dev", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kemi",
         "Luca", "Maya", "Niko", "Olga", "Pablo"]  # fmt: skip
ITEMS = [("notebooks", 3), ("pens", 1), ("apples", 2), ("mugs", 7), ("tickets", 12)]


def arithmetic(rng: random.Random) -> Iterator[Row]:
    for n in range(10):
        a, b, c = rng.randint(12, 99), rng.randint(11, 49), rng.randint(100, 999)
        op = n % 3
        if op == 0:
            q, v = f"Compute {a} x {b} - {c}.", a * b - c
        elif op == 1:
            q, v = f"Compute {c} + {a} x {b}.", c + a * b
        else:
            q, v = f"Compute ({c} - {a}) x {b % 9 + 2}.", (c - a) * (b % 9 + 2)
        yield number("maths", "arithmetic", n, q, v)


def word_problems(rng: random.Random) -> Iterator[Row]:
    for n in range(12):
        who = rng.choice(NAMES)
        style = n % 4
        if style == 0:
            thing, price = rng.choice(ITEMS)
            k, paid = rng.randint(3, 9), rng.choice([50, 100])
            q = (f"{who} buys {k} {thing} at {price} euros each and pays with a {paid}-euro note. "
                 "How much change, in euros, does "
                 f"{who} get?")  # fmt: skip
            v: float = paid - k * price
        elif style == 1:
            speed, hours = rng.randint(40, 90), rng.choice([1.5, 2, 2.5, 3, 4])
            q = f"A car drives at {speed} km/h for {hours} hours. How many kilometres is that?"
            v = speed * hours
        elif style == 2:
            total, people = rng.choice([24, 36, 48, 60, 72]), rng.choice([3, 4, 6])
            eaten = rng.randint(1, 3)
            q = (f"{who} bakes {total} cookies and shares them equally among {people} friends. "
                 f"Each friend eats {eaten} of theirs straight away. How many cookies does each "
                 "friend have left?")  # fmt: skip
            v = total // people - eaten
        else:
            start, weekly, weeks = rng.randint(20, 80), rng.randint(5, 15), rng.randint(4, 10)
            cost = rng.randint(60, 150)
            q = (f"{who} has {start} euros and saves {weekly} euros every week. After {weeks} "
                 f"weeks {who} buys a bike for {cost} euros. How many euros are left?")  # fmt: skip
            v = start + weekly * weeks - cost
        yield number("maths", "word-problems", n, q, v)


def percentages(rng: random.Random) -> Iterator[Row]:
    for n in range(8):
        if n % 2 == 0:
            p, base = rng.choice([5, 10, 15, 20, 25, 30, 40]), rng.choice([80, 120, 240, 360, 500])
            yield number("maths", "percentages", n, f"What is {p}% of {base}?", base * p / 100)
        else:
            old = rng.choice([40, 50, 80, 120, 200])
            change = rng.choice([10, 20, 25, 30, -10, -20, -25])
            new = old * (100 + change) / 100
            q = (f"A price changes from {old} to {new:g}. By what percentage did it change? "
                 "(Use a minus sign for a fall.)")  # fmt: skip
            yield number("maths", "percentages", n, q, change)


def fractions_and_equations(rng: random.Random) -> Iterator[Row]:
    for n in range(6):
        a, b = (
            Fraction(rng.randint(1, 5), rng.choice([2, 3, 4, 6])),
            Fraction(1, rng.choice([3, 4, 5, 8])),
        )
        total = a + b
        prompt = (f"Compute {a} + {b} and give the result as a fraction in lowest terms (or an "
                  "integer).\n\nPut the final answer in \\boxed{}.")  # fmt: skip
        yield {"id": f"fractions/{n}", "prompt": prompt, "metric": "math_metric",
               "answer": str(total), "kind": "maths",
               "source": SOURCE.format("fractions")}  # fmt: skip
    for n in range(6):
        x, a = rng.randint(-9, 12), rng.randint(2, 9)
        b = rng.randint(-20, 20)
        c = a * x + b
        sign = "+" if b >= 0 else "-"
        prompt = f"Solve for x: {a}x {sign} {abs(b)} = {c}.\n\nPut the value of x in \\boxed{{}}."
        yield {"id": f"equations/{n}", "prompt": prompt, "metric": "math_metric",
               "answer": str(x), "kind": "maths", "source": SOURCE.format("equations")}  # fmt: skip


def dates_and_units(rng: random.Random) -> Iterator[Row]:
    for n in range(6):
        start = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randint(0, 300))
        days = rng.randint(10, 90)
        if n % 2 == 0:
            end = start + dt.timedelta(days=days)
            q = (f"How many days are there from {start:%d %B %Y} to {end:%d %B %Y}? Count the days "
                 "between them (the day after the first date up to and including the "
                 "second).")  # fmt: skip
            yield number("maths", "dates", n, q, days)
        else:
            end = start + dt.timedelta(days=days)
            q = f"What date is {days} days after {start:%d %B %Y}? Give it as YYYY-MM-DD."
            yield short("maths", "dates", n, q, end.isoformat(), [])
    conversions: list[tuple[str, Callable[[int], float]]] = [
        ("How many minutes are there in {} hours and a half?", lambda v: v * 60 + 30),
        ("How many grams are there in {} kilograms?", lambda v: v * 1000),
        ("How many seconds are there in {} minutes?", lambda v: v * 60),
        ("How many centimetres are there in {} metres?", lambda v: v * 100),
        ("What is {} degrees Celsius in degrees Fahrenheit?", lambda v: v * 9 / 5 + 32),
        ("How many inches are there in {} feet?", lambda v: v * 12),
    ]
    for n, (template, convert) in enumerate(conversions):
        value = (
            rng.choice([5, 10, 15, 20, 25, 30, 35]) if "Celsius" in template else rng.randint(2, 9)
        )
        yield number("maths", "units", n, template.format(value), convert(value))


def ordering(rng: random.Random) -> Iterator[Row]:
    for n in range(8):
        people = rng.sample(NAMES, 4)  # tallest first
        facts = [f"{people[i]} is taller than {people[i + 1]}." for i in range(3)]
        rng.shuffle(facts)
        ask_tallest = n % 2 == 0
        q = " ".join(facts) + (" Who is the tallest?" if ask_tallest else " Who is the shortest?")
        yield short("reasoning", "ordering", n, q, people[0] if ask_tallest else people[-1], [])


SYLLOGISMS = [
    ("All {A} are {B}. All {B} are {C}. Must every {a} be a {c}?", "Yes"),
    ("All {A} are {B}. Some {B} are {C}. Must some {A} be {C}?", "No"),
    ("No {A} are {B}. All {C} are {A}. Can a {c} be a {b}?", "No"),
    ("Some {A} are {B}. All {B} are {C}. Must some {A} be {C}?", "Yes"),
    ("All {A} are {B}. No {C} are {B}. Can a {c} be a {a}?", "No"),
    ("Some {A} are not {B}. All {C} are {B}. Must some {A} not be {C}?", "Yes"),
]
NONSENSE = ["blicket", "wug", "dax", "florp", "zint", "mox", "tov", "gleeb", "krel"]


def _plural(word: str) -> str:
    return word + ("es" if word.endswith("x") else "s")


def syllogisms(rng: random.Random) -> Iterator[Row]:
    for n in range(12):
        template, answer = SYLLOGISMS[n % len(SYLLOGISMS)]
        a, b, c = rng.sample(NONSENSE, 3)
        statement = template.format(a=a, b=b, c=c, A=_plural(a), B=_plural(b), C=_plural(c))
        q = f"Reason only from these statements, which are about made-up things. {statement}"
        yield yesno("reasoning", "syllogisms", n, q, answer)


def sequences(rng: random.Random) -> Iterator[Row]:
    for n in range(8):
        if n % 2 == 0:
            start, step = rng.randint(1, 30), rng.randint(3, 12)
            terms = [start + step * i for i in range(5)]
            nxt = start + step * 5
        else:
            start, ratio = rng.randint(1, 5), rng.choice([2, 3])
            terms = [start * ratio**i for i in range(5)]
            nxt = start * ratio**5
        q = f"What number comes next in the sequence {', '.join(map(str, terms))}, ...?"
        yield number("reasoning", "sequences", n, q, nxt)


DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def calendar(rng: random.Random) -> Iterator[Row]:
    for n in range(6):
        today, ahead = rng.randrange(7), rng.randint(8, 60)
        q = f"If today is {DAYS[today]}, what day of the week will it be {ahead} days from today?"
        yield short("reasoning", "calendar", n, q, DAYS[(today + ahead) % 7], [])


WORDS = ["strawberry", "bookkeeper", "mississippi", "banana", "committee", "balloon",
         "assessment", "parallel"]  # fmt: skip


def letter_counts(rng: random.Random) -> Iterator[Row]:
    for n, word in enumerate(WORDS[:6]):
        letter = Counter(word).most_common(1)[0][0] if n % 2 else rng.choice(sorted(set(word)))
        q = f'How many times does the letter "{letter}" appear in the word "{word}"?'
        yield number("reasoning", "letter-counts", n, q, word.count(letter))


def reasoning_mcq() -> Iterator[Row]:
    for n, q in enumerate(_yaml("reasoning")["mcq"]):
        yield mcq("reasoning", "puzzles", n, str(q["q"]), list(q["options"]), str(q["answer"]))  # type: ignore[call-overload]


def rows() -> list[Row]:
    rng = random.Random(SEED)
    made: list[Row] = []
    for part in (knowledge(), reading(), translation(), assistant(), code(), reasoning_mcq()):
        made.extend(part)
    generators = (arithmetic, word_problems, percentages, fractions_and_equations,
                  dates_and_units, ordering, syllogisms, sequences, calendar,
                  letter_counts)  # fmt: skip
    for generator in generators:
        made.extend(generator(rng))
    return made


def gold_reply(row: Row) -> str:
    """A reply that should earn full marks, to check that each item grades its own gold."""
    if row["metric"] == "python_tests":
        return f"```python\n{row['solution']}\n```"
    return f"\\boxed{{{row['answer']}}}"


def main() -> None:
    made = rows()
    ids = [r["id"] for r in made]
    assert len(ids) == len(set(ids)), "duplicate ids"
    for row in made:
        if row["metric"] == "rubric":
            continue
        item = item_from_row(row, "default")
        graded = grade(item, gold_reply(row))
        assert graded.score == 1.0, f"{row['id']} does not grade its own gold: {graded}"
    DEFAULT_SUITE.parent.mkdir(parents=True, exist_ok=True)
    with DEFAULT_SUITE.open("w", encoding="utf-8") as fh:
        for row in made:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    kinds = Counter(str(r["kind"]) for r in made)
    print(f"wrote {len(made)} items to {DEFAULT_SUITE.relative_to(ROOT)}: {dict(kinds)}")


if __name__ == "__main__":
    main()
