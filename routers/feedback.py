"""``POST /v1/feedback``: how good a routed answer was, so routing learns."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.http.json_body import StrictJSONRoute
from app.pipeline.access import authenticate
from app.selection.feedback import Verdict
from routers.deps import FeedbackDep, SettingsDep, StoreDep

router = APIRouter(tags=["feedback"], route_class=StrictJSONRoute)


class FeedbackBody(BaseModel):
    """One of: ``score`` (0..1) or ``thumbs`` for the chosen model; and/or ``better_model``,
    a model that would have been right (scored 1)."""

    model_config = ConfigDict(extra="forbid")

    decision_id: str = Field(min_length=1)
    score: float | None = Field(default=None, ge=0, le=1)
    thumbs: Literal["up", "down"] | None = None
    better_model: str | None = None

    @model_validator(mode="after")
    def _one_signal(self) -> FeedbackBody:
        if self.score is not None and self.thumbs is not None:
            raise ValueError("give score or thumbs, not both")
        if self.score is None and self.thumbs is None and self.better_model is None:
            raise ValueError("give score, thumbs or better_model")
        return self


@router.post("/v1/feedback")
async def feedback(
    body: FeedbackBody,
    settings: SettingsDep,
    store: StoreDep,
    loop: FeedbackDep,
    authorization: Annotated[str | None, Header()] = None,
) -> dict[str, object]:
    # feedback is stored before the reply: it needs the store, so it never fails open
    key = await authenticate(store, authorization, required=settings.require_api_key,
                             fail_open=False)  # fmt: skip
    chosen = await loop.chosen_model(body.decision_id)
    verdicts = []
    score = (
        body.score if body.score is not None else {"up": 1.0, "down": 0.0}.get(body.thumbs or "")
    )
    if score is not None:
        verdicts.append(Verdict(chosen, score))
    if body.better_model is not None:
        verdicts.append(Verdict(body.better_model, 1.0))
        if score is None and body.better_model != chosen:
            verdicts.append(Verdict(chosen, 0.0))
    accepted = await loop.submit(body.decision_id, verdicts, key.id if key else None)
    return {"decision_id": body.decision_id, "accepted": accepted, "duplicate": not accepted}
