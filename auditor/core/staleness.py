"""Warnings about data too old to trust: GeoIP databases, IP-range files and the adequacy list.

A stale data set is not a compliance finding (nothing the organisation does is wrong), so these
never change a run's findings, summary or exit status; but a location from a database built two
years ago, or a verdict from an adequacy list that misses a year of decisions, is a guess, and
the user is told so where they look. Ages are measured against the day the audit runs, never the
audit's `as_of` date: auditing 2019 with a 2019 database is still auditing with an old database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from auditor.core.policies import PolicyData
from auditor.core.ports import DataSet

DEFAULT_MAX_AGE_DAYS = 45
"""GeoIP and IP-range data older than this is stale (the GdprAuditorGeoDataStale alert's limit)."""

ADEQUACY_MAX_AGE_DAYS = 365
"""An adequacy list not reviewed within a year may miss decisions adopted, renewed or ended."""

GEOIP_STALE = "geoip-stale"
IP_RANGES_STALE = "ip-ranges-stale"
AGE_UNKNOWN = "data-age-unknown"
ADEQUACY_STALE = "adequacy-stale"

_WHAT = {
    "geoip-country": "GeoIP country database",
    "geoip-asn": "GeoIP ASN database",
    "ip-ranges": "IP-range file",
}


@dataclass(frozen=True, slots=True)
class DataWarning:
    """One data set that is older than allowed, or whose age is unknown."""

    kind: str  # geoip-stale | ip-ranges-stale | data-age-unknown | adequacy-stale
    source: str  # the file's name: "GeoLite2-Country.mmdb", "ips-v4", "adequacy.yaml"
    name: str  # what the data is: the database type, the provider, the document's title
    built: date | None  # when it was built, fetched or updated (see dated_by); None: unknown
    dated_by: str | None  # "build", "fetched", "updated"; None when built is None
    age_days: int | None  # whole days from `built` to the day of the audit
    max_age_days: int
    message: str


def data_warnings(
    datasets: Iterable[DataSet], policies: PolicyData, today: date, max_age_days: int
) -> list[DataWarning]:
    """Return a warning for every data set older than `max_age_days` or of unknown age, and for
    an adequacy list older than ADEQUACY_MAX_AGE_DAYS, as of `today` (the wall clock's day)."""
    warnings = [w for d in datasets if (w := dataset_warning(d, today, max_age_days))]
    adequacy = _adequacy_warning(policies, today)
    if adequacy is not None:
        warnings.append(adequacy)
    return warnings


def _file_name(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def dataset_warning(dataset: DataSet, today: date, max_age_days: int) -> DataWarning | None:
    """Return the warning for one GeoIP or IP-range data set, or None when it is recent enough."""
    source = _file_name(dataset.path)
    what = f"{_WHAT.get(dataset.kind, dataset.kind)} {source} ({dataset.name})"
    if dataset.built is None:
        if dataset.kind == "ip-ranges":
            why = "has no build date and no recorded fetch"
            fix = "fetch it with `gdpr-auditor geodb update`"
        else:
            why = "has no build time in its metadata"
            fix = "use a current download (geodb/README.md)"
        message = f"{what} {why}, so its age is unknown: {fix}"
        return DataWarning(
            AGE_UNKNOWN, source, dataset.name, None, None, None, max_age_days, message
        )
    built = dataset.built.date()
    age = (today - built).days
    if age <= max_age_days:
        return None
    verb = "fetched" if dataset.dated_by == "fetched" else "built"
    if dataset.kind == "ip-ranges":
        kind = IP_RANGES_STALE
        consequence = "networks the provider moved since are placed where they were"
        fix = "run `gdpr-auditor geodb update`"
    else:
        kind = GEOIP_STALE
        consequence = "addresses that moved since are located where they were"
        fix = "use a current download (geodb/README.md)"
    message = (
        f"{what} was {verb} {built.isoformat()}, {age} days ago (more than {max_age_days}, "
        f"geoip.max_age_days): {consequence}; {fix}"
    )
    return DataWarning(
        kind, source, dataset.name, built, dataset.dated_by, age, max_age_days, message
    )


def _adequacy_warning(policies: PolicyData, today: date) -> DataWarning | None:
    updated = policies.adequacy.updated
    age = (today - updated).days
    if age <= ADEQUACY_MAX_AGE_DAYS:
        return None
    message = (
        f"the adequacy decisions in adequacy.yaml were last updated {updated.isoformat()}, {age} "
        f"days ago (more than a year): decisions adopted, renewed or ended since are missing, "
        f"and verdicts resting on them may be wrong; update gdpr-auditor's policy data"
    )
    return DataWarning(
        ADEQUACY_STALE,
        "adequacy.yaml",
        policies.adequacy.title,
        updated,
        "updated",
        age,
        ADEQUACY_MAX_AGE_DAYS,
        message,
    )
