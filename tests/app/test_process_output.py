"""A child's output is read as it comes and only its last lines are kept."""

from __future__ import annotations

import asyncio
import sys

from app.process_output import OutputTail


async def run(code: str, tail: OutputTail) -> int:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-u",
        "-c",
        code,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    tail.follow(process.stdout)
    code_ = await process.wait()
    await tail.drained()
    return code_


async def test_a_chatty_child_never_blocks_and_only_its_last_lines_are_kept() -> None:
    tail = OutputTail(lines=5, width=50)
    # 200k lines is far more than a pipe holds: a child nobody reads would block forever.
    code = "import sys\nfor i in range(200_000): print(f'line {i}')\nsys.exit(3)"
    assert await run(code, tail) == 3
    assert tail.lines() == [f"line {i}" for i in range(199_995, 200_000)]


async def test_long_lines_are_cut_and_stderr_is_kept_too() -> None:
    tail = OutputTail(lines=3, width=20)
    code = "import sys\nprint('x' * 10_000)\nprint('boom', file=sys.stderr)\nsys.stdout.write('no end')"
    await run(code, tail)
    lines = tail.lines()
    assert lines[0] == "x" * 20 + "..."
    assert "boom" in lines and lines[-1] == "no end"
    assert "boom" in tail.text()


async def test_no_output_says_so() -> None:
    tail = OutputTail()
    await run("pass", tail)
    assert tail.text() == "(no output)"
