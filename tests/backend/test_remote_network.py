"""Remote mode across a real network: the backend on one host, the add-on's client on another.

Two network namespaces joined by a veth pair stand in for a GPU box and an artist's machine
(test hosts this test makes and removes; no traffic leaves them). The backend binds the box's
address only; the client reaches it by that address with the token, runs a job and fetches the
result, while a wrong token, a foreign Host header (DNS rebinding) and the box's own loopback
are refused. Needs root (CI runs as root); skipped elsewhere.
"""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOX, ARTIST = "10.213.7.1", "10.213.7.2"
PORT, TOKEN = 8765, "remote-test-token"


def sh(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=30)


@pytest.fixture
def two_hosts():
    """(server namespace, client namespace), joined by a veth pair; removed afterwards."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 to make network namespaces")
    suffix = f"{os.getpid() % 100000}"
    box, artist = f"d3d-box-{suffix}", f"d3d-artist-{suffix}"
    try:
        sh("ip", "netns", "add", box)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot make network namespaces here: {exc.stderr.strip()}")
    try:
        sh("ip", "netns", "add", artist)
        sh("ip", "link", "add", f"veth-b{suffix}", "type", "veth", "peer", "name", f"veth-a{suffix}")
        for namespace, device, address in ((box, f"veth-b{suffix}", BOX), (artist, f"veth-a{suffix}", ARTIST)):
            sh("ip", "link", "set", device, "netns", namespace)
            sh("ip", "-n", namespace, "addr", "add", f"{address}/24", "dev", device)
            sh("ip", "-n", namespace, "link", "set", device, "up")
            sh("ip", "-n", namespace, "link", "set", "lo", "up")
        yield box, artist
    finally:
        for namespace in (box, artist):  # removing a namespace removes its end of the veth pair
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=30)


CLIENT = textwrap.dedent(f"""
    import http.client, sys, time
    sys.path.insert(0, {str(ROOT)!r})
    from service.client import BackendClient, BackendError

    url = "http://{BOX}:{PORT}"
    client = BackendClient(url, "{TOKEN}", timeout=10)
    for _ in range(600):  # the backend imports torch first
        try:
            health = client.health(timeout=2)
            break
        except BackendError:
            time.sleep(0.1)
    else:
        sys.exit("the backend never answered over the network")
    assert health["status"] == "ok", health
    job = client.submit("text_to_3d", {{"prompt": "remote cube", "step_delay": 0.0}}, "test-cube")
    while (record := client.job(job["id"]))["state"] in ("queued", "running"):
        time.sleep(0.05)
    assert record["state"] == "succeeded", record
    assert client.result(job["id"])[:4] == b"glTF"
    print("JOB OK")
    try:
        BackendClient(url, "wrong-token").health()
    except BackendError as exc:
        assert exc.status == 401 and "refused the token" in str(exc), exc
        print("WRONG TOKEN REFUSED")
    connection = http.client.HTTPConnection("{BOX}", {PORT}, timeout=10)
    connection.request("GET", "/health", headers={{"Host": "attacker.example", "Authorization": "Bearer {TOKEN}"}})
    assert connection.getresponse().status == 403
    print("FOREIGN HOST REFUSED")
""")


def test_a_backend_on_another_host_serves_the_addons_client(two_hosts, tmp_path):
    box, artist = two_hosts
    env = {**os.environ, "DIFFUSION3D_TEST_MODELS": "1", "DIFFUSION3D_TOKEN": TOKEN, "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen(
        ["ip", "netns", "exec", box, sys.executable, "-m", "backend", "serve", "--host", BOX, "--port", str(PORT),
         "--cache-dir", str(tmp_path / "cache"), "--device", "cpu", "--offline"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        client = subprocess.run(["ip", "netns", "exec", artist, sys.executable, "-c", CLIENT],
                                capture_output=True, text=True, timeout=180)
        # Bound to the box's network address only: its own loopback finds nothing listening.
        probe = ("import socket; s = socket.socket(); s.settimeout(5); "
                 f"print('refused' if s.connect_ex(('127.0.0.1', {PORT})) else 'open')")
        loopback = subprocess.run(["ip", "netns", "exec", box, sys.executable, "-c", probe],
                                  capture_output=True, text=True, timeout=30).stdout.strip()
    finally:
        server.terminate()
        try:
            log = server.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            server.kill()
            log = server.communicate()[0]
    output = f"{client.stdout}{client.stderr}\n--- backend log:\n{log[-3000:]}"
    assert client.returncode == 0, output
    for line in ("JOB OK", "WRONG TOKEN REFUSED", "FOREIGN HOST REFUSED"):
        assert line in client.stdout, output
    assert loopback == "refused", loopback
