"""Cross-language peersockets: a Python peer and a Node peer (peersockets_node.js) meet on one
topic of a local testnet and exchange messages on the peersockets topic "chat" — Python's
``swarmplex.peersockets`` and Node's ``swarmplex/peersockets`` speak the same messages.

    scripts/netns-run bindings-python/.venv/bin/python examples/cross_language/peersockets.py

Python sends "hello from python" to the Node peer once connected and answers the Node peer's
"hello from node" with a broadcast; passes when each side received the other's messages.
Needs the Node addon (bindings-node), the Python package in this venv, and the CLI's testnet
($SWARMPLEX_CLI, default: the debug build).
"""

import asyncio
import os
import subprocess
import sys

import swarmplex
from swarmplex.peersockets import Peersockets

from run import CLI, HERE


async def main() -> int:
    testnet = subprocess.Popen([CLI, "testnet", "3"], stdout=subprocess.PIPE, text=True)
    first = testnet.stdout.readline().strip()
    bootstrap = first.split("=", 1)[1]
    topic = f"cross-peersockets-{os.getpid()}"
    env = dict(os.environ, SWARMPLEX_BOOTSTRAP=bootstrap, TOPIC=topic)
    node = await asyncio.create_subprocess_exec(
        "node", str(HERE / "peersockets_node.js"), env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    got_from_node: "asyncio.Queue[bytes]" = asyncio.Queue()
    try:
        async with swarmplex.Swarm(bootstrap=bootstrap.split(","), listen=swarmplex.LOOPBACK_LISTEN, mdns=False) as swarm:
            sockets = Peersockets(swarm)
            chat = sockets.join("chat", onmessage=lambda key, msg: got_from_node.put_nowait(msg))
            connected = asyncio.ensure_future(swarm.next_connection())  # reading before joining
            await swarm.join(swarmplex.topic(topic))
            conn = await asyncio.wait_for(connected, 30)
            await chat.send(conn.remote_public_key, "hello from python")
            first_msg = await asyncio.wait_for(got_from_node.get(), 30)
            print(f"python got {first_msg.decode()}", flush=True)
            sent_to = await chat.broadcast("broadcast from python")
            wanted = {"got hello from python", "got broadcast from python"}
            heard = set()
            while heard != wanted:
                line = (await asyncio.wait_for(node.stdout.readline(), 30)).decode().rstrip("\n")
                print(f"node | {line}", flush=True)
                heard |= {line} & wanted
            ok = first_msg == b"hello from node" and sent_to == 1
    finally:
        node.stdin.close()
        await asyncio.wait_for(node.wait(), 10)
        testnet.terminate()
        testnet.wait(timeout=10)
    print(f"cross-language peersockets: {'passed' if ok and node.returncode == 0 else 'failed'}")
    return 0 if ok and node.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
