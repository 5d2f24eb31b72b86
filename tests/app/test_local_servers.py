"""Local servers: the llama.cpp command line and the restart backoff."""

from __future__ import annotations

from pathlib import Path

from app.catalog import Launch
from app.gateway.local_servers import RestartPolicy, llama_cpp_command


def test_restart_waits_double_per_failed_try_and_are_capped() -> None:
    policy = RestartPolicy(base_s=1.0, max_s=60.0)
    assert [policy.delay_s(n) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert policy.delay_s(10_000) == 60  # no overflow after a long crash loop


def test_the_gguf_template_is_used_unless_a_chat_format_is_named() -> None:
    plain = llama_cpp_command(Launch(gguf="m.gguf"), Path("m.gguf"), 8080, "m")
    assert "--chat_format" not in plain
    assert plain[plain.index("--model_alias") + 1] == "m"
    named = llama_cpp_command(Launch(gguf="m.gguf", chat_format="gemma"), Path("m.gguf"), 8080, "m")
    assert named[named.index("--chat_format") + 1] == "gemma"
