"""The official ``openai`` SDK's embeddings against Switchboard: its own MiniLM encoder served as
a local model, and a catalog embeddings model passed through to a fake provider."""

from __future__ import annotations

import numpy as np
import openai
import pytest

from tests import fake_providers
from tests.sdk.conftest import EMBEDDER, LIMITED_OPENAI, LOCAL, Service

MINILM = "local/all-minilm-l6-v2"


@pytest.fixture()
def client(sdk_service: Service) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{sdk_service.url}/v1", api_key="unused", max_retries=0)


def test_the_local_encoder_is_listed_and_embeds(client: openai.OpenAI) -> None:
    listed = {m.id: m for m in client.models.list().data}
    assert MINILM in listed
    texts = ["a cat sleeps on the sofa", "a kitten naps on the couch", "bond yields rose today"]
    reply = client.embeddings.create(model=MINILM, input=texts)  # the SDK asks for base64
    assert reply.model == MINILM and [d.index for d in reply.data] == [0, 1, 2]
    vectors = np.array([d.embedding for d in reply.data])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    similar, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > unrelated + 0.3
    assert reply.usage.prompt_tokens > 0
    floats = client.embeddings.create(model=MINILM, input=texts[0], encoding_format="float")
    assert np.allclose(floats.data[0].embedding, vectors[0], atol=1e-6)


def test_a_catalog_embeddings_model_is_passed_through(client: openai.OpenAI) -> None:
    reply = client.embeddings.create(model=EMBEDDER, input=["first", "second"])
    assert reply.model == EMBEDDER
    # the provider listed them out of order; they come back in input order
    assert reply.data[0].embedding == pytest.approx(
        [0.0023064255, -0.009327292, 0.0150825, -0.0028842222]
    )
    assert reply.data[1].embedding == pytest.approx([0.0143, -0.0211, 0.0057, 0.0312])
    assert reply.usage.prompt_tokens == 8
    sent = fake_providers.received["/openai/v1/embeddings"]
    assert sent == {"model": EMBEDDER, "input": ["first", "second"], "encoding_format": "float"}


def test_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="no-such-encoder", input="hi")
    with pytest.raises(openai.BadRequestError) as chat_model:
        client.embeddings.create(model=LOCAL, input="hi")
    assert chat_model.value.param == "model"
    with pytest.raises(openai.BadRequestError) as too_many:
        client.embeddings.create(model=MINILM, input=["x"] * 513)
    assert too_many.value.param == "input"
    with pytest.raises(openai.BadRequestError) as tokens:
        client.embeddings.create(model=MINILM, input=[[1, 2, 3]])
    assert tokens.value.param == "input[0]"
    with pytest.raises(openai.BadRequestError) as dims:
        client.embeddings.create(model=MINILM, input="hi", dimensions=256)
    assert dims.value.param == "dimensions"


def test_legacy_completions_point_to_chat(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as legacy:
        client.completions.create(model="auto", prompt="Say hello.")
    assert "/v1/chat/completions" in legacy.value.message


def test_chat_errors_rate_limit_with_retry_after(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(
            model=LIMITED_OPENAI, messages=[{"role": "user", "content": "hi"}]
        )
    assert limited.value.response.headers["retry-after"] == fake_providers.RETRY_AFTER
    with pytest.raises(openai.BadRequestError) as many:
        client.chat.completions.create(
            model=LOCAL, messages=[{"role": "user", "content": "hi"}], n=2
        )
    assert many.value.param == "n"
