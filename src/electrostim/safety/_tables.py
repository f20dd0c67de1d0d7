"""Limit, device and contraindication tables: data files, validated when loaded."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import UnknownDeviceError
from ..program import CONDITIONS, Modality, format_validation_error
from ..waveform import ElectrodeDose, OutputDose

__all__ = ["LimitRule", "ProgramRule", "DeviceProfile", "SiteRule", "PathRule", "ConditionRule", "Warning_",
           "limit_rules", "program_rules", "device_profiles", "get_device", "contraindication_tables"]

Verdict = Literal["refused", "needs_confirmation"]


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class When(_Row):
    metric: str
    above: float | None = None
    upto: float | None = None

    def holds(self, value: float) -> bool:
        return (self.above is None or value > self.above) and (self.upto is None or value <= self.upto)


class LimitRule(_Row):
    """A limit on one dose figure."""

    id: str
    scope: Literal["output", "electrode"]
    metric: str
    op: Literal[">", ">="]
    limit: float
    unit: str
    when: When | None = None
    verdict: Verdict
    source: str = Field(min_length=10)
    message: str

    @model_validator(mode="after")
    def _metric_exists(self) -> LimitRule:
        model = OutputDose if self.scope == "output" else ElectrodeDose
        for m in [self.metric] + ([self.when.metric] if self.when else []):
            if m not in model.model_fields:
                raise ValueError(f"rule {self.id}: {self.scope} metric {m!r} is not a dose figure")
        return self

    def breached(self, value: float | None) -> bool:
        if value is None:
            return False
        return value > self.limit if self.op == ">" else value >= self.limit


class ProgramRule(_Row):
    id: str
    kind: Literal["duty-cycle-minimum"]
    modalities: tuple[Modality, ...]
    min_on_s: float
    min_off_s: float
    verdict: Verdict
    source: str = Field(min_length=10)
    message: str


class DeviceProfile(_Row):
    """What a stimulator can deliver."""

    id: str
    name: str
    source: str = Field(min_length=10)
    channels: int = Field(ge=1, le=64)
    current_max_ma: float = Field(gt=0)
    current_step_ma: float = Field(ge=0)
    pulse_width_min_us: float = Field(gt=0)
    pulse_width_max_us: float = Field(gt=0)
    pulse_width_step_us: float = Field(ge=0)
    max_pulse_rate_hz: float = Field(gt=0)
    max_carrier_hz: float = Field(ge=0)
    shapes: tuple[Literal["symmetric-biphasic", "asymmetric-biphasic", "monophasic", "sine-burst", "interferential"], ...]
    fixed_interphase_gap_us: float | None = None
    #: grid of the repetition period, ms (0: any period)
    period_step_ms: float = Field(0.0, ge=0)
    min_period_ms: float = Field(0.0, ge=0)
    max_period_ms: float = Field(float("inf"), gt=0)
    #: each output runs at one fixed rate (a frequency modulation cannot be delivered)
    fixed_rate: bool = False
    #: outputs share one main interval; others may run every k-th period, k <= this; 0: each its own period
    max_rate_factor: int = Field(0, ge=0)
    max_pulses_per_burst: int = Field(1000, ge=1)
    burst_interval_step_ms: float = Field(0.0, ge=0)
    min_burst_interval_ms: float = Field(0.0, ge=0)
    max_burst_interval_ms: float = Field(float("inf"), gt=0)
    #: points of one period's pulse shape (0: no limit)
    max_shape_points: int = Field(0, ge=0)
    #: the shapes of a phase it makes: rectangular (a constant current) and/or spike (HVPC's exponential peaks)
    phase_shapes: tuple[Literal["rectangular", "spike"], ...] = ("rectangular",)
    #: it sets a voltage, not a current (high-voltage pulsed current): it takes only programs set in volts, and a
    #: current-controlled device takes only programs set in mA
    voltage_controlled: bool = False
    #: the highest voltage it sets, V (a voltage-controlled device only)
    max_voltage_v: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _ranges(self) -> DeviceProfile:
        if self.pulse_width_min_us > self.pulse_width_max_us:
            raise ValueError(f"device {self.id}: pulse_width_min_us > pulse_width_max_us")
        return self

    @model_validator(mode="after")
    def _voltage(self) -> DeviceProfile:
        if self.voltage_controlled != (self.max_voltage_v > 0):
            raise ValueError(f"device {self.id}: max_voltage_v > 0 belongs to a voltage-controlled device, and only to one")
        return self


class SiteRule(_Row):
    id: str
    regions: tuple[str, ...]
    verdict: Verdict
    source: str
    message: str


class PathRule(_Row):
    id: str
    pairs: tuple[tuple[str, str], ...]
    verdict: Verdict
    source: str
    message: str


class ConditionRule(_Row):
    id: str
    conditions: tuple[str, ...]
    regions: tuple[str, ...] = ()
    modalities: tuple[Modality, ...] = ()
    localised: bool = False
    verdict: Verdict
    class_: Literal["contraindication", "precaution"] = Field(alias="class")
    source: str
    message: str

    @model_validator(mode="after")
    def _known(self) -> ConditionRule:
        bad = [c for c in self.conditions if c not in CONDITIONS]
        if bad:
            raise ValueError(f"rule {self.id}: unknown conditions {bad}")
        return self


class Warning_(_Row):
    id: str
    source: str
    message: str


def _load(name: str) -> dict:
    return tomllib.loads(resources.files(__package__).joinpath("tables", name).read_text(encoding="utf-8"))


_R = TypeVar("_R", bound=BaseModel)


def _rows(model: type[_R], rows: Iterable[Any], name: str) -> tuple[_R, ...]:
    try:
        return tuple(model.model_validate(r) for r in rows)
    except ValidationError as exc:  # a broken table is a packaging bug: say where
        raise RuntimeError(format_validation_error(exc, f"safety table {name}")[0]) from None


@cache
def limit_rules() -> tuple[LimitRule, ...]:
    """Rules on dose figures."""
    return _rows(LimitRule, _load("limits.toml")["rule"], "limits.toml")


@cache
def program_rules() -> tuple[ProgramRule, ...]:
    """Rules on program settings."""
    return _rows(ProgramRule, _load("limits.toml").get("program_rule", []), "limits.toml")


@cache
def _device_table() -> dict[str, DeviceProfile]:
    raw = _load("devices.toml")
    return {p.id: p for p in _rows(DeviceProfile, [{"id": k, **v} for k, v in raw.items()], "devices.toml")}


def device_profiles() -> dict[str, DeviceProfile]:
    """Device capability profiles by id (a copy: changing it changes nothing)."""
    return dict(_device_table())


def get_device(device: str | DeviceProfile) -> DeviceProfile:
    """A device profile by id (``generic``, ``rehastim2``, ``p24``, ``hvpc``).

    Profiles come from the device table only: a :class:`DeviceProfile` built elsewhere
    is accepted only when it is exactly the table's profile of that id (a caller cannot
    widen a device's ranges under its name).

    Raises
    ------
    UnknownDeviceError
        No such id, or a profile that is not the table's.
    """
    profiles = _device_table()
    if isinstance(device, DeviceProfile):
        table = profiles.get(device.id)
        if type(device) is DeviceProfile and table is not None and device.model_dump() == table.model_dump():
            return profiles[device.id]
        raise UnknownDeviceError(
            f"Invalid device profile {device.id!r}: profiles come from the device table "
            f"(allowed {', '.join(repr(k) for k in profiles)}), but got a profile that differs from the table's."
        )
    if device not in profiles:
        raise UnknownDeviceError(
            f"Invalid value for 'device': allowed {', '.join(repr(k) for k in profiles)}, but got {device!r}."
        )
    return profiles[device]


@cache
def contraindication_tables() -> tuple[tuple[SiteRule, ...], tuple[PathRule, ...], tuple[ConditionRule, ...], tuple[Warning_, ...]]:
    """Site rules, path rules, condition rules and standing warnings."""
    raw = _load("contraindications.toml")
    return (
        _rows(SiteRule, raw.get("site_rule", []), "contraindications.toml"),
        _rows(PathRule, raw.get("path_rule", []), "contraindications.toml"),
        _rows(ConditionRule, raw.get("condition_rule", []), "contraindications.toml"),
        _rows(Warning_, raw.get("warning", []), "contraindications.toml"),
    )
