"""Ask a Kafka broker which protocol versions it speaks (ApiVersions v0, by hand).

Kafka 4.0 removed old protocol versions (KIP-896): its broker accepts Fetch from version
4 and OffsetCommit from version 2 only, where every 3.x broker still accepted version 0.
So the answer tells a 4.x broker from an older one without trusting any file on disk.
"""

from __future__ import annotations

import asyncio
import struct

API_VERSIONS = 18
FETCH = 1
OFFSET_COMMIT = 8


async def api_versions(host: str, port: int) -> dict[int, tuple[int, int]]:
    """API key → (min version, max version) as the broker reports them."""
    client_id = b"yixian-probe"
    body = struct.pack(">hhih", API_VERSIONS, 0, 1, len(client_id)) + client_id
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(struct.pack(">i", len(body)) + body)
            await writer.drain()
            (size,) = struct.unpack(">i", await reader.readexactly(4))
            payload = await reader.readexactly(size)
        finally:
            writer.close()
    correlation_id, error_code, count = struct.unpack_from(">ihi", payload, 0)
    if correlation_id != 1 or error_code != 0:
        raise RuntimeError(f"ApiVersions failed: correlation {correlation_id}, error {error_code}")
    versions = {}
    for i in range(count):
        key, low, high = struct.unpack_from(">hhh", payload, 10 + 6 * i)
        versions[key] = (low, high)
    return versions
