"""The business calendar in params: named recurring windows of business load, and holidays.

Bank fleets peak at month end (close, payroll, settlement), harder at quarter and year end;
retail on dated events. Each named window is used by every stage where it matters: a model
input (a Prophet holiday; in-window flags and days to the window's end for the tree models),
a day cleaning does not mistake for an outlier, a flag on risk rows. Read by
``core.calendar_windows``. Every field carries a ``description``: the params reference is
generated from them.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from capacity_forecaster.core.params_base import ParamsSection

WindowKind = Literal["month_end", "quarter_end", "year_end", "day_of_month", "dates"]
# A window's name becomes a model input's and a column's name: lower-case words.
WindowName = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$", min_length=1, max_length=32)
]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
MAX_WINDOWS = 12
# Names a window cannot take: Prophet's pooled public holidays and the names it reserves for
# its own components (``Prophet.validate_column_name``) or gives its seasonalities, and the
# calendar table's own columns (``core.calendar_windows``).
_PROPHET_COMPONENTS = (
    "trend",
    "additive_terms",
    "daily",
    "weekly",
    "yearly",
    "holidays",
    "zeros",
    "extra_regressors_additive",
    "yhat",
    "extra_regressors_multiplicative",
    "multiplicative_terms",
)
RESERVED_WINDOW_NAMES = frozenset(
    {
        "public_holiday",
        "business_day",
        "business_days_to_month_end",
        *_PROPHET_COMPONENTS,
        *(f"{name}_lower" for name in _PROPHET_COMPONENTS),
        *(f"{name}_upper" for name in _PROPHET_COMPONENTS),
        "ds",
        "y",
        "cap",
        "floor",
        "y_scaled",
        "cap_scaled",
    }
)
MAX_DATES = 400


class CalendarWindow(ParamsSection):
    """One recurring window of business load."""

    kind: WindowKind = Field(
        description="month_end, quarter_end, year_end: the last business_days business days "
        "of each month, quarter or year; day_of_month: the business_days business days "
        "ending on `day` (or the business day before it); dates: the listed dates"
    )
    business_days: int = Field(
        1, ge=1, le=20, description="Length of the window in business days (not for dates)"
    )
    day: int | None = Field(
        None, ge=1, le=31, description="Day of the month a day_of_month window ends on"
    )
    dates: tuple[dt.date, ...] = Field(
        (),
        max_length=MAX_DATES,
        description="The days of a dates window (a launch, Black Friday), past and future",
    )

    @model_validator(mode="after")
    def _fields_fit_kind(self) -> CalendarWindow:
        if self.kind == "day_of_month" and self.day is None:
            raise ValueError("a day_of_month window needs `day` (1-31)")
        if self.kind != "day_of_month" and self.day is not None:
            raise ValueError(f"`day` is for day_of_month windows, not {self.kind}")
        if self.kind == "dates" and not self.dates:
            raise ValueError("a dates window needs `dates` (a list of YYYY-MM-DD)")
        if self.kind != "dates" and self.dates:
            raise ValueError(f"`dates` is for dates windows, not {self.kind}")
        return self

    @property
    def monthly(self) -> bool:
        """Recurs every month: seen often enough to be compared with its other occurrences."""
        return self.kind in ("month_end", "day_of_month")


DEFAULT_WINDOWS: dict[str, CalendarWindow] = {
    "month_end": CalendarWindow(kind="month_end", business_days=2),
    "quarter_end": CalendarWindow(kind="quarter_end", business_days=5),
    "year_end": CalendarWindow(kind="year_end", business_days=5),
}


class CalendarParams(ParamsSection):
    """Named recurring windows of business load (month end, quarter end, your own), and extra
    holidays per country; business days are Monday to Friday less the server's holidays."""

    windows: dict[WindowName, CalendarWindow] = Field(
        default_factory=lambda: dict(DEFAULT_WINDOWS),
        max_length=MAX_WINDOWS,
        description="Windows by name: month_end (2 business days), quarter_end (5) and "
        "year_end (5) unless set to null, and your own beside them (e.g. payroll: {kind: "
        "day_of_month, day: 15}); a name given replaces that default",
    )
    extra_holidays: dict[CountryCode, tuple[dt.date, ...]] = Field(
        default_factory=dict,
        description="Days off beyond the public holidays, per ISO country code (e.g. DE: "
        "[2026-12-24]): not business days, and a holiday to the models",
    )

    @model_validator(mode="before")
    @classmethod
    def _windows_beside_the_defaults(cls, data: Any) -> Any:
        windows = data.get("windows") if isinstance(data, dict) else None
        if isinstance(windows, list):
            raise ValueError(
                "windows is a mapping of name to window (month_end: {kind: month_end, "
                "business_days: 2}), not a list"
            )
        if isinstance(windows, dict):
            taken = sorted(set(windows) & RESERVED_WINDOW_NAMES)
            if taken:
                raise ValueError(
                    f"window name {taken[0]!r} is used by the models themselves: rename the window"
                )
            # A planner adds a payroll day without restating month end; null drops a default.
            merged = {**DEFAULT_WINDOWS, **windows}
            data = {**data, "windows": {k: v for k, v in merged.items() if v is not None}}
        return data

    def window(self, name: str) -> CalendarWindow | None:
        return self.windows.get(name)

    def cache_key(self) -> str:
        """The calendar as canonical JSON that validates back to it: equal keys, equal windows
        and holidays (a dropped default is written as null, or validation would restore it)."""
        dump = self.model_dump(mode="json")
        dump["windows"].update({name: None for name in DEFAULT_WINDOWS if name not in self.windows})
        return json.dumps(dump, sort_keys=True)
