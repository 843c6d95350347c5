"""Control variables of a partial correlation: ``COL``, ``log(COL)`` or ``log1p(COL)``.

Kept free of heavy imports so the profile schema (:mod:`latentgeo.config.schema`) can check a control
expression as fast as any other key. Used by :mod:`latentgeo.analysis.regression`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from latentgeo.errors import LatentgeoError

CONTROL_FORMS = "COL, log(COL) or log1p(COL)"
_FUNCTION_FORM = re.compile(r"^(log1p|log)\((.*)\)$")


@dataclass(frozen=True)
class Control:
    """One control variable: ``transform`` ("" for none, "log", "log1p") of ``column``.

    ``expr`` is the canonical spelling (``log(alpha)``), the key under which results are reported.
    """

    expr: str
    column: str
    transform: str = ""

    def apply(self, values):
        """The transformed values (a pandas Series or numpy array; missing stays missing). The
        domain (log: > 0, log1p: > −1) is checked by the caller, with the row named."""
        if self.transform == "log":
            return np.log(values)
        if self.transform == "log1p":
            return np.log1p(values)
        return values


def parse_control(expr: str) -> Control:
    """Parse ``COL``, ``log(COL)`` or ``log1p(COL)``; anything else raises :class:`LatentgeoError`.

    A column name may hold any character but parentheses (``a-patchiness``, ``score average``);
    spaces around it are ignored.
    """
    text = str(expr).strip()
    match = _FUNCTION_FORM.match(text)
    if match:
        function, column = match.group(1), match.group(2).strip()
        if column and "(" not in column and ")" not in column:
            return Control(expr=f"{function}({column})", column=column, transform=function)
    elif text and "(" not in text and ")" not in text:
        return Control(expr=text, column=text)
    raise LatentgeoError(f"cannot parse control {expr!r}; allowed forms: {CONTROL_FORMS}")
