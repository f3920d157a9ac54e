"""Worldwide country lookup (IPv4 + IPv6) from the data bundled with ``geoip2fast``.

We load ``geoip2fast-ipv6.dat.gz`` (MaxMind GeoLite2 Country, IPv4+IPv6, English names,
built 2024-06-18) by absolute path. Things the library does that we neutralise:

* It can download newer data, but only from ``update_all``/``update_file``, and does reverse DNS
  only in ``GeoIPDetail.get_hostname``; we call none of them, so no network is ever used.
* Given a bare file name it looks in the *current directory* first and unpickles whatever it
  finds; an absolute path to the packaged file avoids loading a stray (or hostile) pickle.
* Importing it overwrites ``PYTHONWARNINGS``/``PYTHONIOENCODING`` in ``os.environ`` (inherited by
  every subprocess we spawn); we put the previous values back.
* Loading shells out to ``ps`` twice just to report memory; we swap that helper for a no-op.

The library keeps its tables in module globals, so there can only be one database per process;
this module is that process-wide singleton. Load takes ~0.15 s and ~47 MB RSS.
"""

import logging
import os
import threading
from pathlib import Path
from typing import Any, NamedTuple

log = logging.getLogger(__name__)

DATA_FILE = "geoip2fast-ipv6.dat.gz"
_ENV_TOUCHED_BY_IMPORT = ("PYTHONWARNINGS", "PYTHONIOENCODING")

_lock = threading.Lock()
_db: Any = None  # geoip2fast.GeoIP2Fast once loaded
_load_failed = False


class Country(NamedTuple):
    """ISO 3166-1 alpha-2 code and English name; empty strings when unknown."""

    code: str
    name: str


_NO_COUNTRY = Country("", "")


def _import_geoip2fast() -> Any:
    saved = {name: os.environ.get(name) for name in _ENV_TOUCHED_BY_IMPORT}
    try:
        import geoip2fast.geoip2fast as module
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return module


def _load() -> Any:
    global _db, _load_failed
    with _lock:
        if _db is not None or _load_failed:
            return _db
        try:
            module = _import_geoip2fast()
            path = Path(module.__file__).resolve().parent / DATA_FILE
            if not path.is_file():
                raise FileNotFoundError(path)
            real_mem_usage = module.get_mem_usage
            module.get_mem_usage = lambda: 0.0
            try:
                _db = module.GeoIP2Fast(verbose=False, geoip2fast_data_file=str(path))
            finally:
                module.get_mem_usage = real_mem_usage
        except Exception:
            _load_failed = True
            log.warning("geoip2fast data unavailable; country lookups disabled", exc_info=True)
        return _db


def search(ip: str) -> Country:
    """Country for a *validated, public* IPv4/IPv6 address; empty when unknown or unavailable."""
    db = _db if _db is not None else _load()
    if db is None:
        return _NO_COUNTRY
    result = db.lookup(ip)
    code = result.country_code
    # "--" = private/not found, "" = invalid; names then hold "<not found in database>" etc.
    if result.is_private or len(code) != 2 or not code.isalpha():
        return _NO_COUNTRY
    return Country(code.upper(), result.country_name)


def warm() -> bool:
    """Load the data now (e.g. at worker start-up); True if it is usable."""
    return _load() is not None
