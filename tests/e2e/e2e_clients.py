"""The modern client of the pod-level end-to-end test (official PyPI ``mcp`` 2.3.0).

Reuses the fixture generator's JSON-lines logger and step helpers
(``tests/fixtures/gen/clients.py``); the legacy clients are the generator's own
(``clients.py --scenario legacy-py`` and ``legacy_ts.mjs``).

Scenario ``modern-kill`` (``Client()`` in auto mode, through the non-sticky proxy):

1. ``server/discover`` (auto mode) and ``tools/list`` while every pod is up.
2. ``create_basket``: the handle is minted on pod X (the pod name is part of the id,
   ``bsk-<pod>-NNN-xxxxxxxx``). The client writes ``<ctl>/minted`` (JSON: basket, instance)
   and waits for ``<ctl>/killed``: the test SIGKILLs pod X's server meanwhile.
3. ``add_item`` with that basket ``--calls`` times while X is down: the proxy sends every
   third request to the dead pod (502 from nginx, no HTTP reaches the pod), the others land
   on the surviving pods, which do not know the basket (tool error, ``isError: true``).
   Then ``<ctl>/outage_done``; waits for ``<ctl>/restarted`` (X is back, with empty memory).
4. ``add_item`` with the same basket ``--calls`` times again: the other pods still fail it,
   and so does the restarted X (its memory is gone; a failure on the minting instance).
5. A second basket, used on whichever pods the proxy picks, then ``checkout``.

Every call is logged with its outcome. For each handle use the client also logs
``minted_on`` (from the basket id) and ``served_by``: the pod that answered, known from the
result (a successful ``add_item`` can only have run where the basket lives; a tool error
names its instance: ``unknown basket_id ... on pod-b``), or ``null`` when no pod answered
(``proxy_error``: the proxy's 502 while X was down). That log, never the capture, is the
ground truth of ``check.py``.

Usage: e2e_clients.py --url http://10.78.0.10:8080/mcp --log clients.jsonl --name modern-py --ctl DIR
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

GEN = Path(__file__).resolve().parent.parent / "fixtures" / "gen"
sys.path.insert(0, str(GEN))

from clients import Log, _exc, _result  # noqa: E402  (the generator's helpers)
from mcp.client.client import Client  # noqa: E402
from mcp.types import Implementation  # noqa: E402

BASKET_RE = re.compile(r"^bsk-(pod-[a-z0-9]+)-\d+-[0-9a-f]+$")
ON_RE = re.compile(r"unknown basket_id \S+ on (pod-[a-z0-9]+)")


def minted_on(basket: str) -> str | None:
    """The pod that minted a basket, from its id (``bsk-pod-a-001-…`` → ``pod-a``)."""
    m = BASKET_RE.match(basket)
    return m.group(1) if m else None


async def wait_for(path: Path, timeout: float) -> None:
    """Wait until the test's control file exists."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"control file {path} did not appear within {timeout}s")
        await asyncio.sleep(0.05)


async def use_handle(log: Log, c: Client, tool: str, args: dict[str, Any], basket: str, phase: str) -> None:
    """Call a tool with a basket handle and log who answered and how."""
    t0 = time.time_ns()
    rec: dict[str, Any] = {"handle": {"basket_id": basket}, "minted_on": minted_on(basket), "phase": phase}
    try:
        r = await c.call_tool(tool, args)
    except Exception as e:  # noqa: BLE001  (the proxy's 502 surfaces as an exception)
        log(f"tools/call {tool}", t_start_ns=t0, served_by=None, outcome="proxy_error", **rec, **_exc(e))
        return
    out = _result(r)
    if out.get("is_error"):
        m = ON_RE.search(out.get("text", ""))
        served_by = m.group(1) if m else None
        outcome = "tool_error"
    else:
        served_by = rec["minted_on"]
        outcome = "ok"
    log(f"tools/call {tool}", t_start_ns=t0, served_by=served_by, outcome=outcome, **rec, **out)


async def modern_kill(url: str, log_path: str, name: str, ctl: Path, calls: int) -> None:
    log = Log(log_path, name, "modern-py")
    log("connect", url=url, mode="auto")
    async with Client(url, client_info=Implementation(name=name, version="2.3.0"), read_timeout_seconds=20) as c:
        log("negotiated", protocol_version=c.protocol_version)
        r = await c.list_tools()
        log("tools/list", ok=True, tools=[t.name for t in r.tools])
        r = await c.call_tool("create_basket", {})
        basket = (r.structured_content or {}).get("basket_id", "missing")
        log("tools/call create_basket", ok=not r.is_error, minted=basket, minted_on=minted_on(basket), phase="mint")
        (ctl / "minted.tmp").write_text(json.dumps({"basket_id": basket, "instance": minted_on(basket)}))
        os.replace(ctl / "minted.tmp", ctl / "minted")
        await wait_for(ctl / "killed", 60)
        for i in range(calls):
            await use_handle(log, c, "add_item", {"basket_id": basket, "item": f"down-{i}"}, basket, "outage")
        (ctl / "outage_done").touch()
        await wait_for(ctl / "restarted", 60)
        for i in range(calls):
            await use_handle(log, c, "add_item", {"basket_id": basket, "item": f"back-{i}"}, basket, "restarted")
        r = await c.call_tool("create_basket", {})
        basket2 = (r.structured_content or {}).get("basket_id", "missing")
        log("tools/call create_basket", ok=not r.is_error, minted=basket2, minted_on=minted_on(basket2), phase="mint")
        for i in range(2):
            await use_handle(log, c, "add_item", {"basket_id": basket2, "item": f"two-{i}"}, basket2, "second")
        await use_handle(log, c, "checkout", {"basket_id": basket2}, basket2, "second")
    log("closed")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--name", default="modern-py")
    ap.add_argument("--ctl", required=True, help="directory of the control files shared with run.sh")
    ap.add_argument("--calls", type=int, default=6, help="add_item calls per phase")
    a = ap.parse_args()
    asyncio.run(modern_kill(a.url, a.log, a.name, Path(a.ctl), a.calls))


if __name__ == "__main__":
    main()
