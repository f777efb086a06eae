"""Types shared by the batch-file readers: rows, problems, errors, columns."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType

REQUIRED_COLUMNS: tuple[str, ...] = (
    "reference",
    "amount",
    "currency",
    "method",
    "beneficiary_name",
    "beneficiary_account",
)
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "beneficiary_email",
    "beneficiary_phone",
    "description",
)
ALL_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

# One empty value per known column; copied for every row so that consumers can
# index any column without caring whether the file had it.
_EMPTY_VALUES: dict[str, str] = dict.fromkeys(ALL_COLUMNS, "")


class FormatError(Exception):
    """Reject a whole file.

    ``code`` is machine-readable (see ``payments.formats`` for the list),
    ``message`` is for people, ``line`` is the physical line (CSV, pain.001)
    or sheet row (XLSX) where the problem was found, when known, and
    ``column`` names the column(s) concerned, when relevant.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line
        self.column = column

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line is not None else ""
        return f"{self.code}: {self.message}{where}"


@dataclass(slots=True, frozen=True)
class RowProblem:
    """A structural problem of one row that a reader noticed.

    The row is still yielded; the caller records the problem as a row error
    (it does not reject the file).
    """

    code: str
    message: str
    column: str | None = None


@dataclass(slots=True)
class RawRow:
    """One data row of a batch file, before validation.

    ``values`` maps every name of ``ALL_COLUMNS`` to the stripped raw string
    ("" when the cell is empty or the file has no such column). ``line`` is
    the physical line in the file (CSV: the header is line 1; XLSX: the sheet
    row number; pain.001: the line of the ``<CdtTrfTxInf>`` start tag).
    ``pmt_inf_id`` is the enclosing ``PmtInfId`` for pain.001 rows, and
    ``requested_date`` its ``ReqdExctnDt`` (``YYYY-MM-DD``) when it has one.
    """

    line: int
    values: dict[str, str]
    problems: tuple[RowProblem, ...] = ()
    pmt_inf_id: str | None = None
    requested_date: str | None = None


def empty_values() -> dict[str, str]:
    """Return a fresh values dict with every known column set to ""."""
    return _EMPTY_VALUES.copy()


@dataclass(slots=True, frozen=True)
class HeaderMap:
    """Where each known column sits in a header row (0-based positions)."""

    positions: tuple[tuple[str, int], ...]
    width: int
    unnamed: tuple[int, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.positions)


# Chinese column headers, as Chinese payroll and supplier files name them, read like the English
# ones (the dashboard's Chinese template uses the first name of each column).
HEADER_ALIASES: dict[str, str] = {
    "参考号": "reference",
    "业务参考号": "reference",
    "金额": "amount",
    "币种": "currency",
    "支付方式": "method",
    "收款人姓名": "beneficiary_name",
    "收款人": "beneficiary_name",
    "收款账号": "beneficiary_account",
    "收款人账号": "beneficiary_account",
    "邮箱": "beneficiary_email",
    "收款人邮箱": "beneficiary_email",
    "手机号": "beneficiary_phone",
    "收款人手机号": "beneficiary_phone",
    "备注": "description",
    "用途": "description",
}


# Values a Chinese file writes in words: the method's and the currency's Chinese names.
METHOD_ALIASES: dict[str, str] = {
    "银行卡": "card",
    "支付宝": "alipay",
    "微信支付": "wechat_pay",
    "微信": "wechat_pay",
    "银行转账": "bank_transfer",
}
CURRENCY_ALIASES: dict[str, str] = {
    "人民币": "CNY",
    "美元": "USD",
    "欧元": "EUR",
    "日元": "JPY",
    "港币": "HKD",
    "港元": "HKD",
    "英镑": "GBP",
}


def apply_value_aliases(values: dict[str, str]) -> dict[str, str]:
    """Replace a Chinese method or currency name by its code, in place; return `values`."""
    method = METHOD_ALIASES.get(values["method"])
    if method is not None:
        values["method"] = method
    currency = CURRENCY_ALIASES.get(values["currency"])
    if currency is not None:
        values["currency"] = currency
    return values


def normalize_header_name(name: str) -> str:
    """Return the column a header cell names: stripped, lower case, Chinese names mapped."""
    name = name.replace("\ufeff", "").strip().lower()
    return HEADER_ALIASES.get(name, name)


def map_header(cells: Sequence[str], *, line: int) -> HeaderMap:
    """Map header cells to known columns, or raise FormatError.

    Names are compared case-insensitively after stripping. Empty header cells
    are allowed (spreadsheets often carry trailing empty columns) but values
    under them are reported as row problems. Unknown, duplicate or missing
    required columns reject the file.
    """
    positions: list[tuple[str, int]] = []
    unnamed: list[int] = []
    seen: set[str] = set()
    unknown: list[str] = []
    duplicate: list[str] = []
    for index, raw in enumerate(cells):
        name = normalize_header_name(raw)
        if not name:
            unnamed.append(index)
        elif name not in _EMPTY_VALUES:
            unknown.append(raw.strip())
        elif name in seen:
            duplicate.append(name)
        else:
            seen.add(name)
            positions.append((name, index))
    if unknown:
        raise FormatError(
            "unknown_columns",
            "Unknown column(s): {}. Allowed columns: {}.".format(", ".join(unknown), ", ".join(ALL_COLUMNS)),
            line=line,
            column=", ".join(unknown),
        )
    if duplicate:
        raise FormatError(
            "duplicate_columns",
            "Column(s) appear more than once: {}.".format(", ".join(duplicate)),
            line=line,
            column=", ".join(duplicate),
        )
    missing = [name for name in REQUIRED_COLUMNS if name not in seen]
    if missing:
        raise FormatError(
            "missing_columns",
            "Missing required column(s): {}.".format(", ".join(missing)),
            line=line,
            column=", ".join(missing),
        )
    # Trailing unnamed cells only matter if a row has values under them.
    last_named = max(index for _, index in positions)
    return HeaderMap(
        positions=tuple(positions),
        width=last_named + 1,
        unnamed=tuple(i for i in unnamed if i <= last_named),
    )


class BaseReader:
    """A single-pass reader of one batch file.

    Iterate it once to get ``RawRow`` objects. Iteration may raise
    ``FormatError`` at any point (for pain.001, control totals are only known
    at the end): callers must then treat the whole file as rejected. Close it
    (or use it as a context manager) to release temporary files.
    """

    format: str = ""
    #: Detected text encoding (CSV only).
    encoding: str | None = None
    #: pain.001 group header values.
    msg_id: str | None = None
    nb_of_txs: int | None = None
    ctrl_sum: Decimal | None = None
    #: pain.001 message version, e.g. "pain.001.001.03".
    version: str | None = None

    def __init__(self) -> None:
        self._started = False
        self.columns: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[RawRow]:
        if self._started:
            raise RuntimeError("A batch file reader can be iterated only once.")
        self._started = True
        return self._rows()

    def _rows(self) -> Iterator[RawRow]:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """Release resources held by the reader (temporary files)."""

    def __enter__(self) -> BaseReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
