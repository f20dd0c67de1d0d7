"""The patient profile: pseudonymous traits that matter for safety."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .. import anatomy
from ._text import check_text

__all__ = ["ConditionName", "CONDITIONS", "Condition", "Patient"]

ConditionName = Literal[
    "pacemaker",
    "icd",
    "pregnancy",
    "epilepsy",
    "malignancy",
    "dvt",
    "impaired-sensation",
    "unable-to-give-feedback",
    "broken-skin",
    "skin-infection",
    "inflamed-skin",
    "phlebitis",
    "varicose-veins",
    "recent-surgery",
    "heart-disease",
    "bleeding-tendency",
    "hernia",
    "arterial-disease",
    "undiagnosed-pain",
    "metal-implant",
]

#: Every condition the safety engine knows.
CONDITIONS: tuple[str, ...] = get_args(ConditionName)


class Condition(BaseModel):
    """A condition, optionally where on the body it is (site ids or regions)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    condition: ConditionName
    sites: list[str] = Field(default_factory=list, description="site ids or regions; empty = not localised / unknown")
    side: Literal["left", "right", "midline"] | None = None
    note: str = ""

    @field_validator("note")
    @classmethod
    def _plain_note(cls, v: str) -> str:
        return check_text(v, single_line=False, what="a note")

    @field_validator("sites")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        known = anatomy.known_regions()
        bad = [s for s in v if s not in known]
        if bad:
            raise ValueError(f"unknown site or region {bad}; allowed: {', '.join(sorted(known))}")
        return v


class Patient(BaseModel):
    """A patient profile (pseudonymous).

    Examples
    --------
    >>> from electrostim.program import Patient
    >>> Patient.model_validate({"id": "P-1", "conditions": ["pregnancy"]}).has("pregnancy")
    True
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(min_length=1, max_length=64)] = "anonymous"
    conditions: list[Condition] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _plain_id(cls, v: str) -> str:
        # shown on screens and kept in records: one line of visible text
        return check_text(v, single_line=True, what="a patient id")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("conditions"), list):
            data = dict(data)
            data["conditions"] = [{"condition": c} if isinstance(c, str) else c for c in data["conditions"]]
        return data

    def has(self, condition: str) -> bool:
        """Whether the profile lists this condition."""
        return any(c.condition == condition for c in self.conditions)
