"""Our own HID report-descriptor parser (USB HID 1.11 §6.2.2): items to plain report fields.

Owns item decoding, global/local state, collections and report layout; nothing device-specific.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum

from drivers.errors import ParseError

# USB HID 1.11 §6.2.2.2: short item prefix = bTag(4) bType(2) bSize(2); 0xFE starts a long item.
LONG_ITEM_PREFIX = 0xFE
_SIZE_CODE = (0, 1, 2, 4)

# §6.2.2.4 Main item tags
TAG_INPUT, TAG_OUTPUT, TAG_FEATURE, TAG_COLLECTION, TAG_END_COLLECTION = 0x8, 0x9, 0xB, 0xA, 0xC
# §6.2.2.7 Global item tags
(
    G_USAGE_PAGE,
    G_LOGICAL_MIN,
    G_LOGICAL_MAX,
    G_PHYSICAL_MIN,
    G_PHYSICAL_MAX,
    G_UNIT_EXPONENT,
    G_UNIT,
    G_REPORT_SIZE,
    G_REPORT_ID,
    G_REPORT_COUNT,
    G_PUSH,
    G_POP,
) = range(12)
# §6.2.2.8 Local item tags
L_USAGE, L_USAGE_MIN, L_USAGE_MAX = 0, 1, 2

# Limits the Linux kernel enforces (drivers/hid/hid-core.c); a descriptor beyond them never
# gets a hidraw node, so refusing it here loses nothing and bounds memory for hostile input.
MAX_REPORT_SIZE_BITS = 256  # hid_parser_global: "invalid report_size"
MAX_REPORT_COUNT = 12288  # HID_MAX_USAGES
MAX_REPORT_BYTES = 16384  # HID_MAX_BUFFER_SIZE, report ID byte included
MAX_REPORT_ID = 255  # report ID 0 is reserved (§6.2.2.7)
# include/linux/hid.h HID_MAX_DESCRIPTOR_SIZE: hid-core refuses longer descriptors, HIDIOCGRDESC
# and sysfs report_descriptor return at most this many bytes. Checked before any parsing:
# a 10 MB descriptor of Usage items took 28 s and 1.2 GB to parse item by item.
MAX_DESCRIPTOR_SIZE = 4096
# Hex text of a descriptor (`seatbox headset describe`): C-array style "0x05, 0x0B, " with
# line breaks takes about 6 characters a byte; 16 a byte leaves room for any layout.
MAX_HEX_TEXT = 16 * MAX_DESCRIPTOR_SIZE


class DescriptorError(ParseError):
    """The descriptor cannot be parsed; `offset` is the byte where the problem is."""

    def __init__(self, offset: int, problem: str) -> None:
        super().__init__(f"byte {offset}: {problem}")
        self.offset = offset
        self.problem = problem


class ReportKind(Enum):
    INPUT = "input"
    OUTPUT = "output"
    FEATURE = "feature"


_KIND_OF_TAG = {TAG_INPUT: ReportKind.INPUT, TAG_OUTPUT: ReportKind.OUTPUT}
_KIND_OF_TAG[TAG_FEATURE] = ReportKind.FEATURE


class CollectionType(Enum):
    """§6.2.2.6 collection types (0x07-0x7F reserved, 0x80-0xFF vendor)."""

    PHYSICAL = 0
    APPLICATION = 1
    LOGICAL = 2
    REPORT = 3
    NAMED_ARRAY = 4
    USAGE_SWITCH = 5
    USAGE_MODIFIER = 6
    OTHER = -1


@dataclass(frozen=True, slots=True)
class MainFlags:
    """§6.2.2.5 Input/Output/Feature item data bits (bit set = the second name)."""

    value: int

    @property
    def constant(self) -> bool:
        return bool(self.value & 0x01)

    @property
    def variable(self) -> bool:
        return bool(self.value & 0x02)

    @property
    def relative(self) -> bool:
        return bool(self.value & 0x04)

    @property
    def no_preferred(self) -> bool:
        return bool(self.value & 0x20)

    @property
    def null_state(self) -> bool:
        return bool(self.value & 0x40)

    def describe(self) -> str:
        return ",".join(
            (
                "Const" if self.constant else "Data",
                "Var" if self.variable else "Arr",
                "Rel" if self.relative else "Abs",
                "NoPref" if self.no_preferred else "Pref",
            )
        )


@dataclass(frozen=True, slots=True)
class Collection:
    """One Collection item: its usage (page << 16 | id), type and where it starts."""

    index: int
    usage: int
    type: CollectionType
    raw_type: int
    offset: int
    parent: int | None  # index of the enclosing collection, None at top level
    top_level: int  # index of the top-level collection this one is in (itself at top)


@dataclass(frozen=True, slots=True)
class UsageRange:
    """Usages first..last inclusive (a single Usage is first == last)."""

    first: int
    last: int

    def __len__(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True, slots=True)
class MainItem:
    """One Input/Output/Feature item: `count` elements of `size` bits from `bit`.

    `bit` counts from the first bit after the report-ID byte (0 when the device uses none).
    Variable items give element i the usage i of `usages` (the last one repeats); array
    items carry indices into `usages` (value - logical_min).
    """

    kind: ReportKind
    report_id: int
    bit: int
    size: int
    count: int
    flags: MainFlags
    logical_min: int
    logical_max: int
    usages: tuple[UsageRange, ...]
    collection: int | None  # innermost enclosing collection index
    offset: int  # byte offset of the item in the descriptor

    @property
    def is_array(self) -> bool:
        return not self.flags.variable

    def usage_count(self) -> int:
        return sum(len(r) for r in self.usages)

    def usage_at(self, index: int) -> int | None:
        """Usage of element/array index `index` (None when the list is empty or too short)."""
        if index < 0:
            return None
        for rng in self.usages:
            if index < len(rng):
                return rng.first + index
            index -= len(rng)
        return None

    def index_of(self, usage: int) -> int | None:
        """First element index whose usage is `usage` (variable items), else None."""
        seen = 0
        for rng in self.usages:
            if rng.first <= usage <= rng.last:
                return seen + usage - rng.first
            seen += len(rng)
        return None

    def elements(self) -> Iterator[tuple[int, int | None]]:
        """(bit, usage) of each element of a variable item, in report order."""
        last = self.usage_count() - 1
        for i in range(self.count):
            usage = self.usage_at(min(i, last)) if last >= 0 else None
            yield self.bit + i * self.size, usage


@dataclass(frozen=True, slots=True)
class ReportDescriptor:
    """A parsed descriptor: main items in order, collections, and each report's length."""

    items: tuple[MainItem, ...]
    collections: tuple[Collection, ...]
    report_bits: dict[tuple[ReportKind, int], int] = field(default_factory=dict)
    uses_report_ids: bool = False

    def top_level(self) -> list[Collection]:
        return [c for c in self.collections if c.parent is None]

    def report_length(self, kind: ReportKind, report_id: int) -> int:
        """Bytes hidapi reads/writes for this report: the report-ID byte (0 when the device
        uses none, still sent on write) plus the data rounded up to whole bytes."""
        bits = self.report_bits.get((kind, report_id), 0)
        return 1 + (bits + 7) // 8

    def top_level_of(self, item: MainItem) -> int | None:
        if item.collection is None:
            return None
        return self.collections[item.collection].top_level


@dataclass(slots=True)
class _Globals:
    usage_page: int = 0
    logical_min: int = 0
    logical_max_raw: int = 0
    logical_max_size: int = 0
    report_size: int = 0
    report_id: int = 0
    report_count: int = 0

    def copy(self) -> _Globals:
        return _Globals(
            self.usage_page,
            self.logical_min,
            self.logical_max_raw,
            self.logical_max_size,
            self.report_size,
            self.report_id,
            self.report_count,
        )


@dataclass(slots=True)
class _Usage:
    value: int
    extended: bool  # 4-byte usage: carries its own page (§6.2.2.8)


@dataclass(slots=True)
class _Locals:
    usages: list[tuple[_Usage, _Usage]] = field(default_factory=list)  # (first, last)
    usage_min: _Usage | None = None
    usage_max: _Usage | None = None


def _signed(value: int, size: int) -> int:
    if size == 0:
        return 0
    bits = size * 8
    return value - (1 << bits) if value & (1 << (bits - 1)) else value


def _complete(usage: _Usage, page: int) -> int:
    return usage.value if usage.extended else (page << 16) | (usage.value & 0xFFFF)


def _resolve_usages(local: _Locals, page: int) -> tuple[UsageRange, ...]:
    """Usage ranges of a main item in declaration order.

    A 1-2 byte usage takes the Usage Page current when it was declared: Jabra and EPOS
    declare Programmable Button (0x0B:0x07) and then switch to the Button page for the
    item itself, and the usage they mean is the Telephony one. A usage declared before any
    Usage Page takes the page current at the Main item. (The Linux kernel and hid-tools
    re-page trailing usages to the last Usage Page instead; see docs/headsets.md.)
    """
    entries = list(local.usages)
    if local.usage_min is not None and local.usage_max is not None:
        entries.append((local.usage_min, local.usage_max))
    result: list[UsageRange] = []
    for first, last in entries:
        lo, hi = first.value, last.value
        if not first.extended and lo >> 16 == 0:
            lo |= page << 16
        if not last.extended and hi >> 16 == 0:
            hi |= page << 16
        if first.extended != last.extended:
            # Mixed sizes in one range: the short end takes the long end's page.
            base = (lo if first.extended else hi) & 0xFFFF0000
            lo, hi = base | (lo & 0xFFFF), base | (hi & 0xFFFF)
        if hi < lo:
            lo, hi = hi, lo
        result.append(UsageRange(lo, hi))
    return tuple(result)


def parse_descriptor(data: bytes) -> ReportDescriptor:
    """Parse a report descriptor; raise DescriptorError naming the byte and the problem."""
    if len(data) > MAX_DESCRIPTOR_SIZE:
        raise DescriptorError(
            MAX_DESCRIPTOR_SIZE,
            f"the descriptor is {len(data)} bytes long, over the kernel's limit of "
            f"{MAX_DESCRIPTOR_SIZE} (HID_MAX_DESCRIPTOR_SIZE): no USB device can have it",
        )
    globals_ = _Globals()
    stack: list[_Globals] = []
    local = _Locals()
    items: list[MainItem] = []
    collections: list[Collection] = []
    open_collections: list[int] = []
    report_bits: dict[tuple[ReportKind, int], int] = {}
    uses_ids = False
    pos = 0
    end = len(data)
    while pos < end:
        start = pos
        prefix = data[pos]
        if prefix == LONG_ITEM_PREFIX:
            # §6.2.2.3: long items carry no defined tags; skip their data.
            if pos + 3 > end:
                raise DescriptorError(start, "long item header runs past the end")
            size = data[pos + 1]
            pos += 3 + size
            if pos > end:
                raise DescriptorError(start, f"long item of {size} data bytes runs past the end")
            continue
        size = _SIZE_CODE[prefix & 0x3]
        item_type = (prefix >> 2) & 0x3
        tag = prefix >> 4
        if pos + 1 + size > end:
            raise DescriptorError(
                start, f"item 0x{prefix:02x} needs {size} data bytes, {end - pos - 1} left"
            )
        value = int.from_bytes(data[pos + 1 : pos + 1 + size], "little")
        pos += 1 + size

        if item_type == 0:  # Main
            if tag in _KIND_OF_TAG:
                kind = _KIND_OF_TAG[tag]
                g = globals_
                if g.report_size > MAX_REPORT_SIZE_BITS:
                    raise DescriptorError(
                        start, f"Report Size {g.report_size} bits exceeds {MAX_REPORT_SIZE_BITS}"
                    )
                if g.report_count > MAX_REPORT_COUNT:
                    raise DescriptorError(
                        start, f"Report Count {g.report_count} exceeds {MAX_REPORT_COUNT}"
                    )
                key = (kind, g.report_id)
                offset_bits = report_bits.get(key, 0)
                total = offset_bits + g.report_size * g.report_count
                if 1 + (total + 7) // 8 > MAX_REPORT_BYTES:
                    raise DescriptorError(
                        start,
                        f"{kind.value} report {g.report_id} grows past {MAX_REPORT_BYTES} bytes",
                    )
                report_bits[key] = total
                # HID 1.11 §6.2.2.7: Logical Maximum is signed only when the minimum is
                # negative; `25 FF` with minimum 0 means 255 in practice (kernel does this).
                lmax = (
                    _signed(g.logical_max_raw, g.logical_max_size)
                    if g.logical_min < 0
                    else g.logical_max_raw
                )
                items.append(
                    MainItem(
                        kind=kind,
                        report_id=g.report_id,
                        bit=offset_bits,
                        size=g.report_size,
                        count=g.report_count,
                        flags=MainFlags(value),
                        logical_min=g.logical_min,
                        logical_max=lmax,
                        usages=_resolve_usages(local, g.usage_page),
                        collection=open_collections[-1] if open_collections else None,
                        offset=start,
                    )
                )
            elif tag == TAG_COLLECTION:
                usages = _resolve_usages(local, globals_.usage_page)
                usage = usages[0].first if usages else 0
                index = len(collections)
                parent = open_collections[-1] if open_collections else None
                try:
                    ctype = CollectionType(value) if value <= 6 else CollectionType.OTHER
                except ValueError:
                    ctype = CollectionType.OTHER
                collections.append(
                    Collection(
                        index=index,
                        usage=usage,
                        type=ctype,
                        raw_type=value,
                        offset=start,
                        parent=parent,
                        top_level=index if parent is None else collections[parent].top_level,
                    )
                )
                open_collections.append(index)
            elif tag == TAG_END_COLLECTION:
                if not open_collections:
                    raise DescriptorError(start, "End Collection without an open Collection")
                open_collections.pop()
            else:
                raise DescriptorError(start, f"unknown Main item tag 0x{tag:x}")
            local = _Locals()  # §6.2.2.8: local items apply to the next Main item only
        elif item_type == 1:  # Global
            if tag == G_USAGE_PAGE:
                globals_.usage_page = value & 0xFFFF
            elif tag == G_LOGICAL_MIN:
                globals_.logical_min = _signed(value, size)
            elif tag == G_LOGICAL_MAX:
                globals_.logical_max_raw = value
                globals_.logical_max_size = size
            elif tag == G_REPORT_SIZE:
                globals_.report_size = value
            elif tag == G_REPORT_ID:
                if value == 0 or value > MAX_REPORT_ID:
                    raise DescriptorError(
                        start, f"Report ID {value} is invalid (expected 1 to {MAX_REPORT_ID})"
                    )
                globals_.report_id = value
                uses_ids = True
            elif tag == G_REPORT_COUNT:
                globals_.report_count = value
            elif tag == G_PUSH:
                stack.append(globals_.copy())
            elif tag == G_POP:
                if not stack:
                    raise DescriptorError(start, "Pop without a matching Push")
                globals_ = stack.pop()
            # Physical min/max, Unit, Unit Exponent and reserved tags do not affect layout.
        elif item_type == 2:  # Local
            if tag == L_USAGE:
                declared = _Usage(
                    value if size == 4 else (globals_.usage_page << 16) | value, size == 4
                )
                local.usages.append((declared, declared))
            elif tag == L_USAGE_MIN:
                local.usage_min = _Usage(
                    value if size == 4 else (globals_.usage_page << 16) | value, size == 4
                )
            elif tag == L_USAGE_MAX:
                local.usage_max = _Usage(
                    value if size == 4 else (globals_.usage_page << 16) | value, size == 4
                )
            # Designators, strings and delimiters do not affect the layout.
        else:
            raise DescriptorError(start, f"reserved item type 3 in prefix 0x{prefix:02x}")
    if open_collections:
        where = collections[open_collections[-1]].offset
        raise DescriptorError(end, f"Collection opened at byte {where} is never closed")
    return ReportDescriptor(
        items=tuple(items),
        collections=tuple(collections),
        report_bits=report_bits,
        uses_report_ids=uses_ids,
    )


def parse_hex(text: str) -> bytes:
    """Descriptor bytes from hex text: one line or several, spaces, commas and 0x allowed."""
    if len(text) > MAX_HEX_TEXT:
        raise DescriptorError(
            0,
            f"hex text of {len(text)} characters is over the limit of {MAX_HEX_TEXT}: a "
            f"report descriptor is at most {MAX_DESCRIPTOR_SIZE} bytes (the kernel's "
            "HID_MAX_DESCRIPTOR_SIZE)",
        )
    cleaned = text.replace(",", " ").replace("0x", " ").replace("0X", " ")
    digits = "".join(cleaned.split())
    for i, ch in enumerate(digits):
        if ch not in "0123456789abcdefABCDEF":
            raise DescriptorError(i // 2, f"not a hex digit: {ch!r}")
    if len(digits) % 2:
        raise DescriptorError(len(digits) // 2, "odd number of hex digits (a byte is cut)")
    return bytes.fromhex(digits)
