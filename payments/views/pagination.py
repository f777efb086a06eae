"""Page numbers over tables of millions of rows.

Django's Paginator counts the whole result (`SELECT COUNT(*)`) on every page
and fetches a page with `OFFSET`, dragging every skipped row (and its joins)
through the executor. Over a merchant's 10^6 payments both grow with the
table. `WindowPaginator` keeps the same page-number URLs and the same `Page`
API, but:

- counts at most `count_ahead` (+1) rows past the start of the requested page:
  the count, and so the number of pages, is exact when the result ends within
  that window, and a lower bound otherwise (`count_is_exact` is False; the
  pagination bar shows "1 / 401+"); "Next" is right either way;
- fetches a page past the first as its primary keys (an index-only walk of
  the ordering index, without the page's joins) and then those rows.

A page number past the end still lands on the last page, as with Django's
Paginator: that request counts exactly, since the window then holds the end.
The counting window is computed from the page number clamped to MAX_PAGE, so
`?page=99999999999999999999` lands on the last page too instead of sending a
LIMIT beyond PostgreSQL's bigint (a 500).
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.utils.functional import cached_property

from payments.selectors import count_at_most


class WindowPaginator(Paginator):
    """A Paginator (of an ordered QuerySet) whose count stops `count_ahead` rows past the requested page."""

    count_ahead = 10_000
    # 25 million rows at 25 a page: more than any merchant's list, far below a bigint LIMIT.
    max_page = 1_000_000

    def __init__(self, object_list, per_page, orphans: int = 0, allow_empty_first_page: bool = True) -> None:
        super().__init__(object_list, per_page, orphans, allow_empty_first_page)
        self._requested = 1
        self.count_is_exact = True

    def validate_number(self, number):
        if "count" not in self.__dict__:
            # The first page asked for sets the counting window.
            try:
                self._requested = min(max(1, int(number)), self.max_page)
            except (TypeError, ValueError):
                pass
        return super().validate_number(number)

    @cached_property
    def count(self) -> int:
        window = (self._requested - 1) * self.per_page + max(self.count_ahead, self.per_page + self.orphans)
        # COUNT(*) over `SELECT id ... LIMIT window + 1`: at most window + 1 index entries are read.
        found = count_at_most(self.object_list, window + 1)
        # window + 1 found: there are at least that many, so the page after the requested one exists.
        self.count_is_exact = found <= window
        return found

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if self.count_is_exact and top + self.orphans >= self.count:
            top = self.count
        if bottom == 0:
            return self._get_page(list(self.object_list[bottom:top]), number, self)
        ids = list(self.object_list.values_list("pk", flat=True)[bottom:top])
        return self._get_page(list(self.object_list.filter(pk__in=ids)), number, self)
