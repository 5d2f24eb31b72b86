"""A fake hosted provider (OpenAI Chat Completions) on loopback that counts every call it serves.

Paths pick the model's behaviour, the name in the path is the model it plays:

- ``/gold/{name}/v1``: answers each suite prompt with its gold answer (``gold_reply``);
- ``/wrong/{name}/v1``: answers every prompt wrongly;
- ``/slow/{ms}/{name}/v1``: like gold, after ``ms`` milliseconds;
- ``/greedy/{name}/v1``: like gold, but reports usage close to the worst case a bootstrap
  reserves (half a token per prompt byte, the whole ``max_tokens`` of output), so spend per
  call is high and predictable;
- ``/judge/{name}/v1``: a judge that gives every reply ``Score: 10``.

``calls[name]`` counts the calls served per model name. Usage is always reported.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.profiling.graders import gold_letter
from app.profiling.suite import SuiteItem
from tests.fake_upstream import serve

calls: Counter[str] = Counter()
replies: dict[str, str] = {}
"""Prompt text -> the gold reply (filled by ``learn``)."""


def gold_reply(item: SuiteItem) -> str:
    """A reply that earns full marks on ``item`` (open-ended items get a plain answer)."""
    answer = item.answer or ""
    if item.metric == "python_tests":
        return f"Here it is:\n```python\n{item.solution}\n```"
    letter = gold_letter(answer)
    if item.metric in ("mcq_accuracy", "chess_accuracy") and letter:
        return f"The right option is \\boxed{{{letter}}}."
    if item.metric in ("chrf", "meteor_score"):
        return answer
    if item.metric == "superglue_clozetest":
        return f"\\boxed{{{answer.split(', ')[0]}}}"
    if item.metric == "rubric":
        return "Certainly. Here is a careful answer to your request."
    return f"Working... so the final answer is \\boxed{{{answer}}}"


def learn(items: Iterable[SuiteItem]) -> None:
    replies.update({item.prompt: gold_reply(item) for item in items})


def _completion(name: str, text: str, prompt_tokens: int, completion_tokens: int) -> Response:
    return JSONResponse(
        {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )


async def _prompt(request: Request) -> tuple[str, dict[str, object]]:
    body = await request.json()
    return str(body["messages"][-1]["content"]), body


async def gold(request: Request, delay_s: float = 0.0) -> Response:
    name = request.path_params["name"]
    calls[name] += 1  # counted on arrival: a call in flight when its client dies was served
    prompt, _ = await _prompt(request)
    await asyncio.sleep(delay_s)
    text = replies.get(prompt, "I do not know.")
    return _completion(name, text, len(prompt) // 4 + 8, len(text) // 4 + 1)


async def wrong(request: Request) -> Response:
    name = request.path_params["name"]
    calls[name] += 1
    prompt, _ = await _prompt(request)
    return _completion(name, "I do not know.", len(prompt) // 4 + 8, 5)


async def slow(request: Request) -> Response:
    return await gold(request, int(request.path_params["ms"]) / 1000)


async def greedy(request: Request) -> Response:
    name = request.path_params["name"]
    calls[name] += 1
    prompt, body = await _prompt(request)
    text = replies.get(prompt, "I do not know.")
    limit = body.get("max_tokens")
    output = int(limit) if isinstance(limit, int) else 300
    return _completion(name, text, len(prompt.encode()) // 2, output)


async def judge(request: Request) -> Response:
    name = request.path_params["name"]
    calls[name] += 1
    prompt, _ = await _prompt(request)
    return _completion(name, "The reply does what was asked.\nScore: 10", len(prompt) // 4, 12)


app = Starlette(
    routes=[
        Route("/gold/{name}/v1/chat/completions", gold, methods=["POST"]),
        Route("/wrong/{name}/v1/chat/completions", wrong, methods=["POST"]),
        Route("/slow/{ms:int}/{name}/v1/chat/completions", slow, methods=["POST"]),
        Route("/greedy/{name}/v1/chat/completions", greedy, methods=["POST"]),
        Route("/judge/{name}/v1/chat/completions", judge, methods=["POST"]),
    ]
)


@contextmanager
def fake_provider() -> Iterator[str]:
    """Serve the fake provider on a free loopback port; yields its base URL."""
    with serve(app) as url:
        yield url
