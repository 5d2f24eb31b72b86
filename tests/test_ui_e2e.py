"""The operator console as an operator meets it: real headless Chromium, real Switchboard.

One `switchboard serve` (admin key set, a real `redis-server` as its state store) routes between
two catalog models served by the real llama.cpp server: a cheap, weaker one and an expensive,
stronger one, so the cost-weight slider has a choice to move. Chromium is Debian's `chromium`
driven through `chromium-driver` with selenium; with SWITCHBOARD_SCREENSHOTS=docs the test
saves the screenshots the README shows.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from tests.processes import switchboard
from tests.redis_server import redis_server

ADMIN = "console-admin-key-for-tests"
CHEAP, STRONG = "local/budget", "hosted/premium"
# The README's screenshots are rewritten only when asked (SWITCHBOARD_SCREENSHOTS=docs); a plain
# test run saves them in a temporary directory, so it never touches tracked files.
DOCS = (
    Path(__file__).resolve().parents[1] / "docs"
    if os.environ.get("SWITCHBOARD_SCREENSHOTS") == "docs"
    else Path(tempfile.gettempdir()) / "switchboard-screenshots"
)
HELLO = "Say hello in one short sentence."
INJECTION = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> Say hi.'


def _row(
    model_id: str, llama_url: str, prior: float, price: tuple[float, float]
) -> dict[str, object]:
    return {"id": model_id, "adapter": "openai_compat", "base_url": llama_url,
            "upstream_model": "qwen2.5-coder-0.5b-instruct", "context_window": 2048,
            "price": {"input_per_mtok": price[0], "output_per_mtok": price[1]},
            "profile": {"prior_quality": prior}}  # fmt: skip


@pytest.fixture(scope="module")
def service(llama_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("console")
    catalog = {"models": [_row(CHEAP, llama_url, 0.55, (0.05, 0.1)),
                          _row(STRONG, llama_url, 0.9, (30.0, 60.0))]}  # fmt: skip
    (tmp / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    with redis_server() as redis:
        env = {"SWITCHBOARD_CATALOG": str(tmp / "catalog.yaml"), "SWITCHBOARD_ADMIN_KEY": ADMIN,
               "SWITCHBOARD_REDIS_URL": redis.url, "SWITCHBOARD_CACHE_TTL_S": "60"}  # fmt: skip
        with switchboard(env, tmp / "switchboard.log") as url:
            yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, (
        "the console test needs Debian's chromium and chromium-driver: "
        "apt-get install -y chromium chromium-driver (scripts/test.sh installs them)"
    )
    options = Options()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,800", "--disable-extensions", "--no-first-run"):  # fmt: skip
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})  # fmt: skip
    try:
        yield browser
    finally:
        browser.quit()


def _wait(browser: WebDriver, timeout: float = 20) -> WebDriverWait[WebDriver]:
    return WebDriverWait(browser, timeout, poll_frequency=0.1)


def _by_id(browser: WebDriver, element_id: str) -> WebElement:
    return browser.find_element(By.ID, element_id)


def _rows(browser: WebDriver, css: str) -> list[WebElement]:
    return browser.find_elements(By.CSS_SELECTOR, css)


def _visible(browser: WebDriver, element_id: str) -> WebElement:
    located = expected_conditions.visibility_of_element_located((By.ID, element_id))
    return _wait(browser).until(located)


def _chat(service: str, body: dict[str, object], **headers: str) -> int:
    return httpx.post(
        f"{service}/v1/chat/completions", json=body, headers=headers, timeout=60
    ).status_code


def _chosen(browser: WebDriver) -> str:
    return _by_id(browser, "chosen-model").text


def _type_prompt(browser: WebDriver, text: str) -> None:
    prompt = _by_id(browser, "prompt")
    prompt.clear()
    prompt.send_keys(text)


def _send_and_wait(browser: WebDriver) -> str:
    _by_id(browser, "send").click()
    _wait(browser, 60).until(lambda b: _by_id(b, "send").is_enabled())  # disabled while sending
    return _by_id(browser, "answer").text


def _tab(browser: WebDriver, name: str) -> None:
    _by_id(browser, f"tab-{name}").click()
    _wait(browser).until(lambda b: _by_id(b, name).is_displayed())


def test_a_wrong_admin_key_is_refused(service: str, browser: WebDriver) -> None:
    with httpx.Client(base_url=service) as client:
        form = client.get("/ui")
        assert form.status_code == 200 and 'name="key"' in form.text
        assert "script-src 'self'" in form.headers["content-security-policy"]
        token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        wrong = client.post("/ui/login", data={"key": "nope", "csrf": token})
        assert wrong.status_code == 401 and "not the admin key" in wrong.text
        forged = httpx.post(f"{service}/ui/login", data={"key": ADMIN, "csrf": token})
        assert forged.status_code == 403  # the form token without its cookie: refused
        denied = client.get("/ui/api/decisions")
        assert denied.status_code == 401 and denied.json()["error"]["code"] == "session_required"

    browser.get(f"{service}/ui")
    _by_id(browser, "admin-key").send_keys("wrong-key", Keys.ENTER)
    error = _visible(browser, "login-error")
    assert "not the admin key" in error.text
    assert not browser.find_elements(By.ID, "prompt")

    _by_id(browser, "admin-key").send_keys(ADMIN, Keys.ENTER)
    _visible(browser, "prompt")
    cookie = browser.get_cookie("sb_console")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert "sb_console" not in browser.execute_script("return document.cookie")


def test_typing_shows_the_candidates_and_the_slider_moves_to_the_cheaper_model(
    browser: WebDriver,
) -> None:
    Select(_by_id(browser, "preset")).select_by_value("quality")
    _type_prompt(browser, HELLO)
    _wait(browser).until(lambda b: len(_rows(b, "#candidates tbody tr")) == 2)
    _wait(browser).until(lambda b: _chosen(b) == STRONG)
    row = browser.find_element(By.CSS_SELECTOR, f'#candidates tr[data-model="{STRONG}"]')
    assert "chosen" in (row.get_attribute("class") or "") and "yes (chosen)" in row.text

    slider = _by_id(browser, "weight")
    slider.send_keys(Keys.END)  # the keyboard moves it all the way towards cheap
    _wait(browser).until(lambda b: _chosen(b) == CHEAP)
    assert _by_id(browser, "preset").get_attribute("value") == ""  # a custom weight now
    assert float(_by_id(browser, "weight-value").text) >= 200


def _png(path: Path) -> Path:
    """A 2x2 grey PNG."""
    rows = b"".join(b"\x00" + b"\x80\x80\x80" * 2 for _ in range(2))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
    path.write_bytes(png + chunk(b"IEND", b""))
    return path


def test_an_attached_image_goes_with_the_prompt(browser: WebDriver, tmp_path: Path) -> None:
    browser.execute_script(
        "window.__routed = [];"
        "const real = window.fetch;"
        "window.fetch = (url, init) => {"
        "  if (url === '/v1/route') window.__routed.push(init.body);"
        "  return real(url, init);"
        "};"
    )
    _by_id(browser, "image").send_keys(str(_png(tmp_path / "grey.png")))
    _wait(browser).until(lambda b: b.execute_script("return window.__routed.length") > 0)
    _wait(browser).until(lambda b: _by_id(b, "route-status").text.startswith("needs:"))
    sent = json.loads(browser.execute_script("return window.__routed.at(-1)"))
    parts = sent["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": HELLO}
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert sent["switchboard"]["cost_weight"] >= 200
    _by_id(browser, "image").clear()  # back to text only for the next tests
    browser.execute_script("document.getElementById('image').dispatchEvent(new Event('change'))")
    _wait(browser).until(
        lambda b: "image_url" not in b.execute_script("return window.__routed.at(-1)")
    )


def test_send_streams_the_answer_with_what_the_headers_say(browser: WebDriver) -> None:
    max_tokens = _by_id(browser, "max-tokens")
    max_tokens.clear()
    max_tokens.send_keys("16")
    answer = _send_and_wait(browser)
    assert answer.strip()
    assert "error" not in (_by_id(browser, "answer").get_attribute("class") or "")
    meta = {dt.text: dd.text for dt, dd in zip(
        browser.find_elements(By.CSS_SELECTOR, "#answer-meta dt"),
        browser.find_elements(By.CSS_SELECTOR, "#answer-meta dd"), strict=True)}  # fmt: skip
    assert meta["Model"] == CHEAP and meta["Fallbacks"] == "none"
    assert meta["Overhead"].endswith("ms") and meta["Cost"].startswith("$")
    assert meta["On the strongest model"].endswith(f"({STRONG})")


def test_a_prompt_with_markup_shows_as_text_and_runs_nothing(browser: WebDriver) -> None:
    _type_prompt(browser, INJECTION)
    _send_and_wait(browser)
    assert _by_id(browser, "asked").text == INJECTION
    assert not browser.find_elements(By.CSS_SELECTOR, "#asked *, #answer *, #candidates img")
    assert browser.execute_script("return window.__pwned === undefined")


def test_live_decisions_show_every_call_and_filter_by_model(
    service: str, browser: WebDriver
) -> None:
    admin = {"authorization": f"Bearer {ADMIN}"}
    made = httpx.post(f"{service}/v1/admin/keys", json={"name": "cache-user"}, headers=admin)
    key = {"authorization": f"Bearer {made.json()['key']}"}  # anonymous calls are not cached
    body = {"model": STRONG, "messages": [{"role": "user", "content": HELLO}], "max_tokens": 4}
    assert _chat(service, body, **key) == 200  # calls from outside the console show up too,
    assert _chat(service, body, **key) == 200  # and this one is answered from the response cache
    httpx.delete(f"{service}/v1/admin/keys/{made.json()['id']}", headers=admin)
    _tab(browser, "live")
    _wait(browser).until(lambda b: len(_rows(b, f'#decisions tr[data-model="{STRONG}"]')) == 2)
    rows = _rows(browser, "#decisions tbody tr")
    assert [r.get_attribute("data-model") for r in rows] == [STRONG, STRONG, CHEAP, CHEAP]
    cache = [r.find_elements(By.TAG_NAME, "td")[-1].text for r in rows]
    assert cache == ["hit", "—", "—", "—"]
    assert "cache-user" in rows[1].text and "ms" in rows[1].text
    Select(_by_id(browser, "live-model")).select_by_value(CHEAP)
    _wait(browser).until(lambda b: len(_rows(b, "#decisions tbody tr")) == 2)
    assert {r.get_attribute("data-model") for r in _rows(browser, "#decisions tbody tr")} == {CHEAP}


def test_savings_and_catalog_tabs(browser: WebDriver) -> None:
    _tab(browser, "savings")
    hour = _wait(browser).until(
        lambda b: b.find_element(By.CSS_SELECTOR, '.stat[data-window="hour"]')
    )
    assert "Calls\n4" in hour.text
    saved = hour.find_element(By.CSS_SELECTOR, ".saved").text
    assert saved.startswith("$") and saved != "$0"  # cheap answered what premium would have
    assert _rows(browser, "#savings-chart svg rect.routed")
    assert browser.find_element(By.CSS_SELECTOR, f'#savings-models tr[data-model="{CHEAP}"]')

    _tab(browser, "catalog")
    _wait(browser).until(lambda b: _rows(b, f'#models tr[data-model="{CHEAP}"]'))
    cheap = browser.find_element(By.CSS_SELECTOR, f'#models tr[data-model="{CHEAP}"]')
    cells = [c.text for c in cheap.find_elements(By.TAG_NAME, "td")]
    assert cells[0] == "yes" and cells[1] == "closed" and cells[2].endswith(("ms", "s"))


def test_the_console_api_needs_the_session_and_its_csrf_token(
    service: str, browser: WebDriver
) -> None:
    cookie = browser.get_cookie("sb_console")
    assert cookie is not None
    token = browser.find_element(By.CSS_SELECTOR, 'meta[name="csrf-token"]').get_attribute(
        "content"
    )
    session = {"cookie": f"sb_console={cookie['value']}"}
    keys = f"{service}/ui/api/keys"
    assert httpx.get(keys, headers=session).status_code == 200
    value = cookie["value"]
    forged = {"cookie": f"sb_console={value[:-1]}{'1' if value.endswith('0') else '0'}"}
    assert httpx.get(keys, headers=forged).json()["error"]["code"] == "session_required"
    no_csrf = httpx.post(keys, json={"name": "x"}, headers=session)
    assert no_csrf.status_code == 403 and no_csrf.json()["error"]["code"] == "csrf_failed"
    invalid = httpx.post(keys, json={"name": ""}, headers=session | {"x-csrf-token": token or ""})
    assert invalid.status_code == 400 and invalid.json()["error"]["param"] == "name"
    bad_limit = httpx.get(f"{service}/ui/api/decisions?limit=0", headers=session)
    assert (
        bad_limit.status_code == 400
        and bad_limit.json()["error"]["type"] == "invalid_request_error"
    )


def test_keys_are_created_once_shown_and_revoked(service: str, browser: WebDriver) -> None:
    _by_id(browser, "key-name").send_keys("team-console")
    _by_id(browser, "key-budget").send_keys("5")
    _by_id(browser, "key-create").click()
    key = _visible(browser, "new-key-value").text
    assert key.startswith("sk-sb-")
    named = "//table[@id='keys']//tr[th='team-console']"
    row = _wait(browser).until(lambda b: b.find_element(By.XPATH, named))
    assert "$0 of $5" in row.text and key not in _by_id(browser, "keys").text
    chat = {"model": "auto", "messages": [{"role": "user", "content": HELLO}], "max_tokens": 2}
    assert _chat(service, chat, authorization=f"Bearer {key}") == 200

    row.find_element(By.TAG_NAME, "button").click()
    browser.switch_to.alert.accept()
    _wait(browser).until(lambda b: not b.find_elements(By.XPATH, named))
    assert _chat(service, chat, authorization=f"Bearer {key}") == 401


def test_screenshots_for_the_readme(browser: WebDriver) -> None:
    _tab(browser, "playground")
    Select(_by_id(browser, "preset")).select_by_value("balanced")
    _type_prompt(browser, "Explain in two sentences why the sky is blue.")
    _wait(browser).until(lambda b: _chosen(b) in (CHEAP, STRONG))
    _send_and_wait(browser)
    DOCS.mkdir(exist_ok=True)
    browser.execute_script("window.scrollTo(0, 0)")
    assert browser.save_screenshot(str(DOCS / "console-desktop.png"))
    _tab(browser, "savings")
    _wait(browser).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#savings-chart svg"))
    assert browser.save_screenshot(str(DOCS / "console-savings.png"))
    _tab(browser, "playground")

    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})  # fmt: skip
    try:
        for tab in ("live", "savings", "catalog", "playground"):
            _tab(browser, tab)
            overflow = browser.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"the {tab} tab is wider than a 390-pixel phone"
        browser.execute_script(
            "document.querySelector('#candidates').parentNode.parentNode.scrollIntoView()"
        )
        assert browser.save_screenshot(str(DOCS / "console-phone.png"))
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
