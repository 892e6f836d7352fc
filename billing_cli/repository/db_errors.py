"""Database errors as one line an operator can act on.

Below both :mod:`.database` and :mod:`.migrations`, so that neither has to import the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc

from billing_cli.errors import DatabaseError, DatabaseNotReady


@contextmanager
def translate_errors(display_url: str) -> Iterator[None]:
    """Turn SQLAlchemy and driver errors into one line an operator can act on."""
    try:
        yield
    except exc.OperationalError as error:
        reason = _first_line(error)
        raise DatabaseError(f"database {display_url} is unreachable: {reason}") from None
    except exc.IntegrityError as error:
        raise DatabaseError(f"database refused the change: {_first_line(error)}") from None
    except exc.ProgrammingError as error:
        raise DatabaseNotReady(
            f"database {display_url} rejected a query ({_first_line(error)}); "
            "is it migrated? run `billing db upgrade`"
        ) from None
    except exc.SQLAlchemyError as error:
        raise DatabaseError(f"database error: {_first_line(error)}") from None


def _first_line(error: exc.SQLAlchemyError) -> str:
    original = getattr(error, "orig", None) or error
    text = str(original).strip().splitlines()
    return text[0] if text else type(original).__name__
