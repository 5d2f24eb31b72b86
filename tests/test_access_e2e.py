"""Nobody gets in by accident: admin key, odd credentials, console cookies, anonymous callers.

Real `switchboard serve` processes under uvicorn, a real `redis-server` as their shared store, and
a small fake OpenAI-compatible upstream on loopback (``tests.fake_upstream``) as the only model.
The "trusted proxy" is the loopback address 127.0.0.2: a client bound to it is the proxy, one on
127.0.0.1 is anybody else.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from app.gateway.local_servers import free_port
from tests.fake_upstream import fake_upstream
from tests.processes import CACHE, stop, switchboard
from tests.redis_server import RedisProcess, redis_server

ADMIN = "access-admin-key-for-tests"
GLASSES_SECRET = "glasses-header-secret-for-tests"
PROXY = "127.0.0.2"
MODEL = "hosted/answer"
CHAT = {"model": "auto", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 5}
ANONYMOUS_LINE = "anonymous callers"

# Credentials no key can be: UTF-8 and Latin-1 bytes, one in our own key format.
ODD_TOKENS = [
    "Bearer ключ-администратора".encode(),
    b"Bearer \xff\xfe\xfd\x80",
    "Bearer sk-sb-é-not-a-key".encode(),
    "Bearer sk-sb-ключ".encode(),
]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with fake_upstream() as upstream:
        path = tmp_path_factory.mktemp("access") / "catalog.yaml"
        row = {"id": MODEL, "adapter": "openai_compat", "base_url": f"{upstream}/answer/a/v1",
               "upstream_model": "a", "context_window": 8192,
               "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
               "profile": {"prior_quality": 0.7}}  # fmt: skip
        path.write_text(yaml.safe_dump({"models": [row]}))
        yield path


@pytest.fixture(scope="module")
def redis_proc() -> Iterator[RedisProcess]:
    with redis_server() as process:
        yield process


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("access-logs")


@pytest.fixture(scope="module")
def workers(catalog: Path, redis_proc: RedisProcess, logs: Path) -> Iterator[tuple[str, str]]:
    """Two workers with an admin key, anonymous callers allowed, glasses by a fixed secret."""
    env = {"SWITCHBOARD_CATALOG": str(catalog), "SWITCHBOARD_REDIS_URL": redis_proc.url,
           "SWITCHBOARD_ADMIN_KEY": ADMIN, "SWITCHBOARD_TRUSTED_PROXIES": f'["{PROXY}"]',
           "SWITCHBOARD_NOA_AUTH_VALUE": GLASSES_SECRET, "SWITCHBOARD_TRANSCRIPTION": "off"}  # fmt: skip
    with switchboard(env, logs / "a.log") as a, switchboard(env, logs / "b.log") as b:
        yield a, b


@pytest.fixture(scope="module")
def keyed(catalog: Path, logs: Path) -> Iterator[str]:
    """One worker that requires API keys (glasses included); no admin key."""
    env = {"SWITCHBOARD_CATALOG": str(catalog), "SWITCHBOARD_REQUIRE_API_KEY": "true",
           "SWITCHBOARD_TRANSCRIPTION": "off"}  # fmt: skip
    with switchboard(env, logs / "keyed.log") as url:
        yield url


def _assert_envelope(reply: httpx.Response, *statuses: int) -> None:
    assert reply.status_code in statuses, (reply.status_code, reply.text)
    error = reply.json()["error"]
    assert error["message"] and error["type"] in {"authentication_error", "permission_error"}


# --- 1. the admin key -----------------------------------------------------------------------


def _forge_session(admin_key: str) -> tuple[str, str]:
    """What an attacker who guesses the admin key builds: the console's cookie and CSRF token."""
    signing = hmac.new(admin_key.encode(), b"switchboard console session v1", hashlib.sha256)
    key = signing.digest()
    payload = f"{int(time.time()) + 3600}.forgednonce"
    cookie = f"{payload}.{hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()}"
    return cookie, hmac.new(key, b"csrf.forgednonce", hashlib.sha256).hexdigest()


def _serve_until_exit_or_ready(
    env: dict[str, str], log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    full_env |= {"SWITCHBOARD_CACHE_DIR": str(CACHE), "HF_HUB_OFFLINE": "1", **env}
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT, env=full_env)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.1)
    return process, ""


@pytest.mark.parametrize("admin_key", ["", "   ", "short-secret"], ids=["empty", "blank", "short"])
def test_an_empty_or_short_admin_key_stops_start_up(
    admin_key: str, catalog: Path, tmp_path: Path
) -> None:
    """Issue 13's reproduction: a session signed with the empty key minted an API key (201)."""
    log = tmp_path / "serve.log"
    process, base = _serve_until_exit_or_ready(
        {"SWITCHBOARD_CATALOG": str(catalog), "SWITCHBOARD_ADMIN_KEY": admin_key}, log
    )
    minted = None
    try:
        if base:
            cookie, csrf = _forge_session(admin_key)
            minted = httpx.post(f"{base}/ui/api/keys", json={"name": "forged"},
                                headers={"x-csrf-token": csrf},
                                cookies={"sb_console": cookie}).status_code  # fmt: skip
    finally:
        stop(process)
    assert not base, f"served with admin key {admin_key!r}; a forged session got {minted}"
    output = log.read_text()
    assert process.returncode != 0
    assert "SWITCHBOARD_ADMIN_KEY" in output and "16 characters" in output, output
    assert "Traceback" not in output


def test_an_empty_glasses_secret_stops_start_up(catalog: Path, tmp_path: Path) -> None:
    """An empty expected header value would let every request without the header through."""
    log = tmp_path / "serve.log"
    process, base = _serve_until_exit_or_ready(
        {"SWITCHBOARD_CATALOG": str(catalog), "SWITCHBOARD_NOA_AUTH_VALUE": ""}, log
    )
    stop(process)
    assert not base and process.returncode != 0
    assert "SWITCHBOARD_NOA_AUTH_VALUE" in log.read_text()


# --- 2. credentials with odd bytes ----------------------------------------------------------


@pytest.mark.parametrize("token", ODD_TOKENS)
def test_odd_admin_tokens_are_refused_not_a_crash(workers: tuple[str, str], token: bytes) -> None:
    a, _ = workers
    reply = httpx.get(f"{a}/v1/admin/keys", headers={"authorization": token})
    _assert_envelope(reply, 401, 403)
    created = httpx.post(f"{a}/v1/admin/keys", json={"name": "x"}, headers={"authorization": token})
    _assert_envelope(created, 401, 403)


@pytest.mark.parametrize("token", ODD_TOKENS)
def test_odd_api_keys_get_401_when_keys_are_required(keyed: str, token: bytes) -> None:
    headers = {"authorization": token}
    _assert_envelope(httpx.post(f"{keyed}/v1/chat/completions", json=CHAT, headers=headers), 401)
    _assert_envelope(httpx.post(f"{keyed}/v1/route", json=CHAT, headers=headers), 401)
    feedback = {"decision_id": "dec_x", "thumbs": "up"}
    _assert_envelope(httpx.post(f"{keyed}/v1/feedback", json=feedback, headers=headers), 401)
    bare = {"authorization": token.removeprefix(b"Bearer ")}  # the glasses app sends the bare key
    glasses = httpx.post(f"{keyed}/noa", data={"prompt": "hi"}, headers=bare)
    _assert_envelope(glasses, 401)


def test_odd_keys_in_our_format_get_401_even_when_keys_are_optional(
    workers: tuple[str, str],
) -> None:
    a, _ = workers
    for token in ODD_TOKENS[2:]:
        reply = httpx.post(f"{a}/v1/chat/completions", json=CHAT, headers={"authorization": token})
        _assert_envelope(reply, 401)


@pytest.mark.parametrize("value", [b"\xff\xfe", "секрет".encode(), GLASSES_SECRET[:-1].encode()])
def test_odd_glasses_header_values_get_401(workers: tuple[str, str], value: bytes) -> None:
    a, _ = workers
    reply = httpx.post(f"{a}/noa", data={"prompt": "hi"}, headers={"authorization": value})
    _assert_envelope(reply, 401)


def test_odd_console_credentials_are_refused_not_a_crash(workers: tuple[str, str]) -> None:
    a, _ = workers
    with httpx.Client(base_url=a) as client:
        client.get("/ui")
        form_token = client.cookies["sb_console_login"]
        wrong = client.post("/ui/login", data={"key": "ключ-администратора", "csrf": form_token})
        assert wrong.status_code == 401 and "not the admin key" in wrong.text
        raw = client.post("/ui/login", content=b"key=%FF%FE%ED%A0%80&csrf=" + form_token.encode(),
                          headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
        assert raw.status_code in (401, 403), raw.text
    for cookie in ("ключ.ключ.ключ", "1.\xff.\xfe"):
        reply = httpx.get(
            f"{a}/ui/api/decisions", headers={"cookie": f"sb_console={cookie}".encode()}
        )
        _assert_envelope(reply, 401)
    cookie, _ = _login(a)
    reply = httpx.post(f"{a}/ui/api/keys", json={"name": "x"}, cookies={"sb_console": cookie},
                       headers={"x-csrf-token": "ключ".encode()})  # fmt: skip
    _assert_envelope(reply, 403)


# --- 3. anonymous callers -------------------------------------------------------------------


def test_start_up_says_what_anonymous_callers_can_do(
    workers: tuple[str, str], keyed: str, logs: Path
) -> None:
    open_log = (logs / "a.log").read_text()
    line = next((x for x in open_log.splitlines() if ANONYMOUS_LINE in x), "")
    assert "SWITCHBOARD_REQUIRE_API_KEY=false" in line
    for power in ("every available model", "without rate limits or budget", "/v1/feedback"):
        assert power in line, line
    assert ANONYMOUS_LINE not in (logs / "keyed.log").read_text()


# --- 4. the console cookie ------------------------------------------------------------------


def _login(base: str, client: httpx.Client | None = None, **headers: str) -> tuple[str, str]:
    """Log in to the console; (session cookie, CSRF token from the page)."""
    own = client is None
    client = client or httpx.Client()
    try:
        client.get(f"{base}/ui", headers=headers)
        form_token = client.cookies["sb_console_login"]
        done = client.post(f"{base}/ui/login", data={"key": ADMIN, "csrf": form_token},
                           headers=headers, follow_redirects=False)  # fmt: skip
        assert done.status_code == 303, done.text
        page = client.get(f"{base}/ui", headers=headers).text
        csrf = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        return client.cookies["sb_console"], csrf
    finally:
        if own:
            client.close()


def _set_cookies(reply: httpx.Response) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in reply.headers.get_list("set-cookie")}


def _as(address: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address))


def test_console_cookies_are_secure_behind_a_trusted_tls_proxy(workers: tuple[str, str]) -> None:
    a, _ = workers
    https = {"x-forwarded-proto": "https"}
    with _as(PROXY) as proxy:
        form = proxy.get(f"{a}/ui", headers=https)
        assert "secure" in _set_cookies(form)["sb_console_login"].lower()
        token = proxy.cookies["sb_console_login"]
        # the client keeps a Secure cookie to itself over plain http: the proxy would pass it on
        done = proxy.post(f"{a}/ui/login", data={"key": ADMIN, "csrf": token},
                          headers=https | {"cookie": f"sb_console_login={token}"})  # fmt: skip
        assert done.status_code == 303, done.text
        session = _set_cookies(done)["sb_console"].lower()
        assert "secure" in session and "httponly" in session and "samesite=strict" in session
        plain = proxy.get(f"{a}/ui")  # the proxy says nothing: plain HTTP, no Secure flag
        assert "secure" not in _set_cookies(plain)["sb_console_login"].lower()


def test_forwarded_proto_from_anyone_else_is_ignored(workers: tuple[str, str]) -> None:
    a, _ = workers
    with _as("127.0.0.1") as stranger:
        form = stranger.get(f"{a}/ui", headers={"x-forwarded-proto": "https"})
        assert "secure" not in _set_cookies(form)["sb_console_login"].lower()


def test_logout_revokes_the_session_on_every_worker(workers: tuple[str, str]) -> None:
    a, b = workers
    with httpx.Client() as browser:
        cookie, csrf = _login(a, browser)
        copied = {"sb_console": cookie}
        assert httpx.get(f"{b}/ui/api/decisions", cookies=copied).status_code == 200
        out = browser.post(f"{a}/ui/logout", data={"csrf": csrf}, follow_redirects=False)
        assert out.status_code == 303
    for worker in (a, b):
        reply = httpx.get(f"{worker}/ui/api/decisions", cookies=copied)
        _assert_envelope(reply, 401)
        minted = httpx.post(f"{worker}/ui/api/keys", json={"name": "after logout"},
                            cookies=copied, headers={"x-csrf-token": csrf})  # fmt: skip
        _assert_envelope(minted, 401)
        assert "Log in" in httpx.get(f"{worker}/ui", cookies=copied).text


def test_a_second_session_survives_the_first_ones_logout(workers: tuple[str, str]) -> None:
    a, b = workers
    first, first_csrf = _login(a)
    second, _ = _login(b)
    out = httpx.post(f"{a}/ui/logout", data={"csrf": first_csrf}, cookies={"sb_console": first})
    assert out.status_code in (200, 303)
    assert httpx.get(f"{a}/ui/api/decisions", cookies={"sb_console": second}).status_code == 200
