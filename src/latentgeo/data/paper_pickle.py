"""Read the paper's sequence file (a pickle) without unpickling it.

The paper's 5,000 latent-sample sequences are published as ``VM_transfer/sample_sequences.pkl``
in the authors' repository: a pickled collection of strings. ``pickle.load`` would execute
whatever the file asks for (a ``GLOBAL`` + ``REDUCE`` pair calls any importable function), so
this module never calls it. Instead :func:`read_string_collection` walks the opcodes with
:func:`pickletools.genops` (which only decodes, never executes) and simulates the few that can
build a flat list or set of strings:

* the protocol header (``PROTO``) and frame markers (``FRAME``, protocol 4+);
* one container, created first: ``EMPTY_LIST``, ``EMPTY_SET``, or ``MARK`` + ``LIST``
  (protocols 0–1);
* strings: ``SHORT_BINUNICODE``, ``BINUNICODE``, ``BINUNICODE8``, ``UNICODE``;
* memo writes (``PUT``, ``BINPUT``, ``LONG_BINPUT``, ``MEMOIZE``) and reads (``GET``,
  ``BINGET``, ``LONG_BINGET``) of strings;
* ``MARK`` + ``APPENDS`` / ``APPEND`` into the list, ``MARK`` + ``ADDITEMS`` into the set;
* ``STOP``, as the last byte, with exactly the container left on the stack.

Anything else (``GLOBAL``/``STACK_GLOBAL``, ``REDUCE``, ``BUILD``, numbers, bytes, dicts, a
second or nested container, a memo read of the container itself, trailing bytes, a truncated
file) is refused with a :class:`~latentgeo.errors.LatentgeoError` naming the opcode and its byte
position. A set pickled at protocol 2 or 3 is refused too: those protocols write a set as a
call of ``builtins.set`` (``GLOBAL`` + ``REDUCE``).

The published file is a **set** (protocol 4: ``EMPTY_SET`` + ``ADDITEMS``). The paper's code
iterated the unpickled set, whose order depends on the string-hash seed of the Python process
(``PYTHONHASHSEED``), so each of its runs saw the sequences in a different order; we keep the
order in which the strings are written in the file, which is fixed.
"""

from __future__ import annotations

import hashlib
import pickletools
from dataclasses import dataclass

from latentgeo.errors import LatentgeoError

STRING_OPCODES = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"})
MEMO_PUT_OPCODES = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"})
MEMO_GET_OPCODES = frozenset({"GET", "BINGET", "LONG_BINGET"})
ALLOWED = "a flat list or set of strings"


@dataclass(frozen=True)
class StringCollection:
    """What a string pickle holds: ``container`` (``"list"`` or ``"set"``), the strings in file
    order (a set's duplicates dropped, as unpickling would), and the pickle ``protocol``
    (0 when the file has no ``PROTO`` header)."""

    container: str
    strings: tuple[str, ...]
    protocol: int


class _Container:
    """The one list or set being built (a stack entry distinct from the strings)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.items: list[str] = []


_MARK = object()  # a MARK on the simulated stack


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def check_sha256(data: bytes, expected: str, what: str) -> None:
    """Refuse ``data`` unless its SHA-256 is ``expected`` (hex, case-insensitive)."""
    actual = sha256_hex(data)
    if actual != expected.lower():
        raise LatentgeoError(
            f"{what}: sha256 {actual} ({len(data):,} bytes) does not match the pinned "
            f"{expected.lower()}; refusing to use it"
        )


def _pop_to_mark(stack: list, refuse) -> list:
    """The entries above the topmost MARK (removed from ``stack`` together with the MARK)."""
    for k in range(len(stack) - 1, -1, -1):
        if stack[k] is _MARK:
            items = stack[k + 1:]
            del stack[k:]
            return items
    refuse("has no MARK before it")
    raise AssertionError  # unreachable: refuse raises


def _only_strings(items: list, refuse) -> list[str]:
    if not all(isinstance(x, str) for x in items):
        refuse("would add something other than a string")
    return items


def read_string_collection(data: bytes, what: str = "pickle") -> StringCollection:
    """The strings of a pickled flat list or set of strings, read without unpickling.

    ``what`` names the file in messages. Raises :class:`LatentgeoError` naming the first opcode
    (and its byte offset) that a flat list or set of non-blank strings cannot contain, or the
    point where the file is truncated or malformed.
    """
    stack: list = []
    memo: dict[int, object] = {}
    container: _Container | None = None
    protocol = 0
    end = None
    try:
        for index, (op, arg, pos) in enumerate(pickletools.genops(data)):
            name = op.name

            def refuse(why: str, name: str = name, pos: int = pos) -> None:
                raise LatentgeoError(f"{what}: opcode {name} at byte {pos} {why}; only {ALLOWED} is accepted")

            if name == "PROTO":
                if index != 0:
                    refuse("(the protocol header) is not at the start")
                protocol = int(arg)
            elif name == "FRAME":
                continue
            elif name in ("EMPTY_LIST", "EMPTY_SET"):
                if container is not None or stack:
                    refuse("would create a second or nested container")
                container = _Container("list" if name == "EMPTY_LIST" else "set")
                stack.append(container)
            elif name == "LIST":  # protocols 0-1: MARK, LIST makes a list of what follows the mark
                items = _only_strings(_pop_to_mark(stack, refuse), refuse)
                if container is not None or stack:
                    refuse("would create a second or nested container")
                container = _Container("list")
                container.items.extend(items)
                stack.append(container)
            elif name == "MARK":
                stack.append(_MARK)
            elif name in STRING_OPCODES:
                if not str(arg).strip():
                    refuse("holds a blank string (a sequence must have text)")
                stack.append(str(arg))
            elif name in MEMO_PUT_OPCODES:
                if not stack or stack[-1] is _MARK:
                    refuse("has nothing to store")
                memo[len(memo) if name == "MEMOIZE" else int(arg)] = stack[-1]
            elif name in MEMO_GET_OPCODES:
                if int(arg) not in memo:
                    refuse(f"reads memo entry {arg}, which was never written")
                if not isinstance(memo[int(arg)], str):
                    refuse("refers back to the container (a self-reference)")
                stack.append(memo[int(arg)])
            elif name == "APPEND":
                if len(stack) < 2 or not isinstance(stack[-1], str):
                    refuse("would append something other than a string")
                if not (isinstance(stack[-2], _Container) and stack[-2].kind == "list"):
                    refuse("appends to something other than the list")
                stack[-2].items.append(stack.pop())
            elif name in ("APPENDS", "ADDITEMS"):
                items = _only_strings(_pop_to_mark(stack, refuse), refuse)
                kind = "list" if name == "APPENDS" else "set"
                if not stack or not (isinstance(stack[-1], _Container) and stack[-1].kind == kind):
                    refuse(f"adds items to something other than the {kind}")
                stack[-1].items.extend(items)
            elif name == "STOP":
                if container is None or len(stack) != 1 or stack[0] is not container:
                    refuse("ends a pickle whose result is not a single list or set")
                end = pos + 1
            else:
                refuse("is not allowed")
    except ValueError as err:  # genops: truncated data, unknown opcode, undecodable text
        raise LatentgeoError(f"{what} is truncated or malformed: {err}") from None
    if end is None or container is None:  # pragma: no cover - genops raises before this
        raise LatentgeoError(f"{what} is truncated: no STOP opcode")
    if end != len(data):
        raise LatentgeoError(f"{what}: {len(data) - end} bytes follow the STOP opcode at byte {end - 1}")
    strings = container.items if container.kind == "list" else list(dict.fromkeys(container.items))
    if not strings:
        raise LatentgeoError(f"{what} holds an empty {container.kind}: no sequences")
    return StringCollection(container.kind, tuple(strings), protocol)
