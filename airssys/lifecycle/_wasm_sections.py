"""The outer layer of a WebAssembly binary: its preamble and its sections.

Modules and Component Model binaries share this shape: an 8-byte preamble (the
magic ``\\0asm``, then a version and a layer: ``01 00 00 00`` for a core module,
``0d 00 01 00`` today for a component), then sections, each an id byte, a LEB128
``varuint32`` size and that many bytes of payload. A custom section (id 0) starts
its payload with a name (LEB128 length and UTF-8 bytes). Nothing inside a section
is interpreted here: signing needs only the section boundaries.

:func:`parse` reads the sections without copying them; :func:`encode_section`
writes one in the minimal (canonical) encoding, as wasmsign2 does when it writes a
signed module. Malformed bytes raise :class:`~airssys.errors.ComponentLoadError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ..codec import _varint
from ..errors import ComponentLoadError

__all__ = (
    "CUSTOM",
    "MAGIC",
    "Section",
    "custom_section",
    "encode_section",
    "encode_varuint",
    "parse",
    "read_varuint32",
)

MAGIC: Final = b"\x00asm"
CUSTOM: Final = 0
PREAMBLE: Final = 8
_MODULE_VERSION: Final = b"\x01\x00\x00\x00"
_COMPONENT_LAYER: Final = b"\x01\x00"


@dataclass(frozen=True, slots=True)
class Section:
    """One section of ``data``: ``data[start:end]`` is the whole section (id, size,
    payload); ``data[payload_start:end]`` its payload. For a custom section ``name``
    is its name and ``data[content_start:end]`` what follows the name."""

    id: int
    start: int
    payload_start: int
    end: int
    name: str | None = None
    content_start: int = 0

    @property
    def is_custom(self) -> bool:
        return self.id == CUSTOM

    def raw(self, data: bytes | memoryview) -> bytes:
        """The section exactly as stored."""
        return bytes(data[self.start : self.end])

    def payload(self, data: bytes | memoryview) -> bytes:
        return bytes(data[self.payload_start : self.end])

    def content(self, data: bytes | memoryview) -> bytes:
        """A custom section's bytes after its name (a standard section's payload)."""
        return bytes(
            data[(self.content_start if self.is_custom else self.payload_start) : self.end]
        )

    def canonical(self, data: bytes | memoryview) -> bytes:
        """The section re-encoded with minimal LEB128 sizes (wasmsign2's encoding)."""
        if self.name is not None:
            return custom_section(self.name, self.content(data))
        return encode_section(self.id, self.payload(data))


def read_varuint32(data: bytes | memoryview, pos: int, what: str = "a size") -> tuple[int, int]:
    """A LEB128 ``varuint32`` at ``pos``: (value, position after it)."""
    value = 0
    for i in range(5):
        if pos + i >= len(data):
            raise ComponentLoadError(
                f"truncated WebAssembly binary: {what} at byte {pos} is cut off"
            )
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if i == 4 and byte > 0x0F:
                break
            return value, pos + i + 1
    raise ComponentLoadError(
        f"malformed WebAssembly binary: {what} at byte {pos} is not a varuint32"
    )


def encode_varuint(value: int) -> bytes:
    """``value`` (non-negative) as minimal unsigned LEB128 (the multicodec varint)."""
    if value < 0:
        raise ValueError(f"cannot encode a negative varuint: {value}")
    return _varint(value)


def encode_section(section_id: int, payload: bytes) -> bytes:
    return bytes([section_id]) + encode_varuint(len(payload)) + payload


def custom_section(name: str, content: bytes) -> bytes:
    raw_name = name.encode()
    return encode_section(CUSTOM, encode_varuint(len(raw_name)) + raw_name + content)


def check_preamble(data: bytes | memoryview) -> bytes:
    """The 8-byte preamble of a core module or a component; raises if it is neither."""
    if len(data) < PREAMBLE or bytes(data[:4]) != MAGIC:
        raise ComponentLoadError("not a WebAssembly binary (no \\0asm magic)")
    preamble = bytes(data[:PREAMBLE])
    if preamble[4:] != _MODULE_VERSION and preamble[6:] != _COMPONENT_LAYER:
        raise ComponentLoadError(
            f"unsupported WebAssembly version/layer {preamble[4:].hex(' ')}: neither a core "
            "module (01 00 00 00) nor a component (layer 01 00)"
        )
    return preamble


def parse(data: bytes | memoryview) -> tuple[bytes, list[Section]]:
    """The preamble and every section of a module or component, in order."""
    preamble = check_preamble(data)
    sections: list[Section] = []
    pos = PREAMBLE
    while pos < len(data):
        start = pos
        section_id = data[pos]
        if section_id & 0x80:  # wasmsign2 reads the id as a one-byte varint
            raise ComponentLoadError(f"malformed WebAssembly binary: section id {section_id:#x}")
        size, payload_start = read_varuint32(data, pos + 1, "a section size")
        end = payload_start + size
        if end > len(data):
            raise ComponentLoadError(
                f"truncated WebAssembly binary: the section at byte {start} claims {size} "
                f"bytes, {len(data) - payload_start} remain"
            )
        if section_id == CUSTOM:
            name_len, name_start = read_varuint32(data, payload_start, "a custom section name")
            content_start = name_start + name_len
            if content_start > end:
                raise ComponentLoadError(
                    f"malformed WebAssembly binary: the custom section name at byte {start} "
                    "runs past its section"
                )
            try:
                name = bytes(data[name_start:content_start]).decode()
            except UnicodeDecodeError:
                raise ComponentLoadError(
                    f"malformed WebAssembly binary: the custom section name at byte {start} "
                    "is not UTF-8"
                ) from None
            sections.append(Section(section_id, start, payload_start, end, name, content_start))
        else:
            sections.append(Section(section_id, start, payload_start, end))
        pos = end
    return preamble, sections
