"""The holidays every Prophet is fitted with: its server's days off and the business calendar.

Each series gets the public holidays of its server's country and that country's extra holidays
(``calendar.extra_holidays``), pooled into one effect named ``public_holiday``, and one holiday
per window of the business calendar (``calendar.windows``), named after the window
(``month_end``, ``quarter_end``, ``year_end`` by default), on that window's days in the
server's country. Pooling the public holidays into one effect, rather than one per holiday
name, costs 14 % less CPU per fit (0.108 s against 0.126 s) and forecasts no worse: on the
accuracy benchmark Prophet's holdout MASE was 3.247 against 3.258 (median 1.188 against 1.208),
as a holiday seen once or twice in two years gives a noisy effect of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from capacity_forecaster.core.calendar import server_countries
from capacity_forecaster.core.calendar_windows import days_off, window_flags
from capacity_forecaster.core.params_calendar import CalendarParams

logger = logging.getLogger(__name__)

HOLIDAY_HORIZON_DAYS = 400  # holidays are listed this far past a series' end (covers forecasts)
PUBLIC_HOLIDAY = "public_holiday"


def series_countries(servers: pd.DataFrame, server_ids: Sequence[str]) -> dict[str, str | None]:
    """Holiday country per server: its ``country`` when set, else the one of its region."""
    if "server_id" not in servers.columns:
        raise ValueError("servers is missing column 'server_id'")
    if "region" not in servers.columns and "country" not in servers.columns:
        raise ValueError("servers needs a 'region' or a 'country' column")
    known = server_countries(servers.assign(server_id=servers["server_id"].astype(str)))
    unknown = [s for s in server_ids if s not in known.index]
    # server_countries marks an unknown country with None or, as pandas 3 has it, NaN.
    countries = {s: c if isinstance(c := known.get(s), str) else None for s in server_ids}
    if unknown:
        logger.warning(
            "prophet: %d server(s) missing from the servers frame (no public holidays), e.g. %s",
            len(unknown),
            ", ".join(unknown[:5]),
        )
    missing = set(unknown)
    no_country = [s for s, c in countries.items() if c is None and s not in missing]
    if no_country:
        logger.info(
            "prophet: no holiday country for %d server(s) (unknown region), e.g. %s: "
            "calendar windows on Monday-Friday business days, no public holidays",
            len(no_country),
            ", ".join(no_country[:5]),
        )
    return countries


def holiday_frames(
    countries: set[str | None],
    first: np.datetime64,
    last: np.datetime64,
    calendar: CalendarParams,
) -> dict[str | None, pd.DataFrame]:
    """One holidays frame (ds, holiday) per country, built once per fit.

    ``public_holiday`` on the country's days off, and one holiday per calendar window on its
    days in that country, from the earliest history date to ``HOLIDAY_HORIZON_DAYS`` past the
    latest; each series later takes its own slice.
    """
    start = pd.Timestamp(first).normalize()
    end = pd.Timestamp(last).normalize() + pd.Timedelta(days=HOLIDAY_HORIZON_DAYS)
    days = pd.date_range(start, end, freq="D")
    frames: dict[str | None, pd.DataFrame] = {}
    without_calendar = []
    for country in sorted(countries, key=lambda c: c or ""):
        flags = window_flags(days, country, calendar)
        parts = [pd.DataFrame({"ds": days[flags[name]], "holiday": name}) for name in flags]
        if country is not None:
            off = days_off(days, country, calendar)
            if not off.any():
                without_calendar.append(country)
            parts.append(pd.DataFrame({"ds": days[off], "holiday": PUBLIC_HOLIDAY}))
        frame = pd.concat(parts, ignore_index=True)
        frame["ds"] = pd.to_datetime(frame["ds"]).astype("datetime64[ns]")
        frame["holiday"] = frame["holiday"].astype(str)
        frames[country] = frame.sort_values(["ds", "holiday"], ignore_index=True)
    if without_calendar:
        logger.warning(
            "prophet: no public holidays found for countries %s: calendar windows only",
            ", ".join(without_calendar),
        )
    return frames
